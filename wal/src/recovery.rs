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
//! A torn tail of the last segment (a write that never completed, so never
//! acknowledged; see `format.rs` for how it is told from damage) is cut at
//! the last good record with one warning, and [`LogTail`] tells the writer to
//! zero what lies after the cut. Damage anywhere is an error that names the
//! file, the byte offset and the `fk-tools log truncate` command that accepts
//! the loss; [`LogReader::damage`] then says where it lies, for a server of
//! an ensemble to set it aside and recover the lost records from its peers
//! (protocol-aware recovery, `damage.rs`).

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
    /// The file offset just after the last good record: the next record goes here.
    pub end: u64,
    /// The same position in the segment's record stream.
    pub end_stream: u64,
    /// The stream bytes of the block holding `end`, from the block's start to `end`.
    pub tail_block: Vec<u8>,
    /// The writer zeroes the file after the block holding `end` up to here
    /// before writing (leftovers a torn write or a cut-short truncation left);
    /// `scrub_end <= end` means nothing to do.
    pub scrub_end: u64,
    /// The highest write number stamped in this life of the segment.
    pub write_last: u32,
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
    let snap_dir = dir_name(&snaps.display(""));
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
        snap_dir,
        segments,
        zxid_snapshot,
        zxid_last: None,
        scan: None,
        tail: None,
        failed: false,
        damage: None,
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
    /// The snapshot directory as shown in messages.
    snap_dir: String,
    /// Segments still to read, the next one last.
    segments: Vec<(i64, String)>,
    zxid_snapshot: i64,
    /// The last zxid logged in the segments read so far (`None` before the first).
    zxid_last: Option<i64>,
    /// The segment being read, with its file name.
    scan: Option<(String, SegmentScan<R::Reader>)>,
    tail: Option<LogTail>,
    failed: bool,
    /// Where durable records were found damaged, once an error said so.
    damage: Option<LogDamage>,
}

/// Durable log records found damaged (a [`WalError::Corrupt`] from
/// recovery): what protocol-aware recovery (`damage.rs`) needs to set the
/// damage aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogDamage {
    /// The segment holding the damage (a name in the log directory).
    pub segment: String,
    /// The file offset where its readable records stop.
    pub offset: u64,
    /// The last record readable before the damage: everything after it in
    /// the log is lost.
    pub zxid_good: i64,
    pub reason: String,
}

impl<R: ReadFs> LogReader<R> {
    /// The zxid of the snapshot the log is replayed onto (-1 on a fresh start).
    pub fn zxid_snapshot(&self) -> i64 {
        self.zxid_snapshot
    }

    /// After the stream ended with a [`WalError::Corrupt`]: where the damage
    /// lies and the last good zxid before it.
    pub fn damage(&self) -> Option<&LogDamage> {
        self.damage.as_ref()
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
            let (name, scan) = self.scan.as_mut().expect("a segment is open");
            let next = scan.next_record();
            let zxid_good = scan.zxid_last();
            let name = name.clone();
            match next.map_err(|e| self.damaged(&name, e, Some(zxid_good)))? {
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
        let scan = SegmentScan::open(reader, file.clone())
            .map_err(|e| self.damaged(name, e, self.zxid_last))?;
        let header = *scan.header();
        if header.zxid_first != zxid_first {
            let reason = format!(
                "header says first zxid {:#x}, name says {zxid_first:#x}",
                header.zxid_first
            );
            let error = WalError::Corrupt {
                file,
                offset: 0,
                reason,
                accept_loss: None,
            };
            return Err(self.damaged(name, error, self.zxid_last));
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
            let error = WalError::Gap {
                file,
                reason,
                accept_loss: None,
            };
            return Err(self.with_accept_loss(error, self.zxid_last));
        }
        self.zxid_last.get_or_insert(header.zxid_previous);
        Ok(scan)
    }

    /// [`Self::with_accept_loss`], noting a [`WalError::Corrupt`] in
    /// `name` as damage to durable records (the last good zxid before it:
    /// `zxid_good`, or the snapshot's when nothing of the log was read).
    fn damaged(&mut self, name: &str, error: WalError, zxid_good: Option<i64>) -> WalError {
        if let WalError::Corrupt { offset, reason, .. } = &error {
            self.damage = Some(LogDamage {
                segment: name.to_string(),
                offset: *offset,
                zxid_good: zxid_good.unwrap_or(self.zxid_snapshot),
                reason: reason.clone(),
            });
        }
        self.with_accept_loss(error, zxid_good)
    }

    /// Adds to a damage error the command that cuts the log after
    /// `zxid_good`, the last record before the damage (none: no command).
    fn with_accept_loss(&self, error: WalError, zxid_good: Option<i64>) -> WalError {
        let Some(zxid) = zxid_good else {
            return error;
        };
        let command = format!(
            "fk-tools log truncate --snap-dir {} --log-dir {} --after-zxid {zxid:#x}",
            self.snap_dir,
            dir_name(&self.fs.display(""))
        );
        match error {
            WalError::Corrupt {
                file,
                offset,
                reason,
                accept_loss: None,
            } => WalError::Corrupt {
                file,
                offset,
                reason,
                accept_loss: Some(command),
            },
            WalError::Gap {
                file,
                reason,
                accept_loss: None,
            } => WalError::Gap {
                file,
                reason,
                accept_loss: Some(command),
            },
            other => other,
        }
    }

    fn end_segment(&mut self) -> Result<(), WalError> {
        let (name, mut scan) = self.scan.take().expect("a segment is open");
        let end = scan.end().expect("scan ended").clone();
        let is_last = self.segments.is_empty();
        let damage = match &end.kind {
            EndKind::Corrupt { at, reason } => Some((*at, reason.clone())),
            // A later segment exists, so this one's last write completed.
            EndKind::Torn { reason } if !is_last => Some((
                end.offset,
                format!("{reason}, but a later segment follows, so that write had completed"),
            )),
            _ => None,
        };
        if let Some((offset, reason)) = damage {
            let error = WalError::Corrupt {
                file: scan.file().to_string(),
                offset,
                reason,
                accept_loss: None,
            };
            return Err(self.damaged(&name, error, Some(scan.zxid_last())));
        }
        if !is_last {
            return Ok(());
        }
        if let EndKind::Torn { reason } = &end.kind {
            tracing::warn!(file = %scan.file(), offset = end.offset, %reason, "torn log tail cut at the last good record");
        }
        let segment = SegmentTail {
            name,
            header: *scan.header(),
            records: scan.records(),
            end: end.offset,
            end_stream: end.stream_offset,
            tail_block: scan.tail_block()?,
            scrub_end: end.scrub_end,
            write_last: end.write_last,
        };
        let zxid_last = self.zxid_last.unwrap_or(-1).max(self.zxid_snapshot);
        self.tail = Some(LogTail {
            zxid_last,
            segment: Some(segment),
        });
        Ok(())
    }
}

/// A directory as shown in messages, without the separator `display("")` leaves.
pub(crate) fn dir_name(display: &str) -> String {
    let trimmed = display.trim_end_matches('/');
    if trimmed.is_empty() {
        display.to_string()
    } else {
        trimmed.to_string()
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
