//! The log: batches handed to the simulated disk one file operation at
//! a time, durability reported back to the node, failures.

use std::time::Duration;

use node::Input;

use crate::context::{Context, Event};
use crate::disk::{self, Batch, DiskOp, LogDone, LogProgress};
use crate::options::Bug;

use super::Server;

impl Server {
    pub(super) fn append(&mut self, cx: &mut Context, batch: Batch) {
        for record in &batch.records {
            cx.trace.mix(record.zxid as u64);
            cx.trace.mix_bytes(&record.payload);
        }
        let running = self.running.as_mut().expect("acting while up");
        if !running.disk.is_busy() {
            running.batch_started = cx.now;
        }
        let progress = running.disk.submit(batch);
        self.after_disk_progress(cx, progress);
    }

    /// A disk event: the log's next file operation completes.
    pub fn on_disk_op(&mut self, cx: &mut Context) {
        let Some(running) = &mut self.running else {
            return;
        };
        running.disk_event_pending = false;
        let progress = running.disk.step();
        self.after_disk_progress(cx, progress);
    }

    pub(super) fn after_disk_progress(&mut self, cx: &mut Context, progress: LogProgress) {
        let space = self
            .running
            .as_ref()
            .and_then(|r| r.disk.take_space_report());
        if let Some(available) = space {
            self.step(cx, Input::LogSpace { available });
        }
        match progress {
            LogProgress::Idle => {}
            LogProgress::Waiting(op) => {
                if op == DiskOp::SyncData && self.bug == Some(Bug::AckBeforeDurable) {
                    self.report_early(cx);
                }
                self.schedule_disk_op(cx, op);
            }
            LogProgress::Finished(result) => {
                if let Ok(done) = &result {
                    self.disk_log_zxid = match done {
                        LogDone::Durable(durable) => durable.zxid,
                        LogDone::Truncated { zxid_last, .. } => *zxid_last,
                    };
                }
                let input = match result {
                    Ok(LogDone::Truncated {
                        zxid,
                        snapshots_removed,
                        ..
                    }) => {
                        self.stats.truncations += 1;
                        self.stats.snapshots_truncated += snapshots_removed as u64;
                        // Snapshots above the cut went first.
                        self.disk_snapshot_zxid = self.disk_snapshot_zxid.min(zxid);
                        if let Some(running) = &mut self.running {
                            running.snapshot_sealed = running.snapshot_sealed.min(zxid);
                        }
                        Some(Input::LogTruncated { zxid })
                    }
                    // The reintroduced bug told the node already.
                    Ok(LogDone::Durable(durable)) if durable.zxid <= self.reported_early() => None,
                    Ok(LogDone::Durable(durable)) => Some(Input::LogDurable {
                        zxid: durable.zxid,
                        records: durable.records,
                        record_bytes: durable.record_bytes,
                        sync_time: self.batch_time(cx),
                    }),
                    Err(failure) => {
                        self.log_failed(cx);
                        Some(Input::LogFailed(failure))
                    }
                };
                if let Some(input) = input {
                    self.step(cx, input);
                }
                if let Some(running) = &mut self.running {
                    running.batch_started = cx.now;
                    let next = running.disk.continue_queue();
                    self.after_disk_progress(cx, next);
                }
            }
        }
    }

    /// How long the batch that just finished took, in simulated time.
    pub(super) fn batch_time(&self, cx: &Context) -> Duration {
        self.running
            .as_ref()
            .map_or(Duration::ZERO, |r| cx.now.saturating_sub(r.batch_started))
    }

    pub(super) fn reported_early(&self) -> i64 {
        self.running.as_ref().map_or(0, |r| r.reported_early)
    }

    /// The reintroduced bug: tells the node the batch in flight is durable
    /// before its fdatasync has run.
    pub(super) fn report_early(&mut self, cx: &mut Context) {
        let running = self.running.as_mut().expect("disk work while up");
        let Some(batch) = running.disk.in_flight_batch() else {
            return;
        };
        if batch.zxid <= running.reported_early {
            return;
        }
        running.reported_early = batch.zxid;
        self.step(
            cx,
            Input::LogDurable {
                zxid: batch.zxid,
                records: batch.records,
                record_bytes: batch.record_bytes,
                sync_time: Duration::from_micros(1),
            },
        );
    }

    pub(super) fn schedule_disk_op(&mut self, cx: &mut Context, op: DiskOp) {
        let running = self.running.as_mut().expect("disk work while up");
        if running.disk_event_pending {
            return;
        }
        running.disk_event_pending = true;
        self.stats.disk_operations += 1;
        let latency = disk_latency(op, self.slow_disk, cx);
        let sid = self.sid;
        cx.trace
            .line(cx.now, || format!("s{sid} disk: {op:?} takes {latency:?}"));
        cx.after(
            latency,
            Event::DiskOp {
                server: self.sid,
                boot: self.boot,
            },
        );
    }

    /// The log failed: the operator restarts the server a while later
    /// (after freeing space, replacing the disk...).
    pub(super) fn log_failed(&mut self, cx: &mut Context) {
        let running = self.running.as_mut().expect("disk work while up");
        if running.log_failed {
            return;
        }
        running.log_failed = true;
        self.stats.log_failures += 1;
        let delay = Duration::from_millis(cx.rng.between(200, 3000));
        cx.after(
            delay,
            Event::OperatorRestart {
                server: self.sid,
                boot: self.boot,
            },
        );
    }
}

/// How long one file operation of the log takes.
pub(super) fn disk_latency(op: DiskOp, slow: bool, cx: &mut Context) -> Duration {
    let micros = match op {
        DiskOp::Write | DiskOp::Read => cx.rng.between(10, 300),
        DiskOp::SyncData if cx.rng.chance(1, 50) => cx.rng.between(5_000, 30_000),
        DiskOp::SyncData => cx.rng.between(50, 2_000),
        DiskOp::SyncDir => cx.rng.between(50, 1_000),
        DiskOp::Create | DiskOp::Open | DiskOp::Stat | DiskOp::Rename | DiskOp::Remove => {
            cx.rng.between(5, 100)
        }
        // Not the disk's latency: the log stage's timer.
        DiskOp::WaitForSpace => return disk::SPACE_RETRY_INTERVAL,
    };
    let micros = if slow {
        micros * 100 + cx.rng.between(0, 500_000)
    } else {
        micros
    };
    Duration::from_micros(micros)
}
