//! The node as leader: carrying out [`replication::leader::Leader`]'s
//! actions, proposing every prepared txn, committing on quorum acks, and
//! serving learners' forwarded requests, revalidations and syncs.

use std::collections::BTreeMap;

use bytes::Bytes;
use proto::ops::Request;
use proto::{ErrorCode, OpCode, Reader};
use replication::leader::{make_zxid, Leader, LeaderAction, LeaderConfig, LinkId};
use replication::messages::ForwardedRequest;
use replication::{LearnerMessage, QuorumPacket};
use tree::{PrepareError, WriteOp};

use crate::io::{Action, EpochKind, Level};
use crate::node::Node;
use crate::requests::{self, Classified};
use crate::roles::{Leading, Role};
use crate::snapshots::CHUNK_BYTES;

/// Snapshot chunks sent to one learner per turn, so a SNAP costs the
/// ordering core a bounded slice of each turn.
const SNAPSHOT_CHUNKS_PER_TURN_MAX: usize = 2;

impl Node {
    pub(crate) fn become_leader(&mut self) {
        let settings = self.settings.ensemble.clone().expect("only ensembles lead");
        assert!(
            self.recovering_voteless().is_none(),
            "a server recovering lost records never leads (its election abstains)"
        );
        // ZAB: everything in the new leader's log is committed in its epoch.
        let durable = self.pipeline.zxid_durable();
        if durable > self.pipeline.zxid_commit_known() {
            self.pipeline.commit(durable);
        }
        self.apply_committed();
        let config = LeaderConfig {
            my_sid: settings.my_sid,
            ensemble: settings.ensemble.clone(),
            tick_ms: u64::from(self.settings.tick_time_ms),
            init_limit: u64::from(settings.init_limit),
            sync_limit: u64::from(settings.sync_limit),
            window_txns_max: settings.history_txns_max,
            window_bytes_max: settings.history_bytes_max,
            queue_bytes_max: settings.peer_queue_bytes_max,
            mutation: settings.mutation,
        };
        let history: Vec<(i64, Bytes)> = self.history.iter().cloned().collect();
        let now_ms = self.now_ms();
        let (accepted, current) = self.epochs_for_a_new_role();
        let leader = Leader::new(
            config,
            accepted,
            current,
            history,
            self.zxid_applied(),
            now_ms,
        );
        self.out.log(
            Level::Info,
            format!(
                "leading: discovery starts at zxid 0x{:x}",
                self.zxid_applied()
            ),
        );
        // The leader expires every session in the tree from now on.
        self.sessions = crate::sessions::Sessions::new(self.settings.tick());
        for (id, timeout_ms) in self.tree.sessions() {
            self.sessions
                .insert(id, timeout_ms, None, self.now.monotonic);
        }
        self.role = Role::Leading(Box::new(Leading {
            leader,
            established: false,
            streams: BTreeMap::new(),
            last_tick: self.now.monotonic,
        }));
        let mut actions = Vec::new();
        self.leading().leader.start(&mut actions);
        self.leader_actions(actions);
    }

    pub(crate) fn leading(&mut self) -> &mut Leading {
        match &mut self.role {
            Role::Leading(leading) => leading,
            _ => panic!("not leading"),
        }
    }

    /// Carries out what the leader decided, and whatever that leads to, in
    /// the order decided: actions produced while carrying out one are queued
    /// behind those already waiting, so each learner's packets stay in order.
    pub(crate) fn leader_actions(&mut self, actions: Vec<LeaderAction>) {
        self.leader_queue.extend(actions);
        if self.leader_draining {
            return;
        }
        self.leader_draining = true;
        while let Some(action) = self.leader_queue.pop_front() {
            if !matches!(self.role, Role::Leading(_)) {
                self.leader_queue.clear();
                break;
            }
            let mut more = Vec::new();
            match action {
                LeaderAction::Send { link, packet } => {
                    self.out.push(Action::PeerSend { link, packet })
                }
                LeaderAction::Close { link, reason } => {
                    self.out.log(
                        Level::Warn,
                        format!("closing learner link {link}: {reason}"),
                    );
                    self.leading().streams.remove(&link);
                    self.out.push(Action::PeerClose { link });
                }
                LeaderAction::PersistAcceptedEpoch { epoch } => {
                    self.persist_epoch(EpochKind::Accepted, epoch)
                }
                LeaderAction::PersistCurrentEpoch { epoch } => {
                    self.persist_epoch(EpochKind::Current, epoch)
                }
                LeaderAction::StartSnapshot { link } => {
                    let (header, cursor) = self.tree.snapshot_begin();
                    let zxid = cursor.zxid();
                    let leading = self.leading();
                    leading.leader.snapshot_begun(link, zxid, &mut more);
                    leading
                        .leader
                        .snapshot_chunk(link, zxid, Bytes::from(header), &mut more);
                    leading.streams.insert(link, (zxid, cursor));
                }
                LeaderAction::Established { epoch } => self.established(epoch),
                LeaderAction::Commit { zxid } => {
                    self.pipeline.commit(zxid);
                    self.apply_committed();
                    self.release_syncs();
                }
                LeaderAction::Touch { touches } => {
                    for touch in touches {
                        self.sessions.touch(touch.session_id, self.now.monotonic);
                    }
                }
                LeaderAction::Request { link, request } => {
                    self.leading_request(link, request, &mut more)
                }
                LeaderAction::Revalidate {
                    link,
                    session_id,
                    timeout_ms,
                } => {
                    let valid = self.sessions.get(session_id).is_some_and(|s| !s.closing);
                    if valid {
                        let timeout_ms = self.settings.negotiate_session_timeout(timeout_ms);
                        self.sessions
                            .set_timeout(session_id, timeout_ms, self.now.monotonic);
                    }
                    self.leading()
                        .leader
                        .revalidated(link, session_id, valid, &mut more);
                }
                LeaderAction::Log { line } => self.out.log(Level::Warn, line),
                LeaderAction::StepDown { reason } => {
                    self.leader_queue.clear();
                    self.go_looking(&format!("{reason:?}"));
                }
            }
            self.leader_queue.extend(more);
        }
        self.leader_draining = false;
    }

    fn established(&mut self, epoch: i64) {
        self.pipeline.set_floor(make_zxid(epoch, 0));
        self.election_step(replication::ElectionInput::EpochEstablished { epoch });
        self.leading().established = true;
        self.out.log(
            Level::Info,
            format!("leading epoch {epoch}: a quorum is synchronised; serving clients"),
        );
    }

    /// A learner's packet.
    pub(crate) fn leader_received(&mut self, link: LinkId, packet: QuorumPacket) {
        match LearnerMessage::from_packet(&packet) {
            Ok(message) => {
                let now_ms = self.now_ms();
                let mut actions = Vec::new();
                self.leading()
                    .leader
                    .received(link, message, now_ms, &mut actions);
                self.leader_actions(actions);
            }
            Err(err) => {
                self.out.log(
                    Level::Warn,
                    format!("closing learner link {link}: bad packet: {err}"),
                );
                let mut actions = Vec::new();
                self.leading().leader.disconnected(link, &mut actions);
                self.leader_actions(actions);
                self.leading().streams.remove(&link);
                self.out.push(Action::PeerClose { link });
            }
        }
    }

    /// A client request a learner forwarded: prepared as if it came from a
    /// client here; the reply is the learner's to send once it commits.
    fn leading_request(
        &mut self,
        link: LinkId,
        request: ForwardedRequest,
        out: &mut Vec<LeaderAction>,
    ) {
        if !self.leading().established {
            return;
        }
        let ForwardedRequest {
            session_id,
            cxid,
            op_type,
            body,
            authinfo,
        } = request;
        if op_type == OpCode::Sync.code() {
            // Answered right after the COMMIT of the last txn proposed
            // before it (the leader keeps the order).
            self.leading().leader.sync_requested(link, out);
            return;
        }
        if op_type == OpCode::CreateSession.code() {
            let requested = body
                .get(..4)
                .map_or(0, |b| i32::from_be_bytes(b.try_into().expect("4 bytes")));
            let timeout_ms = self.settings.negotiate_session_timeout(requested);
            self.sessions
                .insert(session_id, timeout_ms, None, self.now.monotonic);
            if self
                .prepare(
                    session_id,
                    cxid,
                    &authinfo,
                    &WriteOp::CreateSession { timeout_ms },
                )
                .is_err()
            {
                self.sessions.remove(session_id);
            }
            return;
        }
        let live = self.sessions.get(session_id).is_some_and(|s| !s.closing);
        if !live {
            self.prepare_refusal(
                session_id,
                cxid,
                &PrepareError::Op(ErrorCode::SessionExpired),
            );
            return;
        }
        self.sessions.touch(session_id, self.now.monotonic);
        let write = if op_type == OpCode::CloseSession.code() {
            Ok(WriteOp::CloseSession)
        } else {
            decode_write(op_type, &body)
        };
        let write = match write {
            Ok(write) => write,
            Err(code) => {
                self.prepare_refusal(session_id, cxid, &PrepareError::Op(code));
                return;
            }
        };
        let close = write == WriteOp::CloseSession;
        match self.prepare(session_id, cxid, &authinfo, &write) {
            Ok(_) if close => self.sessions.mark_closing(session_id),
            Ok(_) => {}
            Err(refusal) => {
                self.prepare_refusal(session_id, cxid, &refusal);
            }
        }
    }

    /// Feeds each learner's streaming snapshot a bounded number of chunks.
    pub(crate) fn pump_learner_snapshots(&mut self) {
        let Role::Leading(leading) = &mut self.role else {
            return;
        };
        let links: Vec<LinkId> = leading.streams.keys().copied().collect();
        let mut actions = Vec::new();
        for link in links {
            for _ in 0..SNAPSHOT_CHUNKS_PER_TURN_MAX {
                if !leading.leader.snapshot_wants_chunk(link, CHUNK_BYTES) {
                    break;
                }
                let (zxid, cursor) = leading.streams.get_mut(&link).expect("listed above");
                let zxid = *zxid;
                if cursor.is_done() {
                    leading.streams.remove(&link);
                    leading.leader.snapshot_end(link, zxid, &mut actions);
                    break;
                }
                let chunk = self.tree.snapshot_chunk(cursor, CHUNK_BYTES);
                leading
                    .leader
                    .snapshot_chunk(link, zxid, Bytes::from(chunk), &mut actions);
            }
        }
        self.leader_actions(actions);
    }

    /// Whether a learner's snapshot can take another chunk now.
    pub(crate) fn learner_snapshot_pending(&self) -> bool {
        match &self.role {
            Role::Leading(leading) => leading
                .streams
                .keys()
                .any(|link| leading.leader.snapshot_wants_chunk(*link, CHUNK_BYTES)),
            _ => false,
        }
    }
}

/// A forwarded write's body as a tree op, or the error its reply carries.
fn decode_write(op_type: i32, body: &[u8]) -> Result<WriteOp, ErrorCode> {
    let op = OpCode::from_code(op_type).ok_or(ErrorCode::Unimplemented)?;
    let request =
        Request::decode(op, &mut Reader::new(body)).map_err(|_| ErrorCode::MarshallingError)?;
    match requests::classify(request) {
        Classified::Write(_, write) => Ok(write),
        Classified::Malformed(code) => Err(code),
        Classified::Read(_) => Err(ErrorCode::BadArguments),
    }
}
