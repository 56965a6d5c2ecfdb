//! Start-up recovery: the newest valid snapshot, then every log record after
//! it, streamed in order, then where the writer continues.
//!
//! Checks made on the way (each failure is an error naming the file):
//!
//! - log segments but no snapshot at all: `LogWithoutSnapshot` (ZOOKEEPER-2325);
//! - a damaged segment header, or a valid record after damaged bytes where a
//!   torn write cannot explain it: `Corrupt` with the byte offset;
//! - a zxid that does not increase, a segment whose "previous zxid" is not the
//!   last zxid before it (a missing segment), or a first needed segment that
//!   starts after the snapshot's zxid + 1 with records missing between: `Gap`.
//!
//! A torn tail of the last segment is cut at the last good record with one
//! warning, and [`LogTail`] tells the writer to zero what lies after the cut.

use std::path::Path;

use crate::error::WalError;
use crate::format::{parse_segment_name, SegmentHeader};
use crate::fs::{ReadFs, StdDir};
use crate::scan::{EndKind, ScannedRecord, SegmentScan};
use crate::snapshot::{newest_valid_snapshot, SnapshotInfo};

/// Where the log writer continues after recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogTail {
    /// The highest zxid in the log or the snapshot (-1 on a fresh start):
    /// appends continue above it.
    pub zxid_last: i64,
    /// The last segment, if there is one.
    pub segment: Option<SegmentTail>,
}

impl LogTail {
    /// The tail of an empty directory.
    pub fn fresh() -> LogTail {
        LogTail {
            zxid_last: -1,
            segment: None,
        }
    }
}

/// The end of the last segment, as recovery found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentTail {
    pub name: String,
    pub header: SegmentHeader,
    /// Valid records in the segment.
    pub records: u64,
    /// The offset just after the last good record: the next record goes here.
    pub end: u64,
    /// The bytes of the block holding `end`, from the block's start to `end`.
    pub tail_block: Vec<u8>,
    /// The writer zeroes `[end, scrub_end)` before writing (a torn write left
    /// valid-looking records there); `scrub_end <= end` means nothing to do.
    pub scrub_end: u64,
}

/// One log record handed back by recovery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogRecord {
    pub zxid: i64,
    pub payload: Vec<u8>,
}

/// What recovery found: the snapshot to load, and the log to replay after it.
#[derive(Debug)]
pub struct Recovery<R: ReadFs> {
    /// The newest valid snapshot; `None` on a fresh start (empty directories),
    /// where the engine writes snapshot zxid 0 before serving.
    pub snapshot: Option<SnapshotInfo>,
    /// Every record with zxid above the snapshot's, in order.
    pub log: LogReader<R>,
}

/// Recovers real directories (blocking std I/O; run before executors start).
pub fn recover(snap_dir: &Path, log_dir: &Path) -> Result<Recovery<StdDir>, WalError> {
    recover_from(&StdDir::new(snap_dir), StdDir::new(log_dir))
}

/// Recovers from any pair of directories (tests pass a [`crate::MemFs`] image).
pub fn recover_from<S: ReadFs, R: ReadFs>(snaps: &S, log: R) -> Result<Recovery<R>, WalError> {
    let mut segments = list_segments(&log)?;
    let snapshot = newest_valid_snapshot(snaps)?;
    let zxid_snapshot = match &snapshot {
        Some(info) => info.zxid,
        None if segments.is_empty() => -1,
        None => {
            return Err(WalError::LogWithoutSnapshot {
                snap_dir: snaps.display(""),
                log_dir: log.display(""),
            });
        }
    };
    let start = first_needed_segment(&segments, zxid_snapshot);
    segments.drain(..start);
    segments.reverse(); // popped from the back, oldest first
    let log = LogReader {
        fs: log,
        segments,
        zxid_snapshot,
        zxid_last: None,
        scan: None,
        tail: None,
        failed: false,
    };
    Ok(Recovery { snapshot, log })
}

/// The log segments in a directory, oldest first: (first zxid, file name).
pub fn list_segments<R: ReadFs>(fs: &R) -> Result<Vec<(i64, String)>, WalError> {
    let names = fs
        .list()
        .map_err(|e| WalError::io("list", fs.display(""), e))?;
    let mut segments: Vec<(i64, String)> = names
        .into_iter()
        .filter_map(|n| parse_segment_name(&n).map(|z| (z, n)))
        .collect();
    segments.sort();
    Ok(segments)
}

/// The index in `segments` (oldest first) of the first segment a snapshot at
/// `zxid_snapshot` needs: the last one starting at or before snapshot + 1
/// (or the first, if all start later).
pub fn first_needed_segment(segments: &[(i64, String)], zxid_snapshot: i64) -> usize {
    segments
        .iter()
        .rposition(|(zxid, _)| *zxid <= zxid_snapshot.saturating_add(1))
        .unwrap_or(0)
}

/// Streams log records after the snapshot. After it returns `None`, call
/// [`LogReader::finish`] for the writer's starting point. An `Err` item ends
/// the stream: start-up must stop.
#[derive(Debug)]
pub struct LogReader<R: ReadFs> {
    fs: R,
    /// Segments still to read, the next one last.
    segments: Vec<(i64, String)>,
    zxid_snapshot: i64,
    /// The last zxid logged in the segments read so far (`None` before the first).
    zxid_last: Option<i64>,
    /// The segment being read, with its file name.
    scan: Option<(String, SegmentScan<R::Reader>)>,
    tail: Option<LogTail>,
    failed: bool,
}

impl<R: ReadFs> LogReader<R> {
    /// The zxid of the snapshot the log is replayed onto (-1 on a fresh start).
    pub fn zxid_snapshot(&self) -> i64 {
        self.zxid_snapshot
    }

    /// Reads whatever records remain (checking them) and returns where the
    /// writer continues.
    pub fn finish(mut self) -> Result<LogTail, WalError> {
        for record in self.by_ref() {
            record?;
        }
        assert!(!self.failed, "finish() after an error");
        Ok(self.tail.take().expect("tail known at the end"))
    }

    fn next_record(&mut self) -> Result<Option<LogRecord>, WalError> {
        loop {
            if self.tail.is_some() {
                return Ok(None);
            }
            if self.scan.is_none() {
                let Some((zxid_first, name)) = self.segments.pop() else {
                    let zxid_last = self.zxid_last.unwrap_or(-1).max(self.zxid_snapshot);
                    self.tail = Some(LogTail {
                        zxid_last,
                        segment: None,
                    });
                    return Ok(None);
                };
                let scan = self.open_segment(zxid_first, &name)?;
                self.scan = Some((name, scan));
            }
            let (_, scan) = self.scan.as_mut().expect("a segment is open");
            match scan.next_record()? {
                Some(ScannedRecord { zxid, payload, .. }) => {
                    self.zxid_last = Some(zxid);
                    if zxid > self.zxid_snapshot {
                        return Ok(Some(LogRecord { zxid, payload }));
                    }
                }
                None => self.end_segment()?,
            }
        }
    }

    fn open_segment(
        &mut self,
        zxid_first: i64,
        name: &str,
    ) -> Result<SegmentScan<R::Reader>, WalError> {
        let file = self.fs.display(name);
        let reader = self
            .fs
            .open_read(name)
            .map_err(|e| WalError::io("open", &file, e))?;
        let scan = SegmentScan::open(reader, file.clone())?;
        let header = *scan.header();
        if header.zxid_first != zxid_first {
            let reason = format!(
                "header says first zxid {:#x}, name says {zxid_first:#x}",
                header.zxid_first
            );
            return Err(WalError::Corrupt {
                file,
                offset: 0,
                reason,
            });
        }
        let gap = match self.zxid_last {
            // The first segment needed: nothing may be missing after the snapshot.
            None => header.zxid_previous > self.zxid_snapshot,
            Some(zxid_last) => header.zxid_previous != zxid_last,
        };
        if gap {
            let before = self.zxid_last.unwrap_or(self.zxid_snapshot);
            let reason = format!(
                "segment follows zxid {:#x}, but the log before it ends at {before:#x} (a segment is missing)",
                header.zxid_previous
            );
            return Err(WalError::Gap { file, reason });
        }
        self.zxid_last.get_or_insert(header.zxid_previous);
        Ok(scan)
    }

    fn end_segment(&mut self) -> Result<(), WalError> {
        let (name, mut scan) = self.scan.take().expect("a segment is open");
        let end = scan.end().expect("scan ended").clone();
        let is_last = self.segments.is_empty();
        let corrupt_at = if is_last {
            end.unexplained_at
        } else {
            end.leftover_at.or(end.unexplained_at)
        };
        if corrupt_at.is_some() {
            let reason = format!(
                "damaged bytes at {} are followed by a valid record at {}{}",
                end.offset,
                corrupt_at.unwrap_or(0),
                match &end.kind {
                    EndKind::Torn { reason } => format!(" ({reason})"),
                    EndKind::Clean => " (zero header)".to_string(),
                }
            );
            return Err(WalError::Corrupt {
                file: scan.file().to_string(),
                offset: end.offset,
                reason,
            });
        }
        if !is_last {
            return Ok(());
        }
        if end.is_torn() {
            let reason = match &end.kind {
                EndKind::Torn { reason } => reason.clone(),
                EndKind::Clean => "leftover records of an unacknowledged write".to_string(),
            };
            tracing::warn!(file = %scan.file(), offset = end.offset, %reason, "torn log tail cut at the last good record");
        }
        let scrub_end = if end.leftover_at.is_some() {
            end.window_end().min(scan.len())
        } else {
            end.offset
        };
        let segment = SegmentTail {
            name,
            header: *scan.header(),
            records: scan.records(),
            end: end.offset,
            tail_block: scan.tail_block()?,
            scrub_end,
        };
        let zxid_last = self.zxid_last.unwrap_or(-1).max(self.zxid_snapshot);
        self.tail = Some(LogTail {
            zxid_last,
            segment: Some(segment),
        });
        Ok(())
    }
}

impl<R: ReadFs> Iterator for LogReader<R> {
    type Item = Result<LogRecord, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        match self.next_record() {
            Ok(record) => record.map(Ok),
            Err(error) => {
                self.failed = true;
                Some(Err(error))
            }
        }
    }
}
