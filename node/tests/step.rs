//! The node driven step by step with no runtime: each test feeds inputs and
//! asserts the exact actions that come out.

mod common;

use std::time::Duration;

use common::*;
use node::{Action, Input, Level, Settings, StorageFailure};
use proto::ops::{Request, Response};
use proto::{ConnectRequest, ErrorCode, EventType, OpCode};

/// A write is appended and answered only once durable; a read behind it on
/// the same connection waits for it, and both leave in request order.
#[test]
fn replies_leave_in_request_order_after_the_write_is_durable() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    let zxid_before = h.node.zxid_applied();
    let actions = h.send(
        conn,
        vec![
            (1, create("/a", b"x", 0)),
            (2, get_data("/a", false)),
            (3, exists("/missing", false)),
        ],
    );
    // The create is prepared and handed to the log; nothing is answered yet.
    let records = appends(&actions);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].len(), 1);
    assert_eq!(records[0][0].zxid, zxid_before + 1);
    assert!(
        frames_to(&actions, conn).is_empty(),
        "no reply before durable"
    );

    let actions = h.durable();
    let frames = frames_to(&actions, conn);
    assert_eq!(
        frames.iter().map(|f| f.xid).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(frames[0].error(), ErrorCode::Ok);
    assert_eq!(frames[0].zxid, zxid_before + 1);
    match frames[1].response(OpCode::GetData) {
        Response::GetData(r) => assert_eq!(r.data, Some(b"x".to_vec())),
        other => panic!("{other:?}"),
    }
    assert_eq!(frames[2].error(), ErrorCode::NoNode);
    // One Send for the connection's whole turn, counting three replies.
    let sends: Vec<usize> = actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { replies, .. } => Some(*replies),
            _ => None,
        })
        .collect();
    assert_eq!(sends, vec![3]);
}

/// Reads on another connection do not wait for this connection's write.
#[test]
fn reads_on_other_connections_are_answered_at_once() {
    let mut h = Harness::new(settings());
    let (writer, _) = h.connect(10_000);
    let (reader, _) = h.connect(10_000);
    let mut actions = h.send(writer, vec![(1, create("/w", b"", 0))]);
    actions.extend(h.send(reader, vec![(7, exists("/w", false))]));
    let frames = frames_to(&actions, reader);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].xid, 7);
    assert_eq!(
        frames[0].error(),
        ErrorCode::NoNode,
        "the write is not applied yet"
    );
    assert!(frames_to(&actions, writer).is_empty());
}

/// `sync` is answered once every txn prepared before it is applied.
#[test]
fn sync_waits_for_earlier_writes() {
    let mut h = Harness::new(settings());
    let (a, _) = h.connect(10_000);
    let (b, _) = h.connect(10_000);
    let mut actions = h.send(a, vec![(1, create("/s", b"", 0))]);
    let sync = Request::Sync(proto::ops::SyncRequest { path: "/s".into() });
    actions.extend(h.send(b, vec![(1, sync)]));
    assert!(
        frames_to(&actions, b).is_empty(),
        "sync waits for the create"
    );
    let actions = h.durable();
    let frames = frames_to(&actions, b);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].error(), ErrorCode::Ok);
    assert_eq!(frames[0].zxid, h.node.zxid_applied());
    match frames[0].response(OpCode::Sync) {
        Response::Sync(r) => assert_eq!(r.path, "/s"),
        other => panic!("{other:?}"),
    }
}

/// A write refused in prepare is still logged (an error txn), so its reply
/// carries a zxid of its own and leaves in order.
#[test]
fn a_refused_write_is_logged_and_answered_with_its_error() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    h.call(conn, 1, create("/dup", b"", 0));
    let zxid = h.node.zxid_applied();
    let actions = h.send(conn, vec![(2, create("/dup", b"", 0))]);
    let records = appends(&actions);
    assert_eq!(records.len(), 1, "the refusal goes through the log");
    assert_eq!(records[0][0].zxid, zxid + 1);
    let frames = frames_to(&h.durable(), conn);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].error(), ErrorCode::NodeExists);
    assert_eq!(frames[0].zxid, zxid + 1);
}

/// closeSession: the reply, then the connection is closed, the session and
/// its ephemerals are gone.
#[test]
fn close_session_answers_then_closes() {
    let mut h = Harness::new(settings());
    let (conn, response) = h.connect(10_000);
    h.call(
        conn,
        1,
        create("/e", b"", proto::CreateMode::Ephemeral.code()),
    );
    assert!(h.node.tree().node("/e").is_some());
    let mut actions = h.send(conn, vec![(2, Request::CloseSession)]);
    // Later requests on a closing session are dropped, not answered.
    actions.extend(h.send(conn, vec![(3, exists("/e", false))]));
    actions.extend(h.settle());
    let frames = frames_to(&actions, conn);
    assert_eq!(frames.iter().map(|f| f.xid).collect::<Vec<_>>(), vec![2]);
    assert_eq!(closes(&actions), vec![conn]);
    assert!(h.node.tree().node("/e").is_none());
    assert!(!h.node.session_ids().contains(&response.session_id));
    h.step(Input::Closed { conn });
}

/// A silent session expires: its connection is closed, a closeSession txn
/// deletes its ephemeral, and a watcher on another session sees NodeDeleted.
#[test]
fn expiry_deletes_ephemerals_and_fires_their_watches() {
    let mut h = Harness::new(settings());
    let (owner, owner_session) = h.connect(4000);
    let (watcher, _) = h.connect(40_000);
    h.call(
        owner,
        1,
        create("/eph", b"", proto::CreateMode::Ephemeral.code()),
    );
    let frames = h.call(watcher, 1, exists("/eph", true));
    assert_eq!(frames[0].error(), ErrorCode::Ok);

    // Just before the deadline bucket: nothing happens.
    h.advance(Duration::from_millis(4000));
    let actions = h.step(Input::Tick);
    assert!(closes(&actions).is_empty());
    // Keep the watcher alive, then pass the owner's deadline.
    h.send(watcher, vec![(-2, Request::Ping)]);
    h.advance(Duration::from_millis(2000));
    let actions = h.step(Input::Tick);
    assert_eq!(closes(&actions), vec![owner]);
    let records = appends(&actions);
    assert_eq!(records.len(), 1, "one closeSession txn");
    let (header, txn) = tree::decode_record(&records[0][0].payload).unwrap();
    assert_eq!(header.session_id, owner_session.session_id);
    assert!(matches!(txn, tree::Txn::CloseSession { .. }));

    let actions = h.durable();
    let events = frames_to(&actions, watcher);
    assert_eq!(events.len(), 1);
    let event = events[0].event();
    assert_eq!(event.path, "/eph");
    assert_eq!(event.event_type, EventType::NodeDeleted.code());
    assert!(h.node.tree().node("/eph").is_none());
    assert!(!h.node.session_ids().contains(&owner_session.session_id));
}

/// Reconnecting with the session id and password moves the session to the
/// new connection and closes the old one; a wrong password is refused.
#[test]
fn reconnect_moves_the_session_and_checks_the_password() {
    let mut h = Harness::new(settings());
    let (old, response) = h.connect(10_000);
    let new = h.new_conn();
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: h.node.zxid_applied(),
        timeout_ms: 12_000,
        session_id: response.session_id,
        password: response.password.clone(),
        read_only: Some(false),
    };
    let actions = h.connect_with(new, request.clone());
    assert_eq!(closes(&actions), vec![old]);
    let again = connect_response(&actions, new);
    assert_eq!(again.session_id, response.session_id);
    assert_eq!(again.timeout_ms, 12_000);
    assert!(appends(&actions).is_empty(), "a reconnect is no txn");
    h.step(Input::Closed { conn: old });
    // The session works on the new connection.
    let frames = h.call(new, 5, create("/moved", b"", 0));
    assert_eq!(frames[0].error(), ErrorCode::Ok);

    let intruder = h.new_conn();
    let actions = h.connect_with(
        intruder,
        ConnectRequest {
            password: vec![1; 16],
            ..request
        },
    );
    let refused = connect_response(&actions, intruder);
    assert_eq!(refused.session_id, 0, "refused: expired or wrong password");
    assert!(closes(&actions).contains(&intruder));
}

/// A failed fsync: the write in flight may or may not be on disk, so its
/// connection is closed (CONNECTIONLOSS, outcome unknown — never an error
/// claiming it failed); later writes are refused at once without touching
/// the log; reads go on, on the same session reconnected.
#[test]
fn a_failed_log_stops_writes_but_not_reads() {
    let mut h = Harness::new(settings());
    let (conn, session) = h.connect(10_000);
    h.call(conn, 1, create("/kept", b"v", 0));
    let actions = h.send(conn, vec![(2, create("/lost", b"", 0))]);
    assert_eq!(appends(&actions).len(), 1);
    h.append_in_flight = None;
    let failure = StorageFailure::Io(std::io::ErrorKind::Other);
    let actions = h.step(Input::LogFailed(failure));
    assert!(
        frames_to(&actions, conn).is_empty(),
        "no reply for the write in flight"
    );
    assert_eq!(closes(&actions), vec![conn]);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Log {
            level: Level::Error,
            ..
        }
    )));
    h.step(Input::Closed { conn });

    let conn = h.new_conn();
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 10_000,
        session_id: session.session_id,
        password: session.password.clone(),
        read_only: Some(false),
    };
    let actions = h.connect_with(conn, request);
    assert_eq!(
        connect_response(&actions, conn).session_id,
        session.session_id
    );
    let actions = h.send(
        conn,
        vec![(3, create("/never", b"", 0)), (4, get_data("/kept", false))],
    );
    assert!(
        appends(&actions).is_empty(),
        "nothing reaches the log again"
    );
    let frames = frames_to(&actions, conn);
    assert_eq!(frames.iter().map(|f| f.xid).collect::<Vec<_>>(), vec![3, 4]);
    assert_eq!(
        frames[0].error(),
        ErrorCode::SystemError,
        "never prepared: it surely failed"
    );
    assert_eq!(frames[1].error(), ErrorCode::Ok);
    assert!(h.node.tree().node("/lost").is_none());
    assert_eq!(h.node.log_failed(), Some(failure));
}

/// Replies are found by (session, cxid): two sessions using the same xids
/// get their own replies, each on its own connection.
#[test]
fn replies_are_keyed_by_session_and_cxid() {
    let mut h = Harness::new(settings());
    let (a, _) = h.connect(10_000);
    let (b, _) = h.connect(10_000);
    let mut actions = h.send(a, vec![(9, create("/from-a", b"", 0))]);
    actions.extend(h.send(b, vec![(9, create("/from-b", b"", 0))]));
    actions.extend(h.send(a, vec![(10, create("/from-a", b"", 0))]));
    actions.extend(h.settle());
    let to_a = frames_to(&actions, a);
    let to_b = frames_to(&actions, b);
    assert_eq!(
        to_a.iter().map(|f| (f.xid, f.error())).collect::<Vec<_>>(),
        vec![(9, ErrorCode::Ok), (10, ErrorCode::NodeExists)]
    );
    assert_eq!(
        to_b.iter().map(|f| (f.xid, f.error())).collect::<Vec<_>>(),
        vec![(9, ErrorCode::Ok)]
    );
    match to_a[0].response(OpCode::Create) {
        Response::Create(r) => assert_eq!(r.path, "/from-a"),
        other => panic!("{other:?}"),
    }
    match to_b[0].response(OpCode::Create) {
        Response::Create(r) => assert_eq!(r.path, "/from-b"),
        other => panic!("{other:?}"),
    }
}

/// A client that reuses an xid while the first request is in flight still
/// gets both replies, in order.
#[test]
fn a_reused_xid_gets_both_replies_in_order() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    let mut actions = h.send(
        conn,
        vec![(5, create("/r1", b"", 0)), (5, create("/r2", b"", 0))],
    );
    actions.extend(h.settle());
    let frames = frames_to(&actions, conn);
    let paths: Vec<String> = frames
        .iter()
        .map(|f| match f.response(OpCode::Create) {
            Response::Create(r) => r.path,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, vec!["/r1", "/r2"]);
}

/// Snapshots follow ZooKeeper's half-random rule: after more than
/// snapCount/2 txns and fewer than snapCount, the node begins a snapshot of
/// the applied tree, feeds it in chunks paced by the writer, and the next
/// append rolls the log.
#[test]
fn snapshots_start_by_the_half_random_rule_and_roll_the_log() {
    let mut h = Harness::new(Settings {
        snap_count: 20,
        snap_size_limit_kb: 0,
        ..settings()
    });
    let (conn, _) = h.connect(10_000);
    let mut begun = None;
    for i in 0..20 {
        let actions = h.send(conn, vec![(i, create(&format!("/n{i}"), b"", 0))]);
        assert!(!actions
            .iter()
            .any(|a| matches!(a, Action::SnapshotBegin { .. })));
        let actions = h.durable();
        if let Some(zxid) = actions.iter().find_map(|a| match a {
            Action::SnapshotBegin { zxid } => Some(*zxid),
            _ => None,
        }) {
            begun = Some((i, zxid, actions));
            break;
        }
    }
    let (i, zxid, actions) = begun.expect("a snapshot within snapCount txns");
    // The createSession txn counts too: i + 2 txns were logged.
    let txns = i + 2;
    assert!((11..=20).contains(&txns), "snapshot after {txns} txns");
    assert_eq!(
        zxid,
        h.node.zxid_applied(),
        "a snapshot of the applied tree"
    );
    let chunks = actions
        .iter()
        .filter(|a| matches!(a, Action::SnapshotChunk { .. }))
        .count();
    assert_eq!(chunks, 2, "the header and the first chunk of the walk");
    // The writer acknowledges; the rest follows, then the end.
    let mut ended = actions.iter().any(|a| matches!(a, Action::SnapshotEnd));
    for _ in 0..10 {
        if ended {
            break;
        }
        let actions = h.step(Input::SnapshotChunkWritten);
        ended = actions.iter().any(|a| matches!(a, Action::SnapshotEnd));
    }
    assert!(ended, "a small tree is written in a few chunks");
    let actions = h.send(conn, vec![(100, create("/after", b"", 0))]);
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Append {
            roll_first: true,
            ..
        }
    )));
    let actions = h.step(Input::SnapshotDone {
        result: Ok(node::SnapshotWritten {
            zxid,
            file: "snapshot.x".into(),
            bytes: 1,
        }),
    });
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Log {
            level: Level::Info,
            ..
        }
    )));
}

/// A snapshot's tree walk takes one chunk per turn that brought work (a
/// request, a log completion) or per `ready` with no step before it (the
/// driver came back because `has_ready_work` said so); a turn made only of
/// the writer's chunk acknowledgements walks nothing, so a big snapshot
/// cannot take the ordering core from requests.
#[test]
fn a_snapshot_walks_the_tree_only_in_turns_that_bring_work() {
    let chunks = |actions: &[Action]| {
        actions
            .iter()
            .filter(|a| matches!(a, Action::SnapshotChunk { .. }))
            .count()
    };
    let mut h = Harness::new(Settings {
        snap_count: 100,
        snap_size_limit_kb: 0,
        ..settings()
    });
    let (conn, _) = h.connect(10_000);
    // About 1 MiB of data: many 64 KiB chunks.
    let data = vec![7u8; 16 * 1024];
    let mut begun = None;
    for i in 0..100 {
        h.send(conn, vec![(i, create(&format!("/n{i}"), &data, 0))]);
        let actions = h.durable();
        if actions
            .iter()
            .any(|a| matches!(a, Action::SnapshotBegin { .. }))
        {
            begun = Some(actions);
            break;
        }
    }
    let actions = begun.expect("a snapshot within snapCount txns");
    assert_eq!(
        chunks(&actions),
        2,
        "the header, then one chunk of the walk"
    );
    // The writer acknowledges both: no work came, so no chunk.
    for _ in 0..2 {
        let actions = h.step(Input::SnapshotChunkWritten);
        assert_eq!(
            chunks(&actions),
            0,
            "an acknowledgement alone walks nothing"
        );
    }
    // The driver comes back on its own: one chunk.
    assert!(h.node.has_ready_work());
    let mut actions = Vec::new();
    h.node.ready(&mut actions);
    h.node.check_invariants();
    assert_eq!(chunks(&actions), 1, "a turn without a step walks a chunk");
    // A read arrives: one chunk with its reply.
    let actions = h.send(conn, vec![(500, get_data("/n0", false))]);
    assert_eq!(frames_to(&actions, conn).len(), 1);
    assert_eq!(chunks(&actions), 1, "a turn with work walks a chunk");
    let actions = h.step(Input::SnapshotChunkWritten);
    assert_eq!(chunks(&actions), 0);
}

/// While the log is busy, prepared txns queue in appends that never exceed
/// the log's record bound.
#[test]
fn appends_stay_within_their_bound_while_the_log_is_busy() {
    let limits = node::AppendLimits {
        records_max: 4,
        bytes_max: 1 << 20,
    };
    let mut h = Harness::with_limits(settings(), tree::DataTree::new(), limits);
    let (conn, _) = h.connect(10_000);
    let requests = (0..10)
        .map(|i| (i, create(&format!("/b{i}"), b"", 0)))
        .collect();
    let actions = h.send(conn, requests);
    assert_eq!(appends(&actions)[0].len(), 4);
    let mut sizes = vec![4];
    while h.append_in_flight.is_some() {
        let actions = h.durable();
        sizes.extend(appends(&actions).iter().map(|r| r.len()));
    }
    assert_eq!(sizes, vec![4, 4, 2]);
    assert_eq!(h.node.zxid_applied(), h.node.zxid_prepared());
}

/// The same inputs give the same actions, byte for byte.
#[test]
fn the_same_inputs_give_the_same_actions() {
    let run = || {
        let mut h = Harness::new(settings());
        let (a, _) = h.connect(4000);
        let (b, _) = h.connect(4000);
        h.call(
            a,
            1,
            create("/x", b"1", proto::CreateMode::EphemeralSequential.code()),
        );
        h.call(
            b,
            1,
            create("/y", b"2", proto::CreateMode::Ephemeral.code()),
        );
        h.advance(Duration::from_secs(10));
        h.step(Input::Tick);
        h.settle();
        h.history
    };
    assert_eq!(run(), run());
}

/// Four-letter words get the node's figures, with lists only for the words
/// that show them.
#[test]
fn four_letter_words_report_node_state() {
    let mut h = Harness::new(settings());
    let (conn, response) = h.connect(10_000);
    h.call(conn, 1, create("/f", b"", 0));
    let report = |h: &mut Harness, word: &str| {
        let actions = h.step(Input::FourLetterWord {
            request: 7,
            word: word.into(),
        });
        match &actions[..] {
            [Action::FourLetterWord { request: 7, report }] => report.clone(),
            other => panic!("{other:?}"),
        }
    };
    let srvr = report(&mut h, "srvr");
    assert_eq!(srvr.mode, "standalone");
    assert_eq!(srvr.last_zxid, h.node.zxid_applied());
    assert_eq!(srvr.node_count, h.node.tree().node_count());
    assert_eq!(srvr.connection_count, 1);
    assert!(srvr.connections.is_empty(), "srvr lists no connections");
    let cons = report(&mut h, "cons");
    assert_eq!(cons.connections.len(), 1);
    assert_eq!(cons.connections[0].session_id, response.session_id);
    let dump = report(&mut h, "dump");
    assert_eq!(dump.sessions, vec![(response.session_id, 10_000)]);
}

/// The wire-level undecodable requests are answered in order, not dropped.
#[test]
fn undecodable_requests_are_answered_in_order() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    let actions = h.step(Input::Requests {
        conn,
        requests: vec![
            node::RequestFrame {
                xid: 1,
                op: OpCode::GetData.code(),
                body: Err(proto::DecodeError::Truncated {
                    offset: 0,
                    needed: 4,
                }),
                nulls: proto::Nulls::default(),
            },
            node::RequestFrame {
                xid: 2,
                op: 999,
                body: Err(proto::DecodeError::UnknownOpCode(999)),
                nulls: proto::Nulls::default(),
            },
        ],
    });
    let frames = frames_to(&actions, conn);
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.xid, f.error()))
            .collect::<Vec<_>>(),
        vec![
            (1, ErrorCode::MarshallingError),
            (2, ErrorCode::Unimplemented)
        ]
    );
    assert_eq!(
        closes(&actions),
        vec![conn],
        "an unknown opcode closes the connection"
    );
}

/// Ping replies carry xid -2 whatever the request's xid, as ZooKeeper's.
#[test]
fn ping_replies_carry_xid_minus_two() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    let frames = frames_to(&h.send(conn, vec![(17, Request::Ping)]), conn);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].xid, -2);
}

/// A full log disk: new writes and new sessions are refused at once (no txn
/// can be logged), reads go on, the append in flight waits; once the log
/// has room again (or writes), writes resume. A refusal queued behind the
/// waiting write leaves after it with a zxid no lower than its reply's: a
/// session's zxids never go back (found by the simulator: fk-sim seed 5,
/// 4,000 steps, before the fix).
#[test]
fn a_full_disk_refuses_writes_until_space_returns() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    h.call(conn, 1, create("/kept", b"v", 0));
    let actions = h.send(conn, vec![(2, create("/waiting", b"", 0))]);
    assert_eq!(
        appends(&actions).len(),
        1,
        "this append meets the full disk"
    );
    let actions = h.step(Input::LogSpace { available: false });
    assert!(actions.iter().any(|a| matches!(
        a,
        Action::Log {
            level: Level::Error,
            ..
        }
    )));
    let actions = h.send(
        conn,
        vec![
            (3, create("/refused", b"", 0)),
            (4, get_data("/kept", false)),
        ],
    );
    assert!(appends(&actions).is_empty());
    let frames = frames_to(&actions, conn);
    // Replies stay in order: the refusal and the read wait behind xid 2.
    assert!(frames.is_empty(), "{frames:?}");
    let refused = h.new_conn();
    let actions = h.connect_with(
        refused,
        ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            password: vec![0; 16],
            read_only: None,
        },
    );
    assert_eq!(
        closes(&actions),
        vec![refused],
        "no new session without log space"
    );
    // Space returns and the waiting append is written.
    let actions = h.durable();
    let frames = frames_to(&actions, conn);
    assert_eq!(
        frames
            .iter()
            .map(|f| (f.xid, f.error()))
            .collect::<Vec<_>>(),
        vec![
            (2, ErrorCode::Ok),
            (3, ErrorCode::SystemError),
            (4, ErrorCode::Ok)
        ]
    );
    let zxids: Vec<i64> = frames.iter().map(|f| f.zxid).collect();
    assert!(zxids.windows(2).all(|w| w[0] <= w[1]), "{zxids:?}");
    assert!(!h.node.disk_full());
    let frames = h.call(conn, 5, create("/after", b"", 0));
    assert_eq!(frames[0].error(), ErrorCode::Ok);
}

/// A session with more ephemerals than one closeSession txn may hold still
/// closes: its ephemerals are deleted one txn each first, then the session —
/// by the client's closeSession and by expiry alike (found by the simulator).
#[test]
fn a_session_with_too_many_ephemerals_for_one_txn_closes_and_expires() {
    for expire in [false, true] {
        let settings = Settings {
            txn_bytes_max: 2048,
            ..settings()
        };
        let mut h = Harness::new(settings);
        let (conn, session) = h.connect(4000);
        for i in 0..60 {
            let path = format!("/a-rather-long-ephemeral-name-to-fill-the-txn-{i:03}");
            let frames = h.call(
                conn,
                i + 1,
                create(&path, b"", proto::CreateMode::Ephemeral.code()),
            );
            assert_eq!(frames[0].error(), ErrorCode::Ok);
        }
        assert_eq!(h.node.tree().ephemeral_count(), 60);
        if expire {
            h.advance(Duration::from_secs(10));
            h.step(Input::Tick);
        } else {
            h.send(conn, vec![(100, Request::CloseSession)]);
        }
        h.settle();
        assert_eq!(h.node.tree().ephemeral_count(), 0, "expire: {expire}");
        assert!(!h.node.session_ids().contains(&session.session_id));
        assert!(!h.node.tree().has_session(session.session_id));
    }
}

/// The same, with the ephemeral creates still in flight when closeSession
/// arrives (pipelined behind them on one connection): the ones not yet
/// applied are shed too, the closeSession is answered OK and no ephemeral
/// is left (found by fk-sim, seed 41 of the many-ephemerals mix).
#[test]
fn a_closesession_behind_its_own_ephemeral_creates_in_flight_closes() {
    let settings = Settings {
        txn_bytes_max: 2048,
        ..settings()
    };
    let mut h = Harness::new(settings);
    let (conn, session) = h.connect(4000);
    let mut requests: Vec<(i32, Request)> = (0..60)
        .map(|i| {
            let path = format!("/a-rather-long-ephemeral-name-to-fill-the-txn-{i:03}");
            (
                i + 1,
                create(&path, b"", proto::CreateMode::Ephemeral.code()),
            )
        })
        .collect();
    requests.push((100, Request::CloseSession));
    let mut actions = h.send(conn, requests);
    actions.extend(h.settle());
    let frames = frames_to(&actions, conn);
    assert_eq!(frames.len(), 61);
    assert!(frames.iter().all(|f| f.error() == ErrorCode::Ok));
    assert_eq!(frames.last().unwrap().xid, 100);
    assert_eq!(h.node.tree().ephemeral_count(), 0);
    assert!(!h.node.session_ids().contains(&session.session_id));
    assert!(!h.node.tree().has_session(session.session_id));
}
