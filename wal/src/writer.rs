//! The log writer: group commit into preallocated segments.
//!
//! ```text
//!  append(z1,p1) append(z2,p2) … append(zn,pn)      staged in memory (bounded)
//!        │
//!  sync() ── encode with the segment's salt ──► one aligned write ──► one fdatasync
//!                                                  │
//!        [tail block prefix][records …][zero header][padding to block]
//!        every 512-byte sector stamped (write n, salt, records start, end)
//! ```
//!
//! Each `sync()` rewrites the block that holds the end of the previous batch
//! (its already-durable stream bytes written again, byte for byte, under the
//! new write's stamps), so every write is block-aligned as O_DIRECT requires,
//! and no space is wasted between batches. Rewriting durable bytes with
//! identical bytes is safe under a torn write: whichever sectors land, old or
//! new, hold the same durable prefix. The stamps are what lets recovery tell
//! a torn write from damage (see `format.rs`).
//!
//! A batch that does not fit in the current segment is split at a record
//! boundary: the first part is written and synced, then the next segment is
//! started and the rest goes there. So at most one write is ever in flight and
//! unsynced.
//!
//! Segments come from spare files (`spare.<hex>`): preallocated by writing
//! zeros, synced, then renamed into place; or recycled by purge. Starting a
//! segment writes its header block, syncs it, renames the spare to
//! `log.<first zxid>` and syncs the directory; after that, fdatasync only ever
//! flushes data into blocks that are already allocated and initialised. A
//! sync that needs new segments makes sure the spares exist before it writes
//! anything, so a full disk returns [`WalError::NoSpace`] with the batch still
//! staged and the writer usable: the caller refuses writes and calls `sync()`
//! again once space returns.
//!
//! Any other failed write or sync poisons the writer: every later call
//! returns [`WalError::WriterFailed`] (STYLE rule 2). The writer reads no
//! clock; the caller times `sync()` with its own.

use crate::error::WalError;
use crate::format::{
    encode_record, encode_sectors, mix64, record_bytes, sector_file_offset, segment_name,
    stream_capacity, write_extent, SectorStamp, SegmentHeader, BATCH_BYTES_MAX, BATCH_RECORDS_MAX,
    BLOCK_BYTES, BLOCK_STREAM_BYTES, FORMAT_VERSION_V1, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, SECTOR_STREAM_BYTES, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX,
    SEGMENT_BYTES_MIN, SEGMENT_HEADER_BYTES, WRITE_BYTES_MAX,
};
use crate::fs::LogFs;
use crate::recovery::{LogTail, SegmentTail};
use crate::spare::{
    ensure_spares, prepare_spare, ready_spares, remove_unfinished_spares, spare_name, take_spare,
    ZERO_CHUNK_BYTES,
};

/// A snapshot rolls the log only once the current segment is at least this
/// fraction (1/n) full (see [`LogWriter::roll_for_snapshot`]).
pub const SNAPSHOT_ROLL_FILL_MIN_DIVISOR: u64 = 4;

/// A segment whose writes reached this number takes no more (the stamp's
/// write number is a u32); the next record starts a new segment.
const WRITE_NUMBER_MAX: u32 = u32::MAX - 1;

/// How the writer behaves. `Default` gives ZooKeeper's defaults.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Size of each segment file (ZooKeeper's preAllocSize), a multiple of 4096.
    pub segment_bytes: u64,
    /// ZooKeeper's forceSync. `false` skips fdatasync after each batch: replies
    /// may then be released for data a power cut loses, and a power cut may
    /// leave a log recovery refuses (more than one write unsynced). Unsafe;
    /// for tests and benchmarks of everything but the disk.
    pub force_sync: bool,
    /// At most this many records per batch (≤ [`BATCH_RECORDS_MAX`]).
    pub batch_records_max: usize,
    /// At most this many framed bytes per batch (≤ [`BATCH_BYTES_MAX`]).
    pub batch_bytes_max: usize,
    /// Seeds the salts of new segments. Pass a fresh random value at each start
    /// (the writer takes randomness as an argument; it reads no global RNG).
    pub salt_seed: u64,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            segment_bytes: SEGMENT_BYTES_DEFAULT,
            force_sync: true,
            batch_records_max: BATCH_RECORDS_MAX,
            batch_bytes_max: BATCH_BYTES_MAX,
            salt_seed: 0,
        }
    }
}

impl WriterConfig {
    /// Checks the values are in range.
    pub fn validate(&self) -> Result<(), WalError> {
        let bad = |what: String| Err(WalError::InvalidConfig(what));
        if !(SEGMENT_BYTES_MIN..=SEGMENT_BYTES_MAX).contains(&self.segment_bytes)
            || !self.segment_bytes.is_multiple_of(BLOCK_BYTES as u64)
        {
            return bad(format!(
                "segment_bytes {} must be a multiple of {BLOCK_BYTES} in [{SEGMENT_BYTES_MIN}, {SEGMENT_BYTES_MAX}]",
                self.segment_bytes
            ));
        }
        if self.batch_records_max == 0 || self.batch_records_max > BATCH_RECORDS_MAX {
            return bad(format!(
                "batch_records_max {} not in [1, {BATCH_RECORDS_MAX}]",
                self.batch_records_max
            ));
        }
        if self.batch_bytes_max < RECORD_HEADER_BYTES || self.batch_bytes_max > BATCH_BYTES_MAX {
            return bad(format!(
                "batch_bytes_max {} not in [16, {BATCH_BYTES_MAX}]",
                self.batch_bytes_max
            ));
        }
        Ok(())
    }

    /// The largest payload one record may carry with this configuration: it
    /// must fit a batch and an empty segment.
    pub fn record_payload_bytes_max(&self) -> usize {
        let segment_room = stream_capacity(self.segment_bytes) as usize - RECORD_HEADER_BYTES;
        RECORD_PAYLOAD_BYTES_MAX
            .min(segment_room)
            .min(self.batch_bytes_max - RECORD_HEADER_BYTES)
    }
}

/// What one `sync()` did, for the caller's metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncStats {
    /// Records made durable.
    pub records: usize,
    /// Their framed size (headers and payloads).
    pub record_bytes: u64,
    /// Bytes handed to the device, including the rewritten tail block, the
    /// sector stamps and padding.
    pub write_bytes: u64,
    /// fdatasync calls for record data (more than one when the batch crossed segments).
    pub fsyncs: u32,
    /// Segments started during this sync.
    pub segments_started: u32,
    /// The highest zxid now durable.
    pub zxid_durable: i64,
}

#[derive(Debug, Clone, Copy)]
struct Staged {
    zxid: i64,
    len: usize,
    roll_before: bool,
}

#[derive(Debug)]
pub(crate) struct Active<File> {
    pub file: File,
    pub name: String,
    pub header: SegmentHeader,
    /// Stream offset where the next record goes: the end of the last record written.
    pub end: u64,
    /// File bytes.
    pub capacity: u64,
    /// Record-stream bytes the file holds.
    pub stream_capacity: u64,
    /// The stream bytes of the block that holds `end`, from its start up to `end`.
    pub tail: Vec<u8>,
    /// The number of the last write stamped in this life of the segment.
    pub write_last: u32,
}

impl<File> Active<File> {
    /// Whether `bytes` more record bytes fit (and a write number is left).
    fn fits(&self, bytes: u64) -> bool {
        self.end + bytes <= self.stream_capacity && self.write_last < WRITE_NUMBER_MAX
    }
}

/// The group-commit log writer. One per log directory, driven by one task.
#[derive(Debug)]
pub struct LogWriter<F: LogFs> {
    pub(crate) fs: F,
    pub(crate) config: WriterConfig,
    pub(crate) active: Option<Active<F::File>>,
    staged: Vec<Staged>,
    staged_payloads: Vec<u8>,
    staged_bytes: usize,
    roll_pending: bool,
    pub(crate) zxid_appended: i64,
    pub(crate) zxid_durable: i64,
    /// The last zxid handed to the device (durable once the sync returns).
    pub(crate) zxid_written: i64,
    segments_started: u64,
    pub(crate) failure: Option<String>,
    stream_buf: Vec<u8>,
    write_buf: Vec<u8>,
}

impl<F: LogFs> LogWriter<F> {
    /// Opens the writer where recovery left the log. If recovery cut a torn
    /// tail, what lies after the cut is made unreadable first (see
    /// [`Self::adopt_tail`]). A format-1 last segment is not appended to:
    /// the next record starts a new segment.
    pub async fn open(fs: F, config: WriterConfig, tail: LogTail) -> Result<Self, WalError> {
        config.validate()?;
        let mut writer = LogWriter {
            fs,
            config,
            active: None,
            staged: Vec::new(),
            staged_payloads: Vec::new(),
            staged_bytes: 0,
            roll_pending: false,
            zxid_appended: tail.zxid_last,
            zxid_durable: tail.zxid_last,
            zxid_written: tail.zxid_last,
            segments_started: 0,
            failure: None,
            stream_buf: Vec::new(),
            write_buf: Vec::new(),
        };
        remove_unfinished_spares(&writer.fs).await?;
        if let Some(segment) = tail.segment {
            writer.adopt_tail(segment).await?;
        }
        writer.check_invariants();
        Ok(writer)
    }

    /// Makes `segment` the active one, continuing after its last good record.
    /// Whatever of this segment's life lies after that record (leftovers of a
    /// torn write or of a cut-short truncation) is made unreadable first: an
    /// empty write at the end, then zeros over the rest, each synced, so no
    /// stale record can ever follow the new ones.
    pub(crate) async fn adopt_tail(&mut self, segment: SegmentTail) -> Result<(), WalError> {
        let file = self
            .fs
            .open(&segment.name)
            .await
            .map_err(|e| self.io("open", &segment.name, e))?;
        let capacity = self
            .fs
            .len(&file)
            .await
            .map_err(|e| self.io("stat", &segment.name, e))?;
        if segment.header.version == FORMAT_VERSION_V1 {
            return self.retire_v1(file, segment).await;
        }
        let stream_capacity = stream_capacity(capacity);
        assert_eq!(
            segment.tail_block.len() as u64,
            segment.end_stream % BLOCK_STREAM_BYTES as u64
        );
        let mut active = Active {
            file,
            name: segment.name,
            header: segment.header,
            end: segment.end_stream,
            capacity,
            stream_capacity,
            tail: segment.tail_block,
            write_last: segment.write_last,
        };
        // Zeroed even when the segment is about to be recycled: its next
        // life must find no record of this one.
        if segment.scrub_end > segment.end {
            self.cut_at_end(&mut active, segment.scrub_end).await?;
        }
        if segment.records == 0 {
            // An empty segment is named by a zxid that was never written;
            // the next record may have another one, so start afresh.
            let name = active.name.clone();
            drop(active);
            self.recycle(&name).await
        } else {
            self.active = Some(active);
            Ok(())
        }
    }

    /// Stamps an empty write at `active.end` (so the stream ends there for
    /// good), syncs, then zeroes the file after that write's extent up to
    /// `zero_end` and syncs again. At every crash point in between, recovery
    /// ends the stream at `active.end` or at a later record of what was
    /// there before (see `format.rs`).
    pub(crate) async fn cut_at_end(
        &mut self,
        active: &mut Active<F::File>,
        zero_end: u64,
    ) -> Result<(), WalError> {
        tracing::info!(file = %self.fs.display(&active.name), from = active.end, to = zero_end,
            "making the log after its last good record unreadable");
        self.write_records(active, &[], 0).await?;
        self.sync_file(active).await?;
        let (_, extent_end) = write_extent(active.end, active.end, active.stream_capacity);
        let mut at = sector_file_offset(extent_end);
        let zero_end = zero_end.min(active.capacity);
        if at >= zero_end {
            return Ok(());
        }
        let zeros = vec![0u8; ZERO_CHUNK_BYTES];
        while at < zero_end {
            let len = (zero_end - at).min(ZERO_CHUNK_BYTES as u64);
            let len = len.div_ceil(BLOCK_BYTES as u64) * BLOCK_BYTES as u64;
            let len = len.min(active.capacity - at) as usize;
            self.fs
                .write_at(&active.file, at, &zeros[..len])
                .await
                .map_err(|e| self.io("write", &active.name, e))?;
            at += len as u64;
        }
        self.sync_file(active).await
    }

    /// A format-1 segment is never appended to: its leftovers are zeroed as
    /// format 1 did, an empty one is removed, and the next record starts a
    /// new segment.
    async fn retire_v1(&mut self, file: F::File, segment: SegmentTail) -> Result<(), WalError> {
        if segment.scrub_end > segment.end {
            let from = segment.end - segment.end % BLOCK_BYTES as u64;
            let to = segment.scrub_end.div_ceil(BLOCK_BYTES as u64) * BLOCK_BYTES as u64;
            let mut chunk = vec![0u8; (to - from) as usize];
            chunk[..segment.tail_block.len()].copy_from_slice(&segment.tail_block);
            self.fs
                .write_at(&file, from, &chunk)
                .await
                .map_err(|e| self.io("write", &segment.name, e))?;
            self.fs
                .sync_data(&file)
                .await
                .map_err(|e| self.io("fdatasync", &segment.name, e))?;
        }
        drop(file);
        if segment.records == 0 {
            self.fs
                .remove(&segment.name)
                .await
                .map_err(|e| self.io("remove", &segment.name, e))?;
            self.fs
                .sync_dir()
                .await
                .map_err(|e| self.io("fsync directory", &segment.name, e))?;
        }
        Ok(())
    }

    /// Stages one record for the next `sync()`. Zxids must strictly increase.
    /// Returns `BatchFull` (changing nothing) when the batch bounds are reached.
    pub fn append(&mut self, zxid: i64, payload: &[u8]) -> Result<(), WalError> {
        self.check_not_failed()?;
        assert!(
            zxid > self.zxid_appended,
            "zxid {zxid} not above {}",
            self.zxid_appended
        );
        let bytes_max = self.config.record_payload_bytes_max();
        if payload.len() > bytes_max {
            return Err(WalError::RecordTooLarge {
                bytes: payload.len(),
                bytes_max,
            });
        }
        if !self.can_append(payload.len()) {
            return Err(WalError::BatchFull {
                records: self.staged.len(),
                bytes: self.staged_bytes,
            });
        }
        self.staged.push(Staged {
            zxid,
            len: payload.len(),
            roll_before: self.roll_pending,
        });
        self.staged_payloads.extend_from_slice(payload);
        self.staged_bytes += record_bytes(payload.len());
        self.roll_pending = false;
        self.zxid_appended = zxid;
        Ok(())
    }

    /// Whether a record with this payload length fits in the current batch.
    pub fn can_append(&self, payload_len: usize) -> bool {
        self.staged.len() < self.config.batch_records_max
            && self.staged_bytes + record_bytes(payload_len) <= self.config.batch_bytes_max
    }

    /// Whether the batch has reached its record bound (a full batch should be synced).
    pub fn is_batch_full(&self) -> bool {
        self.staged.len() >= self.config.batch_records_max
    }

    /// Makes the next appended record start a new segment (called when a
    /// snapshot starts, so older segments can later be purged whole).
    pub fn roll(&mut self) {
        self.roll_pending = true;
    }

    /// A snapshot began: [`LogWriter::roll`], so that older segments can
    /// later be purged whole — unless the current segment is still less than
    /// 1/[`SNAPSHOT_ROLL_FILL_MIN_DIVISOR`] full, where a roll would only
    /// zero-fill another segment (purge keeps whichever segment holds the
    /// snapshot's next zxid either way). The engine's log stage and the
    /// simulator's disk both follow this rule.
    pub fn roll_for_snapshot(&mut self) {
        let worth_rolling = self
            .segment_fill()
            .is_none_or(|(used, capacity)| used >= capacity / SNAPSHOT_ROLL_FILL_MIN_DIVISOR);
        if worth_rolling {
            self.roll();
        }
    }

    /// Writes every staged record and makes it durable with one fdatasync per
    /// segment touched. Replies for these records may be released once this
    /// returns Ok. With nothing staged, does nothing.
    ///
    /// [`WalError::NoSpace`]: the batch needs a new segment and no spare could
    /// be prepared. Nothing was written, the batch stays staged, the writer
    /// stays usable: call `sync()` again when space returns. Any other error
    /// stops the writer.
    pub async fn sync(&mut self) -> Result<SyncStats, WalError> {
        self.check_not_failed()?;
        let mut stats = SyncStats {
            zxid_durable: self.zxid_durable,
            ..SyncStats::default()
        };
        if self.staged.is_empty() {
            return Ok(stats);
        }
        let segments_needed = self.segments_needed();
        if segments_needed > 0 {
            let ready = ensure_spares(&self.fs, self.config.segment_bytes, segments_needed).await;
            if let Err(error) = ready {
                if !error.is_no_space() {
                    self.failure = Some(error.to_string());
                }
                return Err(error);
            }
        }
        let result = self.sync_staged(&mut stats).await;
        self.staged.clear();
        self.staged_payloads.clear();
        self.staged_bytes = 0;
        match result {
            Ok(()) => {
                self.zxid_durable = self.zxid_appended;
                stats.zxid_durable = self.zxid_durable;
                self.check_invariants();
                Ok(stats)
            }
            Err(error) => {
                self.failure = Some(error.to_string());
                Err(error)
            }
        }
    }

    /// How many new segments writing the staged records will start.
    fn segments_needed(&self) -> usize {
        let segment_room = stream_capacity(self.config.segment_bytes);
        let mut room = self
            .active
            .as_ref()
            .filter(|a| a.write_last < WRITE_NUMBER_MAX)
            .map(|a| a.stream_capacity - a.end);
        let mut needed = 0;
        for record in &self.staged {
            let bytes = record_bytes(record.len) as u64;
            if record.roll_before || room.is_none_or(|room| bytes > room) {
                needed += 1;
                room = Some(segment_room);
            }
            room = room.map(|room| room - bytes);
        }
        needed
    }

    async fn sync_staged(&mut self, stats: &mut SyncStats) -> Result<(), WalError> {
        let staged = std::mem::take(&mut self.staged);
        let payloads = std::mem::take(&mut self.staged_payloads);
        let mut encoded = Vec::with_capacity(self.staged_bytes);
        let mut payload_at = 0;
        let mut run_records = 0;
        let mut zxid_run_last = self.zxid_written;
        for record in &staged {
            let bytes = record_bytes(record.len) as u64;
            let fits = self
                .active
                .as_ref()
                .is_some_and(|a| a.fits(encoded.len() as u64 + bytes));
            if record.roll_before || !fits {
                if run_records > 0 {
                    self.write_run(&encoded, run_records, zxid_run_last, stats)
                        .await?;
                    encoded.clear();
                    run_records = 0;
                }
                self.start_segment(record.zxid).await?;
                stats.segments_started += 1;
            }
            let salt = self
                .active
                .as_ref()
                .expect("a segment is active")
                .header
                .salt;
            let write_offset = encoded.len() as u32;
            let payload = &payloads[payload_at..payload_at + record.len];
            encode_record(&mut encoded, salt, record.zxid, write_offset, payload);
            payload_at += record.len;
            run_records += 1;
            zxid_run_last = record.zxid;
        }
        self.write_run(&encoded, run_records, zxid_run_last, stats)
            .await?;
        self.staged = staged;
        self.staged_payloads = payloads;
        Ok(())
    }

    /// Writes encoded records at the end of the active segment, then syncs.
    async fn write_run(
        &mut self,
        encoded: &[u8],
        records: usize,
        zxid_run_last: i64,
        stats: &mut SyncStats,
    ) -> Result<(), WalError> {
        let mut active = self.active.take().expect("a segment is active");
        let result = self.write_records(&mut active, encoded, records).await;
        let result = match result {
            Ok(write_bytes) if self.config.force_sync => {
                stats.fsyncs += 1;
                self.sync_file(&active).await.map(|()| write_bytes)
            }
            other => other,
        };
        self.active = Some(active);
        let write_bytes = result?;
        self.zxid_written = zxid_run_last;
        stats.records += records;
        stats.record_bytes += encoded.len() as u64;
        stats.write_bytes += write_bytes;
        Ok(())
    }

    /// One write: the block holding the end of the stream, `encoded`, the
    /// zero header and padding to the block's end, all stamped as the next
    /// write of the segment. Returns the bytes written. Not synced.
    pub(crate) async fn write_records(
        &mut self,
        active: &mut Active<F::File>,
        encoded: &[u8],
        records: usize,
    ) -> Result<u64, WalError> {
        let records_start = active.end;
        let records_end = records_start + encoded.len() as u64;
        assert!(active.fits(encoded.len() as u64));
        assert!(records > 0 || encoded.is_empty());
        let (first, last) = write_extent(records_start, records_end, active.stream_capacity);
        let stream_start = first * SECTOR_STREAM_BYTES as u64;
        assert_eq!(stream_start + active.tail.len() as u64, records_start);
        self.stream_buf.clear();
        self.stream_buf.extend_from_slice(&active.tail);
        self.stream_buf.extend_from_slice(encoded);
        self.stream_buf
            .resize(((last - first) * SECTOR_STREAM_BYTES as u64) as usize, 0);
        let stamp = SectorStamp {
            write: active.write_last + 1,
            salt: active.header.salt,
            records_start,
            records_end,
        };
        self.write_buf.clear();
        encode_sectors(&mut self.write_buf, &self.stream_buf, first, &stamp);
        assert!(self.write_buf.len() <= WRITE_BYTES_MAX);
        self.fs
            .write_at(&active.file, sector_file_offset(first), &self.write_buf)
            .await
            .map_err(|e| WalError::io("write", self.fs.display(&active.name), e))?;
        let block = BLOCK_STREAM_BYTES as u64;
        let tail_start = records_end / block * block;
        active.tail = self.stream_buf
            [(tail_start - stream_start) as usize..(records_end - stream_start) as usize]
            .to_vec();
        active.end = records_end;
        active.write_last = stamp.write;
        Ok(self.write_buf.len() as u64)
    }

    async fn sync_file(&self, active: &Active<F::File>) -> Result<(), WalError> {
        self.fs
            .sync_data(&active.file)
            .await
            .map_err(|e| WalError::io("fdatasync", self.fs.display(&active.name), e))
    }

    /// Turns a spare file into the segment `log.<zxid_first>` and makes it active.
    async fn start_segment(&mut self, zxid_first: i64) -> Result<(), WalError> {
        // Every record staged before this one has been written by now.
        let zxid_previous = self.zxid_written;
        let segment_bytes = self.config.segment_bytes;
        let spare = match take_spare(&self.fs, segment_bytes).await? {
            Some(spare) => spare,
            None => {
                tracing::debug!("no spare segment ready; preallocating one inline");
                prepare_spare(&self.fs, segment_bytes).await?;
                take_spare(&self.fs, segment_bytes)
                    .await?
                    .expect("a spare was just prepared")
            }
        };
        self.segments_started += 1;
        // Derived from the file's previous salt too, so a recycled file's
        // next life never shares its salt even when a caller reuses a seed.
        let salt_previous = spare.salt_previous.unwrap_or(0);
        let mut salt = mix64(
            self.config.salt_seed
                ^ mix64(zxid_first as u64)
                ^ mix64(self.segments_started)
                ^ mix64(salt_previous ^ 0x5a17),
        );
        if spare.salt_previous == Some(salt) {
            salt = mix64(salt);
        }
        let header = SegmentHeader::new(zxid_first, zxid_previous, salt);
        let name = segment_name(zxid_first);
        let fs = &self.fs;
        let spare_name = spare.name;
        fs.write_at(&spare.file, 0, &header.encode())
            .await
            .map_err(|e| WalError::io("write", fs.display(&spare_name), e))?;
        fs.sync_data(&spare.file)
            .await
            .map_err(|e| WalError::io("fdatasync", fs.display(&spare_name), e))?;
        fs.rename(&spare_name, &name)
            .await
            .map_err(|e| WalError::io("rename", fs.display(&spare_name), e))?;
        fs.sync_dir()
            .await
            .map_err(|e| WalError::io("fsync directory", fs.display(&name), e))?;
        self.active = Some(Active {
            file: spare.file,
            name,
            header,
            end: 0,
            capacity: spare.capacity,
            stream_capacity: stream_capacity(spare.capacity),
            tail: Vec::new(),
            write_last: 0,
        });
        Ok(())
    }

    /// Prepares a spare segment now if none is ready, so the next segment
    /// switch does not stall on zero-filling. Call it when the log is idle,
    /// or run [`prepare_spare`] from another task with a clone of the fs.
    /// [`WalError::NoSpace`] leaves the writer usable (and no temp file).
    pub async fn ensure_spare(&mut self) -> Result<(), WalError> {
        self.check_not_failed()?;
        if let Err(error) = ensure_spares(&self.fs, self.config.segment_bytes, 1).await {
            if !error.is_no_space() {
                self.failure = Some(error.to_string());
            }
            return Err(error);
        }
        Ok(())
    }

    /// Whether a spare segment is ready, i.e. whether a segment switch can
    /// happen now without preparing one (and so without needing free space).
    pub fn spare_ready(&self) -> Result<bool, WalError> {
        Ok(!ready_spares(&self.fs)?.is_empty())
    }

    /// Record bytes (headers included) that still fit in the current segment
    /// (0 before the first segment exists): while a batch fits here, `sync()`
    /// needs no new space.
    pub fn segment_room(&self) -> u64 {
        self.active
            .as_ref()
            .filter(|a| a.write_last < WRITE_NUMBER_MAX)
            .map_or(0, |a| a.stream_capacity - a.end)
    }

    async fn recycle(&mut self, name: &str) -> Result<(), WalError> {
        let names = self.list()?;
        let spare = spare_name(&names, 0);
        self.fs
            .rename(name, &spare)
            .await
            .map_err(|e| self.io("rename", name, e))?;
        self.fs
            .sync_dir()
            .await
            .map_err(|e| self.io("fsync directory", name, e))
    }

    pub(crate) fn list(&self) -> Result<Vec<String>, WalError> {
        self.fs.list().map_err(|e| self.io("list", "", e))
    }

    pub(crate) fn io(&self, op: &'static str, name: &str, source: std::io::Error) -> WalError {
        WalError::io(op, self.fs.display(name), source)
    }

    pub(crate) fn check_not_failed(&self) -> Result<(), WalError> {
        match &self.failure {
            Some(first_error) => Err(WalError::WriterFailed {
                first_error: first_error.clone(),
            }),
            None => Ok(()),
        }
    }

    /// Asserts the writer's invariants (called after every step in tests).
    pub fn check_invariants(&self) {
        assert!(self.zxid_durable <= self.zxid_appended);
        assert!(self.zxid_written <= self.zxid_appended);
        assert!(self.staged.len() <= self.config.batch_records_max);
        assert!(self.staged_bytes <= self.config.batch_bytes_max);
        assert_eq!(
            self.staged_payloads.len() + RECORD_HEADER_BYTES * self.staged.len(),
            self.staged_bytes
        );
        if let Some(active) = &self.active {
            assert!(active.end <= active.stream_capacity);
            assert_eq!(active.stream_capacity, stream_capacity(active.capacity));
            assert!(active.capacity >= SEGMENT_HEADER_BYTES as u64);
            assert_eq!(
                active.tail.len() as u64,
                active.end % BLOCK_STREAM_BYTES as u64
            );
        }
    }

    /// The highest zxid whose `sync()` returned Ok.
    pub fn zxid_durable(&self) -> i64 {
        self.zxid_durable
    }

    /// The highest zxid appended (durable or staged).
    pub fn zxid_appended(&self) -> i64 {
        self.zxid_appended
    }

    /// Records staged for the next `sync()`.
    pub fn batch_records(&self) -> usize {
        self.staged.len()
    }

    /// Framed bytes staged for the next `sync()`.
    pub fn batch_bytes(&self) -> usize {
        self.staged_bytes
    }

    /// How much of the current segment is written: (file offset of the end
    /// of the records, file length). `None` before the first segment exists.
    pub fn segment_fill(&self) -> Option<(u64, u64)> {
        self.active.as_ref().map(|active| {
            let used = sector_file_offset(active.end / SECTOR_STREAM_BYTES as u64);
            (used, active.capacity)
        })
    }

    /// The file name of the segment being written, if any.
    pub fn segment_name(&self) -> Option<&str> {
        self.active.as_ref().map(|a| a.name.as_str())
    }

    /// Whether an earlier failure stopped the writer.
    pub fn is_failed(&self) -> bool {
        self.failure.is_some()
    }

    /// The configuration in force.
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    /// The file system the writer writes through (clone it to run
    /// [`prepare_spare`] from another task).
    pub fn fs(&self) -> &F {
        &self.fs
    }
}
