//! Snapshots: the node's chunks through wal's snapshot writer, one
//! operation per event, with armed and scripted crashes at the seal.

use std::time::Duration;

use node::Input;

use crate::context::{Context, Event};
use crate::script::When;

use super::{CrashPoint, Server, SnapshotWork};

impl Server {
    pub(super) fn snapshot_begin(&mut self, cx: &mut Context, zxid: i64) {
        self.stats.snapshots += 1;
        if let Err(failure) = self.snapshots.begin(zxid) {
            let running = self.running.as_mut().expect("acting while up");
            running.snapshot.clear();
            self.step(
                cx,
                Input::SnapshotDone {
                    result: Err(failure),
                },
            );
            return;
        }
        self.running
            .as_mut()
            .expect("acting while up")
            .snapshot_active = true;
    }

    pub(super) fn snapshot_queue(&mut self, cx: &mut Context, work: SnapshotWork) {
        let running = self.running.as_mut().expect("acting while up");
        if !running.snapshot_active {
            return;
        }
        running.snapshot.push_back(work);
        if !running.snapshot_event_pending {
            self.schedule_snapshot_op(cx);
        }
    }

    /// Schedules the writer's next piece of work (one `SnapshotOp` event
    /// pending at a time), after a disk latency drawn now.
    fn schedule_snapshot_op(&mut self, cx: &mut Context) {
        let running = self.running.as_mut().expect("acting while up");
        running.snapshot_event_pending = true;
        let latency = snapshot_latency(self.slow_disk, cx);
        cx.after(
            latency,
            Event::SnapshotOp {
                server: self.sid,
                boot: self.boot,
            },
        );
    }

    /// The snapshot writer finished its next piece of work.
    pub fn on_snapshot_op(&mut self, cx: &mut Context) {
        let Some(running) = &mut self.running else {
            return;
        };
        running.snapshot_event_pending = false;
        let Some(work) = running.snapshot.pop_front() else {
            return;
        };
        let input = match work {
            SnapshotWork::Chunk(bytes) => match self.snapshots.write(&bytes) {
                Ok(()) => {
                    self.stats.snapshot_chunks += 1;
                    running.chunks_this_snapshot += 1;
                    self.stats.snapshot_chunks_max = self
                        .stats
                        .snapshot_chunks_max
                        .max(running.chunks_this_snapshot);
                    Input::SnapshotChunkWritten
                }
                Err(failure) => {
                    running.snapshot.clear();
                    running.snapshot_active = false;
                    Input::SnapshotDone {
                        result: Err(failure),
                    }
                }
            },
            SnapshotWork::End => {
                running.snapshot_active = false;
                if let Some((power_cut, CrashPoint::SnapshotSeal { sealed })) = self.crash_armed {
                    // The power fails just before the seal, or just after
                    // it, before the node hears.
                    if sealed {
                        let _ = self.snapshots.seal();
                    }
                    self.crash(cx, power_cut);
                    let delay = Duration::from_millis(cx.rng.between(10, 2_000));
                    cx.after(delay, Event::Restart { server: self.sid });
                    return;
                }
                if self.scripted(cx, When::SnapshotSeal { sealed: false }, None) {
                    return;
                }
                let result = self.snapshots.seal();
                if let Ok(written) = &result {
                    self.disk_snapshot_zxid = self.disk_snapshot_zxid.max(written.zxid);
                    if self.scripted(cx, When::SnapshotSeal { sealed: true }, None) {
                        return;
                    }
                    let running = self.running.as_mut().expect("up: no scripted crash");
                    running.snapshot_sealed = running.snapshot_sealed.max(written.zxid);
                }
                Input::SnapshotDone { result }
            }
        };
        let Some(running) = self.running.as_mut() else {
            return;
        };
        if !running.snapshot.is_empty() {
            self.schedule_snapshot_op(cx);
        }
        self.step(cx, input);
    }
}

pub(super) fn snapshot_latency(slow: bool, cx: &mut Context) -> Duration {
    let micros = cx.rng.between(50, 3_000);
    Duration::from_micros(if slow { micros * 200 } else { micros })
}
