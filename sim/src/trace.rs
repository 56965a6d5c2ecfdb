//! The run's event trace and its fingerprint.
//!
//! Every event the world processes, and every byte a node hands back, is
//! folded into a 64-bit fingerprint: two runs of one seed must end with the
//! same fingerprint (the determinism test checks it). The human-readable
//! lines are only formatted when `--trace` asks for them.

use std::time::Duration;

use xxhash_rust::xxh3::xxh3_64;

#[derive(Debug, Default)]
pub struct Trace {
    lines: Option<Vec<String>>,
    fingerprint: u64,
}

/// Trace lines kept at most; a longer run keeps its first lines and says
/// how many it dropped (a trace is for reading, and one run of a seed can
/// always be re-run with fewer steps).
pub const TRACE_LINES_MAX: usize = 2_000_000;

impl Trace {
    pub fn new(keep_lines: bool) -> Trace {
        Trace {
            lines: keep_lines.then(Vec::new),
            fingerprint: 0x243F_6A88_85A3_08D3,
        }
    }

    /// Folds a value into the fingerprint.
    pub fn mix(&mut self, value: u64) {
        self.fingerprint = (self.fingerprint ^ value)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15)
            .rotate_left(29);
    }

    pub fn mix_bytes(&mut self, bytes: &[u8]) {
        self.mix(xxh3_64(bytes));
    }

    /// Adds a line (built only when lines are kept).
    pub fn line(&mut self, now: Duration, text: impl FnOnce() -> String) {
        if let Some(lines) = &mut self.lines {
            if lines.len() < TRACE_LINES_MAX {
                lines.push(format!("{:>11.6}s {}", now.as_secs_f64(), text()));
            }
        }
    }

    pub fn is_on(&self) -> bool {
        self.lines.is_some()
    }

    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub fn take_lines(&mut self) -> Vec<String> {
        self.lines.take().unwrap_or_default()
    }
}
