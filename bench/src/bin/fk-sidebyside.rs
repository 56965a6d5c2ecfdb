//! `fk-sidebyside`: Apache ZooKeeper and ferrokeeper, same shape, same disk,
//! same workloads, same load generator; one table with both and the ratio.
//! Standalone by default; with `--ensemble N` both run as N-server ensembles
//! (one system at a time), optionally with the failover measurement
//! (`--failover-kills K`). See `bench::harness` for what it does and
//! `bench/README.md` for how to run it.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::driver::{self, RunConfig, RunLength};
use bench::failover::FailoverConfig;
use bench::harness::costs::{self, LeaderCost};
use bench::harness::ensemble::{self, Ensemble, SETTLE_TIMEOUT};
use bench::harness::failover::{self, FailoverReport, KillPlan};
use bench::harness::machine::{self, DiskProbe, Machine};
use bench::harness::server::{self, Kind, ServerProcess, ServerSpec, WorkDir};
use bench::harness::{self, Case, CaseDisk, TargetCheck, Via};
use bench::plot::{self, Point, Series};
use bench::stats::{LatencySummary, RunReport};
use bench::table;
use bench::workload::{self, Workload};
use clap::{Parser, ValueEnum};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Only {
    Zookeeper,
    Ferrokeeper,
}

#[derive(Debug, Parser)]
#[command(version, about = "Apache ZooKeeper and ferrokeeper side by side")]
struct Args {
    /// The ferrokeeper binary (default: next to this binary, i.e. the same
    /// target directory's release build).
    #[arg(long)]
    ferrokeeper: Option<PathBuf>,
    /// Run one side only.
    #[arg(long, value_enum)]
    only: Option<Only>,
    /// Work directory for both servers' data and logs; created, then removed
    /// at the end (default /var/tmp/fk-sidebyside-<pid>).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Keep the work directory (server logs) at the end.
    #[arg(long)]
    keep: bool,
    #[arg(long, default_value_t = 8)]
    sessions: usize,
    #[arg(long, default_value_t = 32)]
    outstanding: usize,
    /// Measured seconds per case.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Cases to run (default: all of create, setdata, getdata, mix:90,
    /// keeper, serial-create; with --ensemble: create, setdata, getdata,
    /// mix:90, serial-create-follower, serial-create-leader); `none` for
    /// none (e.g. failover only).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
    /// Run both systems as ensembles of this many servers (2..=9; 3 and 5
    /// are the usual), one system at a time, sessions spread over the
    /// servers (session i on server i mod N).
    #[arg(long)]
    ensemble: Option<usize>,
    /// With --ensemble: SIGKILL the leader this many times under a steady
    /// write load, restarting it each time; report the gaps in acknowledged
    /// writes and verify that none was lost.
    #[arg(long, default_value_t = 0)]
    failover_kills: usize,
    #[arg(long, default_value_t = 8)]
    failover_sessions: usize,
    /// Creates in flight per session during the failover measurement.
    #[arg(long, default_value_t = 4)]
    failover_outstanding: usize,
    /// Creates per second during the failover measurement, all sessions
    /// together (0 = closed loop: as fast as the ensemble answers).
    #[arg(long, default_value_t = 2000.0)]
    failover_rate: f64,
    /// Seconds of steady load before the first kill and after each rejoin.
    #[arg(long, default_value_t = 2.0)]
    failover_settle: f64,
    /// Also run write-1m: unique creates from 48 sessions × 16 outstanding.
    #[arg(long)]
    write_1m: bool,
    #[arg(long, default_value_t = workload::WRITE_1M_OPS)]
    write_1m_ops: u64,
    /// Also sweep this workload over --sweep session counts (at most 60:
    /// both servers refuse more connections from one address by default).
    #[arg(long, default_value = "create")]
    sweep_workload: String,
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Requests in flight per session in the sweep.
    #[arg(long, default_value_t = 1)]
    sweep_outstanding: usize,
    /// The sweep's throughput-latency plot (both servers).
    #[arg(long)]
    svg: Option<PathBuf>,
    /// Everything measured, as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    /// Load generator threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// ZooKeeper's JVM heap (-Xms and -Xmx), its only non-default setting
    /// besides the AdminServer being off.
    #[arg(long, default_value = "2g")]
    zk_heap: String,
    #[arg(long, default_value_t = 21810)]
    zk_port: u16,
    #[arg(long, default_value_t = 21811)]
    fk_port: u16,
    /// Writes in the disk's fdatasync probe.
    #[arg(long, default_value_t = 2000)]
    disk_probe_samples: usize,
    /// Bound on the whole harness, seconds; servers stop themselves after it.
    #[arg(long, default_value_t = 1800)]
    deadline: u64,
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Serialize)]
struct Output<'a> {
    machine: &'a Machine,
    /// The fdatasync probe before the first server starts and after the last stops.
    disk: [&'a DiskProbe; 2],
    /// Servers per system; `None` = standalone.
    ensemble: Option<usize>,
    loopback_rtt: Option<&'a LatencySummary>,
    settings: Vec<(String, String, String)>,
    cases: &'a [Case],
    reports: &'a [RunReport],
    disk_per_case: &'a [CaseDisk],
    leader_costs: &'a [LeaderCost],
    failover: &'a [FailoverReport],
    targets: &'a [TargetCheck],
}

/// Everything measured against one system.
#[derive(Debug, Default)]
struct Side {
    reports: Vec<RunReport>,
    disks: Vec<CaseDisk>,
    costs: Vec<LeaderCost>,
    failover: Option<FailoverReport>,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn plan(args: &Args) -> Result<Vec<Case>, String> {
    let length = RunLength::Timed {
        warmup: secs(args.warmup),
        duration: secs(args.duration),
    };
    let mut cases = match args.ensemble {
        Some(_) => harness::ensemble_cases(args.sessions, args.outstanding, length),
        None => harness::default_cases(args.sessions, args.outstanding, length),
    };
    if args.cases == ["none"] {
        cases.clear();
    } else if !args.cases.is_empty() {
        for name in &args.cases {
            if !cases.iter().any(|c| &c.name == name) {
                return Err(format!("unknown case {name:?}"));
            }
        }
        cases.retain(|c| args.cases.contains(&c.name));
    }
    if args.write_1m {
        cases.push(harness::write_1m_case(args.write_1m_ops));
    }
    if !args.sweep.is_empty() {
        let workload = Workload::parse(&args.sweep_workload)?;
        cases.extend(harness::sweep_cases(
            workload,
            &args.sweep,
            args.sweep_outstanding,
            length,
        ));
    }
    Ok(cases)
}

fn ferrokeeper_binary(args: &Args) -> io::Result<PathBuf> {
    let path = match &args.ferrokeeper {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("ferrokeeper"))
            .unwrap_or_default(),
    };
    if path.is_file() {
        Ok(path)
    } else {
        Err(io::Error::other(format!(
            "no ferrokeeper binary at {} (build it with `cargo build --release -p engine --bin ferrokeeper` \
             in the same target directory, pass --ferrokeeper, or run --only zookeeper)",
            path.display()
        )))
    }
}

/// The load generator's configuration for `case` against `servers`.
fn case_config(
    args: &Args,
    case: &Case,
    servers: Vec<SocketAddr>,
    name: &str,
    remaining: Duration,
) -> RunConfig {
    let mut config = RunConfig::new(servers[0], case.workload);
    config.servers = servers;
    config.server_name = name.to_owned();
    config.label = case.name.clone();
    config.sessions = case.sessions;
    config.outstanding = case.outstanding;
    config.threads = args.threads.min(case.sessions).max(1);
    config.length = case.length;
    config.value_size = args.value_size;
    config.keys = args.keys;
    config.time_limit = remaining.saturating_sub(Duration::from_secs(30));
    config.progress = !args.quiet;
    config
}

fn report_line(name: &str, case: &Case, report: &RunReport) {
    eprintln!(
        "fk-sidebyside: {name} {}: {} ops/s, p50 {}, p99 {}, errors {}",
        case.name,
        table::fmt_rate(report.throughput),
        table::fmt_latency(report.latency.p50_us),
        table::fmt_latency(report.latency.p99_us),
        table::errors_cell(report)
    );
}

/// Runs every case against one server; returns its reports and what reached
/// the disk during each case.
fn run_side(
    args: &Args,
    spec: ServerSpec,
    cases: &[Case],
    deadline: Instant,
    stop: &Arc<AtomicBool>,
) -> io::Result<(Vec<RunReport>, Vec<CaseDisk>)> {
    let disk_stat = machine::disk_stat_path(&spec.dir);
    let lifetime = deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(30);
    let name = spec.kind.name();
    eprintln!("fk-sidebyside: starting {name}: {}", spec.command_line());
    let mut process = ServerProcess::start(spec, lifetime)?;
    let mut reports = Vec::new();
    let mut disks = Vec::new();
    for case in cases {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if harness::case_time_bound(case, Duration::ZERO) > remaining {
            eprintln!(
                "fk-sidebyside: {name} {}: skipped, past the deadline",
                case.name
            );
            continue;
        }
        let config = case_config(args, case, vec![process.spec.addr()], name, remaining);
        let device_before = disk_stat.as_deref().and_then(machine::read_disk_counters);
        let server_pid = process.server_pid();
        let bytes_before = server_pid.and_then(machine::process_write_bytes);
        let result = driver::run(&config, stop);
        let device_after = disk_stat.as_deref().and_then(machine::read_disk_counters);
        let bytes_after = server_pid.and_then(machine::process_write_bytes);
        match result {
            Ok(report) => {
                disks.push(CaseDisk {
                    server: name.to_owned(),
                    case: case.name.clone(),
                    writes_acknowledged: harness::writes_in(&report),
                    device: device_before.zip(device_after).map(|(b, a)| a.since(b)),
                    server_write_bytes: bytes_before
                        .zip(bytes_after)
                        .map(|(b, a)| a.saturating_sub(b)),
                });
                report_line(name, case, &report);
                reports.push(report);
            }
            Err(e) => eprintln!("fk-sidebyside: {name} {}: {e}", case.name),
        }
        if !process.is_running() {
            return Err(io::Error::other(format!(
                "{name} exited during {}; last log lines:\n{}",
                case.name,
                process.log_tail(20)
            )));
        }
    }
    process.stop();
    Ok((reports, disks))
}

/// Sum of every running member's `write_bytes`, if all can be read.
fn members_write_bytes(ensemble: &Ensemble) -> Option<u64> {
    ensemble
        .members
        .iter()
        .map(|m| m.server_pid().and_then(machine::process_write_bytes))
        .sum()
}

/// Runs every case against an ensemble of one system, with the leader's
/// per-write costs, then the failover measurement if asked for.
fn run_ensemble_side(
    args: &Args,
    specs: Vec<ServerSpec>,
    cases: &[Case],
    deadline: Instant,
    stop: &Arc<AtomicBool>,
) -> io::Result<Side> {
    let kind = specs[0].kind;
    let name = kind.name();
    let disk_stat = machine::disk_stat_path(&specs[0].dir);
    let lifetime = || deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(30);
    eprintln!(
        "fk-sidebyside: starting {name} as {} servers: {}",
        specs.len(),
        specs[0].command_line()
    );
    let mut ensemble = Ensemble::start(specs, lifetime())?;
    let mut side = Side::default();
    for case in cases {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if stop.load(Ordering::Relaxed) {
            break;
        }
        if harness::case_time_bound(case, Duration::ZERO) > remaining {
            eprintln!(
                "fk-sidebyside: {name} {}: skipped, past the deadline",
                case.name
            );
            continue;
        }
        let leader = ensemble.wait_settled(SETTLE_TIMEOUT)?;
        let addrs = ensemble.addrs();
        let servers = match case.via {
            Via::Spread => addrs,
            Via::Leader => vec![addrs[leader]],
            Via::Follower => {
                let follower = ensemble
                    .follower()
                    .ok_or_else(|| io::Error::other("no follower"))?;
                vec![addrs[follower]]
            }
        };
        let config = case_config(args, case, servers, name, remaining);
        let bytes_before = members_write_bytes(&ensemble);
        let leader_before = costs::sample(&ensemble, leader, disk_stat.as_deref());
        let result = driver::run(&config, stop);
        let leader_after = costs::sample(&ensemble, leader, disk_stat.as_deref());
        let bytes_after = members_write_bytes(&ensemble);
        match result {
            Ok(report) => {
                let writes = harness::writes_in(&report);
                side.disks.push(CaseDisk {
                    server: name.to_owned(),
                    case: case.name.clone(),
                    writes_acknowledged: writes,
                    device: leader_before
                        .device
                        .zip(leader_after.device)
                        .map(|(b, a)| a.since(b)),
                    server_write_bytes: bytes_before
                        .zip(bytes_after)
                        .map(|(b, a)| a.saturating_sub(b)),
                });
                side.costs.push(costs::cost(
                    name,
                    &case.name,
                    writes,
                    &leader_before,
                    &leader_after,
                ));
                report_line(name, case, &report);
                side.reports.push(report);
            }
            Err(e) => eprintln!("fk-sidebyside: {name} {}: {e}", case.name),
        }
        if let Some(down) = ensemble.members.iter_mut().position(|m| !m.is_running()) {
            return Err(io::Error::other(format!(
                "{name} server {} exited during {}; last log lines:\n{}",
                down + 1,
                case.name,
                ensemble.members[down].log_tail(20)
            )));
        }
    }
    if args.failover_kills > 0 && !stop.load(Ordering::Relaxed) {
        let mut config = FailoverConfig::new(ensemble.addrs());
        config.sessions = args.failover_sessions;
        config.outstanding = args.failover_outstanding;
        config.rate = (args.failover_rate > 0.0).then_some(args.failover_rate);
        config.value_size = args.value_size;
        let run_dir = bench::workload::run_dir(&format!("failover-{}", std::process::id()));
        eprintln!(
            "fk-sidebyside: {name}: failover, {} kills of the leader under {}×{} creates {}",
            args.failover_kills,
            config.sessions,
            config.outstanding,
            config
                .rate
                .map_or_else(|| "closed loop".into(), |r| format!("at {r:.0}/s"))
        );
        let plan = KillPlan {
            kills: args.failover_kills,
            settle: secs(args.failover_settle),
            deadline,
        };
        let report = failover::run(name, &mut ensemble, config, run_dir, plan, lifetime, stop)?;
        side.failover = Some(report);
    }
    ensemble.stop();
    Ok(side)
}

fn print_settings(specs: &[ServerSpec]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for spec in specs {
        let member = spec
            .member
            .map_or(String::new(), |m| format!(" server.{}", m.sid));
        println!("--- {}{member} (command and zoo.cfg) ---", spec.kind.name());
        println!("$ {}", spec.command_line());
        print!("{}", spec.config_text);
        out.push((
            spec.kind.name().to_owned(),
            spec.command_line(),
            spec.config_text.clone(),
        ));
    }
    println!();
    out
}

fn sweep_plot(cases: &[Case], reports: &[RunReport]) -> String {
    let series = ["zookeeper", "ferrokeeper"]
        .iter()
        .map(|server| Series {
            name: (*server).to_owned(),
            points: cases
                .iter()
                .filter(|c| c.name.starts_with("sweep-"))
                .filter_map(|c| {
                    reports
                        .iter()
                        .find(|r| r.server == *server && r.label == c.name)
                })
                .map(|r| Point {
                    throughput: r.throughput,
                    p50_us: r.latency.p50_us,
                    p99_us: r.latency.p99_us,
                    sessions: r.sessions,
                })
                .collect(),
        })
        .filter(|s| !s.points.is_empty())
        .collect::<Vec<_>>();
    let first = cases.iter().find(|c| c.name.starts_with("sweep-"));
    let title = first.map_or(String::new(), |c| {
        format!(
            "{}: throughput vs latency, {} outstanding/session",
            c.workload.name(),
            c.outstanding
        )
    });
    plot::throughput_latency_svg(&title, &series)
}

fn print_disk_probe(when: &str, disk: &DiskProbe) {
    println!(
        "disk {when} the runs: write 4 KiB + fdatasync, {} samples: p50 {}, p90 {}, p99 {}, max {}",
        disk.samples,
        table::fmt_latency(disk.fdatasync.p50_us),
        table::fmt_latency(disk.fdatasync.p90_us),
        table::fmt_latency(disk.fdatasync.p99_us),
        table::fmt_latency(disk.fdatasync.max_us)
    );
}

fn real_main(args: Args, stop: &Arc<AtomicBool>) -> io::Result<bool> {
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.deadline);
    let cases = plan(&args).map_err(io::Error::other)?;
    if let Some(size) = args.ensemble {
        if !(2..=ensemble::ENSEMBLE_SIZE_MAX).contains(&size) {
            return Err(io::Error::other(format!(
                "--ensemble {size}: between 2 and {}",
                ensemble::ENSEMBLE_SIZE_MAX
            )));
        }
    } else if args.failover_kills > 0 {
        return Err(io::Error::other("--failover-kills needs --ensemble"));
    }
    let sides: Vec<Kind> = match args.only {
        Some(Only::Zookeeper) => vec![Kind::ZooKeeper],
        Some(Only::Ferrokeeper) => vec![Kind::Ferrokeeper],
        None => vec![Kind::ZooKeeper, Kind::Ferrokeeper],
    };
    if sides.contains(&Kind::ZooKeeper) {
        server::ensure_zookeeper_installed()?;
    }
    let fk_binary = match sides.contains(&Kind::Ferrokeeper) {
        true => Some(ferrokeeper_binary(&args)?),
        false => None,
    };
    let workdir_path = args
        .workdir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("/var/tmp/fk-sidebyside-{}", std::process::id())));
    let workdir = WorkDir::create(workdir_path, args.keep)?;
    let machine = Machine::probe(&workdir.path);
    println!(
        "machine: {} cores ({}), {:.1} GiB RAM, kernel {}, work dir {} on {}",
        machine.cores,
        machine.cpu,
        machine.memory_gib,
        machine.kernel,
        workdir.path.display(),
        machine.filesystem
    );
    let disk = machine::probe_fdatasync(&workdir.path, args.disk_probe_samples)?;
    print_disk_probe("before", &disk);
    let loopback = match args.ensemble {
        Some(_) => {
            let rtt = machine::probe_loopback_rtt(args.disk_probe_samples)?;
            println!(
                "loopback TCP round trip (128 B, {} samples): p50 {}, p99 {}",
                rtt.count,
                table::fmt_latency(rtt.p50_us),
                table::fmt_latency(rtt.p99_us)
            );
            Some(rtt)
        }
        None => None,
    };
    println!(
        "load: value {} B, key space {}, load generator threads {}; other processes on this machine share its cores",
        args.value_size, args.keys, args.threads
    );
    let fk_binary = fk_binary.as_deref().unwrap_or(Path::new("ferrokeeper"));
    // One spec per side standalone, one per member with --ensemble.
    let specs: Vec<Vec<ServerSpec>> = sides
        .iter()
        .map(|&kind| {
            let dir = workdir.path.join(kind.name());
            match (args.ensemble, kind) {
                (Some(size), _) => {
                    ensemble::ensemble_specs(kind, &dir, size, &args.zk_heap, fk_binary)
                }
                (None, Kind::ZooKeeper) => {
                    Ok(vec![server::zookeeper(&dir, args.zk_port, &args.zk_heap)])
                }
                (None, Kind::Ferrokeeper) => {
                    Ok(vec![server::ferrokeeper(&dir, args.fk_port, fk_binary)])
                }
            }
        })
        .collect::<io::Result<_>>()?;
    let settings = print_settings(&specs.concat());
    let mut reports = Vec::new();
    let mut disks = Vec::new();
    let mut leader_costs = Vec::new();
    let mut failovers = Vec::new();
    for side_specs in specs {
        let dir = workdir.path.join(side_specs[0].kind.name());
        let side = match args.ensemble {
            Some(_) => run_ensemble_side(&args, side_specs, &cases, deadline, stop)?,
            None => {
                let spec = side_specs.into_iter().next().expect("one spec");
                let (reports, disks) = run_side(&args, spec, &cases, deadline, stop)?;
                Side {
                    reports,
                    disks,
                    ..Side::default()
                }
            }
        };
        reports.extend(side.reports);
        disks.extend(side.disks);
        leader_costs.extend(side.costs);
        failovers.extend(side.failover);
        if !args.keep {
            std::fs::remove_dir_all(&dir)?;
        }
        if stop.load(Ordering::Relaxed) {
            eprintln!("fk-sidebyside: interrupted");
            return Ok(false);
        }
    }
    if let Some(size) = args.ensemble {
        println!(
            "{size}-server ensembles: sessions spread over the servers (session i on server i mod {size}); \
             serial-create-follower: the one session on a follower, serial-create-leader: on the leader"
        );
    }
    println!("{}", harness::comparison_table(&cases, &reports));
    let kinds = table::kinds_table(&reports);
    if !kinds.is_empty() {
        println!("per request kind (mixes):\n{kinds}");
    }
    println!(
        "what reached the disk during each case (device counters are machine-wide; \
         a serial write needs one flush each):\n{}",
        harness::durability_table(&cases, &disks)
    );
    let fk_durable = {
        let verdicts: Vec<Option<bool>> = disks
            .iter()
            .filter(|d| d.server == Kind::Ferrokeeper.name())
            .map(|d| {
                let serial = cases
                    .iter()
                    .any(|c| c.name == d.case && c.sessions == 1 && c.outstanding == 1);
                d.durable(serial)
            })
            .collect();
        if verdicts.contains(&Some(false)) {
            Some(false)
        } else if verdicts.contains(&Some(true)) {
            Some(true)
        } else {
            None
        }
    };
    // The disk is shared: probe it again after the runs and hold the serial
    // create target to the faster of the two probes.
    let disk_after = machine::probe_fdatasync(&workdir.path, args.disk_probe_samples)?;
    print_disk_probe("after", &disk_after);
    let fdatasync_p50_us = disk.fdatasync.p50_us.min(disk_after.fdatasync.p50_us);
    if !leader_costs.is_empty() {
        println!(
            "per acknowledged write on the leader (quorum bytes: TCP payload on the leader's \
             connections to the other members, from ss; storage bytes: the leader's write_bytes; \
             device flushes: the whole disk, all servers; leader fsyncs: the server's own count, \
             ZooKeeper's mntr zk_cnt_fsynctime, none kept by ferrokeeper):\n{}",
            costs::costs_table(&leader_costs)
        );
    }
    if !failovers.is_empty() {
        println!(
            "failover: SIGKILL of the leader, restart, rejoin, repeat; longest gap = longest time \
             between two consecutive acknowledged creates (all sessions) among those ending after \
             the kill and by the next kill (the one across the kill starts at the last ack before \
             it); gap starts = its start relative to the kill:\n{}",
            failover::kills_table(&failovers)
        );
        println!("{}", failover::summary_table(&failovers));
    }
    let targets = match args.ensemble {
        Some(_) => harness::ensemble_target_checks(
            &reports,
            Some(fdatasync_p50_us),
            loopback.as_ref().map(|r| r.p50_us),
            fk_durable,
            failovers
                .iter()
                .find(|f| f.server == Kind::Ferrokeeper.name()),
        ),
        None => harness::target_checks(&reports, Some(fdatasync_p50_us), fk_durable),
    };
    println!("targets:\n{}", harness::targets_table(&targets));
    println!("client cpu (load generator, % of one core): {}", {
        let cpu: Vec<String> = reports
            .iter()
            .map(|r| format!("{} {} {:.0}%", r.server, r.label, r.client_cpu_percent))
            .collect();
        cpu.join(", ")
    });
    if let Some(path) = &args.svg {
        std::fs::write(path, sweep_plot(&cases, &reports))?;
    }
    if let Some(path) = &args.json {
        let output = Output {
            machine: &machine,
            disk: [&disk, &disk_after],
            ensemble: args.ensemble,
            loopback_rtt: loopback.as_ref(),
            settings,
            cases: &cases,
            reports: &reports,
            disk_per_case: &disks,
            leader_costs: &leader_costs,
            failover: &failovers,
            targets: &targets,
        };
        let json = serde_json::to_string_pretty(&output).expect("serialises");
        std::fs::write(path, json + "\n")?;
    }
    println!("total time {:.0}s", started.elapsed().as_secs_f64());
    Ok(reports.len() == cases.len() * sides.len()
        && failovers.len()
            == if args.failover_kills > 0 {
                sides.len()
            } else {
                0
            }
        && failovers.iter().all(FailoverReport::complete))
}

fn main() -> ExitCode {
    let args = Args::parse();
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // The first signal ends the current run, stops the servers and
        // removes their data; a second one exits at once.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    match real_main(args, &stop) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("fk-sidebyside: {e}");
            ExitCode::FAILURE
        }
    }
}
