//! The one error type of the `wal` crate (STYLE rule 1: operating errors are
//! `Result`s with structured fields; programmer errors are assertions).

use std::io;

/// Everything that can go wrong while storing or recovering data.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    /// An I/O call failed. `path` names the file or directory involved.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// The file system is full (ENOSPC) or the quota is used up (EDQUOT).
    /// Nothing was written to the log by the call that returned it (space for
    /// records is preallocated; it runs out when a segment is prepared), so
    /// the log stays usable: refuse writes, keep serving reads, and try again
    /// once space is freed. Temp files of the failed call are removed.
    #[error("no space left on the device: {op} {path}: {source}")]
    NoSpace {
        op: &'static str,
        path: String,
        #[source]
        source: io::Error,
    },
    /// Log bytes that were durable are damaged (see the format doc in
    /// `format.rs` for how this is told from a torn, unacknowledged write):
    /// cutting here could lose acknowledged writes, so recovery refuses.
    /// `accept_loss`, when recovery knows it, is the command that cuts the
    /// log before the damage, accepting the loss of what follows.
    #[error("log corrupt in {file} at byte {offset}: {reason}{}", accept_loss_hint(.accept_loss))]
    Corrupt {
        file: String,
        offset: u64,
        reason: String,
        accept_loss: Option<String>,
    },
    /// Zxids in the log do not increase, or a segment is missing.
    #[error("log gap in {file}: {reason}{}", accept_loss_hint(.accept_loss))]
    Gap {
        file: String,
        reason: String,
        accept_loss: Option<String>,
    },
    /// The records asked for are not (or no longer) all in the log: purged,
    /// cut, or never written. Replication answers with a snapshot instead.
    #[error("log records after {zxid_after:#x} up to {zxid_to:#x} are not all in {dir}: {reason}")]
    NotInLog {
        dir: String,
        zxid_after: i64,
        zxid_to: i64,
        reason: String,
    },
    /// Log segments exist but no snapshot does (ZOOKEEPER-2325): replaying the
    /// log onto an empty tree would silently lose whatever came before it.
    #[error("log segments exist in {log_dir} but there is no snapshot in {snap_dir}")]
    LogWithoutSnapshot { snap_dir: String, log_dir: String },
    /// Snapshots exist, but every one of them is damaged.
    #[error("no valid snapshot in {snap_dir} ({count} damaged)")]
    NoValidSnapshot { snap_dir: String, count: usize },
    /// The protocol-aware recovery marker (`recovering`) exists but does
    /// not hold a zxid.
    #[error("recovery marker {file} is damaged: {reason}")]
    MarkerCorrupt { file: String, reason: String },
    /// A snapshot file failed verification.
    #[error("snapshot {file} is damaged: {reason}")]
    SnapshotCorrupt { file: String, reason: String },
    /// An epoch file exists but does not hold a valid epoch.
    #[error("epoch file {file} is damaged: {reason}")]
    EpochCorrupt { file: String, reason: String },
    /// The current batch cannot take this record; `sync()` first.
    #[error("batch full ({records} records, {bytes} bytes)")]
    BatchFull { records: usize, bytes: usize },
    /// The record is larger than any segment or batch can hold.
    #[error("record of {bytes} bytes exceeds the maximum of {bytes_max}")]
    RecordTooLarge { bytes: usize, bytes_max: usize },
    /// An earlier write or fsync failed; the writer refuses all further work
    /// (STYLE rule 2: a failed fsync is never retried).
    #[error("log writer stopped after an earlier failure: {first_error}")]
    WriterFailed { first_error: String },
    /// A truncation would leave no snapshot at or below its cut (the log
    /// would have nothing under it, ZOOKEEPER-2325); nothing was removed.
    #[error("no snapshot at or below zxid {zxid:#x} in {snap_dir}: a truncation there needs a snapshot from the leader")]
    NoSnapshotBelow { snap_dir: String, zxid: i64 },
    /// An operation this file's format cannot support.
    #[error("{file}: {reason}")]
    Unsupported { file: String, reason: String },
    /// A configuration value is out of range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
}

fn accept_loss_hint(command: &Option<String>) -> String {
    match command {
        Some(command) => format!(
            "; to start without the damaged record and every record after it \
             (losing them), run: {command}"
        ),
        None => String::new(),
    }
}

/// errno values that mean "the disk is full" (Linux).
const ENOSPC: i32 = 28;
const EDQUOT: i32 = 122;

impl WalError {
    /// An I/O error; a full disk becomes [`WalError::NoSpace`].
    pub(crate) fn io(op: &'static str, path: impl std::fmt::Display, source: io::Error) -> Self {
        let path = path.to_string();
        if is_no_space(&source) {
            WalError::NoSpace { op, path, source }
        } else {
            WalError::Io { op, path, source }
        }
    }

    /// Whether this is a full disk (the caller may wait for space and retry).
    pub fn is_no_space(&self) -> bool {
        matches!(self, WalError::NoSpace { .. })
    }
}

/// Whether an I/O error says the disk (or the quota) is full.
pub fn is_no_space(error: &io::Error) -> bool {
    error.kind() == io::ErrorKind::StorageFull
        || matches!(error.raw_os_error(), Some(ENOSPC | EDQUOT))
}
