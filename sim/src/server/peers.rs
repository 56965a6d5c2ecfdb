//! A server's ensemble side: the driver of its node's peer actions, as
//! `engine/src/peers.rs` and `engine/src/driver.rs` carry them out.
//!
//! ```text
//!  ElectionSend ─▶ election link to that peer (dialled on demand; the last
//!                  notification is kept and sent again on every new link,
//!                  as ZooKeeper's SendWorker does) ─▶ peer: ElectionReceived
//!  ConnectToLeader ─▶ quorum link (Open, then packets) ─▶ PeerDialed ─▶ PeerConnected
//!                     unreachable: PeerConnectFailed after a connect timeout
//!  PeerSend ─▶ one packet per message on the link, FIFO ─▶ PeerReceived; PeerWritten
//!  PeerClose ─▶ Fin ─▶ both ends: PeerClosed
//!  PersistEpoch ─▶ EpochOp event ─▶ wal::write_epoch_in on the data directory ─▶ EpochPersisted
//!  TruncateLog ─▶ the log task (disk.rs), in order with appends ─▶ LogTruncated
//!  Reload ─▶ ReloadOp event ─▶ recovery from the disk as it is now ─▶ Reloaded
//! ```
//!
//! Election links carry notifications in ZooKeeper's encoding, quorum
//! links jute `QuorumPacket`s: what a node sends is decoded again on the
//! other side, so the codecs are in the loop. One simplification: each
//! server dials its own election link to each peer (ZooKeeper keeps only
//! the one from the larger sid); either way messages between two servers
//! travel FIFO per connection and are lost when it breaks.
//!
//! A crash can be armed to land just before or just after an epoch file
//! write ([`super::CrashPoint::Epoch`]); a failed epoch write stops the
//! process (the engine exits), and its operator starts it again.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bytes::Bytes;
use node::{Action, EnsembleSettings, EpochKind, Input};
use replication::{Notification, PacketType, QuorumPacket, Sid};

use super::{CrashPoint, Server};
use crate::context::{Context, Event};
use crate::network::{Endpoint, LinkId, Payload, PeerPort};
use crate::options::Bug;
use crate::script::{Packet, SyncView, When};
use crate::violation::Violation;

/// A server's place in an ensemble.
#[derive(Debug, Clone)]
pub struct Member {
    pub my_sid: Sid,
    pub settings: EnsembleSettings,
    /// Sid `s` of this ensemble is `Endpoint::Server(base + s)`.
    pub base: u8,
    pub observer: bool,
}

impl Member {
    fn endpoint_of(&self, sid: Sid) -> Endpoint {
        Endpoint::Server(self.base + u8::try_from(sid).expect("sids fit endpoints"))
    }

    fn sid_of(&self, endpoint: u8) -> Sid {
        Sid::from(endpoint - self.base)
    }
}

/// The election link this server dialled to one peer, and the last
/// notification it was asked to send there.
#[derive(Debug, Default)]
struct Outbox {
    link: Option<LinkId>,
    last: Option<Notification>,
}

/// A process's server-to-server connections and peer work in flight.
#[derive(Debug, Default)]
pub(super) struct Peers {
    outboxes: BTreeMap<Sid, Outbox>,
    /// Election links peers dialled here: link → their sid.
    election_in: BTreeMap<LinkId, Sid>,
    /// Quorum links, open or being dialled: link → the peer's sid.
    quorum: BTreeMap<LinkId, Sid>,
    /// Quorum links this server dialled whose dial has not completed.
    dialling: BTreeSet<LinkId>,
    /// The highest COMMIT (or INFORM) received on each quorum link from a
    /// leader: ZAB commits in zxid order, so each one must be higher.
    commits_received: BTreeMap<LinkId, i64>,
    /// A learner's synchronisation with its leader, as the packets on
    /// that quorum link show it (see `scripted`).
    pub(super) sync: Option<(LinkId, SyncView)>,
    /// The epoch write in flight.
    epoch: Option<(EpochKind, i64)>,
    reload_pending: bool,
}

impl Peers {
    /// Whether `link` is one of this process's server-to-server links.
    pub(super) fn knows(&self, link: LinkId) -> bool {
        self.election_in.contains_key(&link)
            || self.quorum.contains_key(&link)
            || self.outboxes.values().any(|o| o.link == Some(link))
    }

    /// Every server-to-server link of this process.
    pub(super) fn links(&self) -> Vec<LinkId> {
        let outgoing = self.outboxes.values().filter_map(|o| o.link);
        let incoming = self.election_in.keys().chain(self.quorum.keys()).copied();
        outgoing.chain(incoming).collect()
    }
}

/// How long a dial to an unreachable server takes to fail (the connect
/// timeout), in milliseconds.
const CONNECT_TIMEOUT_MS: (u64, u64) = (50, 500);

impl Server {
    fn member(&self) -> &Member {
        self.member.as_ref().expect("peer work in an ensemble only")
    }

    fn peers(&mut self) -> &mut Peers {
        &mut self.running.as_mut().expect("acting while up").peers
    }

    /// Carries out one of the node's ensemble actions.
    pub(super) fn carry_out_peer(&mut self, cx: &mut Context, action: Action) {
        match action {
            Action::ElectionSend { to, notification } => {
                let outbox = self.peers().outboxes.entry(to).or_default();
                outbox.last = Some(notification.clone());
                match outbox.link {
                    Some(link) if cx.net.is_open(link) => {
                        let me = Endpoint::Server(self.sid);
                        cx.send(link, me, Payload::Bytes(notification.encode().to_vec()));
                    }
                    _ => self.dial_election(cx, to),
                }
            }
            Action::ConnectToLeader { sid } => self.dial_leader(cx, sid),
            Action::PeerSend { link, packet } => {
                if !self.peers().quorum.contains_key(&link) || !cx.net.is_open(link) {
                    return;
                }
                if let Some(kind) = self.follow_sent(cx, link, &packet) {
                    if self.scripted(cx, When::Sent(kind), Some(link)) || !cx.net.is_open(link) {
                        return;
                    }
                }
                cx.trace.mix_bytes(&packet);
                let me = Endpoint::Server(self.sid);
                cx.send(link, me, Payload::Bytes(packet.to_vec()));
                self.step(
                    cx,
                    Input::PeerWritten {
                        link,
                        bytes: packet.len(),
                    },
                );
            }
            Action::PeerClose { link } => {
                if self.peers().quorum.remove(&link).is_none() {
                    return;
                }
                self.peers().dialling.remove(&link);
                self.peers().commits_received.remove(&link);
                self.sync_link_gone(link);
                cx.send(link, Endpoint::Server(self.sid), Payload::Fin);
                let (server, boot) = (self.sid, self.boot);
                cx.after(Duration::ZERO, Event::PeerClosed { server, boot, link });
            }
            Action::PersistEpoch { kind, epoch } => {
                let peers = self.peers();
                assert!(peers.epoch.is_none(), "one epoch write at a time");
                peers.epoch = Some((kind, epoch));
                let latency =
                    super::disk_latency(crate::disk::DiskOp::SyncData, self.slow_disk, cx) * 2;
                let (server, boot) = (self.sid, self.boot);
                cx.after(latency, Event::EpochOp { server, boot });
            }
            Action::TruncateLog { zxid } => {
                // The reintroduced bug hands the truncation a directory
                // with no snapshot in it: none above the cut is removed.
                let snapshots = if self.bug == Some(Bug::TruncKeepsSnapshots) {
                    wal::MemFs::new()
                } else {
                    self.snapshots.dir().clone()
                };
                let (sid, now) = (self.sid, cx.now);
                cx.trace
                    .line(now, || format!("s{sid} truncates its log after 0x{zxid:x}"));
                let running = self.running.as_mut().expect("acting while up");
                if !running.disk.is_busy() {
                    running.batch_started = cx.now;
                }
                let progress = running.disk.submit_truncate(zxid, snapshots);
                self.after_disk_progress(cx, progress);
            }
            Action::Reload => {
                let peers = self.peers();
                assert!(!peers.reload_pending, "one reload at a time");
                peers.reload_pending = true;
                let latency = Duration::from_micros(cx.rng.between(100, 5_000));
                let (server, boot) = (self.sid, self.boot);
                cx.after(latency, Event::ReloadOp { server, boot });
            }
            Action::ClearRecovering => {
                // Through wal's fs traits on the server's disk; nothing
                // waits for it (a crash before it only abstains again).
                if let Err(err) = wal::clear_recovering_in(self.snapshots.dir()) {
                    let sid = self.sid;
                    cx.trace.line(cx.now, || {
                        format!("s{sid} cannot remove its recovering marker: {err}")
                    });
                    return;
                }
                self.damaged_floor = None;
                let sid = self.sid;
                cx.trace.line(cx.now, || {
                    format!("s{sid} recovered its lost records: votes again")
                });
            }
            other => unreachable!("not a peer action: {other:?}"),
        }
    }

    /// Dials the election link to `to` and sends it the last notification
    /// (if `to` cannot be reached now, the next tick tries again).
    fn dial_election(&mut self, cx: &mut Context, to: Sid) {
        let me = Endpoint::Server(self.sid);
        let target = self.member().endpoint_of(to);
        let outbox = self.peers().outboxes.entry(to).or_default();
        outbox.link = None;
        if cx.net.is_blocked(me, target) || cx.net.is_blocked(target, me) {
            return;
        }
        let Some(last) = outbox.last.clone() else {
            return;
        };
        let link = cx.net.connect(me, target);
        outbox.link = Some(link);
        cx.send(link, me, Payload::Open(PeerPort::Election));
        cx.send(link, me, Payload::Bytes(last.encode().to_vec()));
    }

    /// Dials the leader's quorum port: connected after a round trip, or
    /// failed after a connect timeout if the leader cannot be reached.
    fn dial_leader(&mut self, cx: &mut Context, sid: Sid) {
        let me = Endpoint::Server(self.sid);
        let target = self.member().endpoint_of(sid);
        let (server, boot) = (self.sid, self.boot);
        if cx.net.is_blocked(me, target) || cx.net.is_blocked(target, me) {
            let timeout =
                Duration::from_millis(cx.rng.between(CONNECT_TIMEOUT_MS.0, CONNECT_TIMEOUT_MS.1));
            let failed = Event::PeerDialed {
                server,
                boot,
                sid,
                link: None,
            };
            return cx.after(timeout, failed);
        }
        let link = cx.net.connect(me, target);
        let peers = self.peers();
        peers.quorum.insert(link, sid);
        peers.dialling.insert(link);
        cx.send(link, me, Payload::Open(PeerPort::Quorum));
        let round_trip = Duration::from_micros(cx.rng.between(60, 1_600));
        let dialled = Event::PeerDialed {
            server,
            boot,
            sid,
            link: Some(link),
        };
        cx.after(round_trip, dialled);
    }

    /// A dial to the leader completed (or failed).
    pub fn on_peer_dialed(&mut self, cx: &mut Context, sid: Sid, link: Option<LinkId>) {
        let Some(link) = link else {
            return self.step(cx, Input::PeerConnectFailed { sid });
        };
        if !self.peers().dialling.remove(&link) {
            return;
        }
        if cx.net.is_open(link) && self.peers().quorum.contains_key(&link) {
            self.step(
                cx,
                Input::PeerConnected {
                    link,
                    outbound: true,
                },
            );
        } else {
            // Refused (the leader's process is down): the reset came first.
            self.peers().quorum.remove(&link);
            self.step(cx, Input::PeerConnectFailed { sid });
        }
    }

    /// The driver's deferred report that a quorum link it closed is gone.
    pub fn on_peer_closed(&mut self, cx: &mut Context, link: LinkId) {
        self.step(cx, Input::PeerClosed { link });
    }

    /// A message from another server.
    pub(super) fn on_peer_delivery(
        &mut self,
        cx: &mut Context,
        link: LinkId,
        peer: u8,
        payload: Payload,
    ) {
        if self.member.is_none() {
            return cx.reset(link);
        }
        let sid = self.member().sid_of(peer);
        let peers = self.peers();
        match payload {
            Payload::Open(PeerPort::Election) => {
                peers.election_in.insert(link, sid);
            }
            Payload::Open(PeerPort::Quorum) => {
                peers.quorum.insert(link, sid);
                self.step(
                    cx,
                    Input::PeerConnected {
                        link,
                        outbound: false,
                    },
                );
            }
            Payload::Bytes(bytes) if peers.election_in.contains_key(&link) => {
                match Notification::decode(&bytes) {
                    Ok(notification) => self.step(
                        cx,
                        Input::ElectionReceived {
                            from: sid,
                            notification,
                        },
                    ),
                    Err(err) => self.peer_garbage(cx, format!("a notification: {err}")),
                }
            }
            Payload::Bytes(bytes) if peers.quorum.contains_key(&link) => {
                match QuorumPacket::decode(&Bytes::from(bytes)) {
                    Ok(packet) => {
                        if let Err(violation) = self.check_commit_order(link, sid, &packet) {
                            return cx.violation(violation);
                        }
                        let kind = Packet::of(&packet);
                        if self.scripted(cx, When::Received(kind), Some(link))
                            || !cx.net.is_open(link)
                        {
                            return;
                        }
                        self.follow_received(link, kind);
                        self.step(cx, Input::PeerReceived { link, packet })
                    }
                    Err(err) => self.peer_garbage(cx, format!("a quorum packet: {err}")),
                }
            }
            // On a link this process does not know (its old boot's, or one
            // it closed): nothing listens.
            Payload::Bytes(_) => cx.reset(link),
            Payload::Fin => self.peer_link_gone(cx, link),
        }
    }

    /// ZAB's order: a learner hears COMMITs (and INFORMs) in zxid order
    /// from its leader; ZooKeeper's follower exits on any other order. The
    /// learner here commits "everything up to", so a commit out of order
    /// would pass unseen by every other check — the reason this one exists
    /// (`replication::Mutation::CommitOutOfOrder`).
    fn check_commit_order(
        &mut self,
        link: LinkId,
        leader: Sid,
        packet: &QuorumPacket,
    ) -> Result<(), Violation> {
        let kind = packet.packet_type();
        if !matches!(kind, Some(PacketType::Commit | PacketType::Inform)) {
            return Ok(());
        }
        let server = self.sid;
        let base = self.member().base;
        let received = &mut self.peers().commits_received;
        if let Some(after) = received.get(&link).copied() {
            if packet.zxid <= after {
                return Err(Violation::CommitOutOfOrder {
                    server,
                    leader: base + u8::try_from(leader).expect("sids fit endpoints"),
                    zxid: packet.zxid,
                    after,
                });
            }
        }
        received.insert(link, packet.zxid);
        Ok(())
    }

    /// A server sent bytes its peer cannot decode: node's own encoders
    /// broke their contract.
    fn peer_garbage(&mut self, cx: &mut Context, what: String) {
        cx.violation(Violation::ActionContract {
            server: self.sid,
            rule: format!("a peer sent bytes that do not decode as {what}"),
        });
    }

    /// A reset of a server-to-server link reached this server.
    pub(super) fn on_peer_reset(&mut self, cx: &mut Context, link: LinkId) {
        self.peer_link_gone(cx, link);
    }

    fn peer_link_gone(&mut self, cx: &mut Context, link: LinkId) {
        let peers = self.peers();
        peers.election_in.remove(&link);
        peers.commits_received.remove(&link);
        self.sync_link_gone(link);
        let peers = self.peers();
        for outbox in peers.outboxes.values_mut() {
            if outbox.link == Some(link) {
                outbox.link = None;
            }
        }
        // A dial still in flight learns of it when it completes (refused).
        if peers.quorum.remove(&link).is_some() && !peers.dialling.contains(&link) {
            self.step(cx, Input::PeerClosed { link });
        }
    }

    /// Each tick: election links that broke are dialled again, with the
    /// last notification (a peer that restarted hears this server's vote).
    pub(super) fn peers_tick(&mut self, cx: &mut Context) {
        if self.member.is_none() || self.running.is_none() {
            return;
        }
        let broken: Vec<Sid> = self
            .peers()
            .outboxes
            .iter()
            .filter(|(_, o)| o.last.is_some() && o.link.is_none_or(|l| !cx.net.is_open(l)))
            .map(|(sid, _)| *sid)
            .collect();
        for sid in broken {
            self.dial_election(cx, sid);
        }
    }

    /// The epoch write comes due: written (or a crash lands on it).
    pub fn on_epoch_op(&mut self, cx: &mut Context) {
        let Some((kind, epoch)) = self.peers().epoch.take() else {
            return;
        };
        let armed = match self.crash_armed {
            Some((power_cut, CrashPoint::Epoch { written })) => Some((power_cut, written)),
            _ => None,
        };
        if let Some((power_cut, false)) = armed {
            return self.crash_and_restart(cx, power_cut);
        }
        let when = |written| When::EpochWrite { kind, written };
        if self.scripted(cx, when(false), None) {
            return;
        }
        let which = match kind {
            EpochKind::Accepted => wal::EpochFile::Accepted,
            EpochKind::Current => wal::EpochFile::Current,
        };
        self.stats.epoch_writes += 1;
        let (sid, now) = (self.sid, cx.now);
        cx.trace.line(now, || {
            format!("s{sid} writes {} = {epoch}", which.file_name())
        });
        if let Err(err) = wal::write_epoch_in(self.snapshots.dir(), which, epoch) {
            // The engine stops the process; its operator starts it again.
            cx.trace
                .line(now, || format!("s{sid} cannot write an epoch file: {err}"));
            return self.crash_and_restart(cx, false);
        }
        if let Some((power_cut, true)) = armed {
            return self.crash_and_restart(cx, power_cut);
        }
        if self.scripted(cx, when(true), None) {
            return;
        }
        self.step(cx, Input::EpochPersisted);
    }

    /// The reload reads the disk as it is now (the files, not what a crash
    /// would keep: the process reads through the page cache).
    pub fn on_reload_op(&mut self, cx: &mut Context) {
        self.peers().reload_pending = false;
        self.stats.reloads += 1;
        let image = self.log_fs.snapshot_current();
        let data = image.dir(self.data_dir);
        match crate::recovery::recover(&data, &image) {
            Ok(recovered) => {
                let sealed = self.running.as_ref().map_or(0, |r| r.snapshot_sealed);
                let snapshot = recovered.snapshot_zxid.unwrap_or(0);
                if snapshot > sealed {
                    return cx.violation(Violation::SnapshotSurvivedTruncation {
                        server: self.sid,
                        snapshot,
                        sealed,
                    });
                }
                let (sid, now, zxid) = (self.sid, cx.now, recovered.tree.last_processed_zxid());
                cx.trace
                    .line(now, || format!("s{sid} reloads its state at 0x{zxid:x}"));
                let state = Box::new(recovered.into_node_state());
                self.step(cx, Input::Reloaded(state));
            }
            Err(err) => cx.violation(Violation::RecoveryFailed {
                server: self.sid,
                error: format!("reloading: {err}"),
            }),
        }
    }

    /// The process dies here; it is started again a while later.
    pub(super) fn crash_and_restart(&mut self, cx: &mut Context, power_cut: bool) {
        if self.crash(cx, power_cut) {
            let down = Duration::from_millis(cx.rng.between(10, 2_000));
            cx.after(down, Event::Restart { server: self.sid });
        }
    }
}
