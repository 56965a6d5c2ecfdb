//! The failover load: a steady stream of unique creates through every server
//! of an ensemble, from sessions that survive the loss of their server the
//! way ZooKeeper's clients do — by resuming the same session on another
//! server — and that record, for every create, whether it was acknowledged.
//!
//! ```text
//! session i (one thread each), starting on server i mod N:
//!   Disconnected --TCP + handshake(session id, password, last zxid seen)--> Connected
//!   Connected: keep `outstanding` creates in flight (closed loop, or paced at
//!              rate/sessions per second), each reply matched to the head of
//!              the in-flight FIFO:
//!                OK          -> acknowledged: (time, path) recorded
//!                error code  -> not applied: counted by code
//!   any socket error, EOF or protocol error -> every in-flight create is
//!              *uncertain* (it may or may not have been applied), recorded
//!              and never sent again; try the next server at once; after a
//!              whole round of servers without success, wait RETRY_PAUSE
//!   handshake answered with timeout 0 -> the session expired: open a new one
//! ```
//!
//! Paths are `<run>/s<session>b<seq % buckets>/n<seq>`: every create has a
//! path of its own, so nothing is retried blindly and afterwards each
//! acknowledged create can be looked up ([`verify`]). The bucket directories
//! keep getChildren replies small when the load is fast.
//!
//! Time: every acknowledgement is stamped in ns since the load's start, on
//! one clock, so the gaps between acknowledgements across all sessions can be
//! measured around each kill.

use std::collections::{BTreeMap, HashSet, VecDeque};
use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::sync_client::SyncClient;
use crate::wire;

/// Bounds (STYLE.md rule 5).
pub const SESSIONS_MAX: usize = 60;
pub const OUTSTANDING_MAX: usize = 1000;
pub const BUCKETS_MAX: usize = 1024;
/// Bound on one connection attempt: TCP connect, and the handshake's reply.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Pause after a whole round of servers refused or failed.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// How long a session waits for a reply before it blocks again (stop flag,
/// pacing, pings).
const READ_SLICE: Duration = Duration::from_millis(10);
/// How long stopping waits for the replies still in flight.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Bound on one session's input buffer growth between frames.
const READ_CHUNK: usize = 64 << 10;

#[derive(Debug, Clone)]
pub struct FailoverConfig {
    /// Every server of the ensemble; session `i` starts on `servers[i % N]`.
    pub servers: Vec<SocketAddr>,
    pub sessions: usize,
    /// Creates in flight per session.
    pub outstanding: usize,
    /// Creates per second, all sessions together; `None` = closed loop.
    pub rate: Option<f64>,
    pub value_size: usize,
    pub session_timeout_ms: i32,
    /// Bucket directories per session.
    pub buckets: usize,
}

impl FailoverConfig {
    pub fn new(servers: Vec<SocketAddr>) -> FailoverConfig {
        FailoverConfig {
            servers,
            sessions: 8,
            outstanding: 4,
            rate: Some(2000.0),
            value_size: 100,
            session_timeout_ms: 30_000,
            buckets: 16,
        }
    }

    fn check(&self) -> io::Result<()> {
        let ok = !self.servers.is_empty()
            && (1..=SESSIONS_MAX).contains(&self.sessions)
            && (1..=OUTSTANDING_MAX).contains(&self.outstanding)
            && (1..=BUCKETS_MAX).contains(&self.buckets)
            && self.rate.is_none_or(|r| r.is_finite() && r > 0.0);
        if ok {
            Ok(())
        } else {
            Err(io::Error::other(format!("bad failover load: {self:?}")))
        }
    }
}

/// A create's identity: (session, sequence number).
pub type CreateId = (u32, u64);

/// The bucket directory of session `session`'s creates with `seq`.
pub fn bucket_dir(run_dir: &str, session: u32, seq: u64, buckets: usize) -> String {
    format!("{run_dir}/s{session}b{}", seq % buckets as u64)
}

/// The path of a create.
pub fn create_path(run_dir: &str, id: CreateId, buckets: usize) -> String {
    format!("{}/n{}", bucket_dir(run_dir, id.0, id.1, buckets), id.1)
}

/// What one session (and, merged, the whole load) recorded.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoadRecord {
    /// When each acknowledged create was acknowledged, ns since the start
    /// (sorted once merged).
    #[serde(skip)]
    pub ack_ns: Vec<u64>,
    #[serde(skip)]
    pub acked: Vec<CreateId>,
    /// In flight when a connection was lost: applied or not, unknown.
    #[serde(skip)]
    pub uncertain: Vec<CreateId>,
    pub acknowledged: u64,
    pub uncertain_count: u64,
    /// Error replies (not applied), by ZooKeeper error code.
    pub errors: BTreeMap<i32, u64>,
    /// Connections lost after the handshake.
    pub connections_lost: u64,
    /// Connection attempts that failed (refused, closed in the handshake,
    /// timed out).
    pub connect_failures: u64,
    /// Handshakes answered "expired": a new session was opened.
    pub sessions_expired: u64,
    /// Replies that did not match the head of the in-flight FIFO.
    pub protocol_errors: u64,
}

impl LoadRecord {
    fn merge(&mut self, other: LoadRecord) {
        self.ack_ns.extend(other.ack_ns);
        self.acked.extend(other.acked);
        self.uncertain.extend(other.uncertain);
        for (code, n) in other.errors {
            *self.errors.entry(code).or_insert(0) += n;
        }
        self.connections_lost += other.connections_lost;
        self.connect_failures += other.connect_failures;
        self.sessions_expired += other.sessions_expired;
        self.protocol_errors += other.protocol_errors;
    }
}

#[derive(Debug)]
struct Shared {
    start: Instant,
    stop: AtomicBool,
    acked: AtomicU64,
}

/// A running failover load; [`FailoverLoad::stop`] ends it.
#[derive(Debug)]
pub struct FailoverLoad {
    pub run_dir: String,
    pub config: FailoverConfig,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<LoadRecord>>,
}

impl FailoverLoad {
    /// Creates the run's directories through the first server, makes every
    /// other server catch up (sync), and starts the sessions.
    pub fn start(config: FailoverConfig, run_dir: String) -> io::Result<FailoverLoad> {
        config.check()?;
        let mut setup = SyncClient::connect(config.servers[0], Duration::from_secs(15))?;
        setup.ensure(crate::workload::ROOT, b"")?;
        setup.ensure(&run_dir, b"")?;
        let dirs: Vec<String> = (0..config.sessions as u32)
            .flat_map(|s| (0..config.buckets as u64).map(move |b| (s, b)))
            .map(|(s, b)| bucket_dir(&run_dir, s, b, config.buckets))
            .collect();
        let replies = setup.pipeline(dirs.len(), |i, xid, out| {
            wire::put_create(out, xid, &dirs[i], b"")
        })?;
        if let Some(r) = replies.iter().find(|r| r.err != 0) {
            return Err(io::Error::other(format!(
                "creating the failover directories: error {}",
                r.err
            )));
        }
        setup.close();
        for &server in &config.servers[1..] {
            let mut client = SyncClient::connect(server, Duration::from_secs(15))?;
            client.sync(&run_dir)?;
            client.close();
        }
        let shared = Arc::new(Shared {
            start: Instant::now(),
            stop: AtomicBool::new(false),
            acked: AtomicU64::new(0),
        });
        let value: Arc<[u8]> = (0..config.value_size)
            .map(|i| b'a' + (i % 26) as u8)
            .collect();
        let threads = (0..config.sessions)
            .map(|index| {
                let mut session = LoadSession::new(
                    &config,
                    index,
                    Arc::clone(&shared),
                    run_dir.clone(),
                    Arc::clone(&value),
                );
                std::thread::Builder::new()
                    .name(format!("failover-{index}"))
                    .spawn(move || session.run())
            })
            .collect::<io::Result<Vec<_>>>()?;
        Ok(FailoverLoad {
            run_dir,
            config,
            shared,
            threads,
        })
    }

    /// Acknowledged creates so far.
    pub fn acked(&self) -> u64 {
        self.shared.acked.load(Ordering::Relaxed)
    }

    /// Now, on the load's clock (ns since its start).
    pub fn now_ns(&self) -> u64 {
        self.shared.start.elapsed().as_nanos() as u64
    }

    /// Stops sending, waits for the replies in flight (bounded), closes the
    /// sessions and returns everything recorded, acknowledgements sorted.
    pub fn stop(self) -> LoadRecord {
        self.shared.stop.store(true, Ordering::Relaxed);
        let mut record = LoadRecord::default();
        for thread in self.threads {
            record.merge(thread.join().expect("failover session thread panicked"));
        }
        record.ack_ns.sort_unstable();
        record.acknowledged = record.acked.len() as u64;
        record.uncertain_count = record.uncertain.len() as u64;
        record
    }
}

#[derive(Debug)]
struct Connection {
    stream: TcpStream,
    input: Vec<u8>,
}

#[derive(Debug)]
struct LoadSession {
    index: u32,
    servers: Vec<SocketAddr>,
    server: usize,
    outstanding: usize,
    /// ns between this session's sends (paced), or `None` (closed loop).
    interval_ns: Option<u64>,
    next_send_ns: u64,
    timeout_ms: i32,
    negotiated_timeout_ms: i32,
    session_id: i64,
    password: Vec<u8>,
    last_zxid: i64,
    next_xid: i32,
    seq: u64,
    buckets: usize,
    in_flight: VecDeque<(i32, u64)>,
    last_send: Instant,
    conn: Option<Connection>,
    shared: Arc<Shared>,
    run_dir: String,
    value: Arc<[u8]>,
    record: LoadRecord,
    out: Vec<u8>,
    path: String,
}

impl LoadSession {
    fn new(
        config: &FailoverConfig,
        index: usize,
        shared: Arc<Shared>,
        run_dir: String,
        value: Arc<[u8]>,
    ) -> LoadSession {
        let interval_ns = config
            .rate
            .map(|r| (config.sessions as f64 * 1e9 / r).max(1.0) as u64);
        LoadSession {
            index: index as u32,
            servers: config.servers.clone(),
            server: index % config.servers.len(),
            outstanding: config.outstanding,
            interval_ns,
            // Spread the sessions' paced sends over one interval.
            next_send_ns: interval_ns.map_or(0, |i| i * index as u64 / config.sessions as u64),
            timeout_ms: config.session_timeout_ms,
            negotiated_timeout_ms: config.session_timeout_ms,
            session_id: 0,
            password: vec![0; 16],
            last_zxid: 0,
            next_xid: 1,
            seq: 0,
            buckets: config.buckets,
            in_flight: VecDeque::new(),
            last_send: Instant::now(),
            conn: None,
            shared,
            run_dir,
            value,
            record: LoadRecord::default(),
            out: Vec::new(),
            path: String::new(),
        }
    }

    fn now_ns(&self) -> u64 {
        self.shared.start.elapsed().as_nanos() as u64
    }

    fn stopping(&self) -> bool {
        self.shared.stop.load(Ordering::Relaxed)
    }

    fn run(&mut self) -> LoadRecord {
        let mut failed_in_round = 0;
        while !self.stopping() {
            if self.conn.is_none() {
                match self.connect() {
                    Ok(()) => failed_in_round = 0,
                    Err(_) => {
                        self.record.connect_failures += 1;
                        self.server = (self.server + 1) % self.servers.len();
                        failed_in_round += 1;
                        if failed_in_round >= self.servers.len() {
                            failed_in_round = 0;
                            std::thread::sleep(RETRY_PAUSE);
                        }
                    }
                }
                continue;
            }
            if let Err(e) = self.turn() {
                self.lose_connection(e);
            }
        }
        self.drain();
        std::mem::take(&mut self.record)
    }

    /// Connects to the current server and resumes (or opens) the session.
    fn connect(&mut self) -> io::Result<()> {
        let addr = self.servers[self.server];
        let mut stream = TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(CONNECT_TIMEOUT))?;
        stream.set_write_timeout(Some(CONNECT_TIMEOUT))?;
        let mut out = Vec::new();
        wire::put_reconnect(
            &mut out,
            self.timeout_ms,
            self.session_id,
            &self.password,
            self.last_zxid,
        );
        stream.write_all(&out)?;
        let mut length = [0u8; 4];
        stream.read_exact(&mut length)?;
        let length = i32::from_be_bytes(length);
        if !(0..=4096).contains(&length) {
            return Err(io::Error::other(format!(
                "handshake frame of {length} bytes"
            )));
        }
        let mut frame = vec![0; length as usize];
        stream.read_exact(&mut frame)?;
        let response = wire::decode_connect_response(&frame)
            .map_err(|e| io::Error::other(format!("handshake: {e}")))?;
        if response.timeout_ms <= 0 || response.session_id == 0 {
            if self.session_id != 0 {
                // Expired (or its password refused): a fresh session next.
                self.record.sessions_expired += 1;
                self.session_id = 0;
                self.password = vec![0; 16];
            }
            return Err(io::Error::other("session refused"));
        }
        self.session_id = response.session_id;
        self.password = response.password;
        self.negotiated_timeout_ms = response.timeout_ms;
        stream.set_read_timeout(Some(READ_SLICE))?;
        self.conn = Some(Connection {
            stream,
            input: Vec::with_capacity(READ_CHUNK),
        });
        self.last_send = Instant::now();
        Ok(())
    }

    /// Sends what is due, then reads what has arrived (blocking at most a
    /// read slice or until the next paced send).
    fn turn(&mut self) -> io::Result<()> {
        let now = self.now_ns();
        self.out.clear();
        while self.in_flight.len() < self.outstanding {
            if let Some(interval) = self.interval_ns {
                if self.next_send_ns > now {
                    break;
                }
                // Pace from now after an outage instead of sending its backlog.
                self.next_send_ns = self.next_send_ns.max(now.saturating_sub(interval)) + interval;
            }
            let xid = self.next_xid;
            self.next_xid = self.next_xid.wrapping_add(1).max(1);
            let seq = self.seq;
            self.seq += 1;
            self.path.clear();
            let _ = write!(
                self.path,
                "{}/n{seq}",
                bucket_dir(&self.run_dir, self.index, seq, self.buckets)
            );
            wire::put_create(&mut self.out, xid, &self.path, &self.value);
            self.in_flight.push_back((xid, seq));
        }
        let idle_ms = u128::try_from(self.negotiated_timeout_ms.max(3) / 3).unwrap_or(1000);
        if self.out.is_empty() && self.last_send.elapsed().as_millis() >= idle_ms {
            wire::put_ping(&mut self.out);
        }
        let wait = match self.interval_ns {
            Some(_) if self.in_flight.len() < self.outstanding => {
                Duration::from_nanos(self.next_send_ns.saturating_sub(self.now_ns()))
                    .clamp(Duration::from_micros(50), READ_SLICE)
            }
            _ => READ_SLICE,
        };
        let conn = self.conn.as_mut().expect("connected");
        if !self.out.is_empty() {
            conn.stream.write_all(&self.out)?;
            self.last_send = Instant::now();
        }
        conn.stream.set_read_timeout(Some(wait))?;
        self.read_replies()
    }

    /// Reads once (up to the read timeout) and handles every whole frame.
    fn read_replies(&mut self) -> io::Result<()> {
        let conn = self.conn.as_mut().expect("connected");
        let start = conn.input.len();
        conn.input.resize(start + READ_CHUNK, 0);
        let read = conn.stream.read(&mut conn.input[start..]);
        let n = match read {
            Ok(0) => {
                conn.input.truncate(start);
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed",
                ));
            }
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.input.truncate(start);
                return Ok(());
            }
            Err(e) => {
                conn.input.truncate(start);
                return Err(e);
            }
        };
        conn.input.truncate(start + n);
        let now = self.now_ns();
        let mut consumed = 0;
        let input = std::mem::take(&mut self.conn.as_mut().expect("connected").input);
        let result = loop {
            match wire::next_frame(&input[consumed..]) {
                Ok(Some((range, used))) => {
                    let frame = &input[consumed + range.start..consumed + range.end];
                    consumed += used;
                    if let Err(e) = self.on_frame(frame, now) {
                        break Err(e);
                    }
                }
                Ok(None) => break Ok(()),
                Err(e) => break Err(io::Error::other(format!("bad frame length {}", e.0))),
            }
        };
        if let Some(conn) = self.conn.as_mut() {
            conn.input = input;
            conn.input.drain(..consumed);
        }
        result
    }

    fn on_frame(&mut self, frame: &[u8], now_ns: u64) -> io::Result<()> {
        let header = wire::decode_reply_header(frame)
            .map_err(|e| io::Error::other(format!("reply header: {e}")))?;
        if header.zxid > 0 {
            self.last_zxid = self.last_zxid.max(header.zxid);
        }
        if header.xid < 0 {
            return Ok(()); // ping reply or watch notification
        }
        match self.in_flight.front() {
            Some(&(xid, seq)) if xid == header.xid => {
                self.in_flight.pop_front();
                if header.err == 0 {
                    self.record.ack_ns.push(now_ns);
                    self.record.acked.push((self.index, seq));
                    self.shared.acked.fetch_add(1, Ordering::Relaxed);
                } else {
                    *self.record.errors.entry(header.err).or_insert(0) += 1;
                }
                Ok(())
            }
            _ => {
                self.record.protocol_errors += 1;
                Err(io::Error::other(format!(
                    "reply xid {} out of order",
                    header.xid
                )))
            }
        }
    }

    /// The connection is gone: what was in flight is uncertain; the next
    /// attempt goes to the next server.
    fn lose_connection(&mut self, _why: io::Error) {
        self.conn = None;
        self.record.connections_lost += 1;
        for (_, seq) in self.in_flight.drain(..) {
            self.record.uncertain.push((self.index, seq));
        }
        self.server = (self.server + 1) % self.servers.len();
    }

    /// After stop: waits (bounded) for the replies in flight, then closes.
    fn drain(&mut self) {
        let deadline = Instant::now() + DRAIN_TIMEOUT;
        while self.conn.is_some() && !self.in_flight.is_empty() && Instant::now() < deadline {
            if let Err(e) = self
                .conn
                .as_mut()
                .expect("connected")
                .stream
                .set_read_timeout(Some(READ_SLICE))
                .and_then(|()| self.read_replies())
            {
                self.lose_connection(e);
            }
        }
        for (_, seq) in self.in_flight.drain(..) {
            self.record.uncertain.push((self.index, seq));
        }
        if let Some(mut conn) = self.conn.take() {
            let mut out = Vec::new();
            wire::put_close_session(&mut out, self.next_xid);
            let _ = conn.stream.write_all(&out);
            let _ = conn
                .stream
                .set_read_timeout(Some(Duration::from_millis(500)));
            let mut reply = [0u8; 64];
            let _ = conn.stream.read(&mut reply);
        }
    }
}

/// What one server holds of the load's creates.
#[derive(Debug, Clone, Serialize)]
pub struct ServerCheck {
    pub server: SocketAddr,
    /// Acknowledged creates present.
    pub acked_present: u64,
    /// Acknowledged creates missing: lost writes.
    pub acked_missing: u64,
    /// A few of the missing paths.
    pub missing_examples: Vec<String>,
    /// Uncertain creates that were applied after all.
    pub uncertain_present: u64,
    /// Znodes in the buckets that the load never sent (must be 0).
    pub unknown_present: u64,
}

/// Reads every bucket from every server, after a sync, and checks that each
/// acknowledged create is there. `retry_for` bounds the time a server gets to
/// accept the checking session.
pub fn verify(
    servers: &[SocketAddr],
    run_dir: &str,
    config: &FailoverConfig,
    record: &LoadRecord,
    retry_for: Duration,
) -> io::Result<Vec<ServerCheck>> {
    let acked: HashSet<CreateId> = record.acked.iter().copied().collect();
    let uncertain: HashSet<CreateId> = record.uncertain.iter().copied().collect();
    let mut checks = Vec::new();
    for &server in servers {
        let deadline = Instant::now() + retry_for;
        let mut client = loop {
            match SyncClient::connect(server, Duration::from_secs(5)) {
                Ok(client) => break client,
                Err(e) if Instant::now() > deadline => {
                    return Err(io::Error::other(format!("verifying through {server}: {e}")))
                }
                Err(_) => std::thread::sleep(Duration::from_millis(100)),
            }
        };
        client.sync(run_dir)?;
        let mut present: HashSet<CreateId> = HashSet::new();
        for session in 0..config.sessions as u32 {
            for bucket in 0..config.buckets as u64 {
                let dir = bucket_dir(run_dir, session, bucket, config.buckets);
                let names = client.get_children(&dir)?.unwrap_or_default();
                present.extend(
                    names
                        .iter()
                        .filter_map(|n| n.strip_prefix('n')?.parse::<u64>().ok())
                        .map(|seq| (session, seq)),
                );
            }
        }
        client.close();
        let missing: Vec<CreateId> = record
            .acked
            .iter()
            .copied()
            .filter(|id| !present.contains(id))
            .collect();
        checks.push(ServerCheck {
            server,
            acked_present: (record.acked.len() - missing.len()) as u64,
            acked_missing: missing.len() as u64,
            missing_examples: missing
                .iter()
                .take(5)
                .map(|&id| create_path(run_dir, id, config.buckets))
                .collect(),
            uncertain_present: present.iter().filter(|id| uncertain.contains(id)).count() as u64,
            unknown_present: present
                .iter()
                .filter(|id| !acked.contains(id) && !uncertain.contains(id))
                .count() as u64,
        });
    }
    Ok(checks)
}

/// The longest interval between consecutive acknowledgements that belongs
/// to the window `(from_ns, to_ns]`: every interval that *ends* in it — the
/// one spanning `from_ns` (from the last acknowledgement at or before it)
/// included, the one spanning `to_ns` not (it belongs to the next window).
/// `acks` is sorted. Returns `(start, end)` of the longest; `None` when
/// nothing was acknowledged at or before `from_ns`, or nothing in the window
/// (writes never resumed).
pub fn longest_gap(acks: &[u64], from_ns: u64, to_ns: u64) -> Option<(u64, u64)> {
    assert!(from_ns <= to_ns, "window ends before it starts");
    let first_after = acks.partition_point(|&t| t <= from_ns);
    let before = first_after.checked_sub(1)?;
    let end = acks.partition_point(|&t| t <= to_ns);
    if end <= first_after {
        return None;
    }
    acks[before..end]
        .windows(2)
        .map(|w| (w[0], w[1]))
        .max_by_key(|(a, b)| b - a)
}

/// The first acknowledgement after `t_ns`.
pub fn first_ack_after(acks: &[u64], t_ns: u64) -> Option<u64> {
    acks.get(acks.partition_point(|&t| t <= t_ns)).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A window's intervals are those ending in it: the one across the kill
    /// is in, the one across the next kill is not; no acks on either side
    /// of the kill means no gap.
    #[test]
    fn longest_gap_takes_the_intervals_ending_in_the_window() {
        let acks = [10, 20, 30, 100, 110, 400, 410, 420];
        // Kill at 35, next kill at 405: 110 -> 400 ends inside.
        assert_eq!(longest_gap(&acks, 35, 405), Some((110, 400)));
        // Next kill at 390: 110 -> 400 belongs to it; 30 -> 100 is the longest here.
        assert_eq!(longest_gap(&acks, 35, 390), Some((30, 100)));
        assert_eq!(longest_gap(&acks, 390, u64::MAX), Some((110, 400)));
        // Kill at 30 exactly: the ack at 30 counts as before.
        assert_eq!(longest_gap(&acks, 30, 50), None);
        assert_eq!(longest_gap(&acks, 30, 100), Some((30, 100)));
        // Nothing acknowledged after the kill.
        assert_eq!(longest_gap(&acks, 420, u64::MAX), None);
        // Nothing acknowledged before it.
        assert_eq!(longest_gap(&acks, 5, 50), None);
        assert_eq!(first_ack_after(&acks, 30), Some(100));
        assert_eq!(first_ack_after(&acks, 420), None);
    }

    #[test]
    fn paths_name_session_bucket_and_sequence() {
        assert_eq!(
            create_path("/fkbench/run-x", (3, 37), 16),
            "/fkbench/run-x/s3b5/n37"
        );
    }
}
