//! Scripted faults: a scenario names the exact state a fault must land in
//! — "power-cut the learner just before it writes currentEpoch after a
//! SNAP", "kill the leader once its learner holds the whole snapshot but
//! not NEWLEADER" — instead of waiting for the random faults to stumble
//! on it. `tests/zookeeper_bugs.rs` scripts ZooKeeper's replication bugs
//! this way.
//!
//! A [`Script`] is a list of [`Rule`]s. Each names a hook ([`When`]), a
//! condition on where the server stands with its leader ([`During`]), the
//! fault to inject there ([`Then`]), and how often it may fire. The
//! server's driver asks the script at each hook, in the one thread of the
//! run, so a scripted fault lands exactly between the two steps named:
//!
//! ```text
//!  hook in the driver                               When
//!  an epoch file is about to be written / was        EpochWrite { kind, written }
//!  a snapshot is about to be sealed / was            SnapshotSeal { sealed }
//!  a quorum packet arrives, before the node sees it  Received(packet)
//!  a quorum packet is about to leave                 Sent(packet)
//!  a server recovered from its disk and started      Booted
//! ```
//!
//! `During` reads the learner's view of its current synchronisation, which
//! the driver follows from the packets on its link to the leader
//! ([`SyncView`]): which packet opened it (DIFF with or without txns,
//! TRUNC, SNAP), whether NEWLEADER arrived, whether it acknowledged it,
//! whether UPTODATE arrived.
//!
//! Every firing is counted under its rule's name in the run's summary, so
//! a scenario asserts that its trigger really happened and cannot pass
//! vacuously. The random faults of [`crate::Options::faults`] keep running
//! beside the script; a script changes nothing in a run until a rule fires.

use std::collections::BTreeMap;

use node::EpochKind;
use replication::{PacketType, QuorumPacket};

/// Scripted faults for one run (empty: none).
#[derive(Debug, Clone, Default)]
pub struct Script {
    pub rules: Vec<Rule>,
}

/// One scripted fault.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Counted under this name in [`crate::Summary::scripted`].
    pub name: &'static str,
    pub when: When,
    pub during: During,
    pub then: Then,
    /// Fires at most this many times in a run.
    pub times_max: u32,
    /// Not before this many scheduler steps (let the tree grow first).
    pub from_step: u64,
}

impl Rule {
    /// A rule that fires once, from the first step.
    pub fn new(name: &'static str, when: When, during: During, then: Then) -> Rule {
        Rule {
            name,
            when,
            during,
            then,
            times_max: 1,
            from_step: 0,
        }
    }

    pub fn times(self, times_max: u32) -> Rule {
        Rule { times_max, ..self }
    }

    pub fn from_step(self, from_step: u64) -> Rule {
        Rule { from_step, ..self }
    }
}

/// A hook in a server's driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// An epoch file write: just before it (`written: false`) or just after
    /// it, before the node hears (`true`).
    EpochWrite { kind: EpochKind, written: bool },
    /// A snapshot's seal (the rename that makes it count): just before or
    /// just after, before the node hears.
    SnapshotSeal { sealed: bool },
    /// A quorum packet arrives at this server, before its node sees it.
    Received(Packet),
    /// This server is about to send a quorum packet.
    Sent(Packet),
    /// The server recovered from its disk (after a crash, a scripted one
    /// included) and its node started, before it met any peer. Runs' first
    /// boots count too: a rule waits for them with `from_step`.
    Booted,
}

/// Quorum packets as a scenario names them (a SNAP stream is one SNAP
/// packet, chunks, and an empty end packet).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    Proposal,
    Commit,
    Inform,
    Diff,
    Trunc,
    Snap,
    SnapChunk,
    SnapEnd,
    NewLeader,
    UpToDate,
    /// A learner's ACK of NEWLEADER (zxid = epoch << 32).
    AckNewLeader,
    /// A follower's ACK of proposals.
    Ack,
    Other,
}

impl Packet {
    /// What a decoded quorum packet is.
    pub fn of(packet: &QuorumPacket) -> Packet {
        match packet.packet_type() {
            Some(PacketType::Proposal) => Packet::Proposal,
            Some(PacketType::Commit) => Packet::Commit,
            Some(PacketType::Inform) => Packet::Inform,
            Some(PacketType::Diff) => Packet::Diff,
            Some(PacketType::Trunc) => Packet::Trunc,
            Some(PacketType::Snap) => match &packet.data {
                None => Packet::Snap,
                Some(data) if data.is_empty() => Packet::SnapEnd,
                Some(_) => Packet::SnapChunk,
            },
            Some(PacketType::NewLeader) => Packet::NewLeader,
            Some(PacketType::UpToDate) => Packet::UpToDate,
            Some(PacketType::Ack) if packet.zxid & 0xffff_ffff == 0 => Packet::AckNewLeader,
            Some(PacketType::Ack) => Packet::Ack,
            _ => Packet::Other,
        }
    }
}

/// How a learner's synchronisation with its leader opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncKind {
    /// DIFF, with no txn before NEWLEADER (so far).
    Diff,
    /// DIFF, then at least one txn.
    DiffWithTxns,
    Trunc,
    Snap,
}

/// A learner's synchronisation as its driver sees it on the link to its
/// leader, from the first sync packet to UPTODATE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncView {
    pub kind: SyncKind,
    /// Txns received before NEWLEADER.
    pub txns: u64,
    /// SNAP received, its end not yet.
    pub snapshot_open: bool,
    /// Chunks of the SNAP received so far.
    pub snapshot_chunks: u64,
    pub newleader_received: bool,
    pub newleader_acked: bool,
    pub uptodate: bool,
}

impl SyncView {
    /// The view after the first sync packet, if `packet` is one.
    pub fn opened_by(packet: Packet) -> Option<SyncView> {
        let kind = match packet {
            Packet::Diff => SyncKind::Diff,
            Packet::Trunc => SyncKind::Trunc,
            Packet::Snap => SyncKind::Snap,
            _ => return None,
        };
        Some(SyncView {
            kind,
            txns: 0,
            snapshot_open: kind == SyncKind::Snap,
            snapshot_chunks: 0,
            newleader_received: false,
            newleader_acked: false,
            uptodate: false,
        })
    }

    /// Follows one more packet from the leader.
    pub fn received(&mut self, packet: Packet) {
        match packet {
            Packet::Proposal | Packet::Inform if !self.newleader_received => {
                self.txns += 1;
                if self.kind == SyncKind::Diff {
                    self.kind = SyncKind::DiffWithTxns;
                }
            }
            Packet::SnapChunk => self.snapshot_chunks += 1,
            Packet::SnapEnd => self.snapshot_open = false,
            Packet::NewLeader => self.newleader_received = true,
            Packet::UpToDate => self.uptodate = true,
            _ => {}
        }
    }
}

/// Where the server must stand for a rule to fire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum During {
    /// Anywhere.
    Anything,
    /// A learner in a synchronisation of this kind, before UPTODATE.
    Sync(SyncKind),
    /// A learner that acknowledged NEWLEADER and has no UPTODATE yet.
    AwaitingUpToDate,
    /// A learner past UPTODATE (following the broadcast).
    Following,
    /// The established leader of its ensemble.
    Leading,
}

impl During {
    /// Whether a server whose learner view is `sync` (and that leads or
    /// not) stands here.
    pub fn holds(self, sync: Option<&SyncView>, leading: bool) -> bool {
        match self {
            During::Anything => true,
            During::Sync(kind) => sync.is_some_and(|s| s.kind == kind && !s.uptodate),
            During::AwaitingUpToDate => sync.is_some_and(|s| s.newleader_acked && !s.uptodate),
            During::Following => sync.is_some_and(|s| s.uptodate),
            During::Leading => leading,
        }
    }
}

/// The fault a rule injects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// The server where the rule fired crashes there (power cut: unsynced
    /// writes lost or torn; else killed) and restarts a while later.
    Crash { power_cut: bool },
    /// Its leader (the other end of its quorum link) crashes, at once: the
    /// link is reset first, so nothing more from the leader arrives.
    CrashLeader { power_cut: bool },
    /// This server and its leader crash at once; the leader stays down
    /// for `leader_down_ms` (this one restarts as after any crash).
    CrashWithLeader {
        power_cut: bool,
        leader_down_ms: u64,
    },
    /// Its quorum link (the packet's, or its synchronisation's) is reset:
    /// both ends see the connection drop, whatever was in flight is lost.
    ResetLink,
    /// Every server of its ensemble crashes, this one last.
    CrashAll { power_cut: bool },
    /// Its quorum links are reset and it is cut from every peer for `ms`.
    Isolate { ms: u64 },
    /// Isolated as by `Isolate { ms }`, and `crash_after_ms` later (its
    /// own writes in flight done by then) it crashes and restarts while
    /// still cut off: a server that alone logged a txn replays it into
    /// its tree (ZOOKEEPER-1549's premise).
    IsolateThenCrash {
        ms: u64,
        crash_after_ms: u64,
        power_cut: bool,
    },
    /// The server writes a whole snapshot of its tree as it stands, sealed
    /// and durable at once, beside the node's own schedule — as ZooKeeper
    /// snapshots right after loading its database, uncommitted txns the
    /// log replayed included (ZOOKEEPER-1549's dirty snapshot).
    Snapshot,
    /// The server is killed and every snapshot file of its data directory
    /// is removed while it is down (a lost or wiped snapshot directory,
    /// ZOOKEEPER-2325); its log and epoch files stay. It restarts as
    /// after any crash.
    LoseSnapshots,
    /// Nothing: the state was reached (counted), the run goes on.
    Observe,
}

/// The script's state in a run: the rules and how often each fired.
#[derive(Debug, Default)]
pub struct Scripted {
    rules: Vec<Rule>,
    fired: Vec<u32>,
    /// Firings by rule name (for the summary).
    pub counts: BTreeMap<&'static str, u64>,
    /// The faults stopped (the run winds down): nothing fires.
    pub stopped: bool,
}

impl Scripted {
    pub fn new(script: &Script) -> Scripted {
        Scripted {
            rules: script.rules.clone(),
            fired: vec![0; script.rules.len()],
            counts: BTreeMap::new(),
            stopped: false,
        }
    }

    /// The fault to inject at hook `when` on a server standing where
    /// `sync` and `leading` say, at scheduler step `step`, if a rule fires
    /// (counted as fired). The first matching rule wins.
    pub fn fire(
        &mut self,
        when: When,
        sync: Option<&SyncView>,
        leading: bool,
        step: u64,
    ) -> Option<(&'static str, Then)> {
        if self.stopped {
            return None;
        }
        let index = self.rules.iter().enumerate().position(|(i, rule)| {
            rule.when == when
                && self.fired[i] < rule.times_max
                && step >= rule.from_step
                && rule.during.holds(sync, leading)
        })?;
        self.fired[index] += 1;
        let rule = &self.rules[index];
        *self.counts.entry(rule.name).or_default() += 1;
        Some((rule.name, rule.then))
    }

    /// Whether any rule waits on this kind of hook (the driver skips the
    /// decoding a hook needs when none does).
    pub fn watches_packets(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.when, When::Received(_) | When::Sent(_)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rule_fires_only_where_it_says_and_only_as_often_as_it_may() {
        // The hook, the sync state and the count all gate a firing.
        let script = Script {
            rules: vec![Rule::new(
                "crash-before-current-epoch",
                When::EpochWrite {
                    kind: EpochKind::Current,
                    written: false,
                },
                During::Sync(SyncKind::Snap),
                Then::Crash { power_cut: true },
            )
            .from_step(10)],
        };
        let mut scripted = Scripted::new(&script);
        let hook = When::EpochWrite {
            kind: EpochKind::Current,
            written: false,
        };
        let mut snap = SyncView::opened_by(Packet::Snap).unwrap();
        let diff = SyncView::opened_by(Packet::Diff).unwrap();
        assert_eq!(
            scripted.fire(hook, Some(&snap), false, 5),
            None,
            "too early"
        );
        assert_eq!(scripted.fire(hook, Some(&diff), false, 20), None, "a DIFF");
        let other = When::EpochWrite {
            kind: EpochKind::Accepted,
            written: false,
        };
        assert_eq!(scripted.fire(other, Some(&snap), false, 20), None);
        snap.received(Packet::SnapEnd);
        snap.received(Packet::NewLeader);
        assert!(scripted.fire(hook, Some(&snap), false, 20).is_some());
        assert_eq!(scripted.fire(hook, Some(&snap), false, 30), None, "once");
        assert_eq!(scripted.counts["crash-before-current-epoch"], 1);
    }

    #[test]
    fn the_sync_view_follows_a_diff_and_its_txns() {
        // A DIFF with txns before NEWLEADER is DiffWithTxns; txns after
        // NEWLEADER do not count.
        let mut view = SyncView::opened_by(Packet::Diff).unwrap();
        view.received(Packet::NewLeader);
        view.received(Packet::Proposal);
        assert_eq!(view.kind, SyncKind::Diff);
        let mut view = SyncView::opened_by(Packet::Diff).unwrap();
        view.received(Packet::Proposal);
        view.received(Packet::Commit);
        assert_eq!((view.kind, view.txns), (SyncKind::DiffWithTxns, 1));
        assert!(During::Sync(SyncKind::DiffWithTxns).holds(Some(&view), false));
        view.received(Packet::UpToDate);
        assert!(During::Following.holds(Some(&view), false));
        assert!(!During::Sync(SyncKind::DiffWithTxns).holds(Some(&view), false));
    }
}
