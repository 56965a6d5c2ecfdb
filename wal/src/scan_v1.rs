//! The end of a format-1 segment (no sector stamps), as earlier versions
//! judged it. Stream offsets here are file offsets minus the header block.
//!
//! ```text
//!  [header][rec][rec][rec] X ·········· window ·········· | ········· rest of file
//!                          │ zeros, stale or torn bytes    │ must hold no valid record
//!                          └ the cut     (a torn write may have left valid
//!                                         records here; none acked)
//! ```
//!
//! At most one write was ever unsynced, starting at or before the block
//! holding X and at most `WRITE_BYTES_MAX_V1` long. So a valid record inside
//! the window after X whose write began at or before X is a leftover of an
//! unacknowledged write (torn); a valid record whose write began after X, or
//! one past the window, means durable bytes are damaged. A damaged last record
//! with nothing valid after it cannot be told from a torn one: it is cut.

use crate::error::WalError;
use crate::format::{
    align_down, decode_record, peek_header, Decoded, RECORD_HEADER_BYTES, RECORD_PAYLOAD_BYTES_MAX,
    WRITE_BYTES_MAX_V1,
};
use crate::fs::ReadAt;
use crate::scan::{EndKind, SegmentEnd, SegmentScan, Stop};

impl<Rd: ReadAt> SegmentScan<Rd> {
    pub(crate) fn finish_v1(&mut self, stop: Stop) -> Result<SegmentEnd, WalError> {
        let cut = self.offset;
        let window_end = (align_down(cut) + WRITE_BYTES_MAX_V1 as u64).min(self.stream_len);
        let mut leftover_at = None;
        let mut unexplained_at = None;
        let mut at = cut + 1;
        while let Some((found, bytes_total, write_start)) = self.find_valid(at, window_end)? {
            if write_start > cut {
                unexplained_at = Some(found);
                break;
            }
            leftover_at.get_or_insert(found);
            at = found + bytes_total as u64;
        }
        if unexplained_at.is_none() {
            let after = window_end.max(cut + 1);
            unexplained_at = self
                .find_valid(after, self.stream_len)?
                .map(|(found, _, _)| found);
        }
        let offset = self.file_offset(cut);
        let stop_reason = match &stop {
            Stop::Invalid(reason) => reason.clone(),
            Stop::ZeroHeader | Stop::EndOfSegment => "zero header".to_string(),
        };
        let kind = if let Some(found) = unexplained_at {
            EndKind::Corrupt {
                at: offset,
                reason: format!(
                    "damaged bytes at {offset} are followed by a valid record at {} ({stop_reason})",
                    self.file_offset(found)
                ),
            }
        } else if let Some(found) = leftover_at {
            EndKind::Torn {
                reason: format!(
                    "{stop_reason}; leftover records of an unacknowledged write at {}",
                    self.file_offset(found)
                ),
            }
        } else if let Stop::Invalid(reason) = stop {
            EndKind::Torn { reason }
        } else {
            EndKind::Clean
        };
        let scrub_end = if leftover_at.is_some() {
            self.file_offset(window_end)
        } else {
            offset
        };
        Ok(SegmentEnd {
            offset,
            stream_offset: cut,
            kind,
            scrub_end,
            write_last: 0,
        })
    }

    /// The first record in `[from, to)` sealed with this segment's salt and
    /// with a zxid above the last good one: (offset, length, where its write began).
    fn find_valid(&mut self, from: u64, to: u64) -> Result<Option<(u64, usize, u64)>, WalError> {
        let mut at = from;
        while at < to && at + RECORD_HEADER_BYTES as u64 <= self.stream_len {
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
            || at + total as u64 > self.stream_len
            || zxid <= self.zxid_last
            || zxid < self.header.zxid_first
            || u64::from(write_offset) > at
        {
            return Ok(None);
        }
        let salt = self.header.salt;
        Ok(match decode_record(self.bytes_at(at, total)?, salt) {
            Decoded::Record { .. } => Some((at, total, at - u64::from(write_offset))),
            _ => None,
        })
    }
}
