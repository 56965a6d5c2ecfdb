//! Ensembles of nodes in one deterministic cluster: election, discovery,
//! synchronisation (DIFF, TRUNC, SNAP), broadcast, learners serving clients,
//! and the ZooKeeper replication bugs that concern these phases.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::{create, get_data, set_data};
use proto::ops::Response;
use proto::{ErrorCode, OpCode};

const SECONDS_10: Duration = Duration::from_secs(10);

fn settle(cluster: &mut Cluster) {
    assert!(
        cluster.until(SECONDS_10, Cluster::settled),
        "no settled ensemble: modes {:?}\n{:#?}",
        cluster
            .up()
            .map(|sid| (sid, cluster.node(sid).mode(), cluster.node(sid).serving()))
            .collect::<Vec<_>>(),
        cluster.log_lines.iter().rev().take(30).collect::<Vec<_>>()
    );
}

/// Writes `/key` with `value` through server `sid` and waits for the reply.
fn write(
    cluster: &mut Cluster,
    sid: u64,
    conn: u64,
    xid: i32,
    path: &str,
    value: &[u8],
) -> ErrorCode {
    cluster.request(sid, conn, xid, create(path, value, 0));
    let found = cluster.until(SECONDS_10, |c| {
        c.replies(sid, conn).iter().any(|f| f.xid == xid)
    });
    assert!(found, "no reply to xid {xid} on server {sid}");
    cluster
        .replies(sid, conn)
        .iter()
        .find(|f| f.xid == xid)
        .unwrap()
        .error()
}

fn data_on(cluster: &Cluster, sid: u64, path: &str) -> Option<Vec<u8>> {
    cluster
        .node(sid)
        .tree()
        .node(path)
        .map(|n| n.data.clone().unwrap_or_default())
}

/// Three servers elect one leader with the best (epoch, zxid, sid) — on a
/// clean start, the highest sid — and the others follow and serve.
#[test]
fn three_servers_elect_a_leader_and_serve() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    assert_eq!(cluster.leaders(), vec![3]);
    for sid in [1, 2] {
        assert_eq!(cluster.node(sid).mode(), "follower");
    }
    let epochs: Vec<(i64, i64)> = cluster.up().map(|sid| cluster.node(sid).epochs()).collect();
    assert!(
        epochs.iter().all(|e| *e == (1, 1)),
        "everyone in epoch 1: {epochs:?}"
    );
    for sid in 1..=3 {
        assert_eq!(
            cluster.servers[&sid].disk.current_epoch, 1,
            "currentEpoch is on disk"
        );
    }
}

/// A client of a follower writes: the write goes to the leader, commits on
/// a quorum, and is answered by the follower; every server applies it.
#[test]
fn a_follower_forwards_writes_and_answers_after_the_commit() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, session) = cluster.connect(1);
    assert_ne!(
        session, 0,
        "the follower created a session through the leader"
    );
    assert_eq!(write(&mut cluster, 1, conn, 1, "/a", b"one"), ErrorCode::Ok);
    // A read after the write on the same connection sees it.
    cluster.request(1, conn, 2, get_data("/a", false));
    cluster.run();
    let replies = cluster.replies(1, conn);
    match replies[1].response(OpCode::GetData) {
        Response::GetData(r) => assert_eq!(r.data, Some(b"one".to_vec())),
        other => panic!("{other:?}"),
    }
    cluster.until(SECONDS_10, |c| {
        (1..=3).all(|sid| data_on(c, sid, "/a").is_some())
    });
    let digests: Vec<u64> = (1..=3)
        .map(|sid| cluster.node(sid).tree().digest())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
    // A refused write comes back with its error through the leader too.
    assert_eq!(
        write(&mut cluster, 1, conn, 3, "/a", b"again"),
        ErrorCode::NodeExists
    );
}

/// A write on the leader commits only with a follower's ack (no write is
/// answered on the leader's durability alone in a 3-server ensemble).
#[test]
fn a_write_needs_a_quorum() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    // Followers' disks stall: no ack arrives.
    for sid in [1, 2] {
        cluster.servers.get_mut(&sid).unwrap().hold_durable = true;
    }
    cluster.request(3, conn, 1, create("/q", b"", 0));
    cluster.advance(Duration::from_millis(200), Duration::from_millis(20));
    assert!(
        cluster.replies(3, conn).is_empty(),
        "no reply without a quorum"
    );
    cluster.servers.get_mut(&1).unwrap().hold_durable = false;
    cluster.release_durable(1);
    cluster.run();
    assert_eq!(cluster.replies(3, conn).len(), 1);
    assert_eq!(cluster.replies(3, conn)[0].error(), ErrorCode::Ok);
}

/// The leader crashes: the others elect a new one in a higher epoch, keep
/// every acknowledged write, and serve; the old leader rejoins and catches up.
#[test]
fn leader_failover_keeps_acknowledged_writes() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(1);
    for i in 0..5 {
        let path = format!("/k{i}");
        assert_eq!(
            write(&mut cluster, 1, conn, i + 1, &path, b"v"),
            ErrorCode::Ok
        );
    }
    cluster.crash(3);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    assert_ne!(leader, 3);
    for i in 0..5 {
        assert!(
            data_on(&cluster, leader, &format!("/k{i}")).is_some(),
            "k{i} survived"
        );
    }
    let (conn, _) = cluster.connect(leader);
    assert_eq!(
        write(&mut cluster, leader, conn, 1, "/after", b"x"),
        ErrorCode::Ok
    );
    cluster.start(3);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 3, "/after").is_some()));
    let digests: Vec<u64> = (1..=3)
        .map(|sid| cluster.node(sid).tree().digest())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}

/// ZOOKEEPER-1154: a server that alone logged a txn the others never saw
/// rejoins after they moved on; it is truncated, not diffed on top.
#[test]
fn zookeeper_1154_uncommitted_txn_is_truncated() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    assert_eq!(
        write(&mut cluster, 3, conn, 1, "/common", b""),
        ErrorCode::Ok
    );
    // The leader logs a txn, but its followers never receive it.
    cluster.partition(3, 1);
    cluster.partition(3, 2);
    cluster.request(3, conn, 2, create("/orphan", b"", 0));
    cluster.run();
    assert!(
        cluster.servers[&3].disk.log.iter().any(|r| {
            let (_, txn) = tree::decode_record(&r.payload).unwrap();
            matches!(txn, tree::Txn::Create { ref path, .. } if path == "/orphan")
        }),
        "the orphan is in the old leader's log"
    );
    cluster.crash(3);
    cluster.heal();
    settle(&mut cluster);
    let (conn, _) = cluster.connect(1);
    assert_eq!(
        write(&mut cluster, 1, conn, 1, "/moved-on", b""),
        ErrorCode::Ok
    );
    let rejoined_at = cluster.log_lines.len();
    cluster.start(3);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 3, "/moved-on").is_some()));
    assert!(
        data_on(&cluster, 3, "/orphan").is_none(),
        "the uncommitted txn is gone"
    );
    let gave_up: Vec<&String> = cluster.log_lines[rejoined_at..]
        .iter()
        .filter(|(sid, line)| *sid == 3 && line.contains("for an election"))
        .map(|(_, line)| line)
        .collect();
    assert!(
        gave_up.is_empty(),
        "the first sync (TRUNC) is taken whole: {gave_up:?}"
    );
    assert!(
        !cluster.servers[&3].disk.log.iter().any(|r| {
            let (_, txn) = tree::decode_record(&r.payload).unwrap();
            matches!(txn, tree::Txn::Create { ref path, .. } if path == "/orphan")
        }),
        "and cut from its log"
    );
    let digests: Vec<u64> = (1..=3)
        .map(|sid| cluster.node(sid).tree().digest())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}

/// A follower that was down for longer than the leader's history window
/// catches up by SNAP; one down for a few writes by DIFF.
#[test]
fn catch_up_by_diff_and_by_snap() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    cluster.crash(1);
    for i in 0..3 {
        assert_eq!(
            write(&mut cluster, 3, conn, i + 1, &format!("/d{i}"), b""),
            ErrorCode::Ok
        );
    }
    cluster.start(1);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 1, "/d2").is_some()));
    assert!(
        cluster.servers[&1].disk.snapshot.is_none(),
        "caught up by DIFF"
    );

    cluster.crash(2);
    // More writes than the history window (50) holds.
    for i in 0..80 {
        cluster.request(
            3,
            conn,
            100 + i,
            set_data("/d0", format!("{i}").as_bytes(), -1),
        );
    }
    cluster.until(SECONDS_10, |c| c.replies(3, conn).len() >= 83);
    cluster.start(2);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 2, "/d0") == Some(b"79".to_vec())));
    let snapshot = cluster.servers[&2]
        .disk
        .snapshot
        .as_ref()
        .map(|(zxid, _)| *zxid);
    assert!(snapshot.is_some(), "caught up by SNAP, written to disk");
    let digests: Vec<u64> = (1..=3)
        .map(|sid| cluster.node(sid).tree().digest())
        .collect();
    assert!(digests.windows(2).all(|w| w[0] == w[1]), "{digests:?}");
}

/// An observer serves reads, forwards writes, and never votes: the two
/// participants alone make the quorum, and losing one stops writes.
#[test]
fn an_observer_serves_but_never_votes() {
    let mut cluster = Cluster::new(2, 1);
    settle(&mut cluster);
    assert_eq!(cluster.node(3).mode(), "observer");
    let (conn, _) = cluster.connect(3);
    assert_eq!(write(&mut cluster, 3, conn, 1, "/o", b"v"), ErrorCode::Ok);
    assert!(data_on(&cluster, 3, "/o").is_some());
    let follower = if cluster.leaders()[0] == 1 { 2 } else { 1 };
    cluster.crash(follower);
    cluster.advance(Duration::from_secs(2), Duration::from_millis(50));
    assert!(
        cluster.leaders().is_empty(),
        "a participant and an observer are no quorum"
    );
}

/// Connects a client to `sid` and creates `path` as an ephemeral.
fn ephemeral_on(cluster: &mut Cluster, sid: u64, path: &str) -> (u64, i64) {
    let (conn, session) = cluster.connect(sid);
    assert_ne!(session, 0);
    cluster.request(
        sid,
        conn,
        1,
        create(path, b"", proto::CreateMode::Ephemeral.code()),
    );
    assert!(cluster.until(SECONDS_10, |c| !c.replies(sid, conn).is_empty()));
    assert_eq!(cluster.replies(sid, conn)[0].error(), ErrorCode::Ok);
    (conn, session)
}

/// ZOOKEEPER-2355: a client of a follower owns an ephemeral; the follower
/// dies. The leader, which alone expires sessions, expires it, and the
/// ephemeral goes on every server — the dead one too once it is back.
#[test]
fn zookeeper_2355_ephemeral_goes_when_the_session_of_a_dead_follower_expires() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    ephemeral_on(&mut cluster, 1, "/eph");
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 3, "/eph").is_some()));
    cluster.crash(1);
    // The session's timeout (4 s) passes with nobody touching it.
    assert!(
        cluster.until(Duration::from_secs(8), |c| c.leaders().len() == 1
            && c.up().all(|sid| data_on(c, sid, "/eph").is_none()))
    );
    cluster.start(1);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 1, "/eph").is_none()));
}

/// A client of a follower that keeps pinging keeps its session: the
/// follower reports its activity to the leader in PING replies (the touch
/// table); once it stops, the leader expires the session.
#[test]
fn a_follower_clients_activity_keeps_its_session_alive() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = ephemeral_on(&mut cluster, 1, "/alive");
    for i in 0..20 {
        cluster.request(1, conn, -2, proto::ops::Request::Ping);
        cluster.advance(Duration::from_millis(500), Duration::from_millis(50));
        assert!(
            data_on(&cluster, 3, "/alive").is_some(),
            "alive after {} ms",
            (i + 1) * 500
        );
    }
    assert!(
        cluster.until(Duration::from_secs(8), |c| data_on(c, 3, "/alive")
            .is_none())
    );
    assert!(
        cluster.closed_conns.contains(&(1, conn)),
        "the follower closed the expired session's connection"
    );
}

/// A session moves to a follower: the follower asks the leader to
/// revalidate it, then answers the handshake with the same session and
/// serves it. (Found by fk-sim's ensembles, seed 0 of `--servers 3`: the
/// reconnect waiting for REVALIDATE tripped the node's own invariant check,
/// which took every handshake slot for one waiting on a createSession txn.)
#[test]
fn a_session_moves_to_a_follower_through_revalidate() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let follower = if leader == 1 { 2 } else { 1 };
    let (first, session) = cluster.connect(leader);
    assert_ne!(session, 0);
    assert_eq!(
        write(&mut cluster, leader, first, 1, "/moved", b"a"),
        ErrorCode::Ok
    );
    let conn = cluster.reconnect(follower, session);
    cluster.advance(Duration::from_millis(200), Duration::from_millis(20));
    assert_eq!(cluster.session_of(follower, conn), session);
    assert_eq!(
        write(&mut cluster, follower, conn, 2, "/moved/b", b"b"),
        ErrorCode::Ok
    );
}

/// ZOOKEEPER-1277: the leader's 32-bit zxid counter nears its end; the
/// leader steps down, an election starts a new epoch, and writes go on with
/// the counter restarted.
#[test]
fn zookeeper_1277_zxid_counter_rollover_starts_a_new_epoch() {
    let mut cluster = Cluster::with_settings(3, 0, |s| s.zxid_counter_max = 12);
    settle(&mut cluster);
    let mut zxids = Vec::new();
    let mut written = 0;
    for attempt in 0..60 {
        let leader = cluster.leaders()[0];
        let (conn, _) = cluster.connect(leader);
        let xid = 1;
        cluster.request(leader, conn, xid, create(&format!("/r{attempt}"), b"", 0));
        cluster.until(Duration::from_secs(2), |c| {
            !c.replies(leader, conn).is_empty() || c.closed_conns.contains(&(leader, conn))
        });
        if let Some(reply) = cluster.replies(leader, conn).first() {
            assert_eq!(reply.error(), ErrorCode::Ok);
            zxids.push(reply.zxid);
            written += 1;
        }
        settle(&mut cluster);
        if written >= 25 {
            break;
        }
    }
    assert!(written >= 25, "writes go on across the rollover");
    let epochs: std::collections::BTreeSet<i64> = zxids.iter().map(|z| z >> 32).collect();
    assert!(epochs.len() >= 2, "a new epoch began: {zxids:x?}");
    assert!(
        zxids.iter().all(|z| (*z as u32) <= 12),
        "no counter past the limit"
    );
    assert!(
        zxids.windows(2).all(|w| w[0] < w[1]),
        "zxids keep increasing"
    );
}

/// ZOOKEEPER-1549: a txn only the old leader logged is truncated when it
/// rejoins; the snapshots it takes afterwards never hold it.
#[test]
fn zookeeper_1549_a_truncated_txn_never_reaches_a_snapshot() {
    let mut cluster = Cluster::with_settings(3, 0, |s| {
        s.snap_count = 4;
        s.snap_size_limit_kb = 0;
    });
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    cluster.partition(3, 1);
    cluster.partition(3, 2);
    cluster.request(3, conn, 1, create("/orphan", b"", 0));
    cluster.run();
    cluster.crash(3);
    cluster.heal();
    settle(&mut cluster);
    cluster.start(3);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let (conn, _) = cluster.connect(leader);
    for i in 0..12 {
        assert_eq!(
            write(&mut cluster, leader, conn, i + 1, &format!("/s{i}"), b""),
            ErrorCode::Ok
        );
    }
    assert!(cluster.until(SECONDS_10, |c| data_on(c, 3, "/s11").is_some()));
    let (zxid, bytes) = cluster.servers[&3]
        .disk
        .snapshot
        .clone()
        .expect("server 3 took a snapshot");
    let snapshot = tree::DataTree::from_snapshot(&bytes).unwrap();
    assert!(
        snapshot.node("/orphan").is_none(),
        "snapshot 0x{zxid:x} holds no truncated txn"
    );
    assert!(data_on(&cluster, 3, "/orphan").is_none());
}

/// ZOOKEEPER-3642: the leader dies after sending a SNAP, before NEWLEADER
/// is acknowledged; the learner's new tree was never sealed on disk, so it
/// reloads what is durable before it votes, and the ensemble converges.
#[test]
fn zookeeper_3642_leader_dies_after_snap_before_newleader() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    cluster.crash(1);
    for i in 0..80 {
        cluster.request(
            3,
            conn,
            100 + i,
            set_data("/zookeeper", format!("{i}").as_bytes(), -1),
        );
    }
    cluster.until(SECONDS_10, |c| c.replies(3, conn).len() >= 80);
    cluster.servers.get_mut(&1).unwrap().hold_snapshots = true;
    cluster.start(1);
    assert!(
        cluster.until(SECONDS_10, |c| c.log_lines.iter().any(
            |(sid, l)| *sid == 1 && l.contains("loaded the leader's snapshot")
        )),
        "server 1 got a SNAP"
    );
    cluster.crash(3);
    // The slow snapshot write finishes only after the leader is gone.
    cluster.release_snapshots(1);
    assert!(cluster
        .until(SECONDS_10, |c| c.log_lines.iter().any(
            |(sid, l)| *sid == 1 && l.contains("state reloaded from disk")
        )));
    settle(&mut cluster);
    cluster.start(3);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| {
        let digests: Vec<u64> = (1..=3).map(|sid| c.node(sid).tree().digest()).collect();
        digests.windows(2).all(|w| w[0] == w[1])
    }));
}

/// A learner loses its leader while it holds the leader's snapshot
/// unsealed and an append of a later proposal is still in flight: it must
/// reload its state from disk (ZOOKEEPER-3642) only once that append is
/// done, as its election waits for an idle log. (Found by fk-sim, seed 2 of
/// `--servers 3 --steps 20000`: the reload came back while the append was
/// in flight and the node's pipeline asserted.)
#[test]
fn a_reload_after_losing_the_leader_waits_for_the_append_in_flight() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    cluster.crash(1);
    for i in 0..80 {
        cluster.request(
            3,
            conn,
            100 + i,
            set_data("/zookeeper", format!("{i}").as_bytes(), -1),
        );
    }
    cluster.until(SECONDS_10, |c| c.replies(3, conn).len() >= 80);
    cluster.servers.get_mut(&1).unwrap().hold_snapshots = true;
    cluster.start(1);
    assert!(
        cluster.until(SECONDS_10, |c| c.log_lines.iter().any(
            |(sid, l)| *sid == 1 && l.contains("loaded the leader's snapshot")
        )),
        "server 1 got a SNAP"
    );
    // A proposal reaches server 1 during its sync; its append stays in flight.
    cluster.servers.get_mut(&1).unwrap().hold_durable = true;
    assert_eq!(
        write(&mut cluster, 3, conn, 500, "/late", b""),
        ErrorCode::Ok
    );
    cluster.crash(3);
    cluster.run();
    assert!(cluster.is_up(1));
    cluster.release_durable(1);
    cluster.servers.get_mut(&1).unwrap().hold_durable = false;
    cluster.release_snapshots(1);
    assert!(cluster
        .until(SECONDS_10, |c| c.log_lines.iter().any(
            |(sid, l)| *sid == 1 && l.contains("state reloaded from disk")
        )));
    settle(&mut cluster);
    cluster.start(3);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| {
        let digests: Vec<u64> = (1..=3).map(|sid| c.node(sid).tree().digest()).collect();
        digests.windows(2).all(|w| w[0] == w[1]) && data_on(c, 1, "/late").is_some()
    }));
}

/// A follower's forwarded `sync` is answered right after the COMMIT of the
/// last txn proposed before it, ahead of the COMMITs of later txns, as
/// ZooKeeper's leader answers its pendingSyncs in tryToCommit — also when
/// one quorum ack commits both. Else the follower applies the later txns
/// first and answers the sync, and the session's requests queued behind
/// it, from a tree that already holds its own later writes. (Found by
/// fk-sim, seed 5 of `--servers 5 --observers 1 --steps 20000`: a session's
/// sync was answered with the zxid of the create it sent after it.)
#[test]
fn a_forwarded_sync_is_answered_before_later_commits() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let followers: Vec<u64> = (1..=3).filter(|sid| *sid != leader).collect();
    let (near, far) = (followers[0], followers[1]);
    let (conn, _) = cluster.connect(near);
    // The leader's and one follower's logs are slow: nothing commits yet.
    for sid in [leader, far] {
        cluster.servers.get_mut(&sid).unwrap().hold_durable = true;
    }
    cluster.request(near, conn, 1, create("/w0", b"", 0));
    cluster.run();
    cluster.request(near, conn, 2, create("/w1", b"", 0));
    cluster.request(
        near,
        conn,
        3,
        proto::ops::Request::Sync(proto::ops::SyncRequest { path: "/".into() }),
    );
    cluster.request(near, conn, 4, create("/w2", b"", 0));
    cluster.run();
    // The slow follower acks /w0, then /w1 and /w2 with one ack: a quorum
    // commits both at once.
    cluster.release_durable(far);
    cluster.run();
    cluster.release_durable(far);
    cluster.run();
    assert!(cluster.until(SECONDS_10, |c| c.replies(near, conn).len() >= 4));
    let replies = cluster.replies(near, conn);
    let zxid_of = |xid: i32| replies.iter().find(|f| f.xid == xid).unwrap().zxid;
    assert!(
        zxid_of(3) < zxid_of(4),
        "the sync's reply (zxid 0x{:x}) shows the later create's txn 0x{:x}",
        zxid_of(3),
        zxid_of(4)
    );
    assert!(zxid_of(2) <= zxid_of(3));
}

/// The follower's side of the same order: a sync whose txns become
/// applicable together with later ones (its log was slow) is answered
/// between them, not after the batch — here the sync waits for another
/// session's write, and its own session's later write follows it.
#[test]
fn a_sync_on_a_slow_follower_is_answered_before_later_txns_apply() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let near = if leader == 1 { 2 } else { 1 };
    let (other, _) = cluster.connect(near);
    let (conn, _) = cluster.connect(near);
    cluster.servers.get_mut(&near).unwrap().hold_durable = true;
    cluster.request(near, other, 1, create("/w0", b"", 0));
    cluster.run();
    cluster.request(near, other, 2, create("/w1", b"", 0));
    cluster.run();
    let sync = proto::ops::Request::Sync(proto::ops::SyncRequest { path: "/".into() });
    cluster.request(near, conn, 1, sync);
    cluster.request(near, conn, 2, create("/w2", b"", 0));
    cluster.run();
    // /w0's append finishes; /w1 and /w2 then go to the log in one append.
    cluster.release_durable(near);
    cluster.run();
    cluster.release_durable(near);
    cluster.servers.get_mut(&near).unwrap().hold_durable = false;
    assert!(cluster.until(SECONDS_10, |c| c.replies(near, conn).len() >= 2));
    let replies = cluster.replies(near, conn);
    let zxid_of = |xid: i32| replies.iter().find(|f| f.xid == xid).unwrap().zxid;
    assert!(
        zxid_of(1) < zxid_of(2),
        "the sync's reply (zxid 0x{:x}) shows the later create's txn 0x{:x}",
        zxid_of(1),
        zxid_of(2)
    );
}

/// A learner loses its leader while its acceptedEpoch write is in flight
/// and follows the next leader at once: the old write finishes for no
/// role, and the new role's own write waits for it. (Found by fk-sim, seed
/// 17 of `--servers 3 --steps 20000`: the second write tripped "one epoch
/// write at a time".)
#[test]
fn an_epoch_write_in_flight_outlives_the_role_that_asked_for_it() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let old_leader = cluster.leaders()[0];
    let follower = if old_leader == 1 { 2 } else { 1 };
    // A new epoch: the follower's acceptedEpoch write for it stays in flight.
    cluster.servers.get_mut(&follower).unwrap().hold_epochs = true;
    cluster.crash(old_leader);
    assert!(
        cluster.until(SECONDS_10, |c| !c.servers[&follower].held_epochs.is_empty()),
        "the follower asked for its acceptedEpoch write"
    );
    let new_leader = (1..=3)
        .find(|s| *s != old_leader && *s != follower)
        .unwrap();
    // The connection to the new leader breaks; the follower finds it again.
    cluster.partition(follower, new_leader);
    cluster.run();
    cluster.heal();
    assert!(
        cluster.until(SECONDS_10, |c| c.servers[&follower].held_epochs.len() >= 2
            || c.log_lines
                .iter()
                .filter(|(s, l)| *s == follower && l.contains("connecting"))
                .count()
                >= 3)
    );
    cluster.advance(Duration::from_millis(500), Duration::from_millis(20));
    assert!(cluster.is_up(follower));
    cluster.release_epochs(follower);
    cluster.start(old_leader);
    settle(&mut cluster);
    let epochs: Vec<(i64, i64)> = (1..=3).map(|sid| cluster.node(sid).epochs()).collect();
    assert!(epochs.windows(2).all(|w| w[0] == w[1]), "{epochs:?}");
}

/// A learner that took a snapshot from its leader logs no later txn until
/// that snapshot is sealed on disk: else a crash (or a failed snapshot
/// write) leaves a log whose new records follow a gap, and recovery
/// replays them on the older state it finds, under the new zxid
/// (ZOOKEEPER-3642's cousin). Found by fk-sim, seed 13 of `--servers 5
/// --observers 1 --steps 20000`: a learner whose received snapshot failed on
/// a full disk reloaded "at 0x100000142" a tree missing 0xd2..0x141, and its
/// digest disagreed with the leader's.
#[test]
fn a_learner_logs_no_txn_above_a_snapshot_not_yet_sealed() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let learner = if leader == 1 { 2 } else { 1 };
    let (conn, _) = cluster.connect(leader);
    cluster.crash(learner);
    for i in 0..80 {
        cluster.request(
            leader,
            conn,
            100 + i,
            set_data("/zookeeper", format!("{i}").as_bytes(), -1),
        );
    }
    cluster.until(SECONDS_10, |c| c.replies(leader, conn).len() >= 80);
    cluster.servers.get_mut(&learner).unwrap().hold_snapshots = true;
    cluster.start(learner);
    assert!(
        cluster.until(SECONDS_10, |c| c.log_lines.iter().any(|(sid, l)| *sid
            == learner
            && l.contains("loaded the leader's snapshot"))),
        "the learner got a SNAP"
    );
    // A proposal reaches the learner while its snapshot is still being written.
    assert_eq!(
        write(&mut cluster, leader, conn, 500, "/late", b"x"),
        ErrorCode::Ok
    );
    cluster.crash(learner);
    cluster.servers.get_mut(&learner).unwrap().hold_snapshots = false;
    cluster.start(learner);
    let (zxid, digest) = {
        let node = cluster.node(learner);
        (node.zxid_applied(), node.tree().digest())
    };
    let at_leader = cluster.node(leader);
    assert!(
        zxid != at_leader.zxid_applied() || digest == at_leader.tree().digest(),
        "the learner recovered a tree at 0x{zxid:x} that is not the leader's"
    );
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| {
        let digests: Vec<u64> = (1..=3).map(|sid| c.node(sid).tree().digest()).collect();
        digests.windows(2).all(|w| w[0] == w[1])
    }));
}

/// A leader whose own log is slow applies committed txns late (a quorum of
/// followers commits without it); a learner that needs a snapshot then
/// must not get one from the leader's older tree with only the window's
/// txns after it — the txns between would never reach it. (Found by
/// fk-sim, seed 27 of `--servers 5 --observers 1 --steps 20000`: s5 got a
/// SNAP at 0x20000004b from a leader whose window started far above, and
/// its digest disagreed with the others'.)
#[test]
fn a_snapshot_from_a_lagging_leader_never_skips_txns() {
    let mut cluster = Cluster::new(5, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let late = if leader == 1 { 2 } else { 1 };
    let (conn, _) = cluster.connect(leader);
    cluster.crash(late);
    // The leader's disk stalls; three followers commit 80 txns (more than
    // the window of 50) that the leader cannot apply yet.
    cluster.servers.get_mut(&leader).unwrap().hold_durable = true;
    for i in 0..80 {
        cluster.request(leader, conn, 100 + i, create(&format!("/n{i}"), b"", 0));
        cluster.run();
    }
    cluster.start(late);
    cluster.advance(Duration::from_millis(500), Duration::from_millis(20));
    cluster.release_durable(leader);
    cluster.servers.get_mut(&leader).unwrap().hold_durable = false;
    settle(&mut cluster);
    assert!(
        cluster.until(SECONDS_10, |c| {
            let digests: Vec<u64> = (1..=5).map(|sid| c.node(sid).tree().digest()).collect();
            digests.windows(2).all(|w| w[0] == w[1])
        }),
        "digests differ: {:?}",
        (1..=5)
            .map(|sid| (
                cluster.node(sid).zxid_applied(),
                cluster.node(sid).tree().digest()
            ))
            .collect::<Vec<_>>()
    );
}

/// A learner whose TRUNC is still being carried out when it loses its
/// leader starts its election once the cut is done. (Found by fk-sim, seed
/// 98 of `--servers 3 --steps 20000`: s1's cut took two seconds on a slow
/// disk, it went looking meanwhile, and it never voted again — the
/// ensemble ran on two servers and never settled.)
#[test]
fn a_learner_looks_for_a_leader_once_its_truncation_is_done() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let others: Vec<u64> = (1..=3).filter(|s| *s != leader).collect();
    let (a, b) = (others[0], others[1]);
    let (conn, _) = cluster.connect(leader);
    assert_eq!(
        write(&mut cluster, leader, conn, 1, "/base", b""),
        ErrorCode::Ok
    );
    // Only `a` logs the next proposal; the leader's own log never does, so
    // it is never committed.
    cluster.servers.get_mut(&leader).unwrap().hold_durable = true;
    cluster.partition(leader, b);
    cluster.request(leader, conn, 2, create("/orphan", b"", 0));
    cluster.run();
    cluster.crash(leader);
    cluster.servers.get_mut(&leader).unwrap().hold_durable = false;
    // The old leader and `b` move on without `a`.
    cluster.heal();
    cluster.partition(a, b);
    cluster.partition(a, leader);
    cluster.start(leader);
    assert!(cluster.until(SECONDS_10, |c| c.leaders().len() == 1));
    let new_leader = cluster.leaders()[0];
    let (conn, _) = cluster.connect(new_leader);
    assert_eq!(
        write(&mut cluster, new_leader, conn, 1, "/moved-on", b""),
        ErrorCode::Ok
    );
    // `a` rejoins and is told to cut its tail; the cut is slow.
    cluster.servers.get_mut(&a).unwrap().hold_truncations = true;
    cluster.heal();
    assert!(
        cluster.until(SECONDS_10, |c| !c.servers[&a].held_truncations.is_empty()),
        "a was told to truncate"
    );
    cluster.crash(new_leader);
    cluster.run();
    cluster.release_truncations(a);
    cluster.start(new_leader);
    settle(&mut cluster);
    assert!(cluster.until(SECONDS_10, |c| data_on(c, a, "/moved-on").is_some()));
    assert!(data_on(&cluster, a, "/orphan").is_none());
}

/// A learner whose acceptedEpoch write is still in flight (for a leader it
/// has lost since) tells the next leader that epoch: the next leader's
/// epoch is above it, so no epoch is proposed twice and no acceptedEpoch
/// goes back. (Found by fk-sim, seed 100122 of `--servers 3`: a learner's
/// acceptedEpoch went from 4 back to 3, and it then refused the leader of
/// epoch 3 forever.)
#[test]
fn a_new_leader_counts_an_accepted_epoch_still_being_written() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let first = cluster.leaders()[0];
    let others: Vec<u64> = (1..=3).filter(|s| *s != first).collect();
    let slow = others[0];
    cluster.servers.get_mut(&slow).unwrap().hold_epochs = true;
    cluster.crash(first);
    assert!(
        cluster.until(SECONDS_10, |c| !c.servers[&slow].held_epochs.is_empty()),
        "the slow learner is writing acceptedEpoch 2 for the second leader"
    );
    let second = others[1];
    cluster.partition(slow, second);
    cluster.run();
    cluster.crash(second);
    cluster.heal();
    cluster.start(first);
    assert!(
        cluster.until(SECONDS_10, |c| c.servers[&first].disk.accepted_epoch > 1),
        "the third leader chose its epoch"
    );
    assert_eq!(
        cluster.servers[&first].disk.accepted_epoch, 3,
        "the third leader's epoch is above the 2 the slow learner is writing"
    );
    cluster.release_epochs(slow);
    cluster.start(second);
    settle(&mut cluster);
}

/// Two handshakes of one session reach a follower (the client gave up on
/// the first, held by a partition, and dialled again): when the later one
/// to be answered takes the session, the other connection is closed — else
/// the session's events follow the stale connection, and when it closes
/// the session's watches go with it while the client still uses the other.
/// (Found by fk-sim, seed 100488 of `--servers 3`: a data watch never
/// fired on the connection the client used.)
#[test]
fn a_session_on_a_follower_keeps_one_connection() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let follower = if leader == 1 { 2 } else { 1 };
    let (first, session) = cluster.connect(leader);
    let stale = cluster.reconnect_unanswered(follower, session);
    let live = cluster.reconnect_unanswered(follower, session);
    cluster.run();
    cluster.advance(Duration::from_millis(200), Duration::from_millis(20));
    assert_eq!(cluster.session_of(follower, live), session);
    assert!(
        cluster.closed_conns.contains(&(follower, stale)),
        "the connection the session left is closed"
    );
    assert!(cluster.closed_conns.contains(&(leader, first)) || cluster.is_up(leader));
}

/// ZOOKEEPER-1653: a follower crashes after it made its history durable and
/// before currentEpoch was written (acceptedEpoch is ahead of currentEpoch
/// on its disk); it starts again and rejoins.
#[test]
fn zookeeper_1653_crash_before_current_epoch_still_starts() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let (conn, _) = cluster.connect(3);
    assert_eq!(
        write(&mut cluster, 3, conn, 1, "/before", b""),
        ErrorCode::Ok
    );
    // A new epoch: server 1 accepts it, then crashes at its currentEpoch write.
    cluster.servers.get_mut(&1).unwrap().crash_at_current_epoch = true;
    cluster.crash(3);
    assert!(
        cluster.until(SECONDS_10, |c| !c.is_up(1)),
        "crashed at the currentEpoch write"
    );
    let disk = &cluster.servers[&1].disk;
    assert!(
        disk.accepted_epoch > disk.current_epoch,
        "acceptedEpoch ahead of currentEpoch on disk"
    );
    cluster.servers.get_mut(&1).unwrap().crash_at_current_epoch = false;
    cluster.start(1);
    cluster.start(3);
    settle(&mut cluster);
    let leader = cluster.leaders()[0];
    let (conn, _) = cluster.connect(leader);
    assert_eq!(
        write(&mut cluster, leader, conn, 1, "/after", b""),
        ErrorCode::Ok
    );
    assert!(
        cluster.until(SECONDS_10, |c| (1..=3).all(|sid| data_on(c, sid, "/after")
            .is_some()
            && data_on(c, sid, "/before").is_some()))
    );
}

/// A learner that reaches its leader before the leader has taken up its
/// role (the connection is accepted, then closed) dials again instead of
/// going back to election, and the ensemble settles at once — not after the
/// leader's initLimit (found by fk-sidebyside's failover runs: 20-42 s stalls),
/// and soon: the first redials come after 5 ms, not 100.
#[test]
fn a_learner_early_for_its_leader_dials_again() {
    let mut cluster = Cluster::new(3, 0);
    settle(&mut cluster);
    let before = cluster.now.monotonic;
    cluster.refuse_next_learner = true;
    cluster.crash(3);
    settle(&mut cluster);
    assert!(!cluster.refuse_next_learner, "a dial was refused");
    let took = cluster.now.monotonic - before;
    // The finalize wait (200 ms) and a redial a few milliseconds later; a
    // flat 100 ms between dials made it 300 ms.
    assert!(took < Duration::from_millis(250), "settled in {took:?}");
    assert!(cluster
        .log_lines
        .iter()
        .all(|(_, line)| !line.contains("NotEstablished")));
}
