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

/// How many batches of frames (each one sequencer turn's output for the
/// connection) may wait for its socket before the client is considered
/// stuck and disconnected.
pub const OUTBOX_BATCHES_MAX: usize = 4 * 1024;

/// Most requests a connection hands over in one message.
pub const REQUESTS_PER_MESSAGE_MAX: usize = 256;

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
    /// Requests after the handshake, in arrival order (everything one socket
    /// read brought, so that one message and one wake-up carry many).
    Requests {
        conn: ConnId,
        requests: Vec<RequestFrame>,
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

/// One request frame. `body` is an error when the frame could not be decoded
/// for its opcode; the sequencer answers it in request order.
#[derive(Debug)]
pub struct RequestFrame {
    pub xid: i32,
    pub op: i32,
    pub body: Result<Request, DecodeError>,
}

#[derive(Debug)]
pub enum OutFrame {
    /// Whole frames in order (replies and notifications); `replies` of them
    /// answer counted requests.
    Frames { bytes: Vec<u8>, replies: usize },
    /// Write what is queued, then close the connection.
    Close,
}
