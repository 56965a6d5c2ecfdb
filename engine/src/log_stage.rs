//! The log stage: where prepared txns become durable.
//!
//! The node hands the log one batch at a time (`Action::Append`) and keeps
//! preparing new txns into the next batch while the current one is being
//! written — group commit. The log task appends the whole batch to the
//! current segment, makes it durable at once, and reports it durable; only
//! then does the node apply its txns and release their replies. No write
//! reply leaves before the log has said "durable" for its zxid.
//!
//! ```text
//!  driver ── LogBatch (≤ 1 in flight) ──▶ log task: append… sync ──▶ LogReport::Durable
//!                                              (wal::LogWriter on GlommioFs, O_DIRECT)
//! ```
//!
//! A failed write or fsync is reported once as `Failed` and the task stops:
//! the node then refuses every write (STYLE rule 2: never retried).

use std::time::{Duration, Instant};

use node::{LogRecord, StorageFailure};
use tracing::{error, warn};
use wal::{GlommioFs, LogFs, LogTail, LogWriter, WalError, WriterConfig};

use crate::driver::Completion;

/// What the log task is asked to do, in order.
#[derive(Debug)]
pub enum LogCommand {
    Append(LogBatch),
    /// ZAB's TRUNC: snapshots above the cut are removed (ZOOKEEPER-1549: a
    /// snapshot that holds an uncommitted txn must not be loaded again),
    /// then every record after `zxid`, durably.
    Truncate(i64),
}

/// What the node hands the log at once.
#[derive(Debug)]
pub struct LogBatch {
    pub records: Vec<LogRecord>,
    /// Start a new segment before these records (a snapshot begins).
    pub roll_first: bool,
}

/// What the log says back about a batch.
#[derive(Debug)]
pub enum LogReport {
    /// Every record up to and including `zxid` is durable.
    Durable {
        zxid: i64,
        records: usize,
        record_bytes: u64,
        /// How long the appends and fdatasync took.
        sync_time: Duration,
    },
    /// The log failed; no further write can be acknowledged.
    Failed(StorageFailure),
    /// The log now ends at or before `zxid` (the TRUNC asked for).
    Truncated { zxid: i64 },
    /// Whether the log's disk has room for the next segment. When it has
    /// not, the batch in flight waits staged (nothing of it written) and is
    /// made durable once space returns; the node refuses new writes meanwhile.
    Space { available: bool },
}

/// What the node may put in one append: the log's own bounds. An append
/// stops taking records at half the log's framed-bytes bound, so the one
/// more record that may follow (at most jute.maxbuffer) and the framing
/// usually fit; when they do not, `write_batch` syncs part-way.
pub fn append_limits() -> node::AppendLimits {
    node::AppendLimits {
        records_max: wal::BATCH_RECORDS_MAX,
        bytes_max: wal::BATCH_BYTES_MAX / 2,
    }
}

/// The driver's end of the log: at most one batch in flight.
#[derive(Debug)]
pub struct LogHandle {
    pub to_log: async_channel::Sender<LogCommand>,
}

/// How the disk log is set up (from zoo.cfg).
#[derive(Debug, Clone)]
pub struct DiskLogSettings {
    pub writer: WriterConfig,
    pub dir: std::path::PathBuf,
    pub fsync_warning: Duration,
    /// With forceSync on: O_DSYNC writes instead of write + fdatasync.
    pub dsync: bool,
    /// Where snapshots are (a TRUNC removes those above the cut).
    pub snap_dir: std::path::PathBuf,
}

/// The log task's end of the channels.
#[derive(Debug)]
pub struct LogEnd {
    batches: async_channel::Receiver<LogCommand>,
    reports: async_channel::Sender<Completion>,
}

/// The two ends of the driver ↔ log channels; reports go to the driver's
/// completions. They work across executors, so the log task may run on
/// another core than the driver.
pub fn log_channels(completions: async_channel::Sender<Completion>) -> (LogHandle, LogEnd) {
    let (to_log, batches) = async_channel::bounded::<LogCommand>(1);
    (
        LogHandle { to_log },
        LogEnd {
            batches,
            reports: completions,
        },
    )
}

/// Opens the log writer where recovery left off and starts the log task
/// (and the spare-segment keeper) on the current executor.
pub async fn spawn_disk_log(
    end: LogEnd,
    settings: DiskLogSettings,
    tail: LogTail,
) -> Result<(), WalError> {
    // With forceSync on, segments are written O_DSYNC: one io_uring round
    // trip per batch instead of a write and an fdatasync (see `GlommioFs`).
    // With it off, writes are plain and the writer skips the sync.
    let fs = if settings.writer.force_sync && settings.dsync {
        GlommioFs::with_dsync_writes(&settings.dir)
    } else {
        GlommioFs::new(&settings.dir)
    };
    let writer = LogWriter::open(fs, settings.writer.clone(), tail).await?;
    let segment_bytes = settings.writer.segment_bytes;
    let keeper = keep_spare_ready(settings.dir.clone(), segment_bytes, end.reports.clone());
    glommio::spawn_local(keeper).detach();
    glommio::spawn_local(run_disk_log(writer, settings, end.batches, end.reports)).detach();
    Ok(())
}

async fn run_disk_log(
    mut writer: LogWriter<GlommioFs>,
    settings: DiskLogSettings,
    batches: async_channel::Receiver<LogCommand>,
    reports: async_channel::Sender<Completion>,
) {
    while let Ok(command) = batches.recv().await {
        let done = match command {
            LogCommand::Append(batch) => write_batch(&mut writer, batch, &reports).await,
            LogCommand::Truncate(zxid) => truncate(&mut writer, &settings.snap_dir, zxid).await,
        };
        let report = match done {
            Ok(report) => report,
            Err(err) => {
                error!(dir = %settings.dir.display(), %err, "the txn log failed");
                let failure = crate::storage::storage_failure(&err);
                let _ = reports
                    .send(Completion::Log(LogReport::Failed(failure)))
                    .await;
                return;
            }
        };
        if let LogReport::Durable {
            sync_time, records, ..
        } = &report
        {
            if *sync_time > settings.fsync_warning {
                warn!(dir = %settings.dir.display(), records, sync_ms = sync_time.as_millis() as u64,
                    threshold_ms = settings.fsync_warning.as_millis() as u64,
                    "fsync-ing the write ahead log took longer than fsync.warningthresholdms");
            }
        }
        if reports.send(Completion::Log(report)).await.is_err() {
            return;
        }
    }
}

/// Cuts the log after `zxid`, snapshots above it first.
async fn truncate(
    writer: &mut LogWriter<GlommioFs>,
    snap_dir: &std::path::Path,
    zxid: i64,
) -> Result<LogReport, WalError> {
    let removed = wal::remove_snapshots_after(&wal::StdDir::new(snap_dir), zxid)?;
    if !removed.is_empty() {
        warn!(
            ?removed,
            zxid = format!("0x{zxid:x}"),
            "removed snapshots above the TRUNC point"
        );
    }
    let report = writer.truncate(zxid).await?;
    tracing::info!(zxid = format!("0x{zxid:x}"), removed = report.segments_removed.len(),
        cut = ?report.segment_cut, "log truncated");
    Ok(LogReport::Truncated { zxid })
}

/// How often the spare keeper looks for a ready spare segment.
const SPARE_CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Keeps one zero-filled spare segment ready beside the log, in a task of its
/// own so that the log writer never waits for 64 MiB of zeros at a segment
/// switch (it prepares one inline only if this task has fallen behind).
///
/// Log space is preallocated, so a full disk shows here first, before any
/// record fails: the node is told (it refuses new writes, reads go on) and
/// told again when a spare could be made (writes resume). A failed spare
/// leaves no temporary file (wal removes it).
async fn keep_spare_ready(
    dir: std::path::PathBuf,
    segment_bytes: u64,
    reports: async_channel::Sender<Completion>,
) {
    let fs = GlommioFs::new(&dir);
    let mut space = true;
    loop {
        let ready = fs
            .list()
            .is_ok_and(|names| names.iter().any(|n| wal::is_ready_spare(n)));
        if !ready {
            match wal::prepare_spare(&fs, segment_bytes).await {
                Ok(_) if !space => {
                    space = true;
                    tracing::info!(dir = %dir.display(), "space for the log is back: writes resume");
                    let report = Completion::Log(LogReport::Space { available: true });
                    let _ = reports.send(report).await;
                }
                Ok(_) => {}
                Err(err) if err.is_no_space() => {
                    if space {
                        space = false;
                        error!(dir = %dir.display(), %err,
                            "the log's disk is full: refusing writes until space is freed (reads go on)");
                        let report = Completion::Log(LogReport::Space { available: false });
                        let _ = reports.send(report).await;
                    }
                }
                Err(err) => warn!(dir = %dir.display(), %err,
                    "preparing a spare log segment failed; the writer will make one when it needs it"),
            }
        }
        glommio::timer::sleep(SPARE_CHECK_INTERVAL).await;
    }
}

/// `writer.sync()`, waiting out a full disk: wal stages the batch and writes
/// nothing when no segment can be prepared, so the same sync is tried again
/// until space returns. Any other failure stops the log.
async fn sync_waiting_for_space(
    writer: &mut LogWriter<GlommioFs>,
    reports: &async_channel::Sender<Completion>,
) -> Result<wal::SyncStats, WalError> {
    let mut told = false;
    loop {
        match writer.sync().await {
            Err(err) if err.is_no_space() => {
                if !told {
                    told = true;
                    error!(%err, "the log's disk is full: the batch waits for space, new writes are refused");
                    let _ = reports
                        .send(Completion::Log(LogReport::Space { available: false }))
                        .await;
                }
                glommio::timer::sleep(SPARE_CHECK_INTERVAL).await;
            }
            result => {
                if told && result.is_ok() {
                    let _ = reports
                        .send(Completion::Log(LogReport::Space { available: true }))
                        .await;
                }
                return result;
            }
        }
    }
}

/// Appends a batch and makes it durable: one fdatasync unless the batch is
/// larger than the writer takes at once.
async fn write_batch(
    writer: &mut LogWriter<GlommioFs>,
    batch: LogBatch,
    reports: &async_channel::Sender<Completion>,
) -> Result<LogReport, WalError> {
    let started = Instant::now();
    if batch.roll_first {
        writer.roll_for_snapshot();
    }
    let (mut records, mut record_bytes) = (0usize, 0u64);
    let mut zxid = writer.zxid_durable();
    for record in &batch.records {
        if !writer.can_append(record.payload.len()) {
            let stats = sync_waiting_for_space(writer, reports).await?;
            records += stats.records;
            record_bytes += stats.record_bytes;
        }
        writer.append(record.zxid, &record.payload)?;
        zxid = record.zxid;
    }
    let stats = sync_waiting_for_space(writer, reports).await?;
    records += stats.records;
    record_bytes += stats.record_bytes;
    assert_eq!(
        writer.zxid_durable(),
        zxid,
        "sync made the whole batch durable"
    );
    Ok(LogReport::Durable {
        zxid,
        records,
        record_bytes,
        sync_time: started.elapsed(),
    })
}
