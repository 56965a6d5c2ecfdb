//! append + sync throughput of the log writer, on a real directory through
//! the production glommio backend (O_DIRECT DmaFile, fdatasync), for batch
//! sizes 1/10/100/1000 and record sizes 100 B/1 KiB/4 KiB. Criterion reports
//! records/s (throughput in elements).
//!
//! `cargo bench -p wal --bench append_sync` (set WAL_BENCH_DIR to put the
//! files on the disk under test; default: the target directory).
//!
//! Criterion drives the iterations; each sample runs inside one glommio
//! `LocalExecutor` and times only append + sync with its own clock. Spare
//! segments are prepared outside the timed region, as the engine prepares
//! them ahead of need.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use glommio::{LocalExecutor, LocalExecutorBuilder, Placement};
use wal::{GlommioFs, LogTail, LogWriter, WriterConfig};

const BATCH_SIZES: [usize; 4] = [1, 10, 100, 1000];
const RECORD_SIZES: [usize; 3] = [100, 1024, 4096];

fn bench_dir() -> std::path::PathBuf {
    let root = std::env::var_os("WAL_BENCH_DIR")
        .or_else(|| std::env::var_os("CARGO_TARGET_TMPDIR"))
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Runs `iters` batches on a fresh log directory; returns the time spent in
/// append + sync.
fn run_batches(
    executor: &LocalExecutor,
    iters: u64,
    batch: usize,
    record_bytes: usize,
) -> Duration {
    let dir = tempfile::tempdir_in(bench_dir()).unwrap();
    let path = dir.path().to_path_buf();
    executor.run(async move {
        let config = WriterConfig {
            salt_seed: 1,
            ..WriterConfig::default()
        };
        let tail = LogTail {
            zxid_last: 0,
            segment: None,
        };
        let mut writer = LogWriter::open(GlommioFs::new(&path), config, tail)
            .await
            .unwrap();
        writer.ensure_spare().await.unwrap();
        let payload = vec![0x5au8; record_bytes];
        let mut zxid = 0i64;
        let mut timed = Duration::ZERO;
        let mut segment = None;
        for _ in 0..iters {
            let start = Instant::now();
            for _ in 0..batch {
                zxid += 1;
                writer.append(zxid, &payload).unwrap();
            }
            writer.sync().await.unwrap();
            timed += start.elapsed();
            if writer.segment_name() != segment.as_deref() {
                segment = writer.segment_name().map(str::to_string);
                writer.ensure_spare().await.unwrap();
            }
        }
        timed
    })
}

fn append_sync(c: &mut Criterion) {
    let executor = LocalExecutorBuilder::new(Placement::Unbound)
        .io_memory(512 * 1024)
        .make()
        .unwrap();
    let mut group = c.benchmark_group("append_sync");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for record_bytes in RECORD_SIZES {
        for batch in BATCH_SIZES {
            group.throughput(Throughput::Elements(batch as u64));
            let id = BenchmarkId::new(format!("{record_bytes}B"), batch);
            group.bench_function(id, |b| {
                b.iter_custom(|iters| run_batches(&executor, iters, batch, record_bytes));
            });
        }
    }
    group.finish();
}

criterion_group!(benches, append_sync);
criterion_main!(benches);
