//! Runs one load-generator run: set up the namespace, connect every session,
//! drive them for a duration or an op count, drain, close, report.
//!
//! Threads and sessions: `threads` worker threads (default 1), session `i`
//! on thread `i % threads`. Each worker owns an epoll instance (mio) and its
//! sessions' non-blocking sockets, and runs one loop:
//!
//! ```text
//!   poll (timeout: next send time / end of phase / 100 ms housekeeping)
//!   -> read every readable socket to WouldBlock, match replies to requests,
//!      record latency (one clock read per read() call)
//!   -> refill: every session with room below `outstanding` gets new requests
//!      (closed loop: as many as fit; open loop: those whose scheduled send
//!      time has come)
//!   -> flush: one write() per session with queued output
//! ```
//!
//! No locks on the hot path: each worker keeps its own histograms and
//! counters, merged when the run ends; the only shared writes are a relaxed
//! progress counter per loop turn and, in `--ops` mode, one relaxed
//! `fetch_add` per request on the op budget.
//!
//! Open loop: the whole run sends `rate` requests a second, spread evenly:
//! session `i` of `n` sends its `k`-th request at `(i + k·n) / rate` seconds.
//! When a session has `outstanding` requests in flight its scheduled sends
//! wait, and their latency is still measured from the scheduled time. Sleeps
//! shorter than a few milliseconds use a timerfd (epoll's own timeout has
//! millisecond granularity, which would add up to 1 ms of generator delay to
//! every request).
//!
//! Phases (all threads together, with barriers):
//!
//! ```text
//! connect (≤ connect_timeout) | start | warmup | window | drain (≤ drain_timeout) | close (≤ 2 s)
//! ```

use std::io::{self, IsTerminal};
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, OnceLock};
use std::time::{Duration, Instant};

use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};
use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};
use serde::Serialize;

use crate::session::{ReplySink, Session};
use crate::stats::{error_counts, KindSummary, LatencySummary, RunReport, ThreadStats};
use crate::sync_client::SyncClient;
use crate::workload::{self, OpKind, OpSource, Workload};

/// Bounds on a run's shape (STYLE.md rule 5).
pub const SESSIONS_MAX: usize = 100_000;
pub const OUTSTANDING_MAX: usize = 100_000;
pub const THREADS_MAX: usize = 256;
pub const VALUE_BYTES_MAX: usize = 1 << 20;
/// How long closing sessions may take before their sockets are dropped.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// The event loop wakes at least this often (stop flag, progress, phases).
const HOUSEKEEPING: Duration = Duration::from_millis(100);
/// Waits shorter than this use the timerfd instead of epoll's ms timeout.
const TIMERFD_BELOW: Duration = Duration::from_millis(5);
// mio reserves nothing below usize::MAX; sessions use 0.., the timer the top.
const TIMER_TOKEN: Token = Token(usize::MAX - 1);

/// How long a run lasts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunLength {
    /// Send for `warmup + duration`; measure the last `duration`.
    Timed {
        warmup: Duration,
        duration: Duration,
    },
    /// Send exactly `ops` requests (all sessions together); measure all.
    Ops(u64),
}

/// Everything that defines a run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// The servers; session `i` connects to `servers[i % servers.len()]`
    /// (an ensemble's servers each take a share). The namespace is set up
    /// through the first.
    pub servers: Vec<SocketAddr>,
    /// Names the server in reports ("zookeeper", "ferrokeeper", an address).
    pub server_name: String,
    pub label: String,
    pub workload: Workload,
    pub sessions: usize,
    /// Requests in flight per session (1 = no pipelining).
    pub outstanding: usize,
    pub threads: usize,
    pub length: RunLength,
    /// Open loop at this many requests a second (all sessions together);
    /// `None` = closed loop.
    pub rate: Option<f64>,
    pub value_size: usize,
    pub keys: u64,
    pub seed: u64,
    pub session_timeout_ms: i32,
    pub connect_timeout: Duration,
    pub drain_timeout: Duration,
    /// Hard bound on the sending phase, whatever `length` says.
    pub time_limit: Duration,
    /// Keep every measured latency (for tests; bounded by `SAMPLES_MAX`).
    pub record_samples: bool,
    /// Print a progress line to stderr every second.
    pub progress: bool,
}

impl RunConfig {
    /// A closed-loop run of `workload` with defaults for everything else.
    pub fn new(server: SocketAddr, workload: Workload) -> RunConfig {
        RunConfig {
            servers: vec![server],
            server_name: server.to_string(),
            label: workload.name(),
            workload,
            sessions: 8,
            outstanding: 32,
            threads: 1,
            length: match workload {
                Workload::Write1M => RunLength::Ops(workload::WRITE_1M_OPS),
                _ => RunLength::Timed {
                    warmup: Duration::from_secs(1),
                    duration: Duration::from_secs(5),
                },
            },
            rate: None,
            value_size: 100,
            keys: 10_000,
            seed: 1,
            session_timeout_ms: 30_000,
            connect_timeout: Duration::from_secs(15),
            drain_timeout: Duration::from_secs(10),
            time_limit: Duration::from_secs(900),
            record_samples: false,
            progress: false,
        }
    }

    /// The server session `index` connects to.
    pub fn server_for(&self, index: usize) -> SocketAddr {
        self.servers[index % self.servers.len()]
    }

    fn check(&self) -> Result<(), RunError> {
        let bad = |what: &str| Err(RunError::Config(what.to_owned()));
        if self.servers.is_empty() {
            return bad("no server");
        }
        if self.sessions == 0 || self.sessions > SESSIONS_MAX {
            return bad("sessions must be in 1..=100000");
        }
        if self.outstanding == 0 || self.outstanding > OUTSTANDING_MAX {
            return bad("outstanding must be in 1..=100000");
        }
        if self.threads == 0 || self.threads > THREADS_MAX {
            return bad("threads must be in 1..=256");
        }
        if self.value_size > VALUE_BYTES_MAX {
            return bad("value size over 1 MiB");
        }
        if self.workload.needs_keys() && self.keys == 0 {
            return bad("this workload needs --keys > 0");
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return bad("rate must be positive");
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub enum RunError {
    Config(String),
    Setup(io::Error),
    NoSession,
    Io(io::Error),
}

impl std::fmt::Display for RunError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunError::Config(what) => write!(f, "bad run configuration: {what}"),
            RunError::Setup(e) => write!(f, "setting up the namespace failed: {e}"),
            RunError::NoSession => write!(f, "no session could connect"),
            RunError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for RunError {}

/// A run's unique tag: its directory is `/fkbench/run-<tag>`.
fn run_tag(seed: u64) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    format!(
        "{:x}{:x}{}",
        std::process::id(),
        nanos ^ seed,
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// The value every write carries: `value_size` bytes of a repeating pattern.
fn value_bytes(size: usize) -> Arc<[u8]> {
    (0..size).map(|i| b'a' + (i % 26) as u8).collect()
}

/// Creates the namespace the workload needs (see [`workload`]).
pub fn prepare(config: &RunConfig, run_dir: &str, value: &[u8]) -> io::Result<()> {
    let mut client = SyncClient::connect(config.servers[0], config.connect_timeout)?;
    client.ensure(workload::ROOT, b"")?;
    if config.workload.needs_keys() {
        prepare_keys(&mut client, config.keys, value)?;
    }
    client.ensure(run_dir, b"")?;
    if config.workload == Workload::Keeper {
        let dirs: Vec<String> = (0..config.sessions)
            .map(|s| workload::keeper_dir(run_dir, s))
            .collect();
        let replies = client.pipeline(dirs.len(), |i, xid, out| {
            crate::wire::put_create(out, xid, &dirs[i], b"")
        })?;
        check_replies(&replies, "keeper directories")?;
    }
    client.close();
    // The other servers of an ensemble serve reads from their own copy: make
    // them catch up with the setup before any session reads through them.
    for &server in &config.servers[1..] {
        let mut client = SyncClient::connect(server, config.connect_timeout)?;
        client.sync(run_dir)?;
        client.close();
    }
    Ok(())
}

fn check_replies(replies: &[crate::sync_client::Reply], what: &str) -> io::Result<()> {
    let exists = proto::ErrorCode::NodeExists.code();
    match replies.iter().find(|r| r.err != 0 && r.err != exists) {
        Some(r) => Err(io::Error::other(format!("{what}: error {}", r.err))),
        None => Ok(()),
    }
}

/// Creates keys `k0..k<keys>` with `value`, or resets them when a marker on
/// the keys directory says they were made with another count or size.
fn prepare_keys(client: &mut SyncClient, keys: u64, value: &[u8]) -> io::Result<()> {
    let marker = format!("{keys}:{}", value.len()).into_bytes();
    if client.get_data(workload::KEYS_DIR)?.as_deref() == Some(&marker[..]) {
        return Ok(());
    }
    client.ensure(workload::KEYS_DIR, b"")?;
    let count = usize::try_from(keys).expect("key count fits usize");
    let mut path = String::new();
    let created = client.pipeline(count, |i, xid, out| {
        workload::key_path(&mut path, i as u64);
        crate::wire::put_create(out, xid, &path, value)
    })?;
    check_replies(&created, "creating keys")?;
    let exists = proto::ErrorCode::NodeExists.code();
    let existing: Vec<u64> = (0..keys)
        .filter(|&i| created[i as usize].err == exists)
        .collect();
    let reset = client.pipeline(existing.len(), |i, xid, out| {
        workload::key_path(&mut path, existing[i]);
        crate::wire::put_set_data(out, xid, &path, value)
    })?;
    check_replies(&reset, "resetting keys")?;
    let marked =
        client.call(|xid, out| crate::wire::put_set_data(out, xid, workload::KEYS_DIR, &marker))?;
    check_replies(&[marked], "marking keys")
}

/// State shared by the workers of one run.
#[derive(Debug)]
struct Shared {
    barrier: Barrier,
    start: OnceLock<Instant>,
    stop: Arc<AtomicBool>,
    ops_issued: AtomicU64,
    replies: AtomicU64,
    errors: AtomicU64,
}

/// The timing of a run, in ns since the start.
#[derive(Debug, Clone, Copy)]
struct Plan {
    window_start_ns: u64,
    window_end_ns: u64,
    /// Sending stops here (timed runs) or at the op budget.
    send_end_ns: u64,
    ops_budget: Option<u64>,
    /// Open loop: ns between one session's scheduled sends.
    interval_ns: Option<f64>,
    drain_ns: u64,
}

impl Plan {
    fn of(config: &RunConfig) -> Plan {
        let limit_ns = config.time_limit.as_nanos() as u64;
        let (window_start_ns, window_end_ns, send_end_ns, ops_budget) = match config.length {
            RunLength::Timed { warmup, duration } => {
                let start = warmup.as_nanos() as u64;
                let end = start + duration.as_nanos() as u64;
                (start, end, end.min(limit_ns), None)
            }
            RunLength::Ops(ops) => (0, u64::MAX, limit_ns, Some(ops)),
        };
        Plan {
            window_start_ns,
            window_end_ns,
            send_end_ns,
            ops_budget,
            interval_ns: config.rate.map(|rate| config.sessions as f64 * 1e9 / rate),
            drain_ns: config.drain_timeout.as_nanos() as u64,
        }
    }

    fn in_window(&self, ns: u64) -> bool {
        ns >= self.window_start_ns && ns < self.window_end_ns
    }
}

/// Counts replies into the thread's stats (the sessions' [`ReplySink`]).
#[derive(Debug)]
struct Tally<'a> {
    plan: &'a Plan,
    stats: &'a mut ThreadStats,
    replies: u64,
    errors: u64,
}

impl ReplySink for Tally<'_> {
    fn reply(&mut self, kind: OpKind, intended_ns: u64, now_ns: u64, err: i32) {
        self.replies += 1;
        if self.plan.in_window(now_ns) {
            self.stats.replies_in_window += 1;
        }
        if self.plan.in_window(intended_ns) {
            self.stats
                .record(kind, now_ns.saturating_sub(intended_ns), err);
            if err != 0 {
                self.errors += 1;
            }
        }
        self.stats.last_reply_ns = self.stats.last_reply_ns.max(now_ns);
    }

    fn unanswered(&mut self, _kind: OpKind, intended_ns: u64, lost: bool) {
        if self.plan.in_window(intended_ns) {
            if lost {
                *self
                    .stats
                    .errors
                    .entry(proto::ErrorCode::ConnectionLoss.code())
                    .or_insert(0) += 1;
                self.errors += 1;
            } else {
                self.stats.unanswered += 1;
            }
        }
    }
}

/// Runs `config` against its server. `stop` ends the run early (Ctrl-C).
pub fn run(config: &RunConfig, stop: &Arc<AtomicBool>) -> Result<RunReport, RunError> {
    config.check()?;
    let tag = run_tag(config.seed);
    let run_dir: Arc<str> = Arc::from(workload::run_dir(&tag));
    let value = value_bytes(config.value_size);
    prepare(config, &run_dir, &value).map_err(RunError::Setup)?;

    let plan = Plan::of(config);
    let shared = Arc::new(Shared {
        barrier: Barrier::new(config.threads + 1),
        start: OnceLock::new(),
        stop: Arc::clone(stop),
        ops_issued: AtomicU64::new(0),
        replies: AtomicU64::new(0),
        errors: AtomicU64::new(0),
    });
    let workers: Vec<_> = (0..config.threads)
        .map(|thread| {
            let config = config.clone();
            let shared = Arc::clone(&shared);
            let run_dir = Arc::clone(&run_dir);
            let value = Arc::clone(&value);
            std::thread::Builder::new()
                .name(format!("loadgen-{thread}"))
                .spawn(move || worker(thread, &config, plan, &shared, run_dir, value))
                .map_err(RunError::Io)
        })
        .collect::<Result<_, _>>()?;

    shared.barrier.wait(); // every session connected or failed
    let start = Instant::now();
    shared.start.set(start).expect("start set once");
    let cpu_start = process_cpu_ns();
    shared.barrier.wait(); // workers read the start
    watch_progress(config, &plan, &shared, start, &workers);
    let mut merged = ThreadStats::new(config.record_samples);
    for handle in workers {
        let stats = handle.join().expect("load generator thread panicked")?;
        merged.merge(stats);
    }
    let elapsed_ns = start.elapsed().as_nanos() as u64;
    let cpu_ns = process_cpu_ns().saturating_sub(cpu_start);
    if merged.sessions_connected == 0 {
        return Err(RunError::NoSession);
    }
    Ok(report(config, &plan, merged, elapsed_ns, cpu_ns))
}

fn report(
    config: &RunConfig,
    plan: &Plan,
    stats: ThreadStats,
    elapsed_ns: u64,
    cpu_ns: u64,
) -> RunReport {
    let window_ns = match config.length {
        RunLength::Timed { duration, .. } => duration.as_nanos() as u64,
        RunLength::Ops(_) => stats.last_reply_ns.max(1),
    };
    let window_ns = window_ns.min(elapsed_ns.saturating_sub(plan.window_start_ns).max(1));
    let window_s = window_ns as f64 / 1e9;
    let by_kind = OpKind::ALL
        .iter()
        .filter(|k| !stats.latency_by_kind[k.index()].is_empty())
        .map(|k| KindSummary {
            kind: k.name(),
            latency: LatencySummary::of(&stats.latency_by_kind[k.index()]),
        })
        .collect();
    let errors = error_counts(&stats.errors);
    RunReport {
        label: config.label.clone(),
        server: config.server_name.clone(),
        workload: config.workload.name(),
        sessions: config.sessions,
        outstanding: config.outstanding,
        threads: config.threads,
        value_size: config.value_size,
        keys: config.keys,
        rate: config.rate,
        window_s,
        ops: stats.replies_in_window,
        throughput: stats.replies_in_window as f64 / window_s,
        latency: LatencySummary::of(&stats.latency),
        by_kind,
        errors_total: errors.iter().map(|e| e.count).sum(),
        errors,
        unanswered: stats.unanswered,
        sessions_connected: stats.sessions_connected,
        sessions_failed_to_connect: stats.sessions_failed_to_connect,
        sessions_lost: stats.sessions_lost,
        protocol_errors: stats.protocol_errors,
        client_cpu_percent: cpu_ns as f64 / elapsed_ns.max(1) as f64 * 100.0,
        samples: stats.samples,
    }
}

/// This process's CPU time (all threads), ns.
pub fn process_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Prints a progress line every second until the workers finish.
fn watch_progress(
    config: &RunConfig,
    plan: &Plan,
    shared: &Shared,
    start: Instant,
    workers: &[std::thread::JoinHandle<Result<ThreadStats, RunError>>],
) {
    let mut last_replies = 0;
    let mut last_print = start;
    while !workers.iter().all(|w| w.is_finished()) {
        std::thread::sleep(Duration::from_millis(50));
        if !config.progress || last_print.elapsed() < Duration::from_secs(1) {
            continue;
        }
        let now = Instant::now();
        let replies = shared.replies.load(Ordering::Relaxed);
        let rate = (replies - last_replies) as f64 / (now - last_print).as_secs_f64();
        let t = (now - start).as_secs_f64();
        let phase = if ((now - start).as_nanos() as u64) < plan.window_start_ns {
            "warmup"
        } else if ((now - start).as_nanos() as u64) < plan.send_end_ns
            && match plan.ops_budget {
                Some(budget) => shared.ops_issued.load(Ordering::Relaxed) < budget,
                None => true,
            }
        {
            "run"
        } else {
            "drain"
        };
        let line = format!(
            "[{}] {t:6.1}s {phase:6} replies {replies:>10} {rate:>10.0}/s errors {:>6}",
            config.label,
            shared.errors.load(Ordering::Relaxed)
        );
        // One line rewritten in place on a terminal, one line per second in a log.
        if std::io::stderr().is_terminal() {
            eprint!("\r{line}   ");
        } else {
            eprintln!("{line}");
        }
        last_replies = replies;
        last_print = now;
    }
    if config.progress && std::io::stderr().is_terminal() {
        eprintln!();
    }
}

/// One worker thread: connect its sessions, run them, close them.
fn worker(
    thread: usize,
    config: &RunConfig,
    plan: Plan,
    shared: &Shared,
    run_dir: Arc<str>,
    value: Arc<[u8]>,
) -> Result<ThreadStats, RunError> {
    let mut stats = ThreadStats::new(config.record_samples);
    let connected = Worker::connect(thread, config, &plan, shared, run_dir, value, &mut stats);
    shared.barrier.wait();
    shared.barrier.wait();
    let mut worker = connected?;
    let start = *shared
        .start
        .get()
        .expect("start set before the second barrier");
    worker.run(start, &mut stats)?;
    Ok(stats)
}

#[derive(Debug)]
struct Worker<'a> {
    config: &'a RunConfig,
    plan: &'a Plan,
    shared: &'a Shared,
    poll: Poll,
    events: Events,
    sessions: Vec<Session>,
    timer: OwnedFd,
    /// When the timerfd fires next, ns since the start (0 = disarmed).
    timer_armed_ns: u64,
    /// Sessions that received replies this turn (closed loop refills these).
    touched: Vec<usize>,
    budget_left: bool,
}

impl<'a> Worker<'a> {
    fn connect(
        thread: usize,
        config: &'a RunConfig,
        plan: &'a Plan,
        shared: &'a Shared,
        run_dir: Arc<str>,
        value: Arc<[u8]>,
        stats: &mut ThreadStats,
    ) -> Result<Worker<'a>, RunError> {
        let poll = Poll::new().map_err(RunError::Io)?;
        let timer = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )
        .map_err(|e| RunError::Io(e.into()))?;
        poll.registry()
            .register(
                &mut SourceFd(&timer.as_raw_fd()),
                TIMER_TOKEN,
                Interest::READABLE,
            )
            .map_err(RunError::Io)?;
        let mut worker = Worker {
            config,
            plan,
            shared,
            poll,
            events: Events::with_capacity(1024),
            sessions: Vec::new(),
            timer,
            timer_armed_ns: 0,
            touched: Vec::new(),
            budget_left: true,
        };
        for index in (thread..config.sessions).step_by(config.threads) {
            let source = OpSource::new(
                config.workload,
                index,
                config.seed,
                config.keys,
                Arc::clone(&value),
                Arc::clone(&run_dir),
            );
            let server = config.server_for(index);
            match Session::connect(server, index, source, config.session_timeout_ms) {
                Ok(mut session) => {
                    let token = Token(worker.sessions.len());
                    worker
                        .poll
                        .registry()
                        .register(
                            session.stream_mut(),
                            token,
                            Interest::READABLE | Interest::WRITABLE,
                        )
                        .map_err(RunError::Io)?;
                    worker.sessions.push(session);
                }
                Err(_) => stats.sessions_failed_to_connect += 1,
            }
        }
        worker.await_handshakes(stats)?;
        Ok(worker)
    }

    fn await_handshakes(&mut self, stats: &mut ThreadStats) -> Result<(), RunError> {
        let deadline = Instant::now() + self.config.connect_timeout;
        let plan = self.plan;
        let mut tally = Tally {
            plan,
            stats,
            replies: 0,
            errors: 0,
        };
        while self.sessions.iter().any(|s| !s.is_ready() && !s.is_done())
            && Instant::now() < deadline
            && !self.shared.stop.load(Ordering::Relaxed)
        {
            self.poll
                .poll(&mut self.events, Some(HOUSEKEEPING))
                .map_err(RunError::Io)?;
            let origin = Instant::now();
            for event in self.events.iter() {
                let Some(session) = self.sessions.get_mut(event.token().0) else {
                    continue;
                };
                if event.is_writable() {
                    session.on_writable(&mut tally);
                }
                if event.is_readable() {
                    session.on_readable(|| origin.elapsed().as_nanos() as u64, &mut tally);
                }
            }
        }
        for session in &mut self.sessions {
            if session.is_ready() {
                tally.stats.sessions_connected += 1;
            } else {
                tally.stats.sessions_failed_to_connect += 1;
                session.fail(crate::session::SessionFailure::Refused, &mut tally);
            }
        }
        Ok(())
    }

    fn run(&mut self, start: Instant, stats: &mut ThreadStats) -> Result<(), RunError> {
        let now_ns = || start.elapsed().as_nanos() as u64;
        let plan = self.plan;
        let mut tally = Tally {
            plan,
            stats,
            replies: 0,
            errors: 0,
        };
        self.touched = (0..self.sessions.len()).collect();
        let mut sending_stopped_ns: Option<u64> = None;
        loop {
            let now = now_ns();
            if self.shared.stop.load(Ordering::Relaxed) {
                break;
            }
            let sending = now < plan.send_end_ns && self.budget_left;
            if !sending {
                let stopped = *sending_stopped_ns.get_or_insert(now);
                let in_flight: usize = self.sessions.iter().map(Session::in_flight).sum();
                if in_flight == 0 || now >= stopped + plan.drain_ns {
                    break;
                }
            }
            let next_send_ns = if sending { self.refill(now) } else { None };
            for index in self.touched.drain(..) {
                let session = &mut self.sessions[index];
                session.ping_if_idle(now);
                session.flush(&mut tally);
            }
            self.wait(now, next_send_ns, sending)?;
            self.dispatch(now_ns, &mut tally);
            self.publish(&mut tally);
        }
        for session in &mut self.sessions {
            session.abandon(&mut tally);
        }
        for session in &self.sessions {
            if session.failure.is_some() && session.negotiated_timeout_ms > 0 {
                match session.failure {
                    Some(crate::session::SessionFailure::XidOutOfOrder { .. })
                    | Some(crate::session::SessionFailure::BadFrame(_))
                    | Some(crate::session::SessionFailure::Undecodable) => {
                        tally.stats.protocol_errors += 1
                    }
                    _ => tally.stats.sessions_lost += 1,
                }
            }
        }
        self.close(&mut tally)?;
        self.publish(&mut tally);
        Ok(())
    }

    /// Issues what may be sent now; returns the next scheduled send time of
    /// a session that has room (open loop), if any.
    fn refill(&mut self, now: u64) -> Option<u64> {
        let outstanding = self.config.outstanding;
        match self.plan.interval_ns {
            None => {
                // Closed loop: only sessions that got replies (or all, on the
                // first turn) can have room.
                for position in 0..self.touched.len() {
                    let session = &mut self.sessions[self.touched[position]];
                    while session.is_ready() && session.in_flight() < outstanding {
                        if !take_budget(self.plan, self.shared, &mut self.budget_left) {
                            break;
                        }
                        session.issue(now, now);
                    }
                }
                None
            }
            Some(interval) => {
                let total = self.config.sessions as f64;
                let mut next: Option<u64> = None;
                for (position, session) in self.sessions.iter_mut().enumerate() {
                    let mut issued = false;
                    while session.is_ready() && session.in_flight() < outstanding {
                        let due = ((session.index as f64 + session.scheduled as f64 * total)
                            * interval
                            / total) as u64;
                        if due > now || due >= self.plan.send_end_ns {
                            next = Some(next.map_or(due, |n: u64| n.min(due)));
                            break;
                        }
                        if !take_budget(self.plan, self.shared, &mut self.budget_left) {
                            break;
                        }
                        session.issue(now, due);
                        session.scheduled += 1;
                        issued = true;
                    }
                    if issued || session.has_output() {
                        self.touched.push(position);
                    }
                }
                next
            }
        }
    }

    /// Blocks until an event, the next scheduled send or housekeeping.
    fn wait(&mut self, now: u64, next_send_ns: Option<u64>, sending: bool) -> Result<(), RunError> {
        let mut wake_ns = now + HOUSEKEEPING.as_nanos() as u64;
        if sending {
            wake_ns = wake_ns.min(self.plan.send_end_ns);
        }
        if let Some(next) = next_send_ns {
            wake_ns = wake_ns.min(next);
        }
        let wait_ns = wake_ns.saturating_sub(now);
        let timeout = if wait_ns < TIMERFD_BELOW.as_nanos() as u64 && next_send_ns.is_some() {
            if wait_ns == 0 {
                Some(Duration::ZERO)
            } else {
                self.arm_timer(wake_ns, wait_ns)?;
                Some(HOUSEKEEPING)
            }
        } else {
            Some(Duration::from_nanos(wait_ns))
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(e) => Err(RunError::Io(e)),
        }
    }

    fn arm_timer(&mut self, wake_ns: u64, wait_ns: u64) -> Result<(), RunError> {
        if self.timer_armed_ns == wake_ns {
            return Ok(());
        }
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: (wait_ns / 1_000_000_000) as _,
                tv_nsec: (wait_ns % 1_000_000_000) as _,
            },
        };
        timerfd_settime(&self.timer, TimerfdTimerFlags::empty(), &spec)
            .map_err(|e| RunError::Io(e.into()))?;
        self.timer_armed_ns = wake_ns;
        Ok(())
    }

    /// Handles the events of the last poll.
    fn dispatch(&mut self, now_ns: impl Fn() -> u64 + Copy, tally: &mut Tally<'_>) {
        for event in self.events.iter() {
            if event.token() == TIMER_TOKEN {
                let mut expirations = [0u8; 8];
                let _ = rustix::io::read(&self.timer, &mut expirations);
                self.timer_armed_ns = 0;
                continue;
            }
            let index = event.token().0;
            let Some(session) = self.sessions.get_mut(index) else {
                continue;
            };
            if event.is_readable() {
                let before = tally.replies;
                session.on_readable(now_ns, tally);
                if tally.replies != before {
                    self.touched.push(index);
                }
            }
            if event.is_writable() {
                session.flush(tally);
            }
        }
    }

    fn publish(&mut self, tally: &mut Tally<'_>) {
        if tally.replies > 0 {
            self.shared
                .replies
                .fetch_add(tally.replies, Ordering::Relaxed);
            tally.replies = 0;
        }
        if tally.errors > 0 {
            self.shared
                .errors
                .fetch_add(tally.errors, Ordering::Relaxed);
            tally.errors = 0;
        }
    }

    /// Sends closeSession on every live session and waits briefly for the
    /// answers, so the server does not keep the sessions until they expire.
    fn close(&mut self, tally: &mut Tally<'_>) -> Result<(), RunError> {
        for session in &mut self.sessions {
            session.start_close();
            session.flush(tally);
        }
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let origin = Instant::now();
        while self.sessions.iter().any(|s| !s.is_done()) && Instant::now() < deadline {
            self.poll
                .poll(&mut self.events, Some(HOUSEKEEPING))
                .map_err(RunError::Io)?;
            for event in self.events.iter() {
                let Some(session) = self.sessions.get_mut(event.token().0) else {
                    continue;
                };
                if event.is_readable() {
                    session.on_readable(|| origin.elapsed().as_nanos() as u64, tally);
                }
                if event.is_writable() {
                    session.flush(tally);
                }
            }
        }
        Ok(())
    }
}

/// Claims one request from the op budget (`--ops` mode).
fn take_budget(plan: &Plan, shared: &Shared, budget_left: &mut bool) -> bool {
    let Some(budget) = plan.ops_budget else {
        return true;
    };
    if !*budget_left {
        return false;
    }
    if shared.ops_issued.fetch_add(1, Ordering::Relaxed) < budget {
        true
    } else {
        *budget_left = false;
        false
    }
}
