//! The simulated network: FIFO connections between endpoints.
//!
//! A link is one TCP connection between two endpoints (a client and a
//! server, or two servers of an ensemble). Each direction is a
//! FIFO pipe: a message is delivered after a latency drawn per message, but
//! never before the message sent ahead of it, as TCP keeps order within one
//! connection. Across links nothing is ordered.
//!
//! ```text
//!   endpoint A ── send ──▶ [m3 m2 m1] ──(latency, FIFO)──▶ endpoint B
//!              ◀────────── [n2 n1] ◀───────────────────────
//! ```
//!
//! Faults: a reset closes a link at once and drops whatever is in flight
//! both ways (each end hears of it when the world tells it); a partition
//! holds messages between two endpoints (one way or both) until it heals,
//! as a cut cable stalls a connection that is still open. A `Fin` is an
//! orderly close: it arrives after everything sent before it and closes the
//! link for both ends.
//!
//! The network decides nothing by itself: latencies come from the caller's
//! [`Rng`], and it hands back when each message is due so the world can put
//! the delivery on its agenda.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use crate::rng::Rng;

/// Something that sends and receives on links.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Endpoint {
    /// A server, by its server id (ZooKeeper's sid, node's `server_id`).
    Server(u8),
    Client(u32),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Server(sid) => write!(f, "s{sid}"),
            Endpoint::Client(id) => write!(f, "c{id}"),
        }
    }
}

/// Identifies a link for the life of the run (never reused).
pub type LinkId = u64;

/// Which port of a server another server dialled: the connection's first
/// segment says so, as the port number does on a real network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PeerPort {
    /// The election port (ZooKeeper's 3888): notifications.
    Election,
    /// The quorum port (2888): a learner's connection to its leader.
    Quorum,
}

/// What travels on a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// Whole frames, as one write put them on the wire.
    Bytes(Vec<u8>),
    /// A server-to-server connection is opened on this port (the acceptor
    /// learns of the connection when it arrives; clients send none, their
    /// handshake is their first message).
    Open(PeerPort),
    /// The sender closed its end after everything before this.
    Fin,
}

/// A message handed to its receiver.
#[derive(Debug)]
pub struct Delivery {
    pub link: LinkId,
    pub from: Endpoint,
    pub to: Endpoint,
    pub payload: Payload,
}

/// What became of a delivery attempt.
#[derive(Debug)]
pub enum Deliver {
    Delivered(Delivery),
    /// A partition holds the message; try again at this time.
    Held(Duration),
    /// Nothing due (the link closed, or an earlier event took the message).
    Nothing,
}

#[derive(Debug, Default)]
struct Pipe {
    /// (due time, payload), oldest first.
    in_flight: VecDeque<(Duration, Payload)>,
    /// The due time of the last message sent: the next one is due no earlier.
    last_due: Duration,
}

#[derive(Debug)]
struct Link {
    ends: [Endpoint; 2],
    pipes: [Pipe; 2],
    open: bool,
}

/// Messages in flight at most per direction of a link: the senders are
/// bounded (a client pipelines a few requests, a server answers them), so
/// more means a runaway sender, not load.
pub const IN_FLIGHT_PER_DIRECTION_MAX: usize = 10_000;

/// How often a message held by a partition is looked at again.
const PARTITION_RETRY: Duration = Duration::from_millis(20);

/// Every link, and the partitions in force.
#[derive(Debug, Default)]
pub struct Network {
    links: BTreeMap<LinkId, Link>,
    next_link: LinkId,
    /// Directed pairs (from, to) that cannot reach each other now.
    blocked: BTreeSet<(Endpoint, Endpoint)>,
}

impl Network {
    /// Opens a link from `from` to `to` (the handshake costs nothing here;
    /// the first message carries it).
    pub fn connect(&mut self, from: Endpoint, to: Endpoint) -> LinkId {
        let link = self.next_link;
        self.next_link += 1;
        self.links.insert(
            link,
            Link {
                ends: [from, to],
                pipes: [Pipe::default(), Pipe::default()],
                open: true,
            },
        );
        link
    }

    pub fn is_open(&self, link: LinkId) -> bool {
        self.links.get(&link).is_some_and(|l| l.open)
    }

    /// The two ends of a link: (initiator, acceptor).
    pub fn ends(&self, link: LinkId) -> Option<(Endpoint, Endpoint)> {
        self.links.get(&link).map(|l| (l.ends[0], l.ends[1]))
    }

    /// Sends from `from` on `link`; returns when the message is due (the
    /// caller schedules [`Network::deliver`] then), or `None` if the link is
    /// closed and the message is dropped.
    pub fn send(
        &mut self,
        link: LinkId,
        from: Endpoint,
        payload: Payload,
        now: Duration,
        rng: &mut Rng,
    ) -> Option<Duration> {
        let l = self.links.get_mut(&link)?;
        if !l.open {
            return None;
        }
        let direction = direction_from(l, from);
        let latency = message_latency(rng);
        let pipe = &mut l.pipes[direction];
        let due = (now + latency).max(pipe.last_due);
        pipe.last_due = due;
        pipe.in_flight.push_back((due, payload));
        assert!(
            pipe.in_flight.len() <= IN_FLIGHT_PER_DIRECTION_MAX,
            "link {link}: {} messages in flight from {from}",
            pipe.in_flight.len()
        );
        Some(due)
    }

    /// Delivers the oldest message from `from` on `link` if it is due.
    /// A `Fin` closes the link as it arrives.
    pub fn deliver(&mut self, link: LinkId, from: Endpoint, now: Duration) -> Deliver {
        let Some(l) = self.links.get_mut(&link) else {
            return Deliver::Nothing;
        };
        if !l.open {
            return Deliver::Nothing;
        }
        let direction = direction_from(l, from);
        let to = l.ends[1 - direction];
        let Some((due, _)) = l.pipes[direction].in_flight.front() else {
            return Deliver::Nothing;
        };
        if *due > now {
            return Deliver::Nothing;
        }
        if self.blocked.contains(&(from, to)) {
            return Deliver::Held(now + PARTITION_RETRY);
        }
        let (_, payload) = l.pipes[direction]
            .in_flight
            .pop_front()
            .expect("front exists");
        if payload == Payload::Fin {
            l.open = false;
            l.pipes = [Pipe::default(), Pipe::default()];
        }
        Deliver::Delivered(Delivery {
            link,
            from,
            to,
            payload,
        })
    }

    /// Resets a link: closed at once, everything in flight dropped. Returns
    /// its ends if it was open.
    pub fn reset(&mut self, link: LinkId) -> Option<(Endpoint, Endpoint)> {
        let l = self.links.get_mut(&link)?;
        if !l.open {
            return None;
        }
        l.open = false;
        l.pipes = [Pipe::default(), Pipe::default()];
        Some((l.ends[0], l.ends[1]))
    }

    /// Open links with `endpoint` at either end, in id order.
    pub fn links_of(&self, endpoint: Endpoint) -> Vec<LinkId> {
        self.links
            .iter()
            .filter(|(_, l)| l.open && l.ends.contains(&endpoint))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Every open link, in id order.
    pub fn open_links(&self) -> Vec<LinkId> {
        self.links
            .iter()
            .filter(|(_, l)| l.open)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Blocks messages from `from` to `to` (one way).
    pub fn block(&mut self, from: Endpoint, to: Endpoint) {
        self.blocked.insert((from, to));
    }

    /// Blocks both ways.
    pub fn partition(&mut self, a: Endpoint, b: Endpoint) {
        self.block(a, b);
        self.block(b, a);
    }

    /// Lifts every block between `a` and `b`.
    pub fn heal(&mut self, a: Endpoint, b: Endpoint) {
        self.blocked.remove(&(a, b));
        self.blocked.remove(&(b, a));
    }

    pub fn heal_all(&mut self) {
        self.blocked.clear();
    }

    pub fn is_blocked(&self, from: Endpoint, to: Endpoint) -> bool {
        self.blocked.contains(&(from, to))
    }

    /// Forgets closed links (they are never looked up again once their
    /// in-flight deliveries found them closed; keeps the map small).
    pub fn forget_closed(&mut self) {
        self.links.retain(|_, l| l.open);
    }
}

fn direction_from(link: &Link, from: Endpoint) -> usize {
    if link.ends[0] == from {
        0
    } else {
        assert_eq!(link.ends[1], from, "{from} is not an end of this link");
        1
    }
}

/// One message's latency: mostly tens to hundreds of microseconds, now and
/// then a spike of tens of milliseconds (a retransmission, a busy switch).
fn message_latency(rng: &mut Rng) -> Duration {
    if rng.chance(1, 50) {
        Duration::from_micros(rng.between(5_000, 60_000))
    } else {
        Duration::from_micros(rng.between(30, 800))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliver_all(net: &mut Network, link: LinkId, from: Endpoint) -> Vec<Payload> {
        let mut got = Vec::new();
        let far = Duration::from_secs(3600);
        while let Deliver::Delivered(d) = net.deliver(link, from, far) {
            got.push(d.payload);
        }
        got
    }

    #[test]
    fn messages_on_one_link_arrive_in_order_whatever_their_latency() {
        let mut net = Network::default();
        let mut rng = Rng::new(3);
        let (c, s) = (Endpoint::Client(1), Endpoint::Server(1));
        let link = net.connect(c, s);
        let mut due = Vec::new();
        for i in 0..200u8 {
            due.push(net.send(link, c, Payload::Bytes(vec![i]), Duration::ZERO, &mut rng));
        }
        assert!(
            due.windows(2).all(|w| w[0] <= w[1]),
            "due times never go back"
        );
        let got = deliver_all(&mut net, link, c);
        let expected: Vec<Payload> = (0..200u8).map(|i| Payload::Bytes(vec![i])).collect();
        assert_eq!(got, expected);
    }

    #[test]
    fn a_partition_holds_messages_until_it_heals_and_a_reset_drops_them() {
        let mut net = Network::default();
        let mut rng = Rng::new(4);
        let (c, s) = (Endpoint::Client(1), Endpoint::Server(1));
        let link = net.connect(c, s);
        net.partition(c, s);
        net.send(link, c, Payload::Bytes(vec![1]), Duration::ZERO, &mut rng);
        let far = Duration::from_secs(10);
        assert!(matches!(net.deliver(link, c, far), Deliver::Held(_)));
        net.heal(c, s);
        assert!(matches!(net.deliver(link, c, far), Deliver::Delivered(_)));
        net.send(link, s, Payload::Bytes(vec![2]), Duration::ZERO, &mut rng);
        assert_eq!(net.reset(link), Some((c, s)));
        assert!(matches!(net.deliver(link, s, far), Deliver::Nothing));
        assert_eq!(
            net.send(link, s, Payload::Fin, Duration::ZERO, &mut rng),
            None
        );
    }

    #[test]
    fn a_fin_arrives_after_what_was_sent_before_it_and_closes_the_link() {
        let mut net = Network::default();
        let mut rng = Rng::new(5);
        let (c, s) = (Endpoint::Client(1), Endpoint::Server(1));
        let link = net.connect(c, s);
        net.send(link, s, Payload::Bytes(vec![1]), Duration::ZERO, &mut rng);
        net.send(link, s, Payload::Fin, Duration::ZERO, &mut rng);
        assert_eq!(
            deliver_all(&mut net, link, s),
            vec![Payload::Bytes(vec![1]), Payload::Fin]
        );
        assert!(!net.is_open(link));
    }
}
