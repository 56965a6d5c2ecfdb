//! The log writer: group commit into preallocated segments.
//!
//! ```text
//!  append(z1,p1) append(z2,p2) … append(zn,pn)      staged in memory (bounded)
//!        │
//!  sync() ── encode with the segment's salt ──► one aligned write ──► one fdatasync
//!                                                  │
//!        [tail block prefix][records …][zero header][padding to block]
//! ```
//!
//! Each `sync()` rewrites the block that holds the end of the previous batch
//! (its already-durable prefix is written again, byte for byte), so every write
//! is block-aligned as O_DIRECT requires, and no space is wasted between
//! batches. Rewriting durable bytes with identical bytes is safe under a torn
//! write: whichever sectors land, old or new, hold the same durable prefix.
//!
//! A batch that does not fit in the current segment is split at a record
//! boundary: the first part is written and synced, then the next segment is
//! started and the rest goes there. So at most one write is ever in flight and
//! unsynced, which is what lets recovery bound the region a power cut can tear
//! ([`crate::WRITE_BYTES_MAX`] bytes from the last durable block).
//!
//! Segments come from spare files (`spare.<hex>`): preallocated by writing
//! zeros, synced, then renamed into place; or recycled by purge. Starting a
//! segment writes its header block, syncs it, renames the spare to
//! `log.<first zxid>` and syncs the directory; after that, fdatasync only ever
//! flushes data into blocks that are already allocated and initialised.
//!
//! Any failed write or sync poisons the writer: every later call returns
//! [`WalError::WriterFailed`] (STYLE rule 2). The writer reads no clock; the
//! caller times `sync()` with its own.

use crate::error::WalError;
use crate::format::{
    align_down, align_up, encode_record, mix64, parse_hex_suffix, record_bytes, segment_name,
    SegmentHeader, BATCH_BYTES_MAX, BATCH_RECORDS_MAX, BLOCK_BYTES, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN,
    SEGMENT_HEADER_BYTES, WRITE_BYTES_MAX,
};
use crate::fs::LogFs;
use crate::recovery::LogTail;

/// Zeros are written in pieces of this size when preallocating or scrubbing.
const ZERO_CHUNK_BYTES: usize = 1 << 20;
/// How many spare names `prepare_spare` tries before giving up.
const SPARE_NAME_ATTEMPTS_MAX: u64 = 16;

/// How the writer behaves. `Default` gives ZooKeeper's defaults.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Size of each segment file (ZooKeeper's preAllocSize), a multiple of 4096.
    pub segment_bytes: u64,
    /// ZooKeeper's forceSync. `false` skips fdatasync after each batch: replies
    /// may then be released for data a power cut loses. Unsafe; for tests and
    /// benchmarks of everything but the disk.
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
        let segment_room = self.segment_bytes as usize - SEGMENT_HEADER_BYTES - RECORD_HEADER_BYTES;
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
    /// Bytes handed to the device, including the rewritten tail block and padding.
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
struct Active<File> {
    file: File,
    name: String,
    header: SegmentHeader,
    /// Where the next record goes: the end of the last record written.
    end: u64,
    capacity: u64,
    /// The bytes of the block that holds `end`, from its start up to `end`.
    tail: Vec<u8>,
}

/// The group-commit log writer. One per log directory, driven by one task.
#[derive(Debug)]
pub struct LogWriter<F: LogFs> {
    fs: F,
    config: WriterConfig,
    active: Option<Active<F::File>>,
    staged: Vec<Staged>,
    staged_payloads: Vec<u8>,
    staged_bytes: usize,
    roll_pending: bool,
    zxid_appended: i64,
    zxid_durable: i64,
    /// The last zxid handed to the device (durable once the sync returns).
    zxid_written: i64,
    segments_started: u64,
    failure: Option<String>,
    write_buf: Vec<u8>,
}

impl<F: LogFs> LogWriter<F> {
    /// Opens the writer where recovery left the log. If recovery cut a torn
    /// tail, the region after the cut is overwritten with zeros (and synced)
    /// first, so no stale record can ever follow the new ones.
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
            write_buf: Vec::new(),
        };
        writer.remove_unfinished_spares().await?;
        if let Some(segment) = tail.segment {
            let file = writer
                .fs
                .open(&segment.name)
                .await
                .map_err(|e| writer.io("open", &segment.name, e))?;
            let capacity = writer
                .fs
                .len(&file)
                .await
                .map_err(|e| writer.io("stat", &segment.name, e))?;
            assert_eq!(
                segment.tail_block.len() as u64,
                segment.end - align_down(segment.end)
            );
            let active = Active {
                file,
                name: segment.name,
                header: segment.header,
                end: segment.end,
                capacity,
                tail: segment.tail_block,
            };
            // Zeroed even when the segment is about to be recycled: its next
            // life could draw the same salt if the caller reuses a seed.
            writer
                .scrub(&active, segment.scrub_end.min(capacity))
                .await?;
            if segment.records == 0 {
                // An empty segment is named by a zxid that was never written;
                // the next record may have another one, so start afresh.
                let name = active.name.clone();
                drop(active);
                writer.recycle(&name).await?;
            } else {
                writer.active = Some(active);
            }
        }
        writer.check_invariants();
        Ok(writer)
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

    /// Writes every staged record and makes it durable with one fdatasync per
    /// segment touched. Replies for these records may be released once this
    /// returns Ok. With nothing staged, does nothing.
    pub async fn sync(&mut self) -> Result<SyncStats, WalError> {
        self.check_not_failed()?;
        let mut stats = SyncStats {
            zxid_durable: self.zxid_durable,
            ..SyncStats::default()
        };
        if self.staged.is_empty() {
            return Ok(stats);
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
                .is_some_and(|a| a.end + encoded.len() as u64 + bytes <= a.capacity);
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
        let active = self.active.as_mut().expect("a segment is active");
        let block_start = align_down(active.end);
        let end = active.end + encoded.len() as u64;
        assert!(end <= active.capacity);
        // The zero header after the last record marks a clean end of data.
        let write_end = align_up(end + RECORD_HEADER_BYTES as u64).min(active.capacity);
        self.write_buf.clear();
        self.write_buf.extend_from_slice(&active.tail);
        self.write_buf.extend_from_slice(encoded);
        self.write_buf.resize((write_end - block_start) as usize, 0);
        assert!(self.write_buf.len() <= WRITE_BYTES_MAX);
        let (fs, name) = (&self.fs, &active.name);
        fs.write_at(&active.file, block_start, &self.write_buf)
            .await
            .map_err(|e| WalError::io("write", fs.display(name), e))?;
        if self.config.force_sync {
            fs.sync_data(&active.file)
                .await
                .map_err(|e| WalError::io("fdatasync", fs.display(name), e))?;
            stats.fsyncs += 1;
        }
        let new_block_start = align_down(end);
        active.tail = self.write_buf
            [(new_block_start - block_start) as usize..(end - block_start) as usize]
            .to_vec();
        active.end = end;
        self.zxid_written = zxid_run_last;
        stats.records += records;
        stats.record_bytes += encoded.len() as u64;
        stats.write_bytes += self.write_buf.len() as u64;
        Ok(())
    }

    /// Turns a spare file into the segment `log.<zxid_first>` and makes it active.
    async fn start_segment(&mut self, zxid_first: i64) -> Result<(), WalError> {
        // Every record staged before this one has been written by now.
        let zxid_previous = self.zxid_written;
        let spare = match self.take_spare().await? {
            Some(spare) => spare,
            None => {
                tracing::debug!("no spare segment ready; preallocating one inline");
                prepare_spare(&self.fs, self.config.segment_bytes).await?;
                self.take_spare().await?.expect("a spare was just prepared")
            }
        };
        let (spare_name, file, capacity) = spare;
        self.segments_started += 1;
        let salt =
            mix64(self.config.salt_seed ^ mix64(zxid_first as u64) ^ mix64(self.segments_started));
        let header = SegmentHeader {
            zxid_first,
            zxid_previous,
            salt,
        };
        let name = segment_name(zxid_first);
        let fs = &self.fs;
        fs.write_at(&file, 0, &header.encode())
            .await
            .map_err(|e| WalError::io("write", fs.display(&spare_name), e))?;
        fs.sync_data(&file)
            .await
            .map_err(|e| WalError::io("fdatasync", fs.display(&spare_name), e))?;
        fs.rename(&spare_name, &name)
            .await
            .map_err(|e| WalError::io("rename", fs.display(&spare_name), e))?;
        fs.sync_dir()
            .await
            .map_err(|e| WalError::io("fsync directory", fs.display(&name), e))?;
        let end = SEGMENT_HEADER_BYTES as u64;
        self.active = Some(Active {
            file,
            name,
            header,
            end,
            capacity,
            tail: Vec::new(),
        });
        Ok(())
    }

    /// Opens the oldest ready spare of the right size; removes wrong-sized ones.
    async fn take_spare(&mut self) -> Result<Option<(String, F::File, u64)>, WalError> {
        let mut spares: Vec<String> = self
            .list()?
            .into_iter()
            .filter(|n| is_ready_spare(n))
            .collect();
        spares.sort();
        for name in spares {
            let file = self
                .fs
                .open(&name)
                .await
                .map_err(|e| self.io("open", &name, e))?;
            let len = self
                .fs
                .len(&file)
                .await
                .map_err(|e| self.io("stat", &name, e))?;
            if len == self.config.segment_bytes {
                return Ok(Some((name, file, len)));
            }
            drop(file);
            self.fs
                .remove(&name)
                .await
                .map_err(|e| self.io("remove", &name, e))?;
        }
        Ok(None)
    }

    /// Prepares a spare segment now if none is ready, so the next segment
    /// switch does not stall on zero-filling. Call it when the log is idle,
    /// or run [`prepare_spare`] from another task with a clone of the fs.
    pub async fn ensure_spare(&mut self) -> Result<(), WalError> {
        self.check_not_failed()?;
        if !self.list()?.iter().any(|n| is_ready_spare(n)) {
            if let Err(error) = prepare_spare(&self.fs, self.config.segment_bytes).await {
                self.failure = Some(error.to_string());
                return Err(error);
            }
        }
        Ok(())
    }

    async fn recycle(&mut self, name: &str) -> Result<(), WalError> {
        let spare = spare_name(&self.list()?, 0);
        self.fs
            .rename(name, &spare)
            .await
            .map_err(|e| self.io("rename", name, e))?;
        self.fs
            .sync_dir()
            .await
            .map_err(|e| self.io("fsync directory", name, e))
    }

    /// Overwrites `[active.end, scrub_end)` with zeros, keeping the durable
    /// prefix of the tail block, and syncs.
    async fn scrub(&self, active: &Active<F::File>, scrub_end: u64) -> Result<(), WalError> {
        let mut at = align_down(active.end);
        if scrub_end <= active.end {
            return Ok(());
        }
        tracing::info!(file = %self.fs.display(&active.name), from = active.end, to = scrub_end, "zeroing the cut tail");
        let scrub_end = align_up(scrub_end).min(active.capacity);
        let mut first = true;
        while at < scrub_end {
            let len = (scrub_end - at).min(ZERO_CHUNK_BYTES as u64) as usize;
            let mut chunk = vec![0u8; len];
            if first {
                chunk[..active.tail.len()].copy_from_slice(&active.tail);
                first = false;
            }
            self.fs
                .write_at(&active.file, at, &chunk)
                .await
                .map_err(|e| self.io("write", &active.name, e))?;
            at += len as u64;
        }
        self.fs
            .sync_data(&active.file)
            .await
            .map_err(|e| self.io("fdatasync", &active.name, e))
    }

    async fn remove_unfinished_spares(&self) -> Result<(), WalError> {
        for name in self.list()? {
            if name.starts_with("spare.") && name.ends_with(".tmp") {
                self.fs
                    .remove(&name)
                    .await
                    .map_err(|e| self.io("remove", &name, e))?;
            }
        }
        Ok(())
    }

    fn list(&self) -> Result<Vec<String>, WalError> {
        self.fs.list().map_err(|e| self.io("list", "", e))
    }

    fn io(&self, op: &'static str, name: &str, source: std::io::Error) -> WalError {
        WalError::io(op, self.fs.display(name), source)
    }

    fn check_not_failed(&self) -> Result<(), WalError> {
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
        assert!(self.staged.len() <= self.config.batch_records_max);
        assert!(self.staged_bytes <= self.config.batch_bytes_max);
        assert_eq!(
            self.staged_payloads.len() + RECORD_HEADER_BYTES * self.staged.len(),
            self.staged_bytes
        );
        if let Some(active) = &self.active {
            assert!(active.end >= SEGMENT_HEADER_BYTES as u64 && active.end <= active.capacity);
            assert_eq!(
                active.tail.len() as u64,
                active.end - align_down(active.end)
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

    /// The file name of the segment being written, if any.
    /// How much of the current segment is written: (bytes used, capacity).
    /// `None` before the first segment exists.
    pub fn segment_fill(&self) -> Option<(u64, u64)> {
        self.active
            .as_ref()
            .map(|active| (active.end, active.capacity))
    }

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

/// A spare segment ready to use: `spare.<16 hex digits>` (preallocated by the
/// writer) or `spare.recycled.<16 hex digits>` (an old segment recycled by
/// purge); `.tmp` names are still being zero-filled.
pub fn is_ready_spare(name: &str) -> bool {
    name.starts_with("spare.") && !name.ends_with(".tmp")
}

/// A spare name not among `names`, skipping `skip` free ones.
pub(crate) fn spare_name(names: &[String], skip: u64) -> String {
    let highest = names
        .iter()
        .filter_map(|n| parse_hex_suffix(n.strip_suffix(".tmp").unwrap_or(n), "spare."))
        .max()
        .unwrap_or(0);
    format!("spare.{:016x}", highest as u64 + 1 + skip)
}

/// Creates a spare segment of `segment_bytes`: zero-filled by writing zeros
/// (so its extents are allocated and initialised, and later fdatasyncs write no
/// metadata), synced, renamed from `.tmp` to its final name, directory synced.
/// Returns its name. On any error the `.tmp` file is removed again, so a
/// full disk ([`WalError::NoSpace`]) leaves no partial spare taking space.
pub async fn prepare_spare<F: LogFs>(fs: &F, segment_bytes: u64) -> Result<String, WalError> {
    assert!(segment_bytes.is_multiple_of(BLOCK_BYTES as u64));
    let names = fs
        .list()
        .map_err(|e| WalError::io("list", fs.display(""), e))?;
    let mut created = None;
    for attempt in 0..SPARE_NAME_ATTEMPTS_MAX {
        let name = spare_name(&names, attempt);
        let tmp = format!("{name}.tmp");
        match fs.create(&tmp).await {
            Ok(file) => {
                created = Some((name, tmp, file));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(WalError::io("create", fs.display(&tmp), e)),
        }
    }
    let Some((name, tmp, file)) = created else {
        return Err(WalError::io(
            "create",
            fs.display("spare"),
            std::io::ErrorKind::AlreadyExists.into(),
        ));
    };
    match fill_spare(fs, &tmp, file, segment_bytes).await {
        Ok(()) => {}
        Err(error) => {
            if let Err(e) = fs.remove(&tmp).await {
                tracing::warn!(file = %fs.display(&tmp), error = %e, "could not remove a failed spare segment");
            }
            return Err(error);
        }
    }
    fs.rename(&tmp, &name)
        .await
        .map_err(|e| WalError::io("rename", fs.display(&tmp), e))?;
    fs.sync_dir()
        .await
        .map_err(|e| WalError::io("fsync directory", fs.display(&name), e))?;
    Ok(name)
}

/// Zero-fills and syncs a new spare file.
async fn fill_spare<F: LogFs>(
    fs: &F,
    tmp: &str,
    file: F::File,
    segment_bytes: u64,
) -> Result<(), WalError> {
    let zeros = vec![0u8; ZERO_CHUNK_BYTES.min(segment_bytes as usize)];
    let mut at = 0u64;
    while at < segment_bytes {
        let len = (segment_bytes - at).min(zeros.len() as u64) as usize;
        fs.write_at(&file, at, &zeros[..len])
            .await
            .map_err(|e| WalError::io("write", fs.display(tmp), e))?;
        at += len as u64;
    }
    fs.sync_data(&file)
        .await
        .map_err(|e| WalError::io("fdatasync", fs.display(tmp), e))
}
