//! The node's place in an ensemble: standalone, looking (electing), leading
//! or learning (following or observing), and the moves between them.
//!
//! ```text
//!             ┌──────────── election decided ─────────────┐
//!  start ─▶ Looking ──▶ Leading ── StepDown ─────────────▶ Looking
//!             │   └───▶ Learning ── Lost (timeout, error) ─▶ Looking
//!  standalone: Standalone, always
//! ```
//!
//! Only a serving node (standalone, an established leader, a learner after
//! UPTODATE) accepts client sessions. Leaving a serving role closes every
//! client connection (clients reconnect, to this server or another, as they
//! do with ZooKeeper), forgets prepared txns that never reached the log, and
//! keeps logged ones for the next leader to commit or truncate. The election
//! starts only once the log is idle, so the vote names a durable zxid.
//!
//! Protocol-aware recovery: a node whose log lost records to damage (wal's
//! "recovering" marker, [`crate::Recovered::recovering`]) must not vote as
//! if it held them. Until it has synchronised from an established leader
//! (NEWLEADER acknowledged, UPTODATE received) its election abstains
//! (`replication::election`: no vote, never leads, may join an established
//! leader) and its FOLLOWERINFO says it recovers, so the leader counts it
//! in no quorum. At UPTODATE it holds every committed txn again: the node
//! asks the driver to remove the marker ([`Action::ClearRecovering`]) and
//! votes from then on. A crash before the removal is durable only keeps it
//! abstaining longer.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use replication::election::{
    Election, ElectionAction, ElectionConfig, ElectionInput, Role as Decided, Vote,
};
use replication::leader::{Leader, LinkId};
use replication::learner::Learner;
use replication::{LearnerType, QuorumPacket, Sid};
use tree::SnapshotCursor;

use crate::io::{Action, ConnId, EpochKind, Level};
use crate::node::Node;

/// The node's role.
#[derive(Debug)]
pub(crate) enum Role {
    Standalone,
    Looking(Looking),
    Leading(Box<Leading>),
    Learning(Box<Learning>),
}

/// Electing; the election starts once the log is idle.
#[derive(Debug, Default)]
pub(crate) struct Looking {
    pub(crate) started: bool,
    /// The state is being reloaded from disk first.
    pub(crate) reloading: bool,
}

/// Leading an epoch.
#[derive(Debug)]
pub(crate) struct Leading {
    pub(crate) leader: Leader,
    pub(crate) established: bool,
    /// Snapshots streaming to learners: the snapshot's zxid and the walk.
    pub(crate) streams: BTreeMap<LinkId, (i64, SnapshotCursor)>,
    pub(crate) last_tick: Duration,
}

/// Following or observing a leader.
#[derive(Debug)]
pub(crate) struct Learning {
    pub(crate) learner: Learner,
    pub(crate) kind: LearnerType,
    pub(crate) leader_sid: Sid,
    pub(crate) link: Option<LinkId>,
    /// UPTODATE came: serving clients.
    pub(crate) serving: bool,
    /// The snapshot being received from the leader.
    pub(crate) snapshot: Option<(i64, Vec<u8>)>,
    /// Sessions this server's clients used since the last PING reply.
    pub(crate) touched: BTreeMap<i64, i32>,
    /// Connections whose forwarded `sync`s await the leader's answer, in order.
    pub(crate) syncs: VecDeque<ConnId>,
    /// Reconnecting clients waiting for the leader's REVALIDATE answer.
    pub(crate) revalidating: BTreeMap<i64, VecDeque<ConnId>>,
    /// Packets from the leader held while the log is cut or the state reloaded.
    pub(crate) held: VecDeque<QuorumPacket>,
    pub(crate) holding: bool,
    pub(crate) last_tick: Duration,
    /// When this learner began to connect: it keeps trying for initLimit
    /// ticks, as ZooKeeper's learner does, since the leader may not have
    /// taken up its role yet.
    pub(crate) connect_started: Duration,
    /// When to dial the leader again.
    pub(crate) retry_at: Option<Duration>,
    /// Dials that failed since this learner role began.
    pub(crate) retries: u32,
}

impl Role {
    /// Whether clients are served.
    pub(crate) fn serving(&self) -> bool {
        match self {
            Role::Standalone => true,
            Role::Looking(_) => false,
            Role::Leading(leading) => leading.established,
            Role::Learning(learning) => learning.serving,
        }
    }

    /// `srvr`'s Mode.
    pub(crate) fn mode(&self) -> &'static str {
        match self {
            Role::Standalone => "standalone",
            Role::Looking(_) => "looking",
            Role::Leading(_) => "leader",
            Role::Learning(learning) => match learning.kind {
                LearnerType::Participant => "follower",
                LearnerType::Observer => "observer",
            },
        }
    }

    /// Whether this node decides session expiry and reaps containers.
    pub(crate) fn expires_sessions(&self) -> bool {
        match self {
            Role::Standalone => true,
            Role::Leading(leading) => leading.established,
            _ => false,
        }
    }
}

impl Node {
    pub(crate) fn now_ms(&self) -> u64 {
        self.now.monotonic.as_millis() as u64
    }

    /// The election, for a node configured in an ensemble.
    pub(crate) fn new_election(&self) -> Option<Election> {
        let settings = self.settings.ensemble.as_ref()?;
        let mut config = ElectionConfig::new(settings.my_sid, settings.ensemble.clone());
        config.finalize_wait_ms = settings.finalize_wait_ms;
        Some(Election::new(config))
    }

    /// Starts the election if the node is looking and its log is idle.
    pub(crate) fn maybe_start_election(&mut self) {
        let Role::Looking(looking) = &mut self.role else {
            return;
        };
        if looking.started
            || looking.reloading
            || self.pipeline.append_in_flight()
            || self.truncating
            || self.pipeline.failed().is_some()
        {
            return;
        }
        looking.started = true;
        let voteless = self.recovering_voteless();
        if let Some(election) = &mut self.election {
            election.set_recovering(voteless.is_some());
        }
        if let Some(zxid) = voteless {
            self.out.log(
                Level::Warn,
                format!(
                    "server {}: not voting: records after 0x{zxid:x} were lost to log damage; \
                     waiting to follow a leader the other servers elect, to recover them \
                     (removing dataDir/recovering would vote as if they were held)",
                    self.my_sid()
                ),
            );
        }
        let input = ElectionInput::Start {
            current_epoch: self.current_epoch,
            last_logged_zxid: self.pipeline.zxid_durable(),
        };
        self.out.log(
            Level::Info,
            format!(
                "looking for a leader: my vote is (epoch {}, zxid 0x{:x})",
                self.current_epoch,
                self.pipeline.zxid_durable()
            ),
        );
        self.election_step(input);
    }

    pub(crate) fn election_step(&mut self, input: ElectionInput) {
        let now_ms = self.now_ms();
        let Some(election) = &mut self.election else {
            return;
        };
        let actions = election.step(now_ms, input);
        for action in actions {
            match action {
                ElectionAction::Send { to, notification } => {
                    self.out.push(Action::ElectionSend { to, notification })
                }
                ElectionAction::SendToVoters { notification } => {
                    let me = self.my_sid();
                    let voters: Vec<Sid> = self
                        .settings
                        .ensemble
                        .as_ref()
                        .map(|e| {
                            e.ensemble
                                .voters()
                                .iter()
                                .copied()
                                .filter(|sid| *sid != me)
                                .collect()
                        })
                        .unwrap_or_default();
                    for to in voters {
                        self.out.push(Action::ElectionSend {
                            to,
                            notification: notification.clone(),
                        });
                    }
                }
                ElectionAction::Decided { role, vote, .. } => self.decided(role, vote),
                ElectionAction::SetTimer { deadline_ms } => {
                    self.election_deadline = Some(Duration::from_millis(deadline_ms))
                }
                ElectionAction::CancelTimer => self.election_deadline = None,
            }
        }
    }

    /// The zxid after which this node's log lost records, while it must
    /// count in no quorum: until it synchronised from an established leader
    /// (see the module docs). `Mutation::VoteAsIfLostRecordsHeld` (tests
    /// only) makes it vote as ZooKeeper would.
    pub(crate) fn recovering_voteless(&self) -> Option<i64> {
        let mutation = self.settings.ensemble.as_ref().and_then(|e| e.mutation);
        self.recovering
            .filter(|_| mutation != Some(replication::Mutation::VoteAsIfLostRecordsHeld))
    }

    /// Synchronised from an established leader (UPTODATE): every committed
    /// txn is durable here again; the node votes from now on.
    pub(crate) fn recovered_from_peers(&mut self, leader: Sid) {
        let Some(zxid) = self.recovering.take() else {
            return;
        };
        self.out.log(
            Level::Warn,
            format!(
                "server {}: recovered the records lost after 0x{zxid:x} from leader {leader}; \
                 voting again",
                self.my_sid()
            ),
        );
        self.out.push(Action::ClearRecovering);
    }

    pub(crate) fn my_sid(&self) -> Sid {
        self.settings.ensemble.as_ref().map_or(0, |e| e.my_sid)
    }

    fn decided(&mut self, role: Decided, vote: Vote) {
        if !matches!(self.role, Role::Looking(_)) {
            return;
        }
        match role {
            Decided::Leading => self.become_leader(),
            Decided::Following => self.become_learner(LearnerType::Participant, vote.leader),
            Decided::Observing => self.become_learner(LearnerType::Observer, vote.leader),
        }
    }

    /// Leaves the current role for the election.
    pub(crate) fn go_looking(&mut self, reason: &str) {
        if matches!(self.role, Role::Looking(_) | Role::Standalone) {
            return;
        }
        self.out.log(
            Level::Warn,
            format!(
                "leaving the {} role for an election: {reason}",
                self.role.mode()
            ),
        );
        let conns: Vec<ConnId> = self.conns.iter().map(|(conn, _)| conn).collect();
        for conn in conns {
            self.close_conn(conn);
        }
        let old = std::mem::replace(&mut self.role, Role::Looking(Looking::default()));
        match old {
            Role::Leading(leading) => {
                for link in leading.leader.links() {
                    self.out.push(Action::PeerClose { link });
                }
                self.tree.discard_pending();
            }
            Role::Learning(learning) => {
                if let Some(link) = learning.link {
                    self.out.push(Action::PeerClose { link });
                }
            }
            Role::Looking(_) | Role::Standalone => {}
        }
        self.sessions = crate::sessions::Sessions::new(self.settings.tick());
        self.pipeline.drop_unlogged(self.zxid_applied());
        // An epoch write in flight finishes for no role: the next role asks
        // for its own (found by fk-sim: a learner that lost its leader while
        // its acceptedEpoch write was in flight followed the next leader at
        // once and asked for another write, tripping "one epoch write at a
        // time" — or would have taken the old write's completion for its own).
        self.epoch_write_orphaned = self.epoch_write.is_some();
        self.epoch_write_queued = None;
        // A tree ahead of what is on disk (a snapshot from the leader not yet
        // sealed, ZOOKEEPER-3642) must not vote: reload what is durable.
        if self.snapshot_unsealed.is_some() || self.reloading {
            if let Role::Looking(looking) = &mut self.role {
                looking.reloading = true;
            }
            // One reload at a time; behind a cut in flight it waits for the
            // cut (Input::LogTruncated asks for it), behind an append in
            // flight for its outcome (`Node::step` asks then): the reload
            // replaces the pipeline, which must have no append in flight
            // (found by fk-sim, seed 2 of `--servers 3 --steps 20000`).
            if !self.reloading {
                self.reloading = true;
                if self.pipeline.append_in_flight() {
                    self.reload_after_append = true;
                } else if !self.truncating {
                    self.out.push(Action::Reload);
                }
            }
        }
        self.maybe_start_election();
    }

    /// An epoch file is durable: tell the role that asked for it.
    pub(crate) fn on_epoch_persisted(&mut self) {
        let Some((kind, epoch)) = self.epoch_write.take() else {
            self.out.log(
                Level::Warn,
                "an epoch write finished that was never asked for".into(),
            );
            return;
        };
        match kind {
            EpochKind::Accepted => self.accepted_epoch = epoch,
            EpochKind::Current => self.current_epoch = epoch,
        }
        if std::mem::take(&mut self.epoch_write_orphaned) {
            if let Some((kind, epoch)) = self.epoch_write_queued.take() {
                let durable = match kind {
                    EpochKind::Accepted => self.accepted_epoch,
                    EpochKind::Current => self.current_epoch,
                };
                // An epoch file never goes back.
                assert!(
                    epoch >= durable,
                    "epoch write {kind:?} {epoch} after {durable}"
                );
                self.persist_epoch(kind, epoch);
            }
            return;
        }
        match &mut self.role {
            Role::Leading(leading) => {
                let mut actions = Vec::new();
                leading.leader.epoch_persisted(&mut actions);
                self.leader_actions(actions);
            }
            Role::Learning(learning) => {
                let mut actions = Vec::new();
                learning.learner.epoch_persisted(&mut actions);
                self.learner_actions(actions);
            }
            _ => {}
        }
    }

    /// The epochs a new leader or learner starts from: the durable ones,
    /// raised by an orphaned epoch write still in flight — it will be
    /// durable (or the process stops), so a new role must already count on
    /// it: never tell a leader an acceptedEpoch below it, never accept an
    /// epoch below it (found by fk-sim, seed 100122 of `--servers 3`: a
    /// learner whose acceptedEpoch write of 4 was in flight reported 3 and
    /// accepted a new leader's 3, and acceptedEpoch went from 4 back to 3).
    pub(crate) fn epochs_for_a_new_role(&self) -> (i64, i64) {
        let (mut accepted, mut current) = (self.accepted_epoch, self.current_epoch);
        if let Some((kind, epoch)) = self.epoch_write.filter(|_| self.epoch_write_orphaned) {
            match kind {
                EpochKind::Accepted => accepted = accepted.max(epoch),
                EpochKind::Current => current = current.max(epoch),
            }
        }
        (accepted.max(current), current)
    }

    pub(crate) fn persist_epoch(&mut self, kind: EpochKind, epoch: i64) {
        if self.epoch_write.is_some() {
            assert!(
                self.epoch_write_orphaned && self.epoch_write_queued.is_none(),
                "one epoch write at a time"
            );
            self.epoch_write_queued = Some((kind, epoch));
            return;
        }
        self.epoch_write = Some((kind, epoch));
        self.out.push(Action::PersistEpoch { kind, epoch });
    }

    /// Time passed, for the election and the role.
    pub(crate) fn replication_tick(&mut self) {
        if self
            .election_deadline
            .is_some_and(|deadline| self.now.monotonic >= deadline)
        {
            self.election_step(ElectionInput::Tick);
        }
        let half_tick = self.settings.tick() / 2;
        let now = self.now.monotonic;
        let now_ms = self.now_ms();
        if let Role::Learning(learning) = &mut self.role {
            if learning.retry_at.is_some_and(|at| now >= at) {
                learning.retry_at = None;
                let sid = learning.leader_sid;
                self.out.push(Action::ConnectToLeader { sid });
            }
        }
        match &mut self.role {
            Role::Leading(leading) if now.saturating_sub(leading.last_tick) >= half_tick => {
                leading.last_tick = now;
                let mut actions = Vec::new();
                leading.leader.tick(now_ms, &mut actions);
                self.leader_actions(actions);
            }
            Role::Learning(learning) if now.saturating_sub(learning.last_tick) >= half_tick => {
                learning.last_tick = now;
                let mut actions = Vec::new();
                learning.learner.tick(now_ms, &mut actions);
                self.learner_actions(actions);
            }
            _ => {}
        }
    }
}
