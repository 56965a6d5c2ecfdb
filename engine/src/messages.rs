//! What client connections and the driver (the node's executor) say to each other.
//!
//! ```text
//!   connection (any executor)            driver + node (one executor)
//!   ─────────────────────────            ────────────────────────────
//!   frame in → decode ── ToSequencer ──▶ session check, prep, log, apply
//!   socket  ◀── write ◀── OutFrame ───── replies (request order), watch events
//! ```
//!
//! Both directions are bounded: a connection waits when the driver's inbox
//! is full, and the driver never waits on a connection. What flows to a
//! connection is bounded in bytes by the node's credit: the connection
//! reports the bytes it writes ([`ToSequencer::Written`]) and the node takes
//! no more of its requests while `ferrokeeper.unsentReplyBytesMax` bytes are
//! unwritten. The outbox's bound in batches is a backstop: a connection
//! whose outbox fills is closed.

use std::net::SocketAddr;

use proto::ConnectRequest;

pub use node::{ConnId, RequestFrame};

/// How many batches of frames (each one driver turn's output for the
/// connection) may wait for its socket before the client is considered
/// stuck and disconnected.
pub const OUTBOX_BATCHES_MAX: usize = 4 * 1024;

/// Most requests a connection hands over in one message.
pub const REQUESTS_PER_MESSAGE_MAX: usize = 256;

/// How many messages may wait in the driver's inbox.
pub const INBOX_MESSAGES_MAX: usize = 16 * 1024;

#[derive(Debug)]
pub enum ToSequencer {
    /// The handshake frame of a new connection.
    Connect {
        conn: ConnId,
        peer: SocketAddr,
        request: ConnectRequest,
        /// Identities the transport proved (a TLS client certificate's `x509` id).
        auth: Vec<proto::Id>,
        outbox: async_channel::Sender<OutFrame>,
    },
    /// Requests after the handshake, in arrival order (everything one socket
    /// read brought, so that one message and one wake-up carry many).
    Requests {
        conn: ConnId,
        requests: Vec<RequestFrame>,
    },
    /// The connection wrote `bytes` more bytes of its outbox's frames to its
    /// socket (reported in chunks of at least half the credit).
    Written { conn: ConnId, bytes: u64 },
    /// The connection is gone (the client closed it, or it broke).
    Closed { conn: ConnId },
    /// A four-letter word the whitelist allows; the node's part of the
    /// answer comes back on `reply`.
    FourLetterWord {
        word: String,
        peer: SocketAddr,
        reply: async_channel::Sender<Box<node::fourlw::NodeReport>>,
    },
}

#[derive(Debug)]
pub enum OutFrame {
    /// Whole frames in order (replies and notifications); `replies` of them
    /// answer counted requests.
    Frames { bytes: Vec<u8>, replies: usize },
    /// Write what is queued, then close the connection.
    Close,
}
