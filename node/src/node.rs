//! The node: one server's state and the entry points a driver calls.
//!
//! ```text
//!   driver ── step(now, Input) ──▶ Node ── ready() ──▶ [Action] ── driver carries out
//!     ▲                                                              │
//!     └──────────── LogDurable, Closed, SnapshotDone, … ◀────────────┘
//! ```
//!
//! `step` changes state and gathers actions; `ready` hands them over, adding
//! what is best decided once per turn: one `Send` per connection with
//! everything it got, the next log append if the log is idle, the next
//! snapshot chunk. A driver may call `ready` after every step (the
//! simulator) or after a burst of steps (the engine, which batches).
//!
//! What each part owns:
//! - [`crate::connections`]: connections and their reply queues;
//! - [`crate::admission`]: when requests enter those queues (each
//!   connection's credit in unwritten reply bytes);
//! - [`crate::sessions`]: live sessions and their expiry;
//! - [`crate::pipeline`]: txns from prepared to applied, and who waits;
//! - [`crate::snapshots`]: when to snapshot and the chunks in flight;
//! - `client.rs` (the client protocol) and `commit.rs` (the write path) are
//!   the node's methods that coordinate them.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use proto::Id;
use replication::election::Election;
use replication::leader::LeaderAction;
use replication::learner::LearnerAction;
use tree::DataTree;

use crate::connections::{Connections, Pending};
use crate::history::History;
use crate::io::{
    Action, ConnId, EpochKind, Input, Level, LogRecord, Now, PurgeReport, StorageFailure,
};
use crate::pipeline::Pipeline;
use crate::roles::{Looking, Role};
use crate::session_id::initial_session_id;
use crate::sessions::Sessions;
use crate::settings::{Random, Settings};
use crate::snapshots::Snapshots;
use crate::stats::Stats;
use crate::Out;

/// Most empty containers and expired TTL nodes deleted per reaper pass.
const REAP_PER_PASS_MAX: usize = 1000;

/// One ferrokeeper server as a state machine.
#[derive(Debug)]
pub struct Node {
    pub(crate) settings: Settings,
    pub(crate) tree: DataTree,
    pub(crate) conns: Connections,
    pub(crate) sessions: Sessions,
    pub(crate) pipeline: Pipeline,
    pub(crate) snapshots: Snapshots,
    pub(crate) stats: Stats,
    pub(crate) next_session_id: i64,
    /// SASL exchanges begun: each one's nonce is derived from its number.
    pub(crate) sasl_exchanges: u64,
    /// Connections whose queue holds a `sync` waiting for the applied zxid.
    pub(crate) sync_waiters: BTreeSet<u64>,
    /// Connections with parked requests ([`crate::admission`]).
    pub(crate) parked_conns: BTreeSet<ConnId>,
    last_reap: Duration,
    last_purge: Duration,
    purge_in_progress: bool,
    /// The time of the step being processed.
    pub(crate) now: Now,
    pub(crate) out: Out,
    // ----- replication ----------------------------------------------------------------
    pub(crate) role: Role,
    pub(crate) election: Option<Election>,
    pub(crate) election_deadline: Option<Duration>,
    /// ZAB's acceptedEpoch and currentEpoch, as durable.
    pub(crate) accepted_epoch: i64,
    pub(crate) current_epoch: i64,
    /// The epoch write in flight.
    pub(crate) epoch_write: Option<(EpochKind, i64)>,
    /// The epoch write in flight was asked for by a role since left: its
    /// completion updates the epoch, and tells no role.
    pub(crate) epoch_write_orphaned: bool,
    /// An epoch write the current role asked for while an orphaned one was
    /// still in flight: it starts when that one is done.
    pub(crate) epoch_write_queued: Option<(EpochKind, i64)>,
    /// The log lost every record after this zxid to damage and the node
    /// has not yet synchronised from an established leader since
    /// (protocol-aware recovery, `roles.rs`).
    pub(crate) recovering: Option<i64>,
    /// Recent applied txns, for DIFF when this node leads.
    pub(crate) history: History,
    /// A TRUNC is being carried out: no append until it is done.
    pub(crate) truncating: bool,
    /// The zxid a TRUNC that reloads the state cuts to: the reload must land
    /// there. It lands below when the txns up to the cut were only in a
    /// snapshot above it (a SNAP of an epoch this learner never joined),
    /// which the cut removes.
    pub(crate) truncate_reload_to: Option<i64>,
    /// The state is being reloaded from disk.
    pub(crate) reloading: bool,
    /// The reload waits for the append in flight to finish.
    pub(crate) reload_after_append: bool,
    /// A snapshot from the leader is the tree but not yet sealed on disk.
    pub(crate) snapshot_unsealed: Option<i64>,
    /// The log's disk is full: new writes are refused until it has room.
    pub(crate) disk_full: bool,
    /// Watch reports being copied, a slice per turn, in request order.
    pub(crate) watch_reports: VecDeque<crate::fourlw::WatchReport>,
    pub(crate) leader_queue: VecDeque<LeaderAction>,
    pub(crate) leader_draining: bool,
    pub(crate) learner_queue: VecDeque<LearnerAction>,
    pub(crate) learner_draining: bool,
    /// Turns since the last [`Node::ready`]: whether any step ran, and
    /// whether one brought work (see [`Node::ready`] on snapshot pacing).
    pub(crate) stepped: bool,
    pub(crate) worked: bool,
}

/// What the driver recovered from disk: the tree (the newest valid snapshot
/// with the log replayed on it), the most recent logged records, and the
/// epoch files.
#[derive(Debug)]
pub struct Recovered {
    pub tree: DataTree,
    /// The last logged records, oldest first (the driver bounds how many).
    pub history: Vec<LogRecord>,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// wal's "recovering" marker: the log lost every record after this
    /// zxid to damage (protocol-aware recovery). In an ensemble the node
    /// counts in no quorum until it has synchronised from an established
    /// leader. A driver never starts a standalone node with it.
    pub recovering: Option<i64>,
}

impl Recovered {
    /// A fresh server's state.
    pub fn fresh() -> Recovered {
        Recovered {
            tree: DataTree::new(),
            history: Vec::new(),
            accepted_epoch: 0,
            current_epoch: 0,
            recovering: None,
        }
    }
}

/// Bounds on what one `Append` carries (the log's own bounds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendLimits {
    pub records_max: usize,
    /// An append stops taking records once it holds this many payload bytes;
    /// one more record may follow, so the log must take this plus its
    /// largest record.
    pub bytes_max: usize,
}

impl Default for AppendLimits {
    fn default() -> Self {
        AppendLimits {
            records_max: 1000,
            bytes_max: 4 << 20,
        }
    }
}

impl Node {
    /// A node over the recovered state, starting at `now`. Standalone, the
    /// whole tree is durable and committed; in an ensemble the node starts
    /// looking for a leader.
    pub fn new(settings: Settings, recovered: Recovered, limits: AppendLimits, now: Now) -> Node {
        let Recovered {
            mut tree,
            history: recent,
            accepted_epoch,
            current_epoch,
            recovering,
        } = recovered;
        assert!(
            recovering.is_none() || settings.ensemble.is_some(),
            "a standalone server has no peers to recover lost records from"
        );
        tree.set_extended_types_enabled(settings.extended_types_enabled);
        tree.set_providers(tree::acl::Providers {
            x509: settings.x509_enabled,
            sasl: settings.sasl_provider_enabled,
        });
        tree.set_txn_bytes_max(settings.txn_bytes_max);
        let zxid = tree.last_processed_zxid();
        let mut random = Random::new(settings.random_seed);
        let snapshots = Snapshots::new(
            settings.snap_count,
            settings.snap_size_limit_kb,
            Random::new(random.next_u64()),
        );
        let mut sessions = Sessions::new(settings.tick());
        // Sessions recovered with the tree get a full timeout to reconnect.
        for (id, timeout_ms) in tree.sessions() {
            sessions.insert(id, timeout_ms, None, now.monotonic);
        }
        let (history_txns_max, history_bytes_max) = settings
            .ensemble
            .as_ref()
            .map_or((0, 0), |e| (e.history_txns_max, e.history_bytes_max));
        let mut history = History::new(history_txns_max, history_bytes_max);
        for record in recent.into_iter().filter(|r| r.zxid <= zxid) {
            history.push(record.zxid, record.payload);
        }
        let role = match settings.ensemble {
            Some(_) => Role::Looking(Looking::default()),
            None => Role::Standalone,
        };
        let mut node = Node {
            next_session_id: initial_session_id(settings.server_id, now.wall_ms),
            sasl_exchanges: 0,
            pipeline: Pipeline::new(zxid, limits.records_max, limits.bytes_max),
            settings,
            tree,
            conns: Connections::default(),
            sessions,
            snapshots,
            stats: Stats::default(),
            sync_waiters: BTreeSet::new(),
            parked_conns: BTreeSet::new(),
            last_reap: now.monotonic,
            last_purge: now.monotonic,
            purge_in_progress: false,
            now,
            out: Out::default(),
            role,
            election: None,
            election_deadline: None,
            accepted_epoch,
            current_epoch,
            epoch_write: None,
            epoch_write_orphaned: false,
            epoch_write_queued: None,
            recovering,
            history,
            truncating: false,
            truncate_reload_to: None,
            reloading: false,
            reload_after_append: false,
            snapshot_unsealed: None,
            disk_full: false,
            watch_reports: VecDeque::new(),
            leader_queue: VecDeque::new(),
            leader_draining: false,
            learner_queue: VecDeque::new(),
            learner_draining: false,
            stepped: false,
            worked: false,
        };
        node.election = node.new_election();
        node.maybe_start_election();
        node
    }

    /// Processes one input at `now` (which never goes backwards).
    pub fn step(&mut self, now: Now, input: Input) {
        self.now = Now {
            monotonic: now.monotonic.max(self.now.monotonic),
            wall_ms: now.wall_ms,
        };
        self.stepped = true;
        // A snapshot's own acknowledgements are not work: they must not
        // buy the tree walk turns of its own (see `ready`).
        self.worked |= !matches!(input, Input::SnapshotChunkWritten);
        match input {
            Input::Connect {
                conn,
                peer,
                request,
                auth,
            } => self.on_connect(conn, peer, request, auth),
            Input::Requests { conn, requests } => self.on_requests(conn, requests),
            Input::Closed { conn } => self.on_closed(conn),
            Input::LogDurable {
                zxid,
                records,
                record_bytes,
                sync_time,
            } => self.on_durable(zxid, records, record_bytes, sync_time),
            Input::LogFailed(failure) => self.on_log_failed(failure),
            Input::LogSpace { available } => {
                if self.disk_full == available {
                    self.disk_full = !available;
                    let line = if available {
                        "the log has room again: writes resume"
                    } else {
                        "the log's disk is full: refusing writes until space is freed; reads go on"
                    };
                    self.out.log(
                        if available { Level::Info } else { Level::Error },
                        line.into(),
                    );
                }
            }
            Input::SnapshotChunkWritten => self.snapshots.chunk_written(),
            Input::SnapshotDone { result } => {
                let finished = self
                    .snapshots
                    .done(result, self.now.monotonic, &mut self.out);
                if let Some(finished) = finished.filter(|f| f.received) {
                    self.received_snapshot_done(finished.zxid, finished.ok);
                }
            }
            Input::PurgeDone { result } => self.on_purge_done(result),
            Input::Written { conn, bytes } => self.on_written(conn, bytes),
            Input::Tick => self.on_tick(),
            Input::FourLetterWord { request, word } => {
                let report = crate::fourlw::gather(self, &word);
                if crate::fourlw::reports_watches(&word) {
                    let job = crate::fourlw::WatchReport::new(request, report);
                    self.watch_reports.push_back(job);
                } else {
                    let report = Box::new(report);
                    self.out.push(Action::FourLetterWord { request, report });
                }
            }
            Input::ElectionReceived { from, notification } => {
                self.election_step(replication::ElectionInput::Received { from, notification })
            }
            Input::PeerConnected { link, outbound } => self.on_peer_connected(link, outbound),
            Input::PeerConnectFailed { sid } => {
                if matches!(&self.role, Role::Learning(l) if l.leader_sid == sid && l.link.is_none())
                {
                    self.learner_connection_lost(&format!("cannot connect to leader {sid}"));
                }
            }
            Input::PeerReceived { link, packet } => match &self.role {
                Role::Leading(_) => self.leader_received(link, packet),
                Role::Learning(_) => self.learner_received(link, packet),
                _ => self.out.push(Action::PeerClose { link }),
            },
            Input::PeerClosed { link } => self.on_peer_closed(link),
            Input::PeerWritten { link, bytes } => {
                if let Role::Leading(leading) = &mut self.role {
                    leading.leader.written(link, bytes);
                }
            }
            Input::EpochPersisted => self.on_epoch_persisted(),
            Input::LogTruncated { zxid } => {
                self.out
                    .log(Level::Info, format!("log truncated after 0x{zxid:x}"));
                self.truncating = false;
                if self.reloading {
                    self.out.push(Action::Reload);
                } else {
                    self.release_held();
                    // A learner that lost its leader during the cut looks
                    // for one now: its election waited for the log (found
                    // by fk-sim, seed 98 of `--servers 3`).
                    self.maybe_start_election();
                }
            }
            Input::Reloaded(recovered) => self.on_reloaded(*recovered),
        }
        if self.reload_after_append && !self.pipeline.append_in_flight() {
            self.reload_after_append = false;
            self.out.push(Action::Reload);
        }
        self.admit_parked();
    }

    fn on_peer_connected(&mut self, link: replication::leader::LinkId, outbound: bool) {
        match &mut self.role {
            Role::Leading(leading) if !outbound => leading
                .leader
                .connected(link, self.now.monotonic.as_millis() as u64),
            Role::Learning(_) if outbound => self.learner_connected(link),
            _ => self.out.push(Action::PeerClose { link }),
        }
    }

    fn on_peer_closed(&mut self, link: replication::leader::LinkId) {
        match &mut self.role {
            Role::Leading(leading) => {
                leading.streams.remove(&link);
                let mut actions = Vec::new();
                leading.leader.disconnected(link, &mut actions);
                self.leader_actions(actions);
            }
            Role::Learning(learning) if learning.link == Some(link) => {
                self.learner_connection_lost("the connection to the leader closed");
            }
            _ => {}
        }
    }

    fn on_reloaded(&mut self, recovered: Recovered) {
        self.reloading = false;
        self.snapshot_unsealed = None;
        let zxid = recovered.tree.last_processed_zxid();
        self.install_tree(recovered.tree);
        for record in recovered.history.into_iter().filter(|r| r.zxid <= zxid) {
            self.history.push(record.zxid, record.payload);
        }
        self.out.log(
            Level::Info,
            format!("state reloaded from disk at 0x{zxid:x}"),
        );
        let short = self.truncate_reload_to.take().filter(|to| zxid < *to);
        match &mut self.role {
            Role::Looking(looking) => {
                looking.reloading = false;
                self.maybe_start_election();
            }
            // The leader's sync assumed this learner would stand at the cut:
            // end it and join again from where the disk is (ZooKeeper's
            // learner exits when its truncation fails). Found by fk-sim, the
            // ZOOKEEPER-3127 schedule with slow disks, seed 2.
            Role::Learning(_) if short.is_some() => {
                let to = short.expect("matched");
                self.go_looking(&format!(
                    "the state reloaded after the leader's TRUNC to 0x{to:x} stands at 0x{zxid:x}, below the cut \
                     (the txns between were only in a snapshot above it): joining again from here"
                ));
            }
            Role::Learning(_) if !self.truncating => self.release_held(),
            _ => {}
        }
    }

    /// Hands over every action gathered since the last call, in order.
    /// Background work (a snapshot's tree walk, a watch report) advances by
    /// one slice per call: call it once after the steps of a turn, and again
    /// with no step when [`Node::has_ready_work`] asks to come back.
    pub fn ready(&mut self, actions: &mut Vec<Action>) {
        self.pump_learner_snapshots();
        if let Some(job) = self.watch_reports.front_mut() {
            if let Some(report) = job.advance(&self.tree.watches) {
                let request = job.request;
                self.watch_reports.pop_front();
                self.out.push(Action::FourLetterWord {
                    request,
                    report: Box::new(report),
                });
            }
        }
        self.conns.flush_all(&mut self.out.actions);
        // Nothing is logged above a snapshot from the leader before it is
        // sealed: a crash (or a failed write) would leave new records after
        // a gap in the log, replayed on an older state at the next start
        // (found by fk-sim, seed 13 of `--servers 5 --observers 1`).
        if !self.truncating && !self.reloading && self.snapshot_unsealed.is_none() {
            let snapshots = &mut self.snapshots;
            if let Some(append) = self.pipeline.take_append(|| snapshots.take_roll()) {
                self.out.push(append);
            }
        }
        // Snapshot pacing: the tree walk takes one chunk per turn that
        // brought work, or per turn with no step at all (the driver came
        // back because `has_ready_work` said so: an idle server). A turn
        // made only of chunk acknowledgements walks nothing, else the walk
        // runs as fast as the writer acknowledges and takes the ordering
        // core from requests (create p99 went from 5 to 22 ms under load).
        let walk = self.worked || !self.stepped;
        self.stepped = false;
        self.worked = false;
        self.snapshots.pump(&self.tree, walk, &mut self.out);
        actions.append(&mut self.out.actions);
    }

    /// Whether the node takes more client requests now. A driver that keeps
    /// feeding requests while this is false grows the pipeline past its
    /// bounds by at most what it feeds.
    pub fn accepts_requests(&self) -> bool {
        self.pipeline.has_room()
    }

    /// Whether `ready` would hand over more work without a new input (a
    /// snapshot chunk is due): the driver should come back soon.
    pub fn has_ready_work(&self) -> bool {
        self.snapshots.wants_pump()
            || !self.out.actions.is_empty()
            || self.learner_snapshot_pending()
            || !self.watch_reports.is_empty()
    }

    /// When the node next needs an `Input::Tick` sooner than the tick
    /// interval (the election's timers), as monotonic time.
    pub fn next_deadline(&self) -> Option<Duration> {
        let retry = match &self.role {
            Role::Learning(learning) => learning.retry_at,
            _ => None,
        };
        match (self.election_deadline, retry) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The replication role, as `srvr` names it: standalone, looking,
    /// leader, follower or observer.
    pub fn mode(&self) -> &'static str {
        self.role.mode()
    }

    /// Whether clients are served.
    pub fn serving(&self) -> bool {
        self.role.serving()
    }

    /// On a leader: (followers, observers, synced followers, pending syncs).
    pub fn leader_counts(&self) -> (usize, usize, usize, usize) {
        match &self.role {
            Role::Leading(leading) => {
                let (followers, observers) = leading.leader.learner_counts();
                let synced = leading.leader.synced_followers();
                (followers, observers, synced, leading.leader.pending_syncs())
            }
            _ => (0, 0, 0, 0),
        }
    }

    /// While the node recovers records its log lost to damage (and so
    /// counts in no quorum): the last zxid its log kept.
    pub fn recovering(&self) -> Option<i64> {
        self.recovering
    }

    /// ZAB's acceptedEpoch and currentEpoch.
    pub fn epochs(&self) -> (i64, i64) {
        (self.accepted_epoch, self.current_epoch)
    }

    /// How long the driver may wait before the next `Input::Tick`.
    pub fn tick_interval(&self) -> Duration {
        (self.settings.tick() / 2).clamp(Duration::from_millis(10), Duration::from_secs(1))
    }

    pub fn zxid_applied(&self) -> i64 {
        self.tree.last_processed_zxid()
    }

    pub fn zxid_committed(&self) -> i64 {
        self.pipeline.zxid_committed()
    }

    pub fn zxid_durable(&self) -> i64 {
        self.pipeline.zxid_durable()
    }

    pub fn zxid_prepared(&self) -> i64 {
        self.pipeline.zxid_prepared()
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// The most recent applied txns, oldest first, as (zxid, encoded
    /// record): what this node would DIFF to a learner if it led. The
    /// simulator holds every server of an ensemble to one txn per zxid.
    pub fn recent_txns(&self) -> impl DoubleEndedIterator<Item = (i64, &[u8])> {
        self.history
            .iter()
            .map(|(zxid, record)| (*zxid, &record[..]))
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub(crate) fn stats(&self) -> &Stats {
        &self.stats
    }

    pub(crate) fn connections(&self) -> &Connections {
        &self.conns
    }

    pub(crate) fn sessions(&self) -> &Sessions {
        &self.sessions
    }

    /// Whether new writes are refused for want of log space.
    pub fn disk_full(&self) -> bool {
        self.disk_full
    }

    /// Whether the log has failed (writes are refused for good).
    pub fn log_failed(&self) -> Option<StorageFailure> {
        self.pipeline.failed()
    }

    /// Requests queued on every connection, waiting for their replies.
    pub fn outstanding(&self) -> usize {
        self.conns.iter().map(|(_, c)| c.queued()).sum()
    }

    /// Live session ids, in order.
    pub fn session_ids(&self) -> Vec<i64> {
        self.sessions.iter().map(|(id, _)| id).collect()
    }

    // ----- time-driven work ---------------------------------------------------------

    fn on_tick(&mut self) {
        // A full disk cannot log closeSession txns: expiry waits for space
        // (sessions get the extra time, as during a leader change).
        if self.role.expires_sessions() && !self.disk_full {
            self.expire_sessions();
            self.reap();
        }
        self.autopurge();
        self.replication_tick();
    }

    /// Prepares a closeSession txn for every session past its deadline.
    fn expire_sessions(&mut self) {
        for session_id in self.sessions.take_expired(self.now.monotonic) {
            // Preparing the last closeSession can end this role: a leader
            // whose zxid counter ran out goes looking (ZOOKEEPER-1277) and
            // drops its sessions; the next leader expires the rest (found
            // by fk-sim, seed 1106 of `--servers 3 --zxid-counter-max 30`).
            if !self.role.expires_sessions() {
                break;
            }
            let session = self.sessions.get(session_id).expect("just expired");
            self.out.log(
                Level::Info,
                format!(
                    "expiring session 0x{session_id:x}: timeout of {} ms exceeded",
                    session.timeout_ms
                ),
            );
            if let Some(conn) = session.conn {
                self.close_conn(conn);
            }
            if let Err(err) = self.prepare(session_id, 0, &[], &tree::WriteOp::CloseSession) {
                self.out.log(
                    Level::Warn,
                    format!("could not expire session 0x{session_id:x}: {err:?}; trying again in a tick"),
                );
                self.sessions.reopen(session_id, self.now.monotonic);
            }
        }
    }

    /// Deletes empty containers and expired TTL nodes (ZooKeeper's ContainerManager).
    fn reap(&mut self) {
        let interval = Duration::from_millis(self.settings.container_check_interval_ms);
        if self.now.monotonic.saturating_sub(self.last_reap) < interval {
            return;
        }
        self.last_reap = self.now.monotonic;
        let superuser = [Id::new("super", "")];
        for path in self
            .tree
            .reap_candidates(self.now.wall_ms, REAP_PER_PASS_MAX)
        {
            let op = tree::WriteOp::DeleteContainer { path };
            if self.prepare(0, 0, &superuser, &op).is_ok() {
                let tree::WriteOp::DeleteContainer { path } = op else {
                    unreachable!("built above")
                };
                self.out.log(
                    Level::Info,
                    format!("reaping empty container or expired TTL node {path}"),
                );
            }
        }
    }

    /// Every autopurge.purgeInterval hours (0 = never), asks the driver to
    /// keep the newest autopurge.snapRetainCount snapshots and the log they need.
    fn autopurge(&mut self) {
        let hours = u64::from(self.settings.autopurge_interval_hours);
        if hours == 0 || self.purge_in_progress {
            return;
        }
        let interval = Duration::from_secs(hours * 3600);
        if self.now.monotonic.saturating_sub(self.last_purge) < interval {
            return;
        }
        self.last_purge = self.now.monotonic;
        self.purge_in_progress = true;
        self.out.push(Action::Purge {
            retain: self.settings.autopurge_retain_count as usize,
        });
    }

    fn on_purge_done(&mut self, result: Result<PurgeReport, StorageFailure>) {
        self.purge_in_progress = false;
        match result {
            Ok(report) => self.out.log(
                Level::Info,
                format!(
                    "autopurge done: snapshots_removed={} segments_removed={} segments_recycled={}",
                    report.snapshots_removed, report.segments_removed, report.segments_recycled
                ),
            ),
            Err(failure) => self
                .out
                .log(Level::Warn, format!("autopurge failed: {failure}")),
        }
    }

    // ----- invariants ---------------------------------------------------------------

    /// Checks every relation the node keeps between its parts (tests and the
    /// simulator call it after each step).
    pub fn check_invariants(&self) {
        let applied = self.zxid_applied();
        self.pipeline.check_invariants(applied);
        self.sessions.check_invariants();
        self.conns.check_invariants();
        self.snapshots.check_invariants();
        self.tree.check_invariants();
        self.history.check_invariants(applied);
        self.check_replies_accounted_for();
        self.check_admission_invariants();
        if self.role.expires_sessions() {
            self.check_sessions_match_the_tree();
        }
        match &self.role {
            Role::Leading(leading) => leading.leader.check_invariants(),
            Role::Learning(learning) => learning.learner.check_invariants(),
            Role::Looking(_) | Role::Standalone => {}
        }
        assert!(self.current_epoch <= self.accepted_epoch.max(self.current_epoch));
    }

    /// Every reply slot waiting for a txn is indexed under its (session,
    /// cxid), every index entry has a slot, and a txn with that pair is in flight.
    fn check_replies_accounted_for(&self) {
        let mut slots = std::collections::BTreeMap::<(i64, i32), (u64, u32)>::new();
        // A reconnect on a learner waits for the leader's REVALIDATE
        // answer, not for a txn (found by fk-sim: a session moving to a
        // follower tripped this check).
        let revalidating: BTreeSet<ConnId> = match &self.role {
            Role::Learning(learning) => learning.revalidating.values().flatten().copied().collect(),
            _ => BTreeSet::new(),
        };
        for (conn, c) in self.conns.iter() {
            for pending in &c.queue {
                let key = match pending {
                    Pending::Write { xid, .. } => (c.session_id, *xid),
                    Pending::Connecting if revalidating.contains(&conn) => continue,
                    Pending::Connecting => (c.session_id, 0),
                    _ => continue,
                };
                let entry = slots.entry(key).or_insert((conn, 0));
                assert_eq!(entry.0, conn, "one connection waits per (session, cxid)");
                entry.1 += 1;
            }
            if c.queue.iter().any(|p| matches!(p, Pending::Sync { .. })) {
                assert!(
                    self.sync_waiters.contains(&conn),
                    "a waiting sync is tracked"
                );
            }
        }
        let indexed: std::collections::BTreeMap<_, _> = self
            .pipeline
            .waiting()
            .map(|(key, conn, n)| (key, (conn, n)))
            .collect();
        assert_eq!(slots, indexed, "reply slots and the waiting index agree");
        // A learner's replies wait for txns the leader has not sent yet.
        if matches!(self.role, Role::Learning(_)) {
            return;
        }
        let in_flight: BTreeSet<(i64, i32)> = self
            .pipeline
            .in_flight()
            .map(|h| (h.session_id, h.cxid))
            .collect();
        for key in indexed.keys() {
            assert!(
                in_flight.contains(key),
                "a reply waits for a txn in flight: {key:?}"
            );
        }
    }

    /// Sessions in the tree are live here; live sessions not in the tree have
    /// their createSession in flight; ephemerals belong to sessions in the tree.
    fn check_sessions_match_the_tree(&self) {
        let creating: BTreeSet<i64> = self.pipeline.in_flight().map(|h| h.session_id).collect();
        for (id, _) in self.tree.sessions() {
            assert!(
                self.sessions.get(id).is_some(),
                "session 0x{id:x} is in the tree but not live"
            );
        }
        for (id, _) in self.sessions.iter() {
            assert!(
                self.tree.has_session(id) || creating.contains(&id),
                "live session 0x{id:x} is neither in the tree nor being created"
            );
        }
        for (path, node) in self.tree.nodes() {
            if let tree::node::OwnerKind::Session(owner) =
                tree::node::owner_kind(node.ephemeral_owner)
            {
                assert!(
                    self.tree.has_session(owner),
                    "ephemeral {path} outlives its session 0x{owner:x}"
                );
            }
        }
    }
}
