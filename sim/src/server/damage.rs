//! The bit-flip fault on one server's disk: one bit of a durable,
//! acknowledged log record flips while the server is down (a latent
//! sector error, a firmware bug), as `Fault::BitFlip` asks.
//!
//! The flip goes into the record's payload on the crash image the restart
//! recovers from, through [`MemFs::overwrite`] (the data and its durable
//! copy alike). Recovery then finds the damage (`wal`'s sector stamps and
//! crcs), sets it aside behind the "recovering" marker, and the node
//! recovers the lost records from its peers before it votes again.
//!
//! The quorum check (`ensemble::quorum_durable`) counts what the disk held
//! before the flip while the marker is set (`damaged_floor`): the check is
//! about what a minority of power cuts could lose, and the server whose
//! loss is known counts in no quorum until it holds the records again.

use wal::{MemFs, ReadFs, SegmentScan};

use super::Server;
use crate::context::Context;

impl Server {
    /// Whether a bit flip damaged this server's log and it has not yet
    /// recovered the lost records from its peers.
    pub fn is_recovering_lost_records(&self) -> bool {
        self.damaged_floor.is_some()
    }

    /// Flips one bit in the payload of durable record `zxid` (or of the
    /// newest durable record, if the log does not hold that one) of this
    /// server, which is down. Returns the zxid of the damaged record, or
    /// `None` when the log holds no durable record to damage.
    pub fn flip_bit_in_log(&mut self, cx: &mut Context, zxid: i64) -> Option<i64> {
        assert!(
            !self.is_up(),
            "the disk is damaged while the server is down"
        );
        let durable = self.disk_log_zxid;
        let target = find_record(&self.log_fs, zxid.min(durable))
            .or_else(|| find_record(&self.log_fs, durable))?;
        let Target {
            segment,
            zxid,
            payload_file_offsets,
        } = target;
        let at = *cx.rng.pick(&payload_file_offsets);
        let byte = self.log_fs.contents(&segment)?[at as usize];
        let bit = 1u8 << cx.rng.below(8);
        self.log_fs.overwrite(&segment, at, &[byte ^ bit]);
        self.damaged_floor = Some(self.zxid_on_disk());
        let sid = self.sid;
        cx.trace.line(cx.now, || {
            format!("s{sid}: a bit flips in durable record 0x{zxid:x} ({segment} byte {at})")
        });
        Some(zxid)
    }
}

/// Where a record's payload lies on disk.
struct Target {
    segment: String,
    zxid: i64,
    /// The file offsets of a sample of its payload bytes.
    payload_file_offsets: Vec<u64>,
}

/// Record `zxid` in the log, if a segment holds it readably.
fn find_record(log: &MemFs, zxid: i64) -> Option<Target> {
    let segments = wal::list_segments(log).ok()?;
    let (_, segment) = segments.iter().rev().find(|(first, _)| *first <= zxid)?;
    let reader = log.open_read(segment).ok()?;
    let mut scan = SegmentScan::open(reader, segment.clone()).ok()?;
    loop {
        let start = scan.stream_offset();
        let record = scan.next_record().ok()??;
        if record.zxid == zxid {
            let end = scan.stream_offset();
            let first = start + wal::RECORD_HEADER_BYTES as u64;
            let payload_file_offsets = (first..end)
                .step_by(7)
                .map(|stream| scan.file_offset(stream))
                .collect::<Vec<_>>();
            return (!payload_file_offsets.is_empty()).then(|| Target {
                segment: segment.clone(),
                zxid,
                payload_file_offsets,
            });
        }
        if record.zxid > zxid {
            return None;
        }
    }
}
