//! What client connections and the sequencer say to each other.
//!
//! ```text
//!   connection (any executor)            sequencer (one executor)
//!   ─────────────────────────            ────────────────────────
//!   frame in → decode ── ToSequencer ──▶ session check, prep, log, apply
//!   socket  ◀── write ◀── OutFrame ───── replies (request order), watch events
//! ```
//!
//! Both directions are bounded: a connection waits when the sequencer's inbox
//! is full, and the sequencer never waits on a connection — when a
//! connection's outbox is full the client is not reading, and it is closed.

use std::net::SocketAddr;

use proto::ops::Request;
use proto::{ConnectRequest, DecodeError};

/// Identifies one TCP connection for the life of the server.
pub type ConnId = u64;

/// How many frames may wait for one connection's socket before the client is
/// considered stuck and disconnected.
pub const OUTBOX_FRAMES_MAX: usize = 64 * 1024;

/// How many messages may wait in the sequencer's inbox.
pub const INBOX_MESSAGES_MAX: usize = 16 * 1024;

#[derive(Debug)]
pub enum ToSequencer {
    /// The handshake frame of a new connection.
    Connect {
        conn: ConnId,
        peer: SocketAddr,
        request: ConnectRequest,
        outbox: async_channel::Sender<OutFrame>,
    },
    /// A request after the handshake. `body` is an error when the frame could
    /// not be decoded for its opcode; the sequencer answers in request order.
    Request {
        conn: ConnId,
        xid: i32,
        op: i32,
        body: Result<Request, DecodeError>,
    },
    /// The connection is gone (the client closed it, or it broke).
    Closed { conn: ConnId },
    /// A four-letter word; the answer text comes back on `reply`.
    FourLetterWord {
        word: String,
        peer: SocketAddr,
        reply: async_channel::Sender<String>,
    },
}

#[derive(Debug)]
pub enum OutFrame {
    /// The reply to one request (counts against the connection's outstanding requests).
    Reply(Vec<u8>),
    /// A frame that answers no counted request: a watch notification or the
    /// handshake reply.
    Notification(Vec<u8>),
    /// Write what is queued, then close the connection.
    Close,
}
