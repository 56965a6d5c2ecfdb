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
