//! Unit tests for [`Election`]: each drives one server's election and asserts
//! the exact actions, checking the invariants after every step.

use super::*;
use crate::ensemble::Ensemble;

const EPOCH: i64 = 1;
const ZXID: Zxid = 0x1_0000_0005;

fn ensemble(observers: &[Sid]) -> Ensemble {
    let mut values = vec![(1, "a:2888:3888"), (2, "b:2888:3888"), (3, "c:2888:3888")];
    for sid in observers {
        values.push((*sid, "o:2888:3888:observer"));
    }
    Ensemble::from_server_values(values).unwrap()
}

struct Server {
    election: Election,
    config: Bytes,
}

impl Server {
    fn new(sid: Sid) -> Self {
        Self::in_ensemble(sid, ensemble(&[4]))
    }

    fn in_ensemble(sid: Sid, ensemble: Ensemble) -> Self {
        let config = ElectionConfig::new(sid, ensemble);
        let text = config.config_text.clone();
        let election = Election::new(config);
        election.check_invariants();
        Self {
            election,
            config: text,
        }
    }

    fn step(&mut self, now_ms: u64, input: ElectionInput) -> Vec<ElectionAction> {
        let actions = self.election.step(now_ms, input);
        self.election.check_invariants();
        actions
    }

    fn start(&mut self, now_ms: u64) -> Vec<ElectionAction> {
        self.start_with(now_ms, EPOCH, ZXID)
    }

    fn start_with(&mut self, now_ms: u64, epoch: i64, zxid: Zxid) -> Vec<ElectionAction> {
        self.step(
            now_ms,
            ElectionInput::Start {
                current_epoch: epoch,
                last_logged_zxid: zxid,
            },
        )
    }

    fn receive(
        &mut self,
        now_ms: u64,
        from: Sid,
        notification: Notification,
    ) -> Vec<ElectionAction> {
        self.step(now_ms, ElectionInput::Received { from, notification })
    }

    /// What this server sends in `state` for the given vote and round.
    fn says(
        &self,
        state: ServerState,
        leader: Sid,
        zxid: Zxid,
        election_epoch: i64,
    ) -> Notification {
        Notification {
            state,
            leader: leader as i64,
            zxid,
            election_epoch,
            peer_epoch: EPOCH,
            version: NOTIFICATION_VERSION_CURRENT,
            config: self.config.clone(),
        }
    }

    fn broadcast(&self, leader: Sid, zxid: Zxid, election_epoch: i64) -> ElectionAction {
        ElectionAction::SendToVoters {
            notification: self.says(ServerState::Looking, leader, zxid, election_epoch),
        }
    }
}

/// A notification another server sends (a current-version peer).
fn from_peer(
    state: ServerState,
    leader: Sid,
    zxid: Zxid,
    election_epoch: i64,
    peer_epoch: i64,
) -> Notification {
    Notification {
        state,
        leader: leader as i64,
        zxid,
        election_epoch,
        peer_epoch,
        version: NOTIFICATION_VERSION_CURRENT,
        config: Bytes::from_static(b"version=0"),
    }
}

fn looking(leader: Sid, zxid: Zxid, election_epoch: i64) -> Notification {
    from_peer(ServerState::Looking, leader, zxid, election_epoch, EPOCH)
}

fn timer(deadline_ms: u64) -> ElectionAction {
    ElectionAction::SetTimer { deadline_ms }
}

fn vote(leader: Sid, zxid: Zxid) -> Vote {
    Vote {
        leader,
        zxid,
        peer_epoch: EPOCH,
    }
}

#[test]
fn votes_order_by_epoch_then_zxid_then_sid() {
    // totalOrderPredicate: a later epoch beats any zxid, a later zxid any sid.
    let v = |leader, zxid, peer_epoch| Vote {
        leader,
        zxid,
        peer_epoch,
    };
    assert!(v(1, 0, 2) > v(3, 0x1_0000_0009, 1));
    assert!(v(1, 6, 1) > v(3, 5, 1));
    assert!(v(3, 5, 1) > v(2, 5, 1));
    assert!(is_better(v(1, 0, 0), None));
    assert!(!is_better(v(2, 5, 1), Some(v(2, 5, 1))));
}

#[test]
fn start_votes_for_itself_and_arms_the_resend_timer() {
    // Round 1, our own vote to every participant, a timer 200 ms out.
    let mut s = Server::new(1);
    assert_eq!(s.start(1000), vec![s.broadcast(1, ZXID, 1), timer(1200)]);
    assert_eq!(s.election.logical_clock(), 1);
    assert_eq!(s.election.proposal(), Some(vote(1, ZXID)));
}

#[test]
fn better_vote_is_adopted_and_a_quorum_finalizes_after_the_wait() {
    // Server 3's vote beats ours; with it we and 3 are a quorum; 200 ms later we follow 3.
    let mut s = Server::new(1);
    s.start(0);
    assert_eq!(
        s.receive(10, 3, looking(3, ZXID, 1)),
        vec![s.broadcast(3, ZXID, 1), timer(210)]
    );
    assert_eq!(s.step(209, ElectionInput::Tick), vec![]);
    assert_eq!(
        s.step(210, ElectionInput::Tick),
        vec![
            ElectionAction::Decided {
                role: Role::Following,
                vote: vote(3, ZXID),
                election_epoch: 1
            },
            ElectionAction::CancelTimer
        ]
    );
    assert_eq!(
        s.election.decision(),
        Some((Role::Following, vote(3, ZXID), 1))
    );
}

#[test]
fn worse_vote_changes_nothing_but_counts_toward_ours() {
    // Server 2 votes for itself (worse); then it agrees with us: we lead after the wait.
    let mut s = Server::new(3);
    s.start(0);
    assert_eq!(s.receive(50, 2, looking(2, ZXID, 1)), vec![timer(250)]);
    assert_eq!(s.receive(60, 2, looking(3, ZXID, 1)), vec![timer(260)]);
    let decided = s.step(260, ElectionInput::Tick);
    assert_eq!(
        decided,
        vec![
            ElectionAction::Decided {
                role: Role::Leading,
                vote: vote(3, ZXID),
                election_epoch: 1
            },
            ElectionAction::CancelTimer
        ]
    );
}

#[test]
fn later_round_restarts_ours_with_the_better_of_its_vote_and_ours() {
    // A LOOKING notification from round 4 moves us to round 4, forgetting round 1.
    let mut s = Server::new(2);
    s.start(0);
    assert_eq!(s.receive(5, 1, looking(1, ZXID, 1)), vec![timer(205)]);
    // Its vote for 3 beats ours: adopted, and with 3's vote a quorum at once.
    assert_eq!(
        s.receive(20, 3, looking(3, ZXID, 4)),
        vec![s.broadcast(3, ZXID, 4), timer(220)]
    );
    assert_eq!(s.election.logical_clock(), 4);
    // Round 4 carrying a worse vote: we go back to our own vote.
    let mut t = Server::new(2);
    t.start(0);
    assert_eq!(
        t.receive(20, 1, looking(1, ZXID, 4)),
        vec![t.broadcast(2, ZXID, 4), timer(220)]
    );
    assert_eq!(t.election.proposal(), Some(vote(2, ZXID)));
}

#[test]
fn earlier_round_gets_our_vote_back_and_is_not_counted() {
    // We are in round 2; a looker still in round 1 gets our current vote.
    let mut s = Server::new(1);
    s.start(0);
    s.start(100);
    assert_eq!(
        s.receive(150, 2, looking(2, ZXID + 1, 1)),
        vec![
            ElectionAction::Send {
                to: 2,
                notification: s.says(ServerState::Looking, 1, ZXID, 2)
            },
            timer(350)
        ]
    );
    assert_eq!(
        s.election.proposal(),
        Some(vote(1, ZXID)),
        "its better vote was ignored"
    );
}

#[test]
fn finalize_wait_ignores_worse_votes_and_yields_to_a_better_one() {
    // While waiting, a worse vote is dropped; a better one reopens the round.
    let mut s = Server::new(1);
    s.start_with(0, EPOCH, ZXID + 1);
    assert_eq!(s.receive(10, 2, looking(1, ZXID + 1, 1)), vec![timer(210)]);
    assert_eq!(s.receive(20, 2, looking(2, ZXID, 1)), vec![]);
    // Server 3 has a later epoch: we adopt it, and with 3 a quorum agrees again,
    // so a new wait begins.
    let better = from_peer(ServerState::Looking, 3, 0x2_0000_0000, 1, 2);
    let actions = s.receive(30, 3, better);
    let mut expected = s.says(ServerState::Looking, 3, 0x2_0000_0000, 1);
    expected.peer_epoch = 2;
    assert_eq!(
        actions,
        vec![
            ElectionAction::SendToVoters {
                notification: expected
            },
            timer(230)
        ]
    );
    assert!(s.election.is_looking());
}

#[test]
fn silence_resends_with_doubling_interval_up_to_the_maximum() {
    // 200, 400, 800, ... ms between re-sends, never more than 60 s.
    let mut s = Server::new(1);
    s.start(0);
    let mut now = 0;
    let mut gaps = Vec::new();
    for _ in 0..12 {
        let deadline = s.election.timer_ms().unwrap();
        assert_eq!(s.step(deadline - 1, ElectionInput::Tick), vec![]);
        let actions = s.step(deadline, ElectionInput::Tick);
        let next = s.election.timer_ms().unwrap();
        assert_eq!(actions, vec![s.broadcast(1, ZXID, 1), timer(next)]);
        gaps.push(deadline - now);
        now = deadline;
    }
    assert_eq!(
        gaps,
        vec![200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000]
    );
    // A new election starts again from the minimum.
    assert_eq!(s.start(now)[1], timer(now + 200));
}

#[test]
fn joins_an_established_leader_only_when_it_says_leading() {
    // Followers of 3 alone are not enough; 3's own LEADING completes the quorum.
    let mut s = Server::new(1);
    s.start(0);
    let following = from_peer(ServerState::Following, 3, ZXID, 7, 2);
    assert_eq!(s.receive(10, 2, following.clone()), vec![timer(210)]);
    assert!(s.election.is_looking());
    let leading = from_peer(ServerState::Leading, 3, ZXID, 7, 2);
    let actions = s.receive(20, 3, leading);
    let joined = Vote {
        leader: 3,
        zxid: ZXID,
        peer_epoch: 2,
    };
    assert_eq!(
        actions,
        vec![
            ElectionAction::Decided {
                role: Role::Following,
                vote: joined,
                election_epoch: 7
            },
            ElectionAction::CancelTimer
        ]
    );
    assert_eq!(s.election.logical_clock(), 7);
}

#[test]
fn a_leader_that_is_looking_again_is_not_joined() {
    // ZooKeeper's checkLeader: followers' word that 3 leads is not enough while 3 looks.
    let mut s = Server::new(1);
    s.start(0);
    s.receive(10, 2, from_peer(ServerState::Following, 3, ZXID, 7, 2));
    s.receive(20, 3, from_peer(ServerState::Looking, 3, ZXID, 8, 2));
    assert!(s.election.is_looking());
}

#[test]
fn followers_of_different_epochs_do_not_make_a_quorum() {
    // Out of the election, votes agree only on the same leader and leader epoch.
    let mut s = Server::new(1);
    s.start(0);
    s.receive(10, 2, from_peer(ServerState::Following, 3, ZXID, 7, 2));
    s.receive(20, 3, from_peer(ServerState::Leading, 3, ZXID, 9, 3));
    assert!(s.election.is_looking());
}

#[test]
fn decided_server_answers_lookers_with_its_decision() {
    // After deciding, a LOOKING participant or any observer gets our decided vote.
    let mut s = Server::new(3);
    s.start(0);
    s.receive(10, 1, looking(3, ZXID, 1));
    s.step(210, ElectionInput::Tick);
    assert_eq!(s.election.decision().unwrap().0, Role::Leading);
    let answer = ElectionAction::Send {
        to: 2,
        notification: s.says(ServerState::Leading, 3, ZXID, 1),
    };
    assert_eq!(s.receive(500, 2, looking(2, ZXID, 3)), vec![answer]);
    assert_eq!(
        s.receive(510, 1, from_peer(ServerState::Following, 3, ZXID, 1, EPOCH)),
        vec![]
    );
    // Once discovery established epoch 2, lookers hear the new epoch.
    assert_eq!(
        s.step(600, ElectionInput::EpochEstablished { epoch: 2 }),
        vec![]
    );
    let mut after = s.says(ServerState::Leading, 3, ZXID, 1);
    after.peer_epoch = 2;
    assert_eq!(
        s.receive(700, 4, looking(2, ZXID, 1)),
        vec![ElectionAction::Send {
            to: 4,
            notification: after
        }]
    );
}

#[test]
fn observers_are_answered_but_never_counted() {
    // Observer 4 votes for 1; server 1 answers it and still needs a participant.
    let mut s = Server::new(1);
    s.start(0);
    assert_eq!(
        s.receive(10, 4, looking(1, ZXID, 1)),
        vec![ElectionAction::Send {
            to: 4,
            notification: s.says(ServerState::Looking, 1, ZXID, 1)
        }]
    );
    assert_eq!(s.step(200, ElectionInput::Tick)[0], s.broadcast(1, ZXID, 1));
    assert!(s.election.is_looking(), "no quorum from an observer");
}

#[test]
fn observer_has_no_vote_and_learns_the_leader() {
    // It sends Long.MIN_VALUE fields, adopts the participants' vote and observes.
    let mut s = Server::new(4);
    let actions = s.start(0);
    let ElectionAction::SendToVoters { notification } = &actions[0] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (
            notification.leader,
            notification.zxid,
            notification.peer_epoch
        ),
        (i64::MIN, i64::MIN, i64::MIN)
    );
    s.receive(10, 1, looking(3, ZXID, 1));
    assert_eq!(s.election.proposal(), Some(vote(3, ZXID)));
    assert_eq!(s.receive(20, 3, looking(3, ZXID, 1)), vec![timer(220)]);
    assert_eq!(
        s.step(220, ElectionInput::Tick)[0],
        ElectionAction::Decided {
            role: Role::Observing,
            vote: vote(3, ZXID),
            election_epoch: 1
        }
    );
}

#[test]
fn observer_joins_an_established_ensemble() {
    // The decided participants' answers are enough for an observer to observe.
    let mut s = Server::new(4);
    s.start(0);
    s.receive(10, 1, from_peer(ServerState::Following, 2, ZXID, 3, 2));
    let actions = s.receive(11, 2, from_peer(ServerState::Leading, 2, ZXID, 3, 2));
    assert!(matches!(
        actions[0],
        ElectionAction::Decided {
            role: Role::Observing,
            vote: Vote { leader: 2, .. },
            election_epoch: 3
        }
    ));
}

#[test]
fn votes_for_non_participants_and_unreadable_zxids_are_ignored() {
    // A leader that is an observer or unknown, or a zxid of -1, moves nothing.
    let mut s = Server::new(1);
    s.start(0);
    assert_eq!(s.receive(10, 2, looking(4, ZXID + 9, 1)), vec![timer(210)]);
    assert_eq!(s.receive(20, 2, looking(99, ZXID + 9, 1)), vec![timer(220)]);
    let mut minus_one = looking(3, -1, 1);
    minus_one.peer_epoch = 9;
    assert_eq!(s.receive(30, 3, minus_one), vec![timer(230)]);
    let mut negative = looking(3, ZXID, 1);
    negative.leader = -5;
    assert_eq!(s.receive(40, 3, negative), vec![timer(240)]);
    assert_eq!(s.election.proposal(), Some(vote(1, ZXID)));
}

#[test]
fn single_participant_elects_itself() {
    // With one participant (and an observer) our own vote is the quorum.
    let ensemble = Ensemble::from_server_values([(1, "a:1:2"), (2, "b:1:2:observer")]).unwrap();
    let mut s = Server::in_ensemble(1, ensemble);
    assert_eq!(s.start(0), vec![s.broadcast(1, ZXID, 1), timer(200)]);
    assert_eq!(
        s.step(200, ElectionInput::Tick)[0],
        ElectionAction::Decided {
            role: Role::Leading,
            vote: vote(1, ZXID),
            election_epoch: 1
        }
    );
}

#[test]
fn nothing_happens_before_start() {
    // An idle election ignores notifications and ticks.
    let mut s = Server::new(1);
    assert_eq!(s.receive(0, 2, looking(2, ZXID, 1)), vec![]);
    assert_eq!(s.step(10_000, ElectionInput::Tick), vec![]);
}

#[test]
fn followers_alone_do_not_make_a_leader() {
    // checkLeader: a quorum FOLLOWING 3 is not enough until 3 itself says LEADING,
    // and nobody leads on the word of followers from another round.
    let five = Ensemble::from_server_values((1..=5).map(|sid| (sid, "h:1:2"))).unwrap();
    let following = |leader| from_peer(ServerState::Following, leader, ZXID, 7, 2);
    let mut s = Server::in_ensemble(1, five.clone());
    s.start(0);
    for from in [2, 4, 5] {
        s.receive(10, from, following(3));
    }
    assert!(s.election.is_looking());
    let actions = s.receive(20, 3, from_peer(ServerState::Leading, 3, ZXID, 7, 2));
    assert!(matches!(
        actions[0],
        ElectionAction::Decided {
            role: Role::Following,
            ..
        }
    ));
    let mut me = Server::in_ensemble(3, five);
    me.start(0);
    for from in [1, 2, 4] {
        me.receive(10, from, following(3));
    }
    assert!(me.election.is_looking(), "round 7 is not ours (1)");
}

#[test]
fn a_recovering_server_abstains_names_no_leader_and_adopts_no_vote() {
    // Protocol-aware recovery: its notification names no leader (no one
    // counts it), lookers' votes are not adopted, no quorum ever finalizes.
    let mut s = Server::new(1);
    s.election.set_recovering(true);
    let actions = s.start(0);
    let ElectionAction::SendToVoters { notification } = &actions[0] else {
        panic!("{actions:?}");
    };
    assert_eq!(
        (notification.leader, notification.zxid),
        (i64::MIN, i64::MIN)
    );
    assert!(s.election.is_abstaining());
    s.receive(10, 2, looking(3, ZXID, 1));
    s.receive(20, 3, looking(3, ZXID, 1));
    assert_eq!(s.election.proposal(), None);
    s.step(10_000, ElectionInput::Tick);
    assert!(
        s.election.is_looking(),
        "an abstainer never decides from lookers"
    );
}

#[test]
fn a_recovering_server_follows_an_established_leader_but_never_leads() {
    // It learns the leader from a quorum of FOLLOWING/LEADING answers; if
    // servers still name it as their leader (it led before), it stays out.
    let mut s = Server::new(1);
    s.election.set_recovering(true);
    s.start(0);
    s.receive(10, 2, from_peer(ServerState::Following, 1, ZXID, 7, 2));
    s.receive(11, 3, from_peer(ServerState::Following, 1, ZXID, 7, 2));
    assert!(s.election.is_looking(), "it does not lead");
    s.receive(20, 2, from_peer(ServerState::Following, 3, ZXID, 8, 3));
    let actions = s.receive(21, 3, from_peer(ServerState::Leading, 3, ZXID, 8, 3));
    assert!(matches!(
        actions[0],
        ElectionAction::Decided {
            role: Role::Following,
            vote: Vote { leader: 3, .. },
            election_epoch: 8
        }
    ));
    // Once recovered, the next round votes again.
    s.election.set_recovering(false);
    let actions = s.start(100);
    assert_eq!(actions[0], s.broadcast(1, ZXID, 9));
}

#[test]
fn an_abstainers_notifications_do_not_hold_back_a_resend() {
    // A voter resends its proposal once no vote reached it for the
    // interval, however often an abstaining participant (one recovering
    // records lost to damage, whose notifications name no leader) asks —
    // else two voters that missed each other's proposals wait for good
    // (found by fk-sim, `--seed 20041 --servers 3 --faults all,bit-flip`).
    let mut s = Server::new(1);
    s.start(0);
    let mut abstainer = looking(3, ZXID, 1);
    abstainer.leader = i64::MIN;
    abstainer.zxid = i64::MIN;
    abstainer.peer_epoch = i64::MIN;
    for t in [60, 120, 180] {
        s.receive(t, 2, abstainer.clone());
    }
    let actions = s.step(200, ElectionInput::Tick);
    assert!(actions.contains(&s.broadcast(1, ZXID, 1)), "{actions:?}");
}
