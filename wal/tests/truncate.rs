//! Truncation (ZAB's TRUNC) and reading back recent records (DIFF): a cut
//! is durable and final (recovery never sees a dropped record again, even
//! after the writer appends over the cut with the same salt), it survives a
//! crash at every step, and the range reader returns exactly the records
//! asked for while the writer keeps appending.

mod common;

use common::*;
use wal::{
    read_log_range, remove_snapshots_after, LogRecord, LogTail, LogWriter, MemFs, MemState, ReadFs,
    StdDir, StdFs, WalError,
};

const RECORDS: i64 = 120;

/// Records 1..=RECORDS of run 1 in batches of 1..=7 over many small
/// segments, with a roll now and then.
fn written_log(fs: &MemFs, seed: u64) -> LogWriter<MemFs> {
    let mut writer = open_writer(
        fs.clone(),
        small_config(seed),
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    );
    let mut zxid = 1;
    while zxid <= RECORDS {
        let last = (zxid + zxid % 7).min(RECORDS);
        if zxid % 41 == 0 {
            writer.roll();
        }
        append_and_sync(&mut writer, 1, zxid..=last, 150 + (zxid % 5) as usize * 90);
        zxid = last + 1;
    }
    writer
}

fn base_len(zxid: i64) -> usize {
    // The batch's first zxid decides the length; recompute it the same way.
    let mut first = 1;
    loop {
        let last = (first + first % 7).min(RECORDS);
        if zxid <= last {
            return 150 + (first % 5) as usize * 90;
        }
        first = last + 1;
    }
}

fn check_run_1(records: &[LogRecord], upto: i64, context: &str) {
    let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
    assert_eq!(zxids, (1..=upto).collect::<Vec<_>>(), "{context}");
    for record in records {
        assert_eq!(
            record.payload,
            payload(1, record.zxid, base_len(record.zxid)),
            "{context}"
        );
    }
}

fn segments(fs: &MemFs) -> Vec<String> {
    let mut names: Vec<String> = ReadFs::list(fs)
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("log."))
        .collect();
    names.sort();
    names
}

// Cut points in the middle of a segment, right after a segment's last
// record, before everything, and past the end: recovery then returns exactly
// the records up to the cut; the writer continues over the cut, and no
// dropped record ever comes back.
#[test]
fn truncate_then_recover_then_append() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut writer = written_log(&fs, 61);
    let last_in_first_segment = {
        let first = &segments(&fs)[0];
        let reader = ReadFs::open_read(&fs, first).unwrap();
        let mut scan = wal::SegmentScan::open(reader, first.clone()).unwrap();
        let mut last = 0;
        while let Some(record) = scan.next_record().unwrap() {
            last = record.zxid;
        }
        last
    };
    run(writer.ensure_spare()).unwrap();
    drop(writer);
    for after in [57, last_in_first_segment, 0, 119, RECORDS, RECORDS + 30] {
        let context = format!("cut after {after}");
        let image = fs.snapshot_current();
        let (_, tail) = recover_all(snaps.path(), image.clone()).unwrap();
        let mut writer = open_writer(image.clone(), small_config(62), tail);
        let report = run(writer.truncate(after)).unwrap();
        let kept = after.min(RECORDS);
        assert_eq!(report.zxid_last, kept, "{context}");
        assert_eq!(writer.zxid_durable(), kept, "{context}");
        let (records, tail) = recover_all(snaps.path(), image.clone()).unwrap();
        check_run_1(&records, kept, &context);
        assert_eq!(tail.zxid_last, kept);
        // Truncating again changes nothing.
        let again = run(writer.truncate(after)).unwrap();
        assert!(again.segments_removed.is_empty() && again.segment_cut.is_none());
        for batch in 0..6 {
            let first = kept + 1 + batch * 4;
            append_and_sync(&mut writer, 2, first..=first + 3, 60);
        }
        let (records, _) = recover_all(snaps.path(), image.clone()).unwrap();
        check_run_1(&records[..kept as usize], kept, &context);
        let zxids: Vec<i64> = records[kept as usize..].iter().map(|r| r.zxid).collect();
        assert_eq!(
            zxids,
            (kept + 1..=kept + 24).collect::<Vec<_>>(),
            "{context}"
        );
        assert!(records[kept as usize..]
            .iter()
            .all(|r| r.payload == payload(2, r.zxid, 60)));
    }
}

/// The highest zxid of run 2 acknowledged before checkpoint `index`.
fn acked_at(acked: &[(usize, i64)], index: usize) -> i64 {
    acked
        .iter()
        .filter(|(count, _)| *count <= index + 1)
        .map(|(_, z)| *z)
        .max()
        .unwrap_or(0)
}

// A crash at every step of a truncation, and of the appends after it:
// recovery always succeeds; before the truncation returned, the log is run
// 1 up to somewhere between the cut and its old end; after it, exactly run 1
// up to the cut, then run 2 holding every acknowledged record. A dropped
// record never reappears, whichever sectors of the cut or of later writes
// landed.
#[test]
fn truncate_at_every_crash_checkpoint() {
    let snaps = snapshot_dir(0);
    for (seed, after) in [(71, 57), (72, 3)] {
        let fs = MemFs::new();
        drop(written_log(&fs, seed));
        let (_, tail) = recover_all(snaps.path(), fs.clone()).unwrap();
        fs.record_checkpoints();
        let mut writer = open_writer(fs.clone(), small_config(seed), tail);
        run(writer.truncate(after)).unwrap();
        let truncated = fs.checkpoint_count();
        let mut acked = Vec::new();
        for batch in 0..8 {
            let first = after + 1 + batch * 3;
            append_and_sync(&mut writer, 2, first..=first + 2, 40 + batch as usize * 200);
            acked.push((fs.checkpoint_count(), first + 2));
        }
        let checkpoints: Vec<MemState> = fs.checkpoints();
        assert!(checkpoints.len() > 30);
        let mut partial = 0;
        for (index, state) in checkpoints.iter().enumerate() {
            for sample in 0..4 {
                let image = state.crash_image((index as u64) << 4 | sample);
                let context = format!("cut {after}, checkpoint {index} image {sample}");
                let (records, _) =
                    recover_all(snaps.path(), image).unwrap_or_else(|e| panic!("{context}: {e}"));
                let run_1 = records.iter().take_while(|r| r.payload[0] == 1).count();
                if index + 1 < truncated {
                    assert_eq!(run_1, records.len(), "{context}");
                    assert!(run_1 as i64 >= after, "{context}: {run_1} records");
                    partial += usize::from((run_1 as i64) < RECORDS);
                } else {
                    assert_eq!(run_1 as i64, after, "{context}");
                }
                check_run_1(&records[..run_1], run_1 as i64, &context);
                let run_2 = &records[run_1..];
                for (i, record) in run_2.iter().enumerate() {
                    assert_eq!(record.zxid, after + 1 + i as i64, "{context}");
                    assert_eq!(record.payload[0], 2, "{context}");
                }
                let last = run_2.last().map_or(after, |r| r.zxid);
                assert!(last >= acked_at(&acked, index).max(after), "{context}");
            }
        }
        // Some crashes caught the truncation half done.
        assert!(partial > 0, "cut {after}");
    }
}

/// A record payload that makes the record fill exactly one sector's stream
/// bytes, so every record starts on a sector boundary.
fn sector_sized(run_id: u8, zxid: i64) -> Vec<u8> {
    let mut bytes = vec![run_id; wal::SECTOR_STREAM_BYTES - wal::RECORD_HEADER_BYTES];
    bytes[1..9].copy_from_slice(&zxid.to_le_bytes());
    bytes
}

// After a cut, the next write re-logs records of exactly the dropped ones'
// sizes at the same places (a new leader's txns can be), over several
// blocks, and a power cut keeps some of its sectors: where one is lost, the
// stream runs into what lay there before the write. Beyond the cut's own
// block those bytes were zeroed by the truncation, so no dropped record
// (same salt, same place, same zxid) is ever read back in place of a new one.
#[test]
fn a_dropped_record_never_revives_behind_a_torn_write() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut writer = open_writer(
        fs.clone(),
        small_config(75),
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    );
    for zxid in (1..=20).step_by(2) {
        writer.append(zxid, &sector_sized(1, zxid)).unwrap();
        writer.append(zxid + 1, &sector_sized(1, zxid + 1)).unwrap();
        run(writer.sync()).unwrap();
    }
    let after = 2;
    run(writer.truncate(after)).unwrap();
    // A spare is ready, so the sync that fails is the records' own.
    run(writer.ensure_spare()).unwrap();
    fs.fail_sync_data_at(0);
    for zxid in after + 1..=18 {
        writer.append(zxid, &sector_sized(2, zxid)).unwrap();
    }
    assert!(run(writer.sync()).is_err());
    let mut partial = 0;
    for seed in 0..300 {
        let (records, _) = recover_all(snaps.path(), fs.crash_image(seed)).unwrap();
        let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
        assert_eq!(zxids, (1..=records.len() as i64).collect::<Vec<_>>());
        for record in &records {
            let run_id = if record.zxid <= after { 1 } else { 2 };
            assert_eq!(
                record.payload,
                sector_sized(run_id, record.zxid),
                "seed {seed}: zxid {} is a dropped record",
                record.zxid
            );
        }
        partial += usize::from(records.len() as i64 > after + 1 && records.len() < 18);
    }
    assert!(partial > 0);
}

// Snapshots above a cut go before the log is cut; a cut below every
// snapshot is refused, removing nothing.
#[test]
fn snapshots_above_the_cut_are_removed_or_the_cut_refused() {
    let disk = MemFs::new();
    let data = disk.dir("data");
    for zxid in [10, 20, 30] {
        let mut writer = wal::SnapshotWriter::create_in(data.clone(), zxid).unwrap();
        writer.write(b"tree").unwrap();
        writer.finish().unwrap();
    }
    let error = remove_snapshots_after(&data, 5).unwrap_err();
    assert!(
        matches!(error, WalError::NoSnapshotBelow { zxid: 5, .. }),
        "{error}"
    );
    assert_eq!(wal::list_snapshots(&data).unwrap().len(), 3);
    let removed = remove_snapshots_after(&data, 25).unwrap();
    assert_eq!(removed, vec![wal::snapshot_name(30)]);
    let left: Vec<i64> = wal::list_snapshots(&data)
        .unwrap()
        .into_iter()
        .map(|(z, _)| z)
        .collect();
    assert_eq!(left, vec![20, 10]);
}

fn read_range<R: ReadFs>(fs: R, after: i64, to: i64) -> Result<Vec<LogRecord>, WalError> {
    read_log_range(fs, after, to)?.collect()
}

// While the writer appends, the records in (after, durable] read back
// exactly, from old segments and from the one being written, through the
// reader's own handles; ranges the log no longer holds say so.
#[test]
fn reading_back_while_appending() {
    let fs = MemFs::new();
    let mut writer = written_log(&fs, 81);
    for zxid in RECORDS + 1..=RECORDS + 40 {
        append_and_sync(&mut writer, 2, zxid..=zxid, 100);
        let to = writer.zxid_durable();
        for after in [0, 1, 56, to - 3, to - 1] {
            let records = read_range(fs.clone(), after, to).unwrap();
            let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
            assert_eq!(zxids, (after + 1..=to).collect::<Vec<_>>());
            for record in &records {
                let expected = if record.zxid <= RECORDS {
                    payload(1, record.zxid, base_len(record.zxid))
                } else {
                    payload(2, record.zxid, 100)
                };
                assert_eq!(record.payload, expected);
            }
        }
        // A range ending before the tail stops there.
        assert_eq!(read_range(fs.clone(), 10, 12).unwrap().len(), 2);
        assert!(read_range(fs.clone(), to, to).unwrap().is_empty());
    }
    // Records the log never held.
    let error = read_range(fs.clone(), 0, RECORDS + 50).unwrap_err();
    assert!(matches!(error, WalError::NotInLog { .. }), "{error}");
    // Records purged away.
    let purged = segments(&fs)[0].clone();
    run(wal::LogFs::remove(&fs, &purged)).unwrap();
    let error = read_range(fs.clone(), 0, 20).unwrap_err();
    assert!(matches!(error, WalError::NotInLog { .. }), "{error}");
    assert_eq!(read_range(fs.clone(), 99, 110).unwrap().len(), 11);
}

// The same on a real directory: a std writer appends while the range reader
// reads through its own file handles.
#[test]
fn reading_back_on_a_real_directory() {
    let log = tempfile::tempdir_in(test_root()).unwrap();
    let mut writer = open_writer(
        StdFs::new(log.path()),
        small_config(91),
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    );
    for zxid in 1..=60 {
        append_and_sync(&mut writer, 1, zxid..=zxid, 300);
        let records = read_range(StdDir::new(log.path()), zxid / 2, zxid).unwrap();
        let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
        assert_eq!(zxids, (zxid / 2 + 1..=zxid).collect::<Vec<_>>());
    }
}
