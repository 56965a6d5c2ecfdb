//! Protocol-aware recovery in a deterministic cluster: a server whose log
//! lost acknowledged records to damage (wal's "recovering" marker) neither
//! proposes itself nor counts in any quorum until it has synchronised from
//! a leader the other servers elected; then it votes again.

mod common;

use std::time::Duration;

use common::cluster::Cluster;
use common::create;
use proto::ErrorCode;

const SECONDS_10: Duration = Duration::from_secs(10);

/// A 3-server ensemble led by 3, with `/k0`..`/k4` written and acknowledged
/// while server 2's disk was stalled: the writes are on 1 and 3 only. Then
/// every server stops, and server 1's log loses everything after the first
/// write to damage (marker set), as wal's set-aside leaves it. Returns the
/// cluster (all down) and the zxid of the last acknowledged write.
fn damaged_ensemble() -> (Cluster, i64) {
    let mut cluster = Cluster::new(3, 0);
    assert!(cluster.until(SECONDS_10, Cluster::settled));
    assert_eq!(cluster.leaders(), vec![3]);
    let (conn, _) = cluster.connect(3);
    cluster.servers.get_mut(&2).unwrap().hold_durable = true;
    for i in 0..5 {
        cluster.request(3, conn, i + 1, create(&format!("/k{i}"), b"v", 0));
        let answered = cluster.until(SECONDS_10, |c| {
            c.replies(3, conn).iter().any(|f| f.xid == i + 1)
        });
        assert!(answered, "write {i} acknowledged");
        let reply = cluster.replies(3, conn);
        assert_eq!(reply.last().unwrap().error(), ErrorCode::Ok);
    }
    let acked = cluster.node(3).zxid_committed();
    for sid in 1..=3 {
        cluster.crash(sid);
    }
    cluster.servers.get_mut(&2).unwrap().hold_durable = false;
    assert!(
        cluster.servers[&2].disk.last_logged() < acked,
        "2 lacks the writes"
    );
    assert_eq!(cluster.servers[&1].disk.last_logged(), acked);
    let first_write = cluster.servers[&1]
        .disk
        .log
        .iter()
        .find(|r| r.zxid > cluster.servers[&2].disk.last_logged())
        .unwrap()
        .zxid;
    let disk = &mut cluster.servers.get_mut(&1).unwrap().disk;
    disk.log.retain(|r| r.zxid <= first_write);
    disk.recovering = Some(first_write);
    (cluster, acked)
}

fn holds(cluster: &Cluster, sid: u64, path: &str) -> bool {
    cluster.node(sid).tree().node(path).is_some()
}

#[test]
fn a_damaged_server_and_one_without_the_writes_form_no_leader() {
    // Server 1 lost /k1../k4 to damage, server 2 never had them, server 3
    // (the only other holder) is down: no leader may form from 1 and 2 —
    // unavailable, not lossy. Server 1 never names itself in a vote.
    let (mut cluster, _) = damaged_ensemble();
    cluster.start(1);
    cluster.start(2);
    cluster.advance(Duration::from_secs(20), Duration::from_millis(50));
    for sid in [1, 2] {
        assert_ne!(cluster.node(sid).mode(), "leader", "server {sid} leads");
        assert!(!cluster.node(sid).serving(), "server {sid} serves");
    }
    assert!(cluster.node(1).recovering().is_some());
    assert!(cluster
        .log_lines
        .iter()
        .any(|(sid, line)| *sid == 1 && line.contains("not voting") && line.contains("server 1")));
}

#[test]
fn voting_as_if_the_lost_records_were_held_loses_acknowledged_writes() {
    // The control, ZooKeeper's behaviour (Mutation::VoteAsIfLostRecordsHeld):
    // servers 1 and 2 elect a leader and /k4, acknowledged, is gone.
    let (mut cluster, _) = damaged_ensemble();
    cluster.mutation = Some(replication::Mutation::VoteAsIfLostRecordsHeld);
    cluster.start(1);
    cluster.start(2);
    assert!(
        cluster.until(SECONDS_10, Cluster::settled),
        "1 and 2 elect a leader"
    );
    assert!(!holds(&cluster, 1, "/k4") && !holds(&cluster, 2, "/k4"));
}

#[test]
fn the_damaged_server_recovers_from_a_leader_the_others_elect_and_votes_again() {
    // Server 3 returns: 2 and 3 elect 3 (1 abstains), 1 synchronises from
    // it, clears its marker at UPTODATE and holds every acknowledged write.
    // Then 3 stops: 1 and 2 elect a leader — 1 is a voter again. The
    // four-letter-word report (mntr's zk_fk_recovering) says recovering
    // exactly while the marker holds.
    let (mut cluster, acked) = damaged_ensemble();
    cluster.start(1);
    cluster.start(2);
    cluster.advance(Duration::from_secs(2), Duration::from_millis(50));
    let report = cluster.four_letter_word(1, "mntr");
    assert!(report.recovering && !report.serving, "{report:?}");
    assert!(!cluster.four_letter_word(2, "mntr").recovering);
    cluster.start(3);
    assert!(
        cluster.until(SECONDS_10, Cluster::settled),
        "{:#?}",
        cluster.log_lines
    );
    assert_eq!(cluster.leaders(), vec![3]);
    assert!(cluster.until(SECONDS_10, |c| (1..=3)
        .all(|sid| c.node(sid).zxid_applied() >= acked)));
    for sid in 1..=3 {
        for i in 0..5 {
            assert!(
                holds(&cluster, sid, &format!("/k{i}")),
                "server {sid} lacks /k{i}"
            );
        }
    }
    assert_eq!(cluster.node(1).recovering(), None);
    assert_eq!(
        cluster.servers[&1].disk.recovering, None,
        "marker cleared on disk"
    );
    let report = cluster.four_letter_word(1, "mntr");
    assert!(!report.recovering && report.serving, "{report:?}");
    assert!(cluster
        .log_lines
        .iter()
        .any(|(sid, line)| *sid == 1 && line.contains("voting again")));
    cluster.crash(3);
    assert!(
        cluster.until(SECONDS_10, Cluster::settled),
        "1 and 2 elect a leader"
    );
    for sid in [1, 2] {
        assert!(holds(&cluster, sid, "/k4"));
    }
}
