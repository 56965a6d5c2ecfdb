//! Protocol-aware recovery, wal's half: damage to durable log records set
//! aside, the log cut before it, and a durable "recovering" marker saying
//! what was lost — for a server of an ensemble, which can fetch the lost
//! records from its peers (the failure class of "Protocol-Aware Recovery for
//! Consensus-Based Storage", Alagappan et al., FAST 2018, where ZooKeeper
//! lost acknowledged writes this way).
//!
//! # Damage, and a torn tail
//!
//! Recovery tells the two apart by the sector stamps (`format.rs`, "Telling
//! a torn write from damage"). A torn tail is a write whose sync never
//! returned: none of its records was acknowledged, and recovery cuts it as
//! it always did. Damage is a [`crate::WalError::Corrupt`]: a record that
//! fails its crc although the write that carried it landed whole, valid
//! records after a bad one, a bad sector inside the newest write's extent, a
//! segment that is not the last ending short, or a damaged segment header.
//! Any of these may have been acknowledged: the records from the damage on
//! are *lost*, and a server that counted them in a vote could elect a leader
//! without them.
//!
//! The limits (the rule cannot see): a device that acknowledges a write and
//! then silently loses it, or returns a sector's old contents or zeros, looks
//! like a torn tail and is cut without a marker; damage to a segment no
//! recovery reads (wholly below the snapshot) is not found here; a `Gap`
//! (zxids going back, a missing segment) is not treated as damage.
//!
//! # Setting it aside
//!
//! [`set_aside_damage`], in this order, so that a crash at any point leaves
//! either the damage still in place (found again at the next start, and set
//! aside again) or the log cut with the marker already durable:
//!
//! 1. the marker `recovering` in the data directory says "every record after
//!    zxid Z may be lost" (temp, fsync, rename, fsync the directory; an
//!    existing marker keeps the lower Z);
//! 2. the damaged segment is copied to `<segment>.damaged` (temp, fsync,
//!    rename, fsync the directory) for the operator, and every later segment
//!    is renamed to `<segment>.damaged` — no byte of the original is deleted;
//! 3. snapshots above Z are removed (they may hold lost txns; the log must
//!    not be cut below a snapshot, ZOOKEEPER-2325);
//! 4. the log is truncated after Z (wal's TRUNC, crash-safe on its own).
//!
//! While the marker exists, the server must not count in any quorum
//! (replication's rules); once it has synchronised from an established
//! leader, [`clear_recovering_in`] removes the marker durably.
//!
//! The marker is only ever removed by that synchronisation, or by an
//! operator who accepts the loss (deleting `recovering`): with too many
//! damaged servers at once (two of three), no leader forms without one.
//!
//! A standalone server has no peers to recover from: it keeps refusing to
//! start (the error names the file, the offset and the `fk-tools` command
//! that accepts the loss).
//!
//! The marker file holds one decimal number, Z, and a newline.

use std::io;
use std::path::Path;

use crate::error::WalError;
use crate::format::parse_segment_name;
use crate::fs::{FileWriter, LogFs, ReadAt, ReadFs, StdDir, StdFs, WriteFs};
use crate::recovery::{list_segments, recover_from, LogDamage, LogTail};
use crate::snapshot::TEMP_SUFFIX;
use crate::truncate::{block_on, remove_snapshots_after};
use crate::writer::{LogWriter, WriterConfig};

/// The marker's file name, in the data directory (beside the epoch files).
pub const RECOVERING_FILE: &str = "recovering";
/// What a set-aside segment's name ends with.
pub const DAMAGED_SUFFIX: &str = ".damaged";

/// Whether `name` is a temp file of this module (removed at start-up).
pub(crate) fn is_damage_temp_file(name: &str) -> bool {
    name.strip_suffix(TEMP_SUFFIX)
        .is_some_and(|stem| stem == RECOVERING_FILE || stem.ends_with(DAMAGED_SUFFIX))
}

/// What [`set_aside_damage`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The marker as now durable: records after this zxid were lost.
    pub zxid_good: i64,
    /// Files now holding the damaged segment and the ones after it.
    pub kept: Vec<String>,
    pub snapshots_removed: Vec<String>,
}

/// Reads the log to its end: `Ok(Some(damage))` when recovery stops at damage
/// to durable records, `Ok(None)` when the log reads whole (torn tails
/// included), and any other error as it is.
pub fn find_log_damage<S: ReadFs, R: ReadFs>(
    snaps: &S,
    log: R,
) -> Result<Option<LogDamage>, WalError> {
    let mut reader = recover_from(snaps, log)?.log;
    for record in reader.by_ref() {
        if let Err(error) = record {
            return match reader.damage() {
                Some(damage) => Ok(Some(damage.clone())),
                None => Err(error),
            };
        }
    }
    Ok(None)
}

/// Sets the damage aside and cuts the log after `damage.zxid_good` (see the
/// module docs for the order): `snaps` is the data directory (marker,
/// snapshots), `log_files` and `log` the log directory as blocking files and
/// as the log writer's file system (StdFs, MemFs: calls that never wait).
pub fn set_aside_damage<S: WriteFs, D: WriteFs, L: LogFs>(
    snaps: &S,
    log_files: &D,
    log: L,
    damage: &LogDamage,
) -> Result<SetAside, WalError> {
    let zxid_good = match read_recovering_in(snaps)? {
        Some(earlier) => earlier.min(damage.zxid_good),
        None => damage.zxid_good,
    };
    write_recovering_in(snaps, zxid_good)?;
    let mut kept = vec![copy_aside(log_files, &damage.segment)?];
    let damaged_first = parse_segment_name(&damage.segment).expect("damage names a segment");
    let later: Vec<String> = list_segments(log_files)?
        .into_iter()
        .filter(|(zxid_first, _)| *zxid_first > damaged_first)
        .map(|(_, name)| name)
        .collect();
    for name in later {
        let aside = format!("{name}{DAMAGED_SUFFIX}");
        log_files
            .rename_file(&name, &aside)
            .map_err(|e| WalError::io("rename", log_files.display(&name), e))?;
        sync_directory(log_files)?;
        kept.push(aside);
    }
    let snapshots_removed = remove_snapshots_after(snaps, zxid_good)?;
    block_on(async {
        let mut writer = LogWriter::open(log, WriterConfig::default(), LogTail::fresh()).await?;
        writer.truncate(zxid_good).await
    })?;
    tracing::warn!(
        segment = %log_files.display(&damage.segment),
        offset = damage.offset,
        reason = %damage.reason,
        zxid_good = format!("{zxid_good:#x}"),
        ?kept,
        "damaged log records set aside; the log is cut after the last good record, and this \
         server recovers what followed from its peers before it votes again"
    );
    Ok(SetAside {
        zxid_good,
        kept,
        snapshots_removed,
    })
}

/// [`find_log_damage`] then [`set_aside_damage`] on real directories, for
/// the engine at start-up (blocking): `Ok(None)` when there is no damage.
pub fn set_aside_damage_in_dirs(
    snap_dir: &Path,
    log_dir: &Path,
) -> Result<Option<SetAside>, WalError> {
    let (snaps, log_files) = (StdDir::new(snap_dir), StdDir::new(log_dir));
    let Some(damage) = find_log_damage(&snaps, log_files.clone())? else {
        return Ok(None);
    };
    set_aside_damage(&snaps, &log_files, StdFs::new(log_dir), &damage).map(Some)
}

/// Copies segment `name` to `name.damaged`, durably.
fn copy_aside<D: WriteFs>(fs: &D, name: &str) -> Result<String, WalError> {
    let aside = format!("{name}{DAMAGED_SUFFIX}");
    let tmp = format!("{aside}{TEMP_SUFFIX}");
    let reader = fs
        .open_read(name)
        .map_err(|e| WalError::io("open", fs.display(name), e))?;
    // A segment is at most its preallocated size: read whole.
    let mut bytes = vec![0u8; reader.len() as usize];
    let n = reader
        .read_at(0, &mut bytes)
        .map_err(|e| WalError::io("read", fs.display(name), e))?;
    bytes.truncate(n);
    let io = |op, e| WalError::io(op, fs.display(&tmp), e);
    let mut file = fs.create_file(&tmp).map_err(|e| io("create", e))?;
    file.append(&bytes).map_err(|e| io("write", e))?;
    file.sync().map_err(|e| io("fsync", e))?;
    drop(file);
    fs.rename_file(&tmp, &aside).map_err(|e| io("rename", e))?;
    sync_directory(fs)?;
    Ok(aside)
}

fn sync_directory<F: WriteFs>(fs: &F) -> Result<(), WalError> {
    fs.sync_directory()
        .map_err(|e| WalError::io("fsync directory", fs.display(""), e))
}

/// Durably writes the marker: records after `zxid_good` were lost. Written
/// and read as the epoch files are (one decimal number, replaced atomically).
pub fn write_recovering_in<F: WriteFs>(fs: &F, zxid_good: i64) -> Result<(), WalError> {
    crate::epoch::write_decimal_in(fs, RECOVERING_FILE, zxid_good)
}

/// The marker: `Ok(Some(Z))` while records after Z are being recovered
/// from peers, `Ok(None)` without one, an error if it is not a number.
pub fn read_recovering_in<R: ReadFs>(fs: &R) -> Result<Option<i64>, WalError> {
    use crate::epoch::{read_decimal_in, DecimalFileError};
    read_decimal_in(fs, RECOVERING_FILE).map_err(|e| match e {
        DecimalFileError::Io(error) => error,
        DecimalFileError::Damaged { file, reason } => WalError::MarkerCorrupt {
            file,
            reason: reason.into(),
        },
    })
}

/// Removes the marker durably (the server synchronised from an established
/// leader and holds every committed record again). No marker: nothing to do.
pub fn clear_recovering_in<F: WriteFs>(fs: &F) -> Result<(), WalError> {
    match fs.remove_file(RECOVERING_FILE) {
        Ok(()) => sync_directory(fs),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io("remove", fs.display(RECOVERING_FILE), e)),
    }
}

/// [`read_recovering_in`] in a real directory.
pub fn read_recovering(dir: &Path) -> Result<Option<i64>, WalError> {
    read_recovering_in(&StdDir::new(dir))
}

/// [`clear_recovering_in`] in a real directory.
pub fn clear_recovering(dir: &Path) -> Result<(), WalError> {
    clear_recovering_in(&StdDir::new(dir))
}
