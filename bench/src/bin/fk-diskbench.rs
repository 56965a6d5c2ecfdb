//! fk-diskbench: what the log disk can do, measured with the server's own
//! log writer.
//!
//! `cargo run --release -p bench --bin fk-diskbench -- --dir /path [--seconds N] [--json]`
//!
//! 1. fdatasync latency: 4 KiB O_DIRECT writes into a zero-filled,
//!    preallocated file, each followed by one fdatasync (glommio DmaFile, as
//!    the server writes). HdrHistogram of the fdatasync alone.
//! 2. Group commit: the `wal` log writer (glommio backend, 64 MiB segments)
//!    appends batches of 1/10/100/1000 records and syncs each batch; records/s
//!    and the latency of each sync. By default each sync is a write and an
//!    fdatasync; `--dsync` writes O_DSYNC instead, as the server does with
//!    forceSync on.
//!
//! Phase 1 gets 40% of `--seconds`, phase 2 the rest split over the batch
//! sizes. Everything is written under `<dir>/fk-diskbench-<pid>` and removed
//! at the end. The clock is the bench's own (std Instant); `wal` reads none.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use clap::Parser;
use glommio::io::{DmaFile, OpenOptions};
use glommio::{LocalExecutorBuilder, Placement};
use hdrhistogram::Histogram;
use serde::Serialize;
use wal::{GlommioFs, LogTail, LogWriter, WriterConfig};

const BATCH_SIZES: [usize; 4] = [1, 10, 100, 1000];
/// The file phase 1 writes into; writes wrap around inside it.
const FSYNC_FILE_BYTES: u64 = 64 << 20;
const FSYNC_WRITE_BYTES: usize = 4096;
/// Glommio's registered I/O memory (the memlock limit here is small).
const IO_MEMORY_BYTES: usize = 512 * 1024;

#[derive(Debug, Parser)]
#[command(
    name = "fk-diskbench",
    about = "fdatasync latency and group-commit throughput of a disk"
)]
struct Args {
    /// A directory on the disk to measure (e.g. the dataLogDir).
    #[arg(long)]
    dir: PathBuf,
    /// Total run time in seconds (bounded to 1..=600).
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Payload bytes of each record in phase 2 (a small txn).
    #[arg(long, default_value_t = 100)]
    record_bytes: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Phase 2 with O_DSYNC writes instead of write + fdatasync (the server
    /// writes O_DSYNC with forceSync on; on this project's virtio test disk a
    /// tight loop of O_DSYNC batches showed a 4 ms mode the server under
    /// client load did not, so both are worth a look).
    #[arg(long)]
    dsync: bool,
}

#[derive(Debug, Serialize)]
struct Latency {
    samples: u64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

impl Latency {
    fn from(histogram: &Histogram<u64>) -> Latency {
        let ms = |us: u64| us as f64 / 1000.0;
        Latency {
            samples: histogram.len(),
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

#[derive(Debug, Serialize)]
struct GroupCommit {
    batch: usize,
    record_bytes: usize,
    records: u64,
    records_per_second: f64,
    sync_latency: Latency,
}

#[derive(Debug, Serialize)]
struct Report {
    dir: String,
    seconds: u64,
    fdatasync_4k: Latency,
    group_commit: Vec<GroupCommit>,
    summary: String,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Phase 1: 4 KiB write + fdatasync, timing the fdatasync, for `budget`.
async fn fdatasync_latency(dir: &Path, budget: Duration) -> Latency {
    let path = dir.join("fsync-probe");
    let file: DmaFile = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .dma_open(&path)
        .await
        .expect("create probe file");
    // Zero-fill first, so the timed syncs flush data only, as the log does.
    let chunk = 1 << 20;
    for offset in (0..FSYNC_FILE_BYTES).step_by(chunk) {
        let buffer = file.alloc_dma_buffer(chunk);
        file.write_at(buffer, offset).await.expect("zero-fill");
    }
    file.fdatasync().await.expect("fdatasync");
    let mut latencies = histogram();
    let start = Instant::now();
    let mut offset = 0u64;
    while start.elapsed() < budget {
        let mut buffer = file.alloc_dma_buffer(FSYNC_WRITE_BYTES);
        buffer.as_bytes_mut().fill((offset >> 12) as u8);
        file.write_at(buffer, offset).await.expect("write");
        let synced = Instant::now();
        file.fdatasync().await.expect("fdatasync");
        latencies.saturating_record(synced.elapsed().as_micros() as u64);
        offset = (offset + FSYNC_WRITE_BYTES as u64) % FSYNC_FILE_BYTES;
    }
    file.close().await.expect("close");
    std::fs::remove_file(&path).expect("remove probe file");
    Latency::from(&latencies)
}

/// Phase 2: the wal log writer with batches of `batch` records, for `budget`.
async fn group_commit(
    dir: &Path,
    batch: usize,
    record_bytes: usize,
    budget: Duration,
    dsync: bool,
) -> GroupCommit {
    let log_dir = dir.join(format!("log-batch-{batch}"));
    std::fs::create_dir(&log_dir).expect("create log dir");
    let config = WriterConfig {
        salt_seed: batch as u64,
        ..WriterConfig::default()
    };
    let tail = LogTail {
        zxid_last: 0,
        segment: None,
    };
    let fs = if dsync {
        GlommioFs::with_dsync_writes(&log_dir)
    } else {
        GlommioFs::new(&log_dir)
    };
    let mut writer = LogWriter::open(fs, config, tail)
        .await
        .expect("open log writer");
    writer.ensure_spare().await.expect("prepare a segment");
    let payload = vec![0xa5u8; record_bytes];
    let mut latencies = histogram();
    let mut zxid = 0i64;
    let mut segment = None;
    let start = Instant::now();
    while start.elapsed() < budget {
        let synced = Instant::now();
        for _ in 0..batch {
            zxid += 1;
            writer.append(zxid, &payload).expect("append");
        }
        writer.sync().await.expect("sync");
        latencies.saturating_record(synced.elapsed().as_micros() as u64);
        if writer.segment_name() != segment.as_deref() {
            // As the engine would: prepare the next segment ahead of need.
            segment = writer.segment_name().map(str::to_string);
            writer.ensure_spare().await.expect("prepare a segment");
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    drop(writer);
    std::fs::remove_dir_all(&log_dir).expect("remove log dir");
    GroupCommit {
        batch,
        record_bytes,
        records: zxid as u64,
        records_per_second: zxid as f64 / elapsed,
        sync_latency: Latency::from(&latencies),
    }
}

fn summary(report: &Report) -> String {
    let best = report
        .group_commit
        .iter()
        .max_by(|a, b| a.records_per_second.total_cmp(&b.records_per_second))
        .expect("at least one batch size");
    format!(
        "this disk sustains about {:.0} writes/s at p99 {:.2} ms with batches of {}; a single fsync takes p50 {:.2} ms",
        best.records_per_second, best.sync_latency.p99_ms, best.batch, report.fdatasync_4k.p50_ms
    )
}

fn render(report: &Report) -> String {
    let line = |name: &str, l: &Latency| {
        format!(
            "{name:<28} n={:<8} p50 {:>8.3}  p90 {:>8.3}  p99 {:>8.3}  p99.9 {:>8.3}  max {:>8.3} ms\n",
            l.samples, l.p50_ms, l.p90_ms, l.p99_ms, l.p999_ms, l.max_ms
        )
    };
    let mut out = format!("fk-diskbench on {} ({} s)\n", report.dir, report.seconds);
    out += &line("fdatasync after 4 KiB write", &report.fdatasync_4k);
    for result in &report.group_commit {
        out += &format!(
            "batch {:>4} x {} B: {:>10.0} records/s\n",
            result.batch, result.record_bytes, result.records_per_second
        );
        out += &line("  sync (append+write+fsync)", &result.sync_latency);
    }
    out += &report.summary;
    out.push('\n');
    out
}

fn main() {
    let args = Args::parse();
    let seconds = args.seconds.clamp(1, 600);
    let work = args
        .dir
        .join(format!("fk-diskbench-{}", std::process::id()));
    std::fs::create_dir_all(&work).expect("create the work directory");
    let fsync_budget = Duration::from_secs_f64(seconds as f64 * 0.4);
    let batch_budget = Duration::from_secs_f64(seconds as f64 * 0.6 / BATCH_SIZES.len() as f64);
    let record_bytes = args.record_bytes.clamp(1, 64 * 1024);
    let work_in = work.clone();
    let dsync = args.dsync;
    let (fdatasync_4k, group) = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(IO_MEMORY_BYTES)
        .name("fk-diskbench")
        .spawn(move || async move {
            let fsync = fdatasync_latency(&work_in, fsync_budget).await;
            let mut group = Vec::new();
            for batch in BATCH_SIZES {
                group.push(group_commit(&work_in, batch, record_bytes, batch_budget, dsync).await);
            }
            (fsync, group)
        })
        .expect("start the executor")
        .join()
        .expect("the benchmark ran");
    std::fs::remove_dir_all(&work).expect("remove the work directory");
    let mut report = Report {
        dir: args.dir.display().to_string(),
        seconds,
        fdatasync_4k,
        group_commit: group,
        summary: String::new(),
    };
    report.summary = summary(&report);
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        print!("{}", render(&report));
    }
}
