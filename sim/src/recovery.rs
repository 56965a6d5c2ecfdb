//! Recovering a server from its disk.
//!
//! [`recover`] is `engine/src/storage.rs`'s recovery on these directories:
//! temp files an interrupted write left go first, then the newest valid
//! snapshot, every logged txn after it, and where the writer continues; on
//! an empty disk, snapshot 0 is written first (ZOOKEEPER-2325). The epoch
//! files are read as the engine's `read_epochs` reads them, and the last
//! replayed records kept as the engine keeps them for a leader's DIFF.

use std::collections::VecDeque;
use std::io::{self, Read};

use node::LogRecord;
use thiserror::Error;
use tree::{DataTree, SnapshotError};
use wal::{LogTail, MemFs, ReadAt, ReadFs, SnapshotWriter, WalError, WriteFs};

/// Most recovered records kept for a leader's DIFF window (the engine's
/// `storage::HISTORY_TXNS_MAX` and `HISTORY_BYTES_MAX`).
pub const HISTORY_TXNS_MAX: usize = 10_000;
pub const HISTORY_BYTES_MAX: usize = 32 << 20;

#[derive(Debug, Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("snapshot {file} does not load: {source}")]
    Snapshot { file: String, source: SnapshotError },
    #[error("snapshot {file} does not read: {source}")]
    SnapshotRead { file: String, source: io::Error },
    #[error("log record zxid 0x{zxid:x} does not decode: {reason}")]
    Record { zxid: i64, reason: String },
}

/// What kind of txn a log record holds, as far as matching it to the
/// client request that caused it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxnKind {
    CreateSession,
    CloseSession,
    /// Any other txn (a write, or a failed multi's error txn).
    Request,
    /// A request refused as a whole, answered in order through the log
    /// (an ensemble's leader refuses a forwarded write so: SESSIONEXPIRED,
    /// a bad request...). It changes nothing.
    Refused,
}

/// A change a txn made to the tree, as watches see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Created(String),
    Deleted(String),
    DataChanged(String),
}

/// One txn found in the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub zxid: i64,
    pub session: i64,
    pub cxid: i32,
    pub kind: TxnKind,
    /// What it changed, in order.
    pub changes: Vec<Change>,
}

impl Logged {
    /// What the checkers need of a decoded txn.
    pub fn of(header: &tree::TxnHeader, txn: &tree::Txn) -> Logged {
        let mut changes = Vec::new();
        changes_of(txn, &mut changes);
        let kind = match txn {
            tree::Txn::CreateSession { .. } => TxnKind::CreateSession,
            tree::Txn::CloseSession { .. } => TxnKind::CloseSession,
            tree::Txn::Refused { .. } => TxnKind::Refused,
            _ => TxnKind::Request,
        };
        Logged {
            zxid: header.zxid,
            session: header.session_id,
            cxid: header.cxid,
            kind,
            changes,
        }
    }
}

/// The changes a txn makes (a multi's, one after another).
fn changes_of(txn: &tree::Txn, changes: &mut Vec<Change>) {
    match txn {
        tree::Txn::Create { path, .. } => changes.push(Change::Created(path.clone())),
        tree::Txn::Delete { path } => changes.push(Change::Deleted(path.clone())),
        tree::Txn::SetData { path, .. } => changes.push(Change::DataChanged(path.clone())),
        tree::Txn::CloseSession { paths } => {
            changes.extend(paths.iter().cloned().map(Change::Deleted))
        }
        tree::Txn::Multi(txns) => txns.iter().for_each(|t| changes_of(t, changes)),
        tree::Txn::CreateSession { .. }
        | tree::Txn::SetAcl { .. }
        | tree::Txn::Check { .. }
        | tree::Txn::Failed { .. }
        | tree::Txn::Refused { .. } => {}
    }
}

/// What recovery produced.
#[derive(Debug)]
pub struct Recovered {
    pub tree: DataTree,
    pub tail: LogTail,
    /// The snapshot loaded (`None`: a fresh disk, snapshot 0 just written).
    pub snapshot_zxid: Option<i64>,
    /// Every txn replayed from the log, in order.
    pub replayed: Vec<Logged>,
    /// How many of them were multis.
    pub replayed_multis: usize,
    /// The last records replayed (at most [`HISTORY_TXNS_MAX`] and
    /// [`HISTORY_BYTES_MAX`]), for the node.
    pub history: Vec<LogRecord>,
    /// ZAB's acceptedEpoch and currentEpoch, from the epoch files.
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// wal's "recovering" marker: the log lost records after this zxid to
    /// damage (protocol-aware recovery; see [`recover_member`]).
    pub recovering: Option<i64>,
}

impl Recovered {
    /// What the node is started with.
    pub fn into_node_state(self) -> node::Recovered {
        node::Recovered {
            tree: self.tree,
            history: self.history,
            accepted_epoch: self.accepted_epoch,
            current_epoch: self.current_epoch,
            recovering: self.recovering,
        }
    }
}

/// Recovers a server from its data directory (snapshots, epoch files) and
/// log directory, as the engine does at start-up (see the module docs). On
/// a fresh disk, writes snapshot 0. The two may be one directory.
pub fn recover(data: &MemFs, log: &MemFs) -> Result<Recovered, RecoveryError> {
    recover_replaying(data, log, true)
}

/// Start-up recovery of a server as the engine does it
/// (`storage::protocol_aware_recovery`, then `storage::recover`): in an
/// ensemble, damage to durable log records is set aside first and the log
/// cut before it, behind wal's durable "recovering" marker; a standalone
/// server refuses such a log (the error names the damage). With `replay`
/// false, see [`recover_replaying`].
pub fn recover_member(
    data: &MemFs,
    log: &MemFs,
    replay: bool,
    ensemble: bool,
) -> Result<Recovered, RecoveryError> {
    if ensemble {
        wal::remove_temporary_files_in(data, log)?;
        if let Some(damage) = wal::find_log_damage(data, log.clone())? {
            wal::set_aside_damage(data, log, log.clone(), &damage)?;
        }
    }
    let mut recovered = recover_replaying(data, log, replay)?;
    recovered.recovering = wal::read_recovering_in(data)?;
    Ok(recovered)
}

/// [`recover`], but with `replay` false the log after the snapshot is read
/// and not applied (the reintroduced `Bug::SkipLogReplay`).
pub fn recover_replaying(
    data: &MemFs,
    log: &MemFs,
    replay: bool,
) -> Result<Recovered, RecoveryError> {
    wal::remove_temporary_files_in(data, log)?;
    let recovery = wal::recover_from(data, log.clone())?;
    let (mut tree, snapshot_zxid) = match &recovery.snapshot {
        Some(info) => {
            let mut reader = wal::open_snapshot(data, &info.name)?;
            let mut body = Vec::with_capacity(info.body_bytes as usize);
            reader
                .read_to_end(&mut body)
                .map_err(|source| RecoveryError::SnapshotRead {
                    file: info.file.clone(),
                    source,
                })?;
            let tree =
                DataTree::from_snapshot(&body).map_err(|source| RecoveryError::Snapshot {
                    file: info.file.clone(),
                    source,
                })?;
            (tree, Some(info.zxid))
        }
        None => {
            let tree = DataTree::new();
            write_whole_snapshot(data, &tree)?;
            (tree, None)
        }
    };
    let mut log = recovery.log;
    let mut replayed = Vec::new();
    let mut replayed_multis = 0;
    let mut history = VecDeque::new();
    let mut history_bytes = 0usize;
    for record in log.by_ref() {
        let record = record?;
        let (header, txn) =
            tree::decode_record(&record.payload).map_err(|err| RecoveryError::Record {
                zxid: record.zxid,
                reason: err.to_string(),
            })?;
        if replay {
            tree.apply(&header, &txn);
        }
        replayed_multis += usize::from(matches!(txn, tree::Txn::Multi(_)));
        replayed.push(Logged::of(&header, &txn));
        history_bytes += record.payload.len();
        history.push_back(LogRecord {
            zxid: record.zxid,
            payload: record.payload.into(),
        });
        while history.len() > HISTORY_TXNS_MAX || history_bytes > HISTORY_BYTES_MAX {
            let old: LogRecord = history.pop_front().expect("not empty");
            history_bytes -= old.payload.len();
        }
    }
    let tail = log.finish()?;
    let (accepted_epoch, current_epoch) = read_epochs(data, tree.last_processed_zxid())?;
    Ok(Recovered {
        tree,
        tail,
        snapshot_zxid,
        replayed,
        replayed_multis,
        history: history.into(),
        accepted_epoch,
        current_epoch,
        recovering: None,
    })
}

/// ZAB's acceptedEpoch and currentEpoch, as the engine's `read_epochs`: a
/// missing currentEpoch is the epoch of the last zxid, a missing
/// acceptedEpoch is currentEpoch.
fn read_epochs(data: &MemFs, zxid_last: i64) -> Result<(i64, i64), WalError> {
    let current = wal::read_epoch_in(data, wal::EpochFile::Current)?.unwrap_or(zxid_last >> 32);
    let accepted = wal::read_epoch_in(data, wal::EpochFile::Accepted)?.unwrap_or(current);
    Ok((accepted.max(current), current))
}

/// Writes a whole snapshot of a quiet tree at once, sealed and durable, at
/// its last zxid (start-up, and a script's `Then::Snapshot`).
pub(crate) fn write_whole_snapshot(data: &MemFs, tree: &DataTree) -> Result<(), WalError> {
    let mut writer = SnapshotWriter::create_in(data.clone(), tree.last_processed_zxid())?;
    writer.write(&tree.snapshot_bytes())?;
    writer.finish()?;
    Ok(())
}

/// What a disk holds when every snapshot but the oldest is ignored:
/// snapshot 0 and the whole log replayed (the cross-check that the fuzzy
/// snapshots and replay agree with replaying everything, and the list of
/// every txn the server ever made durable and kept). Reads copies only.
pub fn replay_everything(data: &MemFs, log: &MemFs) -> Result<Recovered, RecoveryError> {
    let oldest = wal::list_snapshots(data)?
        .pop()
        .map(|(_, name)| name)
        .expect("a server always has snapshot 0");
    let read_failed = |source| RecoveryError::SnapshotRead {
        file: oldest.clone(),
        source,
    };
    let file = data.open_read(&oldest).map_err(read_failed)?;
    let mut bytes = vec![0u8; file.len() as usize];
    file.read_at(0, &mut bytes).map_err(read_failed)?;
    let only_oldest = MemFs::new();
    copy_in(&only_oldest, &oldest, &bytes).map_err(read_failed)?;
    recover(&only_oldest, &log.snapshot_current())
}

/// Writes one whole, durable file.
fn copy_in(dir: &MemFs, name: &str, bytes: &[u8]) -> io::Result<()> {
    use wal::FileWriter;
    let mut file = dir.create_file(name)?;
    file.append(bytes)?;
    file.sync()?;
    dir.sync_directory()
}
