//! The leader's side of ZAB after election: discovery, synchronisation of
//! every learner, and broadcast — as a state machine over opaque txns.
//!
//! ```text
//!  phase:  Discovery ──quorum of FOLLOWERINFO──▶ new epoch E = max(acceptedEpoch)+1
//!          PersistAccepted ──acceptedEpoch durable──▶ LEADERINFO(E) to everyone waiting
//!          EpochAcks ──quorum of ACKEPOCH──▶ persist currentEpoch, sync each learner:
//!                         DIFF / TRUNC (+DIFF) / SNAP, then NEWLEADER
//!          NewLeaderAcks ──quorum of ACK(NEWLEADER), own one after currentEpoch──▶
//!          Broadcast: UPTODATE; PROPOSAL → ACKs → COMMIT in zxid order (INFORM to observers)
//! ```
//!
//! Persistence orders the driver must keep (each action says so too):
//! acceptedEpoch durable before LEADERINFO leaves; currentEpoch durable
//! before the leader counts its own NEWLEADER ack; a txn is counted as the
//! leader's own ack only once its log says it is durable.
//!
//! The leader's history for synchronisation is a window of recent committed
//! txns (fed from recovery, then from every commit), bounded in count and
//! bytes, plus the proposals not yet committed. A learner whose last zxid
//! is older than the window gets a snapshot (SNAP), streamed by the node in
//! bounded chunks; everything else for that learner waits behind the
//! snapshot, so its stream stays in order.
//!
//! A learner that says in FOLLOWERINFO that it is recovering records lost
//! to damage (protocol-aware recovery) counts in none of these quorums —
//! not discovery's, not the epoch acks', not NEWLEADER's, not a commit's —
//! until it is synchronised (UPTODATE sent): a committed txn was acked by
//! a quorum Q1; this leader's quorums, without the damaged server, each
//! intersect Q1 in a server that still holds it. Its history is not held
//! against the leader either (it is TRUNCed, never a reason to step down).
//!
//! ACKs are cumulative: a follower acknowledges the highest zxid it has made
//! durable, once per log batch. A txn is committed when the participants
//! whose acks reach it (the leader's own durable log included) form a quorum.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use proto::Zxid;

use crate::ensemble::{Ensemble, LearnerType, Sid};
use crate::messages::{ForwardedRequest, LeaderMessage, LearnerMessage, SessionTouch};

/// A connection from a learner, named by the driver (a learner's sid is
/// known only once its FOLLOWERINFO arrives).
pub type LinkId = u64;

/// Makes a zxid from an epoch and a counter.
pub fn make_zxid(epoch: i64, counter: u32) -> Zxid {
    (epoch << 32) | i64::from(counter)
}

/// The epoch of a zxid.
pub fn epoch_of(zxid: Zxid) -> i64 {
    zxid >> 32
}

/// What a leader is configured with.
#[derive(Debug, Clone)]
pub struct LeaderConfig {
    pub my_sid: Sid,
    pub ensemble: Ensemble,
    pub tick_ms: u64,
    /// Ticks discovery and synchronisation may take.
    pub init_limit: u64,
    /// Ticks a synced learner may stay silent.
    pub sync_limit: u64,
    /// Most committed txns kept for DIFF.
    pub window_txns_max: usize,
    /// Most bytes of committed txns kept for DIFF.
    pub window_bytes_max: usize,
    /// Most bytes queued for one learner before it is disconnected (it
    /// re-syncs when it comes back).
    pub queue_bytes_max: usize,
    /// A bug reintroduced on purpose (tests only; see [`crate::Mutation`]).
    pub mutation: Option<crate::Mutation>,
}

/// Where the leader stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderPhase {
    /// Waiting for a quorum of FOLLOWERINFO to choose the epoch.
    Discovery,
    /// The new epoch is chosen; acceptedEpoch is being made durable.
    PersistAccepted,
    /// LEADERINFO sent; waiting for a quorum of ACKEPOCH.
    EpochAcks,
    /// Learners are being synchronised; waiting for a quorum of NEWLEADER acks.
    NewLeaderAcks,
    /// Established: proposals flow.
    Broadcast,
}

/// Why a leader gives up (the node goes back to election).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepDownReason {
    /// No quorum of synced participants within syncLimit.
    QuorumLost,
    /// Discovery or synchronisation did not finish within initLimit.
    NotEstablished,
    /// A participant's history is ahead of the leader's.
    FollowerAhead {
        sid: Sid,
        current_epoch: i64,
        last_zxid: Zxid,
    },
    /// A participant accepted an epoch above the leader's (a leader
    /// that never got established offered it): it can never follow this one.
    FollowerEpochAhead { sid: Sid, accepted_epoch: i64 },
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LeaderAction {
    /// Write this encoded packet to the learner, after everything sent to it before.
    Send { link: LinkId, packet: Bytes },
    /// Drop the connection (logged with the reason).
    Close { link: LinkId, reason: String },
    /// Make acceptedEpoch = `epoch` durable, then call
    /// [`Leader::epoch_persisted`]. Nothing is sent to learners before.
    PersistAcceptedEpoch { epoch: i64 },
    /// Make currentEpoch = `epoch` durable, then call
    /// [`Leader::epoch_persisted`]; the leader's NEWLEADER ack counts only after.
    PersistCurrentEpoch { epoch: i64 },
    /// Start a fuzzy snapshot of the applied tree for `link` and call
    /// [`Leader::snapshot_begun`] with its zxid, then feed its chunks with
    /// [`Leader::snapshot_chunk`].
    StartSnapshot { link: LinkId },
    /// A quorum acknowledged NEWLEADER: the epoch is established; serve clients.
    Established { epoch: i64 },
    /// Every txn up to `zxid` is committed: apply them, in order.
    Commit { zxid: Zxid },
    /// Sessions these learners' clients used (from PING replies).
    Touch { touches: Vec<SessionTouch> },
    /// A learner forwards a client request.
    Request {
        link: LinkId,
        request: ForwardedRequest,
    },
    /// A client reconnects to a learner: is this session alive? Answer with
    /// [`Leader::revalidated`].
    Revalidate {
        link: LinkId,
        session_id: i64,
        timeout_ms: i32,
    },
    /// Give up leadership.
    StepDown { reason: StepDownReason },
    /// A line for the operator's log (it names the server it is about).
    Log { line: String },
}

/// Where one learner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LearnerPhase {
    /// Connected; no FOLLOWERINFO yet.
    Connected,
    /// FOLLOWERINFO received; waiting for the epoch (or LEADERINFO sent).
    AwaitingAckEpoch,
    /// ACKEPOCH received; waiting for the epoch-ack quorum to sync it.
    AwaitingSync,
    /// Sync packets and NEWLEADER queued; waiting for its ACK.
    AwaitingNewLeaderAck,
    /// UPTODATE sent (or queued, once established).
    Synced,
}

#[derive(Debug)]
struct Learner {
    sid: Option<Sid>,
    kind: LearnerType,
    phase: LearnerPhase,
    accepted_epoch: i64,
    last_zxid: Zxid,
    /// Highest zxid acknowledged (followers).
    acked: Zxid,
    /// It recovers records lost to damage: it counts in no quorum until
    /// synced (see the module docs).
    recovering: bool,
    /// Whether new proposals (followers) or commits (observers) go to it.
    forwarding: bool,
    /// Packets held back while a snapshot streams ahead of them.
    held: Option<VecDeque<Bytes>>,
    /// A snapshot is streaming to it.
    snapshot_streaming: bool,
    /// It needs a snapshot, asked for again at the next tick (the node's
    /// tree was too far behind the window to take one).
    snapshot_again: bool,
    /// It acknowledged NEWLEADER (observers too, whose acks count for no
    /// quorum but who wait for UPTODATE like everyone).
    newleader_acked: bool,
    /// Bytes handed to the driver and not yet written.
    queued_bytes: usize,
    /// When it was last heard from (ms).
    last_heard_ms: u64,
}

/// The leader of one epoch.
#[derive(Debug)]
pub struct Leader {
    config: LeaderConfig,
    phase: LeaderPhase,
    /// The leader's acceptedEpoch and currentEpoch as it started.
    accepted_epoch: i64,
    current_epoch: i64,
    /// The epoch being established (valid from PersistAccepted on).
    epoch: i64,
    /// acceptedEpoch of each participant heard in discovery (self included).
    epoch_votes: BTreeMap<Sid, i64>,
    epoch_acks: BTreeSet<Sid>,
    newleader_acks: BTreeSet<Sid>,
    /// An epoch write is in flight; `epoch_persisted` says which finished.
    persisting: Option<EpochKind>,
    learners: BTreeMap<LinkId, Learner>,
    /// Committed txns, oldest first, for DIFF.
    window: VecDeque<(Zxid, Bytes)>,
    window_bytes: usize,
    /// The newest committed txn no longer in the window: a learner's sync
    /// must start at or above it.
    window_dropped_max: Zxid,
    /// Proposed, not yet committed, in zxid order.
    outstanding: VecDeque<(Zxid, Bytes)>,
    /// Learners' forwarded `sync`s, each with the last txn proposed before
    /// it, in that order (ZooKeeper's pendingSyncs).
    syncs: VecDeque<(LinkId, Zxid)>,
    /// The last txn in the leader's history (committed or proposed).
    zxid_last: Zxid,
    zxid_committed: Zxid,
    /// The leader's own log is durable up to here.
    zxid_durable: Zxid,
    started_ms: u64,
    now_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EpochKind {
    Accepted,
    Current,
}

impl Leader {
    /// A leader that won the election. `history` is its recent log, oldest
    /// first (all of it becomes committed in the new epoch, ZAB's rule);
    /// `zxid_last` its last logged zxid.
    pub fn new(
        config: LeaderConfig,
        accepted_epoch: i64,
        current_epoch: i64,
        history: Vec<(Zxid, Bytes)>,
        zxid_last: Zxid,
        now_ms: u64,
    ) -> Leader {
        assert!(
            config.ensemble.is_voter(config.my_sid),
            "only a participant leads"
        );
        let mut leader = Leader {
            phase: LeaderPhase::Discovery,
            accepted_epoch,
            current_epoch,
            epoch: 0,
            epoch_votes: BTreeMap::from([(config.my_sid, accepted_epoch)]),
            epoch_acks: BTreeSet::new(),
            newleader_acks: BTreeSet::new(),
            persisting: None,
            learners: BTreeMap::new(),
            window: VecDeque::new(),
            window_bytes: 0,
            outstanding: VecDeque::new(),
            syncs: VecDeque::new(),
            window_dropped_max: Zxid::MIN,
            zxid_last,
            zxid_committed: zxid_last,
            zxid_durable: zxid_last,
            started_ms: now_ms,
            now_ms,
            config,
        };
        for (zxid, txn) in history {
            assert!(zxid <= zxid_last, "history ends at the last logged zxid");
            leader.remember(zxid, txn);
        }
        leader
    }

    /// Discovery with this leader alone may already be a quorum (an ensemble
    /// of one participant): call once after `new`.
    pub fn start(&mut self, out: &mut Vec<LeaderAction>) {
        self.check_epoch_quorum(out);
    }

    pub fn phase(&self) -> &LeaderPhase {
        &self.phase
    }

    /// The established (or being established) epoch.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    pub fn zxid_committed(&self) -> Zxid {
        self.zxid_committed
    }

    /// The zxid of the last txn proposed or committed.
    pub fn zxid_last(&self) -> Zxid {
        self.zxid_last
    }

    /// Learners that are synced, by sid (for `mntr`'s zk_synced_followers).
    pub fn synced_followers(&self) -> usize {
        self.learners
            .values()
            .filter(|l| l.phase == LearnerPhase::Synced && l.kind == LearnerType::Participant)
            .count()
    }

    /// Learners connected, by kind: (followers, observers).
    pub fn learner_counts(&self) -> (usize, usize) {
        let followers = self
            .learners
            .values()
            .filter(|l| l.sid.is_some() && l.kind == LearnerType::Participant)
            .count();
        let observers = self
            .learners
            .values()
            .filter(|l| l.sid.is_some() && l.kind == LearnerType::Observer)
            .count();
        (followers, observers)
    }

    /// Every learner connection.
    pub fn links(&self) -> Vec<LinkId> {
        self.learners.keys().copied().collect()
    }

    /// Learners still being synchronised (zk_pending_syncs).
    pub fn pending_syncs(&self) -> usize {
        self.learners
            .values()
            .filter(|l| {
                matches!(
                    l.phase,
                    LearnerPhase::AwaitingSync | LearnerPhase::AwaitingNewLeaderAck
                )
            })
            .count()
    }

    // ----- learners come and go ------------------------------------------------------

    /// A learner connected on `link`.
    pub fn connected(&mut self, link: LinkId, now_ms: u64) {
        self.now_ms = now_ms;
        let learner = Learner {
            sid: None,
            kind: LearnerType::Participant,
            phase: LearnerPhase::Connected,
            accepted_epoch: -1,
            last_zxid: -1,
            acked: -1,
            recovering: false,
            forwarding: false,
            held: None,
            snapshot_streaming: false,
            snapshot_again: false,
            newleader_acked: false,
            queued_bytes: 0,
            last_heard_ms: now_ms,
        };
        assert!(
            self.learners.insert(link, learner).is_none(),
            "links are never reused"
        );
    }

    /// The learner's connection is gone.
    pub fn disconnected(&mut self, link: LinkId, out: &mut Vec<LeaderAction>) {
        self.syncs.retain(|(l, _)| *l != link);
        if let Some(learner) = self.learners.remove(&link) {
            if let Some(sid) = learner.sid {
                // A learner that left takes no part in a later count.
                if self.phase != LeaderPhase::Broadcast {
                    self.epoch_votes.remove(&sid);
                    self.epoch_acks.remove(&sid);
                    self.newleader_acks.remove(&sid);
                }
            }
        }
        let _ = out;
    }

    /// The driver wrote `bytes` of what was sent to `link`.
    pub fn written(&mut self, link: LinkId, bytes: usize) {
        if let Some(learner) = self.learners.get_mut(&link) {
            learner.queued_bytes = learner.queued_bytes.saturating_sub(bytes);
        }
    }

    /// A packet from a learner.
    pub fn received(
        &mut self,
        link: LinkId,
        message: LearnerMessage,
        now_ms: u64,
        out: &mut Vec<LeaderAction>,
    ) {
        self.now_ms = now_ms;
        let Some(learner) = self.learners.get_mut(&link) else {
            return;
        };
        learner.last_heard_ms = now_ms;
        match message {
            LearnerMessage::FollowerInfo { zxid, info } => {
                self.on_learner_info(link, LearnerType::Participant, zxid, info, out)
            }
            LearnerMessage::ObserverInfo { zxid, info } => {
                self.on_learner_info(link, LearnerType::Observer, zxid, info, out)
            }
            LearnerMessage::AckEpoch {
                last_logged_zxid,
                current_epoch,
            } => self.on_ack_epoch(link, last_logged_zxid, current_epoch, out),
            LearnerMessage::Ack { zxid } => self.on_ack(link, zxid, out),
            LearnerMessage::Ping { touches, .. } => {
                if !touches.is_empty() {
                    out.push(LeaderAction::Touch { touches });
                }
            }
            LearnerMessage::Revalidate {
                session_id,
                timeout_ms,
            } => out.push(LeaderAction::Revalidate {
                link,
                session_id,
                timeout_ms,
            }),
            LearnerMessage::Request(request) => {
                if learner.phase == LearnerPhase::Synced {
                    out.push(LeaderAction::Request { link, request });
                } else {
                    self.close(link, "a request from a learner that is not synced", out);
                }
            }
        }
    }
}

impl Leader {
    // ----- discovery -----------------------------------------------------------------

    fn on_learner_info(
        &mut self,
        link: LinkId,
        kind: LearnerType,
        zxid: Zxid,
        info: Option<crate::messages::LearnerInfo>,
        out: &mut Vec<LeaderAction>,
    ) {
        let sid = info.and_then(|i| Sid::try_from(i.sid).ok());
        let recovering = info.and_then(|i| i.recovering);
        let learner = &self.learners[&link];
        if learner.sid.is_some() {
            return self.close(link, "a second FOLLOWERINFO on one connection", out);
        }
        let Some(sid) = sid else {
            return self.close(
                link,
                "a learner without LearnerInfo (protocol too old)",
                out,
            );
        };
        let Some(spec) = self.config.ensemble.get(sid) else {
            return self.close(
                link,
                &format!("server id {sid} is not in the ensemble"),
                out,
            );
        };
        if spec.learner_type != kind || sid == self.config.my_sid {
            return self.close(
                link,
                &format!("server {sid} connects as a {kind:?}, which it is not"),
                out,
            );
        }
        // A learner that reconnects replaces its old connection.
        let old: Vec<LinkId> = self
            .learners
            .iter()
            .filter(|(l, learner)| **l != link && learner.sid == Some(sid))
            .map(|(l, _)| *l)
            .collect();
        for old in old {
            self.close(old, "the learner reconnected", out);
        }
        let accepted_epoch = epoch_of(zxid);
        let learner = self.learners.get_mut(&link).expect("checked above");
        learner.sid = Some(sid);
        learner.kind = kind;
        learner.accepted_epoch = accepted_epoch;
        learner.phase = LearnerPhase::AwaitingAckEpoch;
        learner.recovering = recovering.is_some();
        if let Some(zxid_good) = recovering {
            out.push(LeaderAction::Log {
                line: format!(
                    "server {sid} recovers records after 0x{zxid_good:x} lost to damage: \
                     it counts in no quorum until synchronised"
                ),
            });
        }
        let voting = kind == LearnerType::Participant && recovering.is_none();
        match self.phase {
            LeaderPhase::Discovery => {
                if voting {
                    self.epoch_votes.insert(sid, accepted_epoch);
                }
                self.check_epoch_quorum(out);
            }
            // LEADERINFO goes out once acceptedEpoch is durable.
            LeaderPhase::PersistAccepted => {}
            // The epoch was chosen without this participant, and it accepted
            // a higher one: it would refuse LEADERINFO (StaleEpoch)
            // and come back, forever. The next election chooses an epoch
            // above every accepted one (found by fk-sim, seed 400031 of
            // `--servers 3 --observers 1`).
            _ if voting && accepted_epoch > self.epoch => {
                out.push(LeaderAction::StepDown {
                    reason: StepDownReason::FollowerEpochAhead {
                        sid,
                        accepted_epoch,
                    },
                });
            }
            _ => self.send_leader_info(link, out),
        }
    }

    fn check_epoch_quorum(&mut self, out: &mut Vec<LeaderAction>) {
        if self.phase != LeaderPhase::Discovery
            || !self.config.ensemble.is_quorum(self.epoch_votes.keys())
        {
            return;
        }
        let highest = self
            .epoch_votes
            .values()
            .copied()
            .max()
            .expect("a quorum is not empty");
        self.epoch = highest + 1;
        self.phase = LeaderPhase::PersistAccepted;
        self.persisting = Some(EpochKind::Accepted);
        out.push(LeaderAction::PersistAcceptedEpoch { epoch: self.epoch });
    }

    /// The epoch write asked for last is durable.
    pub fn epoch_persisted(&mut self, out: &mut Vec<LeaderAction>) {
        match self
            .persisting
            .take()
            .expect("an epoch write was asked for")
        {
            EpochKind::Accepted => {
                self.accepted_epoch = self.epoch;
                self.phase = LeaderPhase::EpochAcks;
                self.epoch_acks.insert(self.config.my_sid);
                let waiting: Vec<LinkId> = self
                    .learners
                    .iter()
                    .filter(|(_, l)| l.phase == LearnerPhase::AwaitingAckEpoch)
                    .map(|(link, _)| *link)
                    .collect();
                for link in waiting {
                    self.send_leader_info(link, out);
                }
                self.check_epoch_ack_quorum(out);
            }
            EpochKind::Current => {
                self.current_epoch = self.epoch;
                self.newleader_acks.insert(self.config.my_sid);
                self.check_newleader_quorum(out);
            }
        }
    }

    fn send_leader_info(&mut self, link: LinkId, out: &mut Vec<LeaderAction>) {
        let message = LeaderMessage::LeaderInfo {
            zxid: make_zxid(self.epoch, 0),
            protocol_version: crate::messages::LEARNER_PROTOCOL_VERSION,
        };
        self.send(link, encode(&message), out);
    }

    fn on_ack_epoch(
        &mut self,
        link: LinkId,
        last_logged_zxid: Zxid,
        current_epoch: i32,
        out: &mut Vec<LeaderAction>,
    ) {
        let learner = &self.learners[&link];
        let established_epoch = matches!(
            self.phase,
            LeaderPhase::EpochAcks | LeaderPhase::NewLeaderAcks | LeaderPhase::Broadcast
        );
        if learner.phase != LearnerPhase::AwaitingAckEpoch || !established_epoch {
            return self.close(link, "ACKEPOCH out of turn", out);
        }
        let sid = learner.sid.expect("info came first");
        let voting = learner.kind == LearnerType::Participant && !learner.recovering;
        let current_epoch = i64::from(current_epoch);
        if current_epoch != -1 && voting && self.phase == LeaderPhase::EpochAcks {
            let ahead = current_epoch > self.current_epoch
                || (current_epoch == self.current_epoch && last_logged_zxid > self.zxid_last);
            if ahead {
                out.push(LeaderAction::StepDown {
                    reason: StepDownReason::FollowerAhead {
                        sid,
                        current_epoch,
                        last_zxid: last_logged_zxid,
                    },
                });
                return;
            }
            self.epoch_acks.insert(sid);
        }
        let learner = self.learners.get_mut(&link).expect("checked above");
        learner.last_zxid = last_logged_zxid;
        learner.phase = LearnerPhase::AwaitingSync;
        match self.phase {
            LeaderPhase::EpochAcks => self.check_epoch_ack_quorum(out),
            _ => self.sync_learner(link, out),
        }
    }

    fn check_epoch_ack_quorum(&mut self, out: &mut Vec<LeaderAction>) {
        if self.phase != LeaderPhase::EpochAcks
            || !self.config.ensemble.is_quorum(self.epoch_acks.iter())
        {
            return;
        }
        self.phase = LeaderPhase::NewLeaderAcks;
        self.persisting = Some(EpochKind::Current);
        out.push(LeaderAction::PersistCurrentEpoch { epoch: self.epoch });
        let waiting: Vec<LinkId> = self
            .learners
            .iter()
            .filter(|(_, l)| l.phase == LearnerPhase::AwaitingSync)
            .map(|(link, _)| *link)
            .collect();
        for link in waiting {
            self.sync_learner(link, out);
        }
    }

    // ----- synchronisation -----------------------------------------------------------

    /// Chooses DIFF, TRUNC or SNAP for a learner from its last zxid
    /// and the leader's history, queues what it lacks, then NEWLEADER.
    fn sync_learner(&mut self, link: LinkId, out: &mut Vec<LeaderAction>) {
        let peer_last = self.learners[&link].last_zxid;
        let committed = self.zxid_committed;
        let window_min = self.window.front().map(|(zxid, _)| *zxid);
        let start = if peer_last == committed {
            self.send(link, encode(&LeaderMessage::Diff { zxid: committed }), out);
            committed
        } else if peer_last > committed {
            // It holds txns the leader never committed (outstanding ones are
            // sent again below).
            let open = match self.config.mutation {
                Some(crate::Mutation::DiffWithoutTrunc) => LeaderMessage::Diff { zxid: committed },
                _ => LeaderMessage::Trunc { zxid: committed },
            };
            self.send(link, encode(&open), out);
            committed
        } else if window_min.is_some_and(|min| peer_last >= min) {
            let found = self.window.iter().any(|(zxid, _)| *zxid == peer_last);
            if found {
                self.send(link, encode(&LeaderMessage::Diff { zxid: committed }), out);
                peer_last
            } else {
                // It holds a txn the leader never had: cut back to the last
                // txn both have; the txns after it follow (ZOOKEEPER-1154).
                // As ZooKeeper's leader does, TRUNC alone opens the sync — a
                // learner takes exactly one of DIFF, TRUNC or SNAP.
                let common = self
                    .window
                    .iter()
                    .map(|(zxid, _)| *zxid)
                    .take_while(|zxid| *zxid < peer_last)
                    .last()
                    .expect("the window's first txn is older");
                let open = match self.config.mutation {
                    Some(crate::Mutation::DiffWithoutTrunc) => {
                        LeaderMessage::Diff { zxid: committed }
                    }
                    _ => LeaderMessage::Trunc { zxid: common },
                };
                self.send(link, encode(&open), out);
                common
            }
        } else {
            out.push(LeaderAction::StartSnapshot { link });
            return;
        };
        self.queue_history_after(link, start, out);
    }

    /// Queues, for a learner synchronised up to `start`, every committed txn
    /// after it (PROPOSAL + COMMIT), the outstanding proposals (followers),
    /// and NEWLEADER; from then on it gets new proposals as they come.
    fn queue_history_after(&mut self, link: LinkId, start: Zxid, out: &mut Vec<LeaderAction>) {
        let committed: Vec<(Zxid, Bytes)> = self
            .window
            .iter()
            .filter(|(zxid, _)| *zxid > start)
            .cloned()
            .collect();
        for (zxid, txn) in committed {
            self.send(link, encode(&LeaderMessage::Proposal { zxid, txn }), out);
            self.send(link, encode(&LeaderMessage::Commit { zxid }), out);
        }
        let follower = self.learners[&link].kind == LearnerType::Participant;
        if follower {
            let outstanding: Vec<(Zxid, Bytes)> = self.outstanding.iter().cloned().collect();
            for (zxid, txn) in outstanding {
                self.send(link, encode(&LeaderMessage::Proposal { zxid, txn }), out);
            }
        }
        let config = Bytes::from(self.config.ensemble.config_text(0));
        let newleader = LeaderMessage::NewLeader {
            zxid: make_zxid(self.epoch, 0),
            config: Some(config),
        };
        self.send(link, encode(&newleader), out);
        if let Some(learner) = self.learners.get_mut(&link) {
            learner.forwarding = true;
            learner.phase = LearnerPhase::AwaitingNewLeaderAck;
        }
    }

    /// The node began the snapshot asked for by `StartSnapshot`: the applied
    /// tree as of `zxid`. SNAP goes out now; everything else for this
    /// learner waits until [`Leader::snapshot_end`].
    pub fn snapshot_begun(&mut self, link: LinkId, zxid: Zxid, out: &mut Vec<LeaderAction>) {
        if !self.learners.contains_key(&link) {
            return;
        }
        if zxid < self.window_dropped_max {
            // The node's tree lags what a quorum committed (the leader's own
            // log is slow, the followers' are not), and the txns between it
            // and the window are gone from memory: a snapshot this old would
            // leave the learner without them. The next tick asks the node
            // for another, until its tree has caught up; the learner waits,
            // within its initLimit (found by fk-sim, seed 27 of
            // `--servers 5 --observers 1`).
            if let Some(learner) = self.learners.get_mut(&link) {
                learner.snapshot_again = true;
            }
            return;
        }
        self.send(link, encode(&LeaderMessage::Snap { zxid }), out);
        let learner = self.learners.get_mut(&link).expect("checked above");
        learner.snapshot_streaming = true;
        learner.held = Some(VecDeque::new());
        self.queue_history_after(link, zxid, out);
    }

    /// The next chunk of the snapshot streaming to `link`.
    pub fn snapshot_chunk(
        &mut self,
        link: LinkId,
        zxid: Zxid,
        chunk: Bytes,
        out: &mut Vec<LeaderAction>,
    ) {
        if self
            .learners
            .get(&link)
            .is_some_and(|l| l.snapshot_streaming)
        {
            let packet = encode(&LeaderMessage::SnapChunk { zxid, chunk });
            self.send_now(link, packet, out);
        }
    }

    /// The snapshot streaming to `link` is complete: what waited behind it follows.
    pub fn snapshot_end(&mut self, link: LinkId, zxid: Zxid, out: &mut Vec<LeaderAction>) {
        let Some(learner) = self.learners.get_mut(&link) else {
            return;
        };
        if !learner.snapshot_streaming {
            return;
        }
        learner.snapshot_streaming = false;
        let held = learner.held.take().unwrap_or_default();
        out.push(LeaderAction::Send {
            link,
            packet: encode(&LeaderMessage::SnapEnd { zxid }),
        });
        for packet in held {
            out.push(LeaderAction::Send { link, packet });
        }
    }

    /// Whether a snapshot to `link` may take another chunk now (its queue
    /// has room for it).
    pub fn snapshot_wants_chunk(&self, link: LinkId, chunk_bytes: usize) -> bool {
        self.learners.get(&link).is_some_and(|l| {
            l.snapshot_streaming && l.queued_bytes + chunk_bytes <= self.config.queue_bytes_max / 2
        })
    }

    fn on_ack(&mut self, link: LinkId, zxid: Zxid, out: &mut Vec<LeaderAction>) {
        let learner = self
            .learners
            .get_mut(&link)
            .expect("the caller looked it up");
        let Some(sid) = learner.sid else {
            return self.close(link, "ACK before FOLLOWERINFO", out);
        };
        if zxid == make_zxid(self.epoch, 0) && learner.phase == LearnerPhase::AwaitingNewLeaderAck {
            learner.newleader_acked = true;
            if learner.kind == LearnerType::Participant && !learner.recovering {
                self.newleader_acks.insert(sid);
            }
            if self.phase == LeaderPhase::Broadcast {
                self.send(link, encode(&LeaderMessage::UpToDate), out);
                if let Some(learner) = self.learners.get_mut(&link) {
                    learner.phase = LearnerPhase::Synced;
                }
            } else {
                self.check_newleader_quorum(out);
            }
            return;
        }
        if learner.kind == LearnerType::Participant && zxid > learner.acked {
            learner.acked = zxid;
            self.try_commit(out);
        }
    }

    fn check_newleader_quorum(&mut self, out: &mut Vec<LeaderAction>) {
        if self.phase != LeaderPhase::NewLeaderAcks
            || self.persisting.is_some()
            || !self.config.ensemble.is_quorum(self.newleader_acks.iter())
        {
            return;
        }
        self.phase = LeaderPhase::Broadcast;
        out.push(LeaderAction::Established { epoch: self.epoch });
        let acked: Vec<LinkId> = self
            .learners
            .iter()
            .filter(|(_, l)| l.phase == LearnerPhase::AwaitingNewLeaderAck && l.newleader_acked)
            .map(|(link, _)| *link)
            .collect();
        for link in acked {
            self.send(link, encode(&LeaderMessage::UpToDate), out);
            self.learners.get_mut(&link).expect("listed above").phase = LearnerPhase::Synced;
        }
    }

    // ----- broadcast -----------------------------------------------------------------

    /// The leader's node prepared a new txn (established epoch only): it goes
    /// to every forwarding follower now, while the leader's own log writes it.
    pub fn propose(&mut self, zxid: Zxid, txn: Bytes, out: &mut Vec<LeaderAction>) {
        assert_eq!(
            self.phase,
            LeaderPhase::Broadcast,
            "proposals only once established"
        );
        assert!(zxid > self.zxid_last, "proposals in zxid order");
        assert_eq!(
            epoch_of(zxid),
            self.epoch,
            "proposals carry the leader's epoch"
        );
        self.zxid_last = zxid;
        self.outstanding.push_back((zxid, txn.clone()));
        let packet = encode(&LeaderMessage::Proposal { zxid, txn });
        let followers: Vec<LinkId> = self
            .learners
            .iter()
            .filter(|(_, l)| l.forwarding && l.kind == LearnerType::Participant)
            .map(|(link, _)| *link)
            .collect();
        for link in followers {
            self.send(link, packet.clone(), out);
        }
    }

    /// The leader's own log is durable up to `zxid` (its own ack).
    pub fn local_durable(&mut self, zxid: Zxid, out: &mut Vec<LeaderAction>) {
        if zxid > self.zxid_durable {
            self.zxid_durable = zxid;
            self.try_commit(out);
        }
    }

    /// Commits, in zxid order, every outstanding proposal a quorum has acknowledged.
    fn try_commit(&mut self, out: &mut Vec<LeaderAction>) {
        if self.outstanding.is_empty() {
            return;
        }
        let quorum_acked = self.quorum_acked();
        if self.config.mutation == Some(crate::Mutation::CommitOutOfOrder) {
            return self.commit_newest_first(quorum_acked, out);
        }
        let mut committed = None;
        while self
            .outstanding
            .front()
            .is_some_and(|(zxid, _)| *zxid <= quorum_acked)
        {
            let (zxid, txn) = self.outstanding.pop_front().expect("checked above");
            self.commit_one(zxid, txn.clone(), out);
            self.remember(zxid, txn);
            self.answer_syncs(zxid, out);
            committed = Some(zxid);
        }
        if let Some(zxid) = committed {
            self.zxid_committed = zxid;
            out.push(LeaderAction::Commit { zxid });
        }
    }

    /// [`crate::Mutation::CommitOutOfOrder`]: the proposals up to
    /// `quorum_acked` are committed with their COMMITs sent newest first
    /// (tests only; the bug the simulator must catch).
    fn commit_newest_first(&mut self, quorum_acked: Zxid, out: &mut Vec<LeaderAction>) {
        let mut ready = Vec::new();
        while self
            .outstanding
            .front()
            .is_some_and(|(zxid, _)| *zxid <= quorum_acked)
        {
            ready.push(self.outstanding.pop_front().expect("checked above"));
        }
        let Some((newest, _)) = ready.last().cloned() else {
            return;
        };
        for (zxid, txn) in ready.iter().rev() {
            self.commit_one(*zxid, txn.clone(), out);
        }
        for (zxid, txn) in ready {
            self.remember(zxid, txn);
        }
        self.answer_syncs(newest, out);
        self.zxid_committed = newest;
        out.push(LeaderAction::Commit { zxid: newest });
    }

    /// The highest zxid a quorum of participants has made durable.
    fn quorum_acked(&self) -> Zxid {
        let mut acks: BTreeMap<Sid, Zxid> =
            BTreeMap::from([(self.config.my_sid, self.zxid_durable)]);
        for learner in self.learners.values() {
            if let Some(sid) = learner.sid {
                // A recovering learner's acks count once it is synced.
                let counts = !learner.recovering || learner.phase == LearnerPhase::Synced;
                if learner.kind == LearnerType::Participant && learner.forwarding && counts {
                    let ack = acks.entry(sid).or_insert(learner.acked);
                    *ack = (*ack).max(learner.acked);
                }
            }
        }
        let mut values: Vec<Zxid> = acks
            .iter()
            .filter(|(sid, _)| self.config.ensemble.is_voter(**sid))
            .map(|(_, zxid)| *zxid)
            .collect();
        let quorum = self.config.ensemble.quorum_size();
        if values.len() < quorum {
            return Zxid::MIN;
        }
        values.sort_unstable_by(|a, b| b.cmp(a));
        values[quorum - 1]
    }

    fn commit_one(&mut self, zxid: Zxid, txn: Bytes, out: &mut Vec<LeaderAction>) {
        let commit = encode(&LeaderMessage::Commit { zxid });
        let inform = encode(&LeaderMessage::Inform { zxid, txn });
        let links: Vec<(LinkId, LearnerType)> = self
            .learners
            .iter()
            .filter(|(_, l)| l.forwarding)
            .map(|(link, l)| (*link, l.kind))
            .collect();
        for (link, kind) in links {
            let packet = match kind {
                LearnerType::Participant => commit.clone(),
                LearnerType::Observer => inform.clone(),
            };
            self.send(link, packet, out);
        }
    }

    /// Keeps a committed txn for DIFF, within the window's bounds.
    fn remember(&mut self, zxid: Zxid, txn: Bytes) {
        self.window_bytes += txn.len();
        self.window.push_back((zxid, txn));
        while self.window.len() > self.config.window_txns_max
            || (self.window_bytes > self.config.window_bytes_max && self.window.len() > 1)
        {
            let (dropped, old) = self.window.pop_front().expect("not empty");
            self.window_bytes -= old.len();
            self.window_dropped_max = dropped;
        }
    }

    /// Answers a learner's REVALIDATE.
    pub fn revalidated(
        &mut self,
        link: LinkId,
        session_id: i64,
        valid: bool,
        out: &mut Vec<LeaderAction>,
    ) {
        let message = LeaderMessage::Revalidate { session_id, valid };
        self.send(link, encode(&message), out);
    }

    /// A learner forwarded a client's `sync`: it is answered once every
    /// txn proposed before it is committed — at once if none is
    /// outstanding, else right after the COMMIT of the last of them and
    /// before any later COMMIT (as ZooKeeper's tryToCommit sends its
    /// pendingSyncs), so the learner answers the sync, and what its client
    /// queued behind it, before it applies txns proposed after it.
    pub fn sync_requested(&mut self, link: LinkId, out: &mut Vec<LeaderAction>) {
        match self.outstanding.back() {
            None => self.sync_done(link, out),
            Some((zxid, _)) => {
                let zxid = *zxid;
                self.syncs.push_back((link, zxid));
            }
        }
    }

    /// Answers the syncs waiting for txns up to `zxid`, just committed.
    fn answer_syncs(&mut self, zxid: Zxid, out: &mut Vec<LeaderAction>) {
        while self.syncs.front().is_some_and(|(_, last)| *last <= zxid) {
            let (link, _) = self.syncs.pop_front().expect("checked above");
            self.sync_done(link, out);
        }
    }

    /// Answers a learner's forwarded `sync` (everything proposed before it is committed).
    fn sync_done(&mut self, link: LinkId, out: &mut Vec<LeaderAction>) {
        self.send(link, encode(&LeaderMessage::Sync), out);
    }

    // ----- time --------------------------------------------------------------------

    /// Time passed (call every tick/2): pings, learners that went silent,
    /// and whether the leader still has a synced quorum.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<LeaderAction>) {
        self.now_ms = now_ms;
        for (link, learner) in &mut self.learners {
            if std::mem::take(&mut learner.snapshot_again) {
                out.push(LeaderAction::StartSnapshot { link: *link });
            }
        }
        let tick = self.config.tick_ms;
        let init_ms = self.config.init_limit * tick;
        let sync_ms = self.config.sync_limit * tick;
        let silent: Vec<LinkId> = self
            .learners
            .iter()
            .filter(|(_, l)| {
                let limit = if l.phase == LearnerPhase::Synced {
                    sync_ms
                } else {
                    init_ms
                };
                now_ms.saturating_sub(l.last_heard_ms) > limit
            })
            .map(|(link, _)| *link)
            .collect();
        for link in silent {
            self.close(link, "the learner went silent", out);
        }
        if self.phase != LeaderPhase::Broadcast {
            if now_ms.saturating_sub(self.started_ms) > init_ms {
                out.push(LeaderAction::StepDown {
                    reason: StepDownReason::NotEstablished,
                });
            }
            return;
        }
        let ping = encode(&LeaderMessage::Ping {
            zxid: self.zxid_last,
        });
        let links: Vec<LinkId> = self
            .learners
            .iter()
            .filter(|(_, l)| l.sid.is_some())
            .map(|(link, _)| *link)
            .collect();
        for link in links {
            self.send(link, ping.clone(), out);
        }
        let mut synced = BTreeSet::from([self.config.my_sid]);
        synced.extend(self.learners.values().filter_map(|l| {
            (l.phase == LearnerPhase::Synced && l.kind == LearnerType::Participant)
                .then_some(l.sid)
                .flatten()
        }));
        if !self.config.ensemble.is_quorum(synced.iter()) {
            out.push(LeaderAction::StepDown {
                reason: StepDownReason::QuorumLost,
            });
        }
    }

    // ----- sending -----------------------------------------------------------------

    /// Queues a packet for a learner, behind a streaming snapshot if one is.
    fn send(&mut self, link: LinkId, packet: Bytes, out: &mut Vec<LeaderAction>) {
        let Some(learner) = self.learners.get_mut(&link) else {
            return;
        };
        match &mut learner.held {
            Some(held) => {
                learner.queued_bytes += packet.len();
                held.push_back(packet);
                self.check_queue(link, out);
            }
            None => self.send_now(link, packet, out),
        }
    }

    fn send_now(&mut self, link: LinkId, packet: Bytes, out: &mut Vec<LeaderAction>) {
        let Some(learner) = self.learners.get_mut(&link) else {
            return;
        };
        learner.queued_bytes += packet.len();
        out.push(LeaderAction::Send { link, packet });
        self.check_queue(link, out);
    }

    /// A learner too far behind is disconnected rather than allowed to grow
    /// the leader's memory; it re-syncs when it reconnects.
    fn check_queue(&mut self, link: LinkId, out: &mut Vec<LeaderAction>) {
        let queued = self.learners.get(&link).map_or(0, |l| l.queued_bytes);
        if queued > self.config.queue_bytes_max {
            let reason = format!(
                "{queued} bytes queued for the learner, over the bound of {}: it must re-sync",
                self.config.queue_bytes_max
            );
            self.close(link, &reason, out);
        }
    }

    fn close(&mut self, link: LinkId, reason: &str, out: &mut Vec<LeaderAction>) {
        if self.learners.contains_key(&link) {
            self.disconnected(link, out);
            out.push(LeaderAction::Close {
                link,
                reason: reason.to_string(),
            });
        }
    }

    pub fn check_invariants(&self) {
        assert!(self.zxid_committed <= self.zxid_last);
        assert!(
            self.syncs
                .iter()
                .all(|(_, zxid)| *zxid > self.zxid_committed),
            "a sync waits only for txns not yet committed"
        );
        let mut previous = self.zxid_committed;
        for (zxid, _) in &self.outstanding {
            assert!(
                *zxid > previous,
                "outstanding proposals in zxid order, after the committed"
            );
            previous = *zxid;
        }
        assert_eq!(
            previous.max(self.zxid_committed),
            self.zxid_last.max(self.zxid_committed)
        );
        let mut previous = Zxid::MIN;
        let mut bytes = 0;
        for (zxid, txn) in &self.window {
            assert!(
                *zxid > previous && *zxid <= self.zxid_committed,
                "the window is committed history"
            );
            previous = *zxid;
            bytes += txn.len();
        }
        assert_eq!(bytes, self.window_bytes);
        let mut sids = BTreeSet::new();
        for learner in self.learners.values() {
            if let Some(sid) = learner.sid {
                assert!(sids.insert(sid), "one connection per learner");
                assert_ne!(sid, self.config.my_sid);
            }
            assert_eq!(learner.held.is_some(), learner.snapshot_streaming);
        }
        if self.phase == LeaderPhase::Broadcast {
            assert!(self.config.ensemble.is_quorum(self.newleader_acks.iter()));
        }
    }
}

/// Encodes a message once, as the bytes every queue shares.
fn encode(message: &LeaderMessage) -> Bytes {
    message.to_packet().to_bytes()
}
