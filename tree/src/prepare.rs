//! Turning a client's write into a txn (ZooKeeper's PrepRequestProcessor).
//!
//! Writes are prepared one after another, each against the tree *as it will
//! be* once every txn prepared before it is applied — the applied tree plus an
//! [`Overlay`] of pending changes, as ZooKeeper's `outstandingChanges`. That
//! is what lets the sequencer keep many writes in flight in one log batch
//! while still validating each (versions, existence, sequential names)
//! against its predecessors.
//!
//! ```text
//!   lookup(path) = staging (this request's own earlier ops, for multi)
//!                  └─▶ overlay (prepared, not yet applied)
//!                       └─▶ applied tree
//! ```
//!
//! A request's changes go to a staging layer first; they join the overlay
//! only if every op succeeds, so a failed multi leaves nothing behind. The
//! overlay forgets a change when a txn with that zxid or later is applied,
//! because the tree then shows it.
//!
//! The checks run in ZooKeeper's order, so the first error reported is the
//! one ZooKeeper would report.

use std::collections::VecDeque;
use std::sync::Arc;

use proto::ops::Data;
use proto::{perms, Acl, CreateMode, ErrorCode, NullAt, Nulls};

use crate::acl;
use crate::data_tree::{Caller, DataTree};
use crate::node::{owner_kind, ttl_owner, OwnerKind, CONTAINER_OWNER, TTL_MAX_MS};
use crate::path;
use crate::txn::Txn;
use crate::HashMap;

/// A write as the client asked for it, before validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOp {
    CreateSession {
        timeout_ms: i32,
    },
    CloseSession,
    /// `ttl_ms` is -1 unless the request was createTTL.
    Create {
        path: String,
        data: Data,
        acl: Vec<Acl>,
        mode: CreateMode,
        ttl_ms: i64,
    },
    Delete {
        path: String,
        version: i32,
    },
    /// The server's own removal of an empty container or expired TTL node.
    /// The server's removal of one ephemeral of a closing session whose
    /// ephemerals are too many for one CloseSession txn.
    DeleteEphemeral {
        path: String,
    },
    DeleteContainer {
        path: String,
    },
    SetData {
        path: String,
        data: Data,
        version: i32,
    },
    SetAcl {
        path: String,
        acl: Vec<Acl>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi(Vec<WriteOp>),
}

/// Why a write was refused. A multi reports one code per op: OK for the ops
/// before the failing one, its code, RUNTIMEINCONSISTENCY after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PrepareError {
    /// The request fails as a whole. For a multi this is ZooKeeper's error
    /// txn in place of the multi's txn (a null op path, a null ACL id that
    /// throws, an oversized txn): the reply carries the code in its header
    /// and no body, not a list of error results.
    Op(ErrorCode),
    Multi(Vec<ErrorCode>),
}

/// What prepare needs to know of a node.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shadow {
    acl: Arc<[Acl]>,
    version: i32,
    aversion: i32,
    /// Stored cversion: the number of children ever created.
    cversion: i32,
    child_count: usize,
    ephemeral_owner: i64,
}

/// Prepared changes not yet applied: path → (zxid, the node after it or
/// `None` for deleted), and the order they were made in.
#[derive(Debug, Clone)]
pub(crate) struct Overlay {
    changes: HashMap<String, (i64, Option<Shadow>)>,
    order: VecDeque<(i64, String)>,
}

impl Overlay {
    pub(crate) fn with_hash_seed(hash_seed: u64) -> Overlay {
        Overlay {
            changes: HashMap::with_hasher(crate::hasher(hash_seed)),
            order: VecDeque::new(),
        }
    }

    /// Forgets every change made by txns up to `zxid`: the tree shows them now.
    pub(crate) fn applied(&mut self, zxid: i64) {
        while let Some((change_zxid, _)) = self.order.front() {
            if *change_zxid > zxid {
                break;
            }
            let (change_zxid, path) = self.order.pop_front().expect("checked front");
            if self
                .changes
                .get(&path)
                .is_some_and(|(z, _)| *z == change_zxid)
            {
                self.changes.remove(&path);
            }
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

/// One request's view while it is being prepared.
struct Staging<'t> {
    tree: &'t DataTree,
    changes: HashMap<String, Option<Shadow>>,
}

impl Staging<'_> {
    fn get(&self, path: &str) -> Option<Shadow> {
        if let Some(staged) = self.changes.get(path) {
            return staged.clone();
        }
        if let Some((_, pending)) = self.tree.overlay.changes.get(path) {
            return pending.clone();
        }
        self.tree.nodes.get(path).map(|node| Shadow {
            acl: node.acl.clone(),
            version: node.version,
            aversion: node.aversion,
            cversion: node.cversion,
            child_count: node.children.len(),
            ephemeral_owner: node.ephemeral_owner,
        })
    }

    fn record(&self, path: &str) -> Result<Shadow, ErrorCode> {
        self.get(path).ok_or(ErrorCode::NoNode)
    }

    fn put(&mut self, path: &str, shadow: Option<Shadow>) {
        self.changes.insert(path.to_string(), shadow);
    }

    /// The session's ephemerals as they will be once everything prepared
    /// (and staged) is applied: the tree's, plus pending creates, minus
    /// pending deletes; sorted.
    fn ephemerals_as_prepared(&self, session_id: i64) -> Vec<String> {
        let tree = self.tree;
        let mut paths: Vec<String> = tree
            .ephemerals
            .get(&session_id)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default();
        for (path, (_, pending)) in &tree.overlay.changes {
            if pending
                .as_ref()
                .is_some_and(|s| s.ephemeral_owner == session_id)
                && !paths.contains(path)
            {
                paths.push(path.clone());
            }
        }
        // A pending delete, or a pending create by someone else after one, wins.
        paths.retain(|path| {
            self.get(path)
                .is_some_and(|s| s.ephemeral_owner == session_id)
        });
        paths.sort();
        paths
    }
}

impl DataTree {
    /// Validates `op` as the next write and returns its txn; on success the
    /// txn's effects are visible to later prepares until it is applied (or
    /// [`DataTree::discard_pending`] is called).
    pub fn prepare(
        &mut self,
        caller: &Caller<'_>,
        op: &WriteOp,
        zxid: i64,
    ) -> Result<Txn, PrepareError> {
        self.prepare_with_nulls(caller, op, &Nulls::NONE, zxid)
    }

    /// [`DataTree::prepare`] for a write whose request carried jute nulls
    /// (`Request::decode_with_nulls`; the op's strings read as ""). Each null
    /// fails where ZooKeeper's PrepRequestProcessor first touches it, after
    /// the checks that come before (see `proto::nulls`): a create's path
    /// after the mode and TTL checks, a delete's path first, a multi's op
    /// paths before any op, ACL fields in `acl::fixup_with_nulls` when their
    /// op is prepared. setData, setACL and check paths fail validation as ""
    /// does. The failure is MARSHALLINGERROR, refused like any other.
    pub fn prepare_with_nulls(
        &mut self,
        caller: &Caller<'_>,
        op: &WriteOp,
        nulls: &Nulls,
        zxid: i64,
    ) -> Result<Txn, PrepareError> {
        assert!(
            zxid > self.zxid_applied,
            "prepare zxid {zxid} not after applied"
        );
        let mut staging = Staging {
            tree: self,
            changes: HashMap::with_hasher(crate::hasher(self.hash_seed)),
        };
        let txn = match op {
            WriteOp::Multi(_) if nulls.iter().any(|at| matches!(at, NullAt::Path { .. })) => {
                return Err(PrepareError::Op(ErrorCode::MarshallingError));
            }
            WriteOp::Multi(ops) => prepare_multi(&mut staging, caller, ops, nulls)?,
            op => prepare_one(&mut staging, caller, op, nulls, 0).map_err(PrepareError::Op)?,
        };
        if txn.encoded_len() > self.txn_bytes_max {
            return Err(PrepareError::Op(ErrorCode::BadArguments));
        }
        let changes = staging.changes;
        for (path, shadow) in changes {
            self.overlay.order.push_back((zxid, path.clone()));
            self.overlay.changes.insert(path, (zxid, shadow));
        }
        Ok(txn)
    }

    /// The session's ephemerals as they will be once every prepared write is
    /// applied (what a closeSession prepared now would delete), sorted.
    pub fn ephemerals_as_prepared(&self, session_id: i64) -> Vec<String> {
        let staging = Staging {
            tree: self,
            changes: HashMap::with_hasher(crate::hasher(self.hash_seed)),
        };
        staging.ephemerals_as_prepared(session_id)
    }

    /// Forgets every prepared-but-unapplied change (the log failed and those
    /// txns will never be applied).
    pub fn discard_pending(&mut self) {
        self.overlay = Overlay::with_hash_seed(self.hash_seed);
    }

    /// The largest encoded txn `prepare` produces (the log's record bound);
    /// a larger one is refused with BADARGUMENTS before it changes anything.
    pub fn set_txn_bytes_max(&mut self, bytes: usize) {
        self.txn_bytes_max = bytes;
    }

    /// Whether prepared changes are waiting to be applied.
    pub fn has_pending(&self) -> bool {
        !self.overlay.is_empty()
    }
}

fn prepare_multi(
    staging: &mut Staging<'_>,
    caller: &Caller<'_>,
    ops: &[WriteOp],
    nulls: &Nulls,
) -> Result<Txn, PrepareError> {
    let mut txns = Vec::with_capacity(ops.len());
    for (index, op) in ops.iter().enumerate() {
        let result = match op {
            WriteOp::Multi(_) | WriteOp::CreateSession { .. } | WriteOp::CloseSession => {
                Err(ErrorCode::BadArguments)
            }
            op => prepare_one(staging, caller, op, nulls, index),
        };
        match result {
            Ok(txn) => txns.push(txn),
            // An exception other than a KeeperException escapes ZooKeeper's
            // loop over the ops and fails the whole request.
            Err(ErrorCode::MarshallingError) => {
                return Err(PrepareError::Op(ErrorCode::MarshallingError))
            }
            Err(code) => {
                let mut codes = vec![ErrorCode::Ok; index];
                codes.push(code);
                codes.resize(ops.len(), ErrorCode::RuntimeInconsistency);
                return Err(PrepareError::Multi(codes));
            }
        }
    }
    Ok(Txn::Multi(txns))
}

/// Prepares one write, or op `index` of a multi.
fn prepare_one(
    staging: &mut Staging<'_>,
    caller: &Caller<'_>,
    op: &WriteOp,
    nulls: &Nulls,
    index: usize,
) -> Result<Txn, ErrorCode> {
    match op {
        WriteOp::CreateSession { timeout_ms } => Ok(Txn::CreateSession {
            timeout_ms: *timeout_ms,
        }),
        WriteOp::CloseSession => Ok(close_session(staging, caller.session_id)),
        WriteOp::Create {
            path,
            data,
            acl,
            mode,
            ttl_ms,
        } => {
            let request = CreateRequest {
                path,
                data,
                acl,
                mode: *mode,
                ttl_ms: *ttl_ms,
            };
            create(staging, caller, &request, nulls, index)
        }
        // getParentPathAndValidate's lastIndexOf is the first thing to touch it.
        WriteOp::Delete { .. } if nulls.path(index) => Err(ErrorCode::MarshallingError),
        WriteOp::Delete { path, version } => delete(
            staging,
            caller,
            path,
            Deletion::Client { version: *version },
        ),
        WriteOp::DeleteContainer { path } => delete(staging, caller, path, Deletion::Reaper),
        WriteOp::DeleteEphemeral { path } => {
            let owner = staging.record(path)?.ephemeral_owner;
            if owner != caller.session_id {
                return Err(ErrorCode::BadArguments);
            }
            delete(staging, caller, path, Deletion::OwnEphemeral)
        }
        WriteOp::SetData {
            path,
            data,
            version,
        } => {
            path::validate(path)?;
            let mut node = staging.record(path)?;
            acl::check(&node.acl, perms::WRITE, caller.auth, staging.tree.providers)?;
            node.version = next_version(node.version, *version)?;
            let txn = Txn::SetData {
                path: path.clone(),
                data: data.clone(),
                version: node.version,
            };
            staging.put(path, Some(node));
            Ok(txn)
        }
        WriteOp::SetAcl { path, acl, version } => {
            path::validate(path)?;
            let fixed =
                acl::fixup_with_nulls(acl, caller.auth, nulls, index, staging.tree.providers)?;
            let mut node = staging.record(path)?;
            acl::check(&node.acl, perms::ADMIN, caller.auth, staging.tree.providers)?;
            node.aversion = next_version(node.aversion, *version)?;
            node.acl = fixed.as_slice().into();
            let txn = Txn::SetAcl {
                path: path.clone(),
                acl: fixed,
                version: node.aversion,
            };
            staging.put(path, Some(node));
            Ok(txn)
        }
        WriteOp::Check { path, version } => {
            path::validate(path)?;
            let node = staging.record(path)?;
            acl::check(&node.acl, perms::READ, caller.auth, staging.tree.providers)?;
            next_version(node.version, *version)?;
            Ok(Txn::Check { path: path.clone() })
        }
        WriteOp::Multi(_) => Err(ErrorCode::BadArguments),
    }
}

/// ZooKeeper's `checkAndIncVersion`: -1 matches any version; the next
/// version skips -1 (ZOOKEEPER-4743).
fn next_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    match current.wrapping_add(1) {
        -1 => Ok(0),
        next => Ok(next),
    }
}

/// A create's fields, borrowed from its [`WriteOp`].
struct CreateRequest<'a> {
    path: &'a str,
    data: &'a Data,
    acl: &'a [Acl],
    mode: CreateMode,
    ttl_ms: i64,
}

/// Create op `index`: ZooKeeper's checks in its order (pRequest2TxnCreate).
fn create(
    staging: &mut Staging<'_>,
    caller: &Caller<'_>,
    request: &CreateRequest<'_>,
    nulls: &Nulls,
    index: usize,
) -> Result<Txn, ErrorCode> {
    let CreateRequest {
        path: requested_path,
        data,
        acl,
        mode,
        ttl_ms,
    } = *request;
    if mode.is_ttl() && !staging.tree.extended_types_enabled {
        return Err(ErrorCode::Unimplemented);
    }
    let ttl_valid = if mode.is_ttl() {
        ttl_ms > 0 && ttl_ms <= TTL_MAX_MS
    } else {
        ttl_ms < 0
    };
    if !ttl_valid {
        return Err(ErrorCode::BadArguments);
    }
    // validatePathForCreate's lastIndexOf is the first thing to touch it.
    if nulls.path(index) {
        return Err(ErrorCode::MarshallingError);
    }
    let Some((parent_path, _)) = path::split(requested_path) else {
        return Err(ErrorCode::BadArguments);
    };
    let fixed_acl = acl::fixup_with_nulls(acl, caller.auth, nulls, index, staging.tree.providers)?;
    let mut parent = staging.record(parent_path)?;
    acl::check(
        &parent.acl,
        perms::CREATE,
        caller.auth,
        staging.tree.providers,
    )?;
    let path = if mode.is_sequential() {
        format!("{requested_path}{:010}", parent.cversion)
    } else {
        requested_path.to_string()
    };
    path::validate(&path)?;
    if staging.get(&path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if matches!(owner_kind(parent.ephemeral_owner), OwnerKind::Session(_)) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    let ephemeral_owner = if mode.is_container() {
        CONTAINER_OWNER
    } else if mode.is_ttl() {
        ttl_owner(ttl_ms)
    } else if mode.is_ephemeral() {
        caller.session_id
    } else {
        0
    };
    parent.cversion = parent.cversion.wrapping_add(1);
    parent.child_count += 1;
    let parent_cversion = parent.cversion;
    staging.put(parent_path, Some(parent));
    staging.put(
        &path,
        Some(Shadow {
            acl: fixed_acl.as_slice().into(),
            version: 0,
            aversion: 0,
            cversion: 0,
            child_count: 0,
            ephemeral_owner,
        }),
    );
    Ok(Txn::Create {
        path,
        data: data.clone(),
        acl: fixed_acl,
        ephemeral_owner,
        parent_cversion,
    })
}

/// `delete` (with the client's expected version) and the server's
/// `deleteContainer` (`version` is `None`: no ACL or version check, and only
/// containers and TTL nodes qualify).
/// Who deletes a node, and so what is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deletion {
    /// A client's delete: ACL and version.
    Client { version: i32 },
    /// The container/TTL reaper (ZooKeeper's deleteContainer): only
    /// containers and TTL nodes qualify.
    Reaper,
    /// A closing session's own ephemeral, deleted ahead of its closeSession.
    OwnEphemeral,
}

fn delete(
    staging: &mut Staging<'_>,
    caller: &Caller<'_>,
    path: &str,
    deletion: Deletion,
) -> Result<Txn, ErrorCode> {
    if path::is_special(path) {
        return Err(ErrorCode::BadArguments);
    }
    let Some((parent_path, _)) = path::split(path) else {
        return Err(ErrorCode::BadArguments);
    };
    let mut parent = staging.record(parent_path)?;
    let node = match deletion {
        Deletion::Client { version } => {
            acl::check(
                &parent.acl,
                perms::DELETE,
                caller.auth,
                staging.tree.providers,
            )?;
            let node = staging.record(path)?;
            next_version(node.version, version)?;
            node
        }
        Deletion::Reaper | Deletion::OwnEphemeral => staging.record(path)?,
    };
    if node.child_count > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    if deletion == Deletion::Reaper
        && matches!(owner_kind(node.ephemeral_owner), OwnerKind::Session(_))
    {
        return Err(ErrorCode::BadVersion);
    }
    parent.child_count -= 1;
    staging.put(parent_path, Some(parent));
    staging.put(path, None);
    Ok(Txn::Delete {
        path: path.to_string(),
    })
}

/// A closeSession of everything the session's ephemerals will be.
fn close_session(staging: &mut Staging<'_>, session_id: i64) -> Txn {
    let paths = staging.ephemerals_as_prepared(session_id);
    for path in &paths {
        if let Some((parent_path, _)) = path::split(path) {
            if let Some(mut parent) = staging.get(parent_path) {
                parent.child_count = parent.child_count.saturating_sub(1);
                staging.put(parent_path, Some(parent));
            }
        }
        staging.put(path, None);
    }
    Txn::CloseSession { paths }
}
