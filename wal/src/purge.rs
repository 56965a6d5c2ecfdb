//! Purge: keep the newest snapshots and the log they need; recycle or delete
//! the rest.
//!
//! A snapshot at zxid S needs every record above S, so the oldest snapshot
//! kept needs the segment holding S + 1 (the last segment starting at or
//! before S + 1) and everything after it. Older segments are renamed to
//! `spare.recycled.<first zxid>` while fewer than [`SPARES_MAX`] spares wait,
//! so the writer reuses their allocated, initialised blocks; the rest are
//! deleted. Safe to run while the server writes: it never touches the
//! segment being written (the newest), nor files still being written (`.tmp`).

use std::path::Path;

use crate::error::WalError;
use crate::fs::{list_dir, sync_dir_path, StdDir};
use crate::recovery::{first_needed_segment, list_segments};
use crate::snapshot::list_snapshots;
use crate::writer::is_ready_spare;

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
}

/// Keeps the newest `retain_count` snapshots (at least [`RETAIN_COUNT_MIN`])
/// and every segment they need; recycles or deletes the rest.
pub fn purge(
    snap_dir: &Path,
    log_dir: &Path,
    retain_count: usize,
) -> Result<PurgeReport, WalError> {
    if retain_count < RETAIN_COUNT_MIN {
        return Err(WalError::InvalidConfig(format!(
            "snapRetainCount {retain_count} is below the minimum of {RETAIN_COUNT_MIN}"
        )));
    }
    let mut report = PurgeReport::default();
    let snapshots = list_snapshots(&StdDir::new(snap_dir))?;
    let (kept, removed) = snapshots.split_at(snapshots.len().min(retain_count));
    report.snapshots_kept = kept.iter().map(|(_, n)| n.clone()).collect();
    let Some((zxid_oldest_kept, _)) = kept.last() else {
        return Ok(report);
    };
    // Snapshots go before the log they needed, so a crash in between leaves
    // only unneeded segments behind, never a snapshot without its log.
    for (_, name) in removed {
        let path = snap_dir.join(name);
        std::fs::remove_file(&path).map_err(|e| WalError::io("remove", path.display(), e))?;
        report.snapshots_removed.push(name.clone());
    }
    sync_dir_path(snap_dir).map_err(|e| WalError::io("fsync directory", snap_dir.display(), e))?;
    let names = list_dir(log_dir).map_err(|e| WalError::io("list", log_dir.display(), e))?;
    let segments = list_segments(&StdDir::new(log_dir))?;
    let needed_from = first_needed_segment(&segments, *zxid_oldest_kept);
    let mut spares = names.iter().filter(|n| is_ready_spare(n)).count();
    let io = |op, name: &str, e| WalError::io(op, log_dir.join(name).display(), e);
    for (zxid, name) in &segments[..needed_from] {
        if spares < SPARES_MAX {
            let spare = format!("spare.recycled.{:016x}", *zxid as u64);
            std::fs::rename(log_dir.join(name), log_dir.join(&spare))
                .map_err(|e| io("rename", name, e))?;
            report.segments_recycled.push(name.clone());
            spares += 1;
        } else {
            std::fs::remove_file(log_dir.join(name)).map_err(|e| io("remove", name, e))?;
            report.segments_removed.push(name.clone());
        }
    }
    report.segments_kept = segments[needed_from..]
        .iter()
        .map(|(_, n)| n.clone())
        .collect();
    sync_dir_path(log_dir).map_err(|e| WalError::io("fsync directory", log_dir.display(), e))?;
    Ok(report)
}
