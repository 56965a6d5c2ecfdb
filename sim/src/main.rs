//! `fk-sim`: runs the deterministic simulator.
//!
//! ```text
//! fk-sim --seed 42 [--trace]          one seed, bit for bit; --trace prints every event
//! fk-sim --seeds 500 [--first-seed F] many seeds; stops at the first violation
//!        [--servers N] [--observers K] [--databases D] [--clients C] [--steps M]
//!        [--faults crash,fsync,...|all|none]
//! fk-sim --servers 3 --seeds 10000    an ensemble soak: 3 voters, elections, ZAB
//! fk-sim check-history FILE.json      judge a history recorded by real clients
//! ```
//!
//! Exit status: 0 when every seed passed, 1 when one broke a property (its
//! seed and the command that replays it are printed), 2 on bad arguments.
//! `check-history` (see `sim::history_file` for the file format): 0 when the
//! history passes, 1 with the violation printed, 2 when the file cannot be
//! read as a history.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use sim::{Bug, Faults, Mix, Options, Outcome};

#[derive(Debug, Parser)]
#[command(
    name = "fk-sim",
    about = "ferrokeeper's deterministic simulator",
    args_conflicts_with_subcommands = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Run this one seed.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// Run this many seeds, from --first-seed on.
    #[arg(long)]
    seeds: Option<u64>,
    #[arg(long, default_value_t = 0)]
    first_seed: u64,
    /// Voting servers of the database: 1 is a standalone server, more an
    /// ensemble (3, 5...).
    #[arg(long, default_value_t = 1)]
    servers: usize,
    /// Observers beside the voters (an ensemble only).
    #[arg(long, default_value_t = 0)]
    observers: usize,
    /// Independent databases side by side, each with its servers and clients.
    #[arg(long, default_value_t = 1)]
    databases: usize,
    /// Clients per database.
    #[arg(long, default_value_t = 5)]
    clients: usize,
    /// Scheduler events before the run winds down.
    #[arg(long, default_value_t = 20_000)]
    steps: u64,
    /// Faults to inject: a comma-separated list of crash, fsync, disk-full,
    /// slow-disk, clock, reset, silent, partition; or all, or none; and
    /// bit-flip (not in all: `all,bit-flip`).
    #[arg(long, default_value = "all")]
    faults: Faults,
    /// What the clients mostly do: standard, many-ephemerals, big-tree,
    /// or multis.
    #[arg(long, default_value = "standard")]
    mix: Mix,
    /// Print the event trace of the run (with --seed).
    #[arg(long)]
    trace: bool,
    /// Reintroduce a known bug (ack-before-durable, no-force-sync,
    /// reorder-sends, skip-log-replay, drop-watch-events; ensembles:
    /// current-epoch-before-durable, diff-without-trunc,
    /// commit-out-of-order, vote-as-if-lost-records-held,
    /// trunc-keeps-snapshots) to see the
    /// checkers catch it.
    #[arg(long)]
    bug: Option<Bug>,
    /// Turn off the driver's "no reply before durable" assertion, leaving
    /// lost acknowledged writes to the end-to-end checkers.
    #[arg(long)]
    no_reply_assert: bool,
    /// Skip the checks made at each restart (the recovered state against
    /// what clients were told), leaving lost writes to the end-of-run checks.
    #[arg(long)]
    no_recovery_checks: bool,
    /// Ensembles: the highest zxid counter a leader proposes before it
    /// starts a new epoch (ZOOKEEPER-1277's rollover, made frequent).
    #[arg(long)]
    zxid_counter_max: Option<u32>,
    /// Ensembles: the leader's window of recent txns for DIFF (small:
    /// learners that fell behind get SNAPs).
    #[arg(long)]
    history_txns_max: Option<usize>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a history recorded by real clients against real servers (the
    /// JSON format is documented in sim/src/history_file.rs) with the
    /// simulator's checkers: FIFO replies, sequential consistency over the
    /// model, and the final tree against every write.
    CheckHistory {
        /// The history file.
        file: std::path::PathBuf,
    },
}

/// `fk-sim check-history FILE`.
fn check_history(file: &std::path::Path) -> ExitCode {
    let history = match sim::history_file::load(file) {
        Ok(history) => history,
        Err(error) => {
            eprintln!("fk-sim check-history: {error}");
            return ExitCode::from(2);
        }
    };
    match history.check() {
        Ok(r) => {
            println!(
                "{}: passed: {} ops ({} answered; unanswered: {} writes placed by their receipts, \
                 {} by their evidence, {} writes that never happened, {} reads), final tree of {} nodes",
                file.display(),
                r.ops,
                r.answered,
                r.placed_by_receipt,
                r.placed_by_evidence,
                r.never_happened,
                r.unanswered_reads,
                r.final_nodes
            );
            ExitCode::SUCCESS
        }
        Err(violation) => {
            println!("{}: VIOLATION: {violation}", file.display());
            ExitCode::from(1)
        }
    }
}

impl Args {
    fn options(&self, seed: u64) -> Options {
        Options {
            seed,
            databases: self.databases,
            servers: self.servers,
            observers: self.observers,
            clients: self.clients,
            steps: self.steps,
            faults: self.faults.clone(),
            mix: self.mix,
            bug: self.bug,
            assert_reply_after_durable: !self.no_reply_assert,
            check_recovery: !self.no_recovery_checks,
            trace: self.trace && self.seed.is_some(),
            zxid_counter_max: self.zxid_counter_max,
            history_txns_max: self.history_txns_max,
            ..Options::new(seed)
        }
    }

    /// The command line that replays one seed of this invocation.
    fn replay(&self, seed: u64) -> String {
        let mut command = format!(
            "fk-sim --seed {seed} --servers {} --clients {} --steps {} --faults {}",
            self.servers, self.clients, self.steps, self.faults
        );
        if self.observers > 0 {
            command.push_str(&format!(" --observers {}", self.observers));
        }
        if self.databases > 1 {
            command.push_str(&format!(" --databases {}", self.databases));
        }
        if self.mix != Mix::Standard {
            command.push_str(&format!(" --mix {}", self.mix.name()));
        }
        if let Some(bug) = self.bug {
            command.push_str(&format!(" --bug {}", bug.name()));
        }
        if self.no_reply_assert {
            command.push_str(" --no-reply-assert");
        }
        if self.no_recovery_checks {
            command.push_str(" --no-recovery-checks");
        }
        if let Some(max) = self.zxid_counter_max {
            command.push_str(&format!(" --zxid-counter-max {max}"));
        }
        if let Some(max) = self.history_txns_max {
            command.push_str(&format!(" --history-txns-max {max}"));
        }
        command
    }
}

fn report(outcome: &Outcome) -> String {
    let s = &outcome.summary;
    let faults: Vec<String> = s.faults.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "seed {}: {} steps, {:.1}s simulated, {} ops ({} answered), {} sessions ({} expired), \
         {} restarts ({} power cuts, {} kills, {} log failures), {} snapshots (at most {} chunks), {} watch events, \
         {} epoch writes, {} truncations, {} reloads, {} SNAPs interrupted, {} zxid rollovers, \
         faults [{}], checker steps {}{}{}, fingerprint {:016x}",
        outcome.seed,
        outcome.steps,
        outcome.simulated.as_secs_f64(),
        s.ops_invoked,
        s.ops_completed,
        s.clients.sessions,
        s.clients.expired_sessions_learned,
        s.servers.restarts,
        s.servers.power_cuts,
        s.servers.kills,
        s.servers.log_failures,
        s.servers.snapshots,
        s.servers.snapshot_chunks_max,
        s.clients.watch_events,
        s.servers.epoch_writes,
        s.servers.truncations,
        s.servers.reloads,
        s.servers.snapshots_interrupted,
        s.servers.zxid_rollovers,
        faults.join(" "),
        s.linearizability_steps,
        if s.inconclusive > 0 {
            " (inconclusive)"
        } else {
            ""
        },
        if s.no_whole_log > 0 {
            " (history unchecked: no server kept a whole log)"
        } else {
            ""
        },
        outcome.fingerprint,
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::CheckHistory { file }) = &args.command {
        return check_history(file);
    }
    let seeds: Vec<u64> = match (args.seed, args.seeds) {
        (Some(seed), _) => vec![seed],
        (None, Some(n)) => (args.first_seed..args.first_seed.saturating_add(n)).collect(),
        (None, None) => {
            eprintln!("fk-sim: give --seed S or --seeds N");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let (mut inconclusive, mut no_whole_log) = (0, 0);
    let (mut simulated, mut ops, mut restarts) = (0.0f64, 0u64, 0u64);
    for seed in &seeds {
        let mut outcome = sim::run(&args.options(*seed));
        for line in outcome.trace.drain(..) {
            println!("{line}");
        }
        inconclusive += u64::from(outcome.summary.inconclusive > 0);
        no_whole_log += u64::from(outcome.summary.no_whole_log > 0);
        simulated += outcome.simulated.as_secs_f64();
        ops += outcome.summary.ops_invoked;
        restarts += outcome.summary.servers.restarts;
        if args.seed.is_some() || outcome.found.is_some() {
            println!("{}", report(&outcome));
        }
        if let Some(found) = &outcome.found {
            println!("seed {seed} FAILED: {found}");
            println!("replay: {}", args.replay(*seed));
            return ExitCode::from(1);
        }
    }
    println!(
        "{} seeds passed ({} with an inconclusive linearizability check, {} without a whole log \
         to check the history against) in {:.1}s: {:.0}s simulated, {} ops, {} server restarts",
        seeds.len(),
        inconclusive,
        no_whole_log,
        started.elapsed().as_secs_f64(),
        simulated,
        ops,
        restarts
    );
    ExitCode::SUCCESS
}
