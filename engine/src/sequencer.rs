//! The sequencer: the one place where requests are ordered.
//!
//! It owns the data tree, the session table and every connection's reply
//! queue. Writes are prepared against the tree as it will be after all
//! in-flight txns (`DataTree::prepare`), given the next zxid, and handed to
//! the log stage in batches; when the log reports them durable they are
//! applied in zxid order, their watch events go out, and their replies are
//! released. Reads are answered from the applied tree at once, unless the
//! same connection has an earlier request still waiting — replies leave each
//! connection in request order (ZooKeeper's FIFO client order).
//!
//! ```text
//!            ┌── read ───────────────────────────────┐
//! request ──▶│                                        ▼
//!            └── write ─▶ prepare ─▶ batch ─▶ log ─▶ apply ─▶ events, replies
//!                         (zxid n)          (durable ≤ n)
//! ```
//!
//! Invariant: `zxid_applied ≤ zxid_durable ≤ zxid_prepared`, and every
//! in-flight txn has `zxid_applied < zxid ≤ zxid_prepared`.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proto::ops::{encode_notification, encode_reply, Request, Response};
use proto::{ConnectRequest, ConnectResponse, ErrorCode, Id, OpCode, Record, WatcherEvent, Writer};
use tracing::{info, warn};
use tree::watch::WatchEvent;
use tree::{DataTree, HashMap, Txn, TxnHeader};

use crate::config::Config;
use crate::log_stage::{
    LogBatch, LogHandle, LogRecord, LogReport, BATCH_BYTES_MAX, BATCH_RECORDS_MAX,
};
use crate::messages::{ConnId, OutFrame, ToSequencer};
use crate::requests::{self, ReplyShape};
use crate::session::{initial_session_id, session_password, PASSWORD_LENGTH};
use crate::stats::Stats;
use crate::storage::{SnapshotSchedule, SnapshotThread};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

/// After a snapshot that took `d`, the next one waits until `d * factor` has passed.
const SNAPSHOT_GAP_FACTOR: u32 = 2;

/// Messages handled per wake-up before the batch goes to the log, so one busy
/// inbox cannot starve the log of work.
const INBOX_DRAIN_MAX: usize = 4096;

/// A request waiting in its connection's queue for its turn to be answered.
#[derive(Debug)]
pub enum Pending {
    /// The reply is built; it leaves when it reaches the front.
    Ready(Vec<u8>),
    /// A read, answered from the tree when it reaches the front.
    Read {
        xid: i32,
        op: OpCode,
        request: Request,
        received: Instant,
    },
    /// A write in flight; becomes `Ready` when its txn is applied.
    Write { zxid: i64 },
    /// `sync`: answered once everything prepared before it is applied.
    Sync {
        xid: i32,
        path: String,
        zxid: i64,
        received: Instant,
    },
    /// The handshake of a new session, answered when its CreateSession txn is applied.
    Connecting { zxid: i64 },
    /// Close the connection once everything before this is written.
    Close,
}

/// One client connection as the sequencer sees it.
#[derive(Debug)]
pub struct Connection {
    pub peer: SocketAddr,
    pub outbox: async_channel::Sender<OutFrame>,
    pub session_id: i64,
    /// Every identity this connection has authenticated as, `ip:<address>` first.
    pub auth: Vec<Id>,
    pub queue: VecDeque<Pending>,
    /// Whether the handshake used the 37-byte ConnectResponse form.
    pub read_only_flag: Option<bool>,
    pub timeout_ms: i32,
    pub received: u64,
    pub sent: u64,
    pub last_zxid: i64,
    /// Set once the connection is being closed; later requests are dropped.
    pub closing: bool,
    /// Frames produced this turn, sent as one batch when the turn ends.
    pub out: Vec<u8>,
    pub out_replies: usize,
}

/// A session as the server tracks it (the tree holds the durable part).
#[derive(Debug)]
pub struct Session {
    pub timeout_ms: i32,
    pub last_active: Instant,
    pub conn: Option<ConnId>,
    /// A CloseSession txn for it is in flight; it accepts nothing more.
    pub closing: bool,
}

/// Where a txn came from, so its reply can find its way back.
#[derive(Debug)]
enum Origin {
    Client {
        conn: ConnId,
        xid: i32,
        shape: ReplyShape,
        received: Instant,
    },
    Connect {
        conn: ConnId,
    },
    /// Session expiry, the container reaper: nobody waits for a reply.
    Server,
}

#[derive(Debug)]
struct InFlight {
    header: TxnHeader,
    txn: Txn,
    origin: Origin,
}

pub struct Sequencer {
    pub(crate) config: Rc<Config>,
    pub(crate) tree: DataTree,
    pub(crate) conns: HashMap<ConnId, Connection>,
    pub(crate) sessions: HashMap<i64, Session>,
    pub(crate) stats: Stats,
    next_session_id: i64,
    zxid_prepared: i64,
    zxid_durable: i64,
    in_flight: VecDeque<InFlight>,
    /// Txns prepared but not yet handed to the log.
    batch: Vec<LogRecord>,
    batch_bytes: usize,
    log_busy: bool,
    log_failed: bool,
    log: LogHandle,
    /// Connections whose queue front is a `sync` waiting for the applied zxid.
    sync_waiters: Vec<ConnId>,
    last_reap: Instant,
    last_purge: Instant,
    /// When the next snapshot is due.
    snapshots: SnapshotSchedule,
    /// The snapshot being written, and how far the tree walk has got.
    snapshot: Option<(SnapshotThread, tree::SnapshotCursor)>,
    /// The next batch starts a new log segment (a snapshot began).
    roll_pending: bool,
    /// No snapshot starts before this (see `start_snapshot`).
    snapshot_allowed_at: Instant,
    random: SmallRng,
    /// Connections with output waiting for the end of the turn.
    dirty: Vec<ConnId>,
    /// The time at the start of this turn (one clock read per turn, not per
    /// request), monotonic and as wall-clock milliseconds for txn headers.
    pub(crate) clock: Instant,
    pub(crate) clock_ms: i64,
}

impl std::fmt::Debug for Sequencer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequencer")
            .field("zxid_prepared", &self.zxid_prepared)
            .field("zxid_durable", &self.zxid_durable)
            .field("connections", &self.conns.len())
            .finish_non_exhaustive()
    }
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Sequencer {
    pub fn new(config: Rc<Config>, mut tree: DataTree, log: LogHandle) -> Self {
        let zxid = tree.last_processed_zxid();
        tree.set_txn_bytes_max(config.txn_bytes_max());
        let mut random = SmallRng::from_entropy();
        let snapshots =
            SnapshotSchedule::new(config.snap_count, config.snap_size_limit_kb, random.gen());
        let now = Instant::now();
        // Sessions recovered with the tree get a full timeout to reconnect.
        let sessions = tree
            .sessions()
            .map(|(id, timeout_ms)| {
                (
                    id,
                    Session {
                        timeout_ms,
                        last_active: now,
                        conn: None,
                        closing: false,
                    },
                )
            })
            .collect();
        Self {
            next_session_id: initial_session_id(0, now_ms()),
            config,
            tree,
            conns: HashMap::default(),
            sessions,
            stats: Stats::default(),
            zxid_prepared: zxid,
            zxid_durable: zxid,
            in_flight: VecDeque::new(),
            batch: Vec::new(),
            batch_bytes: 0,
            log_busy: false,
            log_failed: false,
            log,
            sync_waiters: Vec::new(),
            last_reap: now,
            last_purge: now,
            snapshots,
            snapshot: None,
            roll_pending: false,
            snapshot_allowed_at: now,
            random,
            dirty: Vec::new(),
            clock: now,
            clock_ms: now_ms(),
        }
    }

    pub fn zxid_applied(&self) -> i64 {
        self.tree.last_processed_zxid()
    }

    pub fn outstanding(&self) -> usize {
        self.conns.values().map(|c| c.queue.len()).sum()
    }

    /// Runs until the inbox closes.
    pub async fn run(mut self, inbox: async_channel::Receiver<ToSequencer>) {
        let tick = Duration::from_millis(u64::from(self.config.tick_time_ms.clamp(10, 1000)) / 2);
        let reports = self.log.reports.clone();
        // Ticks are due by the clock, not by idleness: a busy inbox must not
        // starve session expiry and the reaper.
        let mut next_tick = Instant::now() + tick;
        loop {
            let now = Instant::now();
            self.clock = now;
            self.clock_ms = now_ms();
            if now >= next_tick {
                self.on_tick();
                next_tick = now + tick;
            }
            let mut until_tick = next_tick - now;
            if self.snapshot_in_progress() {
                until_tick = until_tick.min(Duration::from_millis(1));
            }
            enum Wake {
                Log(LogReport),
                Inbox(ToSequencer),
                Tick,
                Stop,
            }
            // The log first: applying releases replies and frees the log for the next batch.
            let wake = futures_lite::future::or(
                async {
                    match reports.recv().await {
                        Ok(report) => Wake::Log(report),
                        // The log task ended (after reporting its failure):
                        // keep serving reads; writes are refused already.
                        Err(_) => futures_lite::future::pending().await,
                    }
                },
                futures_lite::future::or(
                    async { inbox.recv().await.map_or(Wake::Stop, Wake::Inbox) },
                    async {
                        glommio::timer::sleep(until_tick).await;
                        Wake::Tick
                    },
                ),
            )
            .await;
            match wake {
                Wake::Log(report) => self.on_log_report(report),
                Wake::Inbox(message) => {
                    self.on_message(message);
                    for _ in 0..INBOX_DRAIN_MAX {
                        let Ok(message) = inbox.try_recv() else { break };
                        self.on_message(message);
                        if self.batch.len() >= BATCH_RECORDS_MAX
                            || self.batch_bytes >= BATCH_BYTES_MAX
                        {
                            break;
                        }
                    }
                }
                Wake::Tick => {}
                Wake::Stop => return,
            }
            self.pump_snapshot();
            self.submit_batch();
            self.flush_outputs();
        }
    }

    fn on_message(&mut self, message: ToSequencer) {
        match message {
            ToSequencer::Connect {
                conn,
                peer,
                request,
                outbox,
            } => self.on_connect(conn, peer, request, outbox),
            ToSequencer::Requests { conn, requests } => {
                self.stats.packets_received += requests.len() as u64;
                if let Some(c) = self.conns.get_mut(&conn) {
                    c.received += requests.len() as u64;
                }
                for request in requests {
                    requests::on_request(self, conn, request.xid, request.op, request.body);
                }
                self.drain(conn);
            }
            ToSequencer::Closed { conn } => self.on_closed(conn),
            ToSequencer::FourLetterWord { word, peer, reply } => {
                info!(%peer, word, "four-letter word");
                let enabled = self.config.four_letter_word_enabled(&word);
                let text = crate::fourlw::render(&word, enabled, &self.four_letter_snapshot());
                let _ = reply.try_send(text);
            }
        }
    }

    // ----- sessions and connections -------------------------------------------------

    fn on_connect(
        &mut self,
        conn: ConnId,
        peer: SocketAddr,
        request: ConnectRequest,
        outbox: async_channel::Sender<OutFrame>,
    ) {
        let timeout_ms = self.config.negotiate_session_timeout(request.timeout_ms);
        let mut connection = Connection {
            peer,
            outbox,
            session_id: 0,
            auth: vec![Id::new("ip", peer.ip().to_string())],
            queue: VecDeque::new(),
            read_only_flag: request.read_only,
            timeout_ms,
            received: 0,
            sent: 0,
            last_zxid: 0,
            closing: false,
            out: Vec::new(),
            out_replies: 0,
        };
        if request.last_zxid_seen > self.zxid_applied() {
            warn!(%peer, client_zxid = format!("0x{:x}", request.last_zxid_seen),
                server_zxid = format!("0x{:x}", self.zxid_applied()),
                "refusing session: client has seen a newer zxid than this server; it must try another server");
            let _ = connection.outbox.try_send(OutFrame::Close);
            return;
        }
        if request.session_id != 0 {
            self.reconnect(conn, connection, &request);
            return;
        }
        if self.log_failed {
            warn!(%peer, "refusing new session: the log has failed");
            let _ = connection.outbox.try_send(OutFrame::Close);
            return;
        }
        let session_id = self.next_session_id;
        self.next_session_id += 1;
        connection.session_id = session_id;
        self.sessions.insert(
            session_id,
            Session {
                timeout_ms,
                last_active: Instant::now(),
                conn: Some(conn),
                closing: false,
            },
        );
        let op = tree::WriteOp::CreateSession { timeout_ms };
        let auth = connection.auth.clone();
        self.conns.insert(conn, connection);
        match self.prepare(session_id, 0, &auth, &op) {
            Ok(zxid) => {
                info!(%peer, session = format!("0x{session_id:x}"), timeout_ms, "new session");
                self.attach(zxid, Origin::Connect { conn });
                self.conns
                    .get_mut(&conn)
                    .expect("inserted above")
                    .queue
                    .push_back(Pending::Connecting { zxid });
            }
            Err(err) => {
                warn!(%peer, ?err, "could not create a session");
                self.sessions.remove(&session_id);
                self.close_conn(conn);
            }
        }
    }

    fn reconnect(&mut self, conn: ConnId, mut connection: Connection, request: &ConnectRequest) {
        let session_id = request.session_id;
        let peer = connection.peer;
        let password_ok = request.password == session_password(session_id);
        let live = self.sessions.get(&session_id).is_some_and(|s| !s.closing);
        // ZooKeeper closes the session's current connection before it checks
        // the password (processConnectRequest); the session itself survives.
        if let Some(old) = self
            .sessions
            .get_mut(&session_id)
            .and_then(|s| s.conn.take())
        {
            info!(session = format!("0x{session_id:x}"), %peer,
                "closing the session's current connection: a client reconnects to it");
            self.close_conn(old);
            self.tree.watches.remove_session(session_id);
        }
        if !live || !password_ok {
            info!(%peer, session = format!("0x{session_id:x}"), password_ok,
                "reconnect refused: session expired, unknown or wrong password");
            let response = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                password: vec![0; PASSWORD_LENGTH],
                read_only: request.read_only.map(|_| false),
            };
            let _ = connection.outbox.try_send(OutFrame::Frames {
                bytes: frame_of(&response),
                replies: 1,
            });
            let _ = connection.outbox.try_send(OutFrame::Close);
            return;
        }
        let session = self
            .sessions
            .get_mut(&session_id)
            .expect("checked live above");
        session.last_active = Instant::now();
        session.timeout_ms = connection.timeout_ms;
        session.conn = Some(conn);
        connection.session_id = session_id;
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: connection.timeout_ms,
            session_id,
            password: session_password(session_id).to_vec(),
            read_only: request.read_only.map(|_| false),
        };
        info!(%peer, session = format!("0x{session_id:x}"), "session reconnected");
        connection
            .queue
            .push_back(Pending::Ready(frame_of(&response)));
        self.conns.insert(conn, connection);
        self.drain(conn);
    }

    fn on_closed(&mut self, conn: ConnId) {
        let Some(connection) = self.conns.remove(&conn) else {
            return;
        };
        if let Some(session) = self.sessions.get_mut(&connection.session_id) {
            if session.conn == Some(conn) {
                session.conn = None;
                // Watches live with the connection, as ZooKeeper's do: the
                // client re-registers them with setWatches when it reconnects.
                self.tree.watches.remove_session(connection.session_id);
            }
        }
        self.sync_waiters.retain(|c| *c != conn);
    }

    /// Asks a connection to close after what is queued; it reports `Closed` back.
    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        self.flush_output(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.closing = true;
            let _ = c.outbox.try_send(OutFrame::Close);
        }
    }

    fn on_tick(&mut self) {
        let now = Instant::now();
        let expired: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(_, s)| {
                !s.closing
                    && now.duration_since(s.last_active)
                        > Duration::from_millis(s.timeout_ms as u64)
            })
            .map(|(id, _)| *id)
            .collect();
        for session_id in expired {
            let session = self.sessions.get_mut(&session_id).expect("listed above");
            info!(
                session = format!("0x{session_id:x}"),
                timeout_ms = session.timeout_ms,
                "expiring session: timeout exceeded"
            );
            session.closing = true;
            if let Some(conn) = session.conn.take() {
                self.close_conn(conn);
            }
            if let Err(err) = self.prepare(session_id, 0, &[], &tree::WriteOp::CloseSession) {
                warn!(
                    session = format!("0x{session_id:x}"),
                    ?err,
                    "could not expire session"
                );
            }
        }
        self.reap(now);
        self.autopurge(now);
    }

    /// Every autopurge.purgeInterval hours (0 = never), keeps the newest
    /// autopurge.snapRetainCount snapshots and the log they need, on a thread
    /// of its own (blocking file I/O).
    fn autopurge(&mut self, now: Instant) {
        let hours = u64::from(self.config.autopurge_purge_interval_hours);
        if hours == 0 || now.duration_since(self.last_purge) < Duration::from_secs(hours * 3600) {
            return;
        }
        self.last_purge = now;
        let (data_dir, log_dir) = (
            self.config.data_dir.clone(),
            self.config.data_log_dir.clone(),
        );
        let retain = (self.config.autopurge_snap_retain_count as usize).max(wal::RETAIN_COUNT_MIN);
        let spawned = std::thread::Builder::new()
            .name("fk-purge".into())
            .spawn(move || match wal::purge(&data_dir, &log_dir, retain) {
                Ok(report) => info!(
                    snapshots_removed = report.snapshots_removed.len(),
                    segments_removed = report.segments_removed.len(),
                    segments_recycled = report.segments_recycled.len(),
                    "autopurge done"
                ),
                Err(err) => warn!(%err, "autopurge failed"),
            });
        if let Err(err) = spawned {
            warn!(%err, "cannot start the autopurge thread");
        }
    }

    /// Deletes empty containers and expired TTL nodes (ZooKeeper's ContainerManager).
    fn reap(&mut self, now: Instant) {
        const REAP_PER_PASS_MAX: usize = 1000;
        if now.duration_since(self.last_reap)
            < Duration::from_millis(self.config.container_check_interval_ms)
        {
            return;
        }
        self.last_reap = now;
        for path in self.tree.reap_candidates(now_ms(), REAP_PER_PASS_MAX) {
            let op = tree::WriteOp::DeleteContainer { path: path.clone() };
            if self.prepare(0, 0, &[Id::new("super", "")], &op).is_ok() {
                info!(path, "reaping empty container or expired TTL node");
            }
        }
    }

    // ----- the write path -----------------------------------------------------------

    /// Prepares a write as the next txn; on success it is the last entry of
    /// the current batch and must be attached to an origin at once.
    pub(crate) fn prepare(
        &mut self,
        session_id: i64,
        cxid: i32,
        auth: &[Id],
        op: &tree::WriteOp,
    ) -> Result<i64, tree::PrepareError> {
        if self.log_failed {
            return Err(tree::PrepareError::Op(ErrorCode::SystemError));
        }
        let zxid = self.zxid_prepared + 1;
        let time_ms = self.clock_ms;
        let caller = tree::Caller { session_id, auth };
        let txn = match self.tree.prepare(&caller, op, zxid) {
            Err(tree::PrepareError::Op(ErrorCode::BadArguments))
                if *op == tree::WriteOp::CloseSession =>
            {
                // Too many ephemerals for one txn: delete them one by one first.
                self.shed_ephemerals(session_id, cxid, auth);
                let zxid = self.zxid_prepared + 1;
                self.tree.prepare(&caller, op, zxid)?
            }
            result => result?,
        };
        Ok(self.enqueue(session_id, cxid, time_ms, txn))
    }

    /// Logs a write that prepare refused, so that its reply carries a zxid of
    /// its own and leaves in order after the log, as ZooKeeper's error txns.
    pub(crate) fn prepare_refusal(
        &mut self,
        session_id: i64,
        cxid: i32,
        codes: &[ErrorCode],
    ) -> Option<i64> {
        if self.log_failed {
            return None;
        }
        let codes = codes.iter().map(|code| code.code()).collect();
        Some(self.enqueue(session_id, cxid, self.clock_ms, Txn::Failed { codes }))
    }

    /// Gives a prepared txn the next zxid and puts it in the current batch;
    /// nobody waits for it until `attach`.
    fn enqueue(&mut self, session_id: i64, cxid: i32, time_ms: i64, txn: Txn) -> i64 {
        let zxid = self.zxid_prepared + 1;
        self.zxid_prepared = zxid;
        let header = TxnHeader {
            session_id,
            cxid,
            zxid,
            time_ms,
        };
        let payload = tree::encode_record(&header, &txn);
        self.batch_bytes += payload.len();
        self.batch.push(LogRecord { zxid, payload });
        self.in_flight.push_back(InFlight {
            header,
            txn,
            origin: Origin::Server,
        });
        zxid
    }

    // ----- snapshots ------------------------------------------------------------------

    /// Starts a fuzzy snapshot (unless one is still being written: ZooKeeper's
    /// "Too busy to snap") and rolls the log so older segments can go whole.
    fn start_snapshot(&mut self) {
        if let Some((thread, _)) = &self.snapshot {
            warn!(
                zxid = format!("0x{:x}", thread.zxid()),
                "too busy to snapshot: the previous snapshot is still being written; skipping"
            );
            self.snapshots.restart(self.random.gen());
            return;
        }
        // Under a heavy write load the count rule would snapshot back to back;
        // leave the sequencer free at least twice as long as the last
        // snapshot took (the log keeps everything meanwhile).
        if self.clock < self.snapshot_allowed_at {
            return;
        }
        let (header, cursor) = self.tree.snapshot_begin();
        let zxid = cursor.zxid();
        match SnapshotThread::start(self.config.data_dir.clone(), zxid) {
            Ok(thread) => {
                thread.push(header);
                self.snapshot = Some((thread, cursor));
                self.roll_pending = true;
                self.snapshots.restart(self.random.gen());
                info!(zxid = format!("0x{zxid:x}"), "snapshot started");
            }
            Err(err) => tracing::error!(%err, "cannot start the snapshot thread"),
        }
    }

    /// Feeds the snapshot thread a few chunks of the tree walk (bounded, so
    /// requests wait at most that long) and notices when it has finished.
    fn pump_snapshot(&mut self) {
        const CHUNK_BYTES: usize = 64 * 1024;
        const CHUNKS_PER_TURN: usize = 1;
        let Some((thread, cursor)) = &mut self.snapshot else {
            return;
        };
        for _ in 0..CHUNKS_PER_TURN {
            if cursor.is_done() || !thread.has_room() {
                break;
            }
            thread.push(self.tree.snapshot_chunk(cursor, CHUNK_BYTES));
            if cursor.is_done() {
                thread.end();
            }
        }
        let Some((result, elapsed)) = thread.poll_done() else {
            return;
        };
        self.snapshot_allowed_at = self.clock + elapsed * SNAPSHOT_GAP_FACTOR;
        match result {
            Ok(written) => info!(file = %written.file, bytes = written.body_bytes,
                elapsed_ms = elapsed.as_millis() as u64, "snapshot written"),
            Err(err) => {
                tracing::error!(%err, "snapshot failed; the log keeps everything, the next one will retry")
            }
        }
        self.snapshot = None;
    }

    /// Whether the loop should come back soon to feed a snapshot.
    fn snapshot_in_progress(&self) -> bool {
        self.snapshot.is_some()
    }

    /// Prepares the deletion of every ephemeral a closing session owns, each
    /// in a txn of its own (one CloseSession txn could exceed the log's
    /// record bound; ZooKeeper's would exceed jute.maxbuffer).
    fn shed_ephemerals(&mut self, session_id: i64, cxid: i32, auth: &[Id]) {
        let paths = self.tree.get_ephemerals(session_id, "/");
        warn!(
            session = format!("0x{session_id:x}"),
            ephemerals = paths.len(),
            "closing a session with too many ephemerals for one txn: deleting them one by one"
        );
        for path in paths {
            // A path already being deleted fails here, harmlessly.
            let _ = self.prepare(
                session_id,
                cxid,
                auth,
                &tree::WriteOp::DeleteEphemeral { path },
            );
        }
    }

    /// Names who waits for the txn just prepared (prepared txns start as
    /// `Origin::Server`: nobody waits).
    fn attach(&mut self, zxid: i64, origin: Origin) {
        let last = self
            .in_flight
            .back_mut()
            .expect("attach right after prepare");
        assert_eq!(last.header.zxid, zxid, "attach must follow its own prepare");
        last.origin = origin;
    }

    pub(crate) fn attach_client(
        &mut self,
        conn: ConnId,
        xid: i32,
        shape: ReplyShape,
        zxid: i64,
        received: Instant,
    ) {
        self.attach(
            zxid,
            Origin::Client {
                conn,
                xid,
                shape,
                received,
            },
        );
    }

    pub(crate) fn register_sync(
        &mut self,
        conn: ConnId,
        xid: i32,
        path: String,
        received: Instant,
    ) {
        let zxid = self.zxid_prepared;
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Pending::Sync {
                xid,
                path,
                zxid,
                received,
            });
            self.sync_waiters.push(conn);
        }
    }

    fn submit_batch(&mut self) {
        if self.log_busy || self.batch.is_empty() {
            return;
        }
        let batch = LogBatch {
            records: std::mem::take(&mut self.batch),
            roll_first: std::mem::take(&mut self.roll_pending),
        };
        self.batch_bytes = 0;
        match self.log.to_log.try_send(batch) {
            Ok(()) => self.log_busy = true,
            Err(err) => {
                // The log takes one batch at a time and is idle here, so a full or
                // closed channel means the log task is gone.
                self.batch = err.into_inner().records;
                self.on_log_report(LogReport::Failed {
                    reason: "log stage stopped".into(),
                });
            }
        }
    }

    fn on_log_report(&mut self, report: LogReport) {
        self.log_busy = false;
        match report {
            LogReport::Durable {
                zxid,
                records,
                record_bytes,
                sync_time,
            } => {
                self.stats
                    .record_sync(sync_time, self.config.fsync_warning_threshold_ms);
                assert!(
                    zxid > self.zxid_durable && zxid <= self.zxid_prepared,
                    "durable zxid out of order"
                );
                self.zxid_durable = zxid;
                while self
                    .in_flight
                    .front()
                    .is_some_and(|t| t.header.zxid <= zxid)
                {
                    let txn = self.in_flight.pop_front().expect("checked non-empty");
                    self.apply(txn);
                }
                self.release_syncs();
                if self.snapshots.logged(records as u64, record_bytes) {
                    self.start_snapshot();
                }
            }
            LogReport::Failed { reason } => {
                if !self.log_failed {
                    tracing::error!(reason, "the log failed: refusing all writes from now on");
                }
                self.log_failed = true;
                self.batch.clear();
                // Writes in flight were never acknowledged; their clients get an error.
                let failed: Vec<InFlight> = self.in_flight.drain(..).collect();
                self.tree.discard_pending();
                self.zxid_prepared = self.zxid_applied();
                for txn in failed {
                    if let Origin::Client { conn, xid, .. } = txn.origin {
                        let frame =
                            encode_reply(xid, self.zxid_applied(), ErrorCode::SystemError, None);
                        self.complete(conn, txn.header.zxid, frame);
                    }
                }
            }
        }
    }

    fn apply(&mut self, in_flight: InFlight) {
        let InFlight {
            header,
            txn,
            origin,
        } = in_flight;
        let applied = self.tree.apply(&header, &txn);
        self.deliver(&applied.events);
        match origin {
            Origin::Client {
                conn,
                xid,
                shape,
                received,
            } => {
                let frame = requests::write_reply(xid, header.zxid, &shape, &applied.result);
                self.stats
                    .record_latency(self.clock.saturating_duration_since(received));
                self.complete(conn, header.zxid, frame);
                if shape.op == OpCode::CloseSession {
                    self.finish_session(header.session_id);
                }
            }
            Origin::Connect { conn } => {
                let Some(c) = self.conns.get_mut(&conn) else {
                    return;
                };
                let response = ConnectResponse {
                    protocol_version: 0,
                    timeout_ms: c.timeout_ms,
                    session_id: header.session_id,
                    password: session_password(header.session_id).to_vec(),
                    read_only: c.read_only_flag.map(|_| false),
                };
                if let Some(slot) = c
                    .queue
                    .iter_mut()
                    .find(|p| matches!(p, Pending::Connecting { zxid } if *zxid == header.zxid))
                {
                    *slot = Pending::Ready(frame_of(&response));
                }
                self.drain(conn);
            }
            Origin::Server => {
                if matches!(txn, Txn::CloseSession { .. }) {
                    self.finish_session(header.session_id);
                }
            }
        }
    }

    /// Forgets a closed session; its connection closes after what it has queued.
    fn finish_session(&mut self, session_id: i64) {
        let Some(conn) = self.sessions.remove(&session_id).and_then(|s| s.conn) else {
            return;
        };
        if let Some(c) = self.conns.get_mut(&conn) {
            c.queue.push_back(Pending::Close);
        }
        self.drain(conn);
    }

    /// Sends watch events to the connections of the sessions they belong to.
    pub(crate) fn deliver(&mut self, events: &[WatchEvent]) {
        for event in events {
            let Some(conn) = self.sessions.get(&event.session_id).and_then(|s| s.conn) else {
                continue;
            };
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            // Events reach only connections that may read the node (CVE-2024-23944).
            if tree::acl::check(&event.acl, proto::perms::READ, &c.auth).is_err() {
                continue;
            }
            let notification = WatcherEvent {
                event_type: event.event_type.code(),
                state: proto::KeeperState::SyncConnected.code(),
                path: event.path.clone(),
            };
            let frame = encode_notification(event.zxid, &notification);
            self.send(conn, frame, false);
        }
    }

    /// Fills in the reply of an in-flight write and sends what is now ready.
    fn complete(&mut self, conn: ConnId, zxid: i64, frame: Vec<u8>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if let Some(slot) = c
            .queue
            .iter_mut()
            .find(|p| matches!(p, Pending::Write { zxid: z } if *z == zxid))
        {
            *slot = Pending::Ready(frame);
        }
        self.drain(conn);
    }

    fn release_syncs(&mut self) {
        let waiters = std::mem::take(&mut self.sync_waiters);
        for conn in waiters {
            self.drain(conn);
            let waiting = self
                .conns
                .get(&conn)
                .is_some_and(|c| c.queue.iter().any(|p| matches!(p, Pending::Sync { .. })));
            if waiting && !self.sync_waiters.contains(&conn) {
                self.sync_waiters.push(conn);
            }
        }
    }

    /// Answers what is at the front of a connection's queue, in order, until
    /// it reaches a request that must still wait.
    pub(crate) fn drain(&mut self, conn: ConnId) {
        loop {
            let Some(c) = self.conns.get_mut(&conn) else {
                return;
            };
            let ready = match c.queue.front() {
                None => return,
                Some(Pending::Write { .. }) | Some(Pending::Connecting { .. }) => return,
                Some(Pending::Sync { zxid, .. }) if *zxid > self.tree.last_processed_zxid() => {
                    return
                }
                Some(_) => c.queue.pop_front().expect("front exists"),
            };
            match ready {
                Pending::Ready(frame) => self.send(conn, frame, true),
                Pending::Read {
                    xid,
                    op,
                    request,
                    received,
                } => {
                    let frame = requests::answer_read(self, conn, xid, op, request);
                    self.stats
                        .record_latency(self.clock.saturating_duration_since(received));
                    self.send(conn, frame, true);
                }
                Pending::Sync {
                    xid,
                    path,
                    received,
                    ..
                } => {
                    let response = Response::Sync(proto::ops::SyncResponse { path });
                    let frame =
                        encode_reply(xid, self.zxid_applied(), ErrorCode::Ok, Some(&response));
                    self.stats
                        .record_latency(self.clock.saturating_duration_since(received));
                    self.send(conn, frame, true);
                }
                Pending::Close => {
                    self.close_conn(conn);
                    return;
                }
                Pending::Write { .. } | Pending::Connecting { .. } => unreachable!("handled above"),
            }
        }
    }

    /// Adds a frame to the connection's output for this turn (`reply`: it
    /// answers a counted request).
    pub(crate) fn send(&mut self, conn: ConnId, frame: Vec<u8>, reply: bool) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.out.is_empty() {
            self.dirty.push(conn);
        }
        if c.out.is_empty() && frame.capacity() >= 4096 {
            c.out = frame;
        } else {
            c.out.extend_from_slice(&frame);
        }
        if reply {
            c.out_replies += 1;
            c.sent += 1;
            c.last_zxid = self.tree.last_processed_zxid();
            self.stats.packets_sent += 1;
        }
    }

    /// Hands every connection its output of this turn as one message. A
    /// connection that cannot take it is not reading its replies and is closed.
    fn flush_outputs(&mut self) {
        for conn in std::mem::take(&mut self.dirty) {
            self.flush_output(conn);
        }
    }

    fn flush_output(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        if c.out.is_empty() {
            return;
        }
        let frames = OutFrame::Frames {
            bytes: std::mem::take(&mut c.out),
            replies: std::mem::take(&mut c.out_replies),
        };
        match c.outbox.try_send(frames) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(_)) => {
                warn!(peer = %c.peer, session = format!("0x{:x}", c.session_id),
                    "closing connection: client is not reading its replies");
                c.outbox.close();
            }
            Err(async_channel::TrySendError::Closed(_)) => {}
        }
    }
}

/// A whole frame holding one record (used for the handshake reply).
fn frame_of<R: Record>(record: &R) -> Vec<u8> {
    let mut w = Writer::begin_frame();
    record.encode(&mut w);
    w.finish_frame()
}

impl Sequencer {
    /// Gathers what the four-letter words report.
    pub(crate) fn four_letter_snapshot(&self) -> crate::fourlw::Snapshot {
        use crate::fourlw::{ConnectionInfo, Snapshot};
        let summary = self.tree.watches.summary();
        let config = &self.config;
        Snapshot {
            version: crate::VERSION.to_string(),
            latency_min_ms: self.stats.latency_min_ms(),
            latency_avg_ms: self.stats.latency_avg_ms(),
            latency_max_ms: self.stats.latency_max_ms(),
            packets_received: self.stats.packets_received,
            packets_sent: self.stats.packets_sent,
            outstanding_requests: self.outstanding(),
            last_zxid: self.zxid_applied(),
            node_count: self.tree.node_count(),
            approximate_data_size: self.tree.approximate_data_size(),
            ephemerals_count: self.tree.ephemeral_count(),
            watch_count: summary.watch_count,
            data_watches: summary.data_watches,
            watched_paths: summary.paths_watched,
            watching_connections: summary.connections_watching,
            connections: self
                .conns
                .values()
                .map(|c| ConnectionInfo {
                    peer: c.peer.to_string(),
                    session_id: c.session_id,
                    timeout_ms: c.timeout_ms,
                    queued: c.queue.len(),
                    received: c.received,
                    sent: c.sent,
                    last_zxid: c.last_zxid,
                })
                .collect(),
            watches_by_session: self.tree.watches.by_session(),
            watches_by_path: self.tree.watches.by_path(),
            ephemerals_by_session: {
                let mut ids: Vec<i64> = self.sessions.keys().copied().collect();
                ids.sort_unstable();
                ids.into_iter()
                    .map(|id| (id, self.tree.get_ephemerals(id, "/")))
                    .filter(|(_, paths)| !paths.is_empty())
                    .collect()
            },
            sessions: {
                let mut sessions: Vec<(i64, i32)> = self
                    .sessions
                    .iter()
                    .map(|(id, s)| (*id, s.timeout_ms))
                    .collect();
                sessions.sort_unstable();
                sessions
            },
            config: vec![
                ("clientPort".into(), config.client_port.to_string()),
                (
                    "clientPortAddress".into(),
                    config.client_address().to_string(),
                ),
                ("dataDir".into(), config.data_dir.display().to_string()),
                (
                    "dataLogDir".into(),
                    config.data_log_dir.display().to_string(),
                ),
                ("tickTime".into(), config.tick_time_ms.to_string()),
                ("maxClientCnxns".into(), config.max_client_cnxns.to_string()),
                (
                    "minSessionTimeout".into(),
                    config.min_session_timeout_ms.to_string(),
                ),
                (
                    "maxSessionTimeout".into(),
                    config.max_session_timeout_ms.to_string(),
                ),
                ("serverId".into(), "0".into()),
            ],
            environment: vec![
                ("zookeeper.version".into(), crate::VERSION.to_string()),
                (
                    "host.name".into(),
                    std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
                ),
                ("os.name".into(), std::env::consts::OS.into()),
                ("os.arch".into(), std::env::consts::ARCH.into()),
                (
                    "user.name".into(),
                    std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
                ),
                (
                    "user.dir".into(),
                    std::env::current_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default(),
                ),
            ],
            open_file_descriptors: std::fs::read_dir("/proc/self/fd")
                .map_or(0, |d| d.count() as u64),
            max_file_descriptors: max_open_files(),
            fsync_threshold_exceeded: self.stats.fsync_threshold_exceeded,
            digest: self.tree.digest(),
            data_dir_bytes: dir_bytes(&config.data_dir),
            log_dir_bytes: dir_bytes(&config.data_log_dir),
        }
    }
}

/// The total size of the files directly in `dir` (0 if it cannot be read).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.len())
        .sum()
}

/// The soft limit on open files, from /proc (no libc call needed).
fn max_open_files() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}
