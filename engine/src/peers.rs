//! The peer transport: the election port and the quorum port, as glommio
//! tasks on the node's executor, speaking ZooKeeper's formats (replication's
//! wire module) and reporting to the driver as [`PeerEvent`]s.
//!
//! ```text
//!  election port: each server dials every other to send notifications
//!                 (hello, then length-framed notifications; only the latest
//!                 notification per peer waits while it is unreachable) and
//!                 accepts their dials to receive theirs.
//!  quorum port:   the leader accepts learners; a learner dials its leader.
//!                 Each connection is a link: a reader task turns bytes into
//!                 QuorumPackets, a writer task writes what the node queued,
//!                 everything queued at once in one write.
//! ```
//!
//! ZooKeeper keeps one election connection per pair (the larger sid's dial
//! wins); here each direction has its own, which needs no dial-back. A peer
//! that speaks garbage, names an unknown sid, or sends a packet over the
//! bound is closed with one log line naming it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use futures_lite::io::{ReadHalf, WriteHalf};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use node::LinkId;
use replication::election_wire::{frame_election_message, ElectionStreamDecoder};
use replication::packet::{QuorumStreamDecoder, PACKET_BYTES_MAX_DEFAULT};
use replication::{
    ElectionFrame, ElectionHello, Ensemble, HostPort, Notification, QuorumPacket, Sid,
};
use tracing::{debug, info, warn};

/// What the transport tells the driver.
#[derive(Debug)]
pub enum PeerEvent {
    Election {
        from: Sid,
        notification: Notification,
    },
    Connected {
        link: LinkId,
        outbound: bool,
    },
    ConnectFailed {
        sid: Sid,
    },
    Received {
        link: LinkId,
        packet: QuorumPacket,
    },
    Closed {
        link: LinkId,
    },
    Written {
        link: LinkId,
        bytes: usize,
    },
}

/// Events waiting for the driver: the node bounds what each link may queue,
/// so this only needs room for a burst.
pub const PEER_EVENTS_MAX: usize = 64 * 1024;

/// Packets queued for one link's writer (the node bounds their bytes).
const LINK_QUEUE_MAX: usize = 64 * 1024;

/// Bytes read from a socket per call.
const READ_CHUNK: usize = 64 * 1024;

/// Most bytes gathered into one write.
const WRITE_GATHER_MAX: usize = 1 << 20;

/// How long a dial may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// What the driver asks of a link.
#[derive(Debug)]
enum LinkCommand {
    Send(Bytes),
    Close,
}

/// The transport's state, shared by the driver and the tasks (all on one executor).
#[derive(Debug)]
pub struct Peers {
    my_sid: Sid,
    ensemble: Ensemble,
    events: async_channel::Sender<PeerEvent>,
    links: RefCell<BTreeMap<LinkId, async_channel::Sender<LinkCommand>>>,
    next_link: RefCell<LinkId>,
    /// Per peer: the latest notification not yet sent, and whether a sender task runs.
    election_out: RefCell<BTreeMap<Sid, ElectionSlot>>,
}

#[derive(Debug, Default)]
struct ElectionSlot {
    pending: Option<Notification>,
    wake: Option<async_channel::Sender<()>>,
}

impl Peers {
    pub fn new(
        my_sid: Sid,
        ensemble: Ensemble,
        events: async_channel::Sender<PeerEvent>,
    ) -> Rc<Peers> {
        Rc::new(Peers {
            my_sid,
            ensemble,
            events,
            links: RefCell::new(BTreeMap::new()),
            next_link: RefCell::new(1),
            election_out: RefCell::new(BTreeMap::new()),
        })
    }

    fn new_link(&self) -> LinkId {
        let mut next = self.next_link.borrow_mut();
        let link = *next;
        *next += 1;
        link
    }

    fn address(port: &HostPort) -> Option<SocketAddr> {
        use std::net::ToSocketAddrs;
        (port.host.as_str(), port.port)
            .to_socket_addrs()
            .ok()?
            .next()
    }

    /// Starts the election and quorum listeners on this executor.
    pub fn listen(self: &Rc<Self>) -> std::io::Result<()> {
        let me = self
            .ensemble
            .get(self.my_sid)
            .expect("myid is in the ensemble")
            .clone();
        let election = Self::address(&me.election).ok_or_else(|| unresolved(&me.election))?;
        let quorum = Self::address(&me.quorum).ok_or_else(|| unresolved(&me.quorum))?;
        let election_listener = TcpListener::bind(election)?;
        let quorum_listener = TcpListener::bind(quorum)?;
        info!(%election, %quorum, sid = self.my_sid, "listening for peers");
        let peers = Rc::clone(self);
        glommio::spawn_local(async move { peers.accept_election(election_listener).await })
            .detach();
        let peers = Rc::clone(self);
        glommio::spawn_local(async move { peers.accept_quorum(quorum_listener).await }).detach();
        Ok(())
    }

    // ----- election port -----------------------------------------------------------

    /// Queues a notification for `to`; only the latest one waits.
    pub fn send_notification(self: &Rc<Self>, to: Sid, notification: Notification) {
        // No borrow is held across a wake-up or a spawn: the woken task
        // borrows the same map.
        let (wake, new_task) = {
            let mut out = self.election_out.borrow_mut();
            let slot = out.entry(to).or_default();
            slot.pending = Some(notification);
            match &slot.wake {
                Some(wake) => (wake.clone(), None),
                None => {
                    let (wake, woken) = async_channel::bounded(1);
                    slot.wake = Some(wake.clone());
                    (wake, Some(woken))
                }
            }
        };
        if let Some(woken) = new_task {
            let peers = Rc::clone(self);
            glommio::spawn_local(async move { peers.election_sender(to, woken).await }).detach();
        }
        let _ = wake.try_send(());
    }

    /// Sends `to` its pending notifications over a connection it keeps.
    async fn election_sender(self: Rc<Self>, to: Sid, woken: async_channel::Receiver<()>) {
        let Some(address) = self
            .ensemble
            .get(to)
            .and_then(|s| Self::address(&s.election))
        else {
            warn!(
                sid = to,
                "no election address for server: notifications to it are dropped"
            );
            return;
        };
        let mut stream: Option<TcpStream> = None;
        while woken.recv().await.is_ok() {
            let pending = self
                .election_out
                .borrow_mut()
                .get_mut(&to)
                .and_then(|slot| slot.pending.take());
            let Some(notification) = pending else {
                continue;
            };
            if stream.is_none() {
                stream = self.dial_election(to, address).await;
            }
            let Some(s) = stream.as_mut() else {
                continue;
            };
            let frame = frame_election_message(&notification.encode());
            if let Err(err) = s.write_all(&frame).await {
                debug!(sid = to, %err, "election connection lost; it is dialled again for the next notification");
                stream = None;
            }
        }
    }

    async fn dial_election(&self, to: Sid, address: SocketAddr) -> Option<TcpStream> {
        let mut stream = connect(address).await.ok()?;
        let _ = stream.set_nodelay(true);
        let me = self
            .ensemble
            .get(self.my_sid)
            .expect("myid is in the ensemble");
        let hello = ElectionHello::new(self.my_sid as i64, vec![me.election.clone()]);
        match stream.write_all(&hello.encode()).await {
            Ok(()) => Some(stream),
            Err(err) => {
                debug!(sid = to, %err, "election hello not sent");
                None
            }
        }
    }

    async fn accept_election(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let peers = Rc::clone(&self);
                    glommio::spawn_local(async move { peers.election_receiver(stream).await })
                        .detach();
                }
                Err(err) => {
                    warn!(%err, "election accept failed");
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Reads a peer's hello, then its notifications.
    async fn election_receiver(self: Rc<Self>, mut stream: TcpStream) {
        let peer = stream.peer_addr().ok();
        let mut decoder = ElectionStreamDecoder::accepted();
        let mut buffer = vec![0u8; READ_CHUNK];
        let mut from: Option<Sid> = None;
        loop {
            let n = match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            decoder.push(&buffer[..n]);
            loop {
                match decoder.next_frame() {
                    Ok(None) => break,
                    Ok(Some(ElectionFrame::Hello(hello))) => {
                        let sid = Sid::try_from(hello.sid)
                            .ok()
                            .filter(|sid| self.ensemble.contains(*sid));
                        match sid {
                            Some(sid) if sid != self.my_sid => from = Some(sid),
                            _ => {
                                warn!(
                                    ?peer,
                                    sid = hello.sid,
                                    "closing election connection: unknown server id"
                                );
                                return;
                            }
                        }
                    }
                    Ok(Some(ElectionFrame::Message(bytes))) => {
                        let Some(sid) = from else { return };
                        match Notification::decode(&bytes) {
                            Ok(notification) => {
                                let event = PeerEvent::Election {
                                    from: sid,
                                    notification,
                                };
                                if self.events.send(event).await.is_err() {
                                    return;
                                }
                            }
                            // ZooKeeper skips a bad notification and keeps the connection.
                            Err(err) => debug!(sid, %err, "skipping an undecodable notification"),
                        }
                    }
                    Err(err) => {
                        warn!(?peer, ?from, %err, "closing election connection: malformed stream");
                        return;
                    }
                }
            }
        }
    }

    // ----- quorum port -------------------------------------------------------------

    async fn accept_quorum(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let link = self.new_link();
                    self.start_link(link, stream, false).await;
                }
                Err(err) => {
                    warn!(%err, "quorum accept failed");
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Dials the leader's quorum port (a learner), reporting the outcome.
    pub fn connect_to_leader(self: &Rc<Self>, sid: Sid) {
        let peers = Rc::clone(self);
        glommio::spawn_local(async move {
            let address = peers
                .ensemble
                .get(sid)
                .and_then(|s| Self::address(&s.quorum));
            let stream = match address {
                Some(address) => connect(address).await.ok(),
                None => None,
            };
            match stream {
                Some(stream) => {
                    let link = peers.new_link();
                    peers.start_link(link, stream, true).await;
                }
                None => {
                    info!(sid, "cannot connect to the leader's quorum port");
                    let _ = peers.events.send(PeerEvent::ConnectFailed { sid }).await;
                }
            }
        })
        .detach();
    }

    async fn start_link(self: &Rc<Self>, link: LinkId, stream: TcpStream, outbound: bool) {
        let _ = stream.set_nodelay(true);
        let (commands, queue) = async_channel::bounded(LINK_QUEUE_MAX);
        self.links.borrow_mut().insert(link, commands);
        let peer = stream.peer_addr().ok();
        // glommio keeps separate read and write readiness per socket, so the
        // halves can wait at the same time.
        let (reader, writer) = futures_lite::io::split(stream);
        let _ = self
            .events
            .send(PeerEvent::Connected { link, outbound })
            .await;
        let peers = Rc::clone(self);
        glommio::spawn_local(async move { peers.link_reader(link, reader, peer).await }).detach();
        let peers = Rc::clone(self);
        glommio::spawn_local(async move { peers.link_writer(link, writer, queue).await }).detach();
    }

    /// Queues an encoded packet on a link. A link whose queue is full is
    /// behind beyond any bound the node allows: it is closed.
    pub fn send(&self, link: LinkId, packet: Bytes) {
        let commands = self.links.borrow().get(&link).cloned();
        let Some(commands) = commands else {
            return;
        };
        if commands.try_send(LinkCommand::Send(packet)).is_err() {
            warn!(link, "closing peer link: its queue is full");
            commands.close();
        }
    }

    /// Closes a link after what is queued on it.
    pub fn close(&self, link: LinkId) {
        let removed = self.links.borrow_mut().remove(&link);
        if let Some(commands) = removed {
            let _ = commands.try_send(LinkCommand::Close);
            commands.close();
        }
    }

    async fn link_reader(
        self: Rc<Self>,
        link: LinkId,
        mut stream: ReadHalf<TcpStream>,
        peer: Option<SocketAddr>,
    ) {
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        let mut buffer = vec![0u8; READ_CHUNK];
        'read: loop {
            let n = match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            decoder.push(&buffer[..n]);
            loop {
                match decoder.next_packet() {
                    Ok(Some(packet)) => {
                        if self
                            .events
                            .send(PeerEvent::Received { link, packet })
                            .await
                            .is_err()
                        {
                            break 'read;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        warn!(link, ?peer, %err, "closing peer link: malformed quorum packet stream");
                        break 'read;
                    }
                }
            }
        }
        self.close(link);
        let _ = self.events.send(PeerEvent::Closed { link }).await;
    }

    async fn link_writer(
        self: Rc<Self>,
        link: LinkId,
        mut stream: WriteHalf<TcpStream>,
        queue: async_channel::Receiver<LinkCommand>,
    ) {
        let mut out = Vec::new();
        'write: while let Ok(first) = queue.recv().await {
            let mut command = Some(first);
            out.clear();
            let mut close = false;
            // Everything queued goes out in one write.
            while let Some(next) = command.take() {
                match next {
                    LinkCommand::Send(packet) => out.extend_from_slice(&packet),
                    LinkCommand::Close => {
                        close = true;
                        break;
                    }
                }
                if out.len() < WRITE_GATHER_MAX {
                    command = queue.try_recv().ok();
                }
            }
            if !out.is_empty() {
                if stream.write_all(&out).await.is_err() {
                    break 'write;
                }
                let written = PeerEvent::Written {
                    link,
                    bytes: out.len(),
                };
                if self.events.send(written).await.is_err() {
                    break 'write;
                }
            }
            if close {
                break;
            }
        }
        let _ = stream.close().await;
    }
}

async fn connect(address: SocketAddr) -> std::io::Result<TcpStream> {
    TcpStream::connect_timeout(address, CONNECT_TIMEOUT)
        .await
        .map_err(std::io::Error::from)
}

fn unresolved(port: &HostPort) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::AddrNotAvailable,
        format!("cannot resolve {}:{}", port.host, port.port),
    )
}
