//! Truncation (ZAB's TRUNC): drop every record above a zxid, durably, so no
//! later recovery sees them again.
//!
//! ```text
//!  log.a  [1 … 40]   log.29 [41 … 57 | 58 … 70]   log.47 [71 … 90]
//!                                    ▲ cut after 57             removed first
//! ```
//!
//! Order, so that a crash at any point leaves a log recovery accepts, holding
//! every record up to the cut and a prefix of what followed (running the
//! truncation again finishes it):
//!
//! 1. Segments wholly after the cut are removed newest first, the directory
//!    synced after each, so the log never has a hole.
//! 2. In the segment holding the cut, an empty write is stamped at the cut
//!    point (write n + 1, records start = end = cut) and synced: from then on
//!    recovery ends the stream there, since the newest write says so and
//!    landed whole. Were it torn, recovery would cut at most at a record of
//!    what was there before.
//! 3. Every sector of this life after that write is zeroed and synced, so the
//!    dropped records can never be read again, even when the writer later
//!    appends with the same salt after the cut.
//!
//! Snapshots above the cut hold the dropped txns and must go first (a crash
//! in between then leaves the whole log and an older snapshot, never a
//! snapshot ahead of its log): [`remove_snapshots_after`], which
//! [`truncate_log`] (the offline tool) runs before the log.

use std::future::Future;
use std::path::Path;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use crate::error::WalError;
use crate::format::{
    parse_segment_name, sector_file_offset, BLOCK_BYTES, BLOCK_STREAM_BYTES, FORMAT_VERSION_V1,
};
use crate::fs::{LogFs, StdDir, StdFs, WriteFs};
use crate::memfs::MemReader;
use crate::recovery::{LogTail, SegmentTail};
use crate::scan::{EndKind, SegmentScan};
use crate::snapshot::list_snapshots;
use crate::writer::{LogWriter, WriterConfig};

/// What a truncation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TruncateReport {
    /// Segments removed whole, newest first.
    pub segments_removed: Vec<String>,
    /// The segment cut, and the file offset it now ends at, if records were
    /// dropped from it.
    pub segment_cut: Option<(String, u64)>,
    /// The last zxid the log now holds (the cut segment's previous zxid, or
    /// the cut point itself when no segment is left).
    pub zxid_last: i64,
}

impl<F: LogFs> LogWriter<F> {
    /// Drops every record with zxid > `after_zxid` from the log, durably,
    /// and continues the log after what remains (see the module doc for the
    /// crash order). Nothing may be staged (sync first). Snapshots above the
    /// cut are the caller's to remove first ([`remove_snapshots_after`]).
    ///
    /// After it, appends continue above [`TruncateReport::zxid_last`]. A
    /// failed write or sync stops the writer, as anywhere else; the log on
    /// disk is then a prefix of what it was, and truncating again (after a
    /// restart) finishes the job.
    pub async fn truncate(&mut self, after_zxid: i64) -> Result<TruncateReport, WalError> {
        self.check_not_failed()?;
        assert_eq!(self.batch_records(), 0, "truncate with records staged");
        self.active = None;
        let result = self.truncate_files(after_zxid).await;
        match &result {
            Ok(report) => {
                self.zxid_written = report.zxid_last;
                self.zxid_durable = report.zxid_last;
                self.zxid_appended = report.zxid_last;
                self.check_invariants();
            }
            Err(error) => self.failure = Some(error.to_string()),
        }
        result
    }

    async fn truncate_files(&mut self, after_zxid: i64) -> Result<TruncateReport, WalError> {
        let mut report = TruncateReport {
            zxid_last: after_zxid,
            ..TruncateReport::default()
        };
        let mut segments: Vec<(i64, String)> = self
            .list()?
            .into_iter()
            .filter_map(|n| parse_segment_name(&n).map(|z| (z, n)))
            .collect();
        segments.sort();
        let keep = segments.partition_point(|(zxid_first, _)| *zxid_first <= after_zxid);
        // Read first, change later: a cut that cannot be made refuses before
        // anything is removed.
        let cut = match keep.checked_sub(1) {
            Some(index) => Some(self.cut_tail(&segments[index].1, after_zxid).await?),
            None => None,
        };
        for (_, name) in segments[keep..].iter().rev() {
            self.fs
                .remove(name)
                .await
                .map_err(|e| self.io("remove", name, e))?;
            self.fs
                .sync_dir()
                .await
                .map_err(|e| self.io("fsync directory", name, e))?;
            report.segments_removed.push(name.clone());
        }
        if let Some(tail) = cut {
            report.zxid_last = tail.zxid_last;
            if tail.dropped {
                report.segment_cut = Some((tail.segment.name.clone(), tail.segment.end));
            }
            self.adopt_tail(tail.segment).await?;
        }
        Ok(report)
    }

    /// Reads the segment that holds the cut and says where it now ends, as
    /// recovery would if the log stopped at `after_zxid`: `scrub_end` covers
    /// every sector of this life after the cut when records are dropped.
    async fn cut_tail(&self, name: &str, after_zxid: i64) -> Result<CutTail, WalError> {
        let file = self
            .fs
            .open(name)
            .await
            .map_err(|e| self.io("open", name, e))?;
        let len = self
            .fs
            .len(&file)
            .await
            .map_err(|e| self.io("stat", name, e))?;
        // Truncation is rare: the segment is read whole (at most its
        // preallocated size) and scanned in memory.
        let mut bytes = vec![0u8; len as usize];
        let n = self
            .fs
            .read_at(&file, 0, &mut bytes)
            .await
            .map_err(|e| self.io("read", name, e))?;
        bytes.truncate(n);
        drop(file);
        let display = self.fs.display(name);
        let mut scan = SegmentScan::open(MemReader::new(bytes), display.clone())?;
        // A format-1 segment has no stamps to make a cut final: it may only
        // end where recovery would end it anyway.
        let format_1 = scan.header().version == FORMAT_VERSION_V1;
        let unsupported = || {
            WalError::Unsupported {
            file: display.clone(),
            reason: "cannot drop records inside a format-1 segment (no sector stamps to make the cut final)"
                .to_string(),
        }
        };
        while scan.peek_zxid()?.is_some_and(|zxid| zxid <= after_zxid) {
            scan.next_record()?;
        }
        let records_after = scan.peek_zxid()?.is_some();
        let cut = scan.stream_offset();
        let zxid_last = scan.zxid_last();
        let (scrub_end, write_last) = if records_after {
            if format_1 {
                return Err(unsupported());
            }
            let latest = scan.latest_write()?;
            (last_current_end(&mut scan)?, latest.map_or(0, |s| s.write))
        } else {
            // The stream stops at or before the cut: the verdict decides.
            assert!(scan.next_record()?.is_none());
            let end = scan.end().expect("scan finished").clone();
            if let EndKind::Corrupt { at, reason } = &end.kind {
                if zxid_last < after_zxid {
                    // Records up to the cut may be lost in the damage: only a
                    // cut at the last readable record is an accepted loss.
                    return Err(WalError::Corrupt {
                        file: display,
                        offset: *at,
                        reason: format!(
                            "{reason}; the readable records end at zxid {zxid_last:#x}, below {after_zxid:#x}"
                        ),
                        accept_loss: None,
                    });
                }
                if format_1 {
                    return Err(unsupported());
                }
            }
            let scrub_end = if format_1 || matches!(end.kind, EndKind::Clean) {
                end.scrub_end
            } else {
                end.scrub_end.max(last_current_end(&mut scan)?)
            };
            // Damage at the cut must be stamped over even when no current
            // sector lies past it (the damaged sector was the newest
            // write's last: it is bad, not current): else nothing is
            // written and recovery finds the same damage again.
            let scrub_end = match end.kind {
                EndKind::Corrupt { .. } => scrub_end.max(end.offset + 1),
                _ => scrub_end,
            };
            (scrub_end, end.write_last)
        };
        let block = if format_1 {
            BLOCK_BYTES
        } else {
            BLOCK_STREAM_BYTES
        } as u64;
        let tail_start = cut / block * block;
        let tail_block = scan
            .bytes_at(tail_start, (cut - tail_start) as usize)?
            .to_vec();
        let end = scan.file_offset(cut);
        let dropped = scrub_end > end;
        Ok(CutTail {
            segment: SegmentTail {
                name: name.to_string(),
                header: *scan.header(),
                records: scan.records(),
                end,
                end_stream: cut,
                tail_block,
                scrub_end,
                write_last,
            },
            zxid_last,
            dropped,
        })
    }
}

/// The segment holding a cut, as the writer continues it.
struct CutTail {
    segment: SegmentTail,
    zxid_last: i64,
    /// Whether anything after the cut must be made unreadable.
    dropped: bool,
}

/// The file offset just past the last sector of the segment's current life.
fn last_current_end(scan: &mut SegmentScan<MemReader>) -> Result<u64, WalError> {
    scan.latest_write()?;
    Ok(sector_file_offset(scan.current_end()).min(scan.len()))
}

/// Removes every snapshot above `after_zxid` (they hold txns a truncation
/// drops) and syncs the directory. Refuses, removing nothing, when no
/// snapshot at or below `after_zxid` would remain: the log would then have no
/// snapshot under it (ZOOKEEPER-2325); such a server needs a whole snapshot
/// from the leader instead. Returns the names removed.
pub fn remove_snapshots_after<S: WriteFs>(
    snaps: &S,
    after_zxid: i64,
) -> Result<Vec<String>, WalError> {
    let snapshots = list_snapshots(snaps)?;
    let (above, at_or_below): (Vec<_>, Vec<_>) = snapshots
        .into_iter()
        .partition(|(zxid, _)| *zxid > after_zxid);
    if at_or_below.is_empty() && !above.is_empty() {
        return Err(WalError::NoSnapshotBelow {
            snap_dir: snaps.display(""),
            zxid: after_zxid,
        });
    }
    let mut removed = Vec::new();
    for (_, name) in above {
        snaps
            .remove_file(&name)
            .map_err(|e| WalError::io("remove", snaps.display(&name), e))?;
        removed.push(name);
    }
    if !removed.is_empty() {
        snaps
            .sync_directory()
            .map_err(|e| WalError::io("fsync directory", snaps.display(""), e))?;
    }
    Ok(removed)
}

/// What [`truncate_log`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TruncateLogReport {
    pub snapshots_removed: Vec<String>,
    pub log: TruncateReport,
}

/// The offline truncation (`fk-tools log truncate`): with the server
/// stopped, removes the snapshots above `after_zxid`, then every log record
/// above it. Blocking std I/O. Works on a log recovery refuses: only the
/// segment holding the cut is read, and damage after the cut goes with it.
pub fn truncate_log(
    snap_dir: &Path,
    log_dir: &Path,
    after_zxid: i64,
) -> Result<TruncateLogReport, WalError> {
    let snapshots_removed = remove_snapshots_after(&StdDir::new(snap_dir), after_zxid)?;
    let log = block_on(async {
        let config = WriterConfig::default();
        let mut writer = LogWriter::open(StdFs::new(log_dir), config, LogTail::fresh()).await?;
        writer.truncate(after_zxid).await
    })?;
    Ok(TruncateLogReport {
        snapshots_removed,
        log,
    })
}

/// Runs a future that never waits (StdFs and MemFs calls complete at once).
pub(crate) fn block_on<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    match future.as_mut().poll(&mut context) {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("a std-file future waited"),
    }
}
