//! The ZooKeeper client wire protocol, as Apache ZooKeeper 3.9 speaks it.
//!
//! Everything here is pure data: the jute codec ([`jute`]), ZooKeeper's
//! numeric codes ([`codes`]), the shared records ([`records`]), the
//! request and response bodies of every opcode ([`ops`]) and what ZooKeeper
//! does with a jute null in each request field ([`nulls`]). No I/O; the
//! server, the load generator, the tools and the tests all share it.
//!
//! A frame on the wire is a 4-byte big-endian length followed by the payload.
//! The first frame of a connection is a [`ConnectRequest`]; every later one is
//! a [`RequestHeader`] followed by the body for its opcode. Replies are a
//! [`ReplyHeader`] followed by a body only when the error code is 0.

pub mod codes;
pub mod jute;
pub mod nulls;
pub mod ops;
pub mod records;

pub use codes::{
    perms, AddWatchMode, CreateMode, ErrorCode, EventType, KeeperState, OpCode, WatcherType,
};
pub use jute::{DecodeError, Reader, Record, Writer};
pub use nulls::{NullAt, NullVerdict, Nulls, WatchList};
pub use records::*;

/// Default `jute.maxbuffer`: the largest frame a server accepts (0xfffff bytes).
pub const JUTE_MAXBUFFER_DEFAULT: usize = 0xfffff;
