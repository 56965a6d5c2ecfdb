//! `fk-sidebyside`: Apache ZooKeeper and ferrokeeper, same shape, same disk,
//! same workloads, same load generator; one table with both and the ratio.
//! See `bench::harness` for what it does and `bench/README.md` for how to run it.

use std::io;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bench::driver::{self, RunConfig, RunLength};
use bench::harness::machine::{self, DiskProbe, Machine};
use bench::harness::server::{self, Kind, ServerProcess, ServerSpec, WorkDir};
use bench::harness::{self, Case, CaseDisk, TargetCheck};
use bench::plot::{self, Point, Series};
use bench::stats::RunReport;
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
    /// keeper, serial-create).
    #[arg(long, value_delimiter = ',')]
    cases: Vec<String>,
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
    settings: Vec<(String, String, String)>,
    cases: &'a [Case],
    reports: &'a [RunReport],
    disk_per_case: &'a [CaseDisk],
    targets: &'a [TargetCheck],
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn plan(args: &Args) -> Result<Vec<Case>, String> {
    let length = RunLength::Timed {
        warmup: secs(args.warmup),
        duration: secs(args.duration),
    };
    let mut cases = harness::default_cases(args.sessions, args.outstanding, length);
    if !args.cases.is_empty() {
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
        let mut config = RunConfig::new(process.spec.addr(), case.workload);
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
                eprintln!(
                    "fk-sidebyside: {name} {}: {} ops/s, p50 {}, p99 {}, errors {}",
                    case.name,
                    table::fmt_rate(report.throughput),
                    table::fmt_latency(report.latency.p50_us),
                    table::fmt_latency(report.latency.p99_us),
                    table::errors_cell(&report)
                );
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

fn print_settings(specs: &[ServerSpec]) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for spec in specs {
        println!("--- {} (command and zoo.cfg) ---", spec.kind.name());
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
    println!(
        "load: value {} B, key space {}, load generator threads {}; other processes on this machine share its cores",
        args.value_size, args.keys, args.threads
    );
    let specs: Vec<ServerSpec> = sides
        .iter()
        .map(|kind| match kind {
            Kind::ZooKeeper => {
                server::zookeeper(&workdir.path.join("zookeeper"), args.zk_port, &args.zk_heap)
            }
            Kind::Ferrokeeper => server::ferrokeeper(
                &workdir.path.join("ferrokeeper"),
                args.fk_port,
                fk_binary.as_deref().unwrap_or(Path::new("ferrokeeper")),
            ),
        })
        .collect();
    let settings = print_settings(&specs);
    let mut reports = Vec::new();
    let mut disks = Vec::new();
    for spec in specs {
        let dir = spec.dir.clone();
        let (side_reports, side_disks) = run_side(&args, spec, &cases, deadline, stop)?;
        reports.extend(side_reports);
        disks.extend(side_disks);
        if !args.keep {
            std::fs::remove_dir_all(&dir)?;
        }
        if stop.load(Ordering::Relaxed) {
            eprintln!("fk-sidebyside: interrupted");
            return Ok(false);
        }
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
    let targets = harness::target_checks(&reports, Some(fdatasync_p50_us), fk_durable);
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
            settings,
            cases: &cases,
            reports: &reports,
            disk_per_case: &disks,
            targets: &targets,
        };
        let json = serde_json::to_string_pretty(&output).expect("serialises");
        std::fs::write(path, json + "\n")?;
    }
    println!("total time {:.0}s", started.elapsed().as_secs_f64());
    Ok(reports.len() == cases.len() * sides.len())
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
