//! What goes into a [`crate::Node`] and what comes out: the whole surface
//! between the state machine and its driver (the engine in production, the
//! simulator in tests).
//!
//! Inputs are facts that already happened ("these records are durable",
//! "this connection is gone"). Actions are things the driver must carry
//! out; each one's doc says what must happen before what. The driver
//! carries them out in the order [`crate::Node::ready`] returns them.

use std::time::Duration;

use bytes::Bytes;
use proto::ops::Request;
use proto::{ConnectRequest, DecodeError, Nulls};
pub use replication::leader::LinkId;
use replication::{Notification, QuorumPacket, Sid};

/// Identifies one client connection for the life of the server (never reused).
pub type ConnId = u64;

/// The current time, as the driver read it: once per turn, never inside the node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Now {
    /// Monotonic time since an origin the driver chose (session expiry,
    /// latency, snapshot pacing).
    pub monotonic: Duration,
    /// Wall-clock milliseconds since the Unix epoch (txn headers, TTLs, the
    /// first session id), as ZooKeeper's `Time.currentWallTime()`.
    pub wall_ms: i64,
}

/// Where a connection comes from, for log lines, `cons` and the `ip` ACL scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// The textual IP address (the `ip` scheme's id).
    pub ip: String,
    pub port: u16,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.ip.contains(':') {
            write!(f, "[{}]:{}", self.ip, self.port)
        } else {
            write!(f, "{}:{}", self.ip, self.port)
        }
    }
}

/// One decoded request frame. `body` is an error when the frame could not be
/// decoded for its opcode; it is still answered in request order. `nulls`
/// lists where the client sent jute's null (`Request::decode_with_nulls`).
#[derive(Debug)]
pub struct RequestFrame {
    pub xid: i32,
    pub op: i32,
    pub body: Result<Request, DecodeError>,
    pub nulls: Nulls,
}

/// One txn on its way to the log: its zxid and its encoded header and body
/// (the same bytes go to every follower in a PROPOSAL).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub zxid: i64,
    pub payload: Bytes,
}

/// Which epoch file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpochKind {
    /// The epoch this server last agreed to follow (ZAB's acceptedEpoch).
    Accepted,
    /// The epoch of the last leader this server synchronised with.
    Current,
}

/// Why a storage operation (a log append, a snapshot, a purge) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    /// The disk is full (ENOSPC or a quota).
    NoSpace,
    /// A write, sync or rename failed with this I/O error kind.
    Io(std::io::ErrorKind),
    /// The task or thread doing it is gone, or could not be started.
    Gone,
}

impl std::fmt::Display for StorageFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StorageFailure::NoSpace => write!(f, "no space left on the device"),
            StorageFailure::Io(kind) => write!(f, "I/O error: {kind}"),
            StorageFailure::Gone => write!(f, "the storage task is gone"),
        }
    }
}

/// Everything that can happen to a node.
#[derive(Debug)]
pub enum Input {
    /// A new connection's handshake. The driver can already carry out
    /// actions addressed to `conn`.
    Connect {
        conn: ConnId,
        peer: Peer,
        request: ConnectRequest,
        /// Identities the transport proved, added to the connection's auth
        /// beside `ip` (the `x509` id of a TLS client certificate, as
        /// ZooKeeper's X509AuthenticationProvider adds it).
        auth: Vec<proto::Id>,
    },
    /// Requests after the handshake, in arrival order.
    Requests {
        conn: ConnId,
        requests: Vec<RequestFrame>,
    },
    /// The connection is gone (the client closed it, it broke, or the driver
    /// closed it after [`Action::Close`] or because the client stopped reading).
    Closed { conn: ConnId },
    /// Every record up to and including `zxid` is durable: the answer to the
    /// one [`Action::Append`] in flight.
    LogDurable {
        zxid: i64,
        records: usize,
        record_bytes: u64,
        /// How long the appends and the sync took (for `mntr` and warnings).
        sync_time: Duration,
    },
    /// The log failed; no further write may be acknowledged. Never retried.
    LogFailed(StorageFailure),
    /// Whether the log's disk has room. While it has not, new writes are
    /// refused (reads go on) and the append in flight waits, unwritten.
    LogSpace { available: bool },
    /// The snapshot writer wrote one more chunk of the snapshot in progress.
    SnapshotChunkWritten,
    /// The snapshot in progress is sealed (durable and renamed) or failed.
    SnapshotDone {
        result: Result<SnapshotWritten, StorageFailure>,
    },
    /// The purge asked for by [`Action::Purge`] finished.
    PurgeDone {
        result: Result<PurgeReport, StorageFailure>,
    },
    /// The connection has written `bytes` more bytes of what [`Action::Send`]
    /// handed it to its socket, returning that much of its credit
    /// (`Settings::unsent_bytes_max`). A driver reports at least whenever
    /// `unsent_bytes_max / 2` bytes written are unreported, so that a
    /// connection whose client reads never stays without credit.
    Written { conn: ConnId, bytes: u64 },
    /// Time passed: session expiry, the container reaper, autopurge.
    Tick,
    /// A four-letter word; answered by [`Action::FourLetterWord`] with the same `request`.
    FourLetterWord { request: u64, word: String },
    /// An election notification from server `from`.
    ElectionReceived {
        from: Sid,
        notification: Notification,
    },
    /// A quorum-port connection is up: one a learner dialled in (leader), or
    /// the one [`Action::ConnectToLeader`] asked for (learner).
    PeerConnected { link: LinkId, outbound: bool },
    /// The connection [`Action::ConnectToLeader`] asked for could not be made.
    PeerConnectFailed { sid: Sid },
    /// A packet arrived on a quorum-port connection.
    PeerReceived { link: LinkId, packet: QuorumPacket },
    /// A quorum-port connection is gone.
    PeerClosed { link: LinkId },
    /// `bytes` of what was sent on `link` are written to its socket.
    PeerWritten { link: LinkId, bytes: usize },
    /// The epoch file asked for by [`Action::PersistEpoch`] is durable.
    EpochPersisted,
    /// The log was truncated as [`Action::TruncateLog`] asked.
    LogTruncated { zxid: i64 },
    /// The state reloaded from disk as [`Action::Reload`] asked.
    Reloaded(Box<crate::node::Recovered>),
}

/// A sealed snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotWritten {
    pub zxid: i64,
    pub file: String,
    pub bytes: u64,
}

/// What a purge removed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PurgeReport {
    pub snapshots_removed: usize,
    pub segments_removed: usize,
    pub segments_recycled: usize,
}

/// How loud a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Debug,
    Info,
    Warn,
    Error,
}

/// What the driver must do. Carried out in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Write these whole frames (replies and watch notifications, in order)
    /// to the connection; `replies` of them answer requests. Every frame was
    /// allowed to leave: a write's reply appears here only after its txn is
    /// committed (durable, standalone) and applied.
    Send {
        conn: ConnId,
        bytes: Vec<u8>,
        replies: usize,
    },
    /// Close the connection once every `Send` before this one is written,
    /// then report [`Input::Closed`].
    Close { conn: ConnId },
    /// Append these records to the log (in zxid order, after every earlier
    /// append) and make them durable, then report [`Input::LogDurable`] for
    /// the last one (or [`Input::LogFailed`]). At most one append is in
    /// flight. `roll_first`: start a new log segment before these records.
    Append {
        records: Vec<LogRecord>,
        roll_first: bool,
    },
    /// Start writing snapshot `snapshot.<zxid>`; chunks follow. The file must
    /// be sealed (synced, renamed, directory synced) before
    /// [`Input::SnapshotDone`] reports it; only then may purge count on it.
    SnapshotBegin { zxid: i64 },
    /// The next bytes of the snapshot in progress; report
    /// [`Input::SnapshotChunkWritten`] once written.
    SnapshotChunk { bytes: Vec<u8> },
    /// The last chunk was sent: seal the snapshot.
    SnapshotEnd,
    /// Keep the newest `retain` snapshots and the log they need, remove the
    /// rest, off the ordering core; then report [`Input::PurgeDone`].
    Purge { retain: usize },
    /// The answer to [`Input::FourLetterWord`] `request`.
    FourLetterWord {
        request: u64,
        report: Box<crate::fourlw::NodeReport>,
    },
    /// A line for the operator's log.
    Log { level: Level, line: String },
    /// Send an election notification to server `to` (dialling it if need be;
    /// if it cannot be reached, keep only the latest notification for it).
    ElectionSend { to: Sid, notification: Notification },
    /// Dial the leader's quorum port, then report [`Input::PeerConnected`]
    /// (outbound) or [`Input::PeerConnectFailed`].
    ConnectToLeader { sid: Sid },
    /// Write this encoded packet on a quorum-port connection, after
    /// everything sent on it before; report [`Input::PeerWritten`].
    PeerSend { link: LinkId, packet: Bytes },
    /// Close a quorum-port connection (then report [`Input::PeerClosed`]).
    PeerClose { link: LinkId },
    /// Make the epoch file durable (temp, fsync, rename, fsync the
    /// directory), then report [`Input::EpochPersisted`]. Nothing that
    /// depends on it happens before.
    PersistEpoch { kind: EpochKind, epoch: i64 },
    /// Cut the log after `zxid`, durably (ZAB's TRUNC), then report
    /// [`Input::LogTruncated`]. No append is in flight meanwhile.
    TruncateLog { zxid: i64 },
    /// Load the state from disk again (the newest valid snapshot and the log
    /// after it), then report [`Input::Reloaded`]. Never asked for while a
    /// [`Action::TruncateLog`] is in flight.
    Reload,
    /// Remove wal's "recovering" marker durably (`wal::clear_recovering`):
    /// the node synchronised from an established leader and holds every
    /// committed txn again (protocol-aware recovery). Nothing waits for
    /// it: until it is durable, a restart only abstains once more.
    ClearRecovering,
}

impl Action {
    /// Whether only a member of an ensemble is ever asked for this action:
    /// the election and quorum-port traffic, the epoch files, and the log
    /// surgery a learner's sync needs (truncate, reload, the recovering
    /// marker). A standalone node never asks for one; its drivers hold it to
    /// that (the engine logs and ignores such an action, the simulator
    /// reports a contract violation) and hand the rest to their peer code.
    ///
    /// The one list of ensemble actions: the match has no wildcard, so a new
    /// action must be classified here before anything compiles.
    pub fn is_ensemble_only(&self) -> bool {
        match self {
            Action::ElectionSend { .. }
            | Action::ConnectToLeader { .. }
            | Action::PeerSend { .. }
            | Action::PeerClose { .. }
            | Action::PersistEpoch { .. }
            | Action::TruncateLog { .. }
            | Action::Reload
            | Action::ClearRecovering => true,
            Action::Send { .. }
            | Action::Close { .. }
            | Action::Append { .. }
            | Action::SnapshotBegin { .. }
            | Action::SnapshotChunk { .. }
            | Action::SnapshotEnd
            | Action::Purge { .. }
            | Action::FourLetterWord { .. }
            | Action::Log { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use replication::ServerState;

    /// Proves `is_ensemble_only` names exactly the peer, epoch and sync
    /// actions, and none a standalone server carries out.
    #[test]
    fn only_peer_epoch_and_sync_actions_are_ensemble_only() {
        let notification = Notification {
            state: ServerState::Looking,
            leader: 1,
            zxid: 0x1_0000_0005,
            election_epoch: 1,
            peer_epoch: 1,
            version: 2,
            config: Bytes::new(),
        };
        let ensemble = [
            Action::ElectionSend {
                to: 2,
                notification,
            },
            Action::ConnectToLeader { sid: 1 },
            Action::PeerSend {
                link: 7,
                packet: Bytes::from_static(b"packet"),
            },
            Action::PeerClose { link: 7 },
            Action::PersistEpoch {
                kind: EpochKind::Accepted,
                epoch: 3,
            },
            Action::TruncateLog {
                zxid: 0x1_0000_0002,
            },
            Action::Reload,
            Action::ClearRecovering,
        ];
        let standalone = [
            Action::Send {
                conn: 1,
                bytes: vec![0; 16],
                replies: 1,
            },
            Action::Close { conn: 1 },
            Action::Append {
                records: vec![LogRecord {
                    zxid: 0x1_0000_0001,
                    payload: Bytes::from_static(b"txn"),
                }],
                roll_first: false,
            },
            Action::SnapshotBegin {
                zxid: 0x1_0000_0001,
            },
            Action::SnapshotChunk { bytes: vec![1, 2] },
            Action::SnapshotEnd,
            Action::Purge { retain: 3 },
            Action::FourLetterWord {
                request: 4,
                report: Box::default(),
            },
            Action::Log {
                level: Level::Info,
                line: "hello".into(),
            },
        ];
        for action in &ensemble {
            assert!(action.is_ensemble_only(), "{action:?}");
        }
        for action in &standalone {
            assert!(!action.is_ensemble_only(), "{action:?}");
        }
    }
}
