//! The deterministic simulator (work in progress).

pub mod disk;
pub mod history;
pub mod linearizability;
pub mod model;
pub mod network;
pub mod options;
pub mod queue;
pub mod rng;
