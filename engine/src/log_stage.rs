//! The log stage: where prepared txns become durable.
//!
//! The sequencer hands the log one batch at a time and keeps preparing new
//! txns into the next batch while the current one is being written — group
//! commit. When the log reports a batch durable, the sequencer applies its
//! txns and releases their replies. No write reply leaves before the log has
//! said "durable" for its zxid.
//!
//! This module holds the in-memory log (for the foundation: durable = handed
//! over). The disk-backed log replaces [`spawn_memory_log`] without changing
//! the sequencer: same channels, same messages.

use tracing::error;

/// One txn on its way to the log: its zxid and its encoded header + body.
#[derive(Debug)]
pub struct LogRecord {
    pub zxid: i64,
    pub payload: Vec<u8>,
}

/// What the log says back about a batch.
#[derive(Debug)]
pub enum LogReport {
    /// Every record up to and including this zxid is durable.
    Durable { zxid: i64 },
    /// The log failed; no further write can be acknowledged.
    Failed { reason: String },
}

/// Most records handed to the log in one batch.
pub const BATCH_RECORDS_MAX: usize = 1000;
/// Most payload bytes handed to the log in one batch.
pub const BATCH_BYTES_MAX: usize = 4 * 1024 * 1024;

/// The sequencer's end of the log: at most one batch in flight.
#[derive(Debug)]
pub struct LogHandle {
    pub to_log: async_channel::Sender<Vec<LogRecord>>,
    pub reports: async_channel::Receiver<LogReport>,
}

/// Starts the in-memory log on the current executor: each batch is durable as
/// soon as it arrives. Used until durable storage is wired in.
pub fn spawn_memory_log() -> LogHandle {
    let (to_log, batches) = async_channel::bounded::<Vec<LogRecord>>(1);
    let (report_sender, reports) = async_channel::bounded(1);
    glommio::spawn_local(async move {
        while let Ok(batch) = batches.recv().await {
            let Some(last) = batch.last() else { continue };
            if report_sender
                .send(LogReport::Durable { zxid: last.zxid })
                .await
                .is_err()
            {
                error!("log stage: sequencer gone");
                return;
            }
        }
    })
    .detach();
    LogHandle { to_log, reports }
}
