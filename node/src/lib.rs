//! One ferrokeeper server as a sans-IO state machine.
//!
//! The node holds everything a server decides: the data tree, the session
//! table, each connection's reply queue, the write pipeline, session
//! expiry, the container/TTL reaper, snapshot scheduling and the figures
//! four-letter words report. It does no I/O and reads no clock or random
//! source: a driver feeds it [`Input`]s with the current time ([`Now`]) and
//! carries out the [`Action`]s it hands back. The engine drives it with
//! sockets, glommio and disks; the simulator drives whole ensembles of it in
//! one thread from one seed.
//!
//! ```text
//!             ┌──────────────────────── Node ────────────────────────┐
//!  Connect ──▶│ sessions ── connections: reply queues (request order)│──▶ Send, Close
//!  Requests ─▶│   │              ▲ replies filled in at apply        │
//!             │   ▼              │                                   │
//!             │ prepare ─▶ pipeline: prepared → durable → committed  │──▶ Append (≤ 1 in flight)
//!  LogDurable▶│            → applied (tree) ─▶ watch events          │
//!  Tick ─────▶│ expiry, reaper, autopurge        snapshots ──────────│──▶ SnapshotBegin/Chunk/End, Purge
//!             └──────────────────────────────────────────────────────┘
//! ```
//!
//! Invariants, checked by [`Node::check_invariants`]:
//! - `applied ≤ committed ≤ durable ≤ prepared`; the txns in flight are
//!   exactly `(applied, prepared]`, in zxid order;
//! - no write's reply is handed over before its txn is applied;
//! - every reply slot waiting for a txn is indexed by (session, cxid), and a
//!   txn with that pair is in flight;
//! - every session in the tree is live, every live session is in the tree or
//!   being created, every ephemeral's owner is a session in the tree;
//! - every append holds at most the configured records, and the pipeline
//!   stays within [`pipeline::PIPELINE_TXNS_MAX`] while the driver honours
//!   [`Node::accepts_requests`].
//!
//! Iteration order never depends on a random hasher: the same inputs give
//! the same actions, byte for byte.

pub mod admission;
mod client;
mod commit;
mod connections;
pub mod fourlw;
mod history;
mod io;
mod leading;
mod learning;
mod node;
pub mod pipeline;
pub mod requests;
mod roles;
pub mod sasl;
pub mod session_id;
mod sessions;
pub mod settings;
mod snapshots;
pub mod stats;

pub use io::{
    Action, ConnId, EpochKind, Input, Level, LinkId, LogRecord, Now, Peer, PurgeReport,
    RequestFrame, SnapshotWritten, StorageFailure,
};
pub use node::{AppendLimits, Node, Recovered};
pub use sasl::SaslSettings;
pub use settings::{EnsembleSettings, Settings};
pub use snapshots::CHUNKS_IN_FLIGHT_MAX as SNAPSHOT_CHUNKS_IN_FLIGHT_MAX;

/// Actions gathered during a step, handed over by [`Node::ready`].
#[derive(Debug, Default)]
pub(crate) struct Out {
    pub(crate) actions: Vec<io::Action>,
}

impl Out {
    pub(crate) fn push(&mut self, action: io::Action) {
        self.actions.push(action);
    }

    pub(crate) fn log(&mut self, level: io::Level, line: String) {
        self.actions.push(io::Action::Log { level, line });
    }
}
