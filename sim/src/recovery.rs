//! Recovering a server from its disk.
//!
//! [`recover`] is `engine/src/storage.rs`'s recovery on these directories:
//! the newest valid snapshot, then every logged txn after it, then where the
//! writer continues; on an empty disk, snapshot 0 is written first
//! (ZOOKEEPER-2325).

use std::io::{self, Read};

use node::{SnapshotWritten, StorageFailure};
use thiserror::Error;
use tree::{DataTree, SnapshotError};
use wal::{LogTail, MemFs, ReadAt, ReadFs, WalError};

use crate::snapshots::{MemSnapshots, SnapshotStore};

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
    /// Any other txn (a write, or a refused write's error txn).
    Request,
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
        | tree::Txn::Failed { .. } => {}
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
}

/// Recovers a server from its snapshot store and log directory, as the
/// engine does at start-up (see the module docs). On a fresh disk, writes
/// snapshot 0 into `snapshots`.
pub fn recover<S: SnapshotStore>(
    snapshots: &mut S,
    log: &MemFs,
) -> Result<Recovered, RecoveryError> {
    recover_replaying(snapshots, log, true)
}

/// [`recover`], but with `replay` false the log after the snapshot is read
/// and not applied (the reintroduced `Bug::SkipLogReplay`).
pub fn recover_replaying<S: SnapshotStore>(
    snapshots: &mut S,
    log: &MemFs,
    replay: bool,
) -> Result<Recovered, RecoveryError> {
    let recovery = wal::recover_from(snapshots.dir(), log.clone())?;
    let (mut tree, snapshot_zxid) = match &recovery.snapshot {
        Some(info) => {
            let mut reader = wal::open_snapshot(snapshots.dir(), &info.name)?;
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
            write_whole_snapshot(snapshots, &tree)
                .expect("a fresh in-memory snapshot store takes the first snapshot");
            (tree, None)
        }
    };
    let mut log = recovery.log;
    let mut replayed = Vec::new();
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
        let mut changes = Vec::new();
        changes_of(&txn, &mut changes);
        let kind = match txn {
            tree::Txn::CreateSession { .. } => TxnKind::CreateSession,
            tree::Txn::CloseSession { .. } => TxnKind::CloseSession,
            _ => TxnKind::Request,
        };
        replayed.push(Logged {
            zxid: header.zxid,
            session: header.session_id,
            cxid: header.cxid,
            kind,
            changes,
        });
    }
    let tail = log.finish()?;
    Ok(Recovered {
        tree,
        tail,
        snapshot_zxid,
        replayed,
    })
}

/// Writes a whole snapshot of a quiet tree at once (start-up only).
fn write_whole_snapshot<S: SnapshotStore>(
    snapshots: &mut S,
    tree: &DataTree,
) -> Result<SnapshotWritten, StorageFailure> {
    snapshots.begin(tree.last_processed_zxid())?;
    snapshots.write(&tree.snapshot_bytes())?;
    snapshots.seal()
}

/// What a directory holds when every snapshot but the oldest is ignored:
/// snapshot 0 and the whole log replayed (the cross-check that the fuzzy
/// snapshots and replay agree with replaying everything, and the list of
/// every txn the server ever made durable and kept).
pub fn replay_everything<S: SnapshotStore>(
    snapshots: &S,
    log: &MemFs,
) -> Result<Recovered, RecoveryError> {
    let oldest = wal::list_snapshots(snapshots.dir())?
        .pop()
        .map(|(_, name)| name)
        .expect("a server always has snapshot 0");
    let read_failed = |source| RecoveryError::SnapshotRead {
        file: oldest.clone(),
        source,
    };
    let file = snapshots.dir().open_read(&oldest).map_err(read_failed)?;
    let mut bytes = vec![0u8; file.len() as usize];
    file.read_at(0, &mut bytes).map_err(read_failed)?;
    let mut only_oldest = MemSnapshots::from_files([(oldest, bytes)]);
    recover(&mut only_oldest, log)
}
