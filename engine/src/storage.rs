//! Start-up recovery and snapshot writing: the engine's side of `wal`.
//!
//! At start-up (blocking, before any executor runs) [`recover`] loads the
//! newest valid snapshot into a [`DataTree`], replays every logged txn after
//! it, and hands back where the log writer continues. On an empty data
//! directory it writes snapshot 0 first, so the log never exists without a
//! snapshot behind it (ZOOKEEPER-2325).
//!
//! While serving, the sequencer starts a fuzzy snapshot now and then (see
//! [`SnapshotSchedule`]): it serialises the tree a chunk at a time between
//! batches and feeds the chunks to a [`SnapshotThread`], which writes them
//! with blocking std I/O (temp file, fsync, rename, fsync the directory) off
//! the executors.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use thiserror::Error;
use tracing::{info, warn};
use tree::{DataTree, SnapshotError};
use wal::{LogTail, SnapshotInfo, SnapshotWriter, WalError};

#[derive(Debug, Error)]
pub enum StorageError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("snapshot {file} does not load: {source}")]
    Snapshot { file: String, source: SnapshotError },
    #[error("log record zxid 0x{zxid:x} in {dir} does not decode: {reason}")]
    Record {
        dir: String,
        zxid: i64,
        reason: String,
    },
    #[error("cannot create {dir}: {source}")]
    CreateDir { dir: String, source: std::io::Error },
}

/// What start-up recovery produced.
#[derive(Debug)]
pub struct Recovered {
    pub tree: DataTree,
    /// Where the log writer continues.
    pub tail: LogTail,
    /// Txns replayed on top of the snapshot.
    pub replayed: u64,
}

/// Loads snapshot + log from `data_dir` / `data_log_dir` (creating them on a
/// fresh start). Blocking.
pub fn recover(data_dir: &Path, data_log_dir: &Path) -> Result<Recovered, StorageError> {
    for dir in [data_dir, data_log_dir] {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            dir: dir.display().to_string(),
            source,
        })?;
    }
    let started = Instant::now();
    let recovery = wal::recover(data_dir, data_log_dir)?;
    let mut tree = match &recovery.snapshot {
        Some(snapshot) => {
            let (_, body) = wal::read_snapshot(&data_dir.join(&snapshot.name))?;
            DataTree::from_snapshot(&body).map_err(|source| StorageError::Snapshot {
                file: snapshot.file.clone(),
                source,
            })?
        }
        None => {
            let tree = DataTree::new();
            let written = write_snapshot_now(data_dir, &tree)?;
            info!(file = %written.file, "fresh data directory: wrote the initial snapshot");
            tree
        }
    };
    let mut log = recovery.log;
    let mut replayed = 0u64;
    for record in log.by_ref() {
        let record = record?;
        let (header, txn) =
            tree::decode_record(&record.payload).map_err(|err| StorageError::Record {
                dir: data_log_dir.display().to_string(),
                zxid: record.zxid,
                reason: err.to_string(),
            })?;
        tree.apply(&header, &txn);
        replayed += 1;
    }
    let tail = log.finish()?;
    info!(
        snapshot = recovery
            .snapshot
            .as_ref()
            .map_or("none".to_string(), |s| s.file.clone()),
        replayed,
        zxid = format!("0x{:x}", tree.last_processed_zxid()),
        digest = tree.digest(),
        nodes = tree.node_count(),
        sessions = tree.sessions().count(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "recovered the data tree"
    );
    Ok(Recovered {
        tree,
        tail,
        replayed,
    })
}

/// Writes a whole snapshot of a quiet tree at once (start-up only).
fn write_snapshot_now(data_dir: &Path, tree: &DataTree) -> Result<SnapshotInfo, WalError> {
    let mut writer = SnapshotWriter::create(data_dir, tree.last_processed_zxid())?;
    writer.write(&tree.snapshot_bytes())?;
    writer.finish()
}

/// ZooKeeper's snapshot trigger: after each logged txn, snapshot when
/// `txns > snapCount/2 + roll` with `roll` uniform in `[0, snapCount/2)` and
/// drawn again after each snapshot (so an ensemble's servers do not all
/// snapshot at once), or when the log bytes since the last snapshot pass
/// `snapSizeLimitInKb`.
#[derive(Debug)]
pub struct SnapshotSchedule {
    snap_count: u64,
    size_limit_bytes: u64,
    roll: u64,
    txns: u64,
    bytes: u64,
}

impl SnapshotSchedule {
    /// `random` is a source of uniform u64s (the schedule reads no global RNG).
    pub fn new(snap_count: u64, size_limit_kb: u64, random: u64) -> SnapshotSchedule {
        let snap_count = snap_count.max(2);
        SnapshotSchedule {
            snap_count,
            size_limit_bytes: size_limit_kb.saturating_mul(1024),
            roll: random % (snap_count / 2),
            txns: 0,
            bytes: 0,
        }
    }

    /// Counts logged txns; true when a snapshot is due.
    pub fn logged(&mut self, txns: u64, bytes: u64) -> bool {
        self.txns += txns;
        self.bytes += bytes;
        self.txns > self.snap_count / 2 + self.roll
            || (self.size_limit_bytes > 0 && self.bytes > self.size_limit_bytes)
    }

    /// A snapshot started: count again from zero with a new roll.
    pub fn restart(&mut self, random: u64) {
        self.txns = 0;
        self.bytes = 0;
        self.roll = random % (self.snap_count / 2);
    }
}

/// What goes to the snapshot thread.
#[derive(Debug)]
enum Chunk {
    Bytes(Vec<u8>),
    End,
}

/// Chunks queued for the snapshot thread before the sequencer waits for it.
const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = 8;

/// A snapshot being written by its own thread.
#[derive(Debug)]
pub struct SnapshotThread {
    chunks: async_channel::Sender<Chunk>,
    done: async_channel::Receiver<Result<SnapshotInfo, WalError>>,
    started: Instant,
    zxid: i64,
}

impl SnapshotThread {
    /// Starts the thread; the first chunk should be the snapshot header.
    pub fn start(data_dir: PathBuf, zxid: i64) -> std::io::Result<SnapshotThread> {
        let (chunks, receiver) = async_channel::bounded(SNAPSHOT_CHUNKS_QUEUED_MAX);
        let (done_sender, done) = async_channel::bounded(1);
        std::thread::Builder::new()
            .name("fk-snapshot".into())
            .spawn(move || {
                let result = write_chunks(&data_dir, zxid, &receiver);
                let _ = done_sender.send_blocking(result);
            })?;
        Ok(SnapshotThread {
            chunks,
            done,
            started: Instant::now(),
            zxid,
        })
    }

    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    /// Whether another chunk can be queued without waiting.
    pub fn has_room(&self) -> bool {
        !self.chunks.is_full()
    }

    /// Queues a chunk; the caller checked `has_room` (a full queue is a bug).
    pub fn push(&self, bytes: Vec<u8>) {
        let sent = self.chunks.try_send(Chunk::Bytes(bytes));
        assert!(
            sent.is_ok() || self.chunks.is_closed(),
            "snapshot chunk queue overflow"
        );
    }

    /// The last chunk was pushed: the thread finishes the file.
    pub fn end(&self) {
        let _ = self.chunks.try_send(Chunk::End);
        self.chunks.close();
    }

    /// The outcome, once the thread is done.
    pub fn poll_done(&self) -> Option<(Result<SnapshotInfo, WalError>, Duration)> {
        self.done
            .try_recv()
            .ok()
            .map(|result| (result, self.started.elapsed()))
    }
}

fn write_chunks(
    data_dir: &Path,
    zxid: i64,
    chunks: &async_channel::Receiver<Chunk>,
) -> Result<SnapshotInfo, WalError> {
    let mut writer = SnapshotWriter::create(data_dir, zxid)?;
    loop {
        match chunks.recv_blocking() {
            Ok(Chunk::Bytes(bytes)) => writer.write(&bytes)?,
            Ok(Chunk::End) => return writer.finish(),
            Err(_) => {
                warn!(
                    zxid = format!("0x{zxid:x}"),
                    "snapshot abandoned before its end"
                );
                return Err(WalError::InvalidConfig("snapshot abandoned".into()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_fires_between_half_and_all_of_snap_count() {
        for random in [0u64, 1, 49_999, 123_456_789] {
            let mut schedule = SnapshotSchedule::new(100_000, 0, random);
            let mut txns = 0u64;
            while !schedule.logged(1, 100) {
                txns += 1;
            }
            assert!((50_000..100_000).contains(&txns), "fired after {txns}");
            schedule.restart(random + 1);
            assert!(!schedule.logged(1, 100));
        }
    }

    #[test]
    fn schedule_fires_on_log_bytes() {
        let mut schedule = SnapshotSchedule::new(100_000, 4, 0);
        assert!(!schedule.logged(1, 4096));
        assert!(schedule.logged(1, 1));
    }
}
