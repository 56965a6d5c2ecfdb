//! A small deterministic ensemble for scenario tests: N nodes, FIFO links
//! between them, a disk per node that keeps what was made durable, and a
//! clock. Every action is carried out in the order the nodes emit it; the
//! tests decide who crashes, who is cut off and when time passes.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use bytes::Bytes;
use node::fourlw::NodeReport;
use node::{
    Action, AppendLimits, ConnId, EnsembleSettings, EpochKind, Input, LinkId, LogRecord, Node, Now,
    Peer, Recovered, RequestFrame, Settings,
};
use proto::ops::Request;
use proto::{ConnectRequest, Record};
use replication::{Ensemble, QuorumPacket, ServerSpec, Sid};
use tree::DataTree;

use super::{split_frames, Frame, WALL_START_MS};

/// What a server keeps on disk.
#[derive(Debug, Clone, Default)]
pub struct Disk {
    pub log: Vec<LogRecord>,
    pub snapshot: Option<(i64, Vec<u8>)>,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// wal's "recovering" marker: the log lost records after this zxid.
    pub recovering: Option<i64>,
}

impl Disk {
    /// What recovery finds: the newest snapshot with the log replayed on it.
    pub fn recover(&self) -> Recovered {
        let mut tree = match &self.snapshot {
            Some((_, bytes)) => DataTree::from_snapshot(bytes).expect("snapshots load"),
            None => DataTree::new(),
        };
        for record in &self.log {
            if record.zxid > tree.last_processed_zxid() {
                let (header, txn) = tree::decode_record(&record.payload).expect("records decode");
                tree.apply(&header, &txn);
            }
        }
        Recovered {
            tree,
            history: self.log.clone(),
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            recovering: self.recovering,
        }
    }

    pub fn last_logged(&self) -> i64 {
        let log = self.log.last().map_or(0, |r| r.zxid);
        log.max(self.snapshot.as_ref().map_or(0, |(zxid, _)| *zxid))
    }
}

/// One server of the cluster.
pub struct Server {
    pub node: Option<Node>,
    pub disk: Disk,
    /// The snapshot being written.
    writing: Option<(i64, Vec<u8>)>,
    /// Records appended, not yet reported durable (when durability is held).
    pending: Option<Vec<LogRecord>>,
    /// Hold durability reports (a slow disk).
    pub hold_durable: bool,
    /// Snapshots are written but never reported sealed (a slow snapshot disk).
    pub hold_snapshots: bool,
    /// The server crashes when asked to write currentEpoch, before it is written.
    pub crash_at_current_epoch: bool,
    /// Epoch writes are held, unwritten, until released (a slow disk).
    pub hold_epochs: bool,
    /// Log truncations (TRUNC) are held, undone, until released.
    pub hold_truncations: bool,
    pub held_truncations: Vec<i64>,
    pub held_epochs: Vec<(EpochKind, i64)>,
    /// A snapshot's end was held back.
    held_end: bool,
}

#[derive(Debug)]
enum Event {
    Input(Sid, Input),
    /// The log task cuts the log after the zxid, then reports it. Until this
    /// is delivered the disk is uncut, as in the engine, where the cut runs
    /// on the log task while other disk work (a reload) may run beside it.
    Truncate(Sid, i64),
}

impl Event {
    fn to(&self) -> Sid {
        match self {
            Event::Input(sid, _) | Event::Truncate(sid, _) => *sid,
        }
    }
}

/// A cluster of nodes and everything between them.
pub struct Cluster {
    pub servers: BTreeMap<Sid, Server>,
    pub ensemble: Ensemble,
    pub now: Now,
    events: VecDeque<Event>,
    /// link → (learner, leader)
    links: BTreeMap<LinkId, (Sid, Sid)>,
    next_link: LinkId,
    /// Pairs that cannot talk (both directions).
    pub cut: BTreeSet<(Sid, Sid)>,
    /// Client frames received: (server, conn) → frames.
    pub client_frames: BTreeMap<(Sid, ConnId), Vec<Frame>>,
    pub closed_conns: BTreeSet<(Sid, ConnId)>,
    /// The session each connection's handshake reply named (0: refused).
    pub handshakes: BTreeMap<(Sid, ConnId), i64>,
    next_conn: ConnId,
    pub settings: Settings,
    pub log_lines: Vec<(Sid, String)>,
    /// Servers to crash before the next event.
    crash_queue: Vec<Sid>,
    /// The next dial to a leader is accepted and closed at once, as by a
    /// server that has not taken up its leader role yet.
    pub refuse_next_learner: bool,
    /// A replication bug reintroduced in every node started from now on.
    pub mutation: Option<replication::Mutation>,
    /// Four-letter-word reports answered and not yet taken: (server, request).
    reports: BTreeMap<(Sid, u64), NodeReport>,
    next_report: u64,
}

pub fn ensemble(voters: u64, observers: u64) -> Ensemble {
    let specs = (1..=voters + observers).map(|sid| {
        let kind = if sid > voters { ":observer" } else { "" };
        let value = format!("127.0.0.1:{}:{}{kind}", 2000 + sid, 3000 + sid);
        ServerSpec::parse(sid, &value).expect("a valid server line")
    });
    Ensemble::new(specs).expect("a valid ensemble")
}

impl Cluster {
    pub fn new(voters: u64, observers: u64) -> Cluster {
        Cluster::with_settings(voters, observers, |_| {})
    }

    pub fn with_settings(voters: u64, observers: u64, tweak: impl Fn(&mut Settings)) -> Cluster {
        let ensemble = ensemble(voters, observers);
        let mut settings = Settings {
            tick_time_ms: 100,
            min_session_timeout_ms: 400,
            max_session_timeout_ms: 4000,
            random_seed: 7,
            ..Settings::default()
        };
        tweak(&mut settings);
        let mut cluster = Cluster {
            servers: BTreeMap::new(),
            ensemble: ensemble.clone(),
            now: Now {
                monotonic: Duration::from_secs(1),
                wall_ms: WALL_START_MS,
            },
            events: VecDeque::new(),
            links: BTreeMap::new(),
            next_link: 1,
            cut: BTreeSet::new(),
            client_frames: BTreeMap::new(),
            closed_conns: BTreeSet::new(),
            handshakes: BTreeMap::new(),
            next_conn: 1,
            settings,
            log_lines: Vec::new(),
            crash_queue: Vec::new(),
            refuse_next_learner: false,
            mutation: None,
            reports: BTreeMap::new(),
            next_report: 1,
        };
        for sid in 1..=voters + observers {
            cluster.servers.insert(
                sid,
                Server {
                    node: None,
                    disk: Disk::default(),
                    writing: None,
                    pending: None,
                    hold_durable: false,
                    hold_snapshots: false,
                    crash_at_current_epoch: false,
                    hold_epochs: false,
                    hold_truncations: false,
                    held_truncations: Vec::new(),
                    held_epochs: Vec::new(),
                    held_end: false,
                },
            );
            cluster.start(sid);
        }
        cluster
    }

    fn node_settings(&self, sid: Sid) -> Settings {
        let mut ensemble = EnsembleSettings::new(sid, self.ensemble.clone());
        ensemble.init_limit = 10;
        ensemble.sync_limit = 5;
        ensemble.history_txns_max = 50;
        ensemble.mutation = self.mutation;
        Settings {
            server_id: sid as u8,
            ensemble: Some(ensemble),
            ..self.settings.clone()
        }
    }

    /// Starts (or restarts) a server from its disk.
    pub fn start(&mut self, sid: Sid) {
        let settings = self.node_settings(sid);
        let server = self.servers.get_mut(&sid).unwrap();
        let node = Node::new(
            settings,
            server.disk.recover(),
            AppendLimits::default(),
            self.now,
        );
        node.check_invariants();
        server.node = Some(node);
        self.collect(sid);
    }

    /// Crashes a server: what was not durable is lost; its links break.
    pub fn crash(&mut self, sid: Sid) {
        let server = self.servers.get_mut(&sid).unwrap();
        server.node = None;
        server.pending = None;
        server.writing = None;
        server.held_end = false;
        let links: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, (a, b))| *a == sid || *b == sid)
            .map(|(link, _)| *link)
            .collect();
        for link in links {
            self.break_link(link);
        }
        self.events.retain(|event| event.to() != sid);
    }

    pub fn is_up(&self, sid: Sid) -> bool {
        self.servers.get(&sid).is_some_and(|s| s.node.is_some())
    }

    pub fn node(&self, sid: Sid) -> &Node {
        self.servers[&sid].node.as_ref().expect("the server is up")
    }

    /// Cuts the link between two servers (both directions).
    pub fn partition(&mut self, a: Sid, b: Sid) {
        self.cut.insert((a.min(b), a.max(b)));
        let links: Vec<LinkId> = self
            .links
            .iter()
            .filter(|(_, (x, y))| (x.min(y), x.max(y)) == (&a.min(b), &a.max(b)))
            .map(|(link, _)| *link)
            .collect();
        for link in links {
            self.break_link(link);
        }
    }

    pub fn heal(&mut self) {
        self.cut.clear();
    }

    fn reachable(&self, a: Sid, b: Sid) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b))) && self.is_up(a) && self.is_up(b)
    }

    fn break_link(&mut self, link: LinkId) {
        if let Some((a, b)) = self.links.remove(&link) {
            for sid in [a, b] {
                if self.is_up(sid) {
                    self.events
                        .push_back(Event::Input(sid, Input::PeerClosed { link }));
                }
            }
        }
    }

    fn feed(&mut self, sid: Sid, input: Input) {
        let now = self.now;
        let Some(node) = self.servers.get_mut(&sid).unwrap().node.as_mut() else {
            return;
        };
        node.step(now, input);
        self.collect(sid);
    }

    /// Takes a node's actions and carries them out.
    fn collect(&mut self, sid: Sid) {
        let mut actions = Vec::new();
        let Some(node) = self.servers.get_mut(&sid).unwrap().node.as_mut() else {
            return;
        };
        node.ready(&mut actions);
        node.check_invariants();
        for action in actions {
            self.carry_out(sid, action);
        }
    }

    fn carry_out(&mut self, sid: Sid, action: Action) {
        match action {
            Action::Send { conn, bytes, .. } => {
                let mut rest = &bytes[..];
                if let std::collections::btree_map::Entry::Vacant(entry) =
                    self.handshakes.entry((sid, conn))
                {
                    // The first frame of a connection is its ConnectResponse.
                    let length = i32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
                    let response = proto::ConnectResponse::from_bytes(&rest[4..4 + length])
                        .expect("a ConnectResponse");
                    entry.insert(response.session_id);
                    rest = &rest[4 + length..];
                }
                self.client_frames
                    .entry((sid, conn))
                    .or_default()
                    .extend(split_frames(rest));
            }
            Action::Close { conn } => {
                self.closed_conns.insert((sid, conn));
                self.events
                    .push_back(Event::Input(sid, Input::Closed { conn }));
            }
            Action::Append { records, .. } => {
                let server = self.servers.get_mut(&sid).unwrap();
                assert!(server.pending.is_none(), "one append in flight");
                if server.hold_durable {
                    server.pending = Some(records);
                } else {
                    self.make_durable(sid, records);
                }
            }
            Action::SnapshotBegin { zxid } => {
                self.servers.get_mut(&sid).unwrap().writing = Some((zxid, Vec::new()));
            }
            Action::SnapshotChunk { bytes } => {
                if let Some((_, buffer)) = &mut self.servers.get_mut(&sid).unwrap().writing {
                    buffer.extend_from_slice(&bytes);
                }
                self.events
                    .push_back(Event::Input(sid, Input::SnapshotChunkWritten));
            }
            Action::SnapshotEnd => {
                let server = self.servers.get_mut(&sid).unwrap();
                if server.hold_snapshots {
                    server.held_end = true;
                    return;
                }
                self.seal_snapshot(sid);
            }
            Action::Purge { .. } => self.events.push_back(Event::Input(
                sid,
                Input::PurgeDone {
                    result: Ok(node::PurgeReport::default()),
                },
            )),
            Action::FourLetterWord { request, report } => {
                self.reports.insert((sid, request), *report);
            }
            Action::Log { line, .. } => self.log_lines.push((sid, line)),
            other => self.carry_out_peer(sid, other),
        }
    }

    /// What server `sid` (up) reports for four-letter word `word`: asked and
    /// answered within the step (not for the watch words, whose copy takes
    /// several turns).
    pub fn four_letter_word(&mut self, sid: Sid, word: &str) -> NodeReport {
        let request = self.next_report;
        self.next_report += 1;
        let word = word.to_string();
        self.feed(sid, Input::FourLetterWord { request, word });
        self.reports
            .remove(&(sid, request))
            .expect("the node answers a four-letter word in the same step")
    }

    /// The snapshot being written reaches the disk and is reported sealed.
    fn seal_snapshot(&mut self, sid: Sid) {
        let server = self.servers.get_mut(&sid).unwrap();
        {
            let (zxid, bytes) = server.writing.take().expect("a snapshot in progress");
            let size = bytes.len() as u64;
            server.disk.snapshot = Some((zxid, bytes));
            let written = node::SnapshotWritten {
                zxid,
                file: format!("snapshot.{zxid:x}"),
                bytes: size,
            };
            self.events.push_back(Event::Input(
                sid,
                Input::SnapshotDone {
                    result: Ok(written),
                },
            ));
        }
    }

    /// Lets held snapshot writes finish.
    pub fn release_snapshots(&mut self, sid: Sid) {
        let server = self.servers.get_mut(&sid).unwrap();
        server.hold_snapshots = false;
        if std::mem::take(&mut server.held_end) && server.node.is_some() {
            self.seal_snapshot(sid);
        }
    }

    fn carry_out_peer(&mut self, sid: Sid, action: Action) {
        match action {
            Action::ElectionSend { to, notification } => {
                if self.reachable(sid, to) {
                    self.events.push_back(Event::Input(
                        to,
                        Input::ElectionReceived {
                            from: sid,
                            notification,
                        },
                    ));
                }
            }
            Action::ConnectToLeader { sid: leader } => {
                if std::mem::take(&mut self.refuse_next_learner) {
                    let link = self.next_link;
                    self.next_link += 1;
                    self.events.push_back(Event::Input(
                        sid,
                        Input::PeerConnected {
                            link,
                            outbound: true,
                        },
                    ));
                    self.events
                        .push_back(Event::Input(sid, Input::PeerClosed { link }));
                } else if self.reachable(sid, leader) {
                    let link = self.next_link;
                    self.next_link += 1;
                    self.links.insert(link, (sid, leader));
                    self.events.push_back(Event::Input(
                        leader,
                        Input::PeerConnected {
                            link,
                            outbound: false,
                        },
                    ));
                    self.events.push_back(Event::Input(
                        sid,
                        Input::PeerConnected {
                            link,
                            outbound: true,
                        },
                    ));
                } else {
                    self.events
                        .push_back(Event::Input(sid, Input::PeerConnectFailed { sid: leader }));
                }
            }
            Action::PeerSend { link, packet } => {
                let Some((a, b)) = self.links.get(&link).copied() else {
                    return;
                };
                let to = if a == sid { b } else { a };
                let decoded = QuorumPacket::decode(&Bytes::clone(&packet)).expect("packets decode");
                self.events.push_back(Event::Input(
                    to,
                    Input::PeerReceived {
                        link,
                        packet: decoded,
                    },
                ));
                self.events.push_back(Event::Input(
                    sid,
                    Input::PeerWritten {
                        link,
                        bytes: packet.len(),
                    },
                ));
            }
            Action::PeerClose { link } => self.break_link(link),
            Action::PersistEpoch { kind, epoch } => {
                if kind == EpochKind::Current && self.servers[&sid].crash_at_current_epoch {
                    self.crash_queue.push(sid);
                    return;
                }
                let server = self.servers.get_mut(&sid).unwrap();
                if server.hold_epochs {
                    server.held_epochs.push((kind, epoch));
                    return;
                }
                self.write_epoch(sid, kind, epoch);
            }
            Action::TruncateLog { zxid } => self.events.push_back(Event::Truncate(sid, zxid)),
            Action::Reload => {
                let recovered = self.servers[&sid].disk.recover();
                self.events
                    .push_back(Event::Input(sid, Input::Reloaded(Box::new(recovered))));
            }
            Action::ClearRecovering => self.servers.get_mut(&sid).unwrap().disk.recovering = None,
            other => unreachable!("not a peer action: {other:?}"),
        }
    }

    fn write_epoch(&mut self, sid: Sid, kind: EpochKind, epoch: i64) {
        let disk = &mut self.servers.get_mut(&sid).unwrap().disk;
        match kind {
            EpochKind::Accepted => disk.accepted_epoch = epoch,
            EpochKind::Current => disk.current_epoch = epoch,
        }
        self.events
            .push_back(Event::Input(sid, Input::EpochPersisted));
    }

    /// Lets held truncations run, in order.
    pub fn release_truncations(&mut self, sid: Sid) {
        let server = self.servers.get_mut(&sid).unwrap();
        server.hold_truncations = false;
        for zxid in std::mem::take(&mut server.held_truncations) {
            self.events.push_back(Event::Truncate(sid, zxid));
        }
    }

    /// Lets held epoch writes finish, in order.
    pub fn release_epochs(&mut self, sid: Sid) {
        let server = self.servers.get_mut(&sid).unwrap();
        server.hold_epochs = false;
        for (kind, epoch) in std::mem::take(&mut server.held_epochs) {
            self.write_epoch(sid, kind, epoch);
        }
    }

    fn make_durable(&mut self, sid: Sid, records: Vec<LogRecord>) {
        let server = self.servers.get_mut(&sid).unwrap();
        let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
        let count = records.len();
        let zxid = records.last().expect("appends are never empty").zxid;
        if let Some(last) = server.disk.log.last() {
            assert!(zxid > last.zxid, "the log grows in zxid order");
        }
        server.disk.log.extend(records);
        self.events.push_back(Event::Input(
            sid,
            Input::LogDurable {
                zxid,
                records: count,
                record_bytes: bytes as u64,
                sync_time: Duration::from_micros(50),
            },
        ));
    }

    /// Reports a held append durable.
    pub fn release_durable(&mut self, sid: Sid) {
        if let Some(records) = self.servers.get_mut(&sid).unwrap().pending.take() {
            self.make_durable(sid, records);
        }
    }

    /// Delivers events until none are left (bounded).
    pub fn run(&mut self) {
        for _ in 0..200_000 {
            for sid in std::mem::take(&mut self.crash_queue) {
                self.crash(sid);
            }
            match self.events.pop_front() {
                None => return,
                Some(Event::Input(sid, input)) => self.feed(sid, input),
                Some(Event::Truncate(sid, zxid)) if self.servers[&sid].hold_truncations => {
                    let server = self.servers.get_mut(&sid).unwrap();
                    server.held_truncations.push(zxid);
                }
                Some(Event::Truncate(sid, zxid)) => {
                    let disk = &mut self.servers.get_mut(&sid).unwrap().disk;
                    // ZOOKEEPER-1549: snapshots above the cut go first (the
                    // engine's log task does the same with wal).
                    if disk.snapshot.as_ref().is_some_and(|(s, _)| *s > zxid) {
                        disk.snapshot = None;
                    }
                    disk.log.retain(|r| r.zxid <= zxid);
                    self.feed(sid, Input::LogTruncated { zxid });
                }
            }
        }
        panic!("the cluster never went quiet");
    }

    /// Advances time in steps of `step`, ticking every server and running
    /// the events, for `total`.
    pub fn advance(&mut self, total: Duration, step: Duration) {
        let mut passed = Duration::ZERO;
        while passed < total {
            self.now.monotonic += step;
            self.now.wall_ms += step.as_millis() as i64;
            passed += step;
            let sids: Vec<Sid> = self.servers.keys().copied().collect();
            for sid in sids {
                self.feed(sid, Input::Tick);
            }
            self.run();
        }
    }

    /// Runs until `done` holds, advancing time (bounded).
    pub fn until(&mut self, limit: Duration, done: impl Fn(&Cluster) -> bool) -> bool {
        let step = Duration::from_millis(20);
        let mut passed = Duration::ZERO;
        self.run();
        while !done(self) {
            if passed >= limit {
                return false;
            }
            self.advance(step, step);
            passed += step;
        }
        true
    }

    pub fn leaders(&self) -> Vec<Sid> {
        self.up()
            .filter(|sid| self.node(*sid).mode() == "leader" && self.node(*sid).serving())
            .collect()
    }

    pub fn up(&self) -> impl Iterator<Item = Sid> + '_ {
        self.servers.keys().copied().filter(|sid| self.is_up(*sid))
    }

    /// Every up server serves, and exactly one leads.
    pub fn settled(&self) -> bool {
        self.leaders().len() == 1 && self.up().all(|sid| self.node(sid).serving())
    }

    // ----- clients ----------------------------------------------------------------

    /// Opens a session on `sid`; returns the connection once answered.
    pub fn connect(&mut self, sid: Sid) -> (ConnId, i64) {
        let conn = self.next_conn;
        self.next_conn += 1;
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 4000,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        };
        self.feed(
            sid,
            Input::Connect {
                conn,
                peer: Peer {
                    ip: "127.0.0.1".into(),
                    port: 50000 + conn as u16,
                },
                request,
                auth: Vec::new(),
            },
        );
        self.run();
        (conn, self.session_of(sid, conn))
    }

    /// Reconnects session `session_id` (with its password) on `sid`, as a
    /// client whose connection broke does; returns the new connection.
    pub fn reconnect(&mut self, sid: Sid, session_id: i64) -> ConnId {
        let conn = self.reconnect_unanswered(sid, session_id);
        self.run();
        conn
    }

    /// [`Cluster::reconnect`] without running the cluster: the handshake
    /// is fed, its answer (a revalidation, on a learner) still to come.
    pub fn reconnect_unanswered(&mut self, sid: Sid, session_id: i64) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 4000,
            session_id,
            password: node::session_id::session_password(session_id).to_vec(),
            read_only: Some(false),
        };
        self.feed(
            sid,
            Input::Connect {
                conn,
                peer: Peer {
                    ip: "127.0.0.1".into(),
                    port: 50000 + conn as u16,
                },
                request,
                auth: Vec::new(),
            },
        );
        conn
    }

    /// The session id the handshake reply on `conn` carried (0 if refused or none).
    pub fn session_of(&self, sid: Sid, conn: ConnId) -> i64 {
        self.handshakes.get(&(sid, conn)).copied().unwrap_or(0)
    }

    pub fn request(&mut self, sid: Sid, conn: ConnId, xid: i32, request: Request) {
        let frame = RequestFrame {
            xid,
            op: request.op_code().code(),
            body: Ok(request),
            nulls: proto::Nulls::default(),
        };
        self.feed(
            sid,
            Input::Requests {
                conn,
                requests: vec![frame],
            },
        );
    }

    /// The reply frames (xid > 0) `conn` on `sid` has received.
    pub fn replies(&self, sid: Sid, conn: ConnId) -> Vec<Frame> {
        self.client_frames
            .get(&(sid, conn))
            .map(|frames| frames.iter().filter(|f| f.xid > 0).cloned().collect())
            .unwrap_or_default()
    }
}
