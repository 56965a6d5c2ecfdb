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

use std::collections::BTreeSet;
use std::time::Duration;

use proto::Id;
use tree::DataTree;

use crate::connections::{Connections, Pending};
use crate::io::{Action, ConnId, Input, Level, Now, PurgeReport, StorageFailure};
use crate::pipeline::Pipeline;
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
    /// A node over a recovered tree (everything in it is durable and
    /// committed), starting at `now`.
    pub fn new(settings: Settings, tree: DataTree, limits: AppendLimits, now: Now) -> Node {
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
        Node {
            next_session_id: initial_session_id(settings.server_id, now.wall_ms),
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
        }
    }

    /// Processes one input at `now` (which never goes backwards).
    pub fn step(&mut self, now: Now, input: Input) {
        self.now = Now {
            monotonic: now.monotonic.max(self.now.monotonic),
            wall_ms: now.wall_ms,
        };
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
            Input::SnapshotChunkWritten => self.snapshots.chunk_written(),
            Input::SnapshotDone { result } => {
                self.snapshots
                    .done(result, self.now.monotonic, &mut self.out)
            }
            Input::PurgeDone { result } => self.on_purge_done(result),
            Input::Written { conn, bytes } => self.on_written(conn, bytes),
            Input::Tick => self.on_tick(),
            Input::FourLetterWord { request, word } => {
                let report = Box::new(crate::fourlw::gather(self, &word));
                self.out.push(Action::FourLetterWord { request, report });
            }
        }
        self.admit_parked();
    }

    /// Hands over every action gathered since the last call, in order.
    pub fn ready(&mut self, actions: &mut Vec<Action>) {
        self.conns.flush_all(&mut self.out.actions);
        let snapshots = &mut self.snapshots;
        if let Some(append) = self.pipeline.take_append(|| snapshots.take_roll()) {
            self.out.push(append);
        }
        self.snapshots.pump(&self.tree, &mut self.out);
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
        self.snapshots.wants_pump() || !self.out.actions.is_empty()
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
        self.expire_sessions();
        self.reap();
        self.autopurge();
    }

    /// Prepares a closeSession txn for every session past its deadline.
    fn expire_sessions(&mut self) {
        for session_id in self.sessions.take_expired(self.now.monotonic) {
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
                    format!("could not expire session 0x{session_id:x}: {err:?}"),
                );
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
        self.check_replies_accounted_for();
        self.check_admission_invariants();
        self.check_sessions_match_the_tree();
    }

    /// Every reply slot waiting for a txn is indexed under its (session,
    /// cxid), every index entry has a slot, and a txn with that pair is in flight.
    fn check_replies_accounted_for(&self) {
        let mut slots = std::collections::BTreeMap::<(i64, i32), (u64, u32)>::new();
        for (conn, c) in self.conns.iter() {
            for pending in &c.queue {
                let key = match pending {
                    Pending::Write { xid, .. } => (c.session_id, *xid),
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
