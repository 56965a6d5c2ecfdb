//! Random interleavings of client requests, log completions, ticks and
//! disconnects: the node's invariants hold after every step, every
//! connection's replies are its requests in order, and the tree equals the
//! one built by applying the logged txns in order to a fresh tree.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::*;
use node::{ConnId, Input};
use proptest::prelude::*;
use proto::ops::Request;
use proto::CreateMode;

#[derive(Debug, Clone)]
enum Step {
    Connect,
    /// A request on the connection picked by index.
    Request {
        conn: usize,
        op: Op,
    },
    Durable,
    Tick {
        advance_ms: u64,
    },
    Disconnect {
        conn: usize,
    },
}

#[derive(Debug, Clone)]
enum Op {
    Create { path: usize, ephemeral: bool },
    SetData { path: usize, version: i32 },
    Delete { path: usize },
    GetData { path: usize, watch: bool },
    Exists { path: usize, watch: bool },
    Sync,
    CloseSession,
}

const PATHS: [&str; 4] = ["/a", "/b", "/a/c", "/d"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..PATHS.len(), any::<bool>()).prop_map(|(path, ephemeral)| Op::Create { path, ephemeral }),
        2 => (0..PATHS.len(), -1..2i32).prop_map(|(path, version)| Op::SetData { path, version }),
        2 => (0..PATHS.len()).prop_map(|path| Op::Delete { path }),
        2 => (0..PATHS.len(), any::<bool>()).prop_map(|(path, watch)| Op::GetData { path, watch }),
        2 => (0..PATHS.len(), any::<bool>()).prop_map(|(path, watch)| Op::Exists { path, watch }),
        1 => Just(Op::Sync),
        1 => Just(Op::CloseSession),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => Just(Step::Connect),
        8 => (0..4usize, op()).prop_map(|(conn, op)| Step::Request { conn, op }),
        4 => Just(Step::Durable),
        1 => (0..6000u64).prop_map(|advance_ms| Step::Tick { advance_ms }),
        1 => (0..4usize).prop_map(|conn| Step::Disconnect { conn }),
    ]
}

fn request(op: &Op) -> Request {
    match op {
        Op::Create { path, ephemeral } => {
            let mode = if *ephemeral {
                CreateMode::Ephemeral
            } else {
                CreateMode::Persistent
            };
            create(PATHS[*path], b"v", mode.code())
        }
        Op::SetData { path, version } => set_data(PATHS[*path], b"w", *version),
        Op::Delete { path } => Request::Delete(proto::ops::DeleteRequest {
            path: PATHS[*path].into(),
            version: -1,
        }),
        Op::GetData { path, watch } => get_data(PATHS[*path], *watch),
        Op::Exists { path, watch } => exists(PATHS[*path], *watch),
        Op::Sync => Request::Sync(proto::ops::SyncRequest { path: "/".into() }),
        Op::CloseSession => Request::CloseSession,
    }
}

/// Per connection: the xids sent, and the reply xids seen.
#[derive(Debug, Default)]
struct Traffic {
    sent: Vec<i32>,
    replied: Vec<i32>,
    closed: bool,
}

fn run(steps: Vec<Step>) {
    let mut h = Harness::new(settings());
    let mut conns: Vec<ConnId> = Vec::new();
    let mut traffic: BTreeMap<ConnId, Traffic> = BTreeMap::new();
    let mut next_xid = 1;
    let mut all = Vec::new();
    for step in steps {
        let actions = match step {
            Step::Connect => {
                let conn = h.new_conn();
                conns.push(conn);
                traffic.insert(conn, Traffic::default());
                let request = proto::ConnectRequest {
                    protocol_version: 0,
                    last_zxid_seen: 0,
                    timeout_ms: 4000,
                    session_id: 0,
                    password: vec![0; 16],
                    read_only: None,
                };
                h.connect_with(conn, request)
            }
            Step::Request { conn, op } if !conns.is_empty() => {
                let conn = conns[conn % conns.len()];
                let xid = next_xid;
                next_xid += 1;
                traffic.get_mut(&conn).unwrap().sent.push(xid);
                h.send(conn, vec![(xid, request(&op))])
            }
            Step::Durable if h.append_in_flight.is_some() => h.durable(),
            Step::Tick { advance_ms } => {
                h.advance(Duration::from_millis(advance_ms));
                h.step(Input::Tick)
            }
            Step::Disconnect { conn } if !conns.is_empty() => {
                let conn = conns.remove(conn % conns.len());
                traffic.get_mut(&conn).unwrap().closed = true;
                h.step(Input::Closed { conn })
            }
            _ => Vec::new(),
        };
        all.extend(actions);
    }
    all.extend(h.settle());
    let closed_by_node = closes(&all);
    for (conn, t) in &mut traffic {
        t.replied = frames_to(&all, *conn)
            .iter()
            .filter(|f| f.xid > 0)
            .map(|f| f.xid)
            .collect();
        // The handshake reply is not a counted request (xid 0 frames are
        // ConnectResponses, not parsed as replies here).
        assert!(
            t.sent.starts_with(&t.replied),
            "conn {conn}: replies {:?} are not the requests {:?} in order",
            t.replied,
            t.sent
        );
        if !t.closed && !closed_by_node.contains(conn) {
            assert_eq!(t.replied, t.sent, "conn {conn}: every request answered");
        }
    }
    // Replaying the log in order onto a fresh tree gives the same tree.
    let mut replayed = tree::DataTree::new();
    for record in &h.log {
        let (header, txn) = tree::decode_record(&record.payload).expect("logged records decode");
        replayed.apply(&header, &txn);
    }
    assert_eq!(replayed.last_processed_zxid(), h.node.zxid_applied());
    assert_eq!(replayed.digest(), h.node.tree().digest());
    assert_eq!(
        h.node.zxid_applied(),
        h.node.zxid_prepared(),
        "everything settled"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_interleavings_keep_the_invariants(steps in prop::collection::vec(step(), 1..120)) {
        run(steps);
    }
}
