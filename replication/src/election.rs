//! Fast leader election (ZooKeeper's `FastLeaderElection`) as a sans-IO
//! state machine.
//!
//! ```text
//!          Start                      quorum agrees on my proposal
//!   Idle ────────► Looking ──────────────────────────► Finalizing
//!                   ▲  │ ▲        a better vote arrives     │
//!          Start    │  │ └──────────────────────────────────┤
//!   (any phase) ────┘  │                                    │ finalize wait passes
//!                      │ a quorum FOLLOWING/LEADING the     ▼
//!                      │ same leader, which says LEADING  Decided
//!                      └───────────────────────────────►  (leading / following /
//!                                                          observing; answers
//!                                                          lookers with its vote)
//! ```
//!
//! The rules, as ZooKeeper runs them:
//!
//! - A vote is (leader sid, its last logged zxid, its current epoch); votes
//!   are ordered by (peerEpoch, zxid, sid). A participant starts by voting
//!   for itself; an observer starts with no vote and never counts.
//! - Rounds: `Start` increments the logical clock. A LOOKING notification
//!   from a later round moves us to that round, forgets the round's votes,
//!   and makes our proposal the better of its vote and our own initial vote;
//!   one from an earlier round is answered with our vote and otherwise
//!   ignored; within the round, a better vote replaces our proposal. Each
//!   change of proposal is sent to every participant.
//! - When the votes of a quorum of participants (ours included) in this round
//!   equal our proposal, we wait `finalize_wait_ms` for a better vote. None
//!   comes: the proposal wins — we lead if it names us, else follow (or
//!   observe).
//! - FOLLOWING/LEADING notifications let a server join an established
//!   leader: when those of a quorum name the same leader (the same round, or
//!   any round with the same leader epoch) and the leader's own notification
//!   says LEADING, we follow it. Notifications a server sends once it
//!   decided carry its decided vote, so a late server learns the leader.
//! - Silence: with no notification for `interval`, our proposal is sent again
//!   and the interval doubles, from `notification_interval_min_ms` (200 ms)
//!   up to `notification_interval_max_ms` (60 s).
//!
//! A participant recovering records its log lost to damage (protocol-aware
//! recovery; [`Election::set_recovering`]) abstains: it sends no vote (its
//! notifications name no leader, as an observer's do, so no server counts
//! them), adopts no one's LOOKING vote, and never decides to lead; it may
//! still learn an established leader from the FOLLOWING/LEADING
//! notifications of a quorum and follow it. So every leader is elected by
//! a quorum of servers whose logs are whole: it intersects the quorum that
//! acknowledged any committed txn in a server that still holds it.
//!
//! Time is an argument; the machine asks for one timer (the last
//! [`ElectionAction::SetTimer`] replaces earlier ones) and expects a
//! [`ElectionInput::Tick`] when it is due. Ticks at other times are harmless.
//!
//! Where this differs from ZooKeeper, on purpose:
//! - Our own vote is recorded the moment we send it (ZooKeeper loops it back
//!   through its own queue, where a stale copy can briefly overwrite a newer
//!   one).
//! - The finalize wait is one deadline. ZooKeeper restarts its 200 ms poll
//!   after every notification that is not better, so a chatty peer can
//!   postpone the decision.

use std::collections::BTreeMap;

use bytes::Bytes;
use proto::Zxid;

use crate::election_wire::{Notification, ServerState, NOTIFICATION_VERSION_CURRENT};
use crate::ensemble::{Ensemble, Sid};

/// `FastLeaderElection.finalizeWait`.
pub const FINALIZE_WAIT_MS_DEFAULT: u64 = 200;
/// `zookeeper.fastleader.minNotificationInterval` (defaults to finalizeWait).
pub const NOTIFICATION_INTERVAL_MIN_MS_DEFAULT: u64 = FINALIZE_WAIT_MS_DEFAULT;
/// `zookeeper.fastleader.maxNotificationInterval`.
pub const NOTIFICATION_INTERVAL_MAX_MS_DEFAULT: u64 = 60_000;

const _: () = assert!(NOTIFICATION_INTERVAL_MIN_MS_DEFAULT <= NOTIFICATION_INTERVAL_MAX_MS_DEFAULT);

/// A vote for a leader. Ordered as ZooKeeper's `totalOrderPredicate`:
/// peer epoch first, then zxid, then sid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Vote {
    pub leader: Sid,
    /// The leader's last logged zxid.
    pub zxid: Zxid,
    /// The leader's current epoch (after discovery: the established epoch).
    pub peer_epoch: i64,
}

impl Ord for Vote {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.peer_epoch, self.zxid, self.leader).cmp(&(other.peer_epoch, other.zxid, other.leader))
    }
}

impl PartialOrd for Vote {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What a decided server does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Leading,
    Following,
    Observing,
}

impl Role {
    pub fn server_state(self) -> ServerState {
        match self {
            Role::Leading => ServerState::Leading,
            Role::Following => ServerState::Following,
            Role::Observing => ServerState::Observing,
        }
    }
}

/// The settings of one server's election.
#[derive(Debug, Clone)]
pub struct ElectionConfig {
    pub my_sid: Sid,
    pub ensemble: Ensemble,
    pub finalize_wait_ms: u64,
    pub notification_interval_min_ms: u64,
    pub notification_interval_max_ms: u64,
    /// Sent in every notification (ZooKeeper sends its QuorumVerifier text).
    pub config_text: Bytes,
}

impl ElectionConfig {
    /// ZooKeeper's defaults; the config text is the ensemble's at version 0.
    pub fn new(my_sid: Sid, ensemble: Ensemble) -> Self {
        let config_text = Bytes::from(ensemble.config_text(0));
        Self {
            my_sid,
            ensemble,
            finalize_wait_ms: FINALIZE_WAIT_MS_DEFAULT,
            notification_interval_min_ms: NOTIFICATION_INTERVAL_MIN_MS_DEFAULT,
            notification_interval_max_ms: NOTIFICATION_INTERVAL_MAX_MS_DEFAULT,
            config_text,
        }
    }
}

/// Events the driver feeds in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionInput {
    /// Enter LOOKING: a new round, voting for ourselves with our durable
    /// state (ignored for observers, which have no vote).
    Start {
        current_epoch: i64,
        last_logged_zxid: Zxid,
    },
    /// A decoded notification from a connection whose hello named `from`.
    Received {
        from: Sid,
        notification: Notification,
    },
    /// Time passed; due work (a re-send, the end of the finalize wait) runs.
    Tick,
    /// Discovery established this epoch (`QuorumPeer.updateElectionVote`):
    /// the decided vote now carries it, so servers that look later match the
    /// ensemble's followers. Only while decided.
    EpochEstablished { epoch: i64 },
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionAction {
    /// Send to one server (connecting to it if need be).
    Send { to: Sid, notification: Notification },
    /// Send to every participant except this server.
    SendToVoters { notification: Notification },
    /// The election is over: take up `role` under `vote.leader`.
    Decided {
        role: Role,
        vote: Vote,
        election_epoch: i64,
    },
    /// Deliver [`ElectionInput::Tick`] at or after this time; replaces any
    /// earlier timer.
    SetTimer { deadline_ms: u64 },
    /// No timer is needed any more.
    CancelTimer,
}

/// A vote as another server last sent it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReceivedVote {
    vote: Vote,
    election_epoch: i64,
    state: ServerState,
    version: i32,
}

impl ReceivedVote {
    /// ZooKeeper's `Vote.equals`: against a LOOKING vote every field counts;
    /// between votes of servers out of the election only the leader and its
    /// epoch do (ZOOKEEPER-1805), and only the leader when one side predates
    /// versioned notifications (ZOOKEEPER-1732).
    fn agrees_with(&self, other: &ReceivedVote) -> bool {
        if self.state == ServerState::Looking || other.state == ServerState::Looking {
            self.vote == other.vote && self.election_epoch == other.election_epoch
        } else if (self.version > 0) != (other.version > 0) {
            self.vote.leader == other.vote.leader
        } else {
            self.vote.leader == other.vote.leader && self.vote.peer_epoch == other.vote.peer_epoch
        }
    }
}

#[derive(Debug, Clone)]
struct Looking {
    /// Our initial vote this round (`None` for an observer).
    own_vote: Option<Vote>,
    own_zxid: Zxid,
    /// What we currently vote for.
    proposal: Option<Vote>,
    /// Votes of participants in this round (`recvset`), ours included.
    received: BTreeMap<Sid, ReceivedVote>,
    /// FOLLOWING/LEADING votes of any round (`outofelection`).
    out_of_election: BTreeMap<Sid, ReceivedVote>,
    /// Current silence before a re-send.
    interval_ms: u64,
    resend_deadline_ms: u64,
    /// Set while a quorum agrees and we wait for a better vote.
    finalize_deadline_ms: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Decided {
    role: Role,
    vote: Vote,
    election_epoch: i64,
}

#[derive(Debug, Clone)]
enum Phase {
    Idle,
    Looking(Looking),
    Decided(Decided),
}

/// One server's leader election.
#[derive(Debug, Clone)]
pub struct Election {
    config: ElectionConfig,
    /// The round (`logicalclock`); never decreases.
    logical_clock: i64,
    phase: Phase,
    /// The timer the driver holds, as last told.
    timer_ms: Option<u64>,
    /// Recovering lost records: abstain from the next round on (see the
    /// module docs).
    recovering: bool,
}

impl Election {
    pub fn new(config: ElectionConfig) -> Self {
        assert!(
            config.ensemble.contains(config.my_sid),
            "server {} is not in the ensemble",
            config.my_sid
        );
        assert!(config.finalize_wait_ms > 0);
        assert!(config.notification_interval_min_ms > 0);
        assert!(config.notification_interval_min_ms <= config.notification_interval_max_ms);
        Self {
            config,
            logical_clock: 0,
            phase: Phase::Idle,
            timer_ms: None,
            recovering: false,
        }
    }

    /// Whether this server recovers records lost to damage, and so abstains
    /// (see the module docs). Takes effect at the next `Start`; a decided
    /// election keeps its decision.
    pub fn set_recovering(&mut self, recovering: bool) {
        self.recovering = recovering;
    }

    /// Whether this server abstains in the current round.
    pub fn is_abstaining(&self) -> bool {
        matches!(&self.phase, Phase::Looking(l) if l.own_vote.is_none()) && self.is_voter()
    }

    pub fn my_sid(&self) -> Sid {
        self.config.my_sid
    }

    pub fn logical_clock(&self) -> i64 {
        self.logical_clock
    }

    pub fn is_looking(&self) -> bool {
        matches!(self.phase, Phase::Looking(_))
    }

    /// The outcome, once decided: role, vote and round.
    pub fn decision(&self) -> Option<(Role, Vote, i64)> {
        match &self.phase {
            Phase::Decided(d) => Some((d.role, d.vote, d.election_epoch)),
            _ => None,
        }
    }

    /// What we vote for while looking.
    pub fn proposal(&self) -> Option<Vote> {
        match &self.phase {
            Phase::Looking(l) => l.proposal,
            _ => None,
        }
    }

    /// The timer the machine last asked for.
    pub fn timer_ms(&self) -> Option<u64> {
        self.timer_ms
    }

    /// Feeds one input; returns what to do, in order.
    pub fn step(&mut self, now_ms: u64, input: ElectionInput) -> Vec<ElectionAction> {
        let mut out = Vec::new();
        match input {
            ElectionInput::Start {
                current_epoch,
                last_logged_zxid,
            } => self.start(now_ms, current_epoch, last_logged_zxid, &mut out),
            ElectionInput::Received { from, notification } => {
                self.receive(now_ms, from, &notification, &mut out)
            }
            ElectionInput::Tick => self.tick(now_ms, &mut out),
            ElectionInput::EpochEstablished { epoch } => {
                let Phase::Decided(decided) = &mut self.phase else {
                    panic!("EpochEstablished while not decided");
                };
                decided.vote.peer_epoch = epoch;
            }
        }
        if let Phase::Looking(_) = self.phase {
            self.check_looking_quorum(now_ms);
        }
        self.update_timer(&mut out);
        out
    }

    fn is_voter(&self) -> bool {
        self.config.ensemble.is_voter(self.config.my_sid)
    }

    /// Whether this server votes in the current round: a participant
    /// whose round started while not recovering.
    fn votes(&self) -> bool {
        match &self.phase {
            Phase::Looking(l) => l.own_vote.is_some(),
            _ => self.is_voter() && !self.recovering,
        }
    }

    fn start(
        &mut self,
        now_ms: u64,
        current_epoch: i64,
        last_logged_zxid: Zxid,
        out: &mut Vec<ElectionAction>,
    ) {
        self.logical_clock += 1;
        let own_vote = (self.is_voter() && !self.recovering).then_some(Vote {
            leader: self.config.my_sid,
            zxid: last_logged_zxid,
            peer_epoch: current_epoch,
        });
        let interval_ms = self.config.notification_interval_min_ms;
        self.phase = Phase::Looking(Looking {
            own_vote,
            own_zxid: last_logged_zxid,
            proposal: own_vote,
            received: BTreeMap::new(),
            out_of_election: BTreeMap::new(),
            interval_ms,
            resend_deadline_ms: now_ms + interval_ms,
            finalize_deadline_ms: None,
        });
        self.send_proposal(out);
    }

    /// Sends our proposal to every participant and records it as our own
    /// vote of this round.
    fn send_proposal(&mut self, out: &mut Vec<ElectionAction>) {
        let notification = self.notification();
        let me = self.config.my_sid;
        let votes = self.votes();
        let clock = self.logical_clock;
        let Phase::Looking(looking) = &mut self.phase else {
            unreachable!("proposals are sent while looking");
        };
        if votes {
            let vote = looking
                .proposal
                .expect("a participant always has a proposal");
            looking.received.insert(
                me,
                ReceivedVote {
                    vote,
                    election_epoch: clock,
                    state: ServerState::Looking,
                    version: NOTIFICATION_VERSION_CURRENT,
                },
            );
        }
        out.push(ElectionAction::SendToVoters { notification });
    }

    /// The notification that states where we are: our proposal while
    /// looking, our decided vote after.
    fn notification(&self) -> Notification {
        let (state, vote, election_epoch) = match &self.phase {
            Phase::Idle => (ServerState::Looking, None, self.logical_clock),
            Phase::Looking(l) => (ServerState::Looking, l.proposal, self.logical_clock),
            Phase::Decided(d) => (d.role.server_state(), Some(d.vote), d.election_epoch),
        };
        // An observer without a vote sends ZooKeeper's Long.MIN_VALUE fields.
        let (leader, zxid, peer_epoch) = match vote {
            Some(v) => (v.leader as i64, v.zxid, v.peer_epoch),
            None => (i64::MIN, i64::MIN, i64::MIN),
        };
        Notification {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version: NOTIFICATION_VERSION_CURRENT,
            config: self.config.config_text.clone(),
        }
    }

    fn receive(&mut self, now_ms: u64, from: Sid, n: &Notification, out: &mut Vec<ElectionAction>) {
        let reply = |this: &Self| ElectionAction::Send {
            to: from,
            notification: this.notification(),
        };
        match &self.phase {
            Phase::Idle => return,
            // Decided: only lookers get an answer, our decided vote.
            Phase::Decided(_) => {
                if !self.config.ensemble.is_voter(from) || n.state == ServerState::Looking {
                    out.push(reply(self));
                }
                return;
            }
            Phase::Looking(_) => {}
        }
        // A server that does not vote (an observer) is answered at once and
        // otherwise ignored.
        if !self.config.ensemble.is_voter(from) {
            out.push(reply(self));
            return;
        }
        if n.state == ServerState::Looking && n.election_epoch < self.logical_clock {
            out.push(reply(self));
        }
        let Phase::Looking(looking) = &mut self.phase else {
            unreachable!()
        };
        // An abstainer's notification (it names no leader at all: i64::MIN,
        // see `notification`) says nothing about the round and leaves the
        // silence timer alone, as an observer's does: two voters that
        // missed each other's proposals must still resend them, however
        // often an abstainer asks (found by fk-sim, `--seed 20041 --servers
        // 3 --faults all,bit-flip`: they waited on its chatter for good).
        if n.leader == i64::MIN {
            return;
        }
        // Any other notification from a participant restarts the silence
        // timer. An abstainer hears lookers' rounds: once they decide they
        // fall silent, and it asks again soon, to learn whom they chose.
        if looking.own_vote.is_none()
            && n.state == ServerState::Looking
            && self.config.ensemble.is_voter(self.config.my_sid)
        {
            looking.interval_ms = self.config.notification_interval_min_ms;
        }
        looking.resend_deadline_ms = now_ms + looking.interval_ms;
        let leader = u64::try_from(n.leader)
            .ok()
            .filter(|sid| self.config.ensemble.is_voter(*sid));
        let Some(leader) = leader else {
            return;
        };
        let vote = Vote {
            leader,
            zxid: n.zxid,
            peer_epoch: n.peer_epoch,
        };
        if looking.finalize_deadline_ms.is_some() {
            if !is_better(vote, looking.proposal) {
                // ZooKeeper drops what is not better while it finalizes.
                return;
            }
            looking.finalize_deadline_ms = None;
        }
        match n.state {
            ServerState::Looking => self.receive_looking(from, vote, n, out),
            ServerState::Following | ServerState::Leading => {
                self.receive_established(from, vote, n, out)
            }
            ServerState::Observing => {}
        }
    }

    fn receive_looking(
        &mut self,
        from: Sid,
        vote: Vote,
        n: &Notification,
        out: &mut Vec<ElectionAction>,
    ) {
        let clock = self.logical_clock;
        let Phase::Looking(looking) = &mut self.phase else {
            unreachable!()
        };
        // A server that could not read its own state (-1) takes no part,
        // nor does one recovering lost records: it adopts no vote.
        let abstaining =
            looking.own_vote.is_none() && self.config.ensemble.is_voter(self.config.my_sid);
        if (looking.own_vote.is_some() && looking.own_zxid == -1) || n.zxid == -1 || abstaining {
            return;
        }
        let mut changed = false;
        if n.election_epoch > clock {
            self.logical_clock = n.election_epoch;
            looking.received.clear();
            looking.proposal = if is_better(vote, looking.own_vote) {
                Some(vote)
            } else {
                looking.own_vote
            };
            changed = true;
        } else if n.election_epoch < clock {
            return;
        } else if is_better(vote, looking.proposal) {
            looking.proposal = Some(vote);
            changed = true;
        }
        looking.received.insert(
            from,
            ReceivedVote {
                vote,
                election_epoch: n.election_epoch,
                state: ServerState::Looking,
                version: n.version,
            },
        );
        if changed {
            self.send_proposal(out);
        }
    }

    fn receive_established(
        &mut self,
        from: Sid,
        vote: Vote,
        n: &Notification,
        out: &mut Vec<ElectionAction>,
    ) {
        let me = self.config.my_sid;
        let clock = self.logical_clock;
        let ensemble = &self.config.ensemble;
        let Phase::Looking(looking) = &mut self.phase else {
            unreachable!()
        };
        // An abstaining server never leads, even when servers still name it
        // (it led before its restart).
        if looking.own_vote.is_none() && ensemble.is_voter(me) && vote.leader == me {
            return;
        }
        let reference = ReceivedVote {
            vote,
            election_epoch: n.election_epoch,
            state: n.state,
            version: n.version,
        };
        let mut decided = false;
        if n.election_epoch == clock {
            // ZooKeeper records these without a version, so within the round
            // they agree with the reference on the leader alone.
            looking.received.insert(
                from,
                ReceivedVote {
                    version: 0,
                    ..reference
                },
            );
            decided = agreeing_quorum(ensemble, &looking.received, &reference)
                && leader_confirmed(me, clock, &looking.received, vote.leader, n.election_epoch);
        }
        if !decided {
            // Joining an established ensemble (ZOOKEEPER-1732): a quorum
            // follows this leader and the leader says it leads.
            looking.out_of_election.insert(from, reference);
            decided = agreeing_quorum(ensemble, &looking.out_of_election, &reference)
                && leader_confirmed(
                    me,
                    clock,
                    &looking.out_of_election,
                    vote.leader,
                    n.election_epoch,
                );
            if decided {
                self.logical_clock = n.election_epoch;
            }
        }
        if decided {
            self.decide(vote, n.election_epoch, out);
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Vec<ElectionAction>) {
        let interval_max = self.config.notification_interval_max_ms;
        let clock = self.logical_clock;
        let Phase::Looking(looking) = &mut self.phase else {
            return;
        };
        if let Some(deadline) = looking.finalize_deadline_ms {
            if now_ms >= deadline {
                let vote = looking.proposal.expect("a quorum agreed on a proposal");
                self.decide(vote, clock, out);
            }
            return;
        }
        if now_ms >= looking.resend_deadline_ms {
            looking.interval_ms = (looking.interval_ms * 2).min(interval_max);
            looking.resend_deadline_ms = now_ms + looking.interval_ms;
            self.send_proposal(out);
        }
    }

    /// Starts the finalize wait once a quorum of this round's votes equal
    /// our proposal.
    fn check_looking_quorum(&mut self, now_ms: u64) {
        let clock = self.logical_clock;
        let finalize_wait_ms = self.config.finalize_wait_ms;
        let ensemble = &self.config.ensemble;
        let Phase::Looking(looking) = &mut self.phase else {
            return;
        };
        if looking.finalize_deadline_ms.is_some() {
            return;
        }
        let Some(proposal) = looking.proposal else {
            return;
        };
        let reference = ReceivedVote {
            vote: proposal,
            election_epoch: clock,
            state: ServerState::Looking,
            version: NOTIFICATION_VERSION_CURRENT,
        };
        if agreeing_quorum(ensemble, &looking.received, &reference) {
            looking.finalize_deadline_ms = Some(now_ms + finalize_wait_ms);
        }
    }

    fn decide(&mut self, vote: Vote, election_epoch: i64, out: &mut Vec<ElectionAction>) {
        let role = if vote.leader == self.config.my_sid {
            Role::Leading
        } else if self.is_voter() {
            Role::Following
        } else {
            Role::Observing
        };
        self.phase = Phase::Decided(Decided {
            role,
            vote,
            election_epoch,
        });
        out.push(ElectionAction::Decided {
            role,
            vote,
            election_epoch,
        });
    }

    fn update_timer(&mut self, out: &mut Vec<ElectionAction>) {
        let wanted = match &self.phase {
            Phase::Looking(l) => Some(l.finalize_deadline_ms.unwrap_or(l.resend_deadline_ms)),
            Phase::Idle | Phase::Decided(_) => None,
        };
        if wanted != self.timer_ms {
            out.push(match wanted {
                Some(deadline_ms) => ElectionAction::SetTimer { deadline_ms },
                None => ElectionAction::CancelTimer,
            });
            self.timer_ms = wanted;
        }
    }

    /// Asserts the machine's invariants; tests call it after every step.
    pub fn check_invariants(&self) {
        let ensemble = &self.config.ensemble;
        let me = self.config.my_sid;
        match &self.phase {
            Phase::Idle => {
                assert_eq!(self.logical_clock, 0);
                assert_eq!(self.timer_ms, None);
            }
            Phase::Looking(l) => {
                assert!(self.logical_clock >= 1);
                let interval = l.interval_ms;
                assert!(interval >= self.config.notification_interval_min_ms);
                assert!(interval <= self.config.notification_interval_max_ms);
                assert!(l.own_vote.is_none() || self.is_voter());
                if let (Some(own), Some(proposal)) = (l.own_vote, l.proposal) {
                    assert!(
                        proposal >= own,
                        "a proposal is never worse than our own vote"
                    );
                }
                if let Some(p) = l.proposal {
                    assert!(
                        ensemble.is_voter(p.leader),
                        "proposal for non-voter {}",
                        p.leader
                    );
                }
                for (sid, v) in &l.received {
                    assert!(ensemble.is_voter(*sid));
                    assert_eq!(
                        v.election_epoch, self.logical_clock,
                        "stale vote from {sid}"
                    );
                }
                for (sid, v) in &l.out_of_election {
                    assert!(ensemble.is_voter(*sid));
                    assert_ne!(v.state, ServerState::Looking);
                }
                if l.own_vote.is_some() {
                    let own = l.received.get(&me).expect("our own vote is recorded");
                    assert_eq!(Some(own.vote), l.proposal);
                } else {
                    assert!(!l.received.contains_key(&me), "no vote of ours is counted");
                    if self.is_voter() {
                        assert_eq!(l.proposal, None, "an abstainer proposes no one");
                    }
                }
                if l.finalize_deadline_ms.is_some() {
                    let reference = ReceivedVote {
                        vote: l.proposal.expect("finalizing a proposal"),
                        election_epoch: self.logical_clock,
                        state: ServerState::Looking,
                        version: NOTIFICATION_VERSION_CURRENT,
                    };
                    assert!(agreeing_quorum(ensemble, &l.received, &reference));
                }
                let due = l.finalize_deadline_ms.unwrap_or(l.resend_deadline_ms);
                assert_eq!(self.timer_ms, Some(due));
            }
            Phase::Decided(d) => {
                assert!(ensemble.is_voter(d.vote.leader));
                assert_eq!(d.role == Role::Leading, d.vote.leader == me);
                assert_eq!(d.role == Role::Observing, !self.is_voter());
                assert!(d.election_epoch <= self.logical_clock);
                assert_eq!(self.timer_ms, None);
            }
        }
    }
}

/// `totalOrderPredicate`: is `new` better than `current` (no vote at all is
/// worse than any)?
fn is_better(new: Vote, current: Option<Vote>) -> bool {
    current.is_none_or(|current| new > current)
}

/// Do the participants whose votes agree with `reference` form a quorum?
fn agreeing_quorum(
    ensemble: &Ensemble,
    votes: &BTreeMap<Sid, ReceivedVote>,
    reference: &ReceivedVote,
) -> bool {
    let agreeing = votes
        .iter()
        .filter(|(_, v)| v.agrees_with(reference))
        .map(|(sid, _)| sid);
    ensemble.is_quorum(agreeing)
}

/// `checkLeader`: another leader must have told us itself that it leads; we
/// lead only from the round we are in.
fn leader_confirmed(
    me: Sid,
    clock: i64,
    votes: &BTreeMap<Sid, ReceivedVote>,
    leader: Sid,
    election_epoch: i64,
) -> bool {
    if leader == me {
        clock == election_epoch
    } else {
        votes
            .get(&leader)
            .is_some_and(|v| v.state == ServerState::Leading)
    }
}

#[cfg(test)]
#[path = "election_tests.rs"]
mod tests;
