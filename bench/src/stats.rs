//! What a run measured: per-thread counters and HdrHistograms, merged into a
//! [`RunReport`] that prints as a table row and serialises as JSON.
//!
//! Which replies count (the measurement window is `[warmup, warmup + duration)`
//! since the common start; in `--ops` mode it is the whole run):
//!
//! - throughput = replies *received* inside the window / window length;
//! - latency = reply time − *intended* send time, for every request whose
//!   intended send time is inside the window, including those answered while
//!   draining after the window closed. In closed loop the intended time is the
//!   actual send time; in open loop it is the schedule's, so a stalled server
//!   is charged for every request it kept the generator from sending
//!   (no coordinated omission);
//! - errors = the same requests, by ZooKeeper error code; requests lost with
//!   their connection count as CONNECTIONLOSS (-4); requests still unanswered
//!   when the drain timeout ends the run are `unanswered`.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::workload::OpKind;

/// Highest latency a histogram records: one hour, in nanoseconds. Anything
/// longer is clamped to this (and then visibly the max).
pub const LATENCY_NS_MAX: u64 = 3_600_000_000_000;
/// HdrHistogram precision: 3 significant digits, so a reported percentile is
/// at most 0.1% above the exact sample.
pub const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 3;
/// Bound on recorded raw samples (only when asked for, for the tests).
pub const SAMPLES_MAX: usize = 10_000_000;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_NS_MAX, HISTOGRAM_SIGNIFICANT_DIGITS)
        .expect("valid histogram bounds")
}

/// One thread's tally. Merged by [`ThreadStats::merge`].
#[derive(Debug)]
pub struct ThreadStats {
    pub latency: Histogram<u64>,
    pub latency_by_kind: Vec<Histogram<u64>>,
    pub errors: BTreeMap<i32, u64>,
    /// Replies received inside the window (any error code).
    pub replies_in_window: u64,
    /// Requests whose intended time was in the window and that got a reply.
    pub measured: u64,
    pub unanswered: u64,
    pub sessions_connected: u64,
    pub sessions_failed_to_connect: u64,
    pub sessions_lost: u64,
    pub protocol_errors: u64,
    /// Time of the last reply, ns since the start (op-count mode's window end).
    pub last_reply_ns: u64,
    /// Raw latencies in ns, when the run asked for them (tests).
    pub samples: Option<Vec<u64>>,
}

impl ThreadStats {
    pub fn new(record_samples: bool) -> ThreadStats {
        ThreadStats {
            latency: new_histogram(),
            latency_by_kind: (0..OpKind::COUNT).map(|_| new_histogram()).collect(),
            errors: BTreeMap::new(),
            replies_in_window: 0,
            measured: 0,
            unanswered: 0,
            sessions_connected: 0,
            sessions_failed_to_connect: 0,
            sessions_lost: 0,
            protocol_errors: 0,
            last_reply_ns: 0,
            samples: record_samples.then(Vec::new),
        }
    }

    /// Records one measured reply.
    pub fn record(&mut self, kind: OpKind, latency_ns: u64, err: i32) {
        let value = latency_ns.clamp(1, LATENCY_NS_MAX);
        self.latency.record(value).expect("value within bounds");
        self.latency_by_kind[kind.index()]
            .record(value)
            .expect("value within bounds");
        self.measured += 1;
        if err != 0 {
            *self.errors.entry(err).or_insert(0) += 1;
        }
        if let Some(samples) = &mut self.samples {
            if samples.len() < SAMPLES_MAX {
                samples.push(value);
            }
        }
    }

    pub fn merge(&mut self, other: ThreadStats) {
        self.latency.add(&other.latency).expect("same bounds");
        for (mine, theirs) in self.latency_by_kind.iter_mut().zip(&other.latency_by_kind) {
            mine.add(theirs).expect("same bounds");
        }
        for (code, count) in other.errors {
            *self.errors.entry(code).or_insert(0) += count;
        }
        self.replies_in_window += other.replies_in_window;
        self.measured += other.measured;
        self.unanswered += other.unanswered;
        self.sessions_connected += other.sessions_connected;
        self.sessions_failed_to_connect += other.sessions_failed_to_connect;
        self.sessions_lost += other.sessions_lost;
        self.protocol_errors += other.protocol_errors;
        self.last_reply_ns = self.last_reply_ns.max(other.last_reply_ns);
        if let (Some(mine), Some(theirs)) = (&mut self.samples, other.samples) {
            mine.extend(theirs);
        }
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Default)]
pub struct LatencySummary {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl LatencySummary {
    pub fn of(histogram: &Histogram<u64>) -> LatencySummary {
        if histogram.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencySummary {
            count: histogram.len(),
            mean_us: histogram.mean() / 1000.0,
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p999_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// The exact nearest-rank percentile of `sorted` (ascending): the smallest
/// sample such that at least `quantile` of all samples are ≤ it. This is the
/// hand computation that HdrHistogram's `value_at_quantile` approximates to
/// within its precision.
pub fn nearest_rank(sorted: &[u64], quantile: f64) -> u64 {
    assert!(!sorted.is_empty());
    assert!((0.0..=1.0).contains(&quantile));
    let rank = (quantile * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// One error code and how often it came back.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorCount {
    pub code: i32,
    pub name: String,
    pub count: u64,
}

/// The error codes of a run, most frequent first.
pub fn error_counts(errors: &BTreeMap<i32, u64>) -> Vec<ErrorCount> {
    let mut out: Vec<ErrorCount> = errors
        .iter()
        .map(|(&code, &count)| ErrorCount {
            code,
            name: proto::ErrorCode::from_code(code)
                .map(|c| format!("{c:?}"))
                .unwrap_or_else(|| "Unknown".into()),
            count,
        })
        .collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.code.cmp(&b.code)));
    out
}

/// Latency of one kind of request, for mixes.
#[derive(Debug, Clone, Serialize)]
pub struct KindSummary {
    pub kind: &'static str,
    pub latency: LatencySummary,
}

/// Everything one run reports.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub label: String,
    pub server: String,
    pub workload: String,
    pub sessions: usize,
    pub outstanding: usize,
    pub threads: usize,
    pub value_size: usize,
    pub keys: u64,
    /// Open-loop target rate (ops/s), `None` for closed loop.
    pub rate: Option<f64>,
    pub window_s: f64,
    /// Replies received inside the window.
    pub ops: u64,
    pub throughput: f64,
    pub latency: LatencySummary,
    pub by_kind: Vec<KindSummary>,
    pub errors: Vec<ErrorCount>,
    pub errors_total: u64,
    pub unanswered: u64,
    pub sessions_connected: u64,
    pub sessions_failed_to_connect: u64,
    pub sessions_lost: u64,
    pub protocol_errors: u64,
    /// The load generator's own CPU time over the run, as % of one core.
    pub client_cpu_percent: f64,
    #[serde(skip)]
    pub samples: Option<Vec<u64>>,
}

impl RunReport {
    /// Whether the run had failures worth a warning line.
    pub fn had_failures(&self) -> bool {
        self.errors_total > 0
            || self.unanswered > 0
            || self.sessions_failed_to_connect > 0
            || self.sessions_lost > 0
            || self.protocol_errors > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_by_hand() {
        let sorted: Vec<u64> = (1..=10).collect();
        assert_eq!(nearest_rank(&sorted, 0.5), 5);
        assert_eq!(nearest_rank(&sorted, 0.9), 9);
        assert_eq!(nearest_rank(&sorted, 0.91), 10);
        assert_eq!(nearest_rank(&sorted, 1.0), 10);
        assert_eq!(nearest_rank(&sorted, 0.0), 1);
    }

    /// HdrHistogram's percentiles agree with the exact nearest-rank
    /// percentile of the same samples to within 0.1% (3 significant digits).
    #[test]
    fn histogram_percentiles_match_exact_ones() {
        let mut stats = ThreadStats::new(true);
        // A skewed, deterministic spread from 50 µs to ~80 ms.
        let mut x: u64 = 12345;
        for i in 0..100_000u64 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let base = 50_000 + (x >> 40) % 200_000;
            let value = if i % 100 == 0 { base * 400 } else { base };
            stats.record(OpKind::GetData, value, 0);
        }
        let mut samples = stats.samples.clone().unwrap();
        samples.sort_unstable();
        for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
            let exact = nearest_rank(&samples, q);
            let reported = stats.latency.value_at_quantile(q);
            assert!(
                reported >= exact && (reported - exact) as f64 <= exact as f64 * 0.001,
                "q={q}: exact {exact}, histogram {reported}"
            );
        }
    }

    #[test]
    fn errors_are_named_and_sorted() {
        let mut errors = BTreeMap::new();
        errors.insert(-101, 2);
        errors.insert(-110, 5);
        errors.insert(-999, 1);
        let counts = error_counts(&errors);
        assert_eq!(counts[0].name, "NodeExists");
        assert_eq!(counts[1].name, "NoNode");
        assert_eq!(counts[2].name, "Unknown");
    }
}
