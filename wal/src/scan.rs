//! Reading one segment: records in order, then a verdict on how it ends.
//!
//! The end of the data is where the first position that is not a record sealed
//! with this segment's salt lies. What follows decides what that end means:
//!
//! ```text
//!  [header][rec][rec][rec] X ·········· window ·········· | ········· rest of file
//!                          │ zeros, stale or torn bytes    │ must hold no valid record
//!                          └ the cut     (last segment: a torn write may have
//!                                         left valid records here; none acked)
//! ```
//!
//! At most one write is ever unsynced (see the writer), and it starts at or
//! before the block holding X and is at most `WRITE_BYTES_MAX` long. So in the
//! last segment, a valid record inside the window after X whose write began
//! at or before X is a leftover of an unacknowledged write (a torn tail). A
//! valid record whose write began after X, one past the window, or any valid
//! record after X in an earlier segment means bytes that were durable are
//! damaged: corruption, reported with the file and offset.

use crate::error::WalError;
use crate::format::{
    align_down, decode_record, peek_header, Decoded, SegmentHeader, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, SEGMENT_HEADER_BYTES, WRITE_BYTES_MAX,
};
use crate::fs::ReadAt;

/// Bytes read from the file at a time.
const READ_CHUNK_BYTES: usize = 1 << 20;

/// One record read back from a segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScannedRecord {
    pub zxid: i64,
    /// Where the record starts in its segment file.
    pub offset: u64,
    pub payload: Vec<u8>,
}

/// How the data of a segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndKind {
    /// A zero record header, or the end of the file.
    Clean,
    /// Bytes that are not a record: a torn or damaged write.
    Torn { reason: String },
}

/// Where and how the data of a segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEnd {
    /// The offset just after the last good record.
    pub offset: u64,
    pub kind: EndKind,
    /// The first valid record after `offset` that a torn last write can
    /// explain (its write began at or before `offset`, inside the window).
    pub leftover_at: Option<u64>,
    /// The first valid record after `offset` that no torn write explains:
    /// the bytes at `offset` were durable once, so they are corrupt.
    pub unexplained_at: Option<u64>,
}

impl SegmentEnd {
    /// Whether the end is anything but a plain clean end.
    pub fn is_torn(&self) -> bool {
        matches!(self.kind, EndKind::Torn { .. }) || self.leftover_at.is_some()
    }

    /// The offset just past the torn-write window that starts at this end.
    pub fn window_end(&self) -> u64 {
        align_down(self.offset) + WRITE_BYTES_MAX as u64
    }
}

/// Reads the records of one segment file in order.
#[derive(Debug)]
pub struct SegmentScan<Rd: ReadAt> {
    reader: Rd,
    file: String,
    header: SegmentHeader,
    len: u64,
    buf: Vec<u8>,
    buf_start: u64,
    offset: u64,
    zxid_last: i64,
    records: u64,
    end: Option<SegmentEnd>,
}

impl<Rd: ReadAt> SegmentScan<Rd> {
    /// Reads and checks the segment header. `file` names the file in errors.
    pub fn open(reader: Rd, file: String) -> Result<Self, WalError> {
        let len = reader.len();
        let mut block = vec![0u8; SEGMENT_HEADER_BYTES];
        let n = reader
            .read_at(0, &mut block)
            .map_err(|e| WalError::io("read", &file, e))?;
        let header = SegmentHeader::decode(&block[..n]).map_err(|e| WalError::Corrupt {
            file: file.clone(),
            offset: 0,
            reason: e.to_string(),
        })?;
        Ok(SegmentScan {
            reader,
            file,
            header,
            len,
            buf: Vec::new(),
            buf_start: 0,
            offset: SEGMENT_HEADER_BYTES as u64,
            zxid_last: header.zxid_previous,
            records: 0,
            end: None,
        })
    }

    pub fn header(&self) -> &SegmentHeader {
        &self.header
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Valid records read so far.
    pub fn records(&self) -> u64 {
        self.records
    }

    /// The zxid of the last record read (the header's previous zxid before any).
    pub fn zxid_last(&self) -> i64 {
        self.zxid_last
    }

    /// The next record, or `None` at the end of the data (then see [`Self::end`]).
    /// Errors: I/O, or a valid record whose zxid does not increase.
    pub fn next_record(&mut self) -> Result<Option<ScannedRecord>, WalError> {
        if self.end.is_some() {
            return Ok(None);
        }
        let offset = self.offset;
        let available = self.len.saturating_sub(offset);
        if available < RECORD_HEADER_BYTES as u64 {
            self.finish(EndKind::Clean)?;
            return Ok(None);
        }
        let want = (available as usize).min(RECORD_HEADER_BYTES + RECORD_PAYLOAD_BYTES_MAX);
        let salt = self.header.salt;
        let mut decoded = decode_record(self.bytes_at(offset, RECORD_HEADER_BYTES)?, salt);
        if let Decoded::NeedBytes(n) = decoded {
            decoded = if n as u64 <= available {
                decode_record(self.bytes_at(offset, n.min(want))?, salt)
            } else {
                Decoded::NeedBytes(n)
            };
        }
        match decoded {
            Decoded::Record {
                zxid, bytes_total, ..
            } => {
                let minimum = if self.records == 0 {
                    self.header.zxid_first
                } else {
                    self.zxid_last + 1
                };
                if zxid < minimum || (self.records == 0 && zxid != self.header.zxid_first) {
                    return Err(WalError::Gap {
                        file: self.file.clone(),
                        reason: format!(
                            "record at byte {offset} has zxid {zxid:#x}, expected {minimum:#x} or above \
                             (previous {:#x}, segment starts at {:#x})",
                            self.zxid_last, self.header.zxid_first
                        ),
                    });
                }
                let payload = self.bytes_at(offset, bytes_total)?[RECORD_HEADER_BYTES..].to_vec();
                self.offset += bytes_total as u64;
                self.zxid_last = zxid;
                self.records += 1;
                Ok(Some(ScannedRecord {
                    zxid,
                    offset,
                    payload,
                }))
            }
            Decoded::End => {
                self.finish(EndKind::Clean)?;
                Ok(None)
            }
            Decoded::NeedBytes(n) => {
                let reason = format!("record of {n} bytes runs past the end of the file");
                self.finish(EndKind::Torn { reason })?;
                Ok(None)
            }
            Decoded::Invalid(reason) => {
                self.finish(EndKind::Torn {
                    reason: reason.to_string(),
                })?;
                Ok(None)
            }
        }
    }

    /// How the data ends; `None` until `next_record` has returned `None`.
    pub fn end(&self) -> Option<&SegmentEnd> {
        self.end.as_ref()
    }

    /// The bytes of the block holding the end, from its start up to the end.
    pub fn tail_block(&mut self) -> Result<Vec<u8>, WalError> {
        let end = self.end.as_ref().expect("scan finished").offset;
        let start = align_down(end);
        Ok(self.bytes_at(start, (end - start) as usize)?.to_vec())
    }

    fn finish(&mut self, kind: EndKind) -> Result<(), WalError> {
        let cut = self.offset;
        let mut end = SegmentEnd {
            offset: cut,
            kind,
            leftover_at: None,
            unexplained_at: None,
        };
        let window_end = end.window_end().min(self.len);
        let mut at = cut + 1;
        while let Some((found, bytes_total, write_start)) = self.find_valid(at, window_end)? {
            if write_start > cut {
                end.unexplained_at = Some(found);
                break;
            }
            end.leftover_at.get_or_insert(found);
            at = found + bytes_total as u64;
        }
        if end.unexplained_at.is_none() {
            let after = window_end.max(cut + 1);
            end.unexplained_at = self.find_valid(after, self.len)?.map(|(found, _, _)| found);
        }
        self.end = Some(end);
        Ok(())
    }

    /// The first record in `[from, to)` sealed with this segment's salt and
    /// with a zxid above the last good one: (offset, length, where its write began).
    fn find_valid(&mut self, from: u64, to: u64) -> Result<Option<(u64, usize, u64)>, WalError> {
        let mut at = from;
        while at < to && at + RECORD_HEADER_BYTES as u64 <= self.len {
            // Whatever is buffered from `at` on (refilled only when short), so
            // stepping one byte at a time does not re-read the file.
            let bytes = self.bytes_from(at, RECORD_HEADER_BYTES)?;
            let window = bytes.len();
            // A record's header is never all zero: skip zero runs.
            let Some(nonzero) = bytes.iter().position(|&b| b != 0) else {
                at += window as u64;
                continue;
            };
            let first_candidate =
                (at + nonzero as u64).saturating_sub(RECORD_HEADER_BYTES as u64 - 1);
            if first_candidate > at {
                at = first_candidate;
                continue;
            }
            if let Some(found) = self.valid_at(at)? {
                return Ok(Some(found));
            }
            at += 1;
        }
        Ok(None)
    }

    fn valid_at(&mut self, at: u64) -> Result<Option<(u64, usize, u64)>, WalError> {
        let header = self.bytes_at(at, RECORD_HEADER_BYTES)?;
        let Some((zxid, payload_len, write_offset)) = peek_header(header) else {
            return Ok(None);
        };
        let total = RECORD_HEADER_BYTES + payload_len;
        if payload_len > RECORD_PAYLOAD_BYTES_MAX
            || at + total as u64 > self.len
            || zxid <= self.zxid_last
            || zxid < self.header.zxid_first
            || u64::from(write_offset) > at - SEGMENT_HEADER_BYTES as u64
        {
            return Ok(None);
        }
        let salt = self.header.salt;
        Ok(match decode_record(self.bytes_at(at, total)?, salt) {
            Decoded::Record { .. } => Some((at, total, at - u64::from(write_offset))),
            _ => None,
        })
    }

    /// The buffered bytes from `offset` on: at least `len` of them (fewer
    /// only at the end of the file), reading a new chunk only when needed.
    fn bytes_from(&mut self, offset: u64, len: usize) -> Result<&[u8], WalError> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset < self.buf_start || (offset + len as u64).min(self.len) > buf_end {
            self.bytes_at(offset, len)?;
        }
        Ok(&self.buf[(offset - self.buf_start) as usize..])
    }

    /// `len` bytes at `offset` (fewer only at the end of the file), read
    /// through a buffer of at least `READ_CHUNK_BYTES`.
    fn bytes_at(&mut self, offset: u64, len: usize) -> Result<&[u8], WalError> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        let want_end = (offset + len as u64).min(self.len);
        if offset < self.buf_start || want_end > buf_end {
            let size =
                (self.len.saturating_sub(offset)).min(len.max(READ_CHUNK_BYTES) as u64) as usize;
            self.buf.resize(size, 0);
            let n = self
                .reader
                .read_at(offset, &mut self.buf)
                .map_err(|e| WalError::io("read", &self.file, e))?;
            self.buf.truncate(n);
            self.buf_start = offset;
        }
        let start = (offset - self.buf_start) as usize;
        let end = (start + len).min(self.buf.len());
        Ok(&self.buf[start.min(end)..end])
    }
}
