//! ZooKeeper's replication bugs (ZOOKEEPER-NOTES.md, "ZooKeeper
//! replication bugs to keep as scenarios") as simulator scenarios: a
//! three-server fk-sim ensemble under the random workload, with a fault
//! scripted to land exactly in the state each bug needed
//! ([`sim::script`]), and every checker on. Each scenario also asserts
//! that its trigger fired — the scripted state was reached — so it cannot
//! pass vacuously; where a `replication::Mutation` reintroduces the bug,
//! the mutated build fails the same scenario.
//!
//! Replay one with `--trace` by building its options in a test; the
//! command `failure` prints gives the rest of the run's parameters.

mod common;

use common::{ci_options, failure};
use node::EpochKind;
use sim::script::{During, Packet, Rule, Script, SyncKind, Then, When};
use sim::{run, Bug, Faults, Mix, Options, Outcome, Violation};

/// Scheduler steps per scenario run.
const STEPS: u64 = 6_000;

/// A scenario's options: a 3-server ensemble, `rules` scripted, the
/// random faults `faults` beside them.
fn scenario(seed: u64, faults: &str, rules: Vec<Rule>) -> Options {
    Options {
        servers: 3,
        steps: STEPS,
        faults: faults.parse::<Faults>().unwrap(),
        script: Script { rules },
        ..ci_options(seed)
    }
}

/// Runs `options`; asserts every checker passed and every rule named in
/// `fired` fired at least once. Returns the outcome for more assertions.
fn passes_and_fires(options: &Options, fired: &[&str]) -> Outcome {
    let outcome = run(options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, options));
    for name in fired {
        assert!(
            outcome.summary.scripted.get(name).copied().unwrap_or(0) > 0,
            "seed {}: the scripted trigger {name} never fired (fired: {:?})",
            options.seed,
            outcome.summary.scripted
        );
    }
    outcome
}

/// A follower receiving a proposal is cut from its peers for `ms`: it
/// falls behind and must be synchronised again when it comes back (by
/// SNAP when the leader's window is small).
fn isolate_a_follower(ms: u64, times: u32) -> Rule {
    Rule::new(
        "isolate-a-follower",
        When::Received(Packet::Proposal),
        During::Following,
        Then::Isolate { ms },
    )
    .times(times)
    .from_step(1_000)
}

/// Options in which learners that fell behind get SNAPs.
fn snap_scenario(seed: u64, trigger: Rule) -> Options {
    Options {
        history_txns_max: Some(20),
        ..scenario(
            seed,
            "reset,silent",
            vec![trigger, isolate_a_follower(3_000, 3)],
        )
    }
}

// ----- ZOOKEEPER-1154 ------------------------------------------------------------

/// The established leader is cut from its peers just as it sends a
/// proposal: the txn reaches its own log only. The others elect a new
/// leader; the old one comes back holding a txn no quorum has.
fn lone_uncommitted_txn(seed: u64) -> Options {
    let rule = Rule::new(
        "isolate-the-leader-as-it-proposes",
        When::Sent(Packet::Proposal),
        During::Leading,
        Then::Isolate { ms: 4_000 },
    )
    .from_step(1_500);
    Options {
        // Every txn stays in the window: the old leader is within it.
        history_txns_max: Some(10_000),
        ..scenario(seed, "reset,silent", vec![rule])
    }
}

#[test]
fn zookeeper_1154_a_server_alone_with_an_uncommitted_txn_is_truncated() {
    // ZOOKEEPER-1154: the old leader rejoins with a txn it alone logged;
    // it must be TRUNCated, not DIFFed on top. The trigger fired, the old
    // leader's log was truncated, and every check passes.
    for seed in 0..2 {
        let outcome = passes_and_fires(
            &lone_uncommitted_txn(seed),
            &["isolate-the-leader-as-it-proposes"],
        );
        assert!(
            outcome.summary.servers.truncations > 0,
            "seed {seed}: no TRUNC"
        );
    }
}

#[test]
fn zookeeper_1154_with_diff_instead_of_trunc_fails_the_scenario() {
    // The same scenario with Mutation::DiffWithoutTrunc: the old leader
    // keeps its lone txns, applies them, and then the new epoch's first
    // txn right after them, where the others applied it after the last
    // committed txn — the cross-server predecessor check catches it in
    // each of the first 8 seeds (before that check, only seeds 2 and 6
    // did, as a read no order explains: the lone txns often change
    // nothing a digest sees).
    for seed in 0..2 {
        let options = Options {
            bug: Some(Bug::DiffWithoutTrunc),
            ..lone_uncommitted_txn(seed)
        };
        let outcome = run(&options);
        let found = outcome.found.map(|f| f.violation);
        assert!(
            matches!(found, Some(Violation::ServersDisagree { .. })),
            "seed {seed}: {found:?}"
        );
    }
}

// ----- SNAP and the persistence orders after it --------------------------------

#[test]
fn zookeeper_1653_crash_after_the_snapshot_before_current_epoch() {
    // ZOOKEEPER-1653: a learner synchronised by SNAP loses power just
    // before it writes currentEpoch; it must start again (no
    // acceptedEpoch/currentEpoch mismatch that stops it) and catch up.
    let trigger = Rule::new(
        "power-cut-before-current-epoch-after-snap",
        When::EpochWrite {
            kind: EpochKind::Current,
            written: false,
        },
        During::Sync(SyncKind::Snap),
        Then::Crash { power_cut: true },
    );
    for seed in 0..2 {
        passes_and_fires(
            &snap_scenario(seed, trigger.clone()),
            &["power-cut-before-current-epoch-after-snap"],
        );
    }
}

#[test]
fn zookeeper_2872_power_cut_right_after_the_snapshot_from_snap_is_sealed() {
    // ZOOKEEPER-2872: the snapshot a learner writes after SNAP must be
    // durable: the power fails just after its seal, before the node hears.
    let trigger = Rule::new(
        "power-cut-after-sealing-the-snap",
        When::SnapshotSeal { sealed: true },
        During::Sync(SyncKind::Snap),
        Then::Crash { power_cut: true },
    );
    for seed in 0..2 {
        passes_and_fires(
            &snap_scenario(seed, trigger.clone()),
            &["power-cut-after-sealing-the-snap"],
        );
    }
}

#[test]
fn zookeeper_3104_power_cut_after_current_epoch_following_a_snap() {
    // ZOOKEEPER-3104: NEWLEADER was acknowledged before the snapshot was
    // taken. Here the power fails just after currentEpoch is written (the
    // ack about to leave): the snapshot and the txns after it must all be
    // on disk already.
    let trigger = Rule::new(
        "power-cut-after-current-epoch-after-snap",
        When::EpochWrite {
            kind: EpochKind::Current,
            written: true,
        },
        During::Sync(SyncKind::Snap),
        Then::Crash { power_cut: true },
    );
    for seed in 0..2 {
        passes_and_fires(
            &snap_scenario(seed, trigger.clone()),
            &["power-cut-after-current-epoch-after-snap"],
        );
    }
}

#[test]
fn zookeeper_3642_the_leader_dies_after_snap_before_newleader() {
    // ZOOKEEPER-3642: the leader dies after the whole SNAP reached the
    // learner and before NEWLEADER does (the link is reset as NEWLEADER
    // arrives, before the learner sees it). The next leader must not
    // build on a snapshot the learner held only in memory.
    let trigger = Rule::new(
        "leader-dies-between-snap-and-newleader",
        When::Received(Packet::NewLeader),
        During::Sync(SyncKind::Snap),
        Then::CrashLeader { power_cut: true },
    );
    for seed in 0..2 {
        passes_and_fires(
            &snap_scenario(seed, trigger.clone()),
            &["leader-dies-between-snap-and-newleader"],
        );
    }
}

// ----- DIFF and currentEpoch ----------------------------------------------------

/// A follower falls a little behind (the window keeps every txn) and is
/// synchronised by a DIFF with txns; `trigger` lands in that sync.
fn diff_scenario(seed: u64, trigger: Rule) -> Options {
    Options {
        history_txns_max: Some(10_000),
        ..scenario(
            seed,
            "reset,silent",
            vec![trigger, isolate_a_follower(1_500, 3)],
        )
    }
}

/// ZOOKEEPER-4643 family: the whole ensemble loses power just after a
/// learner synchronised by a DIFF with txns wrote currentEpoch.
fn everyone_down_after_current_epoch(seed: u64) -> Options {
    let trigger = Rule::new(
        "all-power-cut-after-current-epoch-after-diff",
        When::EpochWrite {
            kind: EpochKind::Current,
            written: true,
        },
        During::Sync(SyncKind::DiffWithTxns),
        Then::CrashAll { power_cut: true },
    );
    diff_scenario(seed, trigger)
}

#[test]
fn zookeeper_3911_4643_4646_4685_4785_current_epoch_only_after_the_diff_is_durable() {
    // ZOOKEEPER-3911, 4643, 4646, 4685, 4785: a learner wrote currentEpoch
    // (and acknowledged NEWLEADER) before its DIFF's txns were durable;
    // after a crash it won the election with the new epoch and a shorter
    // log, and committed txns were lost. Here every server loses power
    // right after such a learner writes currentEpoch: no acknowledged
    // write may be lost.
    for seed in 0..2 {
        passes_and_fires(
            &everyone_down_after_current_epoch(seed),
            &["all-power-cut-after-current-epoch-after-diff"],
        );
    }
}

#[test]
fn zookeeper_4785_the_learner_alone_loses_power_around_current_epoch() {
    // ZOOKEEPER-4785's learner: power fails just before, then (another
    // sync) just after, currentEpoch is written in a DIFF sync.
    let before = Rule::new(
        "power-cut-before-current-epoch-after-diff",
        When::EpochWrite {
            kind: EpochKind::Current,
            written: false,
        },
        During::Sync(SyncKind::DiffWithTxns),
        Then::Crash { power_cut: true },
    );
    let after = Rule::new(
        "power-cut-after-current-epoch-after-diff",
        When::EpochWrite {
            kind: EpochKind::Current,
            written: true,
        },
        During::Sync(SyncKind::DiffWithTxns),
        Then::Crash { power_cut: true },
    );
    for seed in 0..2 {
        let mut options = diff_scenario(seed, before.clone());
        options.script.rules.push(after.clone());
        passes_and_fires(
            &options,
            &[
                "power-cut-before-current-epoch-after-diff",
                "power-cut-after-current-epoch-after-diff",
            ],
        );
    }
}

/// ZOOKEEPER-4643 as it happened: follower A is cut off and falls behind
/// (for 4 s); a couple of seconds later follower B is cut off too, so the
/// leader L steps down. When A
/// comes back, L leads a new epoch with A alone, synchronising it by a
/// DIFF with the txns L and B committed. A and L lose power right after
/// A writes currentEpoch, and L stays down; B comes back, and A and B
/// elect a leader. A's epoch is the newer: its log must hold the DIFF.
fn stale_learner_with_the_newer_epoch(seed: u64) -> Options {
    let cut_a = Rule::new(
        "cut-off-follower-a",
        When::Received(Packet::Proposal),
        During::Following,
        Then::Isolate { ms: 4_000 },
    )
    .from_step(1_000);
    let cut_b = Rule::new(
        "cut-off-follower-b",
        When::Received(Packet::Proposal),
        During::Following,
        Then::Isolate { ms: 9_000 },
    )
    .from_step(2_200);
    let trigger = Rule::new(
        "a-and-its-leader-lose-power-after-current-epoch",
        When::EpochWrite {
            kind: EpochKind::Current,
            written: true,
        },
        During::Sync(SyncKind::DiffWithTxns),
        Then::CrashWithLeader {
            power_cut: true,
            leader_down_ms: 12_000,
        },
    );
    Options {
        history_txns_max: Some(10_000),
        steps: 10_000,
        ..scenario(seed, "silent", vec![cut_a, cut_b, trigger])
    }
}

#[test]
fn zookeeper_4643_a_stale_learner_with_the_newer_epoch_loses_nothing() {
    // ZOOKEEPER-4643/4646/4785's schedule (see the options' doc): every
    // rule fired, and no acknowledged write was lost.
    for seed in 0..2 {
        passes_and_fires(
            &stale_learner_with_the_newer_epoch(seed),
            &[
                "cut-off-follower-a",
                "cut-off-follower-b",
                "a-and-its-leader-lose-power-after-current-epoch",
            ],
        );
    }
}

#[test]
fn zookeeper_2418_2846_a_diff_with_txns_brings_the_learner_to_the_leader() {
    // ZOOKEEPER-2418 / 2846: a DIFF skipped txns. Learners synchronised by
    // DIFFs carrying txns must end equal to the leader (the cross-server
    // digest and txn checks); the trigger notes NEWLEADER arriving after a
    // DIFF with txns.
    let trigger = Rule::new(
        "newleader-after-a-diff-with-txns",
        When::Received(Packet::NewLeader),
        During::Sync(SyncKind::DiffWithTxns),
        Then::Observe,
    )
    .times(5);
    for seed in 0..2 {
        passes_and_fires(
            &diff_scenario(seed, trigger.clone()),
            &["newleader-after-a-diff-with-txns"],
        );
    }
}

#[test]
fn zookeeper_4394_a_commit_between_the_newleader_ack_and_uptodate() {
    // ZOOKEEPER-4394: a COMMIT for an outstanding proposal arrives after
    // the learner acknowledged NEWLEADER and before UPTODATE. It must be
    // applied in order with the rest; the trigger proves one arrived in
    // one of the first four seeds.
    let trigger = Rule::new(
        "commit-before-uptodate",
        When::Received(Packet::Commit),
        During::AwaitingUpToDate,
        Then::Observe,
    )
    .times(5);
    let found = (0..4).any(|seed| {
        let options = diff_scenario(seed, trigger.clone());
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
        outcome
            .summary
            .scripted
            .contains_key("commit-before-uptodate")
    });
    assert!(
        found,
        "no COMMIT arrived between NEWLEADER's ack and UPTODATE"
    );
}

#[test]
fn zookeeper_2355_a_follower_dies_mid_proposal() {
    // ZOOKEEPER-2355: a follower failed while a proposal was in flight and
    // an ephemeral was never deleted. Here followers are killed (and once
    // power-cut) as proposals reach them; the final checks hold every
    // ephemeral to a live session.
    let kill = Rule::new(
        "follower-killed-as-a-proposal-arrives",
        When::Received(Packet::Proposal),
        During::Following,
        Then::Crash { power_cut: false },
    )
    .times(3)
    .from_step(800);
    let cut = Rule::new(
        "follower-power-cut-as-a-proposal-arrives",
        When::Received(Packet::Proposal),
        During::Following,
        Then::Crash { power_cut: true },
    )
    .from_step(3_000);
    for seed in 0..2 {
        passes_and_fires(
            &scenario(seed, "silent,reset", vec![kill.clone(), cut.clone()]),
            &[
                "follower-killed-as-a-proposal-arrives",
                "follower-power-cut-as-a-proposal-arrives",
            ],
        );
    }
}

#[test]
fn zookeeper_4643_with_current_epoch_before_durable_fails_the_scenario() {
    // The same schedule with Mutation::CurrentEpochBeforeDurable: A writes
    // currentEpoch and acknowledges NEWLEADER while its DIFF (a couple of
    // seconds of txns) is still being logged; the leader counts A for the
    // new epoch, and then the power cut takes the DIFF from A's disk: a
    // client saw a zxid no quorum holds durably. 5 of the first 6 seeds
    // catch it (all but 3); the same seeds pass without the mutation.
    for seed in 0..2 {
        let options = Options {
            bug: Some(Bug::CurrentEpochBeforeDurable),
            ..stale_learner_with_the_newer_epoch(seed)
        };
        let found = run(&options).found.map(|f| f.violation);
        assert!(
            matches!(
                found,
                Some(
                    Violation::SeenNotOnQuorum { .. }
                        | Violation::AcknowledgedWriteLost { .. }
                        | Violation::NotLinearizable { .. }
                )
            ),
            "seed {seed}: {found:?}"
        );
    }
}

// ----- ZOOKEEPER-1549 ------------------------------------------------------------

/// ZOOKEEPER-1154's schedule, and then some: the isolated old leader is
/// killed a second after it logged its lone txn, restarts still cut off
/// (its log replays the uncommitted txn into its tree), and at once
/// snapshots that tree whole, as ZooKeeper did after loading its
/// database. It rejoins to a leader that never had the txn.
fn dirty_snapshot(seed: u64) -> Options {
    let isolate = Rule::new(
        "isolate-the-leader-as-it-proposes-then-kill-it",
        When::Sent(Packet::Proposal),
        During::Leading,
        Then::IsolateThenCrash {
            ms: 6_000,
            crash_after_ms: 1_000,
            power_cut: false,
        },
    )
    .from_step(1_500);
    // Only the scripted crash restarts a server after the first boots.
    let snapshot = Rule::new(
        "snapshot-the-replayed-uncommitted-txn",
        When::Booted,
        During::Anything,
        Then::Snapshot,
    )
    .from_step(1_500);
    Options {
        history_txns_max: Some(10_000),
        ..scenario(seed, "reset,silent", vec![isolate, snapshot])
    }
}

#[test]
fn zookeeper_1549_a_dirty_snapshot_does_not_survive_its_trunc() {
    // ZOOKEEPER-1549: an uncommitted txn replayed into memory was
    // snapshotted, and TRUNC cut only the log: the snapshot brought the
    // txn back. Here both rules fired, the old leader was TRUNCated, the
    // TRUNC removed the snapshot above its cut, and every check passes.
    for seed in 0..2 {
        let outcome = passes_and_fires(
            &dirty_snapshot(seed),
            &[
                "isolate-the-leader-as-it-proposes-then-kill-it",
                "snapshot-the-replayed-uncommitted-txn",
            ],
        );
        let servers = outcome.summary.servers;
        assert!(servers.truncations > 0, "seed {seed}: no TRUNC");
        assert!(
            servers.snapshots_truncated > 0,
            "seed {seed}: the dirty snapshot was not above the TRUNC's cut"
        );
    }
}

#[test]
fn zookeeper_1549_with_trunc_keeping_snapshots_fails_the_scenario() {
    // The same schedule with Bug::TruncKeepsSnapshots (TRUNC cuts the log
    // and leaves the snapshots, as ZooKeeper did): the old leader reloads
    // the dirty snapshot after its TRUNC and holds a txn no other server
    // has. The reload check catches it in each of the first 8 seeds;
    // without it the end-of-run checks caught only seed 2 (the lone txn
    // often changes nothing a digest sees).
    for seed in 0..2 {
        let options = Options {
            bug: Some(Bug::TruncKeepsSnapshots),
            ..dirty_snapshot(seed)
        };
        let found = run(&options).found.map(|f| f.violation);
        assert!(
            matches!(found, Some(Violation::SnapshotSurvivedTruncation { .. })),
            "seed {seed}: {found:?}"
        );
    }
}

// ----- ZOOKEEPER-2325 ------------------------------------------------------------

/// A follower is killed as a proposal reaches it and loses every snapshot
/// file while it is down; its log and epoch files stay.
fn snapshots_lost(seed: u64) -> Options {
    let lose = Rule::new(
        "follower-loses-its-snapshots",
        When::Received(Packet::Proposal),
        During::Following,
        Then::LoseSnapshots,
    )
    .from_step(2_000);
    Options {
        history_txns_max: Some(20),
        ..scenario(seed, "reset,silent", vec![lose])
    }
}

#[test]
fn zookeeper_2325_a_log_without_snapshots_is_refused_not_replayed_onto_nothing() {
    // ZOOKEEPER-2325: with its snapshots gone and its log left, a server
    // started empty and served that. wal's recovery refuses such a disk
    // (WalError::LogWithoutSnapshot, wal/tests/recovery.rs): the follower
    // refuses to start (counted, not a violation), its operator moves the
    // orphaned log aside, and it comes back empty and is synchronised by
    // its leader; every check passes and the ensemble's servers agree.
    // The refusal is asserted: a driver that started the follower on that
    // disk anyway fails here (before this scenario the driver reported
    // wal's refusal itself as a RecoveryFailed violation).
    for seed in 0..2 {
        let outcome = passes_and_fires(&snapshots_lost(seed), &["follower-loses-its-snapshots"]);
        let servers = outcome.summary.servers;
        assert!(servers.starts_refused > 0, "seed {seed}: no refused start");
        assert!(
            servers.restarts > servers.starts_refused,
            "seed {seed}: the follower never started again"
        );
    }
}

// ----- ZOOKEEPER-3127 ------------------------------------------------------------

/// The many-ephemerals mix (mostly multis of 5 to 20 sequential creates)
/// on `servers` servers; a server is killed just after it seals a
/// snapshot, three times, then once loses power there. Its snapshot was
/// walked while txns went on being applied: multis applied between its
/// chunks are partly in it, and the log after its zxid replays them whole.
fn multis_in_fuzzy_snapshots(seed: u64, servers: usize) -> Options {
    let kill = Rule::new(
        "killed-after-a-fuzzy-snapshot-is-sealed",
        When::SnapshotSeal { sealed: true },
        During::Anything,
        Then::Crash { power_cut: false },
    )
    .times(3)
    .from_step(3_000);
    let cut = Rule::new(
        "power-cut-after-a-fuzzy-snapshot-is-sealed",
        When::SnapshotSeal { sealed: true },
        During::Anything,
        Then::Crash { power_cut: true },
    )
    .from_step(3_000);
    Options {
        servers,
        mix: Mix::Multis,
        steps: 9_000,
        ..scenario(seed, "reset,silent", vec![kill, cut])
    }
}

#[test]
fn zookeeper_3127_multis_caught_in_a_fuzzy_snapshot_replay_whole() {
    // ZOOKEEPER-3127: a fuzzy snapshot held part of a multi, and replaying
    // the multi over it failed half-way. Here servers restart from fuzzy
    // snapshots sealed under a multi-heavy load: both rules fired, the
    // restarts replayed multis from the log after those snapshots, and
    // every check passes (the servers' digests and txn orders against
    // each other's). Seed 0 replays 32 multis, seed 1 one: the walk of a
    // few chunks spans few txns.
    for (seed, servers) in [(0, 3), (1, 3)] {
        let outcome = passes_and_fires(
            &multis_in_fuzzy_snapshots(seed, servers),
            &[
                "killed-after-a-fuzzy-snapshot-is-sealed",
                "power-cut-after-a-fuzzy-snapshot-is-sealed",
            ],
        );
        assert!(
            outcome.summary.servers.replayed_multis > 0,
            "seed {seed}, {servers} servers: no multi replayed after a snapshot"
        );
    }
}

#[test]
fn zookeeper_3127_with_the_log_after_the_snapshot_skipped_fails_the_scenario() {
    // The same schedule with Bug::SkipLogReplay: a restarted server keeps
    // only what its fuzzy snapshot caught of the multis after its zxid;
    // the checks catch it in an ensemble and on a standalone server
    // (whose recovery is checked against what its clients were told).
    for (seed, servers) in [(0, 3), (0, 1)] {
        let options = Options {
            bug: Some(Bug::SkipLogReplay),
            ..multis_in_fuzzy_snapshots(seed, servers)
        };
        let found = run(&options).found.map(|f| f.violation);
        assert!(found.is_some(), "seed {seed}, {servers} servers: {found:?}");
    }
}

#[test]
fn a_learner_whose_reload_lands_below_a_trunc_joins_again() {
    // Found by the ZOOKEEPER-3127 schedule with slow disks, seed 2: s3
    // writes the SNAP of an epoch it never joins (0x200000041) and is
    // killed just after the seal; its log still ends at 0x1000000a8. The
    // next leader (at 0x200000040) TRUNCs it to 0x200000040: the cut
    // removes the snapshot above it (rightly), the log has nothing up to
    // the cut, and s3 reloads at 0x1000000a8 yet goes on as if at
    // 0x200000040 — its next txn follows the wrong predecessor
    // (ServersDisagree). ZooKeeper's learner exits when its truncateLog
    // reports failure (Learner.syncWithLeader); ferrokeeper's now ends
    // that sync when its reload lands below the cut and joins again from
    // where it is, to be DIFFed or sent a SNAP (`Node::on_reloaded`). This
    // failed before that fix.
    let options = Options {
        faults: "reset,silent,slow-disk".parse::<Faults>().unwrap(),
        ..multis_in_fuzzy_snapshots(2, 3)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}
