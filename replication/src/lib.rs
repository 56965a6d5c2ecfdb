//! ZAB, the replication protocol of ZooKeeper, as sans-IO building blocks.
//!
//! Everything here is pure: bytes and events go in, values and actions come
//! out. No socket, no clock, no random source, no thread — the driver (the
//! `node` crate under `engine` in production, the simulator in tests) does
//! the I/O and passes the time in.
//!
//! - [`election_wire`]: the election port — the connection hello and the
//!   notification, in every form ZooKeeper accepts, and a stream decoder.
//! - [`packet`]: the quorum port — jute `QuorumPacket` with ZooKeeper's
//!   packet type numbers, and a bounded stream decoder.
//! - [`messages`]: what ZooKeeper puts in a packet's zxid and data for each
//!   type, as typed leader → learner and learner → leader messages.
//! - [`ensemble`]: `server.N=...` lines, membership, majority quorums over
//!   participants.
//! - [`election`]: fast leader election as a state machine.
//! - [`leader`]: the leader after election — discovery, synchronisation of
//!   each learner (DIFF / TRUNC / SNAP), pipelined broadcast.
//! - [`learner`]: a follower or observer — registration, synchronisation
//!   with its persistence orders, following the broadcast.
//!
//! Txn payloads are opaque [`bytes::Bytes`]: this crate never sees tree
//! types, and one encoded proposal is shared by every follower queue.

pub mod election;
pub mod election_wire;
pub mod ensemble;
pub mod leader;
pub mod learner;
pub mod messages;
pub mod packet;

pub use election::{Election, ElectionAction, ElectionConfig, ElectionInput, Role, Vote};
pub use election_wire::{
    ElectionFrame, ElectionHello, ElectionStreamDecoder, ElectionStreamError, HostPort,
    Notification, NotificationError, ServerState,
};
pub use ensemble::{Ensemble, EnsembleError, LearnerType, ServerSpec, Sid};
pub use messages::{LeaderMessage, LearnerInfo, LearnerMessage, MessageError};
pub use packet::{PacketStreamError, PacketType, QuorumPacket, QuorumStreamDecoder};

/// A known class of replication bug, reintroduced on purpose so that the
/// simulator's tests can prove its checkers still catch it
/// (`sim/tests/teeth.rs`). Test-only: nothing in production sets one; the
/// default everywhere is `None`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// A learner writes currentEpoch and acknowledges NEWLEADER before the
    /// txns of its synchronisation are durable (ZOOKEEPER-4643, 3911, 4785).
    CurrentEpochBeforeDurable,
    /// A leader opens the synchronisation of a learner that holds txns it
    /// never committed with DIFF instead of TRUNC (ZOOKEEPER-1154).
    DiffWithoutTrunc,
    /// A server whose log lost acknowledged records to damage votes (and
    /// counts in quorums) as if it held them, as ZooKeeper does (Alagappan
    /// et al., FAST 2018): protocol-aware recovery switched off.
    VoteAsIfLostRecordsHeld,
    /// A leader commits each proposal on its own quorum and, when one ACK
    /// brings several outstanding proposals to their quorum at once, sends
    /// the COMMIT (INFORM to observers) of the newest first and the earlier
    /// ones after it — as ZooKeeper's `Leader.tryToCommit` would without its
    /// "is zxid - 1 still outstanding?" check. Learners then receive commits
    /// out of zxid order, which ZAB forbids (a ZooKeeper follower exits on
    /// it: "Committing zxid X but next pending txn Y").
    CommitOutOfOrder,
}
