//! What the checkers report: one variant per property, with the facts
//! needed to understand it (which server, session, zxid, op).

use std::time::Duration;

use thiserror::Error;

/// A property the run broke.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Violation {
    #[error(
        "s{server}: a reply carries zxid 0x{zxid:x} but the log is durable only to 0x{durable:x}"
    )]
    ReplyBeforeDurable { server: u8, zxid: i64, durable: i64 },
    #[error(
        "s{server}: recovered to zxid 0x{recovered:x}, but clients had already seen 0x{seen:x}"
    )]
    AcknowledgedStateLost {
        server: u8,
        recovered: i64,
        seen: i64,
    },
    #[error("s{server}: the acknowledged txn 0x{zxid:x} (session 0x{session:x} cxid {cxid}) is not in the recovered log: {found}")]
    AcknowledgedWriteLost {
        server: u8,
        zxid: i64,
        session: i64,
        cxid: i32,
        found: String,
    },
    #[error("s{server}: the write of session 0x{session:x} cxid {cxid} was told it failed ({answer:?}), yet it is txn 0x{zxid:x} in the recovered log")]
    RefusedWriteApplied {
        server: u8,
        zxid: i64,
        session: i64,
        cxid: i32,
        answer: proto::ErrorCode,
    },
    #[error("s{server}: recovery failed: {error}")]
    RecoveryFailed { server: u8, error: String },
    /// A reload loaded a snapshot newer than any the server sealed since
    /// its last TRUNC cut: a snapshot above the cut survived it, and with
    /// it txns the cut removed from the log (ZOOKEEPER-1549).
    #[error("s{server}: reloaded snapshot 0x{snapshot:x}, above 0x{sealed:x}, the newest it sealed since its last TRUNC")]
    SnapshotSurvivedTruncation {
        server: u8,
        snapshot: i64,
        sealed: i64,
    },
    #[error("client {client} session 0x{session:x}: reply xid {got} arrived where xid {expected} was next (replies out of request order)")]
    RepliesOutOfOrder {
        client: u32,
        session: i64,
        expected: i32,
        got: i32,
    },
    #[error(
        "client {client} session 0x{session:x}: reply xid {got} arrived with nothing outstanding"
    )]
    UnexpectedReply { client: u32, session: i64, got: i32 },
    #[error("client {client} session 0x{session:x}: reply zxid 0x{got:x} is older than 0x{seen:x} seen before (the session went back in time)")]
    ZxidWentBack {
        client: u32,
        session: i64,
        seen: i64,
        got: i64,
    },
    #[error("client {client} session 0x{session:x}: watch event {event} zxid 0x{zxid:x} arrived after a reply with zxid 0x{reply_zxid:x}")]
    WatchEventLate {
        client: u32,
        session: i64,
        event: String,
        zxid: i64,
        reply_zxid: i64,
    },
    #[error("client {client} session 0x{session:x}: watch event {event} zxid 0x{zxid:x} after one with zxid 0x{previous:x}")]
    WatchEventsOutOfOrder {
        client: u32,
        session: i64,
        event: String,
        zxid: i64,
        previous: i64,
    },
    #[error("client {client} session 0x{session:x}: watch event {event} matches no watch the client set")]
    SpuriousWatchEvent {
        client: u32,
        session: i64,
        event: String,
    },
    #[error("s{server}: client {client} session 0x{session:x}: the {watch} did not fire for txn 0x{txn:x} before a reply with zxid 0x{reply_zxid:x}")]
    WatchEventLost {
        server: u8,
        client: u32,
        session: i64,
        watch: String,
        txn: i64,
        reply_zxid: i64,
    },
    #[error("client {client}: reconnecting to session 0x{asked:x} got session 0x{got:x}")]
    WrongSessionOnReconnect { client: u32, asked: i64, got: i64 },
    #[error("client {client}: undecodable frame from the server: {reason}")]
    Undecodable { client: u32, reason: String },
    #[error("s{server}: the history is not linearizable: {detail}")]
    NotLinearizable { server: u8, detail: String },
    #[error("s{server}: two acknowledged txns carry zxid 0x{zxid:x}: {first} and {second}")]
    ZxidReused {
        server: u8,
        zxid: i64,
        first: String,
        second: String,
    },
    #[error("s{server}: at quiescence, sessions in the tree but not held by a live client: {dead:x?}; held but not in the tree: {missing:x?}")]
    SessionsDisagree {
        server: u8,
        dead: Vec<i64>,
        missing: Vec<i64>,
    },
    #[error("s{server}: txn 0x{zxid:x} (session 0x{session:x} cxid {cxid}) is in the log, but no client asked for it")]
    PhantomTxn {
        server: u8,
        zxid: i64,
        session: i64,
        cxid: i32,
    },
    #[error("s{server}: a client was told session 0x{session:x} expired, but the log has no closeSession for it")]
    SessionVanished { server: u8, session: i64 },
    #[error(
        "s{server}: ephemeral {path} belongs to session 0x{owner:x}, which no live client holds"
    )]
    OrphanEphemeral {
        server: u8,
        path: String,
        owner: i64,
    },
    #[error("s{server}: tree digest {live:x} at zxid 0x{zxid:x}, but {what} gives {other:x}")]
    DigestMismatch {
        server: u8,
        zxid: i64,
        live: u64,
        what: &'static str,
        other: u64,
    },
    #[error("s{server}: the driver broke a rule of node's actions: {rule}")]
    ActionContract { server: u8, rule: String },
    #[error("epoch {epoch} has two established leaders: s{first} and s{second}")]
    TwoLeaders { epoch: i64, first: u8, second: u8 },
    #[error("s{second} disagrees with s{first} at zxid 0x{zxid:x}: {what}")]
    ServersDisagree {
        zxid: i64,
        first: u8,
        second: u8,
        what: String,
    },
    #[error("database {database}: clients saw zxid 0x{zxid:x}, but a quorum of voters holds only up to 0x{quorum_durable:x} durably")]
    SeenNotOnQuorum {
        database: usize,
        zxid: i64,
        quorum_durable: i64,
    },
    #[error("s{server}: its leader s{leader} sent COMMIT 0x{zxid:x} after COMMIT 0x{after:x} on one connection (commits out of zxid order)")]
    CommitOutOfOrder {
        server: u8,
        leader: u8,
        zxid: i64,
        after: i64,
    },
    #[error("the run is stuck: {what}")]
    Stuck { what: String },
    #[error("the node panicked: {message}")]
    Panic { message: String },
}

/// A violation with where and when it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    pub violation: Violation,
    /// Simulated time.
    pub at: Duration,
    /// Scheduler events processed before it.
    pub step: u64,
}

impl std::fmt::Display for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (at {:.6}s, step {})",
            self.violation,
            self.at.as_secs_f64(),
            self.step
        )
    }
}
