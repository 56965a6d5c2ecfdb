//! When to snapshot, and feeding a fuzzy snapshot to the writer a chunk at a time.
//!
//! ```text
//!  LogDurable ─▶ schedule says due ─▶ SnapshotBegin{zxid} ─▶ SnapshotChunk … ─▶ SnapshotEnd
//!                                         ▲ ≤ one chunk per ready(),          │
//!                                         └ at most CHUNKS_IN_FLIGHT_MAX ◀── SnapshotChunkWritten
//!                                                                            SnapshotDone ◀┘
//! ```
//!
//! The tree walk is fuzzy: txns keep being applied between chunks, and
//! replaying the log from the snapshot's zxid converges (tree's apply is
//! idempotent). Chunks are bounded in bytes and in number in flight, and the
//! walk is paced by the node's turns, not by the writer: one chunk per turn
//! that brought work or that the driver made on its own (`Node::ready`), none
//! for a turn of acknowledgements alone. Paced by acknowledgements, the walk
//! ran as fast as the writer took chunks and, under a create load, cost the
//! ordering core a quarter of its throughput and its p99 (5 → 22 ms).

use std::time::Duration;

use tree::{DataTree, SnapshotCursor};

use crate::io::{Action, Level, SnapshotWritten, StorageFailure};
use crate::settings::Random;
use crate::Out;

/// Bytes of tree serialised per chunk.
pub(crate) const CHUNK_BYTES: usize = 64 * 1024;
/// Chunks handed to the writer and not yet written.
pub const CHUNKS_IN_FLIGHT_MAX: usize = 8;
/// After a snapshot that took `d`, the next one waits until `d * factor` has
/// passed: under a heavy write load the count rule would snapshot back to
/// back, and the log keeps everything meanwhile.
const GAP_FACTOR: u32 = 2;

/// ZooKeeper's snapshot trigger: after each logged txn, snapshot when
/// `txns > snapCount/2 + roll` with `roll` uniform in `[0, snapCount/2)` and
/// drawn again after each snapshot (so an ensemble's servers do not all
/// snapshot at once), or when the log bytes since the last snapshot pass
/// `snapSizeLimitInKb`.
#[derive(Debug)]
pub(crate) struct SnapshotSchedule {
    snap_count: u64,
    size_limit_bytes: u64,
    roll: u64,
    txns: u64,
    bytes: u64,
}

impl SnapshotSchedule {
    /// `random` is a source of uniform u64s (the schedule reads no global RNG).
    pub(crate) fn new(snap_count: u64, size_limit_kb: u64, random: u64) -> SnapshotSchedule {
        let snap_count = snap_count.max(2);
        SnapshotSchedule {
            snap_count,
            size_limit_bytes: size_limit_kb.saturating_mul(1024),
            roll: random % (snap_count / 2),
            txns: 0,
            bytes: 0,
        }
    }

    /// Counts logged txns; true when a snapshot is due.
    pub(crate) fn logged(&mut self, txns: u64, bytes: u64) -> bool {
        self.txns += txns;
        self.bytes += bytes;
        self.txns > self.snap_count / 2 + self.roll
            || (self.size_limit_bytes > 0 && self.bytes > self.size_limit_bytes)
    }

    /// A snapshot started: count again from zero with a new roll.
    pub(crate) fn restart(&mut self, random: u64) {
        self.txns = 0;
        self.bytes = 0;
        self.roll = random % (self.snap_count / 2);
    }
}

/// Where a snapshot's bytes come from.
#[derive(Debug)]
enum Source {
    /// A fuzzy walk of this node's tree.
    Tree(SnapshotCursor),
    /// A snapshot received whole from the leader, written from `offset` on.
    Received { bytes: Vec<u8>, offset: usize },
}

impl Source {
    fn is_done(&self) -> bool {
        match self {
            Source::Tree(cursor) => cursor.is_done(),
            Source::Received { bytes, offset } => *offset >= bytes.len(),
        }
    }
}

/// How a snapshot ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Finished {
    pub(crate) zxid: i64,
    /// It was the leader's snapshot, received during synchronisation.
    pub(crate) received: bool,
    pub(crate) ok: bool,
}

/// A snapshot being written.
#[derive(Debug)]
struct InProgress {
    zxid: i64,
    source: Source,
    chunks_in_flight: usize,
    started: Duration,
    /// `SnapshotEnd` went out: the walk is complete.
    end_sent: bool,
}

#[derive(Debug)]
pub(crate) struct Snapshots {
    schedule: SnapshotSchedule,
    random: Random,
    in_progress: Option<InProgress>,
    /// No snapshot starts before this.
    allowed_at: Duration,
    /// The next log append starts a new segment (a snapshot began).
    roll_pending: bool,
    /// A received snapshot waiting for the one in progress to finish.
    received_pending: Option<(i64, Vec<u8>)>,
}

impl Snapshots {
    pub(crate) fn new(snap_count: u64, size_limit_kb: u64, mut random: Random) -> Snapshots {
        let schedule = SnapshotSchedule::new(snap_count, size_limit_kb, random.next_u64());
        Snapshots {
            schedule,
            random,
            in_progress: None,
            allowed_at: Duration::ZERO,
            roll_pending: false,
            received_pending: None,
        }
    }

    /// `txns` more txns (`bytes` of log) are durable; starts a snapshot of
    /// `tree` if the schedule says one is due.
    pub(crate) fn logged(
        &mut self,
        txns: u64,
        bytes: u64,
        tree: &DataTree,
        now: Duration,
        out: &mut Out,
    ) {
        if !self.schedule.logged(txns, bytes) {
            return;
        }
        if let Some(snapshot) = &self.in_progress {
            out.log(
                Level::Warn,
                format!(
                    "too busy to snapshot: snapshot 0x{:x} is still being written; skipping",
                    snapshot.zxid
                ),
            );
            self.schedule.restart(self.random.next_u64());
            return;
        }
        if now < self.allowed_at {
            return;
        }
        let (header, cursor) = tree.snapshot_begin();
        let zxid = cursor.zxid();
        self.schedule.restart(self.random.next_u64());
        self.roll_pending = true;
        self.in_progress = Some(InProgress {
            zxid,
            source: Source::Tree(cursor),
            chunks_in_flight: 1,
            started: now,
            end_sent: false,
        });
        out.log(Level::Info, format!("snapshot 0x{zxid:x} started"));
        out.push(Action::SnapshotBegin { zxid });
        out.push(Action::SnapshotChunk { bytes: header });
    }

    /// Hands the writer the next chunk of the walk, if it has room.
    /// Hands the writer the next chunk if it has room. `walk`: whether a
    /// chunk of this node's own tree may be serialised this turn (the
    /// caller paces that work; a received snapshot is only copied).
    pub(crate) fn pump(&mut self, tree: &DataTree, walk: bool, out: &mut Out) {
        let Some(snapshot) = &mut self.in_progress else {
            return;
        };
        if snapshot.end_sent || snapshot.chunks_in_flight >= CHUNKS_IN_FLIGHT_MAX {
            return;
        }
        if !walk && matches!(snapshot.source, Source::Tree(_)) {
            return;
        }
        if !snapshot.source.is_done() {
            let bytes = match &mut snapshot.source {
                Source::Tree(cursor) => tree.snapshot_chunk(cursor, CHUNK_BYTES),
                Source::Received { bytes, offset } => {
                    let end = (*offset + CHUNK_BYTES).min(bytes.len());
                    let chunk = bytes[*offset..end].to_vec();
                    *offset = end;
                    chunk
                }
            };
            snapshot.chunks_in_flight += 1;
            out.push(Action::SnapshotChunk { bytes });
        }
        if snapshot.source.is_done() {
            snapshot.end_sent = true;
            out.push(Action::SnapshotEnd);
        }
    }

    pub(crate) fn chunk_written(&mut self) {
        if let Some(snapshot) = &mut self.in_progress {
            assert!(
                snapshot.chunks_in_flight > 0,
                "a chunk was written that was never sent"
            );
            snapshot.chunks_in_flight -= 1;
        }
    }

    /// Writes a snapshot received from the leader (after the one in
    /// progress, if any); [`Snapshots::done`] says when it is sealed.
    pub(crate) fn write_received(
        &mut self,
        zxid: i64,
        bytes: Vec<u8>,
        now: Duration,
        out: &mut Out,
    ) {
        if self.in_progress.is_some() {
            self.received_pending = Some((zxid, bytes));
            return;
        }
        self.in_progress = Some(InProgress {
            zxid,
            source: Source::Received { bytes, offset: 0 },
            chunks_in_flight: 0,
            started: now,
            end_sent: false,
        });
        out.push(Action::SnapshotBegin { zxid });
    }

    pub(crate) fn done(
        &mut self,
        result: Result<SnapshotWritten, StorageFailure>,
        now: Duration,
        out: &mut Out,
    ) -> Option<Finished> {
        let Some(snapshot) = self.in_progress.take() else {
            out.log(
                Level::Warn,
                "a snapshot finished that was never started".into(),
            );
            return None;
        };
        let received = matches!(snapshot.source, Source::Received { .. });
        let finished = Finished {
            zxid: snapshot.zxid,
            received,
            ok: result.is_ok(),
        };
        let elapsed = now.saturating_sub(snapshot.started);
        if !received {
            self.allowed_at = now + elapsed * GAP_FACTOR;
        }
        if let Some((zxid, bytes)) = self.received_pending.take() {
            self.write_received(zxid, bytes, now, out);
        }
        match result {
            Ok(written) => out.log(
                Level::Info,
                format!(
                    "snapshot written: file={} bytes={} elapsed_ms={}",
                    written.file,
                    written.bytes,
                    elapsed.as_millis()
                ),
            ),
            Err(failure) => out.log(
                Level::Error,
                format!(
                    "snapshot 0x{:x} failed ({failure}); the log keeps everything, the next one will retry",
                    snapshot.zxid
                ),
            ),
        }
        Some(finished)
    }

    /// Whether the next append must start a new segment; clears the flag.
    pub(crate) fn take_roll(&mut self) -> bool {
        std::mem::take(&mut self.roll_pending)
    }

    /// Whether a chunk is ready to go (the driver should come back soon).
    pub(crate) fn wants_pump(&self) -> bool {
        self.in_progress
            .as_ref()
            .is_some_and(|s| !s.end_sent && s.chunks_in_flight < CHUNKS_IN_FLIGHT_MAX)
    }

    pub(crate) fn check_invariants(&self) {
        if let Some(snapshot) = &self.in_progress {
            assert!(snapshot.chunks_in_flight <= CHUNKS_IN_FLIGHT_MAX);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_fires_between_half_and_all_of_snap_count() {
        for random in [0u64, 1, 49_999, 123_456_789] {
            let mut schedule = SnapshotSchedule::new(100_000, 0, random);
            let mut txns = 0u64;
            while !schedule.logged(1, 100) {
                txns += 1;
            }
            assert!((50_000..100_000).contains(&txns), "fired after {txns}");
            schedule.restart(random + 1);
            assert!(!schedule.logged(1, 100));
        }
    }

    #[test]
    fn schedule_fires_on_log_bytes() {
        let mut schedule = SnapshotSchedule::new(100_000, 4, 0);
        assert!(!schedule.logged(1, 4096));
        assert!(schedule.logged(1, 1));
    }
}
