//! The deterministic simulator (work in progress).

pub mod checks;
pub mod client;
pub mod context;
pub mod disk;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod network;
pub mod options;
pub mod queue;
pub mod rng;
pub mod server;
pub mod trace;
pub mod violation;
pub mod workload;
pub mod world;

pub use options::{Bug, Fault, Faults, Options};
pub use violation::{Found, Violation};
pub use world::{run, Outcome, Summary};
