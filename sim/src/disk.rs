//! A server's simulated log disk: the real `wal::LogWriter` over wal's
//! in-memory fault-injecting [`MemFs`], one file operation at a time
//! (the snapshot store is `snapshots`, recovery is `recovery`).
//!
//! # The log, stepped
//!
//! The writer is async and [`MemFs`] never blocks, so a batch could run to
//! completion in one poll. Instead every file operation first passes a
//! [`Gate`] that opens once per scheduled disk event: the world polls the
//! batch's future, it runs up to the next operation and waits; a disk event
//! some latency later lets that one operation through. So a power cut can
//! fall between any two operations — after the write but before the
//! fdatasync, between a segment's header and its rename, between the rename
//! and the directory sync — and a slow disk is simply a long latency.
//!
//! ```text
//!  Action::Append ─▶ batch future: roll? append… write ▸ fdatasync ▸ (next segment: create ▸ write ▸ sync ▸ rename ▸ sync dir) ─▶ LogDurable
//!                                       ▲ gate        ▲ gate          one disk event per ▸
//! ```
//!
//! The batch is carried out as `engine/src/log_stage.rs` does it (roll only
//! a segment worth rolling, sync part-way when the writer's batch is full).
//! So is a TRUNC (an ensemble's learner): snapshots above the cut are
//! removed first, then wal's own `LogWriter::truncate` runs through the same
//! gate, in order with the appends, so a crash can fall inside it too.
//! `durable_zxid` is the truth the disk knows: the last zxid whose sync
//! returned Ok, whatever the node was told.

use std::cell::Cell;
use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

use node::{LogRecord, StorageFailure};
use wal::{LogFs, LogTail, LogWriter, MemFs, WalError, WriterConfig};

/// The kinds of file operation, so latencies can differ (an fdatasync is
/// slower than a write).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiskOp {
    Create,
    Open,
    Stat,
    Read,
    Write,
    SyncData,
    Rename,
    Remove,
    SyncDir,
    /// Not a file operation: the log's disk is full and the batch waits
    /// before its sync is tried again (`SPACE_RETRY_INTERVAL`).
    WaitForSpace,
}

#[derive(Debug, Default)]
struct GateState {
    /// Operations allowed through before the gate closes again.
    permits: Cell<u64>,
    /// Everything passes (start-up, before the world steps the disk).
    open: Cell<bool>,
    /// The operation waiting at the gate, if any.
    waiting: Cell<Option<DiskOp>>,
    /// Operations that passed, for the trace.
    passed: Cell<u64>,
    /// What the batch found about the disk's room and has not reported yet
    /// (`false`: full, the batch waits; `true`: room again).
    space: Cell<Option<bool>>,
}

/// One file operation at a time: see the module docs.
#[derive(Debug, Clone, Default)]
pub struct Gate(Rc<GateState>);

impl Gate {
    fn pass(&self, op: DiskOp) -> Pass<'_> {
        Pass { gate: self, op }
    }

    /// The operation the future waits to carry out, if it waits.
    pub fn waiting(&self) -> Option<DiskOp> {
        self.0.waiting.get()
    }

    pub fn passed(&self) -> u64 {
        self.0.passed.get()
    }
}

struct Pass<'a> {
    gate: &'a Gate,
    op: DiskOp,
}

impl Future for Pass<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        let state = &self.gate.0;
        if state.open.get() || state.permits.get() > 0 {
            if !state.open.get() {
                state.permits.set(state.permits.get() - 1);
            }
            state.waiting.set(None);
            state.passed.set(state.passed.get() + 1);
            Poll::Ready(())
        } else {
            state.waiting.set(Some(self.op));
            Poll::Pending
        }
    }
}

/// [`MemFs`] behind a [`Gate`].
#[derive(Debug, Clone)]
pub struct GatedFs {
    inner: MemFs,
    gate: Gate,
}

impl LogFs for GatedFs {
    type File = u64;

    fn list(&self) -> io::Result<Vec<String>> {
        LogFs::list(&self.inner)
    }

    async fn create(&self, name: &str) -> io::Result<u64> {
        self.gate.pass(DiskOp::Create).await;
        self.inner.create(name).await
    }

    async fn open(&self, name: &str) -> io::Result<u64> {
        self.gate.pass(DiskOp::Open).await;
        self.inner.open(name).await
    }

    async fn len(&self, file: &u64) -> io::Result<u64> {
        self.gate.pass(DiskOp::Stat).await;
        self.inner.len(file).await
    }

    async fn read_at(&self, file: &u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        self.gate.pass(DiskOp::Read).await;
        self.inner.read_at(file, offset, buf).await
    }

    async fn write_at(&self, file: &u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.gate.pass(DiskOp::Write).await;
        self.inner.write_at(file, offset, bytes).await
    }

    async fn sync_data(&self, file: &u64) -> io::Result<()> {
        self.gate.pass(DiskOp::SyncData).await;
        self.inner.sync_data(file).await
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.gate.pass(DiskOp::Rename).await;
        self.inner.rename(from, to).await
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        self.gate.pass(DiskOp::Remove).await;
        self.inner.remove(name).await
    }

    async fn sync_dir(&self) -> io::Result<()> {
        self.gate.pass(DiskOp::SyncDir).await;
        self.inner.sync_dir().await
    }

    fn display(&self, name: &str) -> String {
        LogFs::display(&self.inner, name)
    }
}

/// Polls a future once with a waker that does nothing: the world, not a
/// waker, decides when it is polled again.
fn poll_once<F: Future + ?Sized>(future: Pin<&mut F>) -> Poll<F::Output> {
    let mut cx = Context::from_waker(Waker::noop());
    future.poll(&mut cx)
}

/// A log append as the node asked for it.
#[derive(Debug, Clone)]
pub struct Batch {
    pub records: Vec<LogRecord>,
    pub roll_first: bool,
}

/// A batch made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchDurable {
    pub zxid: i64,
    pub records: usize,
    pub record_bytes: u64,
}

/// What the log task is asked to do, in order.
#[derive(Debug, Clone)]
enum Command {
    Append(Batch),
    /// Cut the log after `zxid`, removing the snapshots above it from
    /// `snapshots` (the data directory) first.
    Truncate {
        zxid: i64,
        snapshots: MemFs,
    },
}

/// A command carried out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogDone {
    Durable(BatchDurable),
    /// Cut after `zxid`; the log now ends at `zxid_last`; this many
    /// snapshots above the cut were removed first.
    Truncated {
        zxid: i64,
        zxid_last: i64,
        snapshots_removed: usize,
    },
}

type BatchFuture = Pin<Box<dyn Future<Output = (LogWriter<GatedFs>, Result<LogDone, WalError>)>>>;

/// Where the log stands after a disk event.
#[derive(Debug)]
pub enum LogProgress {
    /// An operation waits at the gate: schedule the next disk event.
    Waiting(DiskOp),
    /// The command in flight finished; more may be queued.
    Finished(Result<LogDone, StorageFailure>),
    /// Nothing in flight.
    Idle,
}

/// Batches queued behind the one in flight at most: the node keeps one
/// append in flight, so one queued happens only when a driver reports
/// durability early (the reintroduced bug), and then once per batch.
const BATCHES_QUEUED_MAX: usize = 4;

/// The server's log directory and its writer.
pub struct LogDisk {
    fs: MemFs,
    gate: Gate,
    /// The writer, when no batch future holds it.
    writer: Option<LogWriter<GatedFs>>,
    in_flight: Option<BatchFuture>,
    /// What the batch in flight will have made durable when it finishes.
    in_flight_batch: Option<BatchDurable>,
    queued: VecDeque<Command>,
    /// The last zxid whose sync returned Ok.
    zxid_durable: i64,
    failed: Option<StorageFailure>,
}

impl std::fmt::Debug for LogDisk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogDisk")
            .field("zxid_durable", &self.zxid_durable)
            .field("in_flight", &self.in_flight.is_some())
            .field("queued", &self.queued.len())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl LogDisk {
    /// Opens the writer where recovery left the log (its own start-up
    /// writes, such as zeroing a cut tail, happen at once).
    pub fn open(fs: MemFs, config: WriterConfig, tail: LogTail) -> Result<LogDisk, WalError> {
        let gate = Gate::default();
        gate.0.open.set(true);
        let gated = GatedFs {
            inner: fs.clone(),
            gate: gate.clone(),
        };
        let zxid_durable = tail.zxid_last;
        let mut open = std::pin::pin!(LogWriter::open(gated, config, tail));
        let Poll::Ready(writer) = poll_once(open.as_mut()) else {
            unreachable!("MemFs never blocks and the gate is open");
        };
        gate.0.open.set(false);
        Ok(LogDisk {
            fs,
            gate,
            writer: Some(writer?),
            in_flight: None,
            in_flight_batch: None,
            queued: VecDeque::new(),
            zxid_durable,
            failed: None,
        })
    }

    /// The directory itself (for crash images and faults).
    pub fn fs(&self) -> &MemFs {
        &self.fs
    }

    pub fn zxid_durable(&self) -> i64 {
        self.zxid_durable
    }

    /// The file operation in flight, if any.
    pub fn waiting(&self) -> Option<DiskOp> {
        self.in_flight.as_ref().and_then(|_| self.gate.waiting())
    }

    /// The batch being written, if any.
    pub fn in_flight_batch(&self) -> Option<BatchDurable> {
        self.in_flight_batch
    }

    pub fn is_busy(&self) -> bool {
        self.in_flight.is_some() || !self.queued.is_empty()
    }

    pub fn operations(&self) -> u64 {
        self.gate.passed()
    }

    /// What the batch in flight found about the disk's room since the last
    /// call, if anything: `Some(false)` when it starts waiting for space,
    /// `Some(true)` when space returned (before it reports the batch durable).
    pub fn take_space_report(&self) -> Option<bool> {
        self.gate.0.space.take()
    }

    /// Queues a batch; starts it if the log is idle.
    pub fn submit(&mut self, batch: Batch) -> LogProgress {
        assert!(
            self.queued.len() < BATCHES_QUEUED_MAX,
            "log batches pile up behind the disk"
        );
        self.queued.push_back(Command::Append(batch));
        if self.in_flight.is_some() {
            return LogProgress::Waiting(self.gate.waiting().expect("in flight waits"));
        }
        self.start_next()
    }

    /// Queues a TRUNC after whatever is queued; starts it if the log is idle.
    pub fn submit_truncate(&mut self, zxid: i64, snapshots: MemFs) -> LogProgress {
        self.queued.push_back(Command::Truncate { zxid, snapshots });
        if self.in_flight.is_some() {
            return LogProgress::Waiting(self.gate.waiting().expect("in flight waits"));
        }
        self.start_next()
    }

    fn start_next(&mut self) -> LogProgress {
        if let Some(failure) = self.failed {
            // A failed log takes nothing more; each batch fails as it comes.
            return match self.queued.pop_front() {
                Some(_) => LogProgress::Finished(Err(failure)),
                None => LogProgress::Idle,
            };
        }
        let Some(command) = self.queued.pop_front() else {
            return LogProgress::Idle;
        };
        let mut writer = self.writer.take().expect("the writer is home when idle");
        let gate = self.gate.clone();
        match command {
            Command::Append(batch) => {
                self.in_flight_batch = Some(BatchDurable {
                    zxid: batch.records.last().map_or(self.zxid_durable, |r| r.zxid),
                    records: batch.records.len(),
                    record_bytes: batch.records.iter().map(|r| r.payload.len() as u64).sum(),
                });
                self.in_flight = Some(Box::pin(async move {
                    let result = write_batch(&mut writer, &gate, batch).await;
                    (writer, result.map(LogDone::Durable))
                }));
            }
            Command::Truncate { zxid, snapshots } => {
                self.in_flight = Some(Box::pin(async move {
                    let result = truncate(&mut writer, &snapshots, zxid).await;
                    (writer, result)
                }));
            }
        }
        self.poll()
    }

    /// A disk event: one more file operation, then on to the next.
    pub fn step(&mut self) -> LogProgress {
        if self.in_flight.is_none() {
            return LogProgress::Idle;
        }
        self.gate.0.permits.set(1);
        self.poll()
    }

    fn poll(&mut self) -> LogProgress {
        let future = self.in_flight.as_mut().expect("polled in flight");
        match poll_once(future.as_mut()) {
            Poll::Pending => {
                LogProgress::Waiting(self.gate.waiting().expect("pending only at the gate"))
            }
            Poll::Ready((writer, result)) => {
                self.in_flight = None;
                self.in_flight_batch = None;
                self.gate.0.permits.set(0);
                self.writer = Some(writer);
                let result = match result {
                    Ok(done) => {
                        self.zxid_durable = match done {
                            LogDone::Durable(durable) => durable.zxid,
                            LogDone::Truncated { zxid_last, .. } => zxid_last,
                        };
                        Ok(done)
                    }
                    Err(err) => {
                        let failure = storage_failure(&err);
                        self.failed = Some(failure);
                        Err(failure)
                    }
                };
                LogProgress::Finished(result)
            }
        }
    }

    /// What to do next once a batch finished: start the next queued one.
    pub fn continue_queue(&mut self) -> LogProgress {
        if self.in_flight.is_some() {
            return LogProgress::Waiting(self.gate.waiting().expect("in flight waits"));
        }
        self.start_next()
    }
}

/// How long a batch waits on a full disk before its sync is tried again
/// (the engine's `SPARE_CHECK_INTERVAL`).
pub const SPACE_RETRY_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// `writer.sync()`, waiting out a full disk, as `engine/src/log_stage.rs`'s
/// `sync_waiting_for_space`: wal stages the batch and writes nothing when no
/// segment can be prepared, so the same sync is tried again until space
/// returns, and the node is told both ways (through the gate's `space`).
async fn sync_waiting_for_space(
    writer: &mut LogWriter<GatedFs>,
    gate: &Gate,
) -> Result<wal::SyncStats, WalError> {
    let mut told = false;
    loop {
        match writer.sync().await {
            Err(err) if err.is_no_space() => {
                if !told {
                    told = true;
                    gate.0.space.set(Some(false));
                }
                gate.pass(DiskOp::WaitForSpace).await;
            }
            result => {
                if told && result.is_ok() {
                    gate.0.space.set(Some(true));
                }
                return result;
            }
        }
    }
}

/// Appends a batch and makes it durable, as `engine/src/log_stage.rs`'s
/// `write_batch` does.
async fn write_batch(
    writer: &mut LogWriter<GatedFs>,
    gate: &Gate,
    batch: Batch,
) -> Result<BatchDurable, WalError> {
    if batch.roll_first {
        writer.roll_for_snapshot();
    }
    let (mut records, mut record_bytes) = (0usize, 0u64);
    let mut zxid = writer.zxid_durable();
    for record in &batch.records {
        if !writer.can_append(record.payload.len()) {
            let stats = sync_waiting_for_space(writer, gate).await?;
            records += stats.records;
            record_bytes += stats.record_bytes;
        }
        writer.append(record.zxid, &record.payload)?;
        zxid = record.zxid;
    }
    let stats = sync_waiting_for_space(writer, gate).await?;
    records += stats.records;
    record_bytes += stats.record_bytes;
    assert_eq!(
        writer.zxid_durable(),
        zxid,
        "sync made the whole batch durable"
    );
    Ok(BatchDurable {
        zxid,
        records,
        record_bytes,
    })
}

/// Cuts the log after `zxid`, snapshots above it first, as
/// `engine/src/log_stage.rs`'s `truncate` does.
async fn truncate(
    writer: &mut LogWriter<GatedFs>,
    snapshots: &MemFs,
    zxid: i64,
) -> Result<LogDone, WalError> {
    let removed = wal::remove_snapshots_after(snapshots, zxid)?;
    let report = writer.truncate(zxid).await?;
    Ok(LogDone::Truncated {
        zxid,
        zxid_last: report.zxid_last,
        snapshots_removed: removed.len(),
    })
}

/// What the node is told about a storage error: a full disk apart from
/// every other failure (as the engine's `storage_failure`).
pub fn storage_failure(err: &WalError) -> StorageFailure {
    match err {
        WalError::NoSpace { .. } => StorageFailure::NoSpace,
        WalError::Io { source, .. } => StorageFailure::Io(source.kind()),
        _ => StorageFailure::Io(io::ErrorKind::Other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::{recover, Logged, TxnKind};

    #[test]
    fn the_stepped_log_makes_a_batch_durable_one_operation_per_event() {
        // Each disk event lets one file operation through; the batch is
        // durable only once its fdatasync has passed, and recovery then
        // replays it.
        let fs = MemFs::new().dir("log");
        let data = fs.dir("data");
        let config = WriterConfig {
            segment_bytes: 64 * 1024,
            ..WriterConfig::default()
        };
        let fresh = recover(&data, &fs).unwrap();
        assert_eq!(fresh.snapshot_zxid, None);
        let mut disk = LogDisk::open(fs.clone(), config, fresh.tail).unwrap();
        let header = tree::TxnHeader {
            session_id: 5,
            cxid: 0,
            zxid: 1,
            time_ms: 0,
        };
        let payload = tree::encode_record(&header, &tree::Txn::CreateSession { timeout_ms: 3000 });
        let batch = Batch {
            records: vec![LogRecord {
                zxid: 1,
                payload: payload.into(),
            }],
            roll_first: false,
        };
        let mut progress = disk.submit(batch);
        let mut operations = Vec::new();
        while let LogProgress::Waiting(op) = progress {
            assert!(
                disk.zxid_durable() < 1,
                "not durable before the last operation"
            );
            operations.push(op);
            progress = disk.step();
        }
        let LogProgress::Finished(Ok(LogDone::Durable(durable))) = progress else {
            panic!("the batch finishes: {progress:?}");
        };
        assert_eq!((durable.zxid, disk.zxid_durable()), (1, 1));
        assert_eq!(operations.last(), Some(&DiskOp::SyncData));
        assert!(
            operations.len() > 2,
            "a first segment is prepared: {operations:?}"
        );
        let recovered = recover(&data, &fs).unwrap();
        assert_eq!(recovered.snapshot_zxid, Some(0));
        let logged = Logged {
            zxid: 1,
            session: 5,
            cxid: 0,
            kind: TxnKind::CreateSession,
            changes: Vec::new(),
        };
        assert_eq!(recovered.replayed, vec![logged]);
        assert!(recovered.tree.has_session(5));
    }
}
