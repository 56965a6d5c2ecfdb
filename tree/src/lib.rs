//! The ZooKeeper data model as a deterministic state machine.

pub mod watch;
