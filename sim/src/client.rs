//! A simulated ZooKeeper client: the real client protocol on a simulated
//! connection, as the Java client behaves — a handshake with the session id,
//! password and the last zxid seen; requests pipelined with increasing xids;
//! pings when idle; a read timeout of two thirds of the session timeout
//! after which it drops the connection and reconnects to resume the session;
//! watches re-registered with setWatches after a reconnect; a new session
//! when the old one turns out to have expired.
//!
//! ```text
//!   Down ──connect──▶ Connecting ──ConnectResponse──▶ Open ──(reset, Fin, read timeout)──▶ Down
//!                          │ timeout 0: the session expired ─▶ Down with no session
//! ```
//!
//! It checks, as replies arrive: replies in request order (each is the
//! oldest outstanding request's); the session's zxids never go back; a watch
//! event arrives in zxid order, before any reply with a zxid at or above its
//! own, and only for a watch this client set. Each operation goes into the
//! history on send and on reply; one whose connection breaks first stays
//! indeterminate.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use proto::ops::{encode_request, Request, SetWatches2};
use proto::{
    ConnectRequest, ConnectResponse, ErrorCode, EventType, Reader, Record, ReplyHeader,
    WatcherEvent, Writer,
};

use crate::context::{Context, Event};
use crate::history::{OpId, Pin, Return};
use crate::model::{Op, Outcome, SubResult};
use crate::network::{Endpoint, LinkId, Payload};
use crate::options::Mix;
use crate::violation::Violation;
use crate::watches::{ConnectionLog, Note, WatchKey, WatchKind, Watches};
use crate::wire::{decode_outcome, split_frames};
use crate::workload::{self, Knowledge, QUEUE};

/// Requests a client keeps outstanding at most (pings included).
pub const PIPELINE_MAX: usize = 4;
/// ZooKeeper's fixed xids for pings and setWatches.
const PING_XID: i32 = -2;
const SET_WATCHES_XID: i32 = -8;
const NOTIFICATION_XID: i32 = -1;

#[derive(Debug, Clone, Copy)]
enum Conn {
    Down {
        retry_at: Duration,
    },
    Connecting {
        link: LinkId,
        since: Duration,
        sent: (u64, Duration),
        asked: i64,
    },
    Open {
        link: LinkId,
        last_heard: Duration,
        last_sent: Duration,
        /// The highest zxid of a reply on this connection.
        reply_zxid_max: i64,
        /// The highest zxid of a watch event on this connection.
        event_zxid_max: i64,
    },
}

#[derive(Debug, Clone)]
struct Session {
    id: i64,
    password: Vec<u8>,
    timeout_ms: i32,
    /// The last sign of life the server surely had: when the newest request
    /// that was answered was sent (real-time order, time).
    alive: (u64, Duration),
    /// The highest zxid any reply of this session carried.
    zxid_max: i64,
}

#[derive(Debug)]
enum Kind {
    /// `last_read`: one of the end-of-run reads.
    Op {
        id: OpId,
        op: Op,
        last_read: bool,
    },
    Ping,
    SetWatches,
}

#[derive(Debug)]
struct Outstanding {
    xid: i32,
    sent: (u64, Duration),
    kind: Kind,
}

/// What a delivery told the world about the server it came from.
#[derive(Debug, Default)]
pub struct Received {
    /// The highest zxid in the frames.
    pub zxid_max: i64,
    /// Writes acknowledged as their own txn: (zxid, session, cxid).
    pub txns: Vec<(i64, i64, i32)>,
    /// Writes the client was told failed without a txn of their own
    /// (SYSTEMERROR, SESSIONEXPIRED...): (session, cxid, the error).
    pub refused: Vec<(i64, i32, ErrorCode)>,
}

/// Counts for the run's summary.
#[derive(Debug, Default, Clone, Copy)]
pub struct ClientStats {
    pub sessions: u64,
    pub expired_sessions_learned: u64,
    pub reconnects: u64,
    pub watch_events: u64,
}

#[derive(Debug)]
pub struct Client {
    pub id: u32,
    /// The server it talks to now (standalone: its database's only server).
    pub server: u8,
    /// Every server of its database: a client of an ensemble connects to
    /// any of them and moves to another after a connection loss, as the
    /// Java client walks its connect string.
    servers: Vec<u8>,
    /// Index of its database's history.
    pub database: usize,
    conn: Conn,
    session: Option<Session>,
    requested_timeout_ms: i32,
    next_xid: i32,
    outstanding: VecDeque<Outstanding>,
    last_zxid_seen: i64,
    watches: Watches,
    /// The paths of the last setWatches sent on this connection.
    rewatched: BTreeSet<String>,
    /// What the current connection saw of watches (see `watches`).
    notes: Vec<Note>,
    knowledge: Knowledge,
    silent: bool,
    /// No new work, only pings and reconnects (the run is winding down).
    pub winding_down: bool,
    /// End-of-run reads not yet sent.
    final_reads: VecDeque<Op>,
    wake_generation: u64,
    mix: Mix,
    pub stats: ClientStats,
}

impl Client {
    pub fn new(id: u32, servers: Vec<u8>, database: usize, mix: Mix, cx: &mut Context) -> Client {
        assert!(!servers.is_empty(), "a client has a server to talk to");
        let requested_timeout_ms = cx.rng.between(1000, 4000) as i32;
        // (A standalone server's clients draw nothing: old seeds keep their meaning.)
        let server = if servers.len() == 1 {
            servers[0]
        } else {
            *cx.rng.pick(&servers)
        };
        let mut client = Client {
            id,
            server,
            servers,
            database,
            conn: Conn::Down {
                retry_at: Duration::ZERO,
            },
            session: None,
            requested_timeout_ms,
            next_xid: 1,
            outstanding: VecDeque::new(),
            last_zxid_seen: 0,
            watches: Watches::default(),
            rewatched: BTreeSet::new(),
            notes: Vec::new(),
            knowledge: Knowledge::default(),
            silent: false,
            winding_down: false,
            final_reads: VecDeque::new(),
            wake_generation: 0,
            mix,
            stats: ClientStats::default(),
        };
        let delay = Duration::from_micros(cx.rng.between(0, 20_000));
        client.schedule(cx, delay);
        client
    }

    fn me(&self) -> Endpoint {
        Endpoint::Client(self.id)
    }

    fn timeout(&self) -> Duration {
        let ms = self
            .session
            .as_ref()
            .map_or(self.requested_timeout_ms, |s| s.timeout_ms);
        Duration::from_millis(ms.max(1) as u64)
    }

    /// The Java client's read timeout: two thirds of the session timeout.
    fn read_timeout(&self) -> Duration {
        self.timeout() * 2 / 3
    }

    fn schedule(&mut self, cx: &mut Context, delay: Duration) {
        self.wake_generation += 1;
        let event = Event::ClientWake {
            client: self.id,
            generation: self.wake_generation,
        };
        cx.after(delay, event);
    }

    /// Whether a wake with this generation is the current one.
    pub fn is_current_wake(&self, generation: u64) -> bool {
        generation == self.wake_generation
    }

    /// The session this client holds and uses now, if any.
    pub fn live_session(&self) -> Option<i64> {
        match (self.silent, &self.conn, &self.session) {
            (false, Conn::Open { .. }, Some(session)) => Some(session.id),
            _ => None,
        }
    }

    pub fn is_silent(&self) -> bool {
        self.silent
    }

    /// Queues the end-of-run reads.
    pub fn start_final_reads(&mut self) {
        if !self.silent {
            self.final_reads = workload::final_reads().into();
        }
    }

    /// Whether every final read has been answered (silent clients have none).
    pub fn final_reads_done(&self) -> bool {
        self.final_reads.is_empty()
            && !self.outstanding.iter().any(|o| {
                matches!(
                    o.kind,
                    Kind::Op {
                        last_read: true,
                        ..
                    }
                )
            })
    }

    /// The client decides what to do next.
    pub fn wake(&mut self, cx: &mut Context) {
        if self.silent {
            return;
        }
        let now = cx.now;
        match self.conn {
            Conn::Down { retry_at } if now >= retry_at => self.connect(cx),
            Conn::Down { .. } => {}
            Conn::Connecting { link, since, .. } => {
                if now.saturating_sub(since) > self.read_timeout() {
                    self.abandon(cx, link, "the handshake timed out");
                }
            }
            Conn::Open {
                link,
                last_heard,
                last_sent,
                ..
            } => {
                if now.saturating_sub(last_heard) > self.read_timeout() {
                    self.abandon(cx, link, "the server went quiet");
                } else {
                    self.work(cx);
                    let idle = now.saturating_sub(last_sent);
                    let sent_now =
                        matches!(self.conn, Conn::Open { last_sent, .. } if last_sent == now);
                    if !sent_now && idle >= self.timeout() / 3 {
                        self.ping(cx);
                    }
                }
            }
        }
        let think = Duration::from_micros(cx.rng.between(2_000, 60_000));
        let delay = match self.conn {
            Conn::Down { retry_at } => retry_at
                .saturating_sub(now)
                .max(think.min(Duration::from_millis(5))),
            _ => think,
        };
        self.schedule(cx, delay);
    }

    fn connect(&mut self, cx: &mut Context) {
        if self.servers.len() > 1 {
            // Another server than the one that failed us, mostly; sometimes
            // the same one again.
            let others: Vec<u8> = self
                .servers
                .iter()
                .copied()
                .filter(|s| *s != self.server)
                .collect();
            if cx.rng.chance(4, 5) {
                self.server = *cx.rng.pick(&others);
            }
        }
        let link = cx.net.connect(self.me(), Endpoint::Server(self.server));
        let (session_id, password) = match &self.session {
            Some(s) => (s.id, s.password.clone()),
            None => (0, vec![0; 16]),
        };
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: self.last_zxid_seen,
            timeout_ms: self.requested_timeout_ms,
            session_id,
            password,
            read_only: Some(false),
        };
        let mut w = Writer::begin_frame();
        request.encode(&mut w);
        cx.send(link, self.me(), Payload::Bytes(w.finish_frame()));
        let sent = (cx.next_order(), cx.now);
        self.conn = Conn::Connecting {
            link,
            since: cx.now,
            sent,
            asked: session_id,
        };
        let (id, now) = (self.id, cx.now);
        let server = self.server;
        cx.trace.line(now, || {
            format!("c{id} connects to s{server} on link {link} (session 0x{session_id:x})")
        });
    }

    /// Gives up on a connection: closes it and will reconnect.
    fn abandon(&mut self, cx: &mut Context, link: LinkId, why: &str) {
        cx.send(link, self.me(), Payload::Fin);
        let (id, now) = (self.id, cx.now);
        cx.trace
            .line(now, || format!("c{id} drops link {link}: {why}"));
        self.disconnected(cx);
    }

    /// The connection is gone; outstanding requests stay indeterminate.
    fn disconnected(&mut self, cx: &mut Context) {
        self.close_log(cx);
        self.requeue_final_reads();
        self.stats.reconnects += 1;
        let retry_at = cx.now + Duration::from_micros(cx.rng.between(1_000, 150_000));
        self.conn = Conn::Down { retry_at };
        self.schedule(cx, retry_at - cx.now);
    }

    /// Hands the current connection's watch log to the checker.
    fn close_log(&mut self, cx: &mut Context) {
        if self.notes.is_empty() {
            return;
        }
        let log = ConnectionLog {
            client: self.id,
            session: self.session.as_ref().map_or(0, |s| s.id),
            notes: std::mem::take(&mut self.notes),
        };
        cx.watch_logs[self.database].push(log);
    }

    /// The run is over: hands over what is still being recorded.
    pub fn finish(&mut self, cx: &mut Context) {
        self.close_log(cx);
    }

    /// Drops the outstanding requests (they stay indeterminate) and queues
    /// the end-of-run reads among them again: they must be answered.
    fn requeue_final_reads(&mut self) {
        for outstanding in self.outstanding.drain(..).rev() {
            if let Kind::Op {
                op,
                last_read: true,
                ..
            } = outstanding.kind
            {
                self.final_reads.push_front(op);
            }
        }
    }

    fn current_link(&self) -> Option<LinkId> {
        match self.conn {
            Conn::Connecting { link, .. } | Conn::Open { link, .. } => Some(link),
            Conn::Down { .. } => None,
        }
    }

    /// A reset of `link` reached this client.
    pub fn on_reset(&mut self, cx: &mut Context, link: LinkId) {
        if !self.silent && self.current_link() == Some(link) {
            let (id, now) = (self.id, cx.now);
            cx.trace
                .line(now, || format!("c{id} sees link {link} reset"));
            self.disconnected(cx);
        }
    }

    /// A message from the server on `link`.
    pub fn on_delivery(&mut self, cx: &mut Context, link: LinkId, payload: Payload) -> Received {
        let mut received = Received::default();
        if self.silent || self.current_link() != Some(link) {
            return received;
        }
        let bytes = match payload {
            Payload::Fin => {
                let (id, now) = (self.id, cx.now);
                cx.trace
                    .line(now, || format!("c{id}: the server closed link {link}"));
                self.disconnected(cx);
                return received;
            }
            Payload::Bytes(bytes) => bytes,
            Payload::Open(_) => return received,
        };
        let frames = match split_frames(&bytes) {
            Ok(frames) => frames,
            Err(reason) => {
                cx.violation(Violation::Undecodable {
                    client: self.id,
                    reason,
                });
                return received;
            }
        };
        for frame in frames {
            if cx.found.is_some() || self.current_link() != Some(link) {
                break;
            }
            if let Conn::Open { last_heard, .. } = &mut self.conn {
                *last_heard = cx.now;
            }
            match self.conn {
                Conn::Connecting { sent, asked, .. } => self.on_handshake(cx, frame, sent, asked),
                Conn::Open { .. } => self.on_frame(cx, frame, &mut received),
                Conn::Down { .. } => {}
            }
        }
        received
    }

    fn on_handshake(&mut self, cx: &mut Context, frame: &[u8], sent: (u64, Duration), asked: i64) {
        let response = match ConnectResponse::from_bytes(frame) {
            Ok(response) => response,
            Err(err) => {
                return cx.violation(Violation::Undecodable {
                    client: self.id,
                    reason: format!("ConnectResponse: {err}"),
                })
            }
        };
        let (id, now) = (self.id, cx.now);
        if response.timeout_ms <= 0 {
            // The session is gone: the server answers and closes.
            if let Some(session) = self.session.take() {
                let learned = (cx.next_order(), cx.now);
                cx.histories[self.database].expired(
                    self.id,
                    session.id,
                    session.alive,
                    Some(learned),
                );
                self.stats.expired_sessions_learned += 1;
                cx.trace.line(now, || {
                    format!("c{id} learns session 0x{:x} expired", session.id)
                });
            }
            self.watches = Watches::default();
            self.requeue_final_reads();
            self.conn = Conn::Down { retry_at: cx.now };
            self.schedule(cx, Duration::ZERO);
            return;
        }
        if asked != 0 && response.session_id != asked {
            return cx.violation(Violation::WrongSessionOnReconnect {
                client: self.id,
                asked,
                got: response.session_id,
            });
        }
        match &mut self.session {
            Some(session) => {
                session.timeout_ms = response.timeout_ms;
                session.alive = sent;
            }
            None => {
                self.stats.sessions += 1;
                self.session = Some(Session {
                    id: response.session_id,
                    password: response.password.clone(),
                    timeout_ms: response.timeout_ms,
                    alive: sent,
                    zxid_max: 0,
                });
            }
        }
        let link = self.current_link().expect("connecting");
        self.conn = Conn::Open {
            link,
            last_heard: cx.now,
            last_sent: cx.now,
            reply_zxid_max: 0,
            event_zxid_max: 0,
        };
        cx.trace.line(now, || {
            format!(
                "c{id} in session 0x{:x} (timeout {} ms) on link {link}",
                response.session_id, response.timeout_ms
            )
        });
        self.rewatched = self.watches.paths();
        if !self.watches.is_empty() {
            let list = |set: &BTreeSet<String>| set.iter().cloned().collect();
            let request = Request::SetWatches2(SetWatches2 {
                relative_zxid: self.last_zxid_seen,
                data_watches: list(&self.watches.data),
                exist_watches: list(&self.watches.exist),
                child_watches: list(&self.watches.child),
                persistent_watches: list(&self.watches.persistent),
                persistent_recursive_watches: list(&self.watches.recursive),
            });
            self.send(cx, SET_WATCHES_XID, &request, Kind::SetWatches);
        }
    }

    fn send(&mut self, cx: &mut Context, xid: i32, request: &Request, kind: Kind) {
        let Conn::Open {
            link, last_sent, ..
        } = &mut self.conn
        else {
            unreachable!("requests go out on open connections")
        };
        *last_sent = cx.now;
        let link = *link;
        cx.send(
            link,
            Endpoint::Client(self.id),
            Payload::Bytes(encode_request(xid, request)),
        );
        let sent = (cx.next_order(), cx.now);
        self.outstanding.push_back(Outstanding { xid, sent, kind });
    }

    fn ping(&mut self, cx: &mut Context) {
        if self.outstanding.len() < PIPELINE_MAX * 2 {
            self.send(cx, PING_XID, &Request::Ping, Kind::Ping);
        }
    }

    /// Issues the next operation, if the pipeline has room.
    fn work(&mut self, cx: &mut Context) {
        let Some(session) = self.session.as_ref().map(|s| s.id) else {
            return;
        };
        if self.outstanding.len() >= PIPELINE_MAX {
            return;
        }
        let last_read = !self.final_reads.is_empty();
        let op = if let Some(op) = self.final_reads.pop_front() {
            op
        } else if self.winding_down || cx.rng.chance(1, 4) {
            return;
        } else {
            workload::next_op(self.id, self.mix, &mut self.knowledge, &mut cx.rng)
        };
        let xid = self.next_xid;
        self.next_xid += 1;
        let order = cx.next_order();
        let id =
            cx.histories[self.database].invoke(self.id, session, xid, op.clone(), order, cx.now);
        let (client, now) = (self.id, cx.now);
        cx.trace.line(now, || {
            format!("c{client} 0x{session:x} xid {xid}: {}", op.describe())
        });
        let request = workload::request(&op);
        self.send(cx, xid, &request, Kind::Op { id, op, last_read });
    }

    fn on_frame(&mut self, cx: &mut Context, frame: &[u8], received: &mut Received) {
        let mut reader = Reader::new(frame);
        let header = match ReplyHeader::decode(&mut reader) {
            Ok(header) => header,
            Err(err) => {
                return cx.violation(Violation::Undecodable {
                    client: self.id,
                    reason: format!("reply header: {err}"),
                })
            }
        };
        let body = &frame[frame.len() - reader.remaining()..];
        received.zxid_max = received.zxid_max.max(header.zxid);
        if header.xid == NOTIFICATION_XID {
            self.on_event(cx, header.zxid, body);
        } else {
            self.on_reply(cx, header, body, received);
        }
    }

    fn on_reply(
        &mut self,
        cx: &mut Context,
        header: ReplyHeader,
        body: &[u8],
        received: &mut Received,
    ) {
        let session = self
            .session
            .as_mut()
            .expect("open connections have a session");
        let session_id = session.id;
        let Some(front) = self.outstanding.pop_front() else {
            return cx.violation(Violation::UnexpectedReply {
                client: self.id,
                session: session_id,
                got: header.xid,
            });
        };
        if front.xid != header.xid {
            return cx.violation(Violation::RepliesOutOfOrder {
                client: self.id,
                session: session_id,
                expected: front.xid,
                got: header.xid,
            });
        }
        if header.zxid > 0 {
            if header.zxid < session.zxid_max {
                return cx.violation(Violation::ZxidWentBack {
                    client: self.id,
                    session: session_id,
                    seen: session.zxid_max,
                    got: header.zxid,
                });
            }
            session.zxid_max = header.zxid;
        }
        session.alive = session.alive.max(front.sent);
        if let Conn::Open { reply_zxid_max, .. } = &mut self.conn {
            *reply_zxid_max = (*reply_zxid_max).max(header.zxid);
        }
        self.notes.push(Note::Reply { zxid: header.zxid });
        if header.zxid > 0 && !matches!(front.kind, Kind::Ping) {
            self.last_zxid_seen = self.last_zxid_seen.max(header.zxid);
        }
        let Kind::Op { id, op, .. } = front.kind else {
            return;
        };
        let outcome = match decode_outcome(&op, header.err, body) {
            Ok(outcome) => outcome,
            Err(reason) => {
                return cx.violation(Violation::Undecodable {
                    client: self.id,
                    reason: format!("reply to {}: {reason}", op.describe()),
                })
            }
        };
        let (client, now) = (self.id, cx.now);
        cx.trace.line(now, || {
            format!(
                "c{client} 0x{session_id:x} xid {} zxid 0x{:x}: {outcome:?}",
                header.xid, header.zxid
            )
        });
        self.learn(&op, &outcome, header.zxid);
        let ret = Return {
            at: cx.next_order(),
            time: cx.now,
            zxid: Some(header.zxid),
            outcome: outcome.clone(),
        };
        let history = &mut cx.histories[self.database];
        history.complete(id, ret);
        match (history.ops[id].pin(), &outcome) {
            (Pin::Txn(zxid), _) => received.txns.push((zxid, session_id, header.xid)),
            (Pin::Point(_), Outcome::Error(code)) if op.is_write() => {
                received.refused.push((session_id, header.xid, *code))
            }
            _ => {}
        }
        if op == Op::CloseSession && outcome == Outcome::Done {
            // The session is over; the server closes the connection.
            self.close_log(cx);
            self.session = None;
            self.watches = Watches::default();
            self.requeue_final_reads();
            self.conn = Conn::Down { retry_at: cx.now };
            self.schedule(cx, Duration::ZERO);
        }
    }

    /// Updates what the client knows (versions, children, watches) from an answer.
    /// A reply at `zxid` set a watch (the server registered it then).
    fn set_watch(&mut self, kind: WatchKind, path: &str, zxid: i64) {
        let set = match kind {
            WatchKind::Data => &mut self.watches.data,
            WatchKind::Exist => &mut self.watches.exist,
            WatchKind::Child => &mut self.watches.child,
            WatchKind::Persistent => &mut self.watches.persistent,
            WatchKind::Recursive => &mut self.watches.recursive,
        };
        set.insert(path.to_string());
        let watch = WatchKey {
            kind,
            path: path.to_string(),
        };
        self.notes.push(Note::Set { watch, zxid });
    }

    /// Updates what the client knows (versions, children, watches) from
    /// an answer that carried `zxid`.
    fn learn(&mut self, op: &Op, outcome: &Outcome, zxid: i64) {
        let watch = match (op, outcome) {
            (Op::GetData { path, watch: true }, Outcome::Data { .. }) => {
                Some((WatchKind::Data, path))
            }
            (Op::Exists { path, watch: true }, Outcome::Stat(_)) => Some((WatchKind::Data, path)),
            (Op::Exists { path, watch: true }, Outcome::Error(ErrorCode::NoNode)) => {
                Some((WatchKind::Exist, path))
            }
            (Op::GetChildren { path, watch: true }, Outcome::Children(_)) => {
                Some((WatchKind::Child, path))
            }
            (Op::AddWatch { path, recursive }, Outcome::Done) => Some((
                if *recursive {
                    WatchKind::Recursive
                } else {
                    WatchKind::Persistent
                },
                path,
            )),
            _ => None,
        };
        if let Some((kind, path)) = watch {
            self.set_watch(kind, path, zxid);
        }
        let k = &mut self.knowledge;
        match (op, outcome) {
            (Op::GetData { path, .. }, Outcome::Data { stat, .. })
            | (Op::Exists { path, .. }, Outcome::Stat(stat)) => k.saw_version(path, stat.version),
            (Op::Exists { path, .. }, Outcome::Error(ErrorCode::NoNode)) => k.forget(path),
            (Op::GetChildren { path, .. }, Outcome::Children(children)) if path == QUEUE => {
                for child in children {
                    k.saw_child(format!("{QUEUE}/{child}"));
                }
            }
            (Op::Create { .. }, Outcome::Created { path }) => {
                k.saw_version(path, 0);
                if path.starts_with(QUEUE) && path.len() > QUEUE.len() {
                    k.saw_child(path.clone());
                }
            }
            (Op::SetData { path, .. }, Outcome::DataSet { version }) => {
                k.saw_version(path, *version)
            }
            (Op::Delete { path, .. }, Outcome::Deleted)
            | (Op::GetData { path, .. }, Outcome::Error(ErrorCode::NoNode))
            | (Op::Delete { path, .. }, Outcome::Error(ErrorCode::NoNode)) => k.forget(path),
            _ => {}
        }
        if let Op::Multi(ops) = op {
            if let Outcome::Multi(results) = outcome {
                for (sub, result) in ops.iter().zip(results) {
                    match (sub, result) {
                        (
                            crate::model::SubOp::SetData { path, .. },
                            SubResult::DataSet { version },
                        ) => k.saw_version(path, *version),
                        (_, SubResult::Created(path)) => k.saw_version(path, 0),
                        (crate::model::SubOp::Delete { path, .. }, SubResult::Deleted) => {
                            k.forget(path)
                        }
                        _ => {}
                    }
                }
            }
        }
    }

    fn on_event(&mut self, cx: &mut Context, zxid: i64, body: &[u8]) {
        let session = self.session.as_ref().map_or(0, |s| s.id);
        let event = match WatcherEvent::from_bytes(body) {
            Ok(event) => event,
            Err(err) => {
                return cx.violation(Violation::Undecodable {
                    client: self.id,
                    reason: format!("watch event: {err}"),
                })
            }
        };
        self.stats.watch_events += 1;
        let event_type = EventType::from_code(event.event_type);
        let describe = || format!("{event_type:?} {}", event.path);
        let (client, now) = (self.id, cx.now);
        cx.trace.line(now, || {
            format!(
                "c{client} 0x{session:x} event zxid 0x{zxid:x}: {}",
                describe()
            )
        });
        if let Conn::Open {
            reply_zxid_max,
            event_zxid_max,
            ..
        } = &mut self.conn
        {
            // setWatches fires events with zxid -1: they carry no order.
            if zxid > 0 {
                if zxid <= *reply_zxid_max {
                    return cx.violation(Violation::WatchEventLate {
                        client: self.id,
                        session,
                        event: describe(),
                        zxid,
                        reply_zxid: *reply_zxid_max,
                    });
                }
                if zxid < *event_zxid_max {
                    return cx.violation(Violation::WatchEventsOutOfOrder {
                        client: self.id,
                        session,
                        event: describe(),
                        zxid,
                        previous: *event_zxid_max,
                    });
                }
                *event_zxid_max = zxid;
            }
        }
        if let (Some(kind), true) = (event_type, zxid > 0) {
            let path = event.path.clone();
            self.notes.push(Note::Event {
                event: kind,
                path,
                zxid,
            });
        }
        let matched = match event_type {
            Some(event_type) => self.watches.fire(event_type, &event.path),
            None => false,
        };
        // setWatches fires one event per watch list a path is in (a data
        // and a child watch on a deleted node give two NodeDeleted, as
        // ZooKeeper's DataTree.setWatches does); the first fires them all.
        let matched = matched || (zxid <= 0 && self.rewatched.contains(&event.path));
        if !matched {
            cx.violation(Violation::SpuriousWatchEvent {
                client: self.id,
                session,
                event: describe(),
            });
        }
    }

    /// The client's process dies (`hang`: it hangs with its connection
    /// open instead): its session must expire on its own.
    pub fn go_silent(&mut self, cx: &mut Context, hang: bool) {
        if self.silent {
            return;
        }
        self.close_log(cx);
        if let Some(session) = self.session.take() {
            cx.histories[self.database].expired(self.id, session.id, session.alive, None);
        }
        if let (Some(link), false) = (self.current_link(), hang) {
            cx.send(link, self.me(), Payload::Fin);
        }
        let (id, now) = (self.id, cx.now);
        cx.trace.line(now, || {
            format!(
                "c{id} goes silent ({})",
                if hang { "hangs" } else { "dies" }
            )
        });
        self.silent = true;
        self.outstanding.clear();
        self.watches = Watches::default();
        self.final_reads.clear();
        self.conn = Conn::Down {
            retry_at: Duration::MAX,
        };
    }

    /// A silent client's process starts again, with a new session.
    pub fn revive(&mut self, cx: &mut Context) {
        if !self.silent {
            return;
        }
        self.silent = false;
        self.knowledge = Knowledge::default();
        self.conn = Conn::Down { retry_at: cx.now };
        self.schedule(cx, Duration::ZERO);
    }
}
