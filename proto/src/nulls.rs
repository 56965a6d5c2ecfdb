//! Jute nulls in requests: where a client sent length -1 for a string or a
//! vector, and what Apache ZooKeeper 3.8 does about each.
//!
//! Java's `BinaryInputArchive` reads a string, buffer or vector of length -1
//! as null, and clients send them: kazoo writes every empty string as null,
//! so `Id("auth", "")`, `sync("")` and `get_ephemerals("")` arrive with
//! nulls. The typed request ([`crate::ops::Request`]) shows a null string as
//! `""` and a null vector as empty (a null data buffer stays `None`); what it
//! cannot show is listed in a [`Nulls`] by [`Request::decode_with_nulls`].
//!
//! ZooKeeper has no null checks: each null goes on until some code touches
//! it, and a NullPointerException there is answered MARSHALLINGERROR
//! (PrepRequestProcessor and FinalRequestProcessor catch `Exception`). Where
//! a null lands therefore decides the answer; this table was measured against
//! ZooKeeper 3.8.0 (tests/test_null_strings.py) and read from its source:
//!
//! ```text
//! request                          null                answer
//! exists getData getACL            path                MARSHALLINGERROR (indexOf / getNode)
//! getChildren(2) getAllChildrenNumber
//! checkWatches                     path                MARSHALLINGERROR (PathParentIterator)
//! removeWatches                    path                NOWATCHER (no null-path watch is kept)
//! addWatch                         path                OK, nothing that can ever fire is kept
//! sync                             path                OK, the reply echoes the null
//! getEphemerals                    prefixPath          as "": every ephemeral
//! setData setACL check             path                BADARGUMENTS (validatePath), as ""
//! create*                          path                MARSHALLINGERROR after the mode and TTL
//!                                                      checks (lastIndexOf), as a refused txn
//! delete                           path                MARSHALLINGERROR first (lastIndexOf)
//! create* setACL                   ACL list            as empty: INVALIDACL
//!                                  ACL scheme          INVALIDACL
//!                                  ACL id, auth        as "": the id is never read
//!                                  ACL id, world/ip/digest  MARSHALLINGERROR (equals / isValid)
//!                                  ACL id, other scheme     INVALIDACL (no provider)
//! multi                            any op's path       MARSHALLINGERROR before any op (getPendingChanges)
//!                                  ACL fields          as above, when that op is prepared
//! multiRead                        any op's path       MARSHALLINGERROR
//! setWatches setWatches2           a list              the lists before it are restored, then
//!                                                      MARSHALLINGERROR
//!                                  data/exist/child path  likewise, stopping at that path
//!                                  persistent path     skipped (ZooKeeper keeps a watch nothing fires)
//! auth                             scheme              AUTHFAILED, connection closed (no provider)
//!                                  digest credential   AUTHFAILED, connection closed
//!                                  ip credential       ignored
//! reconfig                         any string          as "" (refused before it is read)
//! ```
//!
//! Two ACL entries compare with Java's `equals` while duplicates are removed,
//! which throws when the later entry's scheme (or, schemes equal, its id) is
//! null and the perms match: MARSHALLINGERROR too. The decisions that need
//! only the request are [`Nulls::verdict`]; those that depend on the tree or
//! the caller (a write's earlier checks, a multi's earlier ops, the caller's
//! identities) are made in `tree` (`DataTree::prepare_with_nulls`,
//! `DataTree::set_watches_with_nulls`, `tree::acl::authenticate`).

use std::fmt;

use crate::jute::{DecodeError, Reader};
use crate::ops::Request;
use crate::records::{Acl, Id};
use crate::{AddWatchMode, ErrorCode, WatcherType};

/// The lists of setWatches (the first three) and setWatches2 (all five), in
/// the order ZooKeeper restores them (`DataTree.setWatches`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum WatchList {
    Data,
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

impl WatchList {
    pub const ALL: [WatchList; 5] = [
        WatchList::Data,
        WatchList::Exist,
        WatchList::Child,
        WatchList::Persistent,
        WatchList::PersistentRecursive,
    ];

    /// Whether ZooKeeper looks the path up (and so fails on a null one)
    /// rather than only registering it.
    pub fn looks_up_paths(self) -> bool {
        matches!(self, WatchList::Data | WatchList::Exist | WatchList::Child)
    }
}

/// One place in a request where the client sent jute's null.
///
/// `op` is the index of the op inside a multi or multiRead, and 0 for every
/// other request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NullAt {
    /// The path of the request or of multi op `op` (`prefixPath` for
    /// getEphemerals).
    Path { op: usize },
    /// The whole ACL list of a create or setACL.
    AclList { op: usize },
    /// The scheme of ACL entry `entry`.
    AclScheme { op: usize, entry: usize },
    /// The id of ACL entry `entry`.
    AclId { op: usize, entry: usize },
    /// A whole list of setWatches / setWatches2.
    WatchList { list: WatchList },
    /// Path `index` of a setWatches / setWatches2 list.
    WatchPath { list: WatchList, index: usize },
    /// The scheme of an auth packet.
    AuthScheme,
    /// The credential buffer of an auth packet.
    AuthCredential,
    /// A string of reconfig: joiningServers 0, leavingServers 1, newMembers 2.
    Reconfig { field: usize },
}

impl fmt::Display for NullAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NullAt::Path { op } => write!(f, "path of op {op}"),
            NullAt::AclList { op } => write!(f, "ACL list of op {op}"),
            NullAt::AclScheme { op, entry } => write!(f, "ACL scheme {entry} of op {op}"),
            NullAt::AclId { op, entry } => write!(f, "ACL id {entry} of op {op}"),
            NullAt::WatchList { list } => write!(f, "{list:?} watch list"),
            NullAt::WatchPath { list, index } => {
                write!(f, "path {index} of the {list:?} watch list")
            }
            NullAt::AuthScheme => write!(f, "auth scheme"),
            NullAt::AuthCredential => write!(f, "auth credential"),
            NullAt::Reconfig { field } => write!(f, "reconfig string {field}"),
        }
    }
}

/// Every null a decoded request carried, in decode order. Empty (and not
/// allocated) for nearly every request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Nulls {
    at: Vec<NullAt>,
}

/// What ZooKeeper answers for a request because of its nulls, decided from
/// the request alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullVerdict {
    /// Handle the request as decoded (nulls read as "" and empty lists).
    /// Writes go to `DataTree::prepare_with_nulls`, setWatches to
    /// `DataTree::set_watches_with_nulls`, and an auth packet's credential is
    /// `None` for `tree::acl::authenticate` when [`NullAt::AuthCredential`]
    /// is listed: they decide the nulls that depend on state.
    Proceed,
    /// Answer this code at once: nothing is registered and no txn is logged.
    Refuse(ErrorCode),
    /// Answer success and do nothing: addWatch on a null path (ZooKeeper
    /// registers it under the null path, where no event can ever fire it).
    Acknowledge,
    /// sync: answer OK with a null path (`Response::SyncNullPath`), as
    /// ZooKeeper echoes the request's path.
    EchoNullPath,
}

/// A list of nulls, as a decoder would note them (tests and simulators).
impl FromIterator<NullAt> for Nulls {
    fn from_iter<I: IntoIterator<Item = NullAt>>(iter: I) -> Self {
        Nulls {
            at: iter.into_iter().collect(),
        }
    }
}

impl Nulls {
    /// No nulls.
    pub const NONE: Nulls = Nulls { at: Vec::new() };

    pub fn is_empty(&self) -> bool {
        self.at.is_empty()
    }

    pub fn contains(&self, at: NullAt) -> bool {
        self.at.contains(&at)
    }

    /// Every null, in decode order.
    pub fn iter(&self) -> impl Iterator<Item = NullAt> + '_ {
        self.at.iter().copied()
    }

    pub(crate) fn push(&mut self, at: NullAt) {
        self.at.push(at);
    }

    /// Whether the path of op `op` (0 outside multi) was null.
    pub fn path(&self, op: usize) -> bool {
        self.contains(NullAt::Path { op })
    }

    /// Whether the scheme of ACL entry `entry` of op `op` was null.
    pub fn acl_scheme(&self, op: usize, entry: usize) -> bool {
        self.contains(NullAt::AclScheme { op, entry })
    }

    /// Whether the id of ACL entry `entry` of op `op` was null.
    pub fn acl_id(&self, op: usize, entry: usize) -> bool {
        self.contains(NullAt::AclId { op, entry })
    }

    /// Where ZooKeeper's restore of setWatches lists stops with
    /// MARSHALLINGERROR: the first null list, or the first null path of a
    /// list it looks up, in restore order. `None` when it gets through.
    pub fn watch_stop(&self) -> Option<NullAt> {
        let order = |at: &NullAt| match *at {
            NullAt::WatchList { list } => Some((list, 0)),
            NullAt::WatchPath { list, index } if list.looks_up_paths() => Some((list, index)),
            _ => None,
        };
        self.at
            .iter()
            .filter_map(|at| order(at).map(|key| (key, *at)))
            .min_by_key(|(key, _)| *key)
            .map(|(_, at)| at)
    }

    /// What ZooKeeper answers for `request` because of these nulls, when
    /// that depends on the request alone (see the module table).
    pub fn verdict(&self, request: &Request) -> NullVerdict {
        if self.is_empty() {
            return NullVerdict::Proceed;
        }
        let marshalling = NullVerdict::Refuse(ErrorCode::MarshallingError);
        match request {
            Request::Exists(_)
            | Request::GetData(_)
            | Request::GetAcl(_)
            | Request::GetChildren(_)
            | Request::GetChildren2(_)
            | Request::GetAllChildrenNumber(_)
            | Request::CheckWatches(_)
                if self.path(0) =>
            {
                marshalling
            }
            // The watcher type is converted first and throws when unknown.
            Request::RemoveWatches(r) if self.path(0) => {
                match WatcherType::from_code(r.watcher_type) {
                    Some(_) => NullVerdict::Refuse(ErrorCode::NoWatcher),
                    None => marshalling,
                }
            }
            // So is the watch mode.
            Request::AddWatch(r) if self.path(0) => match AddWatchMode::from_code(r.mode) {
                Some(_) => NullVerdict::Acknowledge,
                None => marshalling,
            },
            Request::Sync(_) if self.path(0) => NullVerdict::EchoNullPath,
            Request::Multi(_) | Request::MultiRead(_)
                if self.iter().any(|at| matches!(at, NullAt::Path { .. })) =>
            {
                marshalling
            }
            _ => NullVerdict::Proceed,
        }
    }

    /// The first null that ZooKeeper answers MARSHALLINGERROR for when no
    /// earlier check fails: what the plain [`Request::decode`] refuses, so
    /// that a server not yet using [`Request::decode_with_nulls`] still
    /// answers the common cases as ZooKeeper does. Nulls it lets through read
    /// as "" and empty lists, which is what ZooKeeper does with them (except
    /// that sync then echoes "" instead of null).
    pub fn first_refused(&self, request: &Request) -> Option<NullAt> {
        if self.is_empty() {
            return None;
        }
        if self.verdict(request) == NullVerdict::Refuse(ErrorCode::MarshallingError) {
            return self.iter().next();
        }
        match request {
            Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete(_)
                if self.path(0) =>
            {
                Some(NullAt::Path { op: 0 })
            }
            Request::SetWatches(_) | Request::SetWatches2(_) => self.watch_stop(),
            _ => self.iter().find(|at| match *at {
                NullAt::AclId { op, entry } => acl_of(request, op, entry)
                    .is_some_and(|acl| id_read_by_provider(&acl.id.scheme)),
                _ => false,
            }),
        }
    }
}

/// Whether fixupACL reads the id of an entry with this scheme (and so throws
/// on a null one): `world` compares it with "anyone", `ip` and `digest` have
/// a provider whose `isValid` parses it. `auth` never reads it; other schemes
/// have no provider and are refused first.
pub fn id_read_by_provider(scheme: &str) -> bool {
    matches!(scheme, "world" | "ip" | "digest")
}

/// ACL entry `entry` of op `op` of a create, setACL or multi.
fn acl_of(request: &Request, op: usize, entry: usize) -> Option<&Acl> {
    use crate::ops::MultiOp;
    let list = match request {
        Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) if op == 0 => &r.acl,
        Request::CreateTtl(r) if op == 0 => &r.acl,
        Request::SetAcl(r) if op == 0 => &r.acl,
        Request::Multi(ops) => match ops.get(op)? {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => &r.acl,
            MultiOp::CreateTtl(r) => &r.acl,
            _ => return None,
        },
        _ => return None,
    };
    list.get(entry)
}

// ----- decoding helpers: each reads one field and notes a null -----------------

/// Notes a null path if the next field (a request's first) is null. The
/// record decoder then reads it as "".
pub(crate) fn note_path(r: &Reader<'_>, nulls: &mut Nulls, op: usize) {
    if r.peek_null() {
        nulls.push(NullAt::Path { op });
    }
}

/// A string that may be null: "" when it is, noting `at`.
pub(crate) fn read_string(
    r: &mut Reader<'_>,
    nulls: &mut Nulls,
    at: NullAt,
) -> Result<String, DecodeError> {
    Ok(r.read_ustring_opt()?.unwrap_or_else(|| {
        nulls.push(at);
        String::new()
    }))
}

/// An ACL list whose list, schemes and ids may be null.
pub(crate) fn read_acl(
    r: &mut Reader<'_>,
    nulls: &mut Nulls,
    op: usize,
) -> Result<Vec<Acl>, DecodeError> {
    let mut entry = 0;
    let list = r.read_vec_opt(|r| {
        let perms = r.read_i32()?;
        let scheme = read_string(r, nulls, NullAt::AclScheme { op, entry })?;
        let id = read_string(r, nulls, NullAt::AclId { op, entry })?;
        entry += 1;
        Ok(Acl {
            perms,
            id: Id { scheme, id },
        })
    })?;
    Ok(list.unwrap_or_else(|| {
        nulls.push(NullAt::AclList { op });
        Vec::new()
    }))
}

/// One setWatches list whose count and paths may be null.
pub(crate) fn read_watch_list(
    r: &mut Reader<'_>,
    nulls: &mut Nulls,
    list: WatchList,
) -> Result<Vec<String>, DecodeError> {
    let mut index = 0;
    let paths = r.read_vec_opt(|r| {
        let path = read_string(r, nulls, NullAt::WatchPath { list, index })?;
        index += 1;
        Ok(path)
    })?;
    Ok(paths.unwrap_or_else(|| {
        nulls.push(NullAt::WatchList { list });
        Vec::new()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jute::Writer;
    use crate::ops::{MultiOp, Response};
    use crate::{OpCode, Record};

    /// Writes an ACL list; `None` fields are jute nulls.
    fn acl(w: &mut Writer, entries: &[(i32, Option<&str>, Option<&str>)]) {
        w.write_i32(entries.len() as i32);
        for (perms, scheme, id) in entries {
            w.write_i32(*perms);
            w.write_ustring_opt(*scheme);
            w.write_ustring_opt(*id);
        }
    }

    fn create_body(path: Option<&str>, entries: &[(i32, Option<&str>, Option<&str>)]) -> Writer {
        let mut w = Writer::new();
        w.write_ustring_opt(path);
        w.write_buffer_opt(None);
        acl(&mut w, entries);
        w.write_i32(0);
        w
    }

    fn decode(op: OpCode, w: &Writer) -> (Request, Nulls) {
        let mut r = Reader::new(w.as_slice());
        let decoded = Request::decode_with_nulls(op, &mut r).unwrap();
        r.finish().unwrap();
        decoded
    }

    fn path_only(path: Option<&str>, tail: &[u8]) -> Writer {
        let mut w = Writer::new();
        w.write_ustring_opt(path);
        w.write_raw(tail);
        w
    }

    #[test]
    fn create_nulls_read_as_empty_and_are_listed() {
        // Proves a create's null path, scheme and id decode as "" and are
        // listed by position, and that kazoo's CREATOR_ALL_ACL (auth with a
        // null id) passes the plain decoder.
        let w = create_body(
            None,
            &[(31, Some("world"), Some("anyone")), (31, None, None)],
        );
        let (request, nulls) = decode(OpCode::Create, &w);
        let Request::Create(create) = &request else {
            panic!("{request:?}")
        };
        assert_eq!(create.path, "");
        assert_eq!(create.acl[1].id, Id::new("", ""));
        assert_eq!(
            nulls.iter().collect::<Vec<_>>(),
            vec![
                NullAt::Path { op: 0 },
                NullAt::AclScheme { op: 0, entry: 1 },
                NullAt::AclId { op: 0, entry: 1 },
            ]
        );
        let creator_all = create_body(Some("/a"), &[(31, Some("auth"), None)]);
        let Request::Create(create) =
            Request::decode(OpCode::Create, &mut Reader::new(creator_all.as_slice())).unwrap()
        else {
            panic!()
        };
        assert_eq!(create.acl[0].id, Id::new("auth", ""));
    }

    #[test]
    fn plain_decode_refuses_what_zookeeper_answers_marshalling_error() {
        // Proves Request::decode refuses a null create path, a null world/ip/digest
        // id and a null read path, and lets through a null scheme, a null id of
        // the auth or an unknown scheme, and the nulls ZooKeeper answers otherwise.
        let refused = |op, w: Writer| {
            matches!(
                Request::decode(op, &mut Reader::new(w.as_slice())),
                Err(DecodeError::Null { .. })
            )
        };
        assert!(refused(
            OpCode::Create,
            create_body(None, &[(31, Some("world"), Some("anyone"))])
        ));
        for scheme in ["world", "ip", "digest"] {
            let w = create_body(Some("/a"), &[(31, Some(scheme), None)]);
            assert!(refused(OpCode::Create2, w), "{scheme}");
        }
        for scheme in [None, Some("auth"), Some("madeup")] {
            let w = create_body(Some("/a"), &[(31, scheme, None)]);
            assert!(!refused(OpCode::Create, w), "{scheme:?}");
        }
        let watch_false = [0u8];
        for op in [
            OpCode::Exists,
            OpCode::GetData,
            OpCode::GetChildren,
            OpCode::GetChildren2,
        ] {
            assert!(refused(op, path_only(None, &watch_false)), "{op:?}");
        }
        let version = (-1i32).to_be_bytes();
        for op in [OpCode::SetData, OpCode::Check] {
            let mut w = Writer::new();
            w.write_ustring_opt(None);
            if op == OpCode::SetData {
                w.write_buffer_opt(None);
            }
            w.write_i32(-1);
            assert!(!refused(op, w), "{op:?}: BADARGUMENTS from the path check");
        }
        assert!(refused(OpCode::Delete, path_only(None, &version)));
        assert!(!refused(OpCode::Sync, path_only(None, &[])));
        assert!(!refused(OpCode::GetEphemerals, path_only(None, &[])));
    }

    #[test]
    fn verdicts_follow_zookeeper_per_position() {
        // Proves the request-only answers of the module table.
        let verdict = |op, w: Writer| {
            let (request, nulls) = decode(op, &w);
            nulls.verdict(&request)
        };
        let marshalling = NullVerdict::Refuse(ErrorCode::MarshallingError);
        assert_eq!(verdict(OpCode::Exists, path_only(None, &[1])), marshalling);
        assert_eq!(verdict(OpCode::GetAcl, path_only(None, &[])), marshalling);
        assert_eq!(
            verdict(OpCode::GetAllChildrenNumber, path_only(None, &[])),
            marshalling
        );
        let watcher_any = 3i32.to_be_bytes();
        assert_eq!(
            verdict(OpCode::CheckWatches, path_only(None, &watcher_any)),
            marshalling
        );
        assert_eq!(
            verdict(OpCode::RemoveWatches, path_only(None, &watcher_any)),
            NullVerdict::Refuse(ErrorCode::NoWatcher)
        );
        assert_eq!(
            verdict(OpCode::RemoveWatches, path_only(None, &9i32.to_be_bytes())),
            marshalling,
            "an unknown watcher type throws first"
        );
        assert_eq!(
            verdict(OpCode::AddWatch, path_only(None, &1i32.to_be_bytes())),
            NullVerdict::Acknowledge
        );
        assert_eq!(
            verdict(OpCode::Sync, path_only(None, &[])),
            NullVerdict::EchoNullPath
        );
        assert_eq!(
            verdict(OpCode::GetEphemerals, path_only(None, &[])),
            NullVerdict::Proceed
        );
        assert_eq!(
            verdict(
                OpCode::Create,
                create_body(None, &[(31, Some("world"), Some("anyone"))])
            ),
            NullVerdict::Proceed,
            "the tree decides after the mode and TTL checks"
        );
        assert_eq!(
            verdict(OpCode::Sync, path_only(Some(""), &[])),
            NullVerdict::Proceed
        );
    }

    #[test]
    fn multi_ops_are_noted_by_index_and_a_null_path_refuses_the_multi() {
        // Proves multi op nulls carry the op's index, and any null op path
        // refuses the whole multi (getPendingChanges reads every path first).
        let mut w = Writer::new();
        let check = |w: &mut Writer, path: Option<&str>| {
            w.write_i32(OpCode::Check.code());
            w.write_bool(false);
            w.write_i32(-1);
            w.write_ustring_opt(path);
            w.write_i32(-1);
        };
        check(&mut w, Some("/a"));
        w.write_i32(OpCode::Create.code());
        w.write_bool(false);
        w.write_i32(-1);
        let body = create_body(Some("/b"), &[(31, Some("world"), None)]);
        w.write_raw(body.as_slice());
        check(&mut w, None);
        w.write_i32(-1);
        w.write_bool(true);
        w.write_i32(-1);
        let (request, nulls) = decode(OpCode::Multi, &w);
        let Request::Multi(ops) = &request else {
            panic!()
        };
        assert!(matches!(ops[2], MultiOp::Check(_)));
        assert_eq!(
            nulls.iter().collect::<Vec<_>>(),
            vec![NullAt::AclId { op: 1, entry: 0 }, NullAt::Path { op: 2 }]
        );
        assert_eq!(
            nulls.verdict(&request),
            NullVerdict::Refuse(ErrorCode::MarshallingError)
        );
    }

    #[test]
    fn set_watches_stop_at_the_first_null_zookeeper_looks_up() {
        // Proves null lists and paths are noted, negative counts other than -1
        // are empty lists, and the stop is the first null in restore order
        // that ZooKeeper looks up (null paths of persistent lists are not).
        let mut w = Writer::new();
        w.write_i64(5);
        w.write_i32(-2); // data: empty
        w.write_i32(2); // exist: ["/a", null]
        w.write_ustring("/a");
        w.write_ustring_opt(None);
        w.write_i32(-1); // child: null
        w.write_i32(1); // persistent: [null]
        w.write_ustring_opt(None);
        w.write_i32(0); // recursive: []
        let (request, nulls) = decode(OpCode::SetWatches2, &w);
        let Request::SetWatches2(lists) = &request else {
            panic!()
        };
        assert!(lists.data_watches.is_empty() && lists.child_watches.is_empty());
        assert_eq!(lists.exist_watches, vec!["/a".to_string(), String::new()]);
        assert_eq!(
            nulls.watch_stop(),
            Some(NullAt::WatchPath {
                list: WatchList::Exist,
                index: 1
            })
        );
        assert_eq!(
            nulls.first_refused(&request),
            nulls.watch_stop(),
            "the plain decoder refuses it"
        );
        let persistent_only = Nulls {
            at: vec![NullAt::WatchPath {
                list: WatchList::Persistent,
                index: 0,
            }],
        };
        assert_eq!(persistent_only.watch_stop(), None);
    }

    #[test]
    fn auth_nulls_are_noted_and_reconfig_strings_read_as_empty() {
        // Proves a null auth scheme and credential are listed (the tree's
        // authenticate refuses them), and reconfig's null strings read as "".
        let mut w = Writer::new();
        w.write_i32(0);
        w.write_ustring_opt(None);
        w.write_buffer_opt(None);
        let (request, nulls) = decode(OpCode::Auth, &w);
        assert!(matches!(&request, Request::Auth(a) if a.scheme.is_empty() && a.auth.is_empty()));
        assert!(nulls.contains(NullAt::AuthScheme) && nulls.contains(NullAt::AuthCredential));
        assert_eq!(nulls.first_refused(&request), None);
        let mut w = Writer::new();
        for _ in 0..3 {
            w.write_ustring_opt(None);
        }
        w.write_i64(-1);
        let (request, nulls) = decode(OpCode::Reconfig, &w);
        assert!(matches!(&request, Request::Reconfig(r) if r.new_members.is_empty()));
        assert_eq!(nulls.iter().count(), 3);
        assert_eq!(nulls.verdict(&request), NullVerdict::Proceed);
    }

    #[test]
    fn sync_reply_echoes_a_null_path() {
        // Proves Response::SyncNullPath encodes jute's null and decodes back.
        let mut w = Writer::new();
        Response::SyncNullPath.encode(&mut w);
        assert_eq!(w.as_slice(), &(-1i32).to_be_bytes());
        let decoded = Response::decode(OpCode::Sync, &mut Reader::new(w.as_slice())).unwrap();
        assert_eq!(decoded, Response::SyncNullPath);
        let empty = crate::ops::SyncResponse {
            path: String::new(),
        };
        assert_eq!(empty.to_bytes(), 0i32.to_be_bytes());
    }

    #[test]
    fn requests_without_a_body_never_peek_at_trailing_bytes() {
        // Proves bytes after a bodiless request (ping) are not mistaken for a null path.
        let w = path_only(None, &[]);
        let (request, nulls) =
            Request::decode_with_nulls(OpCode::Ping, &mut Reader::new(w.as_slice())).unwrap();
        assert_eq!((request, nulls), (Request::Ping, Nulls::NONE));
    }
}
