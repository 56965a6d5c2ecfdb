//! The write path: preparing txns, and what happens when the log says they
//! are durable — commit, apply in zxid order, fire watches, fill in replies.
//!
//! No write's reply is queued for a connection before its txn is applied,
//! and no txn is applied before it is committed (standalone: durable).

use std::time::Duration;

use proto::{ConnectResponse, ErrorCode, Id, Nulls, OpCode};
use tree::{Caller, PrepareError, Txn, TxnHeader, WriteOp};

use crate::client::frame_of;
use crate::connections::Pending;
use crate::io::{ConnId, Level, StorageFailure};
use crate::node::Node;
use crate::requests::{self, ReplyShape};
use crate::roles::Role;
use crate::session_id::session_password;

impl Node {
    /// Prepares a write as the next txn and queues it for the log.
    pub(crate) fn prepare(
        &mut self,
        session_id: i64,
        cxid: i32,
        auth: &[Id],
        op: &WriteOp,
    ) -> Result<i64, PrepareError> {
        self.prepare_with_nulls(session_id, cxid, auth, op, &Nulls::NONE)
    }

    /// [`Node::prepare`] for a request in which the client sent nulls: tree
    /// answers them where ZooKeeper first touches them.
    pub(crate) fn prepare_with_nulls(
        &mut self,
        session_id: i64,
        cxid: i32,
        auth: &[Id],
        op: &WriteOp,
        nulls: &Nulls,
    ) -> Result<i64, PrepareError> {
        if self.pipeline.failed().is_some() || !self.role.serving() {
            return Err(PrepareError::Op(ErrorCode::SystemError));
        }
        let zxid = self.pipeline.zxid_next();
        if matches!(self.role, Role::Leading(_)) && (zxid as u32) > self.settings.zxid_counter_max {
            self.go_looking(&format!(
                "the zxid counter reached 0x{:x}: a new epoch starts with an election (ZOOKEEPER-1277)",
                zxid as u32
            ));
            return Err(PrepareError::Op(ErrorCode::ConnectionLoss));
        }
        let caller = Caller { session_id, auth };
        let txn = match self.tree.prepare_with_nulls(&caller, op, nulls, zxid) {
            Err(PrepareError::Op(ErrorCode::BadArguments)) if *op == WriteOp::CloseSession => {
                // Too many ephemerals for one txn: delete them one by one first.
                self.shed_ephemerals(session_id, cxid, auth);
                self.tree.prepare(&caller, op, self.pipeline.zxid_next())?
            }
            result => result?,
        };
        Ok(self.enqueue(session_id, cxid, txn))
    }

    /// Logs a write that prepare refused, so that its reply carries a zxid of
    /// its own and leaves in order after the log, as ZooKeeper's error txns:
    /// a refusal of the whole request, or one code per op of a multi.
    pub(crate) fn prepare_refusal(
        &mut self,
        session_id: i64,
        cxid: i32,
        refusal: &PrepareError,
    ) -> Option<i64> {
        let txn = match refusal {
            PrepareError::Op(code) => Txn::Refused { code: code.code() },
            PrepareError::Multi(codes) => Txn::Failed {
                codes: codes.iter().map(|code| code.code()).collect(),
            },
        };
        (self.pipeline.failed().is_none() && self.role.serving())
            .then(|| self.enqueue(session_id, cxid, txn))
    }

    fn enqueue(&mut self, session_id: i64, cxid: i32, txn: Txn) -> i64 {
        let zxid = self.pipeline.zxid_next();
        let header = TxnHeader {
            session_id,
            cxid,
            zxid,
            time_ms: self.now.wall_ms,
        };
        let payload = self.pipeline.enqueue(header, txn);
        if let Role::Leading(leading) = &mut self.role {
            // The same bytes go to the log and to every follower, at once.
            let mut actions = Vec::new();
            leading.leader.propose(zxid, payload, &mut actions);
            self.leader_actions(actions);
        }
        zxid
    }

    /// Prepares the deletion of every ephemeral a closing session owns, each
    /// in a txn of its own (one closeSession txn could exceed the log's
    /// record bound; ZooKeeper's would exceed jute.maxbuffer).
    fn shed_ephemerals(&mut self, session_id: i64, cxid: i32, auth: &[Id]) {
        // Pending creates too: a closeSession sent behind its own ephemeral
        // creates would otherwise stay too large (found by fk-sim, seed 41
        // of the many-ephemerals mix).
        let paths = self.tree.ephemerals_as_prepared(session_id);
        self.out.log(
            Level::Warn,
            format!(
                "closing session 0x{session_id:x} with too many ephemerals ({}) for one txn: deleting them one by one",
                paths.len()
            ),
        );
        for path in paths {
            // A path already being deleted fails here, harmlessly.
            let _ = self.prepare(session_id, cxid, auth, &WriteOp::DeleteEphemeral { path });
        }
    }

    pub(crate) fn on_durable(
        &mut self,
        zxid: i64,
        records: usize,
        record_bytes: u64,
        sync_time: Duration,
    ) {
        if self.disk_full {
            // The log wrote: it has room again.
            self.disk_full = false;
            self.out
                .log(Level::Info, "the log has room again: writes resume".into());
        }
        self.stats
            .record_sync(sync_time, self.settings.fsync_warning_threshold_ms);
        self.pipeline.durable(zxid);
        match &mut self.role {
            // Standalone: durable here is durable on a quorum of one.
            Role::Standalone => self.pipeline.commit(zxid),
            Role::Leading(leading) => {
                let mut actions = Vec::new();
                leading.leader.local_durable(zxid, &mut actions);
                self.leader_actions(actions);
            }
            Role::Learning(learning) => {
                let mut actions = Vec::new();
                learning.learner.durable(zxid, &mut actions);
                self.learner_actions(actions);
            }
            Role::Looking(_) => self.maybe_start_election(),
        }
        self.apply_committed();
        self.release_syncs();
        self.snapshots.logged(
            records as u64,
            record_bytes,
            &self.tree,
            self.now.monotonic,
            &mut self.out,
        );
    }

    /// The log failed: writes stop for good, reads go on. Writes in flight
    /// were never acknowledged and may or may not come back: their
    /// connections are closed; sessions still being created are refused.
    pub(crate) fn on_log_failed(&mut self, failure: StorageFailure) {
        if self.pipeline.failed().is_none() {
            self.out.log(
                Level::Error,
                format!("the log failed ({failure}): refusing all writes from now on"),
            );
        }
        let applied = self.zxid_applied();
        let dropped = self.pipeline.fail(failure, applied);
        self.tree.discard_pending();
        // A write in flight may have reached the disk without its sync and
        // come back at the next start: its outcome is unknown, so its client
        // gets what ZooKeeper's clients get when the server stops — a closed
        // connection (CONNECTIONLOSS) — never an error that says it failed.
        // Found by the simulator (sim/tests/regressions.rs).
        for (header, txn, _) in dropped {
            let Some(conn) = self.pipeline.waiter(header.session_id, header.cxid) else {
                continue;
            };
            if matches!(txn, Txn::CreateSession { .. }) {
                self.sessions.remove(header.session_id);
            }
            self.close_conn(conn);
        }
        // Sessions whose createSession never made it are gone too.
        let unborn: Vec<i64> = self
            .sessions
            .iter()
            .filter(|(id, _)| !self.tree.has_session(*id))
            .map(|(id, _)| id)
            .collect();
        for session_id in unborn {
            if let Some(conn) = self.sessions.remove(session_id).and_then(|s| s.conn) {
                self.close_conn(conn);
            }
        }
        self.release_syncs();
        // A member that cannot persist must not lead, follow or vote.
        self.go_looking("the log failed");
    }

    /// Applies every committed txn, in zxid order.
    pub(crate) fn apply_committed(&mut self) {
        while let Some((header, txn, payload)) = self.pipeline.pop_committed() {
            self.history.push(header.zxid, payload);
            self.apply(header, txn);
            // A sync that waited for this txn is answered now, with what its
            // client queued behind it, before later txns apply — they may
            // be that client's own later writes (found by fk-sim: a sync
            // answered with the zxid of the create sent after it).
            if !self.sync_waiters.is_empty() {
                self.release_syncs();
            }
        }
    }

    fn apply(&mut self, header: TxnHeader, txn: Txn) {
        let applied = self.tree.apply(&header, &txn);
        self.deliver(&applied.events);
        if let Some(conn) = self.pipeline.waiter(header.session_id, header.cxid) {
            match &txn {
                Txn::CreateSession { .. } => self.session_created(conn, &header),
                _ => {
                    let shape = self.reply_shape(conn, &header, &txn);
                    if let Some(shape) = shape {
                        let frame = requests::write_reply(
                            header.cxid,
                            header.zxid,
                            &shape,
                            &applied.result,
                        );
                        self.complete(conn, &header, &txn, frame);
                    }
                }
            }
        }
        if matches!(txn, Txn::CloseSession { .. }) {
            self.finish_session(header.session_id);
        }
    }

    /// The shape of the reply `conn` waits for from this txn, if its first
    /// waiting write with the txn's cxid is one this txn answers.
    fn reply_shape(&self, conn: ConnId, header: &TxnHeader, txn: &Txn) -> Option<ReplyShape> {
        let c = self.conns.get(conn)?;
        c.queue.iter().find_map(|p| match p {
            Pending::Write { xid, shape, .. } if *xid == header.cxid => {
                answers(txn, shape.op).then(|| shape.clone())
            }
            _ => None,
        })
    }

    /// Fills in the reply slot for (session, cxid) on `conn` and sends what
    /// is now ready.
    fn complete(&mut self, conn: ConnId, header: &TxnHeader, txn: &Txn, frame: Vec<u8>) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let slot = c.queue.iter_mut().find(|p| {
            matches!(p, Pending::Write { xid, shape, .. } if *xid == header.cxid && answers(txn, shape.op))
        });
        let Some(slot) = slot else {
            return;
        };
        if let Pending::Write { received, .. } = slot {
            let latency = self.now.monotonic.saturating_sub(*received);
            self.stats.record_latency(latency);
        }
        *slot = Pending::Ready(frame);
        self.pipeline.unwait(header.session_id, header.cxid, conn);
        self.drain(conn);
    }

    /// A session's createSession txn is applied: its handshake is answered.
    fn session_created(&mut self, conn: ConnId, header: &TxnHeader) {
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        let Some(slot) = c
            .queue
            .iter_mut()
            .find(|p| matches!(p, Pending::Connecting))
        else {
            return;
        };
        let response = ConnectResponse {
            protocol_version: 0,
            timeout_ms: c.timeout_ms,
            session_id: header.session_id,
            password: session_password(header.session_id).to_vec(),
            read_only: c.read_only_flag.map(|_| false),
        };
        *slot = Pending::Ready(frame_of(&response));
        self.pipeline.unwait(header.session_id, 0, conn);
        self.drain(conn);
    }

    /// Forgets a closed session; its connection closes after what it has queued.
    fn finish_session(&mut self, session_id: i64) {
        let Some(conn) = self.sessions.remove(session_id).and_then(|s| s.conn) else {
            return;
        };
        self.push(conn, Pending::Close);
        self.drain(conn);
    }

    /// Answers every `sync` whose zxid is now applied.
    pub(crate) fn release_syncs(&mut self) {
        let waiters: Vec<ConnId> = self.sync_waiters.iter().copied().collect();
        for conn in waiters {
            self.drain(conn);
            let waiting = self
                .conns
                .get(conn)
                .is_some_and(|c| c.queue.iter().any(|p| matches!(p, Pending::Sync { .. })));
            if !waiting {
                self.sync_waiters.remove(&conn);
            }
        }
    }
}

/// Whether `txn` is the outcome of a request with opcode `op` (a refusal
/// answers any write). Txns the server made itself under a client's cxid —
/// the ephemeral deletions before a large closeSession — answer nothing.
fn answers(txn: &Txn, op: OpCode) -> bool {
    match txn {
        Txn::Failed { .. } | Txn::Refused { .. } => true,
        Txn::CreateSession { .. } => false,
        Txn::CloseSession { .. } => op == OpCode::CloseSession,
        Txn::Create { .. } => matches!(
            op,
            OpCode::Create | OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl
        ),
        Txn::Delete { .. } => op == OpCode::Delete,
        Txn::SetData { .. } => op == OpCode::SetData,
        Txn::SetAcl { .. } => op == OpCode::SetAcl,
        Txn::Check { .. } => op == OpCode::Check,
        Txn::Multi(_) => op == OpCode::Multi,
    }
}
