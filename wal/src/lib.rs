//! Durable storage for ferrokeeper (see DESIGN.md, "Storage"): the txn log
//! (preallocated segments, group commit), snapshot files, epoch files,
//! recovery and purge. It never sees tree types: a log record is
//! `(zxid, opaque payload)`, a snapshot an opaque byte stream that starts at a
//! zxid.
//!
//! # The model
//!
//! ```text
//!  dataDir/                                dataLogDir/
//!    snapshot.<zxid>   (sealed, verified)    log.<first zxid>   segment, preallocated, zero-filled
//!    currentEpoch, acceptedEpoch             log.<first zxid>   …
//!                                            spare.<n>          ready for the next segment
//! ```
//!
//! The invariant chain the engine keeps:
//! `snapshot ≤ applied ≤ committed ≤ durable (sync returned Ok) ≤ appended`.
//! Recovery restores `snapshot` and replays everything up to `durable` (and
//! possibly some appended-but-unacknowledged records a crash happened to keep,
//! never anything that was not appended).
//!
//! # How the engine drives it
//!
//! ```no_run
//! # async fn sketch() -> Result<(), wal::WalError> {
//! use std::path::Path;
//! use wal::{recover, GlommioFs, LogWriter, SnapshotWriter, WriterConfig};
//! let (snap_dir, log_dir) = (Path::new("data"), Path::new("datalog"));
//!
//! // 1. Start-up, blocking, before executors start. Temp files a crash left
//! //    behind go first; they are never part of what recovery reads.
//! wal::remove_temporary_files(snap_dir, log_dir)?;
//! let recovery = recover(snap_dir, log_dir)?;
//! match &recovery.snapshot {
//!     Some(info) => { /* load wal::open_snapshot(..info.name..) into the tree */ }
//!     None => { /* fresh: write snapshot zxid 0 (SnapshotWriter) before serving */ }
//! }
//! let mut log = recovery.log;
//! for record in log.by_ref() {
//!     let record = record?; // an Err stops start-up
//!     // apply record.payload (zxid record.zxid) to the tree
//! }
//! let tail = log.finish()?; // where the writer continues
//!
//! // 2. On the sequencer's executor, one task owns the writer.
//! let config = WriterConfig { salt_seed: 0x5eed /* random at each start */, ..WriterConfig::default() };
//! let mut writer = LogWriter::open(GlommioFs::new(log_dir), config, tail).await?;
//! writer.append(1, b"txn")?;        // many per batch; Err(BatchFull) means sync first
//! let stats = writer.sync().await?;  // one aligned write + one fdatasync; time it with your clock
//! // release replies up to stats.zxid_durable
//! writer.roll();                     // when a snapshot starts: next append opens a new segment
//! writer.ensure_spare().await?;      // when idle, so the next segment switch does not stall
//!
//! // 3. Snapshots on a thread of their own (fuzzy: writes continue meanwhile).
//! let mut snapshot = SnapshotWriter::create(snap_dir, 1)?;
//! snapshot.write(b"serialised tree chunk")?;
//! snapshot.finish()?;
//!
//! // 4. Purge from a timer (blocking std I/O; run it off the hot executor).
//! wal::purge(snap_dir, log_dir, 3)?;
//!
//! // 5. Replication. DIFF: records (from, to] read back on a thread of its own
//! //    while the writer goes on (to ≤ the writer's durable zxid).
//! let to = writer.zxid_durable();
//! for record in wal::read_log_range(wal::StdDir::new(log_dir), 0, to)? {
//!     let record = record?; // Err(NotInLog): send a snapshot instead
//! }
//! //    TRUNC: snapshots above the cut first, then the log.
//! wal::remove_snapshots_after(&wal::StdDir::new(snap_dir), 0)?;
//! writer.truncate(0).await?;
//! # Ok(()) }
//! ```
//!
//! Epoch files: [`write_epoch`] / [`read_epoch`] with [`EpochFile`].
//!
//! Damage to durable records (not a torn tail): a standalone server refuses
//! to start; a server of an ensemble calls [`set_aside_damage_in_dirs`]
//! before `recover` — the damaged segments are kept aside, the log is cut
//! after the last good record, and the durable "recovering" marker
//! ([`read_recovering`], [`clear_recovering`]) keeps it from voting until it
//! has the lost records from its peers (see `damage.rs`).
//!
//! # Backends
//!
//! The log writer is generic over [`LogFs`]: [`GlommioFs`] (production:
//! O_DIRECT through io_uring), [`StdFs`] (tools, tests) and [`MemFs`] (tests:
//! records what is durable, injects torn writes, failed fsyncs and ENOSPC, and
//! produces the images a power cut could leave). Snapshots, epoch files and
//! purge write through the blocking [`WriteFs`] ([`SnapshotWriter::create_in`],
//! [`write_epoch_in`], [`purge_in`]; the path-taking functions above are thin
//! wrappers over [`StdDir`]), so [`MemFs`] crashes them too. Reading goes
//! through the blocking [`ReadFs`]: [`StdDir`] or a [`MemFs`] image.

mod damage;
mod epoch;
mod error;
mod format;
mod fs;
mod glommio_fs;
mod memfs;
mod purge;
mod range;
mod recovery;
mod scan;
mod scan_v1;
mod snapshot;
mod spare;
mod truncate;
mod writer;

pub use damage::{
    clear_recovering, clear_recovering_in, find_log_damage, read_recovering, read_recovering_in,
    set_aside_damage, set_aside_damage_in_dirs, write_recovering_in, SetAside, DAMAGED_SUFFIX,
    RECOVERING_FILE,
};
pub use epoch::{read_epoch, read_epoch_in, write_epoch, write_epoch_in, EpochFile};
pub use error::{is_no_space, WalError};
pub use format::{
    align_down, align_up, classify_sector, decode_record, encode_record, encode_sectors,
    parse_segment_name, record_bytes, sector_count, sector_file_offset, segment_name,
    stream_capacity, stream_file_offset, write_extent, Decoded, HeaderError, InvalidReason,
    SectorClass, SectorStamp, SegmentHeader, BATCH_BYTES_MAX, BATCH_RECORDS_MAX, BLOCK_BYTES,
    BLOCK_STREAM_BYTES, FORMAT_VERSION, FORMAT_VERSION_V1, RECORD_HEADER_BYTES,
    RECORD_PAYLOAD_BYTES_MAX, SECTOR_BYTES, SECTOR_STAMP_BYTES, SECTOR_STREAM_BYTES,
    SEGMENT_BYTES_DEFAULT, SEGMENT_BYTES_MAX, SEGMENT_BYTES_MIN, SEGMENT_HEADER_BYTES,
    WRITE_BYTES_MAX,
};
pub use fs::{
    sync_dir_path, FileWriter, LogFs, ReadAt, ReadFs, StdDir, StdFileWriter, StdFs, StdReader,
    WriteFs,
};
pub use glommio_fs::GlommioFs;
pub use memfs::{MemFileWriter, MemFs, MemReader, MemState};
pub use purge::{
    is_temporary_file, purge, purge_in, remove_temporary_files, remove_temporary_files_in,
    PurgeReport, RETAIN_COUNT_MIN, SPARES_MAX,
};
pub use range::{read_log_range, LogRange};
pub use recovery::{
    first_needed_segment, list_segments, recover, recover_from, LogDamage, LogReader, LogRecord,
    LogTail, Recovery, SegmentTail,
};
pub use scan::{EndKind, ScannedRecord, SegmentEnd, SegmentScan};
pub use snapshot::{
    list_snapshots, newest_valid_snapshot, open_snapshot, parse_snapshot_name,
    parse_snapshot_temp_name, read_snapshot, snapshot_name, verify_snapshot, SnapshotInfo,
    SnapshotReader, SnapshotWriter, SNAPSHOT_HEADER_BYTES, SNAPSHOT_SYNC_EVERY_BYTES,
    SNAPSHOT_TRAILER_BYTES,
};
pub use spare::{is_ready_spare, prepare_spare};
pub use truncate::{remove_snapshots_after, truncate_log, TruncateLogReport, TruncateReport};
pub use writer::{LogWriter, SyncStats, WriterConfig};
