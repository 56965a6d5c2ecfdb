//! The ferrokeeper server: the runtime that drives the [`node`] state
//! machine — glommio executors, client sockets, the log task, the snapshot
//! thread, timers — plus zoo.cfg and four-letter-word rendering. The only
//! crate that knows about glommio, clocks and sockets (DESIGN.md, "The
//! workspace"); every decision a simulator would need lives in `node`.

pub mod client_cert;
pub mod config;
pub mod connection;
pub mod driver;
pub mod fourlw;
pub mod jaas;
pub mod keystore;
pub mod log_stage;
pub mod messages;
pub mod peers;
pub mod placement;
pub mod server;
pub mod storage;
pub mod tls;

/// The version reported by `srvr`, `stat` and `mntr`. Clients and tools parse
/// the leading ZooKeeper version, so it comes first.
pub const VERSION: &str = concat!("3.9.0-ferrokeeper-", env!("CARGO_PKG_VERSION"));
