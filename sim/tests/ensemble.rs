//! Ensembles in the CI budget: a fixed set of seeds of 3- and 5-server
//! ensembles (observers in some) under every fault passes every check —
//! the cross-server checks after each step and the history, sequentially
//! consistent against the ensemble's log, at the end — and the runs really
//! exercise elections, epoch files, restarts and session moves.

mod common;

use common::{ci_options, failure};
use sim::{run, Faults, Options, Outcome};

/// Scheduler events per ensemble seed: an ensemble spends more events per
/// simulated second than one server (peers talk), so a few more.
pub const ENSEMBLE_STEPS: u64 = 6_000;

fn ensemble(seed: u64, servers: usize, observers: usize) -> Options {
    Options {
        servers,
        observers,
        steps: ENSEMBLE_STEPS,
        ..ci_options(seed)
    }
}

fn passes(options: &Options) -> Outcome {
    let outcome = run(options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, options));
    assert_eq!(
        outcome.summary.inconclusive, 0,
        "seed {}: checker out of budget",
        options.seed
    );
    outcome
}

#[test]
fn three_server_ensembles_pass_every_check_under_every_fault() {
    // Every seed passes; together they crashed and restarted servers,
    // wrote epoch files (elections happened), and answered many ops.
    let (mut restarts, mut epochs, mut answered, mut checked) = (0, 0, 0, 0);
    let seeds = 0..3;
    for seed in seeds.clone() {
        let outcome = passes(&ensemble(seed, 3, 0));
        restarts += outcome.summary.servers.restarts;
        epochs += outcome.summary.servers.epoch_writes;
        answered += outcome.summary.ops_completed;
        checked += u64::from(outcome.summary.no_whole_log == 0);
    }
    let n = seeds.end - seeds.start;
    assert!(restarts >= n, "{restarts} restarts");
    assert!(epochs >= 2 * 3 * n, "{epochs} epoch writes");
    assert!(answered > n * 200, "{answered} answered ops");
    assert!(checked >= n / 2, "only {checked} histories checked");
}

#[test]
fn five_server_ensembles_with_and_without_observers_pass_every_check() {
    // Five voters, and three voters with two observers.
    passes(&ensemble(10, 5, 0));
    passes(&ensemble(11, 3, 2));
}

#[test]
fn an_ensemble_without_faults_elects_a_leader_and_checks_its_whole_history() {
    // No faults: one election, every server in it, and the history is
    // checked against a whole log.
    for seed in 20..22 {
        let options = Options {
            faults: Faults::none(),
            ..ensemble(seed, 3, 0)
        };
        let outcome = passes(&options);
        assert_eq!(outcome.summary.no_whole_log, 0);
        assert!(outcome.summary.servers.epoch_writes >= 6);
        assert!(outcome.summary.ops_completed > 300);
    }
}

#[test]
fn an_ensemble_seed_replays_bit_for_bit() {
    // Two runs of one ensemble seed take the same steps and print the same trace.
    let options = Options {
        trace: true,
        ..ensemble(7, 3, 1)
    };
    let (a, b) = (run(&options), run(&options));
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.trace, b.trace);
}

/// A big tree (`Mix::BigTree`, a SNAP of many chunks), a small window
/// (learners that fell behind get SNAPs), followers cut off now and then
/// so that they fall behind, and faults scripted to land while a SNAP
/// streams to a learner: its link reset (twice), its leader killed, the
/// learner itself losing power.
fn snapshots_interrupted(seed: u64) -> Options {
    use sim::script::{During, Packet, Rule, Script, SyncKind, Then, When};
    let mid_snap = |name, then| {
        Rule::new(
            name,
            When::Received(Packet::SnapChunk),
            During::Sync(SyncKind::Snap),
            then,
        )
        .from_step(2_500)
    };
    let rules = vec![
        mid_snap("reset-the-link-mid-snap", Then::ResetLink).times(2),
        mid_snap(
            "kill-the-leader-mid-snap",
            Then::CrashLeader { power_cut: false },
        ),
        mid_snap(
            "power-cut-the-learner-mid-snap",
            Then::Crash { power_cut: true },
        ),
    ];
    // One follower at a time, a while apart, so a quorum stays up.
    let cut_off = (0..4).map(|i| {
        Rule::new(
            "cut-off-a-follower",
            When::Received(Packet::Proposal),
            During::Following,
            Then::Isolate { ms: 2_000 },
        )
        .from_step(1_500 + i * 1_200)
    });
    let rules = rules.into_iter().chain(cut_off).collect();
    Options {
        servers: 3,
        steps: 6_500,
        mix: sim::Mix::BigTree,
        history_txns_max: Some(20),
        faults: "reset,silent,clock".parse::<Faults>().unwrap(),
        script: Script { rules },
        ..ci_options(seed)
    }
}

#[test]
fn snaps_of_many_chunks_interrupted_mid_stream_pass_every_check() {
    // SNAPs of a big tree span several chunks, some are cut mid-stream
    // (the link reset, the leader killed, the learner power-cut: every
    // scripted fault fired), the summary counts them, and every check
    // passes. Today seeds 0 and 1 each cut 4 SNAPs; their largest whole
    // SNAP is 5 chunks (`fk-sim --mix big-tree --history-txns-max 20`
    // with more steps grows larger ones).
    let (mut interrupted, mut chunks_max) = (0, 0);
    let mut fired = std::collections::BTreeMap::<&str, u64>::new();
    for seed in 0..2 {
        let outcome = passes(&snapshots_interrupted(seed));
        interrupted += outcome.summary.servers.snapshots_interrupted;
        chunks_max = chunks_max.max(outcome.summary.servers.snapshot_stream_chunks_max);
        for (name, count) in &outcome.summary.scripted {
            *fired.entry(name).or_default() += count;
        }
    }
    assert!(
        chunks_max >= 5,
        "the largest whole SNAP had {chunks_max} chunks"
    );
    assert!(interrupted >= 3, "{interrupted} SNAPs interrupted");
    for name in [
        "reset-the-link-mid-snap",
        "kill-the-leader-mid-snap",
        "power-cut-the-learner-mid-snap",
    ] {
        assert!(fired.contains_key(name), "{name} never fired: {fired:?}");
    }
}
