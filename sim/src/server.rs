//! A simulated server: the real [`Node`] and the driver that carries out its
//! actions on the simulated disk and network, as `engine/src/driver.rs`
//! does with glommio — and asserts the orders each action's doc demands.
//!
//! ```text
//!  network ─▶ decode frames (as engine/src/connection.rs) ─▶ node.step(now, Input)
//!  disk events, snapshot events, ticks ───────────────────▶ node.step(now, Input)
//!                                          node.ready() ─▶ Send ▸ link, Append ▸ LogDisk,
//!                                                          Snapshot* ▸ store, Close ▸ Fin
//! ```
//!
//! After every step: `node.check_invariants()`. On every `Send`: no frame
//! carries a zxid the log has not made durable (a standalone server commits
//! what is durable; a reply must never reveal more).
//!
//! A crash drops the process — node, writer, the batch and snapshot in
//! flight, every connection — and keeps the disk (dataDir and dataLogDir,
//! two directories of one in-memory disk, or one directory as in the
//! engine's default) as a power cut or a kill leaves it. A restart recovers from that image through wal, exactly as
//! the engine starts, and then checks that nothing a client was told is
//! missing: the recovered zxid reaches every zxid a client saw, and every
//! acknowledged txn in the replayed log is the one the client was told about.
//!
//! A server of an ensemble also carries out its node's peer actions
//! (`peers`): election notifications and quorum packets on server-to-server
//! links, epoch files, TRUNC through the log writer, reloads from disk. Its
//! restart is not held to what clients were told — a follower may have been
//! behind — the world checks the ensemble as a whole instead.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use node::{Action, AppendLimits, ConnId, Input, Level, Node, Now, Peer, RequestFrame, Settings};
use proto::{ConnectRequest, Reader, Record, ReplyHeader};
use wal::{MemFs, WalError, WriterConfig};

use crate::context::{Context, Event};
use crate::disk::{self, Batch, DiskOp, LogDisk, LogDone, LogProgress};
use crate::network::{Endpoint, LinkId, Payload};
use crate::options::{Bug, Mix, Options};
use crate::recovery;
use crate::script::When;
use crate::snapshots::Snapshots;
use crate::violation::Violation;
use crate::wire::{decode_requests, first_frame, frame_slices};

mod peers;
mod scripted;

pub use peers::Member;

/// The wall clock every run starts at (any fixed value).
pub const WALL_START_MS: i64 = 1_700_000_000_000;

/// The directories of a server's disk (`dataLogDir`, and `dataDir` when it
/// is another directory).
const LOG_DIR: &str = "datalog";
const DATA_DIR: &str = "data";

/// The zoo.cfg values every simulated server runs with (times are short so
/// that sessions expire and snapshots happen within a run).
pub const TICK_MS: u32 = 200;
pub const SESSION_TIMEOUT_MIN_MS: u32 = 400;
pub const SESSION_TIMEOUT_MAX_MS: u32 = 4000;

#[derive(Debug)]
struct ConnState {
    link: LinkId,
    /// The handshake reply has gone out: later frames have reply headers.
    handshake_sent: bool,
    /// Frames held back by the reintroduced `Bug::ReorderSends`, and how
    /// many bytes of the node's they are.
    held_back: Option<(Vec<u8>, u64)>,
}

#[derive(Debug)]
enum SnapshotWork {
    Chunk(Vec<u8>),
    End,
}

#[derive(Debug)]
struct Running {
    node: Node,
    disk: LogDisk,
    /// A `DiskOp` event is on the agenda.
    disk_event_pending: bool,
    conns: BTreeMap<ConnId, ConnState>,
    by_link: BTreeMap<LinkId, ConnId>,
    /// Links whose connection the node closed: what still arrives on them
    /// is not read (and is not a new connection's handshake).
    closed_links: BTreeSet<LinkId>,
    /// Requests held back while the node takes none (backpressure).
    held: VecDeque<(ConnId, Vec<RequestFrame>)>,
    /// Snapshot work queued for the writer, and whether an event is pending.
    snapshot: VecDeque<SnapshotWork>,
    snapshot_event_pending: bool,
    /// A snapshot was begun and has not ended or failed (chunks for a
    /// snapshot that failed to begin are dropped, as the engine drops them).
    snapshot_active: bool,
    chunks_this_snapshot: u64,
    log_failed: bool,
    /// The server-to-server side (an ensemble only).
    peers: peers::Peers,
    /// The newest sealed snapshot's zxid: durable as the log is.
    snapshot_sealed: i64,
    /// When the next tick is due, and its generation (see `Event::Tick`).
    tick_due: Duration,
    tick_generation: u64,
    /// The highest zxid reported durable early (the reintroduced bug only).
    reported_early: i64,
    /// When the batch in flight started (its sync time for the node's stats).
    batch_started: Duration,
}

/// Counts for the run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct ServerStats {
    pub power_cuts: u64,
    pub kills: u64,
    pub restarts: u64,
    pub log_failures: u64,
    pub snapshots: u64,
    pub replayed_txns: u64,
    pub warnings: u64,
    pub disk_operations: u64,
    /// Starts that failed on a disk error (and were retried).
    pub failed_starts: u64,
    /// Snapshot chunks written, and the most in one snapshot.
    pub snapshot_chunks: u64,
    pub snapshot_chunks_max: u64,
    /// Ensembles: epoch files written, log truncations (TRUNC), reloads.
    pub epoch_writes: u64,
    pub truncations: u64,
    pub reloads: u64,
    /// SNAP streams a learner saw cut before their end (the link reset or
    /// closed, or the learner's process died, mid-stream).
    pub snapshots_interrupted: u64,
    /// The most chunks of one SNAP a learner received whole.
    pub snapshot_stream_chunks_max: u64,
    /// Leaders that stepped down because their zxid counter reached
    /// `zxid_counter_max` (ZOOKEEPER-1277's rollover to a new epoch).
    pub zxid_rollovers: u64,
}

/// Where an armed crash lands: between two persistence steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CrashPoint {
    /// At the log's next file operation (of this kind, if given).
    Log(Option<DiskOp>),
    /// Just before an epoch file is written, or just after it is (before
    /// the node hears).
    Epoch { written: bool },
    /// Just before a snapshot is sealed, or just after it is.
    SnapshotSeal { sealed: bool },
}

#[derive(Debug)]
pub struct Server {
    /// The server's endpoint on the network (unique in the run; its sid
    /// in its ensemble is `member`'s).
    pub sid: u8,
    pub database: usize,
    /// Its place in an ensemble (`None`: standalone).
    pub member: Option<Member>,
    boot: u64,
    running: Option<Running>,
    /// The log directory as it survives crashes (a directory of the
    /// server's one disk).
    log_fs: MemFs,
    /// The data directory's name on that disk (the log's, when shared).
    data_dir: &'static str,
    /// The snapshot writer, over the data directory.
    snapshots: Snapshots,
    next_conn: ConnId,
    booted_at: Duration,
    wall_offset_ms: i64,
    monotonic_leap: Duration,
    pub slow_disk: bool,
    /// Crash at this point: `(power_cut, where)`.
    pub crash_armed: Option<(bool, CrashPoint)>,
    /// What the disk holds durably, whether the process is up or not: the
    /// last zxid the log synced, and the newest sealed snapshot's.
    disk_log_zxid: i64,
    disk_snapshot_zxid: i64,
    check_recovery: bool,
    bug: Option<Bug>,
    mix: Mix,
    assert_reply_after_durable: bool,
    /// `Options::zxid_counter_max`.
    zxid_counter_max: Option<u32>,
    /// Actions are being carried out (see `step`).
    carrying_out: bool,
    pub stats: ServerStats,
}

impl Server {
    /// A server with an empty disk, started at once.
    pub fn new(
        sid: u8,
        database: usize,
        member: Option<Member>,
        options: &Options,
        cx: &mut Context,
    ) -> Server {
        let log_fs = MemFs::new().dir(LOG_DIR);
        // ZooKeeper's default puts both in dataDir; production puts the log
        // on a disk of its own. Either way wal must find its files.
        let data_dir = if cx.rng.chance(1, 2) {
            LOG_DIR
        } else {
            DATA_DIR
        };
        let mut server = Server {
            sid,
            database,
            member,
            boot: 0,
            running: None,
            snapshots: Snapshots::new(log_fs.dir(data_dir)),
            log_fs,
            data_dir,
            next_conn: 1,
            booted_at: Duration::ZERO,
            wall_offset_ms: cx.rng.between(0, 10_000) as i64 - 5_000,
            monotonic_leap: Duration::ZERO,
            slow_disk: false,
            crash_armed: None,
            disk_log_zxid: 0,
            disk_snapshot_zxid: 0,
            check_recovery: options.check_recovery,
            bug: options.bug,
            mix: options.mix,
            assert_reply_after_durable: options.assert_reply_after_durable,
            zxid_counter_max: options.zxid_counter_max,
            carrying_out: false,
            stats: ServerStats::default(),
        };
        server.start(cx);
        server
    }

    pub fn boot(&self) -> u64 {
        self.boot
    }

    /// When the current process started.
    pub fn booted_at(&self) -> Duration {
        self.booted_at
    }

    /// The file operation the log waits to complete, if any.
    pub fn disk_waiting(&self) -> Option<DiskOp> {
        self.running.as_ref().and_then(|r| r.disk.waiting())
    }

    pub fn is_up(&self) -> bool {
        self.running.is_some()
    }

    pub fn node(&self) -> Option<&Node> {
        self.running.as_ref().map(|r| &r.node)
    }

    /// The highest zxid this server's disk holds durably (a synced log
    /// record or a sealed snapshot), up or down: what a power cut keeps.
    pub fn zxid_on_disk(&self) -> i64 {
        self.disk_log_zxid.max(self.disk_snapshot_zxid)
    }

    /// Whether it votes (a standalone server or an ensemble's participant).
    pub fn is_voter(&self) -> bool {
        self.member.as_ref().is_none_or(|m| !m.observer)
    }

    /// Whether the log or a snapshot still has work in flight.
    pub fn is_busy(&self) -> bool {
        self.running
            .as_ref()
            .is_some_and(|r| r.disk.is_busy() || !r.snapshot.is_empty())
    }

    /// The node's clock: monotonic since this boot (plus any leap), wall
    /// with this server's skew.
    fn now(&self, cx: &Context) -> Now {
        Now {
            monotonic: cx.now.saturating_sub(self.booted_at) + self.monotonic_leap,
            wall_ms: WALL_START_MS + cx.now.as_millis() as i64 + self.wall_offset_ms,
        }
    }

    /// The node's settings, as the engine's `Config::node_settings` makes
    /// them for a standalone server (ZooKeeper's defaults for whatever
    /// zoo.cfg leaves out), with the sim's short times. `txn_bytes_max` is
    /// what the log takes, as the engine's `Config::txn_bytes_max`.
    fn settings(&self, cx: &mut Context, config: &WriterConfig) -> Settings {
        let defaults = Settings::default();
        Settings {
            zxid_counter_max: self.zxid_counter_max.unwrap_or(defaults.zxid_counter_max),
            server_id: self.member.as_ref().map_or(0, |m| m.my_sid as u8),
            tick_time_ms: TICK_MS,
            min_session_timeout_ms: SESSION_TIMEOUT_MIN_MS,
            max_session_timeout_ms: SESSION_TIMEOUT_MAX_MS,
            snap_count: cx.rng.between(10, 400),
            snap_size_limit_kb: cx.rng.between(16, 512),
            container_check_interval_ms: 1000,
            autopurge_interval_hours: 0,
            autopurge_retain_count: 3,
            super_digest: None,
            fsync_warning_threshold_ms: 1000,
            random_seed: cx.rng.next_u64(),
            extended_types_enabled: false,
            x509_enabled: false,
            txn_bytes_max: config.record_payload_bytes_max() - tree::TxnHeader::ENCODED_LEN,
            ensemble: self.member.as_ref().map(|m| m.settings.clone()),
            unsent_bytes_max: node::settings::UNSENT_BYTES_MAX_DEFAULT,
            ..defaults
        }
    }

    fn writer_config(&self, cx: &mut Context) -> WriterConfig {
        WriterConfig {
            segment_bytes: match self.mix {
                Mix::Standard | Mix::BigTree => {
                    *cx.rng.pick(&[16u64 << 10, 32 << 10, 64 << 10, 256 << 10])
                }
                Mix::ManyEphemerals => wal::SEGMENT_BYTES_MIN,
            },
            force_sync: self.bug != Some(Bug::NoForceSync),
            batch_records_max: *cx.rng.pick(&[1usize, 3, 16, wal::BATCH_RECORDS_MAX]),
            batch_bytes_max: wal::BATCH_BYTES_MAX,
            salt_seed: cx.rng.next_u64(),
        }
    }

    /// Recovers from the disk and starts a node on it.
    fn start(&mut self, cx: &mut Context) {
        assert!(self.running.is_none(), "start a stopped server");
        let replay = self.bug != Some(Bug::SkipLogReplay);
        let recovered =
            match recovery::recover_replaying(self.snapshots.dir(), &self.log_fs, replay) {
                Ok(recovered) => recovered,
                Err(err) => {
                    return cx.violation(Violation::RecoveryFailed {
                        server: self.sid,
                        error: err.to_string(),
                    })
                }
            };
        // In an ensemble a restarted follower may rightly be behind what
        // clients saw (the world checks the ensemble as a whole).
        if self.check_recovery && self.member.is_none() {
            self.check_nothing_acknowledged_is_lost(cx, &recovered);
        }
        self.stats.replayed_txns += recovered.replayed.len() as u64;
        let config = self.writer_config(cx);
        // The engine's `log_stage::append_limits`, for this writer's bounds.
        let limits = AppendLimits {
            records_max: config.batch_records_max,
            bytes_max: config.batch_bytes_max / 2,
        };
        let settings = self.settings(cx, &config);
        let disk = match LogDisk::open(self.log_fs.clone(), config, recovered.tail.clone()) {
            Ok(disk) => disk,
            Err(err @ (WalError::Io { .. } | WalError::NoSpace { .. })) => {
                // The disk failed while the writer readied the log (zeroing a
                // cut tail and syncing it): the process exits and its
                // operator starts it again a while later.
                self.stats.failed_starts += 1;
                let sid = self.sid;
                cx.trace
                    .line(cx.now, || format!("s{sid} fails to start: {err}"));
                let delay = Duration::from_millis(cx.rng.between(100, 1_000));
                cx.after(delay, Event::Restart { server: sid });
                return;
            }
            Err(err) => {
                return cx.violation(Violation::RecoveryFailed {
                    server: self.sid,
                    error: format!("opening the log writer: {err}"),
                })
            }
        };
        self.booted_at = cx.now;
        self.monotonic_leap = Duration::ZERO;
        let now = self.now(cx);
        let (snapshot_zxid, replayed) = (recovered.snapshot_zxid, recovered.replayed.len());
        self.disk_log_zxid = recovered.tail.zxid_last;
        self.disk_snapshot_zxid = snapshot_zxid.unwrap_or(0);
        let node = Node::new(settings, recovered.into_node_state(), limits, now);
        node.check_invariants();
        let (sid, zxid) = (self.sid, node.zxid_applied());
        cx.trace.line(cx.now, || {
            format!("s{sid} boots at zxid 0x{zxid:x} (snapshot {snapshot_zxid:?}, {replayed} txns replayed)")
        });
        self.running = Some(Running {
            node,
            disk,
            disk_event_pending: false,
            conns: BTreeMap::new(),
            by_link: BTreeMap::new(),
            closed_links: BTreeSet::new(),
            held: VecDeque::new(),
            snapshot: VecDeque::new(),
            snapshot_event_pending: false,
            snapshot_active: false,
            chunks_this_snapshot: 0,
            log_failed: false,
            peers: peers::Peers::default(),
            snapshot_sealed: snapshot_zxid.unwrap_or(0),
            tick_due: cx.now,
            tick_generation: 0,
            reported_early: 0,
            batch_started: Duration::ZERO,
        });
        self.schedule_tick(cx);
    }

    /// After recovery: every zxid a client saw is there, and every txn a
    /// client was told about that the log replayed is that client's txn.
    fn check_nothing_acknowledged_is_lost(
        &self,
        cx: &mut Context,
        recovered: &recovery::Recovered,
    ) {
        let told = &cx.told[self.database];
        let zxid = recovered.tree.last_processed_zxid();
        if zxid < told.zxid_seen {
            let seen = told.zxid_seen;
            return cx.violation(Violation::AcknowledgedStateLost {
                server: self.sid,
                recovered: zxid,
                seen,
            });
        }
        let replayed: BTreeMap<i64, (i64, i32)> = recovered
            .replayed
            .iter()
            .map(|t| (t.zxid, (t.session, t.cxid)))
            .collect();
        let applied = recovered.replayed.iter().find_map(|t| {
            let answer = told.refused.get(&(t.session, t.cxid))?;
            (t.kind != recovery::TxnKind::Refused).then_some((t, *answer))
        });
        if let Some((t, answer)) = applied {
            return cx.violation(Violation::RefusedWriteApplied {
                server: self.sid,
                zxid: t.zxid,
                session: t.session,
                cxid: t.cxid,
                answer,
            });
        }
        let from = recovered.snapshot_zxid.unwrap_or(0);
        let lost = told
            .acknowledged
            .range(from + 1..)
            .find_map(|(zxid, (session, cxid))| match replayed.get(zxid) {
                Some(found) if found == &(*session, *cxid) => None,
                other => Some(Violation::AcknowledgedWriteLost {
                    server: self.sid,
                    zxid: *zxid,
                    session: *session,
                    cxid: *cxid,
                    found: match other {
                        Some((s, c)) => format!("zxid holds session 0x{s:x} cxid {c}"),
                        None => "no txn with that zxid".into(),
                    },
                }),
            });
        if let Some(violation) = lost {
            cx.violation(violation);
        }
    }

    /// Schedules the next tick a tick interval on, as the engine's timer.
    fn schedule_tick(&mut self, cx: &mut Context) {
        let Some(running) = &mut self.running else {
            return;
        };
        let interval = running.node.tick_interval();
        if running.tick_due > cx.now && running.tick_due < cx.now + interval {
            // This step brought the next tick forward (an election
            // deadline): that one stands.
            return;
        }
        running.tick_due = cx.now + interval;
        running.tick_generation += 1;
        cx.after(
            interval,
            Event::Tick {
                server: self.sid,
                boot: self.boot,
                generation: running.tick_generation,
            },
        );
    }

    /// Brings the next tick forward to the node's election deadline, if
    /// that comes first (the engine wakes for it the same way).
    fn tick_for_deadline(&mut self, cx: &mut Context) {
        let now = self.now(cx);
        let Some(running) = &mut self.running else {
            return;
        };
        let Some(deadline) = running.node.next_deadline() else {
            return;
        };
        let wait = deadline.saturating_sub(now.monotonic);
        if cx.now + wait >= running.tick_due {
            return;
        }
        running.tick_due = cx.now + wait;
        running.tick_generation += 1;
        cx.after(
            wait,
            Event::Tick {
                server: self.sid,
                boot: self.boot,
                generation: running.tick_generation,
            },
        );
    }

    /// A tick event; stale generations are dropped.
    pub fn on_tick(&mut self, cx: &mut Context, generation: u64) {
        if self
            .running
            .as_ref()
            .is_none_or(|r| r.tick_generation != generation)
        {
            return;
        }
        self.step(cx, Input::Tick);
        self.schedule_tick(cx);
        self.peers_tick(cx);
    }

    // ----- network ------------------------------------------------------------------

    /// A message from a client.
    pub fn on_delivery(
        &mut self,
        cx: &mut Context,
        link: LinkId,
        from: Endpoint,
        payload: Payload,
    ) {
        let Some(running) = &mut self.running else {
            // Nobody listens: the connection is refused.
            cx.reset(link);
            return;
        };
        if let Endpoint::Server(peer) = from {
            return self.on_peer_delivery(cx, link, peer, payload);
        }
        let known = running.by_link.get(&link).copied();
        match (payload, known) {
            (Payload::Fin, Some(conn)) => {
                running.by_link.remove(&link);
                running.conns.remove(&conn);
                self.step(cx, Input::Closed { conn });
            }
            (Payload::Fin, None) => {
                running.closed_links.remove(&link);
            }
            (Payload::Open(_), _) => cx.reset(link),
            (Payload::Bytes(_), None) if running.closed_links.contains(&link) => {}
            (Payload::Bytes(bytes), None) => self.accept(cx, link, from, &bytes),
            (Payload::Bytes(bytes), Some(conn)) => {
                let requests = match decode_requests(&bytes) {
                    Ok(requests) => requests,
                    Err(_) => return self.drop_link(cx, link),
                };
                let running = self.running.as_mut().expect("checked above");
                if !running.held.is_empty() || !running.node.accepts_requests() {
                    running.held.push_back((conn, requests));
                    return;
                }
                self.step(cx, Input::Requests { conn, requests });
            }
        }
    }

    /// The first message on a link: the handshake.
    fn accept(&mut self, cx: &mut Context, link: LinkId, from: Endpoint, bytes: &[u8]) {
        let request = match first_frame(bytes).and_then(|f| ConnectRequest::from_bytes(f).ok()) {
            Some(request) => request,
            None => return cx.reset(link),
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        let running = self.running.as_mut().expect("accepting while up");
        running.conns.insert(
            conn,
            ConnState {
                link,
                handshake_sent: false,
                held_back: None,
            },
        );
        running.by_link.insert(link, conn);
        let Endpoint::Client(client) = from else {
            unreachable!("only clients open client connections")
        };
        let peer = Peer {
            ip: format!("10.0.0.{}", client % 250 + 1),
            port: 30_000 + (link % 30_000) as u16,
        };
        self.step(
            cx,
            Input::Connect {
                conn,
                peer,
                request,
                auth: Vec::new(),
            },
        );
    }

    /// Resets a link and tells the node its connection is gone.
    fn drop_link(&mut self, cx: &mut Context, link: LinkId) {
        cx.reset(link);
        if let Some(running) = &mut self.running {
            if let Some(conn) = running.by_link.remove(&link) {
                running.conns.remove(&conn);
                self.step(cx, Input::Closed { conn });
            }
        }
    }

    /// A reset of `link` reached this server.
    pub fn on_reset(&mut self, cx: &mut Context, link: LinkId) {
        let Some(running) = &mut self.running else {
            return;
        };
        if running.peers.knows(link) {
            return self.on_peer_reset(cx, link);
        }
        if let Some(conn) = running.by_link.remove(&link) {
            running.conns.remove(&conn);
            self.step(cx, Input::Closed { conn });
        }
    }

    /// The driver's deferred report that a connection it closed is gone.
    pub fn on_conn_closed(&mut self, cx: &mut Context, conn: ConnId) {
        self.step(cx, Input::Closed { conn });
    }

    // ----- stepping the node --------------------------------------------------------

    /// Feeds one input, then carries out every action. An input that comes
    /// up while actions are being carried out (a failure the driver hits)
    /// is fed at once but its actions wait for the next `ready`, so the
    /// actions of one turn are carried out in the order they were given.
    pub fn step(&mut self, cx: &mut Context, input: Input) {
        let now = self.now(cx);
        let Some(running) = &mut self.running else {
            return;
        };
        running.node.step(now, input);
        if !self.carrying_out {
            self.carry_out(cx);
        }
    }

    fn carry_out(&mut self, cx: &mut Context) {
        self.carrying_out = true;
        loop {
            let mut actions = Vec::new();
            let Some(running) = &mut self.running else {
                break;
            };
            running.node.ready(&mut actions);
            running.node.check_invariants();
            if actions.is_empty() && !self.release_held(cx) {
                break;
            }
            for action in actions {
                if self.running.is_none() || cx.found.is_some() {
                    break;
                }
                self.carry_out_one(cx, action);
            }
        }
        self.carrying_out = false;
        self.tick_for_deadline(cx);
    }

    /// Feeds requests held back by backpressure; true if it fed any.
    fn release_held(&mut self, cx: &mut Context) -> bool {
        let now = self.now(cx);
        let Some(running) = &mut self.running else {
            return false;
        };
        let mut fed = false;
        while running.node.accepts_requests() {
            let Some((conn, requests)) = running.held.pop_front() else {
                break;
            };
            running.node.step(now, Input::Requests { conn, requests });
            fed = true;
        }
        fed
    }

    fn carry_out_one(&mut self, cx: &mut Context, action: Action) {
        let sid = self.sid;
        match action {
            Action::Send { conn, bytes, .. } => self.send(cx, conn, bytes),
            Action::Close { conn } => {
                let running = self.running.as_mut().expect("acting while up");
                // Already gone if the node heard of it first (a reset or
                // the client's own close); else the connection task reports
                // it gone once the Fin is out.
                if let Some(state) = running.conns.remove(&conn) {
                    running.by_link.remove(&state.link);
                    running.closed_links.insert(state.link);
                    cx.send(state.link, Endpoint::Server(sid), Payload::Fin);
                    let boot = self.boot;
                    cx.after(
                        Duration::ZERO,
                        Event::ConnClosed {
                            server: sid,
                            boot,
                            conn,
                        },
                    );
                }
            }
            Action::Append {
                records,
                roll_first,
            } => self.append(
                cx,
                Batch {
                    records,
                    roll_first,
                },
            ),
            Action::SnapshotBegin { zxid } => self.snapshot_begin(cx, zxid),
            Action::SnapshotChunk { bytes } => self.snapshot_queue(cx, SnapshotWork::Chunk(bytes)),
            Action::SnapshotEnd => self.snapshot_queue(cx, SnapshotWork::End),
            Action::Purge { .. } => cx.violation(Violation::ActionContract {
                server: sid,
                rule: "Purge asked for with autopurge off".into(),
            }),
            Action::FourLetterWord { .. } => cx.violation(Violation::ActionContract {
                server: sid,
                rule: "a four-letter word answered that nobody asked".into(),
            }),
            Action::Log { level, line } => {
                if level >= Level::Warn {
                    self.stats.warnings += 1;
                }
                // The leader names ZOOKEEPER-1277 when its zxid counter
                // runs out and it steps down for a new epoch.
                if line.contains("ZOOKEEPER-1277") {
                    self.stats.zxid_rollovers += 1;
                }
                cx.trace
                    .line(cx.now, || format!("s{sid} log {level:?}: {line}"));
            }
            // A standalone node has no peers: the engine logs and ignores
            // these, the simulator holds the node to its contract.
            action @ (Action::ElectionSend { .. }
            | Action::ConnectToLeader { .. }
            | Action::PeerSend { .. }
            | Action::PeerClose { .. }
            | Action::PersistEpoch { .. }
            | Action::TruncateLog { .. }
            | Action::Reload)
                if self.member.is_none() =>
            {
                cx.violation(Violation::ActionContract {
                    server: sid,
                    rule: format!(
                        "a standalone server was asked for an ensemble action: {action:?}"
                    ),
                })
            }
            action => self.carry_out_peer(cx, action),
        }
    }

    /// Writes frames to a connection, checking first that none reveals a
    /// zxid beyond the durable log.
    fn send(&mut self, cx: &mut Context, conn: ConnId, bytes: Vec<u8>) {
        let running = self.running.as_mut().expect("acting while up");
        cx.trace.mix_bytes(&bytes);
        let handed = bytes.len() as u64;
        let Some(state) = running.conns.get_mut(&conn) else {
            // Closed meanwhile (the node heard of it after deciding).
            return;
        };
        // A learner's tree may come from the leader's snapshot, durable
        // once sealed, with the log behind it.
        let durable = running.disk.zxid_durable().max(running.snapshot_sealed);
        let skip = usize::from(!state.handshake_sent);
        state.handshake_sent = true;
        if self.assert_reply_after_durable {
            let beyond = frame_slices(&bytes)
                .skip(skip)
                .map(|frame| ReplyHeader::decode(&mut Reader::new(frame)).map_or(0, |h| h.zxid))
                .find(|zxid| *zxid > durable);
            if let Some(zxid) = beyond {
                return cx.violation(Violation::ReplyBeforeDurable {
                    server: self.sid,
                    zxid,
                    durable,
                });
            }
        }
        let bytes = if self.bug == Some(Bug::DropWatchEvents) && skip == 0 {
            drop_a_notification(&bytes, &mut cx.rng)
        } else {
            bytes
        };
        let link = state.link;
        let from = Endpoint::Server(self.sid);
        let written = if self.bug == Some(Bug::ReorderSends) && skip == 0 {
            match state.held_back.take() {
                Some((held, held_len)) => {
                    cx.send(link, from, Payload::Bytes(bytes));
                    cx.send(link, from, Payload::Bytes(held));
                    handed + held_len
                }
                None if cx.rng.chance(1, 20) => {
                    state.held_back = Some((bytes, handed));
                    0
                }
                None => {
                    cx.send(link, from, Payload::Bytes(bytes));
                    handed
                }
            }
        } else {
            cx.send(link, from, Payload::Bytes(bytes));
            handed
        };
        // The socket took the bytes: the connection's credit comes back, as
        // the engine's connection reports what it wrote.
        if written > 0 {
            self.step(
                cx,
                Input::Written {
                    conn,
                    bytes: written,
                },
            );
        }
    }

    // ----- the log ------------------------------------------------------------------

    fn append(&mut self, cx: &mut Context, batch: Batch) {
        for record in &batch.records {
            cx.trace.mix(record.zxid as u64);
            cx.trace.mix_bytes(&record.payload);
        }
        let running = self.running.as_mut().expect("acting while up");
        if !running.disk.is_busy() {
            running.batch_started = cx.now;
        }
        let progress = running.disk.submit(batch);
        self.after_disk_progress(cx, progress);
    }

    /// A disk event: the log's next file operation completes.
    pub fn on_disk_op(&mut self, cx: &mut Context) {
        let Some(running) = &mut self.running else {
            return;
        };
        running.disk_event_pending = false;
        let progress = running.disk.step();
        self.after_disk_progress(cx, progress);
    }

    fn after_disk_progress(&mut self, cx: &mut Context, progress: LogProgress) {
        let space = self
            .running
            .as_ref()
            .and_then(|r| r.disk.take_space_report());
        if let Some(available) = space {
            self.step(cx, Input::LogSpace { available });
        }
        match progress {
            LogProgress::Idle => {}
            LogProgress::Waiting(op) => {
                if op == DiskOp::SyncData && self.bug == Some(Bug::AckBeforeDurable) {
                    self.report_early(cx);
                }
                self.schedule_disk_op(cx, op);
            }
            LogProgress::Finished(result) => {
                if let Ok(done) = &result {
                    self.disk_log_zxid = match done {
                        LogDone::Durable(durable) => durable.zxid,
                        LogDone::Truncated { zxid_last, .. } => *zxid_last,
                    };
                }
                let input = match result {
                    Ok(LogDone::Truncated { zxid, .. }) => {
                        self.stats.truncations += 1;
                        // Snapshots above the cut went first.
                        self.disk_snapshot_zxid = self.disk_snapshot_zxid.min(zxid);
                        if let Some(running) = &mut self.running {
                            running.snapshot_sealed = running.snapshot_sealed.min(zxid);
                        }
                        Some(Input::LogTruncated { zxid })
                    }
                    // The reintroduced bug told the node already.
                    Ok(LogDone::Durable(durable)) if durable.zxid <= self.reported_early() => None,
                    Ok(LogDone::Durable(durable)) => Some(Input::LogDurable {
                        zxid: durable.zxid,
                        records: durable.records,
                        record_bytes: durable.record_bytes,
                        sync_time: self.batch_time(cx),
                    }),
                    Err(failure) => {
                        self.log_failed(cx);
                        Some(Input::LogFailed(failure))
                    }
                };
                if let Some(input) = input {
                    self.step(cx, input);
                }
                if let Some(running) = &mut self.running {
                    running.batch_started = cx.now;
                    let next = running.disk.continue_queue();
                    self.after_disk_progress(cx, next);
                }
            }
        }
    }

    /// How long the batch that just finished took, in simulated time.
    fn batch_time(&self, cx: &Context) -> Duration {
        self.running
            .as_ref()
            .map_or(Duration::ZERO, |r| cx.now.saturating_sub(r.batch_started))
    }

    fn reported_early(&self) -> i64 {
        self.running.as_ref().map_or(0, |r| r.reported_early)
    }

    /// The reintroduced bug: tells the node the batch in flight is durable
    /// before its fdatasync has run.
    fn report_early(&mut self, cx: &mut Context) {
        let running = self.running.as_mut().expect("disk work while up");
        let Some(batch) = running.disk.in_flight_batch() else {
            return;
        };
        if batch.zxid <= running.reported_early {
            return;
        }
        running.reported_early = batch.zxid;
        self.step(
            cx,
            Input::LogDurable {
                zxid: batch.zxid,
                records: batch.records,
                record_bytes: batch.record_bytes,
                sync_time: Duration::from_micros(1),
            },
        );
    }

    fn schedule_disk_op(&mut self, cx: &mut Context, op: DiskOp) {
        let running = self.running.as_mut().expect("disk work while up");
        if running.disk_event_pending {
            return;
        }
        running.disk_event_pending = true;
        self.stats.disk_operations += 1;
        let latency = disk_latency(op, self.slow_disk, cx);
        let sid = self.sid;
        cx.trace
            .line(cx.now, || format!("s{sid} disk: {op:?} takes {latency:?}"));
        cx.after(
            latency,
            Event::DiskOp {
                server: self.sid,
                boot: self.boot,
            },
        );
    }

    /// The log failed: the operator restarts the server a while later
    /// (after freeing space, replacing the disk...).
    fn log_failed(&mut self, cx: &mut Context) {
        let running = self.running.as_mut().expect("disk work while up");
        if running.log_failed {
            return;
        }
        running.log_failed = true;
        self.stats.log_failures += 1;
        let delay = Duration::from_millis(cx.rng.between(200, 3000));
        cx.after(
            delay,
            Event::OperatorRestart {
                server: self.sid,
                boot: self.boot,
            },
        );
    }

    // ----- snapshots ----------------------------------------------------------------

    fn snapshot_begin(&mut self, cx: &mut Context, zxid: i64) {
        self.stats.snapshots += 1;
        if let Err(failure) = self.snapshots.begin(zxid) {
            let running = self.running.as_mut().expect("acting while up");
            running.snapshot.clear();
            self.step(
                cx,
                Input::SnapshotDone {
                    result: Err(failure),
                },
            );
            return;
        }
        self.running
            .as_mut()
            .expect("acting while up")
            .snapshot_active = true;
    }

    fn snapshot_queue(&mut self, cx: &mut Context, work: SnapshotWork) {
        let running = self.running.as_mut().expect("acting while up");
        if !running.snapshot_active {
            return;
        }
        running.snapshot.push_back(work);
        if !running.snapshot_event_pending {
            running.snapshot_event_pending = true;
            let latency = snapshot_latency(self.slow_disk, cx);
            cx.after(
                latency,
                Event::SnapshotOp {
                    server: self.sid,
                    boot: self.boot,
                },
            );
        }
    }

    /// The snapshot writer finished its next piece of work.
    pub fn on_snapshot_op(&mut self, cx: &mut Context) {
        let Some(running) = &mut self.running else {
            return;
        };
        running.snapshot_event_pending = false;
        let Some(work) = running.snapshot.pop_front() else {
            return;
        };
        let input = match work {
            SnapshotWork::Chunk(bytes) => match self.snapshots.write(&bytes) {
                Ok(()) => {
                    self.stats.snapshot_chunks += 1;
                    running.chunks_this_snapshot += 1;
                    self.stats.snapshot_chunks_max = self
                        .stats
                        .snapshot_chunks_max
                        .max(running.chunks_this_snapshot);
                    Input::SnapshotChunkWritten
                }
                Err(failure) => {
                    running.snapshot.clear();
                    running.snapshot_active = false;
                    Input::SnapshotDone {
                        result: Err(failure),
                    }
                }
            },
            SnapshotWork::End => {
                running.snapshot_active = false;
                if let Some((power_cut, CrashPoint::SnapshotSeal { sealed })) = self.crash_armed {
                    // The power fails just before the seal, or just after
                    // it, before the node hears.
                    if sealed {
                        let _ = self.snapshots.seal();
                    }
                    self.crash(cx, power_cut);
                    let delay = Duration::from_millis(cx.rng.between(10, 2_000));
                    cx.after(delay, Event::Restart { server: self.sid });
                    return;
                }
                if self.scripted(cx, When::SnapshotSeal { sealed: false }, None) {
                    return;
                }
                let result = self.snapshots.seal();
                if let Ok(written) = &result {
                    self.disk_snapshot_zxid = self.disk_snapshot_zxid.max(written.zxid);
                    if self.scripted(cx, When::SnapshotSeal { sealed: true }, None) {
                        return;
                    }
                    let running = self.running.as_mut().expect("up: no scripted crash");
                    running.snapshot_sealed = running.snapshot_sealed.max(written.zxid);
                }
                Input::SnapshotDone { result }
            }
        };
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if !running.snapshot.is_empty() {
            running.snapshot_event_pending = true;
            let latency = snapshot_latency(self.slow_disk, cx);
            cx.after(
                latency,
                Event::SnapshotOp {
                    server: self.sid,
                    boot: self.boot,
                },
            );
        }
        self.step(cx, input);
    }

    // ----- faults -------------------------------------------------------------------

    /// The process dies: by power cut (`power_cut`, unsynced writes may be
    /// lost or torn) or kill (the page cache survives). Returns false if it
    /// was down already.
    pub fn crash(&mut self, cx: &mut Context, power_cut: bool) -> bool {
        let Some(running) = self.running.take() else {
            return false;
        };
        if running
            .peers
            .sync
            .as_ref()
            .is_some_and(|(_, v)| v.snapshot_open)
        {
            self.stats.snapshots_interrupted += 1;
        }
        self.boot += 1;
        if power_cut {
            self.stats.power_cuts += 1;
            self.log_fs = self.log_fs.crash_image(cx.rng.next_u64());
        } else {
            self.stats.kills += 1;
            self.log_fs = self.log_fs.snapshot_current();
        }
        // The snapshot in progress dies with the process (on the old disk).
        self.snapshots = Snapshots::new(self.log_fs.dir(self.data_dir));
        self.slow_disk = false;
        self.crash_armed = None;
        for state in running.conns.values() {
            cx.reset(state.link);
        }
        for link in running.peers.links() {
            cx.reset(link);
        }
        let (sid, how) = (
            self.sid,
            if power_cut {
                "loses power"
            } else {
                "is killed"
            },
        );
        cx.trace.line(cx.now, || format!("s{sid} {how}"));
        true
    }

    /// Starts a crashed server again.
    pub fn restart(&mut self, cx: &mut Context) {
        if self.running.is_none() {
            self.stats.restarts += 1;
            self.start(cx);
        }
    }

    /// The next fdatasync of the log fails.
    pub fn fail_next_fsync(&mut self) {
        self.log_fs.fail_sync_data_at(0);
    }

    /// The disk fills up a little past what is used now; its operator
    /// frees space a while later.
    pub fn fill_disk(&mut self, cx: &mut Context) {
        let used = self.log_fs.bytes_used();
        self.log_fs.limit_bytes(used + cx.rng.between(0, 64 << 10));
        let delay = Duration::from_millis(cx.rng.between(200, 5_000));
        cx.after(
            delay,
            Event::SpaceFreed {
                server: self.sid,
                boot: self.boot,
            },
        );
    }

    /// Space on the disk is freed (a full disk's limit is lifted).
    pub fn free_space(&mut self) {
        self.log_fs.limit_bytes(None);
    }

    /// The wall clock jumps by `ms` (either way).
    pub fn jump_wall_clock(&mut self, ms: i64) {
        self.wall_offset_ms += ms;
    }

    /// The monotonic clock leaps forward (a paused VM resumes).
    pub fn leap_monotonic(&mut self, by: Duration) {
        self.monotonic_leap += by;
    }

    // ----- the end ------------------------------------------------------------------

    /// What recovery would rebuild from this disk now, two ways: from the
    /// newest snapshot and the log after it, and from snapshot 0 and the
    /// whole log (whose txns it lists too).
    pub fn recover_now(&self) -> Result<(recovery::Recovered, recovery::Recovered), String> {
        let image = self.log_fs.snapshot_current();
        let data = image.dir(self.data_dir);
        let newest = recovery::recover(&data, &image).map_err(|e| e.to_string())?;
        let everything = recovery::replay_everything(&data, &image).map_err(|e| e.to_string())?;
        Ok((newest, everything))
    }

    /// [`Server::recover_now`] for a server of an ensemble: the whole log
    /// (from snapshot 0) is `None` when it cannot be replayed — a learner
    /// that took a snapshot from its leader has a log that starts after it.
    pub fn recover_now_in_ensemble(
        &self,
    ) -> Result<(recovery::Recovered, Option<recovery::Recovered>), String> {
        let image = self.log_fs.snapshot_current();
        let data = image.dir(self.data_dir);
        let newest = recovery::recover(&data, &image).map_err(|e| e.to_string())?;
        Ok((newest, recovery::replay_everything(&data, &image).ok()))
    }
}

/// The reintroduced `Bug::DropWatchEvents`: the frames without one of
/// their notifications, now and then.
fn drop_a_notification(bytes: &[u8], rng: &mut crate::rng::Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut dropped = false;
    let mut rest = bytes;
    for frame in frame_slices(bytes) {
        let whole = &rest[..4 + frame.len()];
        rest = &rest[4 + frame.len()..];
        let notification = ReplyHeader::decode(&mut Reader::new(frame)).is_ok_and(|h| h.xid == -1);
        if notification && !dropped && rng.chance(1, 4) {
            dropped = true;
            continue;
        }
        out.extend_from_slice(whole);
    }
    out
}

/// How long one file operation of the log takes.
fn disk_latency(op: DiskOp, slow: bool, cx: &mut Context) -> Duration {
    let micros = match op {
        DiskOp::Write | DiskOp::Read => cx.rng.between(10, 300),
        DiskOp::SyncData if cx.rng.chance(1, 50) => cx.rng.between(5_000, 30_000),
        DiskOp::SyncData => cx.rng.between(50, 2_000),
        DiskOp::SyncDir => cx.rng.between(50, 1_000),
        DiskOp::Create | DiskOp::Open | DiskOp::Stat | DiskOp::Rename | DiskOp::Remove => {
            cx.rng.between(5, 100)
        }
        // Not the disk's latency: the log stage's timer.
        DiskOp::WaitForSpace => return disk::SPACE_RETRY_INTERVAL,
    };
    let micros = if slow {
        micros * 100 + cx.rng.between(0, 500_000)
    } else {
        micros
    };
    Duration::from_micros(micros)
}

fn snapshot_latency(slow: bool, cx: &mut Context) -> Duration {
    let micros = cx.rng.between(50, 3_000);
    Duration::from_micros(if slow { micros * 200 } else { micros })
}
