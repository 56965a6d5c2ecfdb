//! The ferrokeeper server: glommio executors, client connections, the
//! request pipeline, configuration and four-letter words. The only crate that
//! knows about glommio, clocks and sockets (DESIGN.md, "The workspace").

pub mod config;
pub mod connection;
pub mod fourlw;
pub mod log_stage;
pub mod messages;
pub mod requests;
pub mod sequencer;
pub mod server;
pub mod session;
pub mod stats;
pub mod storage;

/// The version reported by `srvr`, `stat` and `mntr`. Clients and tools parse
/// the leading ZooKeeper version, so it comes first.
pub const VERSION: &str = concat!("3.9.0-ferrokeeper-", env!("CARGO_PKG_VERSION"));
