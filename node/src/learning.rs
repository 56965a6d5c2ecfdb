//! The node as a learner (follower or observer): carrying out
//! [`replication::learner::Learner`]'s actions — logging the leader's txns,
//! applying them once committed and durable, loading a snapshot from the
//! leader — and forwarding clients' writes, session requests and syncs.

use std::collections::{BTreeMap, VecDeque};

use bytes::Bytes;
use proto::{ConnectRequest, ConnectResponse, Id, Writer};
use replication::leader::LinkId;
use replication::learner::{Learner, LearnerAction, LearnerConfig, LearnerPhase};
use replication::messages::{ForwardedRequest, SessionTouch};
use replication::{LeaderMessage, LearnerType, QuorumPacket, Sid};
use tree::DataTree;

use crate::client::frame_of;
use crate::connections::Pending;
use crate::io::{Action, ConnId, EpochKind, Level};
use crate::node::Node;
use crate::roles::{Learning, Role};
use crate::session_id::{session_password, PASSWORD_LENGTH};

/// How soon a learner dials its leader again after a failed attempt: 5 ms,
/// doubling up to 100 ms (ZooKeeper waits 100 ms each time). The usual
/// failure is a dial a few milliseconds before the leader takes up its
/// role: both ended the same finalize wait, and a flat 100 ms added that
/// much to every election (fk-sidebyside's failover gap, and start-up).
fn connect_retry_delay(retries: u32) -> std::time::Duration {
    std::time::Duration::from_millis((5u64 << retries.min(5)).min(100))
}

impl Node {
    pub(crate) fn become_learner(&mut self, kind: LearnerType, leader_sid: Sid) {
        let settings = self
            .settings
            .ensemble
            .clone()
            .expect("only ensembles learn");
        let config = LearnerConfig {
            my_sid: settings.my_sid,
            kind,
            tick_ms: u64::from(self.settings.tick_time_ms),
            init_limit: u64::from(settings.init_limit),
            sync_limit: u64::from(settings.sync_limit),
            mutation: settings.mutation,
            recovering: self.recovering_voteless(),
        };
        let (accepted, current) = self.epochs_for_a_new_role();
        let learner = Learner::new(
            config,
            accepted,
            current,
            self.pipeline.zxid_durable(),
            self.now_ms(),
        );
        self.out.log(
            Level::Info,
            format!("{kind:?} of leader {leader_sid}: connecting"),
        );
        self.role = Role::Learning(Box::new(Learning {
            learner,
            kind,
            leader_sid,
            link: None,
            serving: false,
            snapshot: None,
            touched: BTreeMap::new(),
            syncs: VecDeque::new(),
            revalidating: BTreeMap::new(),
            held: VecDeque::new(),
            holding: false,
            last_tick: self.now.monotonic,
            connect_started: self.now.monotonic,
            retry_at: None,
            retries: 0,
        }));
        self.out.push(Action::ConnectToLeader { sid: leader_sid });
    }

    pub(crate) fn learning(&mut self) -> &mut Learning {
        match &mut self.role {
            Role::Learning(learning) => learning,
            _ => panic!("not learning"),
        }
    }

    /// The leader could not be reached (the dial failed, or the connection
    /// closed before the leader answered FOLLOWERINFO — it may not have
    /// taken up its role yet): dial again shortly, for up to initLimit
    /// ticks, then give up and look again.
    pub(crate) fn learner_connection_lost(&mut self, reason: &str) {
        let settings = self
            .settings
            .ensemble
            .as_ref()
            .expect("only ensembles learn");
        let limit = self.settings.tick() * settings.init_limit;
        let now = self.now.monotonic;
        let (accepted, current) = self.epochs_for_a_new_role();
        let (durable, now_ms) = (self.pipeline.zxid_durable(), self.now_ms());
        let learning = self.learning();
        let registering = matches!(
            learning.learner.phase(),
            LearnerPhase::Connecting | LearnerPhase::AwaitingLeaderInfo
        );
        if !registering || now.saturating_sub(learning.connect_started) > limit {
            return self.go_looking(reason);
        }
        learning.link = None;
        learning.learner = Learner::new(
            learning.learner.config().clone(),
            accepted,
            current,
            durable,
            now_ms,
        );
        learning.retry_at = Some(now + connect_retry_delay(learning.retries));
        learning.retries += 1;
    }

    /// The connection to the leader is up.
    pub(crate) fn learner_connected(&mut self, link: LinkId) {
        let now_ms = self.now_ms();
        let learning = self.learning();
        if learning.link.is_some() {
            self.out.push(Action::PeerClose { link });
            return;
        }
        learning.link = Some(link);
        let mut actions = Vec::new();
        learning.learner.connected(now_ms, &mut actions);
        self.learner_actions(actions);
    }

    /// A packet from the leader.
    pub(crate) fn learner_received(&mut self, link: LinkId, packet: QuorumPacket) {
        let learning = self.learning();
        if learning.link != Some(link) {
            self.out.push(Action::PeerClose { link });
            return;
        }
        if learning.holding {
            learning.held.push_back(packet);
            return;
        }
        match LeaderMessage::from_packet(&packet) {
            Ok(message) => {
                let now_ms = self.now_ms();
                let mut actions = Vec::new();
                self.learning()
                    .learner
                    .received(message, now_ms, &mut actions);
                self.learner_actions(actions);
            }
            Err(err) => self.go_looking(&format!("the leader sent a bad packet: {err}")),
        }
    }

    /// Packets held while the log was cut or the state reloaded, in order.
    pub(crate) fn release_held(&mut self) {
        let Role::Learning(learning) = &mut self.role else {
            return;
        };
        learning.holding = false;
        let Some(link) = learning.link else {
            return;
        };
        while let Some(packet) = self.learning_held_pop() {
            self.learner_received(link, packet);
            if !matches!(&self.role, Role::Learning(l) if !l.holding) {
                return;
            }
        }
    }

    fn learning_held_pop(&mut self) -> Option<QuorumPacket> {
        match &mut self.role {
            Role::Learning(learning) => learning.held.pop_front(),
            _ => None,
        }
    }

    /// Carries out what the learner decided, in order (see `leader_actions`).
    pub(crate) fn learner_actions(&mut self, actions: Vec<LearnerAction>) {
        self.learner_queue.extend(actions);
        if self.learner_draining {
            return;
        }
        self.learner_draining = true;
        while let Some(action) = self.learner_queue.pop_front() {
            if !matches!(self.role, Role::Learning(_)) {
                self.learner_queue.clear();
                break;
            }
            let mut more = Vec::new();
            self.learner_action(action, &mut more);
            self.learner_queue.extend(more);
        }
        self.learner_draining = false;
    }

    fn learner_action(&mut self, action: LearnerAction, more: &mut Vec<LearnerAction>) {
        match action {
            LearnerAction::Send { packet } => {
                if let Some(link) = self.learning().link {
                    self.out.push(Action::PeerSend { link, packet });
                }
            }
            LearnerAction::PersistAcceptedEpoch { epoch } => {
                self.persist_epoch(EpochKind::Accepted, epoch)
            }
            LearnerAction::PersistCurrentEpoch { epoch } => {
                self.persist_epoch(EpochKind::Current, epoch)
            }
            LearnerAction::Truncate { zxid } => self.learner_truncate(zxid),
            LearnerAction::SnapshotBegin { zxid } => {
                self.learning().snapshot = Some((zxid, Vec::new()))
            }
            LearnerAction::SnapshotChunk { chunk } => {
                if let Some((_, bytes)) = &mut self.learning().snapshot {
                    bytes.extend_from_slice(&chunk);
                }
            }
            LearnerAction::SnapshotEnd { zxid } => self.load_leader_snapshot(zxid),
            LearnerAction::Txn { zxid, txn } => match tree::decode_record(&txn) {
                Ok((header, record)) if header.zxid == zxid => {
                    self.pipeline.enqueue_received(header, record, txn);
                }
                Ok(_) => self.go_looking(&format!("txn 0x{zxid:x}: the header names another zxid")),
                Err(err) => self.go_looking(&format!("txn 0x{zxid:x} does not decode: {err}")),
            },
            LearnerAction::Commit { zxid } => {
                let zxid = zxid.min(self.pipeline.zxid_prepared());
                self.pipeline.commit(zxid);
                self.apply_committed();
                self.release_syncs();
            }
            LearnerAction::UpToDate => {
                let learning = self.learning();
                learning.serving = true;
                let (kind, leader) = (learning.kind, learning.leader_sid);
                let epoch = learning.learner.leader_epoch();
                // Later lookers match this server's vote with the leader's
                // (ZooKeeper's updateElectionVote).
                self.election_step(replication::ElectionInput::EpochEstablished { epoch });
                self.out.log(
                    Level::Info,
                    format!("{kind:?} of leader {leader}: synchronised; serving clients"),
                );
                self.recovered_from_peers(leader);
            }
            LearnerAction::PingRequested { zxid } => {
                let learning = self.learning();
                let touches = std::mem::take(&mut learning.touched)
                    .into_iter()
                    .map(|(session_id, timeout_ms)| SessionTouch {
                        session_id,
                        timeout_ms,
                    })
                    .collect();
                learning.learner.ping_reply(zxid, touches, more);
            }
            LearnerAction::Revalidated { session_id, valid } => self.revalidated(session_id, valid),
            LearnerAction::SyncAnswered => {
                let commit = self.pipeline.zxid_commit_known();
                if let Some(conn) = self.learning().syncs.pop_front() {
                    if let Some(c) = self.conns.get_mut(conn) {
                        let waiting = c
                            .queue
                            .iter_mut()
                            .find(|p| matches!(p, Pending::Sync { zxid, .. } if *zxid == i64::MAX));
                        if let Some(Pending::Sync { zxid, .. }) = waiting {
                            *zxid = commit;
                        }
                    }
                    self.release_syncs();
                }
            }
            LearnerAction::Lost { reason } => self.go_looking(&format!("{reason:?}")),
        }
    }

    /// TRUNC: the log is cut after `zxid`; a tree that already applied txns
    /// past it is reloaded from disk once the cut is durable — only then
    /// (`Input::LogTruncated`): a reload beside the cut could read the txns
    /// being cut and keep them in the tree.
    fn learner_truncate(&mut self, zxid: i64) {
        let reload = self.zxid_applied() > zxid;
        if !reload {
            self.pipeline.truncate(zxid);
        }
        self.truncating = true;
        self.learning().holding = true;
        self.out.push(Action::TruncateLog { zxid });
        if reload {
            self.reloading = true;
            self.truncate_reload_to = Some(zxid);
        }
    }

    /// The snapshot the leader streamed is complete: it becomes the tree,
    /// and is written to disk; NEWLEADER is acknowledged only once it is sealed.
    fn load_leader_snapshot(&mut self, zxid: i64) {
        let Some((_, bytes)) = self.learning().snapshot.take() else {
            return;
        };
        let tree = match DataTree::from_snapshot_with_hash_seed(&bytes, self.tree.hash_seed()) {
            Ok(tree) => tree,
            Err(err) => {
                return self.go_looking(&format!("the leader's snapshot does not load: {err}"))
            }
        };
        if tree.last_processed_zxid() != zxid {
            return self.go_looking("the leader's snapshot is not at the zxid it announced");
        }
        self.install_tree(tree);
        self.snapshot_unsealed = Some(zxid);
        self.snapshots
            .write_received(zxid, bytes, self.now.monotonic, &mut self.out);
        self.out.log(
            Level::Info,
            format!("loaded the leader's snapshot at 0x{zxid:x}; writing it to disk"),
        );
    }

    /// The leader's snapshot is sealed on disk (or could not be written).
    pub(crate) fn received_snapshot_done(&mut self, zxid: i64, ok: bool) {
        if self.snapshot_unsealed != Some(zxid) {
            return;
        }
        if !ok {
            return self.go_looking("the leader's snapshot could not be written");
        }
        self.snapshot_unsealed = None;
        if let Role::Learning(learning) = &mut self.role {
            let mut actions = Vec::new();
            learning.learner.snapshot_sealed(&mut actions);
            self.learner_actions(actions);
        }
    }

    /// Replaces the tree (a snapshot from the leader, a reload from disk).
    pub(crate) fn install_tree(&mut self, mut tree: DataTree) {
        tree.set_extended_types_enabled(self.settings.extended_types_enabled);
        tree.set_providers(tree::acl::Providers {
            x509: self.settings.x509_enabled,
            sasl: self.settings.sasl_provider_enabled,
        });
        tree.set_txn_bytes_max(self.settings.txn_bytes_max);
        let zxid = tree.last_processed_zxid();
        self.tree = tree;
        self.pipeline.reset(zxid);
        self.history.clear();
    }

    // ----- clients of a learner ------------------------------------------------------

    /// A new session on a learner: its createSession goes to the leader.
    pub(crate) fn learner_create_session(
        &mut self,
        conn: ConnId,
        session_id: i64,
        timeout_ms: i32,
    ) {
        let request = ForwardedRequest {
            session_id,
            cxid: 0,
            op_type: proto::OpCode::CreateSession.code(),
            body: Bytes::copy_from_slice(&timeout_ms.to_be_bytes()),
            authinfo: Vec::new(),
        };
        self.forward(request);
        self.pipeline.wait(session_id, 0, conn);
        self.learning().touched.insert(session_id, timeout_ms);
    }

    /// A reconnect on a learner: the leader says whether the session lives.
    pub(crate) fn learner_revalidate(
        &mut self,
        conn: ConnId,
        request: &ConnectRequest,
        timeout_ms: i32,
    ) {
        let session_id = request.session_id;
        self.learning()
            .revalidating
            .entry(session_id)
            .or_default()
            .push_back(conn);
        let mut actions = Vec::new();
        self.learning()
            .learner
            .revalidate(session_id, timeout_ms, &mut actions);
        self.learner_actions(actions);
        self.push(conn, Pending::Connecting);
    }

    fn revalidated(&mut self, session_id: i64, valid: bool) {
        let Some(conn) = self
            .learning()
            .revalidating
            .get_mut(&session_id)
            .and_then(VecDeque::pop_front)
        else {
            return;
        };
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
        let read_only = c.read_only_flag.map(|_| false);
        let timeout_ms = c.timeout_ms;
        if valid {
            c.session_id = session_id;
            *slot = Pending::Ready(frame_of(&ConnectResponse {
                protocol_version: 0,
                timeout_ms,
                session_id,
                password: session_password(session_id).to_vec(),
                read_only,
            }));
            let previous = self.sessions.get(session_id).and_then(|s| s.conn);
            self.sessions
                .insert(session_id, timeout_ms, Some(conn), self.now.monotonic);
            self.close_previous_conn(previous, conn);
            self.learning().touched.insert(session_id, timeout_ms);
            self.out.log(
                Level::Info,
                format!("session 0x{session_id:x} revalidated by the leader: it moves here"),
            );
        } else {
            *slot = Pending::Ready(frame_of(&ConnectResponse {
                protocol_version: 0,
                timeout_ms: 0,
                session_id: 0,
                password: vec![0; PASSWORD_LENGTH],
                read_only,
            }));
            c.queue.push_back(Pending::Close);
        }
        self.drain(conn);
    }

    /// Sends a client's request to the leader.
    pub(crate) fn forward(&mut self, request: ForwardedRequest) {
        let mut actions = Vec::new();
        self.learning().learner.forward(request, &mut actions);
        self.learner_actions(actions);
    }

    /// Forwards a client's write; its reply is filled in when the txn commits.
    pub(crate) fn learner_write(
        &mut self,
        session_id: i64,
        cxid: i32,
        request: &proto::ops::Request,
        auth: &[Id],
    ) {
        let mut w = Writer::new();
        request.encode(&mut w);
        let forwarded = ForwardedRequest {
            session_id,
            cxid,
            op_type: request.op_code().code(),
            body: Bytes::from(w.into_inner()),
            authinfo: auth.to_vec(),
        };
        self.forward(forwarded);
    }

    /// Notes client activity for the leader's session tracker.
    pub(crate) fn learner_touch(&mut self, session_id: i64, timeout_ms: i32) {
        if let Role::Learning(learning) = &mut self.role {
            learning.touched.insert(session_id, timeout_ms);
        }
    }
}
