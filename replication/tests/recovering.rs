//! Protocol-aware recovery in the leader and the learner: a learner that
//! says in FOLLOWERINFO that it recovers records lost to damage counts in
//! none of the leader's quorums (discovery, epoch acks, NEWLEADER acks,
//! commits) until it is synced, and is never a reason to step down.

use bytes::Bytes;
use replication::leader::{make_zxid, Leader, LeaderAction, LeaderConfig, LeaderPhase};
use replication::learner::{Learner, LearnerAction, LearnerConfig};
use replication::messages::LearnerInfo;
use replication::{Ensemble, LeaderMessage, LearnerMessage, LearnerType, QuorumPacket};

fn ensemble() -> Ensemble {
    Ensemble::from_server_values([(1, "a:2888:3888"), (2, "b:2888:3888"), (3, "c:2888:3888")])
        .unwrap()
}

fn leader() -> Leader {
    let config = LeaderConfig {
        my_sid: 3,
        ensemble: ensemble(),
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        window_txns_max: 100,
        window_bytes_max: 1 << 20,
        queue_bytes_max: 1 << 20,
        mutation: None,
    };
    let history = vec![(make_zxid(1, 1), Bytes::from_static(b"txn"))];
    let mut leader = Leader::new(config, 1, 1, history, make_zxid(1, 1), 0);
    leader.start(&mut Vec::new());
    leader
}

fn follower_info(sid: i64, accepted_epoch: i64, recovering: Option<i64>) -> LearnerMessage {
    LearnerMessage::FollowerInfo {
        zxid: make_zxid(accepted_epoch, 0),
        info: Some(LearnerInfo {
            recovering,
            ..LearnerInfo::current(sid, 0)
        }),
    }
}

fn steps_down(out: &[LeaderAction]) -> bool {
    out.iter()
        .any(|a| matches!(a, LeaderAction::StepDown { .. }))
}

#[test]
fn a_recovering_follower_counts_in_no_quorum_of_the_leader() {
    // Leader 3 with a recovering server 1 alone: discovery, epoch acks and
    // NEWLEADER acks never reach a quorum, even when server 1 is "ahead";
    // with server 2 they do, and only then does server 1 get UPTODATE.
    let mut leader = leader();
    let mut out = Vec::new();
    leader.connected(1, 0);
    leader.received(1, follower_info(1, 5, Some(make_zxid(1, 0))), 0, &mut out);
    assert!(
        out.iter()
            .any(|a| matches!(a, LeaderAction::Log { line } if line.contains("server 1"))),
        "{out:?}"
    );
    assert!(!out
        .iter()
        .any(|a| matches!(a, LeaderAction::PersistAcceptedEpoch { .. })));
    assert_eq!(leader.phase(), &LeaderPhase::Discovery);
    leader.connected(2, 0);
    leader.received(2, follower_info(2, 1, None), 0, &mut out);
    // The epoch comes from the voters: 1 + 1, not server 1's accepted 5 + 1.
    assert!(out.contains(&LeaderAction::PersistAcceptedEpoch { epoch: 2 }));
    leader.epoch_persisted(&mut out);
    out.clear();
    // Server 1's ACKEPOCH (-1: it takes the older epoch) is not counted, and
    // its log beyond the leader's is cut, never a reason to step down.
    let ack = |zxid| LearnerMessage::AckEpoch {
        last_logged_zxid: zxid,
        current_epoch: -1,
    };
    leader.received(1, ack(make_zxid(1, 9)), 0, &mut out);
    assert!(!steps_down(&out));
    assert_eq!(leader.phase(), &LeaderPhase::EpochAcks);
    let ack2 = LearnerMessage::AckEpoch {
        last_logged_zxid: make_zxid(1, 1),
        current_epoch: 1,
    };
    leader.received(2, ack2, 0, &mut out);
    assert!(out.contains(&LeaderAction::PersistCurrentEpoch { epoch: 2 }));
    leader.epoch_persisted(&mut out);
    let newleader_ack = LearnerMessage::Ack {
        zxid: make_zxid(2, 0),
    };
    out.clear();
    leader.received(1, newleader_ack.clone(), 0, &mut out);
    assert_eq!(leader.phase(), &LeaderPhase::NewLeaderAcks, "{out:?}");
    leader.received(2, newleader_ack, 0, &mut out);
    assert_eq!(leader.phase(), &LeaderPhase::Broadcast);
    let to_one: Vec<LeaderMessage> = out
        .iter()
        .filter_map(|a| match a {
            LeaderAction::Send { link: 1, packet } => {
                LeaderMessage::from_packet(&QuorumPacket::decode(packet).unwrap()).ok()
            }
            _ => None,
        })
        .collect();
    assert!(to_one.contains(&LeaderMessage::UpToDate), "{to_one:?}");
    leader.check_invariants();
}

#[test]
fn a_recovering_learner_says_so_and_follows_an_older_epoch() {
    // FOLLOWERINFO carries the marker; an epoch below the accepted one is
    // acknowledged without a promise (-1) instead of refused.
    let config = LearnerConfig {
        my_sid: 1,
        kind: LearnerType::Participant,
        tick_ms: 100,
        init_limit: 10,
        sync_limit: 5,
        mutation: None,
        recovering: Some(make_zxid(1, 4)),
    };
    let mut learner = Learner::new(config, 5, 1, make_zxid(1, 4), 0);
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
    let sent: Vec<LearnerMessage> = out
        .iter()
        .filter_map(|a| match a {
            LearnerAction::Send { packet } => {
                LearnerMessage::from_packet(&QuorumPacket::decode(packet).unwrap()).ok()
            }
            _ => None,
        })
        .collect();
    assert_eq!(sent[0], follower_info(1, 5, Some(make_zxid(1, 4))));
    assert_eq!(
        sent[1],
        LearnerMessage::AckEpoch {
            last_logged_zxid: make_zxid(1, 4),
            current_epoch: -1
        }
    );
}
