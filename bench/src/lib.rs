//! Measuring instruments for ferrokeeper (DESIGN.md, "Measured, always").
//!
//! - [`driver`]: the load generator (binary `fk-loadgen`): a ZooKeeper-protocol
//!   client that drives any ZooKeeper-compatible server with N sessions, a
//!   bounded number of outstanding requests per session, closed or open loop,
//!   and reports HdrHistogram percentiles ([`stats`]). Its module docs describe
//!   the threading model.
//! - [`harness`]: the side-by-side harness (binary `fk-sidebyside`) that runs
//!   the same workloads against Apache ZooKeeper and ferrokeeper on the same
//!   disk and prints one table with both.
//! - [`failover`]: a steady create load whose sessions move to another server
//!   when theirs fails and record every acknowledged create, for the
//!   harness's failover measurement (SIGKILL of an ensemble's leader).
//! - `benches/`: criterion micro-benchmarks (jute codec, tree apply).
//!
//! Everything here talks to servers on 127.0.0.1 only.

pub mod driver;
pub mod failover;
pub mod harness;
pub mod plot;
pub mod session;
pub mod stats;
pub mod sync_client;
pub mod table;
pub mod wire;
pub mod workload;
