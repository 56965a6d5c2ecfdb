//! Client connections as the node sees them: identities, the reply queue
//! that keeps each connection's replies in request order, and the frames
//! gathered for the driver this turn.
//!
//! ```text
//!  requests ─▶ queue: [Ready][Read][Write{xid}][Sync][Read] ─▶ front answered in order
//!                             ▲ filled in when the txn with (session, xid) is applied
//! ```
//!
//! A reply leaves only from the front of its queue, so a read that arrives
//! after a write waits for that write (ZooKeeper's FIFO client order), while
//! reads on other connections are answered at once. Requests reach the
//! queue through the connection's parked list ([`crate::admission`]), which
//! holds them back while the client is not reading its replies.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use crate::io::RequestFrame;

use proto::ops::Request;
use proto::{Id, Nulls, OpCode};

use crate::io::{Action, ConnId, Peer};
use crate::requests::ReplyShape;

/// A request waiting in its connection's queue for its turn to be answered.
#[derive(Debug)]
pub(crate) enum Pending {
    /// The reply is built; it leaves when it reaches the front.
    Ready(Vec<u8>),
    /// An answer that has no txn of its own (an error, or an empty ok),
    /// built when it reaches the front: its header then carries the applied
    /// zxid of that moment, as ZooKeeper's FinalRequestProcessor stamps it,
    /// never one below a reply sent before it on this connection.
    Answer {
        xid: i32,
        code: proto::ErrorCode,
        body: Option<proto::ops::Response>,
    },
    /// A read, answered from the tree when it reaches the front.
    Read {
        xid: i32,
        op: OpCode,
        request: Request,
        /// Where the client sent nulls (setWatches restores up to the first).
        nulls: Nulls,
        received: Duration,
    },
    /// A write in flight: its txn carries (session, `xid`). Becomes `Ready`
    /// when that txn is applied.
    Write {
        xid: i32,
        shape: ReplyShape,
        received: Duration,
    },
    /// `sync`: answered once every txn up to `zxid` is applied.
    Sync {
        xid: i32,
        /// `None`: the client sent a null path, echoed as null.
        path: Option<String>,
        zxid: i64,
        received: Duration,
    },
    /// The handshake of a new session, answered when its createSession txn is applied.
    Connecting,
    /// Close the connection once everything before this is written.
    Close,
}

/// One client connection.
#[derive(Debug)]
pub(crate) struct Connection {
    pub(crate) peer: Peer,
    pub(crate) session_id: i64,
    /// Every identity this connection has authenticated as, `ip:<address>` first.
    pub(crate) auth: Vec<Id>,
    pub(crate) queue: VecDeque<Pending>,
    /// Whether the handshake used the 37-byte ConnectResponse form.
    pub(crate) read_only_flag: Option<bool>,
    pub(crate) timeout_ms: i32,
    pub(crate) received: u64,
    pub(crate) sent: u64,
    pub(crate) last_zxid: i64,
    /// The node asked the driver to close it; later requests are dropped.
    pub(crate) closing: bool,
    /// Requests received and not yet taken into the queue, with the time
    /// each arrived ([`crate::admission`]).
    pub(crate) parked: VecDeque<(Duration, RequestFrame)>,
    /// `Pending::Read`s in the queue (reads waiting behind a write or sync).
    pub(crate) reads_queued: usize,
    /// Bytes handed to the driver in `Send`s and not yet reported written.
    pub(crate) unsent_bytes: u64,
    /// Watch events sent since the credit was last free.
    pub(crate) events_over_credit: usize,
    /// The connection's SASL exchange, from its first SaslRequest on.
    pub(crate) sasl: Option<crate::sasl::digest_md5::DigestMd5Server>,
    /// Frames gathered this turn, handed to the driver as one `Send`.
    out: Vec<u8>,
    out_replies: usize,
}

impl Connection {
    pub(crate) fn new(peer: Peer, timeout_ms: i32, read_only_flag: Option<bool>) -> Connection {
        let auth = vec![Id::new("ip", peer.ip.clone())];
        Connection {
            peer,
            session_id: 0,
            auth,
            queue: VecDeque::new(),
            read_only_flag,
            timeout_ms,
            received: 0,
            sent: 0,
            last_zxid: 0,
            closing: false,
            parked: VecDeque::new(),
            reads_queued: 0,
            unsent_bytes: 0,
            events_over_credit: 0,
            sasl: None,
            out: Vec::new(),
            out_replies: 0,
        }
    }

    /// Requests received here whose replies have not left.
    pub(crate) fn queued(&self) -> usize {
        self.queue.len() + self.parked.len()
    }

    /// Whether the connection's credit is used up: what was handed to the
    /// driver and not reported written, with what was gathered this turn,
    /// reaches `max`.
    pub(crate) fn credit_used_up(&self, max: u64) -> bool {
        self.unsent_bytes + self.out.len() as u64 >= max
    }
}

/// Every connection, and which of them have output this turn.
#[derive(Debug, Default)]
pub(crate) struct Connections {
    by_id: BTreeMap<ConnId, Connection>,
    /// Connections with frames gathered this turn, in the order they got them.
    dirty: Vec<ConnId>,
}

impl Connections {
    pub(crate) fn insert(&mut self, conn: ConnId, connection: Connection) {
        let old = self.by_id.insert(conn, connection);
        assert!(old.is_none(), "connection ids are never reused");
    }

    pub(crate) fn get(&self, conn: ConnId) -> Option<&Connection> {
        self.by_id.get(&conn)
    }

    pub(crate) fn get_mut(&mut self, conn: ConnId) -> Option<&mut Connection> {
        self.by_id.get_mut(&conn)
    }

    pub(crate) fn remove(&mut self, conn: ConnId) -> Option<Connection> {
        self.dirty.retain(|c| *c != conn);
        self.by_id.remove(&conn)
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = (ConnId, &Connection)> {
        self.by_id.iter().map(|(id, c)| (*id, c))
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Adds a frame to the connection's output for this turn (`reply`: it
    /// answers a request, sent when the tree stood at `zxid`).
    pub(crate) fn send(&mut self, conn: ConnId, frame: Vec<u8>, reply: bool, zxid: i64) {
        let Some(c) = self.by_id.get_mut(&conn) else {
            return;
        };
        // After `Close` the driver writes nothing more.
        if c.closing {
            return;
        }
        if c.out.is_empty() {
            self.dirty.push(conn);
        }
        if c.out.is_empty() && frame.capacity() >= 4096 {
            // A large reply becomes the turn's buffer instead of being copied.
            c.out = frame;
        } else {
            c.out.extend_from_slice(&frame);
        }
        if reply {
            c.out_replies += 1;
            c.sent += 1;
            c.last_zxid = zxid;
        }
    }

    /// Hands the connection's gathered frames to the driver.
    pub(crate) fn flush(&mut self, conn: ConnId, actions: &mut Vec<Action>) {
        let Some(c) = self.by_id.get_mut(&conn) else {
            return;
        };
        if c.out.is_empty() {
            return;
        }
        c.unsent_bytes += c.out.len() as u64;
        actions.push(Action::Send {
            conn,
            bytes: std::mem::take(&mut c.out),
            replies: std::mem::take(&mut c.out_replies),
        });
    }

    /// Hands every connection's gathered frames to the driver, one `Send` each.
    pub(crate) fn flush_all(&mut self, actions: &mut Vec<Action>) {
        for conn in std::mem::take(&mut self.dirty) {
            self.flush(conn, actions);
        }
    }

    /// Asks the driver to close a connection after what it has gathered.
    pub(crate) fn close(&mut self, conn: ConnId, actions: &mut Vec<Action>) {
        self.flush(conn, actions);
        if let Some(c) = self.by_id.get_mut(&conn) {
            if !c.closing {
                c.closing = true;
                actions.push(Action::Close { conn });
            }
        }
    }

    pub(crate) fn check_invariants(&self) {
        for (conn, c) in &self.by_id {
            assert!(
                c.out.is_empty() || self.dirty.contains(conn),
                "gathered output is always on its way to the driver"
            );
            assert!(c.out_replies == 0 || !c.out.is_empty());
            let reads = c
                .queue
                .iter()
                .filter(|p| matches!(p, Pending::Read { .. }))
                .count();
            assert_eq!(reads, c.reads_queued, "queued reads are counted");
            assert!(
                !c.closing || (c.queue.is_empty() && c.parked.is_empty()),
                "a closing connection takes nothing more"
            );
        }
    }
}
