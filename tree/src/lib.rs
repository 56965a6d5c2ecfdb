//! The ZooKeeper data model as a deterministic state machine: no I/O, no
//! clock, no randomness. Time arrives in txn headers; everything else is a
//! function of the txns applied so far.
//!
//! ```text
//!   WriteOp ──prepare──▶ Txn ──(log: durable)──▶ apply ──▶ TxnResult + watch events
//!                 ▲                                 │
//!                 └──── overlay of pending changes ◀┘ (forgotten once applied)
//! ```
//!
//! - [`DataTree::prepare`] validates a client's write against the tree as it
//!   will be after every txn already prepared, and resolves it into a [`Txn`]
//!   that carries everything `apply` needs (final sequential name, the
//!   parent's new cversion, the ephemeral owner).
//! - [`DataTree::apply`] applies txns in zxid order, live or on replay, and
//!   is idempotent over a fuzzy snapshot.
//! - Reads check ACLs and register watches; [`watch`] holds the watch tables.
//! - [`snapshot`] writes and loads the tree in resumable chunks.

pub mod acl;
pub mod data_tree;
pub mod node;
pub mod path;
pub mod prepare;
pub mod snapshot;
pub mod txn;
pub mod watch;

/// The hash map used on the request path: ahash, randomly seeded, so that
/// crafted paths cannot degrade it.
pub type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
/// The set counterpart of [`HashMap`].
pub type HashSet<K> = std::collections::HashSet<K, ahash::RandomState>;

pub use data_tree::{Applied, Caller, DataTree, MultiOpResult, TxnResult, WatchLists};
pub use prepare::{PrepareError, WriteOp};
pub use snapshot::{SnapshotCursor, SnapshotError};
pub use txn::{decode_record, encode_record, Txn, TxnHeader};
