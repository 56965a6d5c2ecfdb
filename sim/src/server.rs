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
//!
//! The driver is cut along what each part owns: `boot` (the start from
//! the disk and the checks after a restart), `client_links` (client
//! connections: frames in, frames out with their order and durability
//! checks), `stepping` (the node's inputs and the actions it returns),
//! `log_io` (the log on the simulated disk), `snapshot_io` (the snapshot
//! writer), `faults` (crashes and the other faults, and what recovery
//! would rebuild now), `peers` (the ensemble side) and `scripted` (the
//! hooks of scripted faults).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use node::{ConnId, Input, Node, Now, RequestFrame, Settings};
use wal::{MemFs, WriterConfig};

use crate::context::{Context, Event};
use crate::disk::{DiskOp, LogDisk};
use crate::network::LinkId;
use crate::options::{Bug, Mix, Options};
use crate::snapshots::Snapshots;

mod boot;
mod client_links;
mod damage;
mod faults;
mod log_io;
mod peers;
mod scripted;
mod snapshot_io;
mod stepping;

use log_io::disk_latency;

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
    /// Whole-tree snapshots written by a script's `Then::Snapshot`.
    pub snapshots_scripted: u64,
    /// Snapshots a TRUNC removed: they were above the cut (ZOOKEEPER-1549).
    pub snapshots_truncated: u64,
    /// Starts refused because the log had no snapshot under it
    /// (ZOOKEEPER-2325), and multi txns replayed from the log at starts.
    pub starts_refused: u64,
    pub replayed_multis: u64,
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
    /// A bit flip damaged the log, which held up to this zxid before; kept
    /// while the server's "recovering" marker is set (`server/damage.rs`).
    damaged_floor: Option<i64>,
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
            damaged_floor: None,
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
        let floor = self.damaged_floor.unwrap_or(i64::MIN);
        self.disk_log_zxid.max(self.disk_snapshot_zxid).max(floor)
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
                Mix::Standard | Mix::BigTree | Mix::Multis => {
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
}
