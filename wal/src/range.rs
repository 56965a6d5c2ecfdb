//! Reading recent records back while the writer is open (ZAB's DIFF: the
//! leader sends a follower the committed records it lacks).
//!
//! [`read_log_range`] streams the records with zxid in `(after, to]` from the
//! segments on disk, the one being written included. It reads through its own
//! blocking [`ReadFs`] handles and never touches the writer: pass
//! `to <= writer.zxid_durable()`, and every byte it returns was made durable
//! before it was read, so a write in flight (which rewrites the tail block
//! with the same bytes below the durable end) cannot change what it sees. It
//! stops at `to` without judging the tail. With the glommio writer, run it on
//! a thread of its own over a [`crate::StdDir`] of the same directory (the
//! kernel keeps buffered reads coherent with O_DIRECT writes).
//!
//! When the log no longer holds the whole range (purged, truncated, or never
//! written), the reader returns [`WalError::NotInLog`]: the leader sends a
//! snapshot instead.

use crate::error::WalError;
use crate::fs::ReadFs;
use crate::recovery::{first_needed_segment, list_segments, LogRecord};
use crate::scan::SegmentScan;

/// The records with zxid in `(zxid_after, zxid_to]`, in order.
#[derive(Debug)]
pub struct LogRange<R: ReadFs> {
    fs: R,
    /// Segments still to read, the next one last.
    segments: Vec<(i64, String)>,
    zxid_after: i64,
    zxid_to: i64,
    /// The last zxid logged in the segments read so far.
    zxid_last: Option<i64>,
    scan: Option<SegmentScan<R::Reader>>,
    done: bool,
}

/// Starts reading the records with zxid in `(zxid_after, zxid_to]` from the
/// log directory `fs`. Errors come from the iterator, one at most, ending it.
pub fn read_log_range<R: ReadFs>(
    fs: R,
    zxid_after: i64,
    zxid_to: i64,
) -> Result<LogRange<R>, WalError> {
    let mut segments = list_segments(&fs)?;
    let start = first_needed_segment(&segments, zxid_after);
    segments.drain(..start);
    segments.reverse();
    Ok(LogRange {
        fs,
        segments,
        zxid_after,
        zxid_to,
        zxid_last: None,
        scan: None,
        done: zxid_to <= zxid_after,
    })
}

impl<R: ReadFs> LogRange<R> {
    fn not_in_log(&self, reason: String) -> WalError {
        WalError::NotInLog {
            dir: crate::recovery::dir_name(&self.fs.display("")),
            zxid_after: self.zxid_after,
            zxid_to: self.zxid_to,
            reason,
        }
    }

    fn next_record(&mut self) -> Result<Option<LogRecord>, WalError> {
        loop {
            if self.scan.is_none() && !self.open_next()? {
                let last = self.zxid_last.unwrap_or(self.zxid_after);
                return Err(self.not_in_log(format!("the log ends at zxid {last:#x}")));
            }
            let scan = self.scan.as_mut().expect("a segment is open");
            match scan.peek_zxid()? {
                Some(zxid) if zxid > self.zxid_to => return Ok(None),
                Some(_) => {
                    let record = scan.next_record()?.expect("a record was peeked");
                    self.zxid_last = Some(record.zxid);
                    if record.zxid > self.zxid_after {
                        return Ok(Some(LogRecord {
                            zxid: record.zxid,
                            payload: record.payload,
                        }));
                    }
                }
                None if self.zxid_last.is_some_and(|z| z >= self.zxid_to) => return Ok(None),
                None => self.scan = None,
            }
        }
    }

    /// Opens the next segment, checking it follows on from what was read.
    fn open_next(&mut self) -> Result<bool, WalError> {
        let Some((zxid_first, name)) = self.segments.pop() else {
            return Ok(false);
        };
        let file = self.fs.display(&name);
        let reader = self
            .fs
            .open_read(&name)
            .map_err(|e| WalError::io("open", &file, e))?;
        let scan = SegmentScan::open(reader, file.clone())?;
        let header = *scan.header();
        match self.zxid_last {
            None if header.zxid_previous > self.zxid_after => {
                return Err(self.not_in_log(format!(
                    "the oldest segment that could hold them, {file}, starts after zxid {:#x}",
                    header.zxid_previous
                )));
            }
            Some(last) if header.zxid_previous != last => {
                return Err(WalError::Gap {
                    file,
                    reason: format!(
                        "segment follows zxid {:#x}, but the log before it ends at {last:#x}",
                        header.zxid_previous
                    ),
                    accept_loss: None,
                });
            }
            _ => {}
        }
        if header.zxid_first != zxid_first {
            return Err(WalError::Corrupt {
                file,
                offset: 0,
                reason: format!(
                    "header says first zxid {:#x}, name says {zxid_first:#x}",
                    header.zxid_first
                ),
                accept_loss: None,
            });
        }
        self.zxid_last.get_or_insert(header.zxid_previous);
        self.scan = Some(scan);
        Ok(true)
    }
}

impl<R: ReadFs> Iterator for LogRange<R> {
    type Item = Result<LogRecord, WalError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.next_record() {
            Ok(Some(record)) => Some(Ok(record)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(error) => {
                self.done = true;
                Some(Err(error))
            }
        }
    }
}
