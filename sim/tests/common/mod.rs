//! Shared by the simulator's tests: the options they run with and how they
//! report a failing seed.

#![allow(dead_code)]

use sim::{Options, Outcome};

/// Scheduler events per seed in the CI budget (a few simulated seconds of
/// five busy clients, a handful of faults).
pub const CI_STEPS: u64 = 4_000;

/// The options of a CI run of `seed`: every fault, every check, the
/// standard mix.
pub fn ci_options(seed: u64) -> Options {
    Options {
        steps: CI_STEPS,
        ..Options::new(seed)
    }
}

/// The line to print for a failing seed: what broke and how to replay it.
pub fn failure(outcome: &Outcome, options: &Options) -> String {
    let found = outcome
        .found
        .as_ref()
        .map_or("nothing".to_string(), ToString::to_string);
    let mut replay = format!(
        "fk-sim --seed {} --servers {} --clients {} --steps {} --faults {}",
        options.seed, options.servers, options.clients, options.steps, options.faults
    );
    if options.observers > 0 {
        replay.push_str(&format!(" --observers {}", options.observers));
    }
    if options.databases > 1 {
        replay.push_str(&format!(" --databases {}", options.databases));
    }
    if options.mix != sim::Mix::Standard {
        replay.push_str(&format!(" --mix {}", options.mix.name()));
    }
    if let Some(max) = options.zxid_counter_max {
        replay.push_str(&format!(" --zxid-counter-max {max}"));
    }
    if let Some(max) = options.history_txns_max {
        replay.push_str(&format!(" --history-txns-max {max}"));
    }
    if !options.script.rules.is_empty() {
        replay.push_str(" (and the test's scripted faults)");
    }
    if let Some(bug) = options.bug {
        replay.push_str(&format!(" --bug {}", bug.name()));
    }
    format!("seed {}: {found}\n  replay: {replay}", options.seed)
}
