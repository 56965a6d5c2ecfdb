//! The tree's write semantics, case by case, as Apache ZooKeeper defines them
//! (PrepRequestProcessor for validation order, DataTree for Stat fields).

mod common;

use common::{create, delete, persistent, set_data, Driver};
use proto::{perms, Acl, CreateMode, ErrorCode, EventType, Id};
use tree::acl::digest_id;
use tree::{Caller, PrepareError, TxnResult, WatchLists, WriteOp};

const ANYONE: Caller<'static> = Caller {
    session_id: 1,
    auth: &[],
};

fn op_error(code: ErrorCode) -> Result<TxnResult, PrepareError> {
    Err(PrepareError::Op(code))
}

#[test]
fn create_sets_stat_fields_and_moves_the_parent() {
    // Proves czxid/mzxid/pzxid/ctime/mtime on create and the parent's cversion, pzxid and numChildren.
    let mut d = Driver::new();
    d.write(1, persistent("/a")).unwrap();
    let TxnResult::Created { path, stat } = d.write(1, persistent("/a/b")).unwrap() else {
        panic!("create answers Created");
    };
    assert_eq!(path, "/a/b");
    assert_eq!((stat.czxid, stat.mzxid, stat.pzxid), (2, 2, 2));
    assert_eq!(stat.ctime, stat.mtime);
    assert_eq!((stat.version, stat.cversion, stat.aversion), (0, 0, 0));
    assert_eq!(stat.data_length, 4);
    let parent = d.tree.node("/a").unwrap().stat();
    assert_eq!(
        (parent.cversion, parent.pzxid, parent.num_children),
        (1, 2, 1)
    );
    assert_eq!(
        parent.mzxid, 1,
        "a child create does not touch the parent's mzxid"
    );
    d.tree.check_invariants();
}

#[test]
fn delete_moves_pzxid_and_reported_cversion() {
    // Proves a child delete raises the parent's pzxid and reported cversion (creates + deletes).
    let mut d = Driver::new();
    d.write(1, persistent("/a")).unwrap();
    d.write(1, persistent("/a/b")).unwrap();
    d.write(1, delete("/a/b", 0)).unwrap();
    let parent = d.tree.node("/a").unwrap().stat();
    assert_eq!(
        (parent.cversion, parent.pzxid, parent.num_children),
        (2, 3, 0)
    );
    assert_eq!(d.write(1, delete("/a/b", -1)), op_error(ErrorCode::NoNode));
    d.tree.check_invariants();
}

#[test]
fn sequential_suffix_is_the_stored_parent_cversion() {
    // Proves the 10-digit suffix counts child creates, not deletes.
    let mut d = Driver::new();
    d.write(1, persistent("/q")).unwrap();
    d.write(1, persistent("/q/x")).unwrap();
    d.write(1, delete("/q/x", -1)).unwrap();
    let TxnResult::Created { path, .. } = d
        .write(1, create("/q/n-", CreateMode::PersistentSequential))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(path, "/q/n-0000000001");
    let TxnResult::Created { path, .. } = d
        .write(1, create("/q/", CreateMode::EphemeralSequential))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        path, "/q/0000000002",
        "a trailing slash is allowed for sequential creates"
    );
}

#[test]
fn create_errors_follow_zookeepers_order() {
    // Proves NoNode, NodeExists, NoChildrenForEphemerals, BadArguments and InvalidAcl, in PrepRequestProcessor's order.
    let mut d = Driver::new();
    assert_eq!(d.write(1, persistent("/x/y")), op_error(ErrorCode::NoNode));
    d.write(1, persistent("/x")).unwrap();
    assert_eq!(
        d.write(1, persistent("/x")),
        op_error(ErrorCode::NodeExists)
    );
    d.write(1, create("/e", CreateMode::Ephemeral)).unwrap();
    assert_eq!(
        d.write(1, persistent("/e/c")),
        op_error(ErrorCode::NoChildrenForEphemerals)
    );
    assert_eq!(
        d.write(1, persistent("/x/")),
        op_error(ErrorCode::BadArguments)
    );
    assert_eq!(
        d.write(1, persistent("/x/.")),
        op_error(ErrorCode::BadArguments)
    );
    // "/x/." is looked up as the parent before the full path is validated.
    assert_eq!(
        d.write(1, persistent("/x/./y")),
        op_error(ErrorCode::NoNode)
    );
    assert_eq!(
        d.write(1, persistent("nope")),
        op_error(ErrorCode::BadArguments)
    );
    // The parent is looked up before the full path is validated, as ZooKeeper does.
    assert_eq!(
        d.write(1, persistent("/missing/")),
        op_error(ErrorCode::NoNode)
    );
    let no_acl = WriteOp::Create {
        path: "/z".into(),
        data: Some(vec![]),
        acl: vec![],
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    };
    assert_eq!(d.write(1, no_acl), op_error(ErrorCode::InvalidAcl));
}

#[test]
fn ttl_nodes_need_extended_types_and_a_valid_ttl() {
    // Proves createTTL's checks: UNIMPLEMENTED when disabled, BADARGUMENTS for a bad TTL.
    let mut d = Driver::new();
    let ttl = |ttl_ms| WriteOp::Create {
        path: "/t".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::PersistentWithTtl,
        ttl_ms,
    };
    assert_eq!(d.write(1, ttl(0)), op_error(ErrorCode::BadArguments));
    assert_eq!(d.write(1, ttl(1 << 41)), op_error(ErrorCode::BadArguments));
    let TxnResult::Created { stat, .. } = d.write(1, ttl(5_000)).unwrap() else {
        panic!()
    };
    assert_eq!(stat.ephemeral_owner, 0, "clients see 0 for TTL nodes");
    d.tree.set_extended_types_enabled(false);
    assert_eq!(d.write(1, ttl(5_000)), op_error(ErrorCode::Unimplemented));
}

#[test]
fn versions_are_checked_and_skip_minus_one() {
    // Proves BadVersion and ZOOKEEPER-4743: the version after i32::MAX wraps to MIN, and -1 is skipped.
    let mut d = Driver::new();
    d.write(1, persistent("/v")).unwrap();
    assert_eq!(
        d.write(1, set_data("/v", b"x", 3)),
        op_error(ErrorCode::BadVersion)
    );
    let TxnResult::DataSet { stat } = d.write(1, set_data("/v", b"x", 0)).unwrap() else {
        panic!()
    };
    assert_eq!((stat.version, stat.data_length), (1, 1));
    assert!(stat.mzxid > stat.czxid);
    d.tree.discard_pending();
    let node_version = |d: &Driver| d.tree.node("/v").unwrap().version;
    // Drive the version to -2 through the public path is too slow; check the rule on the boundary instead.
    let mut boundary = Driver::new();
    boundary.write(1, persistent("/v")).unwrap();
    let (header, _) = boundary.prepare(1, &set_data("/v", b"", -1)).unwrap();
    let txn = tree::Txn::SetData {
        path: "/v".into(),
        data: Some(vec![]),
        version: -2,
    };
    boundary.apply(header, txn);
    assert_eq!(node_version(&boundary), -2);
    let TxnResult::DataSet { stat } = boundary.write(1, set_data("/v", b"", -2)).unwrap() else {
        panic!()
    };
    assert_eq!(stat.version, 0, "-1 is never a version");
    assert_eq!(node_version(&d), 1);
}

#[test]
fn delete_checks_acl_version_children_and_special_paths() {
    // Proves delete's errors: BadArguments for special paths, NoAuth on the parent, BadVersion, NotEmpty.
    let mut d = Driver::new();
    assert_eq!(
        d.write(1, delete("/zookeeper", -1)),
        op_error(ErrorCode::BadArguments)
    );
    assert_eq!(
        d.write(1, delete("/", -1)),
        op_error(ErrorCode::BadArguments)
    );
    let alice = [Id::new("digest", digest_id("alice:pw"))];
    let locked = WriteOp::Create {
        path: "/locked".into(),
        data: Some(vec![]),
        acl: vec![Acl {
            perms: perms::ALL & !perms::DELETE,
            id: Id::new("world", "anyone"),
        }],
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    };
    d.write_as(1, &alice, locked).unwrap();
    d.write(1, persistent("/locked/child")).unwrap();
    assert_eq!(
        d.write(1, delete("/locked/child", -1)),
        op_error(ErrorCode::NoAuth)
    );
    assert_eq!(
        d.write(1, delete("/locked", 5)),
        op_error(ErrorCode::BadVersion)
    );
    assert_eq!(
        d.write(1, delete("/locked", 0)),
        op_error(ErrorCode::NotEmpty)
    );
}

#[test]
fn pipelined_writes_see_each_other_before_they_are_applied() {
    // Proves the overlay: prepares in flight validate against earlier prepares, then vanish once applied.
    let mut d = Driver::new();
    let first = d.prepare(1, &persistent("/p")).unwrap();
    assert_eq!(
        d.prepare(1, &persistent("/p")),
        Err(PrepareError::Op(ErrorCode::NodeExists))
    );
    let child = d
        .prepare(1, &create("/p/s-", CreateMode::PersistentSequential))
        .unwrap();
    let second_child = d
        .prepare(1, &create("/p/s-", CreateMode::PersistentSequential))
        .unwrap();
    let set = d.prepare(1, &set_data("/p", b"v", 0)).unwrap();
    assert_eq!(
        d.prepare(1, &set_data("/p", b"v", 0)),
        Err(PrepareError::Op(ErrorCode::BadVersion))
    );
    assert_eq!(
        d.prepare(1, &delete("/p", -1)),
        Err(PrepareError::Op(ErrorCode::NotEmpty))
    );
    for (header, txn) in [first, child, second_child, set] {
        d.apply(header, txn);
    }
    assert!(!d.tree.has_pending());
    let names: Vec<_> = d
        .tree
        .node("/p")
        .unwrap()
        .children
        .iter()
        .cloned()
        .collect();
    assert_eq!(names, vec!["s-0000000000", "s-0000000001"]);
    d.tree.check_invariants();
}

#[test]
fn failed_multi_leaves_nothing_behind() {
    // Proves multi is all-or-nothing in prepare: per-op codes, and no pending change survives the failure.
    let mut d = Driver::new();
    d.write(1, persistent("/m")).unwrap();
    let multi = WriteOp::Multi(vec![
        persistent("/m/a"),
        set_data("/m", b"", 7),
        persistent("/m/b"),
    ]);
    assert_eq!(
        d.write(1, multi),
        Err(PrepareError::Multi(vec![
            ErrorCode::Ok,
            ErrorCode::BadVersion,
            ErrorCode::RuntimeInconsistency
        ]))
    );
    assert!(!d.tree.has_pending());
    let TxnResult::Created { path, .. } = d
        .write(1, create("/m/s", CreateMode::PersistentSequential))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        path, "/m/s0000000000",
        "the failed multi's create did not bump the parent"
    );
    let ok = WriteOp::Multi(vec![
        persistent("/m/a"),
        persistent("/m/a/b"),
        delete("/m/a/b", 0),
        set_data("/m", b"x", 0),
    ]);
    let TxnResult::Multi(results) = d.write(1, ok).unwrap() else {
        panic!()
    };
    assert_eq!(results.len(), 4);
    assert!(d.tree.node("/m/a").is_some() && d.tree.node("/m/a/b").is_none());
    d.tree.check_invariants();
}

#[test]
fn close_session_removes_ephemerals_including_pending_ones() {
    // Proves closeSession deletes the session's ephemerals, even one still in flight, and fires NodeDeleted.
    let mut d = Driver::new();
    d.write(7, WriteOp::CreateSession { timeout_ms: 4000 })
        .unwrap();
    d.write(7, create("/e1", CreateMode::Ephemeral)).unwrap();
    d.tree
        .exists(
            &Caller {
                session_id: 9,
                auth: &[],
            },
            "/e1",
            true,
        )
        .unwrap();
    let pending = d.prepare(7, &create("/e2", CreateMode::Ephemeral)).unwrap();
    let (close_header, close) = d.prepare(7, &WriteOp::CloseSession).unwrap();
    assert_eq!(
        close,
        tree::Txn::CloseSession {
            paths: vec!["/e1".into(), "/e2".into()]
        }
    );
    d.apply(pending.0, pending.1);
    let applied = d.tree.apply(&close_header, &close);
    assert!(applied
        .events
        .iter()
        .any(|e| e.session_id == 9 && e.event_type == EventType::NodeDeleted));
    assert!(d.tree.node("/e1").is_none() && d.tree.node("/e2").is_none());
    assert!(!d.tree.has_session(7));
    assert_eq!(d.tree.ephemeral_count(), 0);
    d.tree.check_invariants();
}

#[test]
fn reads_check_acls_and_hide_digests() {
    // Proves READ checks, getACL's READ|ADMIN rule and digest masking (CVE-2019-0201), and super.
    let mut d = Driver::new();
    let alice = [Id::new("digest", digest_id("alice:pw"))];
    let private = WriteOp::Create {
        path: "/private".into(),
        data: Some(b"s".to_vec()),
        acl: vec![Acl {
            perms: perms::ALL,
            id: Id::new("auth", ""),
        }],
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    };
    d.write_as(1, &alice, private).unwrap();
    let alice_caller = Caller {
        session_id: 1,
        auth: &alice,
    };
    assert_eq!(
        d.tree.get_data(&ANYONE, "/private", false),
        Err(ErrorCode::NoAuth)
    );
    assert_eq!(d.tree.get_acl(&ANYONE, "/private"), Err(ErrorCode::NoAuth));
    assert_eq!(
        d.tree.get_data(&alice_caller, "/private", false).unwrap().0,
        Some(b"s".to_vec())
    );
    let (acl, _) = d.tree.get_acl(&alice_caller, "/private").unwrap();
    assert_eq!(acl[0].id, alice[0], "ADMIN sees the digest");
    let reader_only = [Id::new("digest", digest_id("bob:pw"))];
    let shared = WriteOp::SetAcl {
        path: "/private".into(),
        acl: vec![
            Acl {
                perms: perms::ALL,
                id: alice[0].clone(),
            },
            Acl {
                perms: perms::READ,
                id: reader_only[0].clone(),
            },
        ],
        version: 0,
    };
    d.write_as(1, &alice, shared).unwrap();
    let (acl, stat) = d
        .tree
        .get_acl(
            &Caller {
                session_id: 2,
                auth: &reader_only,
            },
            "/private",
        )
        .unwrap();
    assert_eq!(
        acl[0].id.id, "alice:x",
        "READ without ADMIN sees masked digests"
    );
    assert_eq!(stat.aversion, 1);
    let root = [Id::new("super", "")];
    assert!(d
        .tree
        .get_data(
            &Caller {
                session_id: 3,
                auth: &root
            },
            "/private",
            false
        )
        .is_ok());
    // exists checks no ACL at all (FinalRequestProcessor: statNode only).
    let private = d.tree.node("/private").unwrap().stat();
    assert_eq!(d.tree.exists(&ANYONE, "/private", false), Ok(private));
    assert_eq!(
        d.tree.exists(&ANYONE, "/nothing", false),
        Err(ErrorCode::NoNode)
    );
}

#[test]
fn exists_answers_and_watches_nodes_the_caller_cannot_read() {
    // Proves exists checks no ACL (ZooKeeper 3.8 FinalRequestProcessor) and
    // still leaves its data watch, which fires on the next change.
    let mut d = Driver::new();
    let owner = [Id::new("digest", digest_id("owner:pw"))];
    let locked = WriteOp::Create {
        path: "/locked".into(),
        data: Some(b"x".to_vec()),
        acl: vec![Acl {
            perms: perms::ALL,
            id: owner[0].clone(),
        }],
        mode: CreateMode::Persistent,
        ttl_ms: -1,
    };
    d.write_as(1, &owner, locked).unwrap();
    let stranger = Caller {
        session_id: 7,
        auth: &[],
    };
    let stat = d.tree.exists(&stranger, "/locked", true).unwrap();
    assert_eq!(stat, d.tree.node("/locked").unwrap().stat());
    assert_eq!(d.tree.watches.count_for_session(7), 1);
    assert_eq!(
        d.tree.get_data(&stranger, "/locked", false),
        Err(ErrorCode::NoAuth),
        "getData still checks READ"
    );
    d.tree.check_invariants();
}

#[test]
fn set_watches_fires_for_changes_missed_while_disconnected() {
    // Proves setWatches' relative-zxid rules (DataTree.setWatches).
    let mut d = Driver::new();
    d.write(1, persistent("/same")).unwrap();
    d.write(1, persistent("/changed")).unwrap();
    let seen = d.zxid;
    d.write(1, set_data("/changed", b"new", -1)).unwrap();
    d.write(1, persistent("/changed/kid")).unwrap();
    d.write(1, persistent("/born")).unwrap();
    let data = vec!["/same".to_string(), "/changed".into(), "/gone".into()];
    let exist = vec!["/born".to_string(), "/unborn".into()];
    let child = vec!["/same".to_string(), "/changed".into()];
    let lists = WatchLists {
        data: &data,
        exist: &exist,
        child: &child,
        ..WatchLists::default()
    };
    let events = d.tree.set_watches(5, seen, &lists);
    let fired: Vec<(&str, EventType)> = events
        .iter()
        .map(|e| (e.path.as_str(), e.event_type))
        .collect();
    assert_eq!(
        fired,
        vec![
            ("/changed", EventType::NodeDataChanged),
            ("/gone", EventType::NodeDeleted),
            ("/born", EventType::NodeCreated),
            ("/changed", EventType::NodeChildrenChanged),
        ]
    );
    assert_eq!(
        d.tree.watches.count_for_session(5),
        3,
        "/same data, /unborn exist, /same child"
    );
}

#[test]
fn containers_and_ttls_are_reaped_only_when_due() {
    // Proves ContainerManager's rules: containers once they had a child and are empty; TTLs after their TTL.
    let mut d = Driver::new();
    d.write(1, create("/c", CreateMode::Container)).unwrap();
    let ttl = WriteOp::Create {
        path: "/t".into(),
        data: Some(vec![]),
        acl: Acl::open_unsafe(),
        mode: CreateMode::PersistentWithTtl,
        ttl_ms: 100,
    };
    d.write(1, ttl).unwrap();
    let created = d.tree.node("/t").unwrap().mtime;
    assert!(
        d.tree.reap_candidates(created + 50, 10).is_empty(),
        "never-used container and young TTL stay"
    );
    d.write(1, persistent("/c/kid")).unwrap();
    assert!(
        d.tree.reap_candidates(created + 50, 10).is_empty(),
        "container with a child stays"
    );
    d.write(1, delete("/c/kid", -1)).unwrap();
    assert_eq!(
        d.tree.reap_candidates(created + 101, 10),
        vec!["/c".to_string(), "/t".to_string()]
    );
    d.write(0, WriteOp::DeleteContainer { path: "/c".into() })
        .unwrap();
    d.write(1, persistent("/plain")).unwrap();
    d.write(1, create("/eph", CreateMode::Ephemeral)).unwrap();
    assert_eq!(
        d.write(
            0,
            WriteOp::DeleteContainer {
                path: "/eph".into()
            }
        ),
        op_error(ErrorCode::BadVersion),
        "deleteContainer refuses session ephemerals"
    );
    d.tree.check_invariants();
}
