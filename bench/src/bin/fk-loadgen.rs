//! `fk-loadgen`: drives a ZooKeeper-compatible server (ferrokeeper or Apache
//! ZooKeeper) with a workload and reports throughput and latency percentiles.
//! See `bench/README.md` for examples and `bench::driver` for the model.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use bench::driver::{self, RunConfig, RunLength};
use bench::plot::{self, Point, Series};
use bench::stats::RunReport;
use bench::table;
use bench::workload::{self, Workload};
use clap::Parser;

#[derive(Debug, Parser)]
#[command(version, about = "ZooKeeper-protocol load generator")]
struct Args {
    /// Server address (loopback only); comma-separated for an ensemble:
    /// session i connects to server i mod the number of servers.
    #[arg(long, default_value = "127.0.0.1:2181", value_delimiter = ',')]
    server: Vec<SocketAddr>,
    /// Name of the server in the report.
    #[arg(long)]
    server_name: Option<String>,
    /// Workloads, comma-separated: create, setdata, getdata, mix:<read %>,
    /// keeper, write-1m.
    #[arg(long, short, default_value = "create", value_delimiter = ',')]
    workload: Vec<String>,
    /// Sessions (connections). ZooKeeper (and ferrokeeper) refuse more than
    /// maxClientCnxns=60 from one address by default.
    #[arg(long, short, default_value_t = 8)]
    sessions: usize,
    /// Requests in flight per session.
    #[arg(long, short, default_value_t = 32)]
    outstanding: usize,
    /// Worker threads, each driving sessions/threads sessions.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Measured seconds (after the warmup).
    #[arg(long, short, default_value_t = 5.0)]
    duration: f64,
    /// Seconds of load before measuring.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Send exactly this many requests instead (all measured; write-1m
    /// defaults to 1,000,000).
    #[arg(long)]
    ops: Option<u64>,
    /// Open loop at this many requests a second (all sessions together).
    #[arg(long)]
    rate: Option<f64>,
    /// Bytes per written value.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// Size of the key space for setData/getData/mix/keeper.
    #[arg(long, default_value_t = 10_000)]
    keys: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run each workload once per session count (comma-separated) and draw
    /// a throughput-latency plot (see --svg).
    #[arg(long, value_delimiter = ',')]
    sweep: Vec<usize>,
    /// Write the reports as JSON to this file ("-" = stdout, table to stderr).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the sweep's throughput-latency plot here.
    #[arg(long)]
    svg: Option<PathBuf>,
    #[arg(long, default_value_t = 30_000)]
    session_timeout_ms: i32,
    /// Seconds to wait for replies after sending stops.
    #[arg(long, default_value_t = 10.0)]
    drain_timeout: f64,
    /// Hard bound on any run's sending phase, seconds.
    #[arg(long, default_value_t = 900.0)]
    time_limit: f64,
    /// No progress line on stderr.
    #[arg(long)]
    quiet: bool,
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn configs(args: &Args) -> Result<Vec<RunConfig>, String> {
    if let Some(server) = args.server.iter().find(|s| !s.ip().is_loopback()) {
        return Err(format!("{server} is not a loopback address"));
    }
    let servers_text = args
        .server
        .iter()
        .map(SocketAddr::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let session_counts = if args.sweep.is_empty() {
        vec![args.sessions]
    } else {
        args.sweep.clone()
    };
    let mut out = Vec::new();
    for name in &args.workload {
        let workload = Workload::parse(name)?;
        for &sessions in &session_counts {
            let mut c = RunConfig::new(args.server[0], workload);
            c.servers = args.server.clone();
            c.server_name = args
                .server_name
                .clone()
                .unwrap_or_else(|| servers_text.clone());
            c.sessions = sessions;
            c.outstanding = args.outstanding;
            c.threads = args.threads.min(sessions).max(1);
            c.length = match (args.ops, workload) {
                (Some(ops), _) => RunLength::Ops(ops),
                (None, Workload::Write1M) => RunLength::Ops(workload::WRITE_1M_OPS),
                (None, _) => RunLength::Timed {
                    warmup: secs(args.warmup),
                    duration: secs(args.duration),
                },
            };
            c.rate = args.rate;
            c.value_size = args.value_size;
            c.keys = args.keys;
            c.seed = args.seed;
            c.session_timeout_ms = args.session_timeout_ms;
            c.drain_timeout = secs(args.drain_timeout);
            c.time_limit = secs(args.time_limit);
            c.progress = !args.quiet;
            c.label = workload.name();
            out.push(c);
        }
    }
    Ok(out)
}

fn sweep_svg(reports: &[RunReport]) -> String {
    let mut series: Vec<Series> = Vec::new();
    for r in reports {
        let name = format!("{} {}", r.server, r.label);
        let point = Point {
            throughput: r.throughput,
            p50_us: r.latency.p50_us,
            p99_us: r.latency.p99_us,
            sessions: r.sessions,
        };
        match series.iter_mut().find(|s| s.name == name) {
            Some(s) => s.points.push(point),
            None => series.push(Series {
                name,
                points: vec![point],
            }),
        }
    }
    let outstanding = reports.first().map_or(0, |r| r.outstanding);
    plot::throughput_latency_svg(
        &format!("throughput vs latency, {outstanding} outstanding per session"),
        &series,
    )
}

fn main() -> ExitCode {
    let args = Args::parse();
    let configs = match configs(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fk-loadgen: {e}");
            return ExitCode::FAILURE;
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        // A second Ctrl-C exits at once; the first lets the run close its sessions.
        let _ = signal_hook::flag::register_conditional_shutdown(signal, 1, Arc::clone(&stop));
        let _ = signal_hook::flag::register(signal, Arc::clone(&stop));
    }
    let mut reports = Vec::new();
    let mut failed = false;
    for config in &configs {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            break;
        }
        match driver::run(config, &stop) {
            Ok(report) => {
                if report.had_failures() {
                    eprintln!(
                        "fk-loadgen: {}: {}",
                        report.label,
                        table::errors_cell(&report)
                    );
                }
                reports.push(report);
            }
            Err(e) => {
                eprintln!(
                    "fk-loadgen: {} against {}: {e}",
                    config.label, config.server_name
                );
                failed = true;
            }
        }
    }
    let text = format!(
        "{}{}",
        table::runs_table(&reports),
        table::kinds_table(&reports)
    );
    let json = serde_json::to_string_pretty(&reports).expect("reports serialise");
    match &args.json {
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{text}");
            println!("{json}");
        }
        Some(path) => {
            print!("{text}");
            if let Err(e) = std::fs::write(path, json + "\n") {
                eprintln!("fk-loadgen: writing {}: {e}", path.display());
                failed = true;
            }
        }
        None => print!("{text}"),
    }
    if let Some(path) = &args.svg {
        if let Err(e) = std::fs::write(path, sweep_svg(&reports)) {
            eprintln!("fk-loadgen: writing {}: {e}", path.display());
            failed = true;
        }
    }
    if failed || reports.len() < configs.len() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
