//! The CI budget: a fixed set of seeds under every fault passes every
//! check, the runs really exercise what they claim to (faults of every
//! kind, restarts, expiries, snapshots, watches), and a seed replays bit for
//! bit.

mod common;

use common::{ci_options, failure};
use sim::{run, Options};

/// Seeds every `cargo test` runs (about a second each in a debug build).
const CI_SEEDS: u64 = 12;

#[test]
fn a_fixed_set_of_seeds_passes_every_check_and_exercises_every_fault() {
    // Every seed passes; together they injected every kind of fault,
    // restarted servers, expired sessions, wrote snapshots and fired watches.
    let mut faults = std::collections::BTreeMap::<&str, u64>::new();
    let (mut restarts, mut expired, mut snapshots, mut events, mut answered) = (0, 0, 0, 0, 0);
    for seed in 0..CI_SEEDS {
        let options = ci_options(seed);
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
        assert_eq!(
            outcome.summary.inconclusive, 0,
            "seed {seed}: checker out of budget"
        );
        for (fault, count) in &outcome.summary.faults {
            *faults.entry(fault).or_default() += count;
        }
        restarts += outcome.summary.servers.restarts;
        expired += outcome.summary.clients.expired_sessions_learned;
        snapshots += outcome.summary.servers.snapshots;
        events += outcome.summary.clients.watch_events;
        answered += outcome.summary.ops_completed;
    }
    for fault in sim::Fault::ALL {
        assert!(
            faults.get(fault.name()).copied().unwrap_or(0) > 0,
            "no {} fault in {faults:?}",
            fault.name()
        );
    }
    assert!(restarts >= CI_SEEDS, "{restarts} restarts");
    assert!(expired > 0 && snapshots > 0 && events > 0);
    assert!(answered > CI_SEEDS * 300, "{answered} answered ops");
}

#[test]
fn several_standalone_servers_run_side_by_side() {
    // Three independent servers with their own clients and histories.
    for seed in 100..102 {
        let options = Options {
            databases: 3,
            clients: 3,
            steps: 6_000,
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
    }
}

#[test]
fn without_faults_a_busy_run_passes() {
    // The workload alone (no faults) must pass: a violation here is a bug
    // in the happy path.
    for seed in 200..202 {
        let options = Options {
            faults: sim::Faults::none(),
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
        assert!(outcome.summary.faults.is_empty());
    }
}

#[test]
fn a_seed_replays_bit_for_bit() {
    // Two runs of one seed take the same steps and print the same trace;
    // another seed does not.
    let options = Options {
        trace: true,
        ..ci_options(7)
    };
    let (a, b) = (run(&options), run(&options));
    assert_eq!(a.fingerprint, b.fingerprint);
    assert_eq!(a.steps, b.steps);
    assert_eq!(a.trace, b.trace);
    assert!(a.trace.len() as u64 > a.steps, "every event is traced");
    let other = run(&ci_options(8));
    assert_ne!(a.fingerprint, other.fingerprint);
}

#[test]
fn the_zxid_counter_rolls_over_to_a_new_epoch_again_and_again_under_faults() {
    // ZOOKEEPER-1277 made frequent: with the zxid counter capped at 40, a
    // leader steps down for a new epoch every 40 txns; under every fault,
    // the rollovers happen again and again and every check passes.
    let mut rollovers = 0;
    for seed in 300..302 {
        let options = Options {
            servers: 3,
            steps: 6_000,
            zxid_counter_max: Some(40),
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
        rollovers += outcome.summary.servers.zxid_rollovers;
    }
    assert!(rollovers >= 4, "{rollovers} rollovers");
}
