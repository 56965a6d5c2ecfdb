//! Crash images: a recorded run on the in-memory backend is cut by a power
//! failure at every step, each cut sampled several ways (unsynced writes lost,
//! kept, kept in part, a sector torn mid-way; unsynced renames kept or not).
//! Every image must recover to a prefix of what was appended that holds every
//! record whose `sync()` returned Ok; and after recovery the writer must
//! continue, survive a second crash the same way, and never let a record of
//! the first run reappear after the second run's records.

mod common;

use common::*;
use wal::{LogTail, MemFs, MemState};

const RECORDS_MAX: i64 = 200;
const IMAGES_PER_CHECKPOINT: u64 = 6;
const FIRST_RUN_SEED: u64 = 11;

struct Run {
    checkpoints: Vec<MemState>,
    /// (checkpoint count when sync returned Ok, highest zxid it made durable)
    acked: Vec<(usize, i64)>,
}

/// Appends `first..` in batches of varying size, syncing each, and rolling
/// now and then; records checkpoints all along.
fn recorded_run(fs: &MemFs, tail: LogTail, run_id: u8, seed: u64, first: i64, count: i64) -> Run {
    // Recording starts before open, so crashes while it zeroes a cut tail
    // or recycles an empty segment are covered too.
    fs.record_checkpoints();
    let mut writer = open_writer(fs.clone(), small_config(seed), tail);
    let mut acked = Vec::new();
    let mut zxid = first;
    let mut rng = seed;
    while zxid < first + count {
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let batch = 1 + (rng >> 60) as i64;
        if rng >> 58 & 3 == 0 {
            writer.roll();
        }
        let last = (zxid + batch - 1).min(first + count - 1);
        let base_len = ((rng >> 20) % 1500) as usize;
        append_and_sync(&mut writer, run_id, zxid..=last, base_len);
        acked.push((fs.checkpoint_count(), last));
        zxid = last + 1;
    }
    Run {
        checkpoints: fs.checkpoints(),
        acked,
    }
}

/// The highest zxid acknowledged before checkpoint `index` was taken.
fn acked_at(run: &Run, index: usize) -> i64 {
    run.acked
        .iter()
        .filter(|(count, _)| *count <= index + 1)
        .map(|(_, z)| *z)
        .max()
        .unwrap_or(-1)
}

/// Checks that `records` are run `run_id`'s zxids `first..` in order, with
/// payloads of that run, at least up to `acked`.
fn check_prefix(records: &[wal::LogRecord], run_id: u8, first: i64, acked: i64, context: &str) {
    for (i, record) in records.iter().enumerate() {
        let zxid = first + i as i64;
        assert_eq!(record.zxid, zxid, "{context}: record {i}");
        assert_eq!(
            record.payload[0], run_id,
            "{context}: zxid {zxid} comes from another run"
        );
        assert_eq!(
            &record.payload[1..9],
            &zxid.to_le_bytes(),
            "{context}: zxid {zxid} payload"
        );
    }
    let last = records.last().map_or(first - 1, |r| r.zxid);
    assert!(
        last >= acked,
        "{context}: recovered up to {last}, but {acked} was acknowledged"
    );
}

#[test]
fn every_crash_image_keeps_acknowledged_records_and_nothing_else() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let run = recorded_run(
        &fs,
        LogTail {
            zxid_last: 0,
            segment: None,
        },
        1,
        FIRST_RUN_SEED,
        1,
        RECORDS_MAX,
    );
    assert!(
        run.checkpoints.len() > 100,
        "{} checkpoints",
        run.checkpoints.len()
    );
    let mut second_runs = 0;
    let mut scrubbed = 0;
    let (mut beyond_acked, mut short_of_appended) = (0, 0);
    for (index, state) in run.checkpoints.iter().enumerate() {
        let acked = acked_at(&run, index);
        for sample in 0..IMAGES_PER_CHECKPOINT {
            let seed = (index as u64) << 8 | sample;
            let image = state.crash_image(seed);
            let context = format!("checkpoint {index} image {sample}");
            let (records, tail) = recover_all(snaps.path(), image.clone())
                .unwrap_or_else(|e| panic!("{context}: {e}"));
            check_prefix(&records, 1, 1, acked, &context);
            let last = records.last().map_or(0, |r| r.zxid);
            beyond_acked += usize::from(last > acked);
            short_of_appended += usize::from(last < RECORDS_MAX);
            if sample == 0 && index % 3 == 0 {
                scrubbed += usize::from(tail.segment.as_ref().is_some_and(|t| t.scrub_end > t.end));
                second_crash(snaps.path(), &image, &records, tail, seed, &context);
                second_runs += 1;
            }
        }
    }
    assert!(second_runs > 30);
    // Some second runs began by zeroing leftovers of a torn write.
    assert!(scrubbed > 0);
    // The sampling reaches both kinds of image: unacknowledged records that
    // happened to survive, and unsynced records that were lost.
    assert!(
        beyond_acked > 20 && short_of_appended > 100,
        "{beyond_acked} {short_of_appended}"
    );
}

/// Continues on a recovered image, crashes it again at every step, recovers.
fn second_crash(
    snaps: &std::path::Path,
    image: &MemFs,
    first_records: &[wal::LogRecord],
    tail: LogTail,
    seed: u64,
    context: &str,
) {
    let next = tail.zxid_last + 1;
    // The same salt seed as the first run: the worst case, where a segment's
    // next life may draw its previous salt.
    let run = recorded_run(image, tail, 2, FIRST_RUN_SEED, next, 12 + (seed % 5) as i64);
    for (index, state) in run.checkpoints.iter().enumerate().step_by(2) {
        let acked = acked_at(&run, index);
        let context = format!("{context}, second run checkpoint {index}");
        let (records, _) = recover_all(snaps, state.crash_image(seed + index as u64))
            .unwrap_or_else(|e| panic!("{context}: {e}"));
        assert!(
            records.len() >= first_records.len(),
            "{context}: lost records of the first run"
        );
        assert_eq!(&records[..first_records.len()], first_records, "{context}");
        check_prefix(&records[first_records.len()..], 2, next, acked, &context);
    }
}

// Images whose sectors may also be torn mid-way (a device breaking its
// atomic write unit, which the format's torn-write rule relies on): the
// stamps can then no longer prove a write was torn, so recovery may refuse
// with Corrupt; but whenever it does recover, it holds every acknowledged
// record and nothing that was not appended.
#[test]
fn torn_sectors_are_refused_or_recovered_never_cut_below_acknowledged() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let run = recorded_run(
        &fs,
        LogTail {
            zxid_last: 0,
            segment: None,
        },
        1,
        FIRST_RUN_SEED + 1,
        1,
        RECORDS_MAX / 2,
    );
    let (mut refused, mut recovered) = (0, 0);
    for (index, state) in run.checkpoints.iter().enumerate() {
        let acked = acked_at(&run, index);
        for sample in 0..IMAGES_PER_CHECKPOINT {
            let image = state.crash_image_tearing_sectors((index as u64) << 8 | sample);
            let context = format!("checkpoint {index} image {sample}");
            match recover_all(snaps.path(), image) {
                Ok((records, _)) => {
                    check_prefix(&records, 1, 1, acked, &context);
                    recovered += 1;
                }
                Err(wal::WalError::Corrupt { .. }) => refused += 1,
                Err(other) => panic!("{context}: {other}"),
            }
        }
    }
    assert!(refused > 0 && recovered > 100, "{refused} {recovered}");
}
