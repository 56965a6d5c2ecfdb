//! Admission: when a connection's requests enter its queue, so that a client
//! that sends without reading cannot make the server build replies for it
//! without bound.
//!
//! ```text
//!  Requests ─▶ parked (arrival order) ──admit──▶ queue ─▶ replies ─▶ Send ─▶ driver
//!                      ▲ while credit is free         unsent_bytes += len ┘    │
//!                      └──────────────── Written { bytes } ◀── socket writes ──┘
//! ```
//!
//! Every request is parked on arrival and taken into the queue (prepared if a
//! write, queued if a read) at the end of the step, one at a time, while the
//! connection has credit: the bytes handed to the driver for it and not yet
//! reported written stay under `Settings::unsent_bytes_max`. A parked request
//! is taken exactly as if the client had sent it at that moment, so the
//! queue's ordering rules (FIFO replies, events before the data they
//! announce) hold unchanged; the client only sees its replies later.
//!
//! What one connection can make the node hold is therefore bounded: the
//! credit, plus the replies it is already owed when the credit runs out — at
//! most one read answered at once, or [`READS_QUEUED_MAX`] reads released
//! together when the write they wait for is applied, and replies of writes
//! in flight — plus at most [`EVENTS_OVER_CREDIT_MAX`] watch events; a
//! connection that would be sent more events than that without reading is
//! closed. Parked requests are bounded by what the driver lets a connection
//! have outstanding.

use crate::io::{ConnId, Level, RequestFrame};
use crate::node::Node;

/// Reads that may wait in one connection's queue behind a write or a sync.
/// They are all answered when it completes, whatever the credit says, so this
/// bounds the replies a connection can be owed at once; later requests stay
/// parked (a client pipelining more reads than this behind one write sees
/// them answered as soon as the write is, just the same).
pub const READS_QUEUED_MAX: usize = 16;

/// Watch events one connection may be sent while its credit is used up
/// (that is, while it is not reading) before it is closed.
pub const EVENTS_OVER_CREDIT_MAX: usize = 16 * 1024;

impl Node {
    /// Requests arrived: they touch the session now and wait their turn.
    pub(crate) fn on_requests(&mut self, conn: ConnId, requests: Vec<RequestFrame>) {
        self.stats.packets_received += requests.len() as u64;
        let now = self.now.monotonic;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        c.received += requests.len() as u64;
        if c.closing {
            return;
        }
        // ZooKeeper touches a session for every packet it reads; a client that
        // keeps sending is alive even while its requests wait.
        let session_id = c.session_id;
        c.parked.extend(requests.into_iter().map(|r| (now, r)));
        self.parked_conns.insert(conn);
        if let Some(session) = self.sessions.get(session_id).filter(|s| !s.closing) {
            let timeout_ms = session.timeout_ms;
            self.sessions.touch(session_id, now);
            self.learner_touch(session_id, timeout_ms);
        }
    }

    /// The connection wrote `bytes` of what it was handed: its credit grows.
    pub(crate) fn on_written(&mut self, conn: ConnId, bytes: u64) {
        let unsent_max = self.settings.unsent_bytes_max;
        let Some(c) = self.conns.get_mut(conn) else {
            return;
        };
        assert!(
            bytes <= c.unsent_bytes,
            "a connection reports only bytes it was handed ({bytes} > {})",
            c.unsent_bytes
        );
        c.unsent_bytes -= bytes;
        if !c.credit_used_up(unsent_max) {
            c.events_over_credit = 0;
        }
    }

    /// Takes parked requests into their queues wherever the connection can
    /// take them (called at the end of every step).
    pub(crate) fn admit_parked(&mut self) {
        if self.parked_conns.is_empty() {
            return;
        }
        let conns: Vec<ConnId> = self.parked_conns.iter().copied().collect();
        for conn in conns {
            self.admit(conn);
        }
    }

    fn admit(&mut self, conn: ConnId) {
        let unsent_max = self.settings.unsent_bytes_max;
        loop {
            let Some(c) = self.conns.get_mut(conn) else {
                self.parked_conns.remove(&conn);
                return;
            };
            if c.parked.is_empty() {
                self.parked_conns.remove(&conn);
                return;
            }
            if c.credit_used_up(unsent_max) || c.reads_queued >= READS_QUEUED_MAX {
                return;
            }
            let (received, request) = c.parked.pop_front().expect("not empty");
            self.on_request(conn, request, received);
            self.drain(conn);
        }
    }

    /// Counts a watch event for `conn`; true if the connection is closed for
    /// having been sent too many without reading (the event is then dropped).
    pub(crate) fn event_over_credit(&mut self, conn: ConnId) -> bool {
        let unsent_max = self.settings.unsent_bytes_max;
        let Some(c) = self.conns.get_mut(conn) else {
            return false;
        };
        if !c.credit_used_up(unsent_max) {
            return false;
        }
        c.events_over_credit += 1;
        if c.events_over_credit <= EVENTS_OVER_CREDIT_MAX {
            return false;
        }
        let line = format!(
            "closing connection from {} (session 0x{:x}): it reads nothing while {EVENTS_OVER_CREDIT_MAX} watch events wait for it",
            c.peer, c.session_id
        );
        self.out.log(Level::Warn, line);
        self.close_conn(conn);
        true
    }

    /// Parked requests are tracked, and wait only where they must.
    pub(crate) fn check_admission_invariants(&self) {
        let unsent_max = self.settings.unsent_bytes_max;
        for (conn, c) in self.conns.iter() {
            if c.parked.is_empty() {
                continue;
            }
            assert!(
                self.parked_conns.contains(&conn),
                "parked requests are tracked"
            );
            assert!(
                c.credit_used_up(unsent_max) || c.reads_queued >= READS_QUEUED_MAX,
                "requests stay parked only while their connection cannot take them"
            );
        }
        for conn in &self.parked_conns {
            assert!(
                self.conns.get(*conn).is_some_and(|c| !c.parked.is_empty()),
                "only connections with parked requests are tracked"
            );
        }
    }
}
