//! Purge: keep the newest snapshots and the log they need; recycle or delete
//! the rest. And housekeeping of temporary files.
//!
//! A snapshot at zxid S needs every record above S, so the oldest snapshot
//! kept needs the segment holding S + 1 (the last segment starting at or
//! before S + 1) and everything after it. Older segments are renamed to
//! `spare.recycled.<first zxid>` while fewer than [`SPARES_MAX`] spares wait,
//! so the writer reuses their allocated, initialised blocks; the rest (and
//! every format-1 segment) are deleted. Safe to run while the server writes: it never touches the
//! segment being written (the newest), nor files still being written, except
//! snapshot temp files older than the newest kept snapshot (one snapshot is
//! written at a time, and never below a finished one, so those are debris).
//!
//! Order, so that a crash at any point leaves what recovery needs: snapshots
//! are removed (and the snapshot directory synced) before any segment, so a
//! crash in between leaves unneeded segments behind, never a snapshot without
//! its log; segments go oldest first, so the log that remains never has a
//! hole.
//!
//! Temporary files (`*.tmp`: a snapshot, an epoch file or a spare segment
//! being written) are removed by whoever gave up on them; what a crash left
//! behind is removed at start-up by [`remove_temporary_files`], before the
//! server writes anything.

use std::io;
use std::path::Path;

use crate::epoch::EpochFile;
use crate::error::WalError;
use crate::format::{SegmentHeader, FORMAT_VERSION, SEGMENT_HEADER_BYTES};
use crate::fs::ReadAt;
use crate::fs::{StdDir, WriteFs};
use crate::recovery::{first_needed_segment, list_segments};
use crate::snapshot::{list_snapshots, parse_snapshot_temp_name, TEMP_SUFFIX};
use crate::spare::is_ready_spare;

/// ZooKeeper refuses to keep fewer snapshots than this (autopurge.snapRetainCount).
pub const RETAIN_COUNT_MIN: usize = 3;
/// Recycled segments kept waiting for reuse; more are deleted.
pub const SPARES_MAX: usize = 2;

/// What a purge did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PurgeReport {
    pub snapshots_kept: Vec<String>,
    pub snapshots_removed: Vec<String>,
    pub segments_kept: Vec<String>,
    pub segments_recycled: Vec<String>,
    pub segments_removed: Vec<String>,
    /// Temp files of abandoned snapshots.
    pub temps_removed: Vec<String>,
}

/// Keeps the newest `retain_count` snapshots (at least [`RETAIN_COUNT_MIN`])
/// and every segment they need; recycles or deletes the rest.
pub fn purge(
    snap_dir: &Path,
    log_dir: &Path,
    retain_count: usize,
) -> Result<PurgeReport, WalError> {
    purge_in(&StdDir::new(snap_dir), &StdDir::new(log_dir), retain_count)
}

/// [`purge`] through any pair of directories (they may be the same one).
pub fn purge_in<S: WriteFs, L: WriteFs>(
    snaps: &S,
    log: &L,
    retain_count: usize,
) -> Result<PurgeReport, WalError> {
    if retain_count < RETAIN_COUNT_MIN {
        return Err(WalError::InvalidConfig(format!(
            "snapRetainCount {retain_count} is below the minimum of {RETAIN_COUNT_MIN}"
        )));
    }
    let mut report = PurgeReport::default();
    let snapshots = list_snapshots(snaps)?;
    let (kept, removed) = snapshots.split_at(snapshots.len().min(retain_count));
    report.snapshots_kept = kept.iter().map(|(_, n)| n.clone()).collect();
    let (Some((zxid_oldest_kept, _)), Some((zxid_newest, _))) = (kept.last(), kept.first()) else {
        return Ok(report);
    };
    for (_, name) in removed {
        snaps
            .remove_file(name)
            .map_err(|e| WalError::io("remove", snaps.display(name), e))?;
        report.snapshots_removed.push(name.clone());
    }
    for name in list_names(snaps)? {
        if parse_snapshot_temp_name(&name).is_some_and(|zxid| zxid < *zxid_newest) {
            remove_if_present(snaps, &name)?;
            report.temps_removed.push(name);
        }
    }
    snaps
        .sync_directory()
        .map_err(|e| WalError::io("fsync directory", snaps.display(""), e))?;
    let segments = list_segments(log)?;
    let needed_from = first_needed_segment(&segments, *zxid_oldest_kept);
    let mut spares = list_names(log)?
        .iter()
        .filter(|n| is_ready_spare(n))
        .count();
    for (zxid, name) in &segments[..needed_from] {
        if spares < SPARES_MAX && is_current_format(log, name) {
            let spare = format!("spare.recycled.{:016x}", *zxid as u64);
            log.rename_file(name, &spare)
                .map_err(|e| WalError::io("rename", log.display(name), e))?;
            report.segments_recycled.push(name.clone());
            spares += 1;
        } else {
            log.remove_file(name)
                .map_err(|e| WalError::io("remove", log.display(name), e))?;
            report.segments_removed.push(name.clone());
        }
    }
    report.segments_kept = segments[needed_from..]
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    log.sync_directory()
        .map_err(|e| WalError::io("fsync directory", log.display(""), e))?;
    Ok(report)
}

/// Whether a segment is of the format the writer writes: only those are
/// recycled (a format-1 file's unstamped bytes must never sit in a segment of
/// format 2, where they would read as damage).
fn is_current_format<L: WriteFs>(log: &L, name: &str) -> bool {
    let Ok(reader) = log.open_read(name) else {
        return false;
    };
    let mut block = vec![0u8; SEGMENT_HEADER_BYTES];
    match reader.read_at(0, &mut block) {
        Ok(n) => SegmentHeader::decode(&block[..n]).is_ok_and(|h| h.version == FORMAT_VERSION),
        Err(_) => false,
    }
}

/// Removes every temporary file wal writes (`snapshot.<hex>.tmp`,
/// `currentEpoch.tmp`, `acceptedEpoch.tmp`, `spare.<…>.tmp`) from both
/// directories, and syncs them. Call it at start-up, before anything writes
/// there: a temp file is never part of what recovery reads, so whatever a
/// crash left half-written can only waste space. Returns the names removed.
pub fn remove_temporary_files(snap_dir: &Path, log_dir: &Path) -> Result<Vec<String>, WalError> {
    remove_temporary_files_in(&StdDir::new(snap_dir), &StdDir::new(log_dir))
}

/// [`remove_temporary_files`] through any pair of directories.
pub fn remove_temporary_files_in<S: WriteFs, L: WriteFs>(
    snaps: &S,
    log: &L,
) -> Result<Vec<String>, WalError> {
    let mut removed = remove_temps_in_one(snaps)?;
    removed.extend(remove_temps_in_one(log)?);
    Ok(removed)
}

/// Whether `name` is a temp file that wal writes.
pub fn is_temporary_file(name: &str) -> bool {
    let Some(stem) = name.strip_suffix(TEMP_SUFFIX) else {
        return false;
    };
    parse_snapshot_temp_name(name).is_some()
        || crate::damage::is_damage_temp_file(name)
        || stem.starts_with("spare.")
        || [EpochFile::Current, EpochFile::Accepted]
            .iter()
            .any(|which| stem == which.file_name())
}

fn remove_temps_in_one<F: WriteFs>(fs: &F) -> Result<Vec<String>, WalError> {
    let mut removed = Vec::new();
    for name in list_names(fs)? {
        if is_temporary_file(&name) {
            remove_if_present(fs, &name)?;
            tracing::info!(file = %fs.display(&name), "removed a temporary file left by an earlier run");
            removed.push(name);
        }
    }
    if !removed.is_empty() {
        fs.sync_directory()
            .map_err(|e| WalError::io("fsync directory", fs.display(""), e))?;
    }
    removed.sort();
    Ok(removed)
}

fn list_names<F: WriteFs>(fs: &F) -> Result<Vec<String>, WalError> {
    fs.list()
        .map_err(|e| WalError::io("list", fs.display(""), e))
}

fn remove_if_present<F: WriteFs>(fs: &F, name: &str) -> Result<(), WalError> {
    match fs.remove_file(name) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(WalError::io("remove", fs.display(name), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // The start-up cleanup removes exactly wal's temp files from both
    // directories, and nothing else (not even other `.tmp` files).
    #[test]
    fn start_up_cleanup_removes_only_wal_temp_files() {
        let snaps = tempfile::tempdir().unwrap();
        let log = tempfile::tempdir().unwrap();
        let stale = [
            (snaps.path(), "snapshot.0000000000000005.tmp"),
            (snaps.path(), "currentEpoch.tmp"),
            (snaps.path(), "acceptedEpoch.tmp"),
            (log.path(), "spare.0000000000000003.tmp"),
        ];
        let kept = [
            (snaps.path(), "snapshot.0000000000000005"),
            (snaps.path(), "currentEpoch"),
            (snaps.path(), "myid"),
            (snaps.path(), "notes.tmp"),
            (log.path(), "log.0000000000000001"),
            (log.path(), "spare.0000000000000002"),
        ];
        for (dir, name) in stale.iter().chain(&kept) {
            std::fs::write(dir.join(name), b"x").unwrap();
        }
        let removed = remove_temporary_files(snaps.path(), log.path()).unwrap();
        let mut expected: Vec<String> = stale.iter().map(|(_, n)| n.to_string()).collect();
        expected.sort();
        let mut removed_sorted = removed.clone();
        removed_sorted.sort();
        assert_eq!(removed_sorted, expected);
        for (dir, name) in stale {
            assert!(!dir.join(name).exists(), "{name}");
        }
        for (dir, name) in kept {
            assert!(dir.join(name).exists(), "{name}");
        }
        assert!(remove_temporary_files(snaps.path(), log.path())
            .unwrap()
            .is_empty());
    }
}
