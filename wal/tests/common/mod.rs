//! Helpers shared by the wal integration tests.
#![allow(dead_code)]

use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use wal::{
    recover_from, LogFs, LogRecord, LogTail, LogWriter, ReadFs, SnapshotWriter, StdDir, WalError,
    WriterConfig,
};

/// Runs a future to completion on this thread (MemFs and StdFs never wait).
pub fn run<T>(future: impl std::future::Future<Output = T>) -> T {
    futures_lite::future::block_on(future)
}

/// The payload of record `zxid` written by run `run`: recognisable, of a
/// length that varies with the zxid, so stale bytes from another run or
/// another position never pass for it.
pub fn payload(run: u8, zxid: i64, base_len: usize) -> Vec<u8> {
    let len = base_len + (zxid % 7) as usize;
    let mut bytes = vec![run; len.max(9)];
    bytes[1..9].copy_from_slice(&zxid.to_le_bytes());
    for (i, b) in bytes.iter_mut().enumerate().skip(9) {
        *b = (zxid as usize).wrapping_mul(31).wrapping_add(i) as u8 ^ run;
    }
    bytes
}

/// Asserts that `records` are exactly run `run_id`'s records `zxids`, in
/// order, with the payloads [`payload`] gives them.
pub fn check_run(
    records: &[wal::LogRecord],
    run_id: u8,
    zxids: std::ops::RangeInclusive<i64>,
    base_len: usize,
) {
    let expected: Vec<(i64, Vec<u8>)> = zxids.map(|z| (z, payload(run_id, z, base_len))).collect();
    let got: Vec<(i64, Vec<u8>)> = records
        .iter()
        .map(|r| (r.zxid, r.payload.clone()))
        .collect();
    assert_eq!(got, expected);
}

/// Small segments (4 KiB header + 12 KiB of records) so runs cross many.
pub fn small_config(seed: u64) -> WriterConfig {
    WriterConfig {
        segment_bytes: 16 * 1024,
        salt_seed: seed,
        ..WriterConfig::default()
    }
}

/// A snapshot directory holding snapshot zxid `zxid`.
pub fn snapshot_dir(zxid: i64) -> tempfile::TempDir {
    let dir = tempfile::tempdir_in(test_root()).unwrap();
    write_snapshot(dir.path(), zxid, b"tree");
    dir
}

pub fn write_snapshot(dir: &Path, zxid: i64, body: &[u8]) {
    let mut writer = SnapshotWriter::create(dir, zxid).unwrap();
    writer.write(body).unwrap();
    writer.finish().unwrap();
}

/// Where test directories go: under the workspace's target directory when
/// known (a file system with O_DIRECT), else the system temp dir.
pub fn test_root() -> std::path::PathBuf {
    let root = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(Into::into)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&root).unwrap();
    root
}

/// Recovers and collects every record, and the tail.
pub fn recover_all<R: ReadFs>(snaps: &Path, log: R) -> Result<(Vec<LogRecord>, LogTail), WalError> {
    let recovery = recover_from(&StdDir::new(snaps), log)?;
    let mut log = recovery.log;
    let mut records = Vec::new();
    for record in log.by_ref() {
        records.push(record?);
    }
    Ok((records, log.finish()?))
}

/// Opens a writer over `fs` where recovery says.
pub fn open_writer<F: LogFs>(fs: F, config: WriterConfig, tail: LogTail) -> LogWriter<F> {
    run(LogWriter::open(fs, config, tail)).unwrap()
}

/// Appends records `zxids` from run `run` and syncs once.
pub fn append_and_sync<F: LogFs>(
    writer: &mut LogWriter<F>,
    run_id: u8,
    zxids: std::ops::RangeInclusive<i64>,
    base_len: usize,
) {
    for zxid in zxids {
        writer
            .append(zxid, &payload(run_id, zxid, base_len))
            .unwrap();
    }
    run(writer.sync()).unwrap();
    writer.check_invariants();
}

/// Counts WARN events emitted while `f` runs on this thread.
pub fn count_warnings<T>(f: impl FnOnce() -> T) -> (T, usize) {
    #[derive(Clone)]
    struct CountWarnings(Arc<AtomicUsize>);
    impl<S: Subscriber> Layer<S> for CountWarnings {
        fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
            if *event.metadata().level() == Level::WARN {
                self.0.fetch_add(1, Ordering::SeqCst);
            }
        }
    }
    let counter = Arc::new(AtomicUsize::new(0));
    let subscriber = tracing_subscriber::registry().with(CountWarnings(counter.clone()));
    let result = tracing::subscriber::with_default(subscriber, f);
    (result, counter.load(Ordering::SeqCst))
}
