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

/// The hash map used on the request path: ahash, keyed by a seed, so that
/// crafted paths cannot degrade it when the seed is secret.
///
/// Determinism: a tree's maps are keyed by its hash seed
/// ([`DataTree::with_hash_seed`]), and nothing the tree returns depends on
/// their iteration order (events, reap candidates, sessions, ephemerals,
/// watch reports, txns, snapshots and `nodes()` are all sorted), so the same
/// inputs give the same outputs whatever the seed: a simulator replays a run
/// bit for bit, while a server passes a random seed for DoS resistance.
pub type HashMap<K, V> = std::collections::HashMap<K, V, ahash::RandomState>;
/// The set counterpart of [`HashMap`].
pub type HashSet<K> = std::collections::HashSet<K, ahash::RandomState>;

/// The hasher for every map of a tree with this seed. The other three ahash
/// keys are fixed: the seed alone decides the hashes (node's maps keyed by
/// values a client cannot choose freely use it with a fixed seed).
pub fn hasher(seed: u64) -> ahash::RandomState {
    const KEYS: [u64; 3] = [
        0x243f_6a88_85a3_08d3,
        0x1319_8a2e_0370_7344,
        0xa409_3822_299f_31d0,
    ];
    ahash::RandomState::with_seeds(seed, KEYS[0], KEYS[1], KEYS[2])
}

/// A seed from the process's random source, for trees built without one.
pub(crate) fn random_hash_seed() -> u64 {
    ahash::RandomState::new().hash_one(0x5eed_u64)
}

pub use data_tree::{Applied, Caller, DataTree, MultiOpResult, TxnResult, WatchLists};
pub use prepare::{PrepareError, WriteOp};
pub use snapshot::{SnapshotCursor, SnapshotError};
pub use txn::{decode_record, encode_record, Txn, TxnHeader};
