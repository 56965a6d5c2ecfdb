//! The deterministic simulator: ferrokeeper's real [`node::Node`] over wal's
//! in-memory fault-injecting disk and a simulated network, driven by one
//! thread from one seed, with faults injected and every client-visible
//! answer checked. In the spirit of TigerBeetle's VOPR and FoundationDB's
//! simulator; `wal/tests/crash.rs` is the in-house model, for whole servers.
//!
//! # The model
//!
//! ```text
//!              one seed ─▶ Rng ─▶ every latency, fault, choice, request
//!                                        │
//!   agenda (time-ordered events) ────────┼──────────────────────────────────────┐
//!     │                                  ▼                                      │
//!     ├─ Deliver ──▶ Network: FIFO links, resets, partitions ──▶ Client / Server│
//!     ├─ DiskOp ───▶ Server: Node ⇄ driver ⇄ LogDisk (wal::LogWriter on MemFs,  │
//!     ├─ Tick, SnapshotOp        one file operation per event) + snapshots      │
//!     ├─ ClientWake ─▶ Client: handshake, pipelined requests, pings, watches    │
//!     └─ Fault ─────▶ crash (power cut / kill, anywhere, or just before a disk  │
//!                     operation), failed fsync, full disk, slow disk, clock     │
//!                     jumps and skew, resets, silent clients, partitions ───────┘
//! ```
//!
//! - [`context`]: what every actor shares — simulated time, the one
//!   [`rng::Rng`], the [`network::Network`], the agenda ([`queue::Queue`]),
//!   the histories, the trace.
//! - [`server`]: a node and the driver that carries out its actions, as
//!   `engine/src/driver.rs` does, asserting their orders; crash and
//!   recovery through `wal::recover_from`, as the engine starts.
//! - [`disk`]: the log written by the real `wal::LogWriter` over
//!   `wal::MemFs`, stepped one file operation at a time so a crash can fall
//!   between any two, waiting out a full disk as the engine's log stage
//!   does; [`snapshots`]: wal's own snapshot writer over the data directory
//!   of the same disk; [`recovery`]: a server's start from its disk, as the
//!   engine's.
//! - [`client`] and [`workload`]: clients that speak the client protocol
//!   and record what they asked and what they were told ([`history`]).
//! - [`model`], [`linearizability`], [`checks`]: the judges.
//! - [`history_file`]: the same judges for histories that real clients
//!   recorded against real servers (`fk-sim check-history FILE.json`;
//!   `tests/test_netns_faults.py` writes them).
//! - [`world`]: one run from start to verdict.
//!
//! # What is checked
//!
//! Continuously: `check_invariants()` after every step of every node; no
//! reply carries a zxid beyond the durable log; after every restart, the
//! recovered zxid reaches every zxid a client saw, every acknowledged txn in
//! the replayed log is the one the client was told about, and no write the
//! client was told failed (SYSTEMERROR, SESSIONEXPIRED...: an answer without
//! a txn of its own) came back; replies arrive in request order; a
//! session's zxids never go back; watch events arrive in zxid order, before
//! any reply with a higher zxid, and only for watches the client set.
//!
//! At the end (faults stop; silent clients' sessions expire; every live
//! client reads every path): sessions in the tree are exactly the live
//! clients' and every ephemeral belongs to one; the live tree's digest
//! equals recovery's from the newest snapshot and from snapshot 0 with the
//! whole log; every txn the client was told about is in the final log as
//! told, and every other txn is one the server makes itself (expiries,
//! shed ephemerals, reaped containers); no watch set on a connection failed
//! to fire there before a reply showing its txn applied ([`watches`]); and
//! the history is linearizable over the [`model`], with writes in zxid
//! order and each read at its reply's zxid (see [`linearizability`] and
//! [`checks`] for how unanswered ops are placed).
//!
//! # Bugs it found
//!
//! `tests/regressions.rs` keeps each with the seeds that found it: writes
//! answered SYSTEMERROR that came back after a restart (node now closes the
//! connections of writes in flight when the log fails: their clients see a
//! connection loss, outcome unknown), and sessions with more ephemerals
//! than one closeSession txn holds that never closed or expired (tree and
//! node). Both are checked in every run; the standard [`Mix`] leaves out
//! sessions with hundreds of ephemerals only because they make each step's
//! invariant checks several times slower — `--mix many-ephemerals` runs
//! them, in CI too. node's full-disk test in `node/tests/step.rs` keeps a
//! third: an error reply queued behind a write waiting for log space left
//! with an older zxid than that write's (the session went back in time).
//!
//! A fourth came from a `--mix many-ephemerals` soak (seed 41 of 20,000
//! steps; the standard mix does not reach it): a closeSession sent behind
//! the session's own ephemeral creates still in flight was answered
//! BADARGUMENTS when they were too many for one txn (node shed only the
//! applied ephemerals).
//!
//! The ensembles found ten more, each fixed with a node or replication
//! test that fails without the fix and its seed kept in
//! `tests/regressions.rs`: a session moving to a follower tripped node's
//! own invariant check; a learner that lost its leader reloaded its state
//! with an append in flight (a panic); a forwarded `sync` was answered
//! after the COMMITs of txns proposed after it (the session saw its own
//! later writes); an epoch write in flight was asserted against when the
//! next role asked for one, and then the next role started from the epochs
//! before it (acceptedEpoch went back); a learner logged proposals above a
//! snapshot from its leader before that snapshot was sealed (a crash or a
//! failed write left a log with a gap, replayed into a wrong tree); a
//! leader whose own log lagged sent a snapshot of its older tree with only
//! its window's txns after it (txns in between skipped); a learner whose
//! TRUNC was slow never voted again after losing its leader meanwhile; a
//! participant or observer that had accepted an epoch from a leader that
//! never got established refused the established one forever; and a
//! session answered on two connections of one server followed the stale
//! one (its watch events, then its watches, were lost). Capping the zxid
//! counter (`--zxid-counter-max`, so that ZOOKEEPER-1277's rollover comes
//! every few dozen txns) found an eleventh: a leader whose counter ran out
//! while it expired several sessions on one tick panicked.
//!
//! # Replay, CI and soak
//!
//! A run is a function of its [`Options`]: `fk-sim --seed S` replays seed S
//! bit for bit (`--trace` prints every event; two runs print the same
//! trace), and `fk-sim --seeds N` runs N seeds and stops at the first
//! violation, printing the command that replays it. `cargo test -p sim`
//! runs a fixed set of seeds in seconds (`tests/ci.rs`, and ensembles of 3
//! and 5 servers, with observers in some, in `tests/ensemble.rs`), proves
//! the checkers still catch reintroduced bugs (`tests/teeth.rs`: in
//! ensembles too — ACK before durable, currentEpoch before the sync is
//! durable, DIFF without TRUNC, COMMITs out of zxid order, the last three
//! through the test-only `replication::Mutation`), and keeps every seed that once failed
//! (`tests/regressions.rs`; the two slowest ensemble seeds run only in
//! `cargo test -p sim --release`). The whole of it takes about a minute in
//! a debug build on two cores. A long soak, on all cores
//! (add `--mix many-ephemerals` to some of them, or `--faults fsync,crash`
//! to hammer the log's failure paths):
//!
//! ```text
//! cargo build --release -p sim
//! for i in $(seq 0 $(($(nproc) - 1))); do
//!   target/release/fk-sim --seeds 100000 --first-seed $((i * 100000)) --steps 50000 &
//! done; wait
//! ```
//!
//! A release build runs a 20,000-step seed of the standard mix in about
//! 0.3 s, of the many-ephemerals mix in about 2 s.
//!
//! # Ensembles
//!
//! `fk-sim --servers 3` (or 5, `--observers K` beside them) runs each
//! database as an ensemble: N real nodes, each with its own disk, wired by
//! server-to-server links of the same network — election notifications in
//! ZooKeeper's encoding on election links, jute quorum packets on a
//! learner's link to its leader, FIFO per connection and delayed,
//! reordered across connections, held by partitions and dropped by resets
//! like any link ([`server`]'s `peers` carries out the node's peer actions:
//! dials, sends, closes, epoch files through wal, TRUNC through the log
//! writer, reloads from disk). Clients connect to any server, move to
//! another after a connection loss (their session moves, REVALIDATE), and
//! have their writes forwarded to the leader.
//!
//! Faults reach every server: crashes anywhere, and armed to land between
//! persistence steps (inside a log write or TRUNC, just before or after an
//! epoch file is written, just before or after a snapshot is sealed);
//! partitions between servers (a pair both ways, one way only, or one
//! server from all its peers), resets of any link, clock jumps and skew
//! per server. Every fault heals and every crashed server restarts, so a
//! quorum always comes back; at the end the ensemble must settle (one
//! leader, everyone serving) within two minutes. Opt-in (`--faults
//! all,bit-flip`): a bit flips in a durable, acknowledged record of a
//! crashed server's log, half the time aimed at the follower whose ack
//! completed a quorum while the other holder goes down too
//! (`server/damage.rs`, protocol-aware recovery: the damage is set aside,
//! and the server recovers from its peers before it votes again).
//!
//! [`ensemble`] checks the servers against each other after every step —
//! one established leader per epoch, one txn per zxid among what serving
//! servers applied, equal digests at equal zxids, nothing a client saw
//! beyond what a quorum of voters holds durably, and no acknowledged write
//! above where a new leader's history of earlier epochs ends; each learner
//! checks that its leader's COMMITs and INFORMs arrive in zxid order (ZAB's
//! order, which the learner's "commit everything up to" would otherwise
//! hide) — and once quiet: every
//! server at one zxid and digest, each disk recovering to it, sessions and
//! ephemerals against the live clients. The history is then checked
//! against the whole log of a server that replays to the final tree, under
//! sequential consistency ([`linearizability::Consistency`]): linearizable
//! writes and syncs, each session in its own order, reads possibly stale
//! but never going back. (A run where every server took a snapshot from a
//! leader at some point has no such log; the summary counts it.)
//!
//! Scripted faults ([`script`]) land a fault in a named state instead of
//! waiting for chance — "power-cut the learner just after it writes
//! currentEpoch in a DIFF sync", "kill the leader as NEWLEADER reaches a
//! learner that has the whole SNAP" — and count each firing, so a
//! scenario proves its state was reached. `tests/zookeeper_bugs.rs`
//! scripts ZooKeeper's replication bugs this way (1154, 1653, 2355,
//! 2418/2846, 2872, 3104, 3642, 3911/4643/4646/4685/4785, 4394), each
//! under the random workload and every checker.
//!
//! An ensemble soak, e.g.:
//!
//! ```text
//! target/release/fk-sim --servers 3 --seeds 10000 --steps 20000
//! target/release/fk-sim --servers 5 --observers 2 --seeds 2000 --first-seed 100000
//! ```

pub mod checks;
pub mod client;
pub mod context;
pub mod disk;
pub mod ensemble;
pub mod history;
pub mod history_file;
pub mod linearizability;
pub mod model;
pub mod network;
pub mod options;
pub mod queue;
pub mod recovery;
pub mod rng;
pub mod script;
pub mod server;
pub mod snapshots;
pub mod told;
pub mod trace;
pub mod violation;
pub mod watches;
pub mod wire;
pub mod workload;
pub mod world;

pub use options::{Bug, Fault, Faults, Mix, Options};
pub use violation::{Found, Violation};
pub use world::{run, Outcome, Summary};
