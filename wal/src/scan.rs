//! Reading one segment: records in order, then a verdict on how it ends.
//!
//! The records are read from the segment's record stream (format 2: the
//! sectors with their stamps taken off; format 1: the file from byte 4096
//! on). Where the records stop, at stream offset X, the verdict says what
//! that end means (the rules are in `format.rs`, "Telling a torn write from
//! damage"):
//!
//! ```text
//!  [header][rec][rec][rec] X ··· rest of the write's extent ··· | rest of the file
//!          └───── write n-1 ─┘└──── write n: whole, or torn? ────┘
//! ```
//!
//! - `Clean`: the last write landed whole and the stream ends where it said.
//! - `Torn`: the last write never completed, and the cut at X drops only its
//!   records; none was acknowledged. The writer zeroes `[X, scrub_end)`.
//! - `Corrupt`: bytes that were durable are damaged; recovery refuses.
//!
//! Every sector is classified once, as it is read; the verdict then re-reads
//! only the last write's extent.

use crate::error::WalError;
use crate::format::{
    classify_sector, decode_record, sector_count, sector_file_offset, stream_capacity,
    stream_file_offset, write_extent, Decoded, SectorClass, SectorStamp, SegmentHeader,
    BLOCK_STREAM_BYTES, FORMAT_VERSION_V1, RECORD_HEADER_BYTES, SECTOR_BYTES, SECTOR_STAMP_BYTES,
    SECTOR_STREAM_BYTES, SEGMENT_HEADER_BYTES,
};
use crate::fs::ReadAt;

/// Bytes read from the file at a time.
pub(crate) const READ_CHUNK_BYTES: usize = 1 << 20;

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
    /// The last write landed whole: a zero record header, or the end of the file.
    Clean,
    /// The last write never completed; what it left after the last good
    /// record is cut (it was never acknowledged).
    Torn { reason: String },
    /// Bytes that were durable are damaged; `at` is the file offset where the
    /// records stop (the first one that cannot be read), `reason` says more.
    Corrupt { at: u64, reason: String },
}

/// Where and how the data of a segment ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentEnd {
    /// The file offset just after the last good record (where the next
    /// record would start).
    pub offset: u64,
    /// The same position in the record stream.
    pub stream_offset: u64,
    pub kind: EndKind,
    /// The writer zeroes the file from the block after `offset` up to here
    /// before appending (leftovers of a torn write, or of a truncation that
    /// was cut short); at or below `offset`: nothing to zero.
    pub scrub_end: u64,
    /// The highest write number stamped in this life of the segment (0: none
    /// yet, or format 1).
    pub write_last: u32,
}

impl SegmentEnd {
    /// Whether the end is anything but a plain clean end.
    pub fn is_torn(&self) -> bool {
        matches!(self.kind, EndKind::Torn { .. })
    }
}

/// Why the record stream stopped at X.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stop {
    /// A zero record header.
    ZeroHeader,
    /// Fewer than a record header's bytes left in the segment.
    EndOfSegment,
    /// Bytes that are not a record sealed with this salt.
    Invalid(String),
}

/// Reads the records of one segment file in order.
#[derive(Debug)]
pub struct SegmentScan<Rd: ReadAt> {
    pub(crate) reader: Rd,
    pub(crate) file: String,
    pub(crate) header: SegmentHeader,
    /// File length.
    pub(crate) len: u64,
    /// Record-stream bytes the file holds.
    pub(crate) stream_len: u64,
    /// Stream bytes starting at `buf_start`.
    pub(crate) buf: Vec<u8>,
    pub(crate) buf_start: u64,
    /// File bytes read for sectors, reused.
    raw: Vec<u8>,
    /// Stream offset of the next record.
    pub(crate) offset: u64,
    pub(crate) zxid_last: i64,
    records: u64,
    end: Option<SegmentEnd>,
    /// Format 2: sectors `[0, sectors_classified)` have been classified.
    sectors_classified: u64,
    /// The stamp with the highest write number seen.
    latest: Option<SectorStamp>,
    /// One past the last current sector seen.
    current_end: u64,
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
            accept_loss: None,
        })?;
        let stream_len = if header.version == FORMAT_VERSION_V1 {
            len - SEGMENT_HEADER_BYTES as u64
        } else {
            stream_capacity(len)
        };
        Ok(SegmentScan {
            reader,
            file,
            header,
            len,
            stream_len,
            buf: Vec::new(),
            buf_start: 0,
            raw: Vec::new(),
            offset: 0,
            zxid_last: header.zxid_previous,
            records: 0,
            end: None,
            sectors_classified: 0,
            latest: None,
            current_end: 0,
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

    /// The stream offset just after the last record read.
    pub fn stream_offset(&self) -> u64 {
        self.offset
    }

    /// The file offset that holds stream offset `stream_offset` (the file's
    /// length for the end of a full stream).
    pub fn file_offset(&self, stream_offset: u64) -> u64 {
        if self.header.version == FORMAT_VERSION_V1 {
            SEGMENT_HEADER_BYTES as u64 + stream_offset
        } else if stream_offset >= self.stream_len {
            self.len
        } else {
            stream_file_offset(stream_offset)
        }
    }

    /// The next record, or `None` at the end of the data (then see [`Self::end`]).
    /// Errors: I/O, or a valid record whose zxid does not increase.
    pub fn next_record(&mut self) -> Result<Option<ScannedRecord>, WalError> {
        if self.end.is_some() {
            return Ok(None);
        }
        match self.peek()? {
            Ok((zxid, bytes_total)) => {
                let offset = self.offset;
                let minimum = if self.records == 0 {
                    self.header.zxid_first
                } else {
                    self.zxid_last + 1
                };
                if zxid < minimum || (self.records == 0 && zxid != self.header.zxid_first) {
                    return Err(WalError::Gap {
                        file: self.file.clone(),
                        reason: format!(
                            "record at byte {} has zxid {zxid:#x}, expected {minimum:#x} or above \
                             (previous {:#x}, segment starts at {:#x})",
                            self.file_offset(offset),
                            self.zxid_last,
                            self.header.zxid_first
                        ),
                        accept_loss: None,
                    });
                }
                let payload = self.bytes_at(offset, bytes_total)?[RECORD_HEADER_BYTES..].to_vec();
                self.offset += bytes_total as u64;
                self.zxid_last = zxid;
                self.records += 1;
                Ok(Some(ScannedRecord {
                    zxid,
                    offset: self.file_offset(offset),
                    payload,
                }))
            }
            Err(stop) => {
                self.finish(stop)?;
                Ok(None)
            }
        }
    }

    /// The zxid of the next record, without reading past it: `None` at the
    /// end of the data (the verdict is not made; call `next_record`).
    pub fn peek_zxid(&mut self) -> Result<Option<i64>, WalError> {
        if self.end.is_some() {
            return Ok(None);
        }
        Ok(self.peek()?.ok().map(|(zxid, _)| zxid))
    }

    /// Decodes what lies at the current offset: a record's zxid and length,
    /// or why the stream stops here.
    fn peek(&mut self) -> Result<Result<(i64, usize), Stop>, WalError> {
        let offset = self.offset;
        let available = self.stream_len.saturating_sub(offset);
        if available < RECORD_HEADER_BYTES as u64 {
            return Ok(Err(Stop::EndOfSegment));
        }
        let salt = self.header.salt;
        let mut decoded = decode_record(self.bytes_at(offset, RECORD_HEADER_BYTES)?, salt);
        if let Decoded::NeedBytes(n) = decoded {
            decoded = if n as u64 <= available {
                decode_record(self.bytes_at(offset, n)?, salt)
            } else {
                Decoded::NeedBytes(n)
            };
        }
        Ok(match decoded {
            Decoded::Record {
                zxid, bytes_total, ..
            } => Ok((zxid, bytes_total)),
            Decoded::End => Err(Stop::ZeroHeader),
            Decoded::NeedBytes(n) => Err(Stop::Invalid(format!(
                "record of {n} bytes runs past the end of the segment"
            ))),
            Decoded::Invalid(reason) => Err(Stop::Invalid(reason.to_string())),
        })
    }

    /// How the data ends; `None` until `next_record` has returned `None`.
    pub fn end(&self) -> Option<&SegmentEnd> {
        self.end.as_ref()
    }

    /// The stream bytes of the block holding the end, from its start up to the end.
    pub fn tail_block(&mut self) -> Result<Vec<u8>, WalError> {
        let end = self.end.as_ref().expect("scan finished").stream_offset;
        let block = if self.header.version == FORMAT_VERSION_V1 {
            crate::format::BLOCK_BYTES as u64
        } else {
            BLOCK_STREAM_BYTES as u64
        };
        let start = end / block * block;
        Ok(self.bytes_at(start, (end - start) as usize)?.to_vec())
    }

    /// One past the last sector of this life seen so far (all of them after
    /// [`Self::latest_write`]).
    pub(crate) fn current_end(&self) -> u64 {
        self.current_end
    }

    /// The stamp of the newest write in the whole file (format 2), reading
    /// and classifying whatever was not read yet.
    pub fn latest_write(&mut self) -> Result<Option<SectorStamp>, WalError> {
        if self.header.version != FORMAT_VERSION_V1 {
            self.classify_until(sector_count(self.len))?;
        }
        Ok(self.latest)
    }

    fn finish(&mut self, stop: Stop) -> Result<(), WalError> {
        let end = if self.header.version == FORMAT_VERSION_V1 {
            self.finish_v1(stop)?
        } else {
            self.finish_v2(stop)?
        };
        self.end = Some(end);
        Ok(())
    }

    /// The format-2 verdict (see `format.rs`).
    fn finish_v2(&mut self, stop: Stop) -> Result<SegmentEnd, WalError> {
        let x = self.offset;
        let sectors = sector_count(self.len);
        self.classify_until(sectors)?;
        let mut end = SegmentEnd {
            offset: self.file_offset(x),
            stream_offset: x,
            kind: EndKind::Clean,
            scrub_end: 0,
            write_last: self.latest.map_or(0, |s| s.write),
        };
        let Some(latest) = self.latest else {
            // No write of this life landed at all.
            end.kind = match (x, stop) {
                (0, Stop::ZeroHeader | Stop::EndOfSegment) => EndKind::Clean,
                (0, Stop::Invalid(reason)) => EndKind::Torn {
                    reason: format!("no write of this segment landed ({reason})"),
                },
                _ => EndKind::Corrupt {
                    at: end.offset,
                    reason: "records without any valid sector stamp".to_string(),
                },
            };
            return Ok(end);
        };
        let (first, last) = write_extent(latest.records_start, latest.records_end, self.stream_len);
        let (whole, bad_at) = self.check_extent(latest, first, last)?;
        let describe = |what: &str| {
            format!(
                "the last write (number {}, records at stream bytes {}..{}) {what}",
                latest.write, latest.records_start, latest.records_end
            )
        };
        end.kind = if let Some(bad) = bad_at {
            EndKind::Corrupt {
                at: end.offset,
                reason: describe(&format!("has a damaged sector at byte {bad}")),
            }
        } else if whole {
            let clean_stop = matches!(stop, Stop::ZeroHeader | Stop::EndOfSegment);
            if x == latest.records_end && clean_stop {
                EndKind::Clean
            } else {
                let why = match &stop {
                    Stop::Invalid(reason) => reason.clone(),
                    _ => "zero header".to_string(),
                };
                EndKind::Corrupt {
                    at: end.offset,
                    reason: describe(&format!(
                        "landed whole, yet its records stop at stream byte {x} ({why})"
                    )),
                }
            }
        } else if x < latest.records_start {
            EndKind::Corrupt {
                at: end.offset,
                reason: describe(&format!(
                    "never completed, but the records stop before it, at stream byte {x}"
                )),
            }
        } else {
            EndKind::Torn {
                reason: describe("never completed (a sector of it holds older data)"),
            }
        };
        // Whatever of this life lies after the cut goes before new records
        // do: the rest of a torn write, and any sector of this life past the
        // last write's extent (a truncation cut short).
        let scrub_sectors = match end.kind {
            EndKind::Torn { .. } => self.current_end.max(last),
            EndKind::Clean if self.current_end > last => self.current_end,
            _ => 0,
        };
        end.scrub_end = sector_file_offset(scrub_sectors)
            .min(self.len)
            .max(end.offset);
        Ok(end)
    }

    /// Re-reads the sectors `[first, last)` of the newest write: whether they
    /// all carry its stamp, and the file offset of the first damaged one.
    fn check_extent(
        &mut self,
        latest: SectorStamp,
        first: u64,
        last: u64,
    ) -> Result<(bool, Option<u64>), WalError> {
        let mut whole = true;
        let mut sector = first;
        while sector < last {
            let count = (last - sector).min((READ_CHUNK_BYTES / SECTOR_BYTES) as u64);
            self.read_sectors(sector, count)?;
            for i in 0..count as usize {
                let at = sector_file_offset(sector + i as u64);
                let bytes = &self.raw[i * SECTOR_BYTES..(i + 1) * SECTOR_BYTES];
                match classify_sector(bytes, at, self.header.salt) {
                    SectorClass::Bad => return Ok((false, Some(at))),
                    SectorClass::Current(stamp) if stamp == latest => {}
                    SectorClass::Current(stamp) if stamp.write == latest.write => {
                        // Same write number, other records: no writer did that.
                        return Ok((false, Some(at)));
                    }
                    _ => whole = false,
                }
            }
            sector += count;
        }
        Ok((whole, None))
    }

    /// Reads `count` whole sectors from sector `first` into `raw`.
    fn read_sectors(&mut self, first: u64, count: u64) -> Result<(), WalError> {
        self.raw.resize(count as usize * SECTOR_BYTES, 0);
        let n = self
            .reader
            .read_at(sector_file_offset(first), &mut self.raw)
            .map_err(|e| WalError::io("read", &self.file, e))?;
        if n < self.raw.len() {
            return Err(WalError::io(
                "read",
                &self.file,
                std::io::ErrorKind::UnexpectedEof.into(),
            ));
        }
        Ok(())
    }

    /// Classifies the sectors `[sectors_classified, end)`.
    fn classify_until(&mut self, end: u64) -> Result<(), WalError> {
        while self.sectors_classified < end {
            let first = self.sectors_classified;
            let count = (end - first).min((READ_CHUNK_BYTES / SECTOR_BYTES) as u64);
            self.read_sectors(first, count)?;
            self.classify_raw(first, count);
        }
        Ok(())
    }

    /// Classifies the sectors in `raw` (sector `first` on) not classified yet.
    fn classify_raw(&mut self, first: u64, count: u64) {
        assert!(
            first <= self.sectors_classified,
            "sectors classified in order"
        );
        for index in self.sectors_classified..first + count {
            let i = (index - first) as usize;
            let bytes = &self.raw[i * SECTOR_BYTES..(i + 1) * SECTOR_BYTES];
            let class = classify_sector(bytes, sector_file_offset(index), self.header.salt);
            if let SectorClass::Current(stamp) = class {
                if self.latest.is_none_or(|l| stamp.write > l.write) {
                    self.latest = Some(stamp);
                }
                self.current_end = index + 1;
            }
        }
        self.sectors_classified = self.sectors_classified.max(first + count);
    }

    /// The buffered stream bytes from `offset` on: at least `len` of them
    /// (fewer only at the end of the stream), reading only when needed.
    pub(crate) fn bytes_from(&mut self, offset: u64, len: usize) -> Result<&[u8], WalError> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        if offset < self.buf_start || (offset + len as u64).min(self.stream_len) > buf_end {
            self.bytes_at(offset, len)?;
        }
        Ok(&self.buf[(offset - self.buf_start) as usize..])
    }

    /// `len` stream bytes at `offset` (fewer only at the end of the stream),
    /// read through a buffer of at least `READ_CHUNK_BYTES`.
    pub(crate) fn bytes_at(&mut self, offset: u64, len: usize) -> Result<&[u8], WalError> {
        let buf_end = self.buf_start + self.buf.len() as u64;
        let want_end = (offset + len as u64).min(self.stream_len);
        if offset < self.buf_start || want_end > buf_end {
            let size = (self.stream_len.saturating_sub(offset))
                .min(len.max(READ_CHUNK_BYTES) as u64) as usize;
            if self.header.version == FORMAT_VERSION_V1 {
                self.fill_v1(offset, size)?;
            } else {
                self.fill_v2(offset, size)?;
            }
        }
        let start = (offset - self.buf_start) as usize;
        let end = (start + len).min(self.buf.len());
        Ok(&self.buf[start.min(end)..end])
    }

    fn fill_v1(&mut self, offset: u64, size: usize) -> Result<(), WalError> {
        self.buf.resize(size, 0);
        let n = self
            .reader
            .read_at(SEGMENT_HEADER_BYTES as u64 + offset, &mut self.buf)
            .map_err(|e| WalError::io("read", &self.file, e))?;
        self.buf.truncate(n);
        self.buf_start = offset;
        Ok(())
    }

    /// Reads the sectors holding stream `[offset, offset + size)`, classifies
    /// the new ones, and keeps their stream bytes from `offset` on.
    fn fill_v2(&mut self, offset: u64, size: usize) -> Result<(), WalError> {
        let per = SECTOR_STREAM_BYTES as u64;
        let first = offset / per;
        let last = (offset + size as u64)
            .div_ceil(per)
            .min(sector_count(self.len));
        if first > self.sectors_classified {
            self.classify_until(first)?;
        }
        self.read_sectors(first, last - first)?;
        if first + (last - first) > self.sectors_classified {
            self.classify_raw(first, last - first);
        }
        self.buf.clear();
        for sector in self.raw.chunks(SECTOR_BYTES) {
            self.buf.extend_from_slice(&sector[SECTOR_STAMP_BYTES..]);
        }
        let skip = (offset - first * per) as usize;
        self.buf.drain(..skip);
        self.buf_start = offset;
        Ok(())
    }
}
