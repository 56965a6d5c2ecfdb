//! Request counters and latency figures for `srvr`, `stat` and `mntr`.

use std::time::Duration;

#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub packets_received: u64,
    pub packets_sent: u64,
    latency_count: u64,
    latency_total_us: u64,
    latency_min_us: Option<u64>,
    latency_max_us: u64,
    pub fsync_threshold_exceeded: u64,
    pub log_syncs: u64,
    pub log_sync_max: Duration,
    pub log_sync_total: Duration,
}

impl Stats {
    /// One log batch made durable in `took`.
    pub fn record_sync(&mut self, took: Duration, warning_threshold_ms: u64) {
        self.log_syncs += 1;
        self.log_sync_max = self.log_sync_max.max(took);
        self.log_sync_total += took;
        if took > Duration::from_millis(warning_threshold_ms) {
            self.fsync_threshold_exceeded += 1;
        }
    }

    pub fn record_latency(&mut self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency_count += 1;
        self.latency_total_us = self.latency_total_us.saturating_add(us);
        self.latency_min_us = Some(self.latency_min_us.map_or(us, |m| m.min(us)));
        self.latency_max_us = self.latency_max_us.max(us);
    }

    pub fn latency_min_ms(&self) -> u64 {
        self.latency_min_us.unwrap_or(0) / 1000
    }

    pub fn latency_max_ms(&self) -> u64 {
        self.latency_max_us / 1000
    }

    pub fn latency_avg_ms(&self) -> f64 {
        if self.latency_count == 0 {
            return 0.0;
        }
        self.latency_total_us as f64 / self.latency_count as f64 / 1000.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latency_figures_follow_the_samples() {
        let mut stats = Stats::default();
        assert_eq!(stats.latency_avg_ms(), 0.0);
        stats.record_latency(Duration::from_millis(1));
        stats.record_latency(Duration::from_millis(3));
        assert_eq!(stats.latency_min_ms(), 1);
        assert_eq!(stats.latency_max_ms(), 3);
        assert!((stats.latency_avg_ms() - 2.0).abs() < 1e-9);
    }
}
