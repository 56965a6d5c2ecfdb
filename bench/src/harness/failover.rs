//! The failover measurement: under the steady write load of
//! [`crate::failover`], SIGKILL the leader, wait until the ensemble serves
//! again, restart the killed server, wait until it has rejoined, let the load
//! run steadily, repeat; afterwards read every acknowledged create back from
//! every server.
//!
//! ```text
//! load ─────────────────────────────────────────────────────────────────▶ stop, verify
//!        settle │kill k│ elected │restart│ rejoined │ settle │kill k+1│ ...
//!               ├───────── window of kill k ──────────────────┤
//! ```
//!
//! Per kill: the longest interval between two consecutive acknowledged
//! writes (all sessions together) among those that end after the kill and
//! no later than the next kill (or the end of the load): the interval across
//! the kill, from the last acknowledgement before it, and any stall caused
//! by the restarted server rejoining; the time until the ensemble
//! answered `srvr` with a new leader; and the time until the restarted server
//! served again.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::ensemble::{Ensemble, SETTLE_TIMEOUT};
use crate::failover::{self, FailoverConfig, FailoverLoad, LoadRecord, ServerCheck};
use crate::table::{fmt_latency, render};

/// How long the load runs steadily before the first kill and after each
/// rejoin, unless told otherwise.
pub const SETTLE_DEFAULT: Duration = Duration::from_secs(2);
/// A kill is only made while writes are being acknowledged: at least this
/// many during the settle period.
const ACKS_BEFORE_KILL_MIN: u64 = 10;

/// One kill.
#[derive(Debug, Clone, Serialize)]
pub struct KillResult {
    pub kill: usize,
    /// sid of the leader that was killed, and of the one elected after it.
    pub killed_sid: u32,
    pub new_leader_sid: u32,
    /// Kill → `srvr` showed a settled ensemble with a new leader.
    pub elected_ms: f64,
    /// Kill → the restarted server served again (all members settled).
    pub rejoined_ms: f64,
    /// The longest interval between consecutive acknowledgements around the
    /// kill (see the module docs); `None` if writes never resumed.
    pub longest_gap_ms: Option<f64>,
    /// Where that interval starts, relative to the kill (negative: before).
    pub gap_start_ms: Option<f64>,
    /// Kill → the first acknowledgement after it.
    pub first_ack_ms: Option<f64>,
}

/// Everything the failover measurement found for one system.
#[derive(Debug, Clone, Serialize)]
pub struct FailoverReport {
    pub server: String,
    pub sessions: usize,
    pub outstanding: usize,
    pub rate: Option<f64>,
    pub kills: Vec<KillResult>,
    pub load: LoadRecord,
    pub load_seconds: f64,
    pub checks: Vec<ServerCheck>,
    /// An error that ended the kills early (the ensemble did not settle...).
    pub aborted: Option<String>,
}

impl FailoverReport {
    fn gaps(&self) -> Vec<f64> {
        let mut gaps: Vec<f64> = self.kills.iter().filter_map(|k| k.longest_gap_ms).collect();
        gaps.sort_by(f64::total_cmp);
        gaps
    }

    /// p50 of the per-kill longest gaps (nearest rank), in ms.
    pub fn gap_p50_ms(&self) -> Option<f64> {
        let gaps = self.gaps();
        (!gaps.is_empty()).then(|| gaps[(gaps.len() - 1) / 2])
    }

    pub fn gap_max_ms(&self) -> Option<f64> {
        self.gaps().last().copied()
    }

    /// Acknowledged creates missing on some server (the worst server).
    pub fn lost(&self) -> Option<u64> {
        self.checks.iter().map(|c| c.acked_missing).max()
    }

    /// Whether every kill was measured and every acknowledged write found
    /// on every server.
    pub fn complete(&self) -> bool {
        self.aborted.is_none()
            && !self.checks.is_empty()
            && self.lost() == Some(0)
            && self.checks.iter().all(|c| c.unknown_present == 0)
            && self.kills.iter().all(|k| k.longest_gap_ms.is_some())
    }
}

fn ms(ns: u64) -> f64 {
    ns as f64 / 1e6
}

fn signed_ms(a: u64, b: u64) -> f64 {
    (a as f64 - b as f64) / 1e6
}

/// Waits `settle` while the load runs, then until it has acknowledged
/// [`ACKS_BEFORE_KILL_MIN`] writes since the wait began (bounded).
fn settle(load: &FailoverLoad, settle: Duration, stop: &AtomicBool) -> io::Result<()> {
    let before = load.acked();
    let start = Instant::now();
    while start.elapsed() < settle || load.acked() < before + ACKS_BEFORE_KILL_MIN {
        if stop.load(Ordering::Relaxed) {
            return Err(io::Error::other("interrupted"));
        }
        if start.elapsed() > settle + SETTLE_TIMEOUT {
            return Err(io::Error::other(format!(
                "no writes acknowledged for {SETTLE_TIMEOUT:?} while the ensemble was settled"
            )));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// The kill times and what happened, before the gaps are known.
struct Kill {
    at_ns: u64,
    killed: usize,
    new_leader: usize,
    elected_ns: u64,
    rejoined_ns: u64,
}

/// How many kills, and how long the load runs steadily around them.
#[derive(Debug, Clone, Copy)]
pub struct KillPlan {
    pub kills: usize,
    /// Steady load before the first kill and after each rejoin.
    pub settle: Duration,
    /// No kill starts later than [`KILL_TIME_BOUND`] before this.
    pub deadline: Instant,
}

/// Time one kill may take at most: settle, two elections, a restart.
pub const KILL_TIME_BOUND: Duration = Duration::from_secs(4 * 60);

/// Runs the failover measurement on a settled ensemble: `plan.kills`
/// SIGKILLs of the leader under `config`'s load (its znodes under
/// `run_dir`), then verification. `lifetime` bounds a restarted server's
/// life. The ensemble is settled again (every member running) when it
/// returns without error.
pub fn run(
    server: &str,
    ensemble: &mut Ensemble,
    config: FailoverConfig,
    run_dir: String,
    plan: KillPlan,
    lifetime: impl Fn() -> Duration,
    stop: &Arc<AtomicBool>,
) -> io::Result<FailoverReport> {
    let (kills, settle_for) = (plan.kills, plan.settle);
    let sid = |ensemble: &Ensemble, i: usize| ensemble.members[i].spec.member.map_or(0, |m| m.sid);
    let load = FailoverLoad::start(config.clone(), run_dir)?;
    let mut done: Vec<Kill> = Vec::new();
    let mut aborted = None;
    for k in 0..kills {
        if Instant::now() + settle_for + KILL_TIME_BOUND > plan.deadline {
            aborted = Some(format!("kill {}: past the deadline", k + 1));
            break;
        }
        let step = (|| -> io::Result<Kill> {
            settle(&load, settle_for, stop)?;
            let leader = ensemble.wait_settled(SETTLE_TIMEOUT)?;
            let at_ns = load.now_ns();
            ensemble.members[leader].kill_hard()?;
            let new_leader = ensemble.wait_settled(SETTLE_TIMEOUT)?;
            let elected_ns = load.now_ns();
            ensemble.members[leader].restart(lifetime())?;
            ensemble.wait_settled(SETTLE_TIMEOUT)?;
            let rejoined_ns = load.now_ns();
            Ok(Kill {
                at_ns,
                killed: leader,
                new_leader,
                elected_ns,
                rejoined_ns,
            })
        })();
        match step {
            Ok(kill) => {
                eprintln!(
                    "fk-sidebyside: {server} kill {}: leader {} killed, {} leads after {:.0} ms, \
                     restarted server serves after {:.0} ms",
                    k + 1,
                    sid(ensemble, kill.killed),
                    sid(ensemble, kill.new_leader),
                    ms(kill.elected_ns - kill.at_ns),
                    ms(kill.rejoined_ns - kill.at_ns)
                );
                done.push(kill);
            }
            Err(e) => {
                eprintln!("fk-sidebyside: {server} kill {}: {e}", k + 1);
                aborted = Some(format!("kill {}: {e}", k + 1));
                break;
            }
        }
    }
    // Let the load run steadily after the last rejoin, so the last window
    // has acknowledgements after it.
    if aborted.is_none() {
        if let Err(e) = settle(&load, settle_for, stop) {
            aborted = Some(format!("after the last kill: {e}"));
        }
    }
    let load_seconds = ms(load.now_ns()) / 1e3;
    let run_dir = load.run_dir.clone();
    let record = load.stop();
    let kills: Vec<KillResult> = done
        .iter()
        .enumerate()
        .map(|(i, kill)| {
            let window_end = done.get(i + 1).map_or(u64::MAX, |next| next.at_ns);
            let gap = failover::longest_gap(&record.ack_ns, kill.at_ns, window_end);
            KillResult {
                kill: i + 1,
                killed_sid: sid(ensemble, kill.killed),
                new_leader_sid: sid(ensemble, kill.new_leader),
                elected_ms: ms(kill.elected_ns - kill.at_ns),
                rejoined_ms: ms(kill.rejoined_ns - kill.at_ns),
                longest_gap_ms: gap.map(|(a, b)| ms(b - a)),
                gap_start_ms: gap.map(|(a, _)| signed_ms(a, kill.at_ns)),
                first_ack_ms: failover::first_ack_after(&record.ack_ns, kill.at_ns)
                    .map(|t| ms(t - kill.at_ns)),
            }
        })
        .collect();
    // Every member must be up to be read from; an aborted run may have left
    // the killed one down.
    for member in &mut ensemble.members {
        if !member.is_running() {
            member.restart(lifetime())?;
        }
    }
    let checks = match ensemble.wait_settled(SETTLE_TIMEOUT) {
        Ok(_) => failover::verify(
            &ensemble.addrs(),
            &run_dir,
            &config,
            &record,
            SETTLE_TIMEOUT,
        )?,
        Err(e) => {
            aborted.get_or_insert(format!("before verifying: {e}"));
            Vec::new()
        }
    };
    Ok(FailoverReport {
        server: server.to_owned(),
        sessions: config.sessions,
        outstanding: config.outstanding,
        rate: config.rate,
        kills,
        load: record,
        load_seconds,
        checks,
        aborted,
    })
}

fn opt_ms(v: Option<f64>) -> String {
    v.map_or_else(|| "-".into(), |ms| fmt_latency(ms * 1e3))
}

/// One row per kill, both systems.
pub fn kills_table(reports: &[FailoverReport]) -> String {
    let header = [
        "server",
        "kill",
        "killed",
        "new leader",
        "elected after",
        "restarted one serves after",
        "first ack after",
        "longest gap",
        "gap starts",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .flat_map(|r| {
            r.kills.iter().map(move |k| {
                vec![
                    r.server.clone(),
                    k.kill.to_string(),
                    format!("s{}", k.killed_sid),
                    format!("s{}", k.new_leader_sid),
                    opt_ms(Some(k.elected_ms)),
                    opt_ms(Some(k.rejoined_ms)),
                    opt_ms(k.first_ack_ms),
                    opt_ms(k.longest_gap_ms),
                    k.gap_start_ms
                        .map_or_else(|| "-".into(), |s| format!("{s:+.1}ms")),
                ]
            })
        })
        .collect();
    render(&header, &rows)
}

/// One row per system: the gaps over the kills and the write accounting.
pub fn summary_table(reports: &[FailoverReport]) -> String {
    let header = [
        "server",
        "load",
        "kills",
        "gap p50",
        "gap max",
        "acked",
        "uncertain (applied)",
        "error replies",
        "conn lost",
        "acked lost (worst server)",
        "verdict",
    ];
    let rows: Vec<Vec<String>> = reports
        .iter()
        .map(|r| {
            let shape = format!(
                "{}×{} {}",
                r.sessions,
                r.outstanding,
                r.rate
                    .map_or_else(|| "closed loop".into(), |x| format!("at {x:.0}/s"))
            );
            let uncertain_applied = r.checks.iter().map(|c| c.uncertain_present).max();
            let errors: u64 = r.load.errors.values().sum();
            vec![
                r.server.clone(),
                shape,
                r.kills.len().to_string(),
                opt_ms(r.gap_p50_ms()),
                opt_ms(r.gap_max_ms()),
                r.load.acknowledged.to_string(),
                format!(
                    "{} ({})",
                    r.load.uncertain_count,
                    uncertain_applied.map_or_else(|| "-".into(), |n| n.to_string())
                ),
                if errors == 0 {
                    "0".into()
                } else {
                    format!("{errors} {:?}", r.load.errors)
                },
                r.load.connections_lost.to_string(),
                r.lost()
                    .map_or_else(|| "not verified".into(), |n| n.to_string()),
                match (&r.aborted, r.lost()) {
                    _ if r.checks.iter().any(|c| c.unknown_present > 0) => {
                        "ZNODES THE LOAD NEVER SENT are present".into()
                    }
                    (Some(why), _) => format!("INCOMPLETE: {why}"),
                    (None, Some(0)) => "no acknowledged write lost".into(),
                    (None, Some(n)) => format!("LOST {n} acknowledged writes"),
                    (None, None) => "not verified".into(),
                },
            ]
        })
        .collect();
    render(&header, &rows)
}
