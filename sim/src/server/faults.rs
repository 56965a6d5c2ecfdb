//! Faults a server suffers (crash, failed fsync, full disk, clocks) and
//! what recovery would rebuild from its disk now.

use std::time::Duration;

use crate::context::{Context, Event};
use crate::recovery;
use crate::snapshots::Snapshots;

use super::Server;

impl Server {
    /// The process dies: by power cut (`power_cut`, unsynced writes may be
    /// lost or torn) or kill (the page cache survives). Returns false if it
    /// was down already.
    pub fn crash(&mut self, cx: &mut Context, power_cut: bool) -> bool {
        let Some(running) = self.running.take() else {
            return false;
        };
        if running
            .peers
            .sync
            .as_ref()
            .is_some_and(|(_, v)| v.snapshot_open)
        {
            self.stats.snapshots_interrupted += 1;
        }
        self.boot += 1;
        if power_cut {
            self.stats.power_cuts += 1;
            self.log_fs = self.log_fs.crash_image(cx.rng.next_u64());
        } else {
            self.stats.kills += 1;
            self.log_fs = self.log_fs.snapshot_current();
        }
        // The snapshot in progress dies with the process (on the old disk).
        self.snapshots = Snapshots::new(self.log_fs.dir(self.data_dir));
        self.slow_disk = false;
        self.crash_armed = None;
        for state in running.conns.values() {
            cx.reset(state.link);
        }
        for link in running.peers.links() {
            cx.reset(link);
        }
        let (sid, how) = (
            self.sid,
            if power_cut {
                "loses power"
            } else {
                "is killed"
            },
        );
        cx.trace.line(cx.now, || format!("s{sid} {how}"));
        true
    }

    /// Starts a crashed server again.
    pub fn restart(&mut self, cx: &mut Context) {
        if self.running.is_none() {
            self.stats.restarts += 1;
            self.start(cx);
        }
    }

    /// The next fdatasync of the log fails.
    pub fn fail_next_fsync(&mut self) {
        self.log_fs.fail_sync_data_at(0);
    }

    /// The disk fills up a little past what is used now; its operator
    /// frees space a while later.
    pub fn fill_disk(&mut self, cx: &mut Context) {
        let used = self.log_fs.bytes_used();
        self.log_fs.limit_bytes(used + cx.rng.between(0, 64 << 10));
        let delay = Duration::from_millis(cx.rng.between(200, 5_000));
        cx.after(
            delay,
            Event::SpaceFreed {
                server: self.sid,
                boot: self.boot,
            },
        );
    }

    /// Space on the disk is freed (a full disk's limit is lifted).
    pub fn free_space(&mut self) {
        self.log_fs.limit_bytes(None);
    }

    /// The wall clock jumps by `ms` (either way).
    pub fn jump_wall_clock(&mut self, ms: i64) {
        self.wall_offset_ms += ms;
    }

    /// The monotonic clock leaps forward (a paused VM resumes).
    pub fn leap_monotonic(&mut self, by: Duration) {
        self.monotonic_leap += by;
    }

    /// What recovery would rebuild from this disk now, two ways: from the
    /// newest snapshot and the log after it, and from snapshot 0 and the
    /// whole log (whose txns it lists too).
    pub fn recover_now(&self) -> Result<(recovery::Recovered, recovery::Recovered), String> {
        let image = self.log_fs.snapshot_current();
        let data = image.dir(self.data_dir);
        let newest = recovery::recover(&data, &image).map_err(|e| e.to_string())?;
        let everything = recovery::replay_everything(&data, &image).map_err(|e| e.to_string())?;
        Ok((newest, everything))
    }

    /// [`Server::recover_now`] for a server of an ensemble: the whole log
    /// (from snapshot 0) is `None` when it cannot be replayed — a learner
    /// that took a snapshot from its leader has a log that starts after it.
    pub fn recover_now_in_ensemble(
        &self,
    ) -> Result<(recovery::Recovered, Option<recovery::Recovered>), String> {
        let image = self.log_fs.snapshot_current();
        let data = image.dir(self.data_dir);
        let newest = recovery::recover(&data, &image).map_err(|e| e.to_string())?;
        Ok((newest, recovery::replay_everything(&data, &image).ok()))
    }
}
