//! A learner's side of ZAB (follower or observer): registering with the
//! leader, synchronising, and following its broadcast — as a state machine
//! over opaque txns.
//!
//! ```text
//!  connected ─▶ FOLLOWERINFO/OBSERVERINFO(acceptedEpoch)
//!  LEADERINFO(E) ─▶ E > acceptedEpoch: persist acceptedEpoch = E, then ACKEPOCH(lastZxid, currentEpoch)
//!                   E = acceptedEpoch: ACKEPOCH(lastZxid, -1);  E < acceptedEpoch: give up
//!  DIFF | TRUNC(z) | SNAP(z) + chunks, then PROPOSAL/COMMIT pairs
//!  NEWLEADER ─▶ once every txn received is durable and a SNAP is sealed:
//!               persist currentEpoch = E, then ACK(NEWLEADER)
//!  UPTODATE ─▶ serve; PROPOSAL → log → ACK(highest durable); COMMIT → apply
//! ```
//!
//! Persistence orders (ZOOKEEPER-1653, 2872, 3104, 3642, 3911, 4643, 4785):
//! acceptedEpoch is durable before ACKEPOCH; every txn and snapshot received
//! during synchronisation is durable before currentEpoch is written, and
//! currentEpoch before the NEWLEADER ack; a proposal is acknowledged only
//! once durable. The node applies a txn only when it is both committed and
//! durable here.

use bytes::Bytes;
use proto::Zxid;

use crate::ensemble::{LearnerType, Sid};
use crate::leader::{epoch_of, make_zxid};
use crate::messages::{ForwardedRequest, LeaderMessage, LearnerInfo, LearnerMessage, SessionTouch};

/// What a learner is configured with.
#[derive(Debug, Clone)]
pub struct LearnerConfig {
    pub my_sid: Sid,
    pub kind: LearnerType,
    pub tick_ms: u64,
    pub init_limit: u64,
    pub sync_limit: u64,
    /// A bug reintroduced on purpose (tests only; see [`crate::Mutation`]).
    pub mutation: Option<crate::Mutation>,
    /// This server's log lost every record after this zxid to damage
    /// (protocol-aware recovery): it tells the leader so in FOLLOWERINFO,
    /// so that it counts in none of the leader's quorums, and, counting in
    /// none, it may follow a leader of an epoch older than one it accepted
    /// (as an observer may). `None`: a normal learner.
    pub recovering: Option<Zxid>,
}

/// Where the learner stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LearnerPhase {
    /// Waiting for the connection to the leader.
    Connecting,
    /// FOLLOWERINFO sent.
    AwaitingLeaderInfo,
    /// acceptedEpoch is being made durable.
    PersistingAccepted,
    /// ACKEPOCH sent; waiting for DIFF, TRUNC or SNAP.
    AwaitingSync,
    /// Receiving the leader's history.
    Syncing,
    /// NEWLEADER received: waiting for the history to be durable, then
    /// for currentEpoch.
    PersistingCurrent,
    /// NEWLEADER acknowledged; waiting for UPTODATE.
    AwaitingUpToDate,
    /// Serving.
    Broadcast,
}

/// Why a learner gives up on its leader (the node goes back to election).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LostReason {
    /// Nothing from the leader within the limit.
    Timeout,
    /// The leader's epoch is older than one this learner accepted.
    StaleEpoch {
        leader_epoch: i64,
        accepted_epoch: i64,
    },
    /// A packet out of turn or out of order.
    Protocol(String),
}

/// What the driver must do, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum LearnerAction {
    /// Write this encoded packet to the leader.
    Send {
        packet: Bytes,
    },
    /// Make acceptedEpoch = `epoch` durable, then call [`Learner::epoch_persisted`].
    PersistAcceptedEpoch {
        epoch: i64,
    },
    /// Make currentEpoch = `epoch` durable, then call [`Learner::epoch_persisted`].
    PersistCurrentEpoch {
        epoch: i64,
    },
    /// Cut the log after `zxid`, durably, and roll the tree back to it,
    /// before anything received later is logged.
    Truncate {
        zxid: Zxid,
    },
    /// A snapshot of the leader's tree at `zxid` begins; its chunks follow.
    SnapshotBegin {
        zxid: Zxid,
    },
    SnapshotChunk {
        chunk: Bytes,
    },
    /// The snapshot is complete: load it as the tree and seal it on disk,
    /// then call [`Learner::snapshot_sealed`].
    SnapshotEnd {
        zxid: Zxid,
    },
    /// Log this txn (after every earlier one); report [`Learner::durable`].
    Txn {
        zxid: Zxid,
        txn: Bytes,
    },
    /// Every txn up to `zxid` is committed.
    Commit {
        zxid: Zxid,
    },
    /// Synchronised: serve clients.
    UpToDate,
    /// The leader pinged: answer with [`Learner::ping_reply`] and the touch table.
    PingRequested {
        zxid: Zxid,
    },
    /// The leader's answer to a REVALIDATE.
    Revalidated {
        session_id: i64,
        valid: bool,
    },
    /// The leader answered a forwarded `sync` (answers come in request order).
    SyncAnswered,
    /// Give up on this leader.
    Lost {
        reason: LostReason,
    },
}

/// One learner, following one leader.
#[derive(Debug)]
pub struct Learner {
    config: LearnerConfig,
    phase: LearnerPhase,
    accepted_epoch: i64,
    current_epoch: i64,
    /// The epoch the leader offered.
    new_epoch: i64,
    /// The last txn received (or the state a TRUNC or SNAP left).
    zxid_received: Zxid,
    /// The last txn durable in the log.
    zxid_durable: Zxid,
    /// A SNAP was received and is not yet sealed on disk.
    snapshot_unsealed: bool,
    snapshot_receiving: bool,
    /// An epoch write is in flight.
    persisting: bool,
    last_heard_ms: u64,
}

impl Learner {
    /// A learner about to connect to its leader, with its durable state.
    pub fn new(
        config: LearnerConfig,
        accepted_epoch: i64,
        current_epoch: i64,
        zxid_last_logged: Zxid,
        now_ms: u64,
    ) -> Learner {
        Learner {
            config,
            phase: LearnerPhase::Connecting,
            accepted_epoch,
            current_epoch,
            new_epoch: -1,
            zxid_received: zxid_last_logged,
            zxid_durable: zxid_last_logged,
            snapshot_unsealed: false,
            snapshot_receiving: false,
            persisting: false,
            last_heard_ms: now_ms,
        }
    }

    pub fn phase(&self) -> LearnerPhase {
        self.phase
    }

    pub fn config(&self) -> &LearnerConfig {
        &self.config
    }

    pub fn accepted_epoch(&self) -> i64 {
        self.accepted_epoch
    }

    pub fn current_epoch(&self) -> i64 {
        self.current_epoch
    }

    /// The epoch the leader is establishing (after LEADERINFO).
    pub fn leader_epoch(&self) -> i64 {
        self.new_epoch
    }

    /// The connection to the leader is up: register.
    pub fn connected(&mut self, now_ms: u64, out: &mut Vec<LearnerAction>) {
        assert_eq!(
            self.phase,
            LearnerPhase::Connecting,
            "one registration per learner"
        );
        self.last_heard_ms = now_ms;
        self.phase = LearnerPhase::AwaitingLeaderInfo;
        let zxid = make_zxid(self.accepted_epoch, 0);
        let info = Some(LearnerInfo {
            recovering: self.config.recovering,
            ..LearnerInfo::current(self.config.my_sid as i64, 0)
        });
        let message = match self.config.kind {
            LearnerType::Participant => LearnerMessage::FollowerInfo { zxid, info },
            LearnerType::Observer => LearnerMessage::ObserverInfo { zxid, info },
        };
        send(&message, out);
    }

    /// A packet from the leader.
    pub fn received(&mut self, message: LeaderMessage, now_ms: u64, out: &mut Vec<LearnerAction>) {
        self.last_heard_ms = now_ms;
        match message {
            LeaderMessage::LeaderInfo { zxid, .. } => self.on_leader_info(epoch_of(zxid), out),
            LeaderMessage::Diff { .. } => {
                // The leader's history holds all of this learner's log: it
                // is committed in the new epoch.
                if self.begin_sync(out) {
                    out.push(LearnerAction::Commit {
                        zxid: self.zxid_received,
                    });
                }
            }
            LeaderMessage::Trunc { zxid } => {
                if self.begin_sync(out) {
                    self.zxid_received = self.zxid_received.min(zxid);
                    self.zxid_durable = self.zxid_durable.min(zxid);
                    out.push(LearnerAction::Truncate { zxid });
                    out.push(LearnerAction::Commit {
                        zxid: self.zxid_received,
                    });
                }
            }
            LeaderMessage::Snap { zxid } => {
                if self.begin_sync(out) {
                    self.snapshot_receiving = true;
                    out.push(LearnerAction::SnapshotBegin { zxid });
                }
            }
            LeaderMessage::SnapChunk { chunk, .. } if self.snapshot_receiving => {
                out.push(LearnerAction::SnapshotChunk { chunk });
            }
            LeaderMessage::SnapEnd { zxid } if self.snapshot_receiving => {
                self.snapshot_receiving = false;
                self.snapshot_unsealed = true;
                self.zxid_received = zxid;
                self.zxid_durable = zxid;
                out.push(LearnerAction::SnapshotEnd { zxid });
            }
            LeaderMessage::Proposal { zxid, txn } => self.on_txn(zxid, txn, false, out),
            LeaderMessage::Inform { zxid, txn } => self.on_txn(zxid, txn, true, out),
            LeaderMessage::Commit { zxid } => self.on_commit(zxid, out),
            LeaderMessage::NewLeader { zxid, .. } => self.on_new_leader(zxid, out),
            LeaderMessage::UpToDate => self.on_up_to_date(out),
            LeaderMessage::Ping { zxid } => out.push(LearnerAction::PingRequested { zxid }),
            LeaderMessage::Revalidate { session_id, valid } => {
                out.push(LearnerAction::Revalidated { session_id, valid })
            }
            LeaderMessage::Sync => out.push(LearnerAction::SyncAnswered),
            other => self.lost(
                LostReason::Protocol(format!("unexpected {:?}", other.packet_type())),
                out,
            ),
        }
    }

    fn on_leader_info(&mut self, epoch: i64, out: &mut Vec<LearnerAction>) {
        if self.phase != LearnerPhase::AwaitingLeaderInfo {
            return self.lost(LostReason::Protocol("LEADERINFO out of turn".into()), out);
        }
        self.new_epoch = epoch;
        if epoch > self.accepted_epoch {
            self.phase = LearnerPhase::PersistingAccepted;
            self.persisting = true;
            out.push(LearnerAction::PersistAcceptedEpoch { epoch });
        } else if epoch == self.accepted_epoch
            || self.config.kind == LearnerType::Observer
            || self.config.recovering.is_some()
        {
            // This epoch was accepted before: the ack does not count again.
            // An observer never votes, so the epoch it accepted guards no
            // quorum: it follows an established leader of an older epoch
            // than one a failed leader offered it (found by fk-sim, seed
            // 400031 of `--servers 3 --observers 1`: it refused forever).
            // Nor does a recovering participant's, which this leader
            // counts in no quorum (it said so in FOLLOWERINFO): an older
            // epoch chosen without it was chosen by a quorum that
            // intersects any that saw its promise.
            self.ack_epoch(-1, out);
        } else {
            let reason = LostReason::StaleEpoch {
                leader_epoch: epoch,
                accepted_epoch: self.accepted_epoch,
            };
            self.lost(reason, out);
        }
    }

    fn ack_epoch(&mut self, current_epoch: i32, out: &mut Vec<LearnerAction>) {
        self.phase = LearnerPhase::AwaitingSync;
        let message = LearnerMessage::AckEpoch {
            last_logged_zxid: self.zxid_durable,
            current_epoch,
        };
        send(&message, out);
    }

    /// The epoch write asked for last is durable.
    pub fn epoch_persisted(&mut self, out: &mut Vec<LearnerAction>) {
        assert!(self.persisting, "an epoch write was asked for");
        self.persisting = false;
        match self.phase {
            LearnerPhase::PersistingAccepted => {
                self.accepted_epoch = self.new_epoch;
                let current = i32::try_from(self.current_epoch).unwrap_or(i32::MAX);
                self.ack_epoch(current, out);
            }
            LearnerPhase::PersistingCurrent => {
                self.current_epoch = self.new_epoch;
                self.phase = LearnerPhase::AwaitingUpToDate;
                send(
                    &LearnerMessage::Ack {
                        zxid: make_zxid(self.new_epoch, 0),
                    },
                    out,
                );
            }
            phase => panic!("an epoch was persisted in phase {phase:?}"),
        }
    }

    /// Enters Syncing on the first sync packet; false (and gives up) if out of turn.
    fn begin_sync(&mut self, out: &mut Vec<LearnerAction>) -> bool {
        if self.phase != LearnerPhase::AwaitingSync {
            self.lost(
                LostReason::Protocol("a sync packet out of turn".into()),
                out,
            );
            return false;
        }
        self.phase = LearnerPhase::Syncing;
        true
    }

    fn on_txn(&mut self, zxid: Zxid, txn: Bytes, inform: bool, out: &mut Vec<LearnerAction>) {
        let expected = match self.config.kind {
            LearnerType::Participant => !inform,
            // Observers get INFORM in broadcast, PROPOSAL + COMMIT in sync.
            LearnerType::Observer => inform || self.phase != LearnerPhase::Broadcast,
        };
        let phase_ok = matches!(
            self.phase,
            LearnerPhase::Syncing
                | LearnerPhase::PersistingCurrent
                | LearnerPhase::AwaitingUpToDate
                | LearnerPhase::Broadcast
        );
        if !expected || !phase_ok {
            return self.lost(LostReason::Protocol("a txn out of turn".into()), out);
        }
        if zxid <= self.zxid_received {
            let line = format!("txn 0x{zxid:x} is not after 0x{:x}", self.zxid_received);
            return self.lost(LostReason::Protocol(line), out);
        }
        self.zxid_received = zxid;
        out.push(LearnerAction::Txn { zxid, txn });
        if inform {
            out.push(LearnerAction::Commit { zxid });
        }
    }

    fn on_commit(&mut self, zxid: Zxid, out: &mut Vec<LearnerAction>) {
        if zxid > self.zxid_received {
            let line = format!("COMMIT 0x{zxid:x} for a txn never received");
            return self.lost(LostReason::Protocol(line), out);
        }
        out.push(LearnerAction::Commit { zxid });
    }

    fn on_new_leader(&mut self, zxid: Zxid, out: &mut Vec<LearnerAction>) {
        if self.phase != LearnerPhase::Syncing || epoch_of(zxid) != self.new_epoch {
            return self.lost(LostReason::Protocol("NEWLEADER out of turn".into()), out);
        }
        self.phase = LearnerPhase::PersistingCurrent;
        self.try_ack_new_leader(out);
    }

    /// NEWLEADER is acknowledged only once everything received is durable
    /// (ZOOKEEPER-3911, 4785) and a snapshot is sealed (2872, 3104); then
    /// currentEpoch is written (4643) and only after that the ack leaves.
    fn try_ack_new_leader(&mut self, out: &mut Vec<LearnerAction>) {
        let durable = self.zxid_durable >= self.zxid_received
            || self.config.mutation == Some(crate::Mutation::CurrentEpochBeforeDurable);
        if self.phase != LearnerPhase::PersistingCurrent
            || self.persisting
            || !durable
            || self.snapshot_unsealed
        {
            return;
        }
        self.persisting = true;
        out.push(LearnerAction::PersistCurrentEpoch {
            epoch: self.new_epoch,
        });
    }

    fn on_up_to_date(&mut self, out: &mut Vec<LearnerAction>) {
        if self.phase != LearnerPhase::AwaitingUpToDate {
            return self.lost(LostReason::Protocol("UPTODATE out of turn".into()), out);
        }
        self.phase = LearnerPhase::Broadcast;
        out.push(LearnerAction::UpToDate);
        // Proposals forwarded during synchronisation and durable by now.
        if self.config.kind == LearnerType::Participant
            && self.zxid_durable > make_zxid(self.new_epoch, 0)
        {
            send(
                &LearnerMessage::Ack {
                    zxid: self.zxid_durable,
                },
                out,
            );
        }
    }

    /// The log is durable up to `zxid`.
    pub fn durable(&mut self, zxid: Zxid, out: &mut Vec<LearnerAction>) {
        if zxid <= self.zxid_durable {
            return;
        }
        assert!(
            zxid <= self.zxid_received,
            "only received txns become durable"
        );
        self.zxid_durable = zxid;
        match self.phase {
            LearnerPhase::Broadcast if self.config.kind == LearnerType::Participant => {
                send(&LearnerMessage::Ack { zxid }, out)
            }
            LearnerPhase::PersistingCurrent => self.try_ack_new_leader(out),
            _ => {}
        }
    }

    /// The snapshot received from the leader is sealed on disk.
    pub fn snapshot_sealed(&mut self, out: &mut Vec<LearnerAction>) {
        self.snapshot_unsealed = false;
        self.try_ack_new_leader(out);
    }

    /// Answers the leader's PING with the sessions this learner's clients used.
    pub fn ping_reply(
        &mut self,
        zxid: Zxid,
        touches: Vec<SessionTouch>,
        out: &mut Vec<LearnerAction>,
    ) {
        send(&LearnerMessage::Ping { zxid, touches }, out);
    }

    /// Forwards a client's write, createSession, closeSession or sync.
    pub fn forward(&mut self, request: ForwardedRequest, out: &mut Vec<LearnerAction>) {
        send(&LearnerMessage::Request(request), out);
    }

    /// Asks the leader whether a reconnecting client's session is alive.
    pub fn revalidate(&mut self, session_id: i64, timeout_ms: i32, out: &mut Vec<LearnerAction>) {
        send(
            &LearnerMessage::Revalidate {
                session_id,
                timeout_ms,
            },
            out,
        );
    }

    /// Time passed: a leader silent for too long is given up.
    pub fn tick(&mut self, now_ms: u64, out: &mut Vec<LearnerAction>) {
        let limit = match self.phase {
            LearnerPhase::Broadcast => self.config.sync_limit,
            _ => self.config.init_limit,
        } * self.config.tick_ms;
        if now_ms.saturating_sub(self.last_heard_ms) > limit {
            self.lost(LostReason::Timeout, out);
        }
    }

    fn lost(&mut self, reason: LostReason, out: &mut Vec<LearnerAction>) {
        out.push(LearnerAction::Lost { reason });
    }

    pub fn check_invariants(&self) {
        assert!(
            self.zxid_durable <= self.zxid_received,
            "durable ≤ received"
        );
        assert!(
            self.current_epoch <= self.accepted_epoch,
            "currentEpoch ≤ acceptedEpoch"
        );
        if self.phase == LearnerPhase::Broadcast {
            assert_eq!(
                self.current_epoch, self.new_epoch,
                "serving only in the leader's epoch"
            );
        }
    }
}

fn send(message: &LearnerMessage, out: &mut Vec<LearnerAction>) {
    out.push(LearnerAction::Send {
        packet: message.to_packet().to_bytes(),
    });
}
