//! Writes and watch restores whose requests carried jute nulls: each null
//! fails where Apache ZooKeeper 3.8 first touches it (proto's `nulls` table),
//! after the checks that come before it.

mod common;

use common::{persistent, Driver};
use proto::{perms, Acl, CreateMode, ErrorCode, EventType, Id, NullAt, Nulls, WatchList};
use tree::acl::digest_id;
use tree::{Caller, PrepareError, Txn, WatchLists, WriteOp};

fn nulls(at: &[NullAt]) -> Nulls {
    at.iter().copied().collect()
}

const PATH: NullAt = NullAt::Path { op: 0 };

fn create(path: &str, scheme: &str, mode: CreateMode, ttl_ms: i64) -> WriteOp {
    WriteOp::Create {
        path: path.into(),
        data: None,
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id::new(scheme, ""),
        }],
        mode,
        ttl_ms,
    }
}

/// Prepares `op` with `nulls` as session 1 with `auth`, at the next zxid.
fn prepare(d: &mut Driver, auth: &[Id], op: &WriteOp, nulls: &Nulls) -> Result<Txn, PrepareError> {
    let caller = Caller {
        session_id: 1,
        auth,
    };
    d.tree.prepare_with_nulls(&caller, op, nulls, d.zxid + 1)
}

fn refused(code: ErrorCode) -> Result<Txn, PrepareError> {
    Err(PrepareError::Op(code))
}

#[test]
fn a_null_create_path_fails_after_the_mode_and_ttl_checks() {
    // Proves create's null path is MARSHALLINGERROR, but an invalid TTL or a
    // TTL mode without extended types fails first, and "" stays BADARGUMENTS.
    let mut d = Driver::new();
    let null_path = nulls(&[PATH]);
    let world = WriteOp::Create {
        path: String::new(),
        data: None,
        acl: Acl::open_unsafe(),
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    };
    assert_eq!(
        prepare(&mut d, &[], &world, &null_path),
        refused(ErrorCode::MarshallingError)
    );
    assert_eq!(
        prepare(&mut d, &[], &world, &Nulls::NONE),
        refused(ErrorCode::BadArguments)
    );
    let bad_ttl = create("", "world", CreateMode::PersistentWithTtl, 0);
    assert_eq!(
        prepare(&mut d, &[], &bad_ttl, &null_path),
        refused(ErrorCode::BadArguments)
    );
    d.tree.set_extended_types_enabled(false);
    let ttl = create("", "world", CreateMode::PersistentWithTtl, 1000);
    assert_eq!(
        prepare(&mut d, &[], &ttl, &null_path),
        refused(ErrorCode::Unimplemented)
    );
    assert!(!d.tree.has_pending(), "refusals leave nothing pending");
}

#[test]
fn null_acl_fields_in_create_and_set_acl() {
    // Proves kazoo's CREATOR_ALL_ACL (auth with a null id) stores the caller's
    // digest, a null scheme is INVALIDACL, and a null world id is MARSHALLINGERROR.
    let mut d = Driver::new();
    let alice = [Id::new("digest", digest_id("alice:pw"))];
    let id_null = nulls(&[NullAt::AclId { op: 0, entry: 0 }]);
    let creator_all = create("/mine", "auth", CreateMode::Persistent, -1);
    let (header, txn) = {
        let txn = prepare(&mut d, &alice, &creator_all, &id_null).unwrap();
        d.zxid += 1;
        let header = tree::TxnHeader {
            session_id: 1,
            cxid: 0,
            zxid: d.zxid,
            time_ms: 5,
        };
        (header, txn)
    };
    d.apply(header, txn);
    assert_eq!(
        d.tree.node("/mine").unwrap().acl.to_vec(),
        vec![Acl {
            perms: perms::ALL,
            id: alice[0].clone()
        }]
    );
    let scheme_null = nulls(&[NullAt::AclScheme { op: 0, entry: 0 }]);
    let unnamed = create("/x", "", CreateMode::Persistent, -1);
    assert_eq!(
        prepare(&mut d, &alice, &unnamed, &scheme_null),
        refused(ErrorCode::InvalidAcl)
    );
    let world = create("/x", "world", CreateMode::Persistent, -1);
    assert_eq!(
        prepare(&mut d, &alice, &world, &id_null),
        refused(ErrorCode::MarshallingError)
    );
    let set_acl = |path: &str, scheme: &str| WriteOp::SetAcl {
        path: path.into(),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id::new(scheme, ""),
        }],
        version: -1,
    };
    assert!(prepare(&mut d, &alice, &set_acl("/mine", "auth"), &id_null).is_ok());
    assert_eq!(
        prepare(&mut d, &[], &set_acl("/mine", "auth"), &id_null),
        refused(ErrorCode::InvalidAcl)
    );
    assert_eq!(
        prepare(&mut d, &alice, &set_acl("", "auth"), &nulls(&[PATH])),
        refused(ErrorCode::BadArguments),
        "setACL validates its path first"
    );
}

#[test]
fn a_null_delete_path_fails_before_anything_else() {
    // Proves delete's null path is MARSHALLINGERROR (lastIndexOf comes first),
    // while "" is BADARGUMENTS.
    let mut d = Driver::new();
    let delete = WriteOp::Delete {
        path: String::new(),
        version: -1,
    };
    assert_eq!(
        prepare(&mut d, &[], &delete, &nulls(&[PATH])),
        refused(ErrorCode::MarshallingError)
    );
    assert_eq!(
        prepare(&mut d, &[], &delete, &Nulls::NONE),
        refused(ErrorCode::BadArguments)
    );
}

#[test]
fn multi_nulls_fail_the_whole_request_or_their_op() {
    // Proves a null op path fails the whole multi before any op, a null world
    // id fails the whole multi when its op is reached (an earlier failing op
    // hides it), and a null scheme is an ordinary per-op INVALIDACL.
    let mut d = Driver::new();
    d.write(1, persistent("/p")).unwrap();
    let check = |path: &str| WriteOp::Check {
        path: path.into(),
        version: -1,
    };
    let multi = |ops: Vec<WriteOp>| WriteOp::Multi(ops);
    let second_path = nulls(&[NullAt::Path { op: 1 }]);
    assert_eq!(
        prepare(
            &mut d,
            &[],
            &multi(vec![check("/p"), check("")]),
            &second_path
        ),
        refused(ErrorCode::MarshallingError)
    );
    let world_null = nulls(&[NullAt::AclId { op: 1, entry: 0 }]);
    let world = create("/p/w", "world", CreateMode::Persistent, -1);
    assert_eq!(
        prepare(
            &mut d,
            &[],
            &multi(vec![check("/p"), world.clone()]),
            &world_null
        ),
        refused(ErrorCode::MarshallingError)
    );
    assert_eq!(
        prepare(
            &mut d,
            &[],
            &multi(vec![check("/nope"), world]),
            &world_null
        ),
        Err(PrepareError::Multi(vec![
            ErrorCode::NoNode,
            ErrorCode::RuntimeInconsistency
        ]))
    );
    let scheme_null = nulls(&[NullAt::AclScheme { op: 0, entry: 0 }]);
    let unnamed = create("/p/s", "", CreateMode::Persistent, -1);
    assert_eq!(
        prepare(
            &mut d,
            &[],
            &multi(vec![unnamed, check("/p")]),
            &scheme_null
        ),
        Err(PrepareError::Multi(vec![
            ErrorCode::InvalidAcl,
            ErrorCode::RuntimeInconsistency
        ]))
    );
    assert!(!d.tree.has_pending());
}

#[test]
fn watch_restores_stop_at_a_null_and_keep_what_came_before() {
    // Proves setWatches restores the lists before a null list or a null
    // looked-up path (their events included) and then fails, while a null
    // path of a persistent list is skipped.
    let mut d = Driver::new();
    d.write(1, persistent("/n")).unwrap();
    let strings = |paths: &[&str]| paths.iter().map(|p| p.to_string()).collect::<Vec<_>>();
    let data = strings(&["/n"]);
    let exist = strings(&["/gone"]);
    let child = strings(&["/n"]);
    let lists = WatchLists {
        data: &data,
        exist: &exist,
        child: &child,
        ..WatchLists::default()
    };
    // The child list was null: data and exist are restored, then MARSHALLINGERROR.
    let child_null = nulls(&[NullAt::WatchList {
        list: WatchList::Child,
    }]);
    let no_child = WatchLists {
        child: &[],
        ..lists
    };
    let (events, result) = d.tree.set_watches_with_nulls(9, 0, &no_child, &child_null);
    assert_eq!(result, Err(ErrorCode::MarshallingError));
    let fired: Vec<_> = events
        .iter()
        .map(|e| (e.event_type, e.path.as_str()))
        .collect();
    assert_eq!(fired, vec![(EventType::NodeDataChanged, "/n")]);
    assert_eq!(
        d.tree.watches.count_for_session(9),
        1,
        "the exist watch on /gone"
    );
    // A null data path stops before anything.
    let data_path_null = nulls(&[NullAt::WatchPath {
        list: WatchList::Data,
        index: 0,
    }]);
    let (events, result) = d
        .tree
        .set_watches_with_nulls(10, 0, &lists, &data_path_null);
    assert_eq!(
        (events.len(), result),
        (0, Err(ErrorCode::MarshallingError))
    );
    assert_eq!(d.tree.watches.count_for_session(10), 0);
    // A null persistent path is skipped; the rest is restored.
    let persistent = strings(&["", "/n"]);
    let with_persistent = WatchLists {
        persistent: &persistent,
        ..WatchLists::default()
    };
    let persistent_null = nulls(&[NullAt::WatchPath {
        list: WatchList::Persistent,
        index: 0,
    }]);
    let (events, result) = d
        .tree
        .set_watches_with_nulls(11, 0, &with_persistent, &persistent_null);
    assert_eq!((events.len(), result), (0, Ok(())));
    assert_eq!(d.tree.watches.count_for_session(11), 1, "only /n");
    d.tree.check_invariants();
}
