//! What a run is asked to do: its seed, its size, which faults may strike,
//! and (for the simulator's own tests) which known bug to reintroduce.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use thiserror::Error;

use crate::script::Script;

/// A kind of fault the simulator may inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Fault {
    /// A server loses power (unsynced writes lost, kept or torn) or is
    /// killed (the page cache survives), then restarts and recovers.
    Crash,
    /// An fdatasync of the log fails: the server must stop acknowledging writes.
    Fsync,
    /// The disk fills up: the next log segment cannot be preallocated and
    /// snapshots fail. The server refuses writes while its log waits, until
    /// the operator frees space a while later.
    DiskFull,
    /// Disk operations take hundreds of milliseconds to seconds for a while.
    SlowDisk,
    /// A server's wall clock jumps or is skewed; its monotonic clock leaps
    /// forward (a paused VM).
    Clock,
    /// A client connection is reset (both ends see it close).
    Reset,
    /// A client goes silent (its process died): its session must expire
    /// and its ephemerals vanish.
    Silent,
    /// A client and a server cannot reach each other for a while.
    Partition,
    /// An ensemble's server is crashed and one bit flips in a durable,
    /// acknowledged record of its log (a latent sector error, a firmware
    /// bug); half the time the server chosen is one of exactly two that
    /// hold the newest write a client saw, and the other holder is crashed
    /// too — the interleaving in which voting as if the lost record were
    /// held loses it (protocol-aware recovery, Alagappan et al., FAST 2018).
    /// Not part of `all` (opt in: `--faults all,bit-flip`): a standalone
    /// server refuses such a log by design, and `all` keeps old seeds'
    /// meaning.
    BitFlip,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Crash,
        Fault::Fsync,
        Fault::DiskFull,
        Fault::SlowDisk,
        Fault::Clock,
        Fault::Reset,
        Fault::Silent,
        Fault::Partition,
    ];

    /// Faults only named ones enable (`all` leaves them out).
    pub const OPT_IN: [Fault; 1] = [Fault::BitFlip];

    pub fn name(self) -> &'static str {
        match self {
            Fault::BitFlip => "bit-flip",
            Fault::Crash => "crash",
            Fault::Fsync => "fsync",
            Fault::DiskFull => "disk-full",
            Fault::SlowDisk => "slow-disk",
            Fault::Clock => "clock",
            Fault::Reset => "reset",
            Fault::Silent => "silent",
            Fault::Partition => "partition",
        }
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
#[error("unknown fault {name:?} (known: all, none, {known})")]
pub struct UnknownFault {
    pub name: String,
    pub known: String,
}

/// A set of faults, parsed from `crash,fsync,...`, `all` or `none`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Faults(pub BTreeSet<Fault>);

impl Faults {
    pub fn all() -> Faults {
        Faults(Fault::ALL.into_iter().collect())
    }

    pub fn none() -> Faults {
        Faults(BTreeSet::new())
    }

    pub fn has(&self, fault: Fault) -> bool {
        self.0.contains(&fault)
    }
}

impl FromStr for Faults {
    type Err = UnknownFault;

    fn from_str(list: &str) -> Result<Faults, UnknownFault> {
        let mut faults = BTreeSet::new();
        for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            match name {
                "all" => faults.extend(Fault::ALL),
                "none" => {}
                name => {
                    let mut known = Fault::ALL.into_iter().chain(Fault::OPT_IN);
                    let fault = known.find(|f| f.name() == name);
                    faults.insert(fault.ok_or_else(|| {
                        UnknownFault {
                            name: name.to_string(),
                            known: Fault::ALL
                                .into_iter()
                                .chain(Fault::OPT_IN)
                                .map(Fault::name)
                                .collect::<Vec<_>>()
                                .join(", "),
                        }
                    })?);
                }
            }
        }
        Ok(Faults(faults))
    }
}

impl fmt::Display for Faults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return write!(f, "none");
        }
        let names: Vec<&str> = self.0.iter().map(|fault| fault.name()).collect();
        write!(f, "{}", names.join(","))
    }
}

/// A known class of bug the simulator can reintroduce on purpose, to prove
/// that its checkers still catch it (see `tests/teeth.rs`). Never set in a
/// normal run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bug {
    /// The driver reports a batch durable to the node as soon as it is
    /// appended, before the log's fdatasync: replies leave for writes a
    /// power cut can still lose.
    AckBeforeDurable,
    /// The log writer runs with forceSync off (no fdatasync at all), as
    /// `forceSync=no` does: the same loss, one layer down.
    NoForceSync,
    /// The driver now and then holds a connection's frames back and writes
    /// them after the connection's next ones: replies leave out of order.
    ReorderSends,
    /// Recovery loads the newest snapshot and skips the log after it.
    SkipLogReplay,
    /// The driver now and then drops a watch notification from the frames
    /// it writes.
    DropWatchEvents,
    /// Ensembles: learners write currentEpoch and acknowledge NEWLEADER
    /// before their sync's txns are durable (`replication::Mutation`).
    CurrentEpochBeforeDurable,
    /// Ensembles: a leader syncs a learner holding txns it never committed
    /// with DIFF instead of TRUNC (`replication::Mutation`).
    DiffWithoutTrunc,
    /// Ensembles: a server whose log lost acknowledged records to damage
    /// votes as if it held them, as ZooKeeper does (`replication::Mutation`).
    VoteAsIfLostRecordsHeld,
    /// Ensembles: a leader sends the COMMITs of proposals that reach their
    /// quorum together newest first (`replication::Mutation`).
    CommitOutOfOrder,
    /// Ensembles: a TRUNC cuts the log only, and snapshots above the cut
    /// stay — ZOOKEEPER-1549's dirty snapshot survives its truncation.
    TruncKeepsSnapshots,
}

impl Bug {
    pub const ALL: [Bug; 10] = [
        Bug::AckBeforeDurable,
        Bug::NoForceSync,
        Bug::ReorderSends,
        Bug::SkipLogReplay,
        Bug::DropWatchEvents,
        Bug::CurrentEpochBeforeDurable,
        Bug::DiffWithoutTrunc,
        Bug::VoteAsIfLostRecordsHeld,
        Bug::CommitOutOfOrder,
        Bug::TruncKeepsSnapshots,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Bug::AckBeforeDurable => "ack-before-durable",
            Bug::NoForceSync => "no-force-sync",
            Bug::ReorderSends => "reorder-sends",
            Bug::SkipLogReplay => "skip-log-replay",
            Bug::DropWatchEvents => "drop-watch-events",
            Bug::CurrentEpochBeforeDurable => "current-epoch-before-durable",
            Bug::DiffWithoutTrunc => "diff-without-trunc",
            Bug::VoteAsIfLostRecordsHeld => "vote-as-if-lost-records-held",
            Bug::CommitOutOfOrder => "commit-out-of-order",
            Bug::TruncKeepsSnapshots => "trunc-keeps-snapshots",
        }
    }

    /// The replication mutation this bug is, if it is one.
    pub fn mutation(self) -> Option<replication::Mutation> {
        match self {
            Bug::CurrentEpochBeforeDurable => {
                Some(replication::Mutation::CurrentEpochBeforeDurable)
            }
            Bug::DiffWithoutTrunc => Some(replication::Mutation::DiffWithoutTrunc),
            Bug::VoteAsIfLostRecordsHeld => Some(replication::Mutation::VoteAsIfLostRecordsHeld),
            Bug::CommitOutOfOrder => Some(replication::Mutation::CommitOutOfOrder),
            _ => None,
        }
    }
}

impl FromStr for Bug {
    type Err = String;

    fn from_str(name: &str) -> Result<Bug, String> {
        Bug::ALL
            .into_iter()
            .find(|b| b.name() == name)
            .ok_or_else(|| format!("unknown bug {name:?}"))
    }
}

/// What the clients mostly do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Every kind of request, over every path (the default).
    Standard,
    /// Mostly sessions gathering many long-named ephemerals on servers
    /// with small log segments, so that closing or expiring a session
    /// takes more than one txn.
    ManyEphemerals,
    /// Mostly writes of kilobyte values over the bulk nodes: a tree of a
    /// megabyte or more, so that a SNAP to a learner spans many chunks.
    BigTree,
    /// Mostly multis (compare-and-sets over the keys, and batches of
    /// ephemeral sequential creates) beside bulk writes that keep the tree
    /// big enough for a snapshot to take several chunks: multis are
    /// applied while fuzzy snapshots are walked (ZOOKEEPER-3127).
    Multis,
}

impl FromStr for Mix {
    type Err = String;

    fn from_str(name: &str) -> Result<Mix, String> {
        match name {
            "standard" => Ok(Mix::Standard),
            "many-ephemerals" => Ok(Mix::ManyEphemerals),
            "big-tree" => Ok(Mix::BigTree),
            "multis" => Ok(Mix::Multis),
            _ => Err(format!(
                "unknown mix {name:?} (standard, many-ephemerals, big-tree, multis)"
            )),
        }
    }
}

impl Mix {
    pub fn name(self) -> &'static str {
        match self {
            Mix::Standard => "standard",
            Mix::ManyEphemerals => "many-ephemerals",
            Mix::BigTree => "big-tree",
            Mix::Multis => "multis",
        }
    }
}

/// One run's parameters. The seed decides everything else.
#[derive(Debug, Clone)]
pub struct Options {
    pub seed: u64,
    /// Independent databases side by side, each with its own servers,
    /// clients and history.
    pub databases: usize,
    /// Voting servers per database: 1 is a standalone server, more an
    /// ensemble (3 and 5 are the usual sizes).
    pub servers: usize,
    /// Observers per database, beside its voters (an ensemble only).
    pub observers: usize,
    /// Clients per database.
    pub clients: usize,
    /// Scheduler events to process before the run winds down.
    pub steps: u64,
    pub faults: Faults,
    pub mix: Mix,
    /// A bug to reintroduce (the simulator's own tests only).
    pub bug: Option<Bug>,
    /// The driver asserts that no reply carries a zxid beyond the durable
    /// log (on by default; the teeth tests turn it off to prove that the
    /// end-to-end checkers catch the same bug on their own).
    pub assert_reply_after_durable: bool,
    /// At every restart, check the recovered state against what clients
    /// were told (on by default; the teeth tests turn it off to prove that
    /// the end-of-run checkers catch lost writes on their own).
    pub check_recovery: bool,
    /// Keep every event's line (for `--trace`); the fingerprint is kept either way.
    pub trace: bool,
    /// Faults scripted to land in named states (scenario tests; see
    /// [`crate::script`]). Empty by default.
    pub script: Script,
    /// Ensembles: the leader's window of recent txns for DIFF, in txns
    /// (`None`: drawn per database from 20, 200 and 10,000). A small one
    /// makes learners that fell behind get SNAPs.
    pub history_txns_max: Option<usize>,
    /// The highest zxid counter a leader proposes before it starts a new
    /// epoch (ZOOKEEPER-1277's rollover; `None`: node's default, just
    /// below 2^32). A small value makes the rollover happen again and again.
    pub zxid_counter_max: Option<u32>,
}

impl Options {
    /// Whether each database is an ensemble (more than one server).
    pub fn is_ensemble(&self) -> bool {
        self.servers + self.observers > 1
    }

    /// Servers per database, voters first.
    pub fn servers_per_database(&self) -> usize {
        self.servers + self.observers
    }

    /// The defaults `fk-sim` and the CI tests use, for one seed.
    pub fn new(seed: u64) -> Options {
        Options {
            seed,
            databases: 1,
            servers: 1,
            observers: 0,
            clients: 5,
            steps: 20_000,
            faults: Faults::all(),
            mix: Mix::Standard,
            bug: None,
            assert_reply_after_durable: true,
            check_recovery: true,
            trace: false,
            script: Script::default(),
            history_txns_max: None,
            zxid_counter_max: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse_and_print_back() {
        let faults: Faults = "crash, fsync,clock".parse().unwrap();
        assert_eq!(faults.to_string(), "crash,fsync,clock");
        assert_eq!("all".parse::<Faults>().unwrap(), Faults::all());
        assert_eq!("none".parse::<Faults>().unwrap(), Faults::none());
        assert!("crash,meteor".parse::<Faults>().is_err());
        let opted: Faults = "all,bit-flip".parse().unwrap();
        assert!(opted.has(Fault::BitFlip) && !Faults::all().has(Fault::BitFlip));
    }
}
