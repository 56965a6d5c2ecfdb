//! The side-by-side harness (binary `fk-sidebyside`): the same workloads,
//! from the same load generator, against Apache ZooKeeper and ferrokeeper
//! started in the same shape on the same disk, printed as one table with the
//! ratio and the target checks.
//!
//! ```text
//! probe machine + fdatasync ─┬─ start zookeeper ── run every case ── stop, remove its data
//!                            └─ start ferrokeeper ─ run every case ── stop, remove its data
//!                            → table (both + ratio), target checks, JSON, SVG
//! ```
//!
//! The servers run one after the other, never together, so neither competes
//! with the other's idle threads; each case runs against a server that has
//! already served the earlier cases, in the same order on both sides.
//! Everything listens on 127.0.0.1; the run is bounded by a deadline after
//! which the servers stop themselves even if the harness is killed; servers
//! and their data are removed at the end, also on error and on Ctrl-C.

pub mod costs;
pub mod ensemble;
pub mod failover;
pub mod machine;
pub mod server;

use std::time::Duration;

use serde::Serialize;

use crate::driver::RunLength;
use crate::stats::RunReport;
use crate::table::{fmt_latency, fmt_rate, render};
use crate::workload::Workload;

/// One workload at one shape, run against each server.
#[derive(Debug, Clone, Serialize)]
pub struct Case {
    pub name: String,
    pub workload: Workload,
    pub sessions: usize,
    pub outstanding: usize,
    pub length: RunLength,
    /// Which servers of an ensemble the sessions use (a standalone server
    /// is all of them).
    pub via: Via,
}

/// Which servers of an ensemble a case's sessions connect to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Via {
    /// Session `i` on server `i mod N`.
    Spread,
    /// Every session on the current leader.
    Leader,
    /// Every session on one follower.
    Follower,
}

/// The cases the targets refer to.
pub const CASE_CREATE: &str = "create";
pub const CASE_SET_DATA: &str = "setdata";
pub const CASE_GET_DATA: &str = "getdata";
pub const CASE_SERIAL_CREATE: &str = "serial-create";
/// Ensemble cases: serial create with the session on the leader, on a follower.
pub const CASE_SERIAL_CREATE_LEADER: &str = "serial-create-leader";
pub const CASE_SERIAL_CREATE_FOLLOWER: &str = "serial-create-follower";

/// The default plan: the four target cases, a 90% read mix and the keeper mix
/// at `sessions × outstanding`, serial create at 1 × 1.
pub fn default_cases(sessions: usize, outstanding: usize, length: RunLength) -> Vec<Case> {
    let case = |name: &str, workload, sessions, outstanding| Case {
        name: name.to_owned(),
        workload,
        sessions,
        outstanding,
        length,
        via: Via::Spread,
    };
    vec![
        case(CASE_CREATE, Workload::Create, sessions, outstanding),
        case(CASE_SET_DATA, Workload::SetData, sessions, outstanding),
        case(CASE_GET_DATA, Workload::GetData, sessions, outstanding),
        case(
            "mix:90",
            Workload::Mix { read_percent: 90 },
            sessions,
            outstanding,
        ),
        case("keeper", Workload::Keeper, sessions, outstanding),
        case(CASE_SERIAL_CREATE, Workload::Create, 1, 1),
    ]
}

/// The ensemble plan: create, setData, getData and the 90% read mix at
/// `sessions × outstanding` spread over the servers, then serial create
/// (1 × 1) through a follower and through the leader.
pub fn ensemble_cases(sessions: usize, outstanding: usize, length: RunLength) -> Vec<Case> {
    let case = |name: &str, workload, sessions, outstanding, via| Case {
        name: name.to_owned(),
        workload,
        sessions,
        outstanding,
        length,
        via,
    };
    vec![
        case(
            CASE_CREATE,
            Workload::Create,
            sessions,
            outstanding,
            Via::Spread,
        ),
        case(
            CASE_SET_DATA,
            Workload::SetData,
            sessions,
            outstanding,
            Via::Spread,
        ),
        case(
            CASE_GET_DATA,
            Workload::GetData,
            sessions,
            outstanding,
            Via::Spread,
        ),
        case(
            "mix:90",
            Workload::Mix { read_percent: 90 },
            sessions,
            outstanding,
            Via::Spread,
        ),
        case(
            CASE_SERIAL_CREATE_FOLLOWER,
            Workload::Create,
            1,
            1,
            Via::Follower,
        ),
        case(
            CASE_SERIAL_CREATE_LEADER,
            Workload::Create,
            1,
            1,
            Via::Leader,
        ),
    ]
}

/// The write-1m case: a million unique creates from 48 sessions × 16 (both
/// servers refuse a 61st connection from one address by default:
/// maxClientCnxns=60; and 768 in flight stays under ZooKeeper's
/// globalOutstandingLimit of 1000).
pub fn write_1m_case(ops: u64) -> Case {
    Case {
        name: "write-1m".into(),
        workload: Workload::Write1M,
        sessions: 48,
        outstanding: 16,
        length: RunLength::Ops(ops),
        via: Via::Spread,
    }
}

/// Sweep cases: `workload` at each session count.
pub fn sweep_cases(
    workload: Workload,
    sessions: &[usize],
    outstanding: usize,
    length: RunLength,
) -> Vec<Case> {
    sessions
        .iter()
        .map(|&s| Case {
            name: format!("sweep-{}@{s}", workload.name()),
            workload,
            sessions: s,
            outstanding,
            length,
            via: Via::Spread,
        })
        .collect()
}

fn find<'a>(reports: &'a [RunReport], server: &str, case: &str) -> Option<&'a RunReport> {
    reports
        .iter()
        .find(|r| r.server == server && r.label == case)
}

fn ratio(a: f64, b: f64) -> String {
    if b > 0.0 {
        format!("{:.2}×", a / b)
    } else {
        "-".into()
    }
}

/// The comparison table: one row per case, both servers and their ratios.
pub fn comparison_table(cases: &[Case], reports: &[RunReport]) -> String {
    let header = [
        "case",
        "shape",
        "zk ops/s",
        "fk ops/s",
        "fk/zk",
        "zk p50",
        "fk p50",
        "zk p99",
        "fk p99",
        "zk/fk p99",
        "zk p99.9",
        "fk p99.9",
        "errors zk / fk",
    ];
    let dash = || "-".to_string();
    let rows: Vec<Vec<String>> = cases
        .iter()
        .map(|c| {
            let zk = find(reports, "zookeeper", &c.name);
            let fk = find(reports, "ferrokeeper", &c.name);
            let ops = |r: Option<&RunReport>| r.map_or_else(dash, |r| fmt_rate(r.throughput));
            let lat = |r: Option<&RunReport>, f: fn(&RunReport) -> f64| {
                r.map_or_else(dash, |r| fmt_latency(f(r)))
            };
            let both = |f: fn(&RunReport) -> f64, invert: bool| match (zk, fk) {
                (Some(z), Some(k)) if invert => ratio(f(z), f(k)),
                (Some(z), Some(k)) => ratio(f(k), f(z)),
                _ => dash(),
            };
            let errors = |r: Option<&RunReport>| r.map_or_else(dash, crate::table::errors_cell);
            vec![
                c.name.clone(),
                format!("{}×{}", c.sessions, c.outstanding),
                ops(zk),
                ops(fk),
                both(|r| r.throughput, false),
                lat(zk, |r| r.latency.p50_us),
                lat(fk, |r| r.latency.p50_us),
                lat(zk, |r| r.latency.p99_us),
                lat(fk, |r| r.latency.p99_us),
                both(|r| r.latency.p99_us, true),
                lat(zk, |r| r.latency.p999_us),
                lat(fk, |r| r.latency.p999_us),
                format!("{} / {}", errors(zk), errors(fk)),
            ]
        })
        .collect();
    render(&header, &rows)
}

/// No log record of a write can be smaller than this: a txn header alone
/// (session id, cxid, zxid, time) is 28 bytes.
pub const LOG_RECORD_BYTES_MIN: u64 = 16;

/// What reached the disk while one case ran against one server.
#[derive(Debug, Clone, Serialize)]
pub struct CaseDisk {
    pub server: String,
    pub case: String,
    /// Writes the server acknowledged inside the measurement window.
    pub writes_acknowledged: u64,
    /// Device-wide counters over the whole case (setup to close); other
    /// processes on the machine add to them.
    pub device: Option<machine::DiskCounters>,
    /// Bytes the server process sent to storage over the whole case.
    pub server_write_bytes: Option<u64>,
}

impl CaseDisk {
    /// `Some(false)` when the server acknowledged writes that provably did
    /// not wait for the disk: fewer bytes written than [`LOG_RECORD_BYTES_MIN`]
    /// per write, no device flush at all, or — for a serial case, where every
    /// write must be flushed before the next is sent — fewer device flushes
    /// than acknowledged writes. `Some(true)` only means "not disproved": the
    /// device counters include every other process's I/O.
    pub fn durable(&self, serial: bool) -> Option<bool> {
        if self.writes_acknowledged == 0 {
            return None;
        }
        let bytes_min = self.writes_acknowledged * LOG_RECORD_BYTES_MIN;
        if self.server_write_bytes.is_some_and(|b| b < bytes_min)
            || self.device.is_some_and(|d| d.flushes == 0)
        {
            return Some(false);
        }
        let device = self.device?;
        if serial && device.flushes < self.writes_acknowledged {
            return Some(false);
        }
        Some(true)
    }
}

/// Writes acknowledged in a report's window (create, setData, delete).
pub fn writes_in(report: &RunReport) -> u64 {
    report
        .by_kind
        .iter()
        .filter(|k| matches!(k.kind, "create" | "setData" | "delete"))
        .map(|k| k.latency.count)
        .sum()
}

pub fn durability_table(cases: &[Case], disks: &[CaseDisk]) -> String {
    let header = [
        "server",
        "case",
        "writes acked",
        "device flushes",
        "device write IOs",
        "server bytes written",
        "durable?",
    ];
    let rows: Vec<Vec<String>> = disks
        .iter()
        .filter(|d| d.writes_acknowledged > 0)
        .map(|d| {
            let serial = cases
                .iter()
                .any(|c| c.name == d.case && c.sessions == 1 && c.outstanding == 1);
            let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
            vec![
                d.server.clone(),
                d.case.clone(),
                d.writes_acknowledged.to_string(),
                opt(d.device.map(|c| c.flushes)),
                opt(d.device.map(|c| c.write_ios)),
                opt(d.server_write_bytes),
                match d.durable(serial) {
                    Some(true) => "not disproved".into(),
                    Some(false) => "NO: replies did not wait for the disk".into(),
                    None => "unknown".into(),
                },
            ]
        })
        .collect();
    render(&header, &rows)
}

/// One target from the issue, checked against the measurements.
#[derive(Debug, Clone, Serialize)]
pub struct TargetCheck {
    pub target: String,
    pub measured: String,
    /// `None` when a side is missing.
    pub met: Option<bool>,
}

impl TargetCheck {
    pub fn verdict(&self) -> &'static str {
        match self.met {
            Some(true) => "met",
            Some(false) => "NOT met",
            None => "n/a",
        }
    }
}

fn shape_of(reports: &[RunReport], case: &str) -> String {
    find(reports, "zookeeper", case)
        .or(find(reports, "ferrokeeper", case))
        .map_or(String::new(), |r| {
            format!(" at {}×{}", r.sessions, r.outstanding)
        })
}

/// ferrokeeper's throughput in `case` ≥ `factor` × ZooKeeper's.
fn throughput_check(reports: &[RunReport], case: &str, factor: f64) -> TargetCheck {
    let target = format!(
        "{case} throughput{} ≥ {factor}× ZooKeeper's",
        shape_of(reports, case)
    );
    match (
        find(reports, "zookeeper", case),
        find(reports, "ferrokeeper", case),
    ) {
        (Some(z), Some(k)) => TargetCheck {
            target,
            measured: format!(
                "fk {} / zk {} ops/s = {}",
                fmt_rate(k.throughput),
                fmt_rate(z.throughput),
                ratio(k.throughput, z.throughput)
            ),
            met: Some(k.throughput >= factor * z.throughput),
        },
        _ => TargetCheck {
            target,
            measured: "one side missing".into(),
            met: None,
        },
    }
}

/// ferrokeeper's p99 in `case` ≤ 1/`factor` of ZooKeeper's.
fn p99_check(reports: &[RunReport], case: &str, factor: f64) -> TargetCheck {
    let target = format!(
        "{case} p99{} ≤ 1/{factor} of ZooKeeper's",
        shape_of(reports, case)
    );
    match (
        find(reports, "zookeeper", case),
        find(reports, "ferrokeeper", case),
    ) {
        (Some(z), Some(k)) => TargetCheck {
            target,
            measured: format!(
                "fk {} vs zk {} = 1/{:.2}",
                fmt_latency(k.latency.p99_us),
                fmt_latency(z.latency.p99_us),
                z.latency.p99_us / k.latency.p99_us.max(f64::MIN_POSITIVE)
            ),
            met: Some(k.latency.p99_us * factor <= z.latency.p99_us),
        },
        _ => TargetCheck {
            target,
            measured: "one side missing".into(),
            met: None,
        },
    }
}

/// Write targets are not judged met against a server whose writes did not
/// reach the disk (see [`CaseDisk::durable`]).
fn void_unless_durable(checks: &mut [TargetCheck], ferrokeeper_durable: Option<bool>) {
    if ferrokeeper_durable == Some(false) {
        for check in checks.iter_mut() {
            if check.met.is_some() {
                check.met = None;
                check
                    .measured
                    .push_str(" — void: ferrokeeper's writes were not durable");
            }
        }
    }
}

/// The targets: ferrokeeper create and setData throughput ≥ 5× ZooKeeper's
/// with p99 ≤ 1/5 of ZooKeeper's; serial create p50 ≤ 2× the disk's
/// fdatasync p50; getData throughput ≥ 4×.
///
/// `ferrokeeper_durable` is the durability verdict for ferrokeeper's writes
/// (see [`CaseDisk::durable`]): write targets are not judged met against a
/// server that did not make its writes durable.
pub fn target_checks(
    reports: &[RunReport],
    fdatasync_p50_us: Option<f64>,
    ferrokeeper_durable: Option<bool>,
) -> Vec<TargetCheck> {
    let mut checks = vec![
        throughput_check(reports, CASE_CREATE, 5.0),
        p99_check(reports, CASE_CREATE, 5.0),
        throughput_check(reports, CASE_SET_DATA, 5.0),
        p99_check(reports, CASE_SET_DATA, 5.0),
    ];
    let target = "ferrokeeper serial create (1×1) p50 ≤ 2× the disk's fdatasync p50".to_string();
    checks.push(
        match (
            find(reports, "ferrokeeper", CASE_SERIAL_CREATE),
            fdatasync_p50_us,
        ) {
            (Some(k), Some(sync)) => TargetCheck {
                target,
                measured: format!(
                    "fk {} vs fdatasync {} = {:.2}×",
                    fmt_latency(k.latency.p50_us),
                    fmt_latency(sync),
                    k.latency.p50_us / sync
                ),
                met: Some(k.latency.p50_us <= 2.0 * sync),
            },
            _ => TargetCheck {
                target,
                measured: "missing".into(),
                met: None,
            },
        },
    );
    void_unless_durable(&mut checks, ferrokeeper_durable);
    checks.push(throughput_check(reports, CASE_GET_DATA, 4.0));
    checks
}

/// The ensemble targets (issue 8): ferrokeeper's ensemble ≥ 5× ZooKeeper's
/// create and setData throughput with ≤ 1/5 of its p99; serial create
/// through the leader p50 ≤ 2 × (one fdatasync + one loopback round trip);
/// failover gap p50 ≤ 300 ms with no acknowledged write lost.
pub fn ensemble_target_checks(
    reports: &[RunReport],
    fdatasync_p50_us: Option<f64>,
    loopback_rtt_p50_us: Option<f64>,
    ferrokeeper_durable: Option<bool>,
    ferrokeeper_failover: Option<&failover::FailoverReport>,
) -> Vec<TargetCheck> {
    let mut checks = vec![
        throughput_check(reports, CASE_CREATE, 5.0),
        p99_check(reports, CASE_CREATE, 5.0),
        throughput_check(reports, CASE_SET_DATA, 5.0),
        p99_check(reports, CASE_SET_DATA, 5.0),
    ];
    let target = "ferrokeeper serial create via the leader (1×1) p50 ≤ 2 × (fdatasync p50 + loopback RTT p50)"
        .to_string();
    checks.push(
        match (
            find(reports, "ferrokeeper", CASE_SERIAL_CREATE_LEADER),
            fdatasync_p50_us,
            loopback_rtt_p50_us,
        ) {
            (Some(k), Some(sync), Some(rtt)) => TargetCheck {
                target,
                measured: format!(
                    "fk {} vs fdatasync {} + RTT {} = {:.2}×",
                    fmt_latency(k.latency.p50_us),
                    fmt_latency(sync),
                    fmt_latency(rtt),
                    k.latency.p50_us / (sync + rtt)
                ),
                met: Some(k.latency.p50_us <= 2.0 * (sync + rtt)),
            },
            _ => TargetCheck {
                target,
                measured: "missing".into(),
                met: None,
            },
        },
    );
    let target = "ferrokeeper failover gap p50 ≤ 300 ms, no acknowledged write lost".to_string();
    checks.push(match ferrokeeper_failover {
        Some(r) => {
            let gap = r.gap_p50_ms();
            TargetCheck {
                target,
                measured: format!(
                    "gap p50 {} over {} kills, max {}; lost {}{}",
                    gap.map_or("-".into(), |g| fmt_latency(g * 1e3)),
                    r.kills.len(),
                    r.gap_max_ms().map_or("-".into(), |g| fmt_latency(g * 1e3)),
                    r.lost().map_or("not verified".into(), |n| n.to_string()),
                    r.aborted
                        .as_ref()
                        .map_or(String::new(), |why| format!(" (incomplete: {why})"))
                ),
                met: match (gap, r.complete()) {
                    (Some(g), true) => Some(g <= 300.0),
                    (_, false) if r.lost().is_some_and(|n| n > 0) => Some(false),
                    _ => None,
                },
            }
        }
        None => TargetCheck {
            target,
            measured: "not run (--failover-kills)".into(),
            met: None,
        },
    });
    void_unless_durable(&mut checks, ferrokeeper_durable);
    checks
}

pub fn targets_table(checks: &[TargetCheck]) -> String {
    let rows: Vec<Vec<String>> = checks
        .iter()
        .map(|c| vec![c.target.clone(), c.measured.clone(), c.verdict().to_owned()])
        .collect();
    render(&["target", "measured", "verdict"], &rows)
}

/// A sensible bound on one case: its length plus connect, drain and close.
pub fn case_time_bound(case: &Case, ops_time_limit: Duration) -> Duration {
    let run = match case.length {
        RunLength::Timed { warmup, duration } => warmup + duration,
        RunLength::Ops(_) => ops_time_limit,
    };
    run + Duration::from_secs(30)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LatencySummary;

    /// Serial writes need a flush each; nothing written is never durable.
    #[test]
    fn durability_verdicts() {
        let disk = |writes, flushes, bytes| CaseDisk {
            server: "s".into(),
            case: "c".into(),
            writes_acknowledged: writes,
            device: Some(machine::DiskCounters {
                write_ios: flushes,
                flushes,
            }),
            server_write_bytes: Some(bytes),
        };
        assert_eq!(disk(1000, 1000, 409_600).durable(true), Some(true));
        assert_eq!(disk(1000, 999, 409_600).durable(true), Some(false));
        assert_eq!(disk(1000, 10, 409_600).durable(false), Some(true));
        assert_eq!(disk(1000, 0, 409_600).durable(false), Some(false));
        assert_eq!(disk(1000, 50, 0).durable(false), Some(false));
        assert_eq!(disk(1000, 50, 15_999).durable(false), Some(false));
        assert_eq!(disk(0, 0, 0).durable(true), None);
    }

    fn report(server: &str, case: &str, throughput: f64, p50_us: f64, p99_us: f64) -> RunReport {
        RunReport {
            label: case.into(),
            server: server.into(),
            workload: case.into(),
            sessions: 8,
            outstanding: 32,
            threads: 1,
            value_size: 100,
            keys: 10,
            rate: None,
            window_s: 1.0,
            ops: throughput as u64,
            throughput,
            latency: LatencySummary {
                count: 1,
                p50_us,
                p99_us,
                ..Default::default()
            },
            by_kind: vec![],
            errors: vec![],
            errors_total: 0,
            unanswered: 0,
            sessions_connected: 8,
            sessions_failed_to_connect: 0,
            sessions_lost: 0,
            protocol_errors: 0,
            client_cpu_percent: 1.0,
            samples: None,
        }
    }

    /// The verdicts follow the issue's arithmetic, and a missing side is n/a.
    #[test]
    fn target_verdicts() {
        let reports = vec![
            report("zookeeper", "create", 10_000.0, 5000.0, 40_000.0),
            report("ferrokeeper", "create", 60_000.0, 500.0, 9_000.0),
            report("zookeeper", "setdata", 10_000.0, 5000.0, 40_000.0),
            report("ferrokeeper", "setdata", 40_000.0, 500.0, 4_000.0),
            report("ferrokeeper", "serial-create", 3000.0, 350.0, 900.0),
            report("zookeeper", "getdata", 50_000.0, 100.0, 1000.0),
        ];
        let checks = target_checks(&reports, Some(200.0), Some(true));
        let verdicts: Vec<Option<bool>> = checks.iter().map(|c| c.met).collect();
        assert_eq!(
            verdicts,
            vec![
                Some(true),
                Some(false),
                Some(false),
                Some(true),
                Some(true),
                None
            ]
        );
        let text = targets_table(&checks);
        assert!(
            text.contains("fk 60,000 / zk 10,000 ops/s = 6.00×"),
            "{text}"
        );
        let void = target_checks(&reports, Some(200.0), Some(false));
        assert!(void[..5].iter().all(|c| c.met.is_none()), "{void:?}");
        let cases = default_cases(8, 32, RunLength::Ops(1));
        let table = comparison_table(&cases, &reports);
        assert!(
            table.contains("6.00×") && table.contains("4.44×"),
            "{table}"
        );
    }
}
