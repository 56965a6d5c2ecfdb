//! The client protocol: handshakes, reconnects, requests as they arrive, and
//! answering each connection's queue in order.
//!
//! A request is sorted at arrival: a write is prepared at once (so later
//! requests are validated against it) and its reply slot queued; a read or
//! `sync` is queued and answered when it reaches the front; connection-level
//! packets (auth, undecodable frames) are answered in their turn too.

use std::collections::VecDeque;
use std::time::Duration;

use proto::ops::{encode_notification, encode_reply, Request, Response};
use proto::{
    ConnectRequest, ConnectResponse, DecodeError, ErrorCode, NullAt, NullVerdict, Nulls, OpCode,
    Record, Writer,
};
use tree::watch::WatchEvent;
use tree::{PrepareError, WriteOp};

use crate::connections::{Connection, Pending};
use crate::io::{ConnId, Level, Peer, RequestFrame};
use crate::node::Node;
use crate::requests::{self, Classified, ReplyShape};
use crate::session_id::{session_password, PASSWORD_LENGTH};

impl Node {
    pub(crate) fn on_connect(
        &mut self,
        conn: ConnId,
        peer: Peer,
        request: ConnectRequest,
        auth: Vec<proto::Id>,
    ) {
        let timeout_ms = self.settings.negotiate_session_timeout(request.timeout_ms);
        let mut connection = Connection::new(peer.clone(), timeout_ms, request.read_only);
        connection.auth.extend(auth);
        self.conns.insert(conn, connection);
        if !self.role.serving() {
            // ZooKeeper closes connections while it is not serving ("not
            // running"); the client tries another server or again later.
            self.out.log(
                Level::Info,
                format!(
                    "refusing session from {peer}: this server is not serving ({})",
                    self.role.mode()
                ),
            );
            self.close_conn(conn);
            return;
        }
        if request.last_zxid_seen > self.zxid_applied() {
            self.out.log(
                Level::Warn,
                format!(
                    "refusing session from {peer}: client has seen zxid 0x{:x}, newer than this server's 0x{:x}; it must try another server",
                    request.last_zxid_seen,
                    self.zxid_applied()
                ),
            );
            self.close_conn(conn);
            return;
        }
        if request.session_id != 0 {
            self.reconnect(conn, &request);
            return;
        }
        if let Some(failure) = self.pipeline.failed() {
            self.out.log(
                Level::Warn,
                format!("refusing new session from {peer}: the log has failed ({failure})"),
            );
            self.close_conn(conn);
            return;
        }
        if self.disk_full {
            self.out.log(
                Level::Warn,
                format!("refusing new session from {peer}: the log's disk is full"),
            );
            self.close_conn(conn);
            return;
        }
        let session_id = self.next_session_id;
        self.next_session_id += 1;
        let c = self.conns.get_mut(conn).expect("inserted above");
        c.session_id = session_id;
        let auth = c.auth.clone();
        self.sessions
            .insert(session_id, timeout_ms, Some(conn), self.now.monotonic);
        if matches!(self.role, crate::roles::Role::Learning(_)) {
            self.out.log(
                Level::Info,
                format!("new session 0x{session_id:x} from {peer}, timeout {timeout_ms} ms, forwarded to the leader"),
            );
            self.learner_create_session(conn, session_id, timeout_ms);
            self.push(conn, Pending::Connecting);
            return;
        }
        match self.prepare(session_id, 0, &auth, &WriteOp::CreateSession { timeout_ms }) {
            Ok(_) => {
                self.out.log(
                    Level::Info,
                    format!("new session 0x{session_id:x} from {peer}, timeout {timeout_ms} ms"),
                );
                self.pipeline.wait(session_id, 0, conn);
                let c = self.conns.get_mut(conn).expect("inserted above");
                c.queue.push_back(Pending::Connecting);
            }
            Err(err) => {
                self.out.log(
                    Level::Warn,
                    format!("could not create a session for {peer}: {err:?}"),
                );
                self.sessions.remove(session_id);
                self.close_conn(conn);
            }
        }
    }

    fn reconnect(&mut self, conn: ConnId, request: &ConnectRequest) {
        let session_id = request.session_id;
        let peer = self.conns.get(conn).expect("registered").peer.clone();
        let password_ok = request.password == session_password(session_id);
        let learning = matches!(self.role, crate::roles::Role::Learning(_));
        // A learner asks the leader, which tracks every session.
        let live = learning || self.sessions.get(session_id).is_some_and(|s| !s.closing);
        // ZooKeeper closes the session's current connection before it checks
        // the password (processConnectRequest); the session itself survives.
        if let Some(old) = self
            .sessions
            .get_mut(session_id)
            .and_then(|s| s.conn.take())
        {
            self.out.log(
                Level::Info,
                format!("closing session 0x{session_id:x}'s current connection: a client reconnects to it from {peer}"),
            );
            self.close_conn(old);
            self.tree.watches.remove_session(session_id);
        }
        if !live || !password_ok {
            self.out.log(
                Level::Info,
                format!("reconnect of session 0x{session_id:x} from {peer} refused: session expired, unknown or wrong password (password ok: {password_ok})"),
            );
            let response = ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                password: vec![0; PASSWORD_LENGTH],
                read_only: request.read_only.map(|_| false),
            };
            self.push(conn, Pending::Ready(frame_of(&response)));
            self.push(conn, Pending::Close);
            self.drain(conn);
            return;
        }
        if learning {
            let timeout_ms = self.conns.get(conn).expect("registered").timeout_ms;
            self.sessions.remove(session_id);
            self.learner_revalidate(conn, request, timeout_ms);
            return;
        }
        let c = self.conns.get_mut(conn).expect("registered");
        c.session_id = session_id;
        let timeout_ms = c.timeout_ms;
        self.sessions
            .set_timeout(session_id, timeout_ms, self.now.monotonic);
        let session = self.sessions.get_mut(session_id).expect("live");
        let previous = session.conn.replace(conn);
        self.close_previous_conn(previous, conn);
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms,
            session_id,
            password: session_password(session_id).to_vec(),
            read_only: request.read_only.map(|_| false),
        };
        self.out.log(
            Level::Info,
            format!("session 0x{session_id:x} reconnected from {peer}"),
        );
        self.push(conn, Pending::Ready(frame_of(&response)));
        self.drain(conn);
    }

    pub(crate) fn on_closed(&mut self, conn: ConnId) {
        let Some(connection) = self.conns.remove(conn) else {
            return;
        };
        self.forget_waiters(conn, connection.session_id, &connection.queue);
        self.sync_waiters.remove(&conn);
        let session_id = connection.session_id;
        if let Some(session) = self.sessions.get_mut(session_id) {
            if session.conn == Some(conn) {
                session.conn = None;
                // Watches live with the connection, as ZooKeeper's do: the
                // client re-registers them with setWatches when it reconnects.
                self.tree.watches.remove_session(session_id);
            }
        }
    }

    /// Drops the waiting-index entries of a connection's reply slots: they
    /// will never be answered.
    fn forget_waiters(&mut self, conn: ConnId, session_id: i64, queue: &VecDeque<Pending>) {
        for pending in queue {
            match pending {
                Pending::Write { xid, .. } => self.pipeline.unwait(session_id, *xid, conn),
                Pending::Connecting => self.pipeline.unwait(session_id, 0, conn),
                _ => {}
            }
        }
    }

    /// A session took connection `conn`: the one it had (a connection the
    /// client gave up on, whose handshake came late) is closed, as one
    /// session has one connection — else the session's watch events follow
    /// whichever handshake was answered last, and when that connection
    /// closes the session's watches go with it while its client still uses
    /// the other (found by fk-sim, seed 100488 of `--servers 3`).
    pub(crate) fn close_previous_conn(&mut self, previous: Option<ConnId>, conn: ConnId) {
        if let Some(previous) = previous.filter(|p| *p != conn) {
            if self.conns.get(previous).is_some() {
                self.close_conn(previous);
            }
        }
    }

    /// Asks the driver to close a connection after what it has queued; it
    /// answers nothing more.
    pub(crate) fn close_conn(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        // Replies still waiting will never leave: forget them now, so that a
        // txn applied later cannot fill a slot on a closed connection.
        let queue = std::mem::take(&mut c.queue);
        c.parked.clear();
        c.reads_queued = 0;
        let session_id = c.session_id;
        self.forget_waiters(conn, session_id, &queue);
        self.sync_waiters.remove(&conn);
        self.conns.close(conn, &mut self.out.actions);
    }

    /// Takes one request into the connection's queue: a write is prepared,
    /// a read queued; `received` is when it arrived.
    pub(crate) fn on_request(&mut self, conn: ConnId, frame: RequestFrame, received: Duration) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        if c.closing {
            return;
        }
        let session_id = c.session_id;
        let RequestFrame {
            xid,
            op,
            body,
            nulls,
        } = frame;
        match self.sessions.get(session_id) {
            // After closeSession nothing more is answered; the connection
            // closes once that reply is out, as ZooKeeper's does.
            Some(session) if session.closing => return,
            // A request taken in the step it arrived in was counted as
            // activity on arrival (`on_requests`); one that waited is
            // counted again now, as ZooKeeper touches at each packet it
            // processes.
            Some(session) if received != self.now.monotonic => {
                let timeout_ms = session.timeout_ms;
                self.sessions.touch(session_id, self.now.monotonic);
                self.learner_touch(session_id, timeout_ms);
            }
            Some(_) | None => {}
        }
        let request = match body {
            Ok(request) => request,
            Err(err) => {
                let peer = self.conns.get(conn).expect("looked up above").peer.clone();
                return self.on_undecodable(conn, &peer, session_id, xid, op, err);
            }
        };
        let op = request.op_code();
        // Nulls whose answer depends on the request alone (proto's table).
        let echo_null_path = match nulls.verdict(&request) {
            NullVerdict::Proceed => false,
            NullVerdict::Refuse(code) => return self.push_error(conn, xid, code),
            NullVerdict::Acknowledge => {
                let ok = Response::Error(proto::ops::ErrorResponse { err: 0 });
                let answer = Pending::Answer {
                    xid,
                    code: ErrorCode::Ok,
                    body: Some(ok),
                };
                return self.push(conn, answer);
            }
            NullVerdict::EchoNullPath => true,
        };
        if matches!(self.role, crate::roles::Role::Learning(_)) && forwarded_by_learners(&request) {
            return self.learner_request(conn, session_id, xid, request, received);
        }
        match request {
            Request::Auth(packet) => self.on_auth(conn, xid, packet, &nulls),
            Request::Sasl(request) => self.on_sasl(conn, xid, request.token),
            Request::Sync(sync) => {
                let zxid = self.pipeline.zxid_prepared();
                let path = (!echo_null_path).then_some(sync.path);
                self.push(
                    conn,
                    Pending::Sync {
                        xid,
                        path,
                        zxid,
                        received,
                    },
                );
                self.sync_waiters.insert(conn);
            }
            // Dynamic reconfiguration is off, as in a ZooKeeper without
            // reconfigEnabled.
            Request::Reconfig(_) => self.push_error(conn, xid, ErrorCode::ReconfigDisabled),
            request => match requests::classify(request) {
                Classified::Write(shape, write) => self.on_write(conn, xid, shape, write, &nulls),
                Classified::Malformed(code) => self.push_error(conn, xid, code),
                // Nothing ahead of it: answered now, as the queue would
                // answer it at once (this saves moving it in and out).
                Classified::Read(request)
                    if self.conns.get(conn).is_some_and(|c| c.queue.is_empty()) =>
                {
                    self.answer_read(conn, xid, op, request, &nulls, received)
                }
                Classified::Read(request) => self.push(
                    conn,
                    Pending::Read {
                        xid,
                        op,
                        request,
                        nulls,
                        received,
                    },
                ),
            },
        }
    }

    /// A learner forwards writes and syncs to the leader; the reply waits
    /// for the txn's commit (or the leader's SYNC) like any other.
    fn learner_request(
        &mut self,
        conn: ConnId,
        session_id: i64,
        xid: i32,
        request: Request,
        received: std::time::Duration,
    ) {
        let auth = self
            .conns
            .get(conn)
            .expect("looked up by the caller")
            .auth
            .clone();
        self.learner_write(session_id, xid, &request, &auth);
        match request {
            Request::Sync(sync) => {
                self.push(
                    conn,
                    Pending::Sync {
                        xid,
                        path: Some(sync.path),
                        // Known once the leader answers (LearnerAction::SyncAnswered).
                        zxid: i64::MAX,
                        received,
                    },
                );
                self.sync_waiters.insert(conn);
                self.learning().syncs.push_back(conn);
            }
            request => {
                if matches!(request, Request::CloseSession) {
                    self.sessions.mark_closing(session_id);
                }
                self.pipeline.wait(session_id, xid, conn);
                let shape = ReplyShape::of(&request);
                self.push(
                    conn,
                    Pending::Write {
                        xid,
                        shape,
                        received,
                    },
                );
            }
        }
    }

    fn on_undecodable(
        &mut self,
        conn: ConnId,
        peer: &Peer,
        session_id: i64,
        xid: i32,
        op: i32,
        err: DecodeError,
    ) {
        let (line, code) = match err {
            // Opcodes ZooKeeper uses internally are valid request types there:
            // they fail in prep and the connection stays (PrepRequestProcessor).
            DecodeError::UnknownOpCode(code) if code == OpCode::DeleteContainer.code() => (
                "client sent the internal deleteContainer: answering BADARGUMENTS".to_string(),
                ErrorCode::BadArguments,
            ),
            DecodeError::UnknownOpCode(code) if code == OpCode::CreateSession.code() => (
                "client sent the internal createSession: answering MARSHALLINGERROR".to_string(),
                ErrorCode::MarshallingError,
            ),
            DecodeError::UnknownOpCode(code) => {
                self.out.log(
                    Level::Warn,
                    format!("{peer} session 0x{session_id:x}: unknown opcode {code}: answering UNIMPLEMENTED and closing"),
                );
                // ZooKeeper's UnimplementedRequestProcessor answers with zxid -1.
                let frame = encode_reply(xid, -1, ErrorCode::Unimplemented, None);
                self.push(conn, Pending::Ready(frame));
                self.push(conn, Pending::Close);
                return;
            }
            err => (
                format!("undecodable request (op {op}): {err}: answering MARSHALLINGERROR"),
                ErrorCode::MarshallingError,
            ),
        };
        self.out.log(
            Level::Warn,
            format!("{peer} session 0x{session_id:x}: {line}"),
        );
        self.push_error(conn, xid, code);
    }

    /// `auth` packets change the connection's identities at once, so that every
    /// later request is checked with them. Clients send them with xid -4 (the
    /// Java client) or a counted xid (others); the reply echoes it, as ZooKeeper's.
    fn on_auth(&mut self, conn: ConnId, xid: i32, packet: proto::ops::AuthPacket, nulls: &Nulls) {
        let super_digest = self.settings.super_digest.clone();
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let credential = (!nulls.contains(NullAt::AuthCredential)).then_some(&packet.auth[..]);
        match tree::acl::authenticate(
            &packet.scheme,
            credential,
            &c.peer.ip,
            super_digest.as_deref(),
        ) {
            Ok(identities) => {
                for id in identities {
                    if !c.auth.contains(&id) {
                        c.auth.push(id);
                    }
                }
                let frame = encode_reply(xid, 0, ErrorCode::Ok, None);
                c.queue.push_back(Pending::Ready(frame));
            }
            Err(err) => {
                let line = format!(
                    "authentication failed for {}: {err}: closing connection",
                    c.peer
                );
                let frame = encode_reply(xid, 0, err.code(), None);
                c.queue.push_back(Pending::Ready(frame));
                c.queue.push_back(Pending::Close);
                self.out.log(Level::Info, line);
            }
        }
    }

    fn on_write(
        &mut self,
        conn: ConnId,
        xid: i32,
        shape: ReplyShape,
        write: WriteOp,
        nulls: &Nulls,
    ) {
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let session_id = c.session_id;
        let auth = c.auth.clone();
        if self.sessions.get(session_id).is_some_and(|s| s.closing) {
            return self.push_error(conn, xid, ErrorCode::SessionExpired);
        }
        if self.disk_full {
            // Nothing can be logged, not even a refusal: answered at once.
            return self.push_error(conn, xid, ErrorCode::SystemError);
        }
        let close = write == WriteOp::CloseSession;
        match self.prepare_with_nulls(session_id, xid, &auth, &write, nulls) {
            Ok(_) => {
                if close {
                    self.sessions.mark_closing(session_id);
                }
                self.await_reply(conn, session_id, xid, shape);
            }
            Err(refusal) => {
                if refusal == PrepareError::Op(ErrorCode::BadArguments) {
                    let peer = &self.conns.get(conn).expect("looked up above").peer;
                    let line = format!(
                        "{peer} session 0x{session_id:x} xid {xid} {:?}: answering BADARGUMENTS: invalid path or argument",
                        shape.op
                    );
                    self.out.log(Level::Info, line);
                }
                self.refuse(conn, session_id, xid, shape, &refusal);
            }
        }
    }

    /// A refused write still goes through the log, so that its reply carries
    /// a zxid of its own and leaves in order after the log (ZooKeeper's error txns).
    fn refuse(
        &mut self,
        conn: ConnId,
        session_id: i64,
        xid: i32,
        shape: ReplyShape,
        refusal: &PrepareError,
    ) {
        if self.prepare_refusal(session_id, xid, refusal).is_some() {
            self.await_reply(conn, session_id, xid, shape);
        } else {
            self.push_error(conn, xid, ErrorCode::SystemError);
        }
    }

    /// Queues the reply slot of the txn just prepared for (session, xid).
    fn await_reply(&mut self, conn: ConnId, session_id: i64, xid: i32, shape: ReplyShape) {
        self.pipeline.wait(session_id, xid, conn);
        let received = self.now.monotonic;
        self.push(
            conn,
            Pending::Write {
                xid,
                shape,
                received,
            },
        );
    }

    pub(crate) fn push(&mut self, conn: ConnId, pending: Pending) {
        if let Some(c) = self.conns.get_mut(conn) {
            if matches!(pending, Pending::Read { .. }) {
                c.reads_queued += 1;
            }
            c.queue.push_back(pending);
        }
    }

    fn push_error(&mut self, conn: ConnId, xid: i32, code: ErrorCode) {
        self.push(
            conn,
            Pending::Answer {
                xid,
                code,
                body: None,
            },
        );
    }

    /// Answers what is at the front of a connection's queue, in order, until
    /// it reaches a request that must still wait.
    pub(crate) fn drain(&mut self, conn: ConnId) {
        loop {
            let applied = self.zxid_applied();
            let Some(c) = self.conns.get_mut(conn) else {
                return;
            };
            let ready = match c.queue.front() {
                None => return,
                Some(Pending::Write { .. }) | Some(Pending::Connecting) => return,
                Some(Pending::Sync { zxid, .. }) if *zxid > applied => return,
                Some(_) => c.queue.pop_front().expect("front exists"),
            };
            if matches!(ready, Pending::Read { .. }) {
                c.reads_queued -= 1;
            }
            match ready {
                Pending::Ready(frame) => {
                    self.stats.packets_sent += 1;
                    self.conns.send(conn, frame, true, applied);
                }
                Pending::Answer { xid, code, body } => {
                    let frame = encode_reply(xid, applied, code, body.as_ref());
                    self.stats.packets_sent += 1;
                    self.conns.send(conn, frame, true, applied);
                }
                Pending::Read {
                    xid,
                    op,
                    request,
                    nulls,
                    received,
                } => self.answer_read(conn, xid, op, request, &nulls, received),
                Pending::Sync {
                    xid,
                    path,
                    received,
                    ..
                } => {
                    let response = match path {
                        Some(path) => Response::Sync(proto::ops::SyncResponse { path }),
                        None => Response::SyncNullPath,
                    };
                    let frame = encode_reply(xid, applied, ErrorCode::Ok, Some(&response));
                    self.stats
                        .record_latency(self.now.monotonic.saturating_sub(received));
                    self.stats.packets_sent += 1;
                    self.conns.send(conn, frame, true, applied);
                }
                Pending::Close => {
                    self.close_conn(conn);
                    return;
                }
                Pending::Write { .. } | Pending::Connecting => unreachable!("handled above"),
            }
        }
    }

    /// Answers a read from the tree as it stands and sends the reply.
    fn answer_read(
        &mut self,
        conn: ConnId,
        xid: i32,
        op: OpCode,
        request: Request,
        nulls: &Nulls,
        received: Duration,
    ) {
        let applied = self.zxid_applied();
        let Some(c) = self.conns.get(conn) else {
            return;
        };
        let session_id = c.session_id;
        let answer =
            requests::answer_read(&mut self.tree, session_id, &c.auth, xid, op, request, nulls);
        self.deliver(&answer.events);
        if answer.error == Some(ErrorCode::BadArguments) {
            let peer = &self.conns.get(conn).expect("looked up above").peer;
            let line = format!(
                "{peer} session 0x{session_id:x} xid {xid} {op:?}: answering BADARGUMENTS: invalid path or argument"
            );
            self.out.log(Level::Info, line);
        }
        self.stats
            .record_latency(self.now.monotonic.saturating_sub(received));
        self.stats.packets_sent += 1;
        self.conns.send(conn, answer.frame, true, applied);
    }

    /// Sends watch events to the connections of the sessions they belong to.
    pub(crate) fn deliver(&mut self, events: &[WatchEvent]) {
        let providers = self.tree.providers();
        for event in events {
            let Some(conn) = self.sessions.get(event.session_id).and_then(|s| s.conn) else {
                continue;
            };
            let Some(c) = self.conns.get(conn) else {
                continue;
            };
            // Events reach only connections that may read the node (CVE-2024-23944).
            if tree::acl::check(&event.acl, proto::perms::READ, &c.auth, providers).is_err() {
                continue;
            }
            let notification = proto::WatcherEvent {
                event_type: event.event_type.code(),
                state: proto::KeeperState::SyncConnected.code(),
                path: event.path.clone(),
            };
            let frame = encode_notification(event.zxid, &notification);
            if self.event_over_credit(conn) {
                continue;
            }
            self.conns.send(conn, frame, false, 0);
        }
    }
}

/// A whole frame holding one record (the handshake reply).
pub(crate) fn frame_of<R: Record>(record: &R) -> Vec<u8> {
    let mut w = Writer::begin_frame();
    record.encode(&mut w);
    w.finish_frame()
}

/// Requests a learner sends to the leader: writes, closeSession and sync.
fn forwarded_by_learners(request: &Request) -> bool {
    matches!(
        request,
        Request::Create(_)
            | Request::Create2(_)
            | Request::CreateContainer(_)
            | Request::CreateTtl(_)
            | Request::Delete(_)
            | Request::SetData(_)
            | Request::SetAcl(_)
            | Request::Check(_)
            | Request::Multi(_)
            | Request::CloseSession
            | Request::Sync(_)
    )
}
