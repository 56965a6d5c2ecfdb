//! The leader and learner state machines driven message by message, with
//! the exact actions asserted: each persistence order ZAB needs, and the
//! ZooKeeper replication bugs that broke one, named after them.

use bytes::Bytes;
use replication::leader::{make_zxid, Leader, LeaderAction, LeaderConfig, LeaderPhase, LinkId};
use replication::learner::{Learner, LearnerAction, LearnerConfig, LearnerPhase};
use replication::{
    Ensemble, LeaderMessage, LearnerInfo, LearnerMessage, LearnerType, QuorumPacket, ServerSpec,
};

fn ensemble(voters: u64) -> Ensemble {
    Ensemble::new((1..=voters).map(|sid| {
        ServerSpec::parse(sid, &format!("127.0.0.1:{}:{}", 2000 + sid, 3000 + sid)).unwrap()
    }))
    .unwrap()
}

fn learner_config(sid: u64) -> LearnerConfig {
    LearnerConfig {
        my_sid: sid,
        kind: LearnerType::Participant,
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        mutation: None,
        recovering: None,
    }
}

fn leader_config(sid: u64, voters: u64) -> LeaderConfig {
    LeaderConfig {
        my_sid: sid,
        ensemble: ensemble(voters),
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        window_txns_max: 100,
        window_bytes_max: 1 << 20,
        queue_bytes_max: 1 << 20,
        mutation: None,
    }
}

fn txn(n: u8) -> Bytes {
    Bytes::from(vec![n; 8])
}

/// Decodes what a learner sent.
fn sent_by_learner(actions: &[LearnerAction]) -> Vec<LearnerMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            LearnerAction::Send { packet } => {
                Some(LearnerMessage::from_packet(&QuorumPacket::decode(packet).unwrap()).unwrap())
            }
            _ => None,
        })
        .collect()
}

/// Decodes what the leader sent on `link`.
fn sent_by_leader(actions: &[LeaderAction], link: LinkId) -> Vec<LeaderMessage> {
    actions
        .iter()
        .filter_map(|a| match a {
            LeaderAction::Send { link: l, packet } if *l == link => {
                Some(LeaderMessage::from_packet(&QuorumPacket::decode(packet).unwrap()).unwrap())
            }
            _ => None,
        })
        .collect()
}

/// A learner that has registered and acknowledged epoch 2, at `last` zxid.
fn registered_learner(last: i64) -> Learner {
    let mut learner = Learner::new(learner_config(1), 1, 1, last, 0);
    let mut out = Vec::new();
    learner.connected(0, &mut out);
    learner.received(
        LeaderMessage::LeaderInfo {
            zxid: make_zxid(2, 0),
            protocol_version: 0x10000,
        },
        0,
        &mut out,
    );
    assert_eq!(
        out.last(),
        Some(&LearnerAction::PersistAcceptedEpoch { epoch: 2 })
    );
    out.clear();
    learner.epoch_persisted(&mut out);
    assert_eq!(
        sent_by_learner(&out),
        vec![LearnerMessage::AckEpoch {
            last_logged_zxid: last,
            current_epoch: 1
        }]
    );
    learner
}

/// acceptedEpoch is durable before ACKEPOCH leaves.
#[test]
fn ackepoch_waits_for_the_accepted_epoch_to_be_durable() {
    let mut learner = Learner::new(learner_config(1), 1, 1, make_zxid(1, 5), 0);
    let mut out = Vec::new();
    learner.connected(0, &mut out);
    assert_eq!(
        sent_by_learner(&out),
        vec![LearnerMessage::FollowerInfo {
            zxid: make_zxid(1, 0),
            info: Some(LearnerInfo::current(1, 0))
        }]
    );
    out.clear();
    let info = LeaderMessage::LeaderInfo {
        zxid: make_zxid(2, 0),
        protocol_version: 0x10000,
    };
    learner.received(info, 0, &mut out);
    assert_eq!(out, vec![LearnerAction::PersistAcceptedEpoch { epoch: 2 }]);
    out.clear();
    learner.epoch_persisted(&mut out);
    assert_eq!(sent_by_learner(&out).len(), 1, "ACKEPOCH only now");
}

/// ZOOKEEPER-3911 / 3023 / 4785: txns received in synchronisation are
/// durable before NEWLEADER is acknowledged; ZOOKEEPER-4643 / 4646 / 4685:
/// currentEpoch is written only after them, and the ack only after it.
#[test]
fn zookeeper_3911_4643_newleader_ack_waits_for_txns_then_current_epoch() {
    let mut learner = registered_learner(make_zxid(1, 5));
    let mut out = Vec::new();
    learner.received(
        LeaderMessage::Diff {
            zxid: make_zxid(1, 7),
        },
        0,
        &mut out,
    );
    for n in 6..=7 {
        let zxid = make_zxid(1, n);
        learner.received(
            LeaderMessage::Proposal {
                zxid,
                txn: txn(n as u8),
            },
            0,
            &mut out,
        );
        learner.received(LeaderMessage::Commit { zxid }, 0, &mut out);
    }
    out.clear();
    learner.received(
        LeaderMessage::NewLeader {
            zxid: make_zxid(2, 0),
            config: None,
        },
        0,
        &mut out,
    );
    assert!(
        out.is_empty(),
        "nothing while the txns are not durable: {out:?}"
    );
    learner.durable(make_zxid(1, 6), &mut out);
    assert!(out.is_empty(), "not all of them are durable yet: {out:?}");
    learner.durable(make_zxid(1, 7), &mut out);
    assert_eq!(out, vec![LearnerAction::PersistCurrentEpoch { epoch: 2 }]);
    out.clear();
    learner.epoch_persisted(&mut out);
    assert_eq!(
        sent_by_learner(&out),
        vec![LearnerMessage::Ack {
            zxid: make_zxid(2, 0)
        }]
    );
    assert_eq!(learner.current_epoch(), 2);
    assert_eq!(learner.phase(), LearnerPhase::AwaitingUpToDate);
}

/// ZOOKEEPER-2872 / 3104: a snapshot received by SNAP is sealed on disk
/// before NEWLEADER is acknowledged.
#[test]
fn zookeeper_2872_snap_is_sealed_before_the_newleader_ack() {
    let mut learner = registered_learner(make_zxid(1, 1));
    let mut out = Vec::new();
    let snap_zxid = make_zxid(1, 900);
    learner.received(LeaderMessage::Snap { zxid: snap_zxid }, 0, &mut out);
    learner.received(
        LeaderMessage::SnapChunk {
            zxid: snap_zxid,
            chunk: Bytes::from_static(b"tree"),
        },
        0,
        &mut out,
    );
    learner.received(LeaderMessage::SnapEnd { zxid: snap_zxid }, 0, &mut out);
    assert_eq!(
        out,
        vec![
            LearnerAction::SnapshotBegin { zxid: snap_zxid },
            LearnerAction::SnapshotChunk {
                chunk: Bytes::from_static(b"tree")
            },
            LearnerAction::SnapshotEnd { zxid: snap_zxid },
        ]
    );
    out.clear();
    learner.received(
        LeaderMessage::NewLeader {
            zxid: make_zxid(2, 0),
            config: None,
        },
        0,
        &mut out,
    );
    assert!(out.is_empty(), "the snapshot is not sealed yet: {out:?}");
    learner.snapshot_sealed(&mut out);
    assert_eq!(out, vec![LearnerAction::PersistCurrentEpoch { epoch: 2 }]);
}

/// ZOOKEEPER-4394: a COMMIT for an outstanding proposal arrives between the
/// NEWLEADER ack and UPTODATE; it is applied, not refused.
#[test]
fn zookeeper_4394_commit_between_newleader_ack_and_uptodate() {
    let mut learner = registered_learner(make_zxid(1, 1));
    let mut out = Vec::new();
    learner.received(
        LeaderMessage::Diff {
            zxid: make_zxid(1, 1),
        },
        0,
        &mut out,
    );
    // Proposed by the established leader of epoch 2, not yet committed.
    let outstanding = make_zxid(2, 1);
    learner.received(
        LeaderMessage::Proposal {
            zxid: outstanding,
            txn: txn(2),
        },
        0,
        &mut out,
    );
    learner.received(
        LeaderMessage::NewLeader {
            zxid: make_zxid(2, 0),
            config: None,
        },
        0,
        &mut out,
    );
    learner.durable(outstanding, &mut out);
    learner.epoch_persisted(&mut out);
    out.clear();
    learner.received(LeaderMessage::Commit { zxid: outstanding }, 0, &mut out);
    assert_eq!(out, vec![LearnerAction::Commit { zxid: outstanding }]);
    out.clear();
    learner.received(LeaderMessage::UpToDate, 0, &mut out);
    assert_eq!(out[0], LearnerAction::UpToDate);
    assert_eq!(
        sent_by_learner(&out),
        vec![LearnerMessage::Ack { zxid: outstanding }],
        "the proposal forwarded during sync is acknowledged once serving"
    );
}

/// A proposal is acknowledged only once durable, with the highest durable zxid.
#[test]
fn proposals_are_acknowledged_once_durable_cumulatively() {
    let mut learner = registered_learner(make_zxid(1, 1));
    let mut out = Vec::new();
    learner.received(
        LeaderMessage::Diff {
            zxid: make_zxid(1, 1),
        },
        0,
        &mut out,
    );
    learner.received(
        LeaderMessage::NewLeader {
            zxid: make_zxid(2, 0),
            config: None,
        },
        0,
        &mut out,
    );
    learner.epoch_persisted(&mut out);
    learner.received(LeaderMessage::UpToDate, 0, &mut out);
    out.clear();
    for n in 1..=3 {
        let zxid = make_zxid(2, n);
        learner.received(
            LeaderMessage::Proposal {
                zxid,
                txn: txn(n as u8),
            },
            0,
            &mut out,
        );
    }
    assert!(sent_by_learner(&out).is_empty(), "no ACK before durable");
    out.clear();
    learner.durable(make_zxid(2, 3), &mut out);
    assert_eq!(
        sent_by_learner(&out),
        vec![LearnerMessage::Ack {
            zxid: make_zxid(2, 3)
        }]
    );
}

/// A leader offering an older epoch than the one accepted is given up.
#[test]
fn a_stale_leader_epoch_is_refused() {
    let mut learner = Learner::new(learner_config(1), 5, 5, make_zxid(5, 1), 0);
    let mut out = Vec::new();
    learner.connected(0, &mut out);
    out.clear();
    learner.received(
        LeaderMessage::LeaderInfo {
            zxid: make_zxid(4, 0),
            protocol_version: 0x10000,
        },
        0,
        &mut out,
    );
    assert!(matches!(out.as_slice(), [LearnerAction::Lost { .. }]));
}

/// An observer follows a leader whose epoch is older than one it accepted:
/// it never votes, so its acceptedEpoch guards no quorum — an epoch offered
/// to it by a leader that never got established must not keep it from the
/// one that did. (Found by fk-sim, seed 400031 of `--servers 3 --observers
/// 1`: the observer had accepted epoch 3 from a leader that failed; the
/// ensemble established epoch 2 and the observer refused it forever.)
#[test]
fn an_observer_follows_an_established_leader_of_an_older_epoch() {
    let config = LearnerConfig {
        kind: LearnerType::Observer,
        ..learner_config(4)
    };
    let mut learner = Learner::new(config, 3, 1, make_zxid(1, 7), 0);
    let mut out = Vec::new();
    learner.connected(0, &mut out);
    out.clear();
    learner.received(
        LeaderMessage::LeaderInfo {
            zxid: make_zxid(2, 0),
            protocol_version: 0x10000,
        },
        0,
        &mut out,
    );
    assert!(
        matches!(out.as_slice(), [LearnerAction::Send { .. }]),
        "{out:?}"
    );
    assert_eq!(learner.phase(), LearnerPhase::AwaitingSync);
}

/// Brings a leader of 3 through discovery with learners on links 1 and 2 at
/// the given last zxids; returns the leader and everything it did.
fn leader_with_learners(
    history: Vec<(i64, Bytes)>,
    last: i64,
    learners: &[i64],
) -> (Leader, Vec<LeaderAction>) {
    let mut leader = Leader::new(leader_config(3, 3), 1, 1, history, last, 0);
    let mut out = Vec::new();
    leader.start(&mut out);
    for (i, _) in learners.iter().enumerate() {
        let link = i as LinkId + 1;
        leader.connected(link, 0);
        let info = LearnerMessage::FollowerInfo {
            zxid: make_zxid(1, 0),
            info: Some(LearnerInfo::current(link as i64, 0)),
        };
        leader.received(link, info, 0, &mut out);
    }
    assert!(out.contains(&LeaderAction::PersistAcceptedEpoch { epoch: 2 }));
    leader.epoch_persisted(&mut out);
    for (i, learner_last) in learners.iter().enumerate() {
        let ack = LearnerMessage::AckEpoch {
            last_logged_zxid: *learner_last,
            current_epoch: 1,
        };
        leader.received(i as LinkId + 1, ack, 0, &mut out);
    }
    assert!(out.contains(&LeaderAction::PersistCurrentEpoch { epoch: 2 }));
    leader.check_invariants();
    (leader, out)
}

/// A participant that accepted an epoch above the leader's (offered
/// by a leader that never got established) can never follow it: the leader
/// steps down, so the next election chooses an epoch above every accepted
/// one. (Found by fk-sim, seed 400031 of `--servers 3 --observers 1`: the
/// participant refused the leader of epoch 2 forever, StaleEpoch.)
#[test]
fn a_participant_that_accepted_a_later_epoch_makes_the_leader_step_down() {
    let (mut leader, _) = leader_with_learners(Vec::new(), make_zxid(1, 0), &[make_zxid(1, 0)]);
    let mut out = Vec::new();
    leader.connected(2, 0);
    let info = LearnerMessage::FollowerInfo {
        zxid: make_zxid(3, 0),
        info: Some(LearnerInfo::current(2, 0)),
    };
    leader.received(2, info, 0, &mut out);
    assert!(
        out.iter()
            .any(|a| matches!(a, LeaderAction::StepDown { .. })),
        "{out:?}"
    );
}

/// ZOOKEEPER-1154: a learner holding a txn the leader never had is cut back
/// to the last txn both have (TRUNC), then given the rest (DIFF); a learner
/// ahead of the leader's history is cut to it; one equal gets an empty DIFF.
#[test]
fn zookeeper_1154_sync_chooses_diff_or_trunc_from_the_history() {
    let history: Vec<(i64, Bytes)> = (1..=5).map(|n| (make_zxid(1, n), txn(n as u8))).collect();
    // Link 1 is at 1:3, which the leader has: a plain DIFF from there.
    let (_, out) = leader_with_learners(
        history.clone(),
        make_zxid(1, 5),
        &[make_zxid(1, 3), make_zxid(1, 9)],
    );
    assert_eq!(
        sent_by_leader(&out, 1)[1..4],
        [
            LeaderMessage::Diff {
                zxid: make_zxid(1, 5)
            },
            LeaderMessage::Proposal {
                zxid: make_zxid(1, 4),
                txn: txn(4)
            },
            LeaderMessage::Commit {
                zxid: make_zxid(1, 4)
            },
        ]
    );
    assert_eq!(
        sent_by_leader(&out, 2)[1],
        LeaderMessage::Trunc {
            zxid: make_zxid(1, 5)
        },
        "a learner past the leader's history is truncated to it"
    );

    // A learner whose last txn the leader never had (a zxid between two of
    // the leader's): TRUNC to the last common one, then the txns after it
    // (no DIFF: the learner takes one sync packet, as ZooKeeper's does).
    let history: Vec<(i64, Bytes)> = [1, 2, 5, 6]
        .iter()
        .map(|n| (make_zxid(1, *n), txn(*n as u8)))
        .collect();
    let (_, out) = leader_with_learners(
        history,
        make_zxid(1, 6),
        &[make_zxid(1, 3), make_zxid(1, 6)],
    );
    let to_one = sent_by_leader(&out, 1);
    assert_eq!(
        to_one[1],
        LeaderMessage::Trunc {
            zxid: make_zxid(1, 2)
        }
    );
    assert_eq!(
        to_one[2],
        LeaderMessage::Proposal {
            zxid: make_zxid(1, 5),
            txn: txn(5)
        }
    );
    assert!(
        !to_one
            .iter()
            .any(|m| matches!(m, LeaderMessage::Diff { .. })),
        "TRUNC opens the sync alone"
    );
    assert_eq!(
        sent_by_leader(&out, 2)[1],
        LeaderMessage::Diff {
            zxid: make_zxid(1, 6)
        }
    );
}

/// A learner older than the leader's history gets SNAP, and everything else
/// for it waits behind the snapshot's chunks.
#[test]
fn an_old_learner_gets_snap_and_its_stream_stays_in_order() {
    let history: Vec<(i64, Bytes)> = (10..=12).map(|n| (make_zxid(1, n), txn(n as u8))).collect();
    let (mut leader, out) = leader_with_learners(
        history,
        make_zxid(1, 12),
        &[make_zxid(1, 2), make_zxid(1, 12)],
    );
    assert!(out.contains(&LeaderAction::StartSnapshot { link: 1 }));
    let mut out = Vec::new();
    leader.snapshot_begun(1, make_zxid(1, 12), &mut out);
    leader.snapshot_chunk(1, make_zxid(1, 12), Bytes::from_static(b"chunk"), &mut out);
    let sent = sent_by_leader(&out, 1);
    assert_eq!(
        sent[0],
        LeaderMessage::Snap {
            zxid: make_zxid(1, 12)
        }
    );
    assert_eq!(
        sent[1],
        LeaderMessage::SnapChunk {
            zxid: make_zxid(1, 12),
            chunk: Bytes::from_static(b"chunk")
        },
        "NEWLEADER waits behind the snapshot"
    );
    out.clear();
    leader.snapshot_end(1, make_zxid(1, 12), &mut out);
    let sent = sent_by_leader(&out, 1);
    assert_eq!(
        sent[0],
        LeaderMessage::SnapEnd {
            zxid: make_zxid(1, 12)
        }
    );
    assert!(matches!(sent[1], LeaderMessage::NewLeader { .. }));
}

/// A participant whose history is ahead of the leader's makes the leader
/// step down in discovery (ZooKeeper's "Follower is ahead of the leader").
#[test]
fn a_learner_ahead_makes_the_leader_step_down() {
    let mut leader = Leader::new(leader_config(3, 3), 1, 1, Vec::new(), make_zxid(1, 5), 0);
    let mut out = Vec::new();
    leader.start(&mut out);
    leader.connected(1, 0);
    let info = LearnerMessage::FollowerInfo {
        zxid: make_zxid(1, 0),
        info: Some(LearnerInfo::current(1, 0)),
    };
    leader.received(1, info, 0, &mut out);
    leader.epoch_persisted(&mut out);
    out.clear();
    let ack = LearnerMessage::AckEpoch {
        last_logged_zxid: make_zxid(1, 9),
        current_epoch: 1,
    };
    leader.received(1, ack, 0, &mut out);
    assert!(
        matches!(out.as_slice(), [LeaderAction::StepDown { .. }]),
        "{out:?}"
    );
}

/// Commits need a quorum of durable acks, the leader's own included, and
/// go out in zxid order.
#[test]
fn commits_follow_quorum_acks_in_zxid_order() {
    let (mut leader, _) = leader_with_learners(Vec::new(), 0, &[0, 0]);
    let mut out = Vec::new();
    leader.epoch_persisted(&mut out);
    for link in [1, 2] {
        leader.received(
            link,
            LearnerMessage::Ack {
                zxid: make_zxid(2, 0),
            },
            0,
            &mut out,
        );
    }
    assert!(out.contains(&LeaderAction::Established { epoch: 2 }));
    assert_eq!(*leader.phase(), LeaderPhase::Broadcast);
    out.clear();
    for n in 1..=3 {
        leader.propose(make_zxid(2, n), txn(n as u8), &mut out);
    }
    leader.received(
        1,
        LearnerMessage::Ack {
            zxid: make_zxid(2, 2),
        },
        0,
        &mut out,
    );
    assert!(
        !out.iter().any(|a| matches!(a, LeaderAction::Commit { .. })),
        "the leader's own log is not durable"
    );
    leader.local_durable(make_zxid(2, 3), &mut out);
    assert!(out.contains(&LeaderAction::Commit {
        zxid: make_zxid(2, 2)
    }));
    let commits: Vec<LeaderMessage> = sent_by_leader(&out, 2)
        .into_iter()
        .filter(|m| matches!(m, LeaderMessage::Commit { .. }))
        .collect();
    assert_eq!(
        commits,
        vec![
            LeaderMessage::Commit {
                zxid: make_zxid(2, 1)
            },
            LeaderMessage::Commit {
                zxid: make_zxid(2, 2)
            }
        ]
    );
    leader.check_invariants();
}

/// An observer that acknowledges NEWLEADER before the participants have made
/// a quorum still gets UPTODATE once the leader is established: its ack is
/// remembered though it counts for no quorum (before, only participants'
/// acks were, and such an observer synced but never served).
#[test]
fn an_observer_acking_newleader_early_gets_uptodate_on_establishment() {
    let mut specs: Vec<ServerSpec> = (1..=3)
        .map(|sid| {
            ServerSpec::parse(sid, &format!("127.0.0.1:{}:{}", 2000 + sid, 3000 + sid)).unwrap()
        })
        .collect();
    specs.push(ServerSpec::parse(4, "127.0.0.1:2004:3004:observer").unwrap());
    let config = LeaderConfig {
        ensemble: Ensemble::new(specs).unwrap(),
        ..leader_config(3, 3)
    };
    let mut leader = Leader::new(config, 1, 1, Vec::new(), make_zxid(1, 0), 0);
    let mut out = Vec::new();
    leader.start(&mut out);
    let (follower, observer): (LinkId, LinkId) = (1, 4);
    leader.connected(follower, 0);
    leader.connected(observer, 0);
    leader.received(
        follower,
        LearnerMessage::FollowerInfo {
            zxid: make_zxid(1, 0),
            info: Some(LearnerInfo::current(1, 0)),
        },
        0,
        &mut out,
    );
    leader.received(
        observer,
        LearnerMessage::ObserverInfo {
            zxid: make_zxid(1, 0),
            info: Some(LearnerInfo::current(4, 0)),
        },
        0,
        &mut out,
    );
    leader.epoch_persisted(&mut out);
    for link in [observer, follower] {
        let ack = LearnerMessage::AckEpoch {
            last_logged_zxid: make_zxid(1, 0),
            current_epoch: 1,
        };
        leader.received(link, ack, 0, &mut out);
    }
    assert!(out.contains(&LeaderAction::PersistCurrentEpoch { epoch: 2 }));
    leader.epoch_persisted(&mut out);
    let newleader_ack = LearnerMessage::Ack {
        zxid: make_zxid(2, 0),
    };
    // The observer first: the leader is not established by it.
    out.clear();
    leader.received(observer, newleader_ack.clone(), 0, &mut out);
    assert!(!out
        .iter()
        .any(|a| matches!(a, LeaderAction::Established { .. })));
    assert!(!sent_by_leader(&out, observer).contains(&LeaderMessage::UpToDate));
    // The follower's ack makes the quorum (with the leader): both are told.
    out.clear();
    leader.received(follower, newleader_ack, 0, &mut out);
    assert!(out.contains(&LeaderAction::Established { epoch: 2 }));
    assert_eq!(*leader.phase(), LeaderPhase::Broadcast);
    assert!(sent_by_leader(&out, follower).contains(&LeaderMessage::UpToDate));
    assert!(
        sent_by_leader(&out, observer).contains(&LeaderMessage::UpToDate),
        "the observer that acked first is told too"
    );
    assert_eq!(leader.learner_counts(), (1, 1));
    leader.check_invariants();
}

/// What the leader sends to sync each kind of learner, a learner takes
/// whole: fed packet by packet into a learner at the learner's zxid, it
/// never leaves the follower role and ends synchronised at the leader's
/// history (before, TRUNC was followed by DIFF, which the learner refused as
/// a second sync packet: every rejoin with an uncommitted tail cost two
/// elections, found by tests/test_ensemble.py's TRUNC case).
#[test]
fn a_learner_takes_every_sync_the_leader_sends() {
    let history: Vec<(i64, Bytes)> = [1, 2, 5, 6]
        .iter()
        .map(|n| (make_zxid(1, *n), txn(*n as u8)))
        .collect();
    // Equal (empty DIFF), behind (DIFF), holding an unknown txn (TRUNC then
    // txns), ahead (TRUNC).
    let cases = [
        (make_zxid(1, 6), None),
        (make_zxid(1, 2), None),
        (make_zxid(1, 3), Some(make_zxid(1, 2))),
        (make_zxid(1, 9), Some(make_zxid(1, 6))),
    ];
    for (learner_last, truncated_to) in cases {
        let (_, out) = leader_with_learners(
            history.clone(),
            make_zxid(1, 6),
            &[make_zxid(1, 6), learner_last],
        );
        let mut learner = registered_learner(learner_last);
        let mut actions = Vec::new();
        // Link 2 (its ack comes after link 1's has made the quorum, so the
        // one ahead is cut back rather than making the leader step down).
        // The first packet on the link is LEADERINFO, already taken by
        // registered_learner.
        for message in sent_by_leader(&out, 2).into_iter().skip(1) {
            learner.received(message, 0, &mut actions);
        }
        assert!(
            !actions
                .iter()
                .any(|a| matches!(a, LearnerAction::Lost { .. })),
            "learner at {learner_last:#x} gave up: {actions:?}"
        );
        assert_eq!(
            actions.iter().find_map(|a| match a {
                LearnerAction::Truncate { zxid } => Some(*zxid),
                _ => None,
            }),
            truncated_to,
            "learner at {learner_last:#x}"
        );
        let logged: Vec<i64> = actions
            .iter()
            .filter_map(|a| match a {
                LearnerAction::Txn { zxid, .. } => Some(*zxid),
                _ => None,
            })
            .collect();
        let from = truncated_to.unwrap_or(learner_last).min(make_zxid(1, 6));
        let expected: Vec<i64> = history
            .iter()
            .map(|(zxid, _)| *zxid)
            .filter(|zxid| *zxid > from)
            .collect();
        assert_eq!(logged, expected, "learner at {learner_last:#x}");
        assert_eq!(
            actions.iter().rev().find_map(|a| match a {
                LearnerAction::Commit { zxid } => Some(*zxid),
                _ => None,
            }),
            Some(make_zxid(1, 6)),
            "learner at {learner_last:#x} commits the leader's history"
        );
    }
}

/// ZOOKEEPER-2418 / 2846: a DIFF built from the leader's records skipped
/// txns. From every position in the history (a learner holding its first
/// txn or any later one), the learner is sent every txn
/// after it, each once, in zxid order, each PROPOSAL followed by its COMMIT,
/// and nothing it already has.
#[test]
fn zookeeper_2418_2846_diff_skips_no_txn() {
    const LAST: u32 = 12;
    let history: Vec<(i64, Bytes)> = (1..=LAST)
        .map(|n| (make_zxid(1, n), txn(n as u8)))
        .collect();
    for from in 1..=LAST {
        let (_, out) = leader_with_learners(
            history.clone(),
            make_zxid(1, LAST),
            &[make_zxid(1, from), make_zxid(1, LAST)],
        );
        let sent = sent_by_leader(&out, 1);
        assert_eq!(
            sent[1],
            LeaderMessage::Diff {
                zxid: make_zxid(1, LAST)
            },
            "from 1:{from}"
        );
        let mut expected = Vec::new();
        for n in from + 1..=LAST {
            expected.push(LeaderMessage::Proposal {
                zxid: make_zxid(1, n),
                txn: txn(n as u8),
            });
            expected.push(LeaderMessage::Commit {
                zxid: make_zxid(1, n),
            });
        }
        let synced: Vec<LeaderMessage> = sent[2..]
            .iter()
            .take_while(|m| !matches!(m, LeaderMessage::NewLeader { .. }))
            .cloned()
            .collect();
        assert_eq!(synced, expected, "from 1:{from}");
        assert!(
            sent[2 + synced.len()..]
                .iter()
                .any(|m| matches!(m, LeaderMessage::NewLeader { .. })),
            "from 1:{from}: NEWLEADER follows the txns"
        );
    }
}

/// Per-learner queues are bounded in bytes: a learner whose connection
/// stops taking bytes (its socket reports no progress) is closed once its
/// queue passes `queue_bytes_max`, with the reason, and must re-sync; a
/// learner that keeps up is untouched and the quorum goes on committing.
#[test]
fn a_learner_whose_queue_overflows_is_closed_and_the_rest_commit() {
    let (mut leader, _) = leader_with_learners(Vec::new(), 0, &[0, 0]);
    let mut out = Vec::new();
    leader.epoch_persisted(&mut out);
    for link in [1, 2] {
        let ack = LearnerMessage::Ack {
            zxid: make_zxid(2, 0),
        };
        leader.received(link, ack, 0, &mut out);
    }
    assert!(out.contains(&LeaderAction::Established { epoch: 2 }));
    let big = Bytes::from(vec![9u8; 64 * 1024]);
    let mut closed_at = None;
    for n in 1..=40u32 {
        let mut out = Vec::new();
        leader.propose(make_zxid(2, n), big.clone(), &mut out);
        leader.local_durable(make_zxid(2, n), &mut out);
        // Link 1's socket takes everything it is handed and acknowledges;
        // link 2's takes nothing.
        let written: usize = out
            .iter()
            .filter_map(|a| match a {
                LeaderAction::Send { link: 1, packet } => Some(packet.len()),
                _ => None,
            })
            .sum();
        leader.written(1, written);
        let ack = LearnerMessage::Ack {
            zxid: make_zxid(2, n),
        };
        leader.received(1, ack, 0, &mut out);
        assert!(
            out.contains(&LeaderAction::Commit {
                zxid: make_zxid(2, n)
            }),
            "txn {n} commits with the leader and link 1"
        );
        for action in &out {
            if let LeaderAction::Close { link, reason } = action {
                assert_eq!(*link, 2, "only the stalled learner is closed");
                assert!(reason.contains("re-sync"), "{reason}");
                closed_at.get_or_insert(n);
            }
        }
        leader.check_invariants();
    }
    let closed_at = closed_at.expect("the stalled learner is closed");
    // 1 MiB of 64 KiB proposals: closed on the 16th or 17th.
    assert!((16..=17).contains(&closed_at), "closed at txn {closed_at}");
    assert_eq!(*leader.phase(), LeaderPhase::Broadcast);
}
