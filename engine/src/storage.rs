//! Start-up recovery and snapshot writing: the engine's side of `wal`.
//!
//! At start-up (blocking, before any executor runs) [`recover`] loads the
//! newest valid snapshot into a [`DataTree`], replays every logged txn after
//! it, and hands back where the log writer continues. On an empty data
//! directory it writes snapshot 0 first, so the log never exists without a
//! snapshot behind it (ZOOKEEPER-2325).
//!
//! While serving, the node starts a fuzzy snapshot now and then: it
//! serialises the tree a chunk at a time between batches, and the driver
//! feeds the chunks to a [`SnapshotThread`], which writes them with blocking
//! std I/O (temp file, fsync, rename, fsync the directory) off the
//! executors and reports each chunk and the outcome back.

use std::path::{Path, PathBuf};
use std::time::Instant;

use node::{SnapshotWritten, StorageFailure};

use thiserror::Error;
use tracing::{info, warn};
use tree::{DataTree, SnapshotError};
use wal::{LogTail, SnapshotInfo, SnapshotWriter, WalError};

use crate::driver::Completion;

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
    /// A standalone server whose log lost records to damage (the marker a
    /// former ensemble member left): it has no peers to recover them from.
    #[error(
        "{dir}/recovering says every log record after zxid 0x{zxid:x} was lost to damage; \
         a standalone server has no peers to recover them from: restore the data, or run it \
         in its ensemble"
    )]
    RecoveringStandalone { dir: String, zxid: i64 },
}

/// What start-up recovery produced.
#[derive(Debug)]
pub struct Recovered {
    pub tree: DataTree,
    /// Where the log writer continues.
    pub tail: LogTail,
    /// Txns replayed on top of the snapshot.
    pub replayed: u64,
    /// The last records replayed (at most [`HISTORY_TXNS_MAX`] and
    /// [`HISTORY_BYTES_MAX`]): what a new leader can DIFF from memory.
    pub history: Vec<node::LogRecord>,
}

/// Most recovered records kept for a leader's DIFF window.
pub const HISTORY_TXNS_MAX: usize = 10_000;
/// The same bound in bytes.
pub const HISTORY_BYTES_MAX: usize = 32 << 20;

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
    // Temp files of snapshots, spares and epoch writes a crash interrupted.
    let removed = wal::remove_temporary_files(data_dir, data_log_dir)?;
    if !removed.is_empty() {
        info!(
            ?removed,
            "removed temporary files left by an interrupted write"
        );
    }
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
    let mut history = std::collections::VecDeque::new();
    let mut history_bytes = 0usize;
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
        history_bytes += record.payload.len();
        history.push_back(node::LogRecord {
            zxid: record.zxid,
            payload: bytes::Bytes::from(record.payload),
        });
        while history.len() > HISTORY_TXNS_MAX || history_bytes > HISTORY_BYTES_MAX {
            let old: node::LogRecord = history.pop_front().expect("not empty");
            history_bytes -= old.payload.len();
        }
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
        history: history.into(),
    })
}

/// Protocol-aware recovery at start-up (blocking, before `recover`), for a
/// server of an ensemble: damage to durable log records is set aside and
/// the log cut before it, behind a durable "recovering" marker (`wal`'s
/// `damage.rs`); a standalone server keeps refusing (`recover` reports the
/// damage, naming the file and the `fk-tools` command that accepts the
/// loss). Returns the marker: the zxid after which records were lost.
pub fn protocol_aware_recovery(
    data_dir: &Path,
    data_log_dir: &Path,
    ensemble: bool,
) -> Result<Option<i64>, StorageError> {
    for dir in [data_dir, data_log_dir] {
        std::fs::create_dir_all(dir).map_err(|source| StorageError::CreateDir {
            dir: dir.display().to_string(),
            source,
        })?;
    }
    if ensemble {
        wal::remove_temporary_files(data_dir, data_log_dir)?;
        if let Some(set_aside) = wal::set_aside_damage_in_dirs(data_dir, data_log_dir)? {
            warn!(
                zxid_good = format!("0x{:x}", set_aside.zxid_good),
                kept = ?set_aside.kept,
                "the log was damaged after its last good record: the damaged segments are kept \
                 aside, and this server recovers the lost records from its peers before it votes"
            );
        }
    }
    let marker = wal::read_recovering(data_dir)?;
    match marker {
        Some(zxid) if !ensemble => Err(StorageError::RecoveringStandalone {
            dir: data_dir.display().to_string(),
            zxid,
        }),
        _ => Ok(marker),
    }
}

/// ZAB's acceptedEpoch and currentEpoch from dataDir. A missing
/// currentEpoch is the epoch of the last zxid (ZooKeeper's rule); a missing
/// acceptedEpoch is currentEpoch.
pub fn read_epochs(data_dir: &Path, zxid_last: i64) -> Result<(i64, i64), StorageError> {
    let current = wal::read_epoch(data_dir, wal::EpochFile::Current)?.unwrap_or(zxid_last >> 32);
    let accepted = wal::read_epoch(data_dir, wal::EpochFile::Accepted)?.unwrap_or(current);
    Ok((accepted.max(current), current))
}

/// Writes a whole snapshot of a quiet tree at once (start-up only).
fn write_snapshot_now(data_dir: &Path, tree: &DataTree) -> Result<SnapshotInfo, WalError> {
    let mut writer = SnapshotWriter::create(data_dir, tree.last_processed_zxid())?;
    writer.write(&tree.snapshot_bytes())?;
    writer.finish()
}

/// What the node is told about a storage error: a full disk apart from
/// every other failure.
pub fn storage_failure(err: &WalError) -> StorageFailure {
    const ENOSPC: i32 = 28;
    const EDQUOT: i32 = 122;
    match err {
        WalError::Io { source, .. } => match source.raw_os_error() {
            Some(ENOSPC | EDQUOT) => StorageFailure::NoSpace,
            _ => StorageFailure::Io(source.kind()),
        },
        _ => StorageFailure::Io(std::io::ErrorKind::Other),
    }
}

/// What goes to the snapshot thread.
#[derive(Debug)]
enum Chunk {
    Bytes(Vec<u8>),
    End,
}

/// What the snapshot thread reports.
#[derive(Debug)]
pub enum SnapshotEvent {
    /// One more chunk is written.
    ChunkWritten,
    /// The snapshot is sealed, or failed.
    Done(Result<SnapshotWritten, StorageFailure>),
}

/// Chunks queued for the snapshot thread: the node keeps at most
/// `SNAPSHOT_CHUNKS_IN_FLIGHT_MAX` in flight, and then the end.
const SNAPSHOT_CHUNKS_QUEUED_MAX: usize = node::SNAPSHOT_CHUNKS_IN_FLIGHT_MAX + 1;

/// A snapshot being written by its own thread.
#[derive(Debug)]
pub struct SnapshotThread {
    chunks: async_channel::Sender<Chunk>,
}

impl SnapshotThread {
    /// Starts the thread; it reports to `completions`.
    pub fn start(
        data_dir: PathBuf,
        zxid: i64,
        completions: async_channel::Sender<Completion>,
    ) -> std::io::Result<SnapshotThread> {
        let (chunks, receiver) = async_channel::bounded(SNAPSHOT_CHUNKS_QUEUED_MAX);
        std::thread::Builder::new()
            .name("fk-snapshot".into())
            .spawn(move || {
                let result = write_chunks(&data_dir, zxid, &receiver, &completions).map(|info| {
                    SnapshotWritten {
                        zxid,
                        file: info.file,
                        bytes: info.body_bytes,
                    }
                });
                let _ =
                    completions.send_blocking(Completion::Snapshot(SnapshotEvent::Done(result)));
            })?;
        Ok(SnapshotThread { chunks })
    }

    /// Queues a chunk. The node never has more in flight than the queue holds.
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
}

fn write_chunks(
    data_dir: &Path,
    zxid: i64,
    chunks: &async_channel::Receiver<Chunk>,
    completions: &async_channel::Sender<Completion>,
) -> Result<SnapshotInfo, StorageFailure> {
    let failed = |err: WalError| {
        warn!(zxid = format!("0x{zxid:x}"), %err, "snapshot failed");
        storage_failure(&err)
    };
    let mut writer = SnapshotWriter::create(data_dir, zxid).map_err(failed)?;
    loop {
        match chunks.recv_blocking() {
            Ok(Chunk::Bytes(bytes)) => {
                writer.write(&bytes).map_err(failed)?;
                let written = Completion::Snapshot(SnapshotEvent::ChunkWritten);
                let _ = completions.send_blocking(written);
            }
            Ok(Chunk::End) => return writer.finish().map_err(failed),
            Err(_) => {
                warn!(
                    zxid = format!("0x{zxid:x}"),
                    "snapshot abandoned before its end: the server is stopping"
                );
                return Err(StorageFailure::Gone);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recovering_marker_starts_an_ensemble_member_abstaining_and_stops_a_standalone_server() {
        // The marker a damaged ensemble member left: in an ensemble it is
        // handed to the node (which abstains); standalone, the server has no
        // peers to recover from and refuses to start, naming the zxid.
        let data = tempfile::tempdir().unwrap();
        assert_eq!(
            protocol_aware_recovery(data.path(), data.path(), true).unwrap(),
            None
        );
        wal::write_recovering_in(&wal::StdDir::new(data.path()), 0x1_0000_0007).unwrap();
        assert_eq!(
            protocol_aware_recovery(data.path(), data.path(), true).unwrap(),
            Some(0x1_0000_0007)
        );
        match protocol_aware_recovery(data.path(), data.path(), false) {
            Err(
                err @ StorageError::RecoveringStandalone {
                    zxid: 0x1_0000_0007,
                    ..
                },
            ) => {
                assert!(err.to_string().contains("0x100000007"), "{err}")
            }
            other => panic!("{other:?}"),
        }
        wal::clear_recovering(data.path()).unwrap();
        assert_eq!(
            protocol_aware_recovery(data.path(), data.path(), false).unwrap(),
            None
        );
    }
}
