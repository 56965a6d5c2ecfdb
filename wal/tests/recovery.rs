//! Recovery: round trips, torn tails, mid-log corruption, gaps, missing snapshots.

mod common;

use common::*;
use wal::{LogFs, MemFs, StdFs, WalError, SEGMENT_HEADER_BYTES};

// Records written across many segments come back in order on a real
// directory, and the writer continues where recovery says.
#[test]
fn round_trip_on_real_directory_across_segments() {
    let snaps = snapshot_dir(0);
    let log_dir = tempfile::tempdir_in(test_root()).unwrap();
    let (records, tail) = recover_all(snaps.path(), wal::StdDir::new(log_dir.path())).unwrap();
    assert!(records.is_empty());
    let mut writer = open_writer(StdFs::new(log_dir.path()), small_config(1), tail);
    for batch in 0..30 {
        append_and_sync(&mut writer, 1, batch * 10 + 1..=batch * 10 + 10, 300);
    }
    let (records, tail) = recover_all(snaps.path(), wal::StdDir::new(log_dir.path())).unwrap();
    check_run(&records, 1, 1..=300, 300);
    assert_eq!(tail.zxid_last, 300);
    let segments = std::fs::read_dir(log_dir.path()).unwrap().count();
    assert!(segments > 5, "only {segments} files");

    let mut writer = open_writer(StdFs::new(log_dir.path()), small_config(2), tail);
    append_and_sync(&mut writer, 1, 301..=320, 300);
    let (records, _) = recover_all(snaps.path(), wal::StdDir::new(log_dir.path())).unwrap();
    check_run(&records, 1, 1..=320, 300);
}

// Only records above the snapshot's zxid are replayed, from the segment that
// holds snapshot + 1.
#[test]
fn replay_starts_after_the_snapshot() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let (_, tail) = recover_all(snaps.path(), fs.clone()).unwrap();
    let mut writer = open_writer(fs.clone(), small_config(3), tail);
    for batch in 0..10 {
        append_and_sync(&mut writer, 1, batch * 10 + 1..=batch * 10 + 10, 200);
    }
    write_snapshot(snaps.path(), 57, b"tree at 57");
    let (records, tail) = recover_all(snaps.path(), fs).unwrap();
    check_run(&records, 1, 58..=100, 200);
    assert_eq!(tail.zxid_last, 100);
}

/// Writes 40 records (zxid 1..=40) in 4 batches on a MemFs; returns it.
fn written_log(snaps: &std::path::Path) -> MemFs {
    let fs = MemFs::new();
    let (_, tail) = recover_all(snaps, fs.clone()).unwrap();
    let mut writer = open_writer(fs.clone(), small_config(4), tail);
    for batch in 0..4 {
        append_and_sync(&mut writer, 1, batch * 10 + 1..=batch * 10 + 10, 700);
    }
    fs
}

fn segments(fs: &MemFs) -> Vec<String> {
    LogFs::list(fs)
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("log."))
        .collect()
}

/// The offsets of the records in a segment.
fn record_offsets(fs: &MemFs, name: &str) -> Vec<(i64, u64)> {
    let reader = wal::ReadFs::open_read(fs, name).unwrap();
    let mut scan = wal::SegmentScan::open(reader, name.to_string()).unwrap();
    let mut offsets = Vec::new();
    while let Some(record) = scan.next_record().unwrap() {
        offsets.push((record.zxid, record.offset));
    }
    offsets
}

/// The file offset of byte `k` of the record that starts at file offset `at`
/// (records run on past sector stamps).
fn record_byte(at: u64, k: u64) -> u64 {
    let from_sectors = at - SEGMENT_HEADER_BYTES as u64;
    let sector = from_sectors / wal::SECTOR_BYTES as u64;
    let within = from_sectors % wal::SECTOR_BYTES as u64 - wal::SECTOR_STAMP_BYTES as u64;
    wal::stream_file_offset(sector * wal::SECTOR_STREAM_BYTES as u64 + within + k)
}

/// Appends records 41..=45 (run 1) to a written log; the write that carries
/// them reaches the disk in `data` but its sync fails, so it is never
/// acknowledged. Returns the poisoned writer's disk.
fn unacknowledged_write(snaps: &std::path::Path, tear: bool) -> MemFs {
    let fs = written_log(snaps);
    let (_, tail) = recover_all(snaps, fs.clone()).unwrap();
    let mut writer = open_writer(fs.clone(), small_config(7), tail);
    if tear {
        fs.tear_write_at(0);
    } else {
        fs.fail_sync_data_at(0);
    }
    for zxid in 41..=45 {
        writer.append(zxid, &payload(1, zxid, 700)).unwrap();
    }
    assert!(run(writer.sync()).is_err());
    fs
}

// A torn tail (a write that never completed: a device-reported torn write,
// or a power cut keeping any subset of its sectors) is cut at the last good
// record with exactly one warning; the records acknowledged before it all
// survive; the writer continues after the cut, and no record of the torn
// write ever comes back after the new ones.
#[test]
fn torn_tail_is_cut_with_one_warning() {
    let snaps = snapshot_dir(0);
    let mut images = vec![unacknowledged_write(snaps.path(), true).snapshot_current()];
    let unsynced = unacknowledged_write(snaps.path(), false);
    images.extend((0..40).map(|seed| unsynced.crash_image(seed)));
    let mut torn = 0;
    for (i, image) in images.into_iter().enumerate() {
        let (result, warnings) = count_warnings(|| recover_all(snaps.path(), image.clone()));
        let (records, tail) = result.unwrap_or_else(|e| panic!("image {i}: {e}"));
        let kept = records.len() as i64;
        assert!((40..=45).contains(&kept), "image {i}: {kept} records");
        check_run(&records, 1, 1..=kept, 700);
        let segment = tail.segment.as_ref().unwrap();
        if segment.scrub_end > segment.end {
            assert_eq!(warnings, 1, "image {i}");
            torn += 1;
        } else {
            assert_eq!(warnings, 0, "image {i}");
        }
        let mut writer = open_writer(image.clone(), small_config(5), tail);
        append_and_sync(&mut writer, 2, kept + 1..=kept + 5, 10);
        let (records, _) = recover_all(snaps.path(), image.clone()).unwrap();
        check_run(&records[..kept as usize], 1, 1..=kept, 700);
        check_run(&records[kept as usize..], 2, kept + 1..=kept + 5, 10);
    }
    assert!(torn > 10, "only {torn} images tore the write");
}

// The issue 10 case: one flipped byte in the last record of a log whose
// every write was acknowledged (its payload or header), or next to it (its
// sector's stamp, the zero header after it). ZooKeeper refuses ("CRC check
// failed"), and so does recovery now: an error naming the file, the offset
// where the readable records stop and the fk-tools command that accepts the
// loss, never a silent cut.
#[test]
fn damaged_last_acknowledged_record_refuses_to_start() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    let last = segments(&fs).last().unwrap().clone();
    let offsets = record_offsets(&fs, &last);
    let (zxid_last, at) = *offsets.last().unwrap();
    let length = wal::record_bytes(payload(1, zxid_last, 700).len()) as u64;
    let stamp_of_last = record_byte(at, length - 1) / 512 * 512 + 9;
    for (what, damaged_at) in [
        ("payload", record_byte(at, 300)),
        ("last payload byte", record_byte(at, length - 1)),
        ("header", record_byte(at, 5)),
        ("stamp", stamp_of_last),
        ("zero header after it", record_byte(at, length + 3)),
    ] {
        let damaged = fs.snapshot_current();
        let byte = damaged.contents(&last).unwrap()[damaged_at as usize];
        damaged.overwrite(&last, damaged_at, &[byte ^ 0x20]);
        match recover_all(snaps.path(), damaged) {
            Err(WalError::Corrupt {
                file,
                offset,
                accept_loss: Some(command),
                ..
            }) => {
                assert!(file.ends_with(&last), "{what}: {file}");
                // Damage outside the record leaves it readable: the records
                // stop after it, and accepting the loss loses nothing.
                let expected = if what == "zero header after it" || what == "stamp" {
                    record_byte(at, length)
                } else {
                    at
                };
                assert_eq!(offset, expected, "{what}");
                let keep = if expected == at {
                    zxid_last - 1
                } else {
                    zxid_last
                };
                assert!(
                    command.starts_with("fk-tools log truncate")
                        && command.ends_with(&format!("--after-zxid {keep:#x}")),
                    "{what}: {command}"
                );
            }
            Err(other) => panic!("{what}: {other}"),
            Ok((records, _)) => panic!("{what}: recovered {} records", records.len()),
        }
    }
}

// Damage to an acknowledged record lying before a torn last write (outside
// that write's blocks) is still damage: the torn write changed nothing
// before its own records, so recovery refuses rather than cut there.
#[test]
fn damage_below_a_torn_write_is_refused() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let (_, tail) = recover_all(snaps.path(), fs.clone()).unwrap();
    let mut writer = open_writer(fs.clone(), small_config(9), tail);
    // 60 small records in 12 writes: two blocks of one segment.
    for batch in 0..12 {
        append_and_sync(&mut writer, 1, batch * 5 + 1..=batch * 5 + 5, 100);
    }
    let name = segments(&fs)[0].clone();
    fs.tear_write_at(0);
    for zxid in 61..=70 {
        writer.append(zxid, &payload(1, zxid, 100)).unwrap();
    }
    assert!(run(writer.sync()).is_err());
    let image = fs.snapshot_current();
    let (records, _) = recover_all(snaps.path(), image.clone()).unwrap();
    assert!(records.len() >= 60);
    let at = record_offsets(&image, &name)[4].1;
    assert!(at < wal::sector_file_offset(wal::SECTOR_BYTES as u64 / 64));
    image.overwrite(&name, record_byte(at, 30), &[0xee]);
    match recover_all(snaps.path(), image) {
        Err(WalError::Corrupt {
            offset,
            accept_loss: Some(command),
            ..
        }) => {
            assert_eq!(offset, at);
            assert!(command.ends_with("--after-zxid 0x4"), "{command}");
        }
        Err(other) => panic!("{other}"),
        Ok((records, _)) => panic!("recovered {} records", records.len()),
    }
}

// A clean end (shutdown after a sync) logs no warning.
#[test]
fn clean_end_logs_nothing() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    let (result, warnings) = count_warnings(|| recover_all(snaps.path(), fs.clone()));
    check_run(&result.unwrap().0, 1, 1..=40, 700);
    assert_eq!(warnings, 0);
}

// A damaged record followed by good ones is an error naming the file and the
// byte offset, never a silent truncation: in an earlier segment, and in the
// last segment when the good records after it were written by later syncs.
#[test]
fn mid_log_corruption_is_an_error_with_file_and_offset() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    let (_, tail) = recover_all(snaps.path(), fs.clone()).unwrap();
    let mut writer = open_writer(fs.clone(), small_config(6), tail);
    for zxid in 41..=46 {
        append_and_sync(&mut writer, 1, zxid..=zxid, 50);
    }
    let names = segments(&fs);
    assert!(names.len() >= 3, "{names:?}");
    let last = names.last().unwrap();
    let in_last = record_offsets(&fs, last)
        .into_iter()
        .find(|(zxid, _)| *zxid == 41)
        .unwrap()
        .1;
    let in_first = record_offsets(&fs, &names[0])[0].1;
    assert_eq!(in_first, wal::stream_file_offset(0));
    for (name, at) in [(&names[0], in_first), (last, in_last)] {
        let damaged = fs.snapshot_current();
        damaged.overwrite(name, record_byte(at, 22), &[0x55]);
        match recover_all(snaps.path(), damaged) {
            Err(WalError::Corrupt { file, offset, .. }) => {
                assert!(file.ends_with(name.as_str()), "{file}");
                assert_eq!(offset, at);
            }
            Err(other) => panic!("{other}"),
            Ok((records, _)) => panic!("recovered {} records", records.len()),
        }
    }
}

// A missing segment in the middle of the log is a gap error.
#[test]
fn missing_segment_is_a_gap() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    let names = segments(&fs);
    run(fs.remove(&names[1])).unwrap();
    let error = recover_all(snaps.path(), fs).unwrap_err();
    assert!(
        matches!(error, WalError::Gap { ref file, .. } if file.ends_with(&names[2])),
        "{error:?}"
    );
}

// A segment missing between the snapshot and the first remaining segment is
// a gap too: records after the snapshot would be lost.
#[test]
fn missing_first_needed_segment_is_a_gap() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    let names = segments(&fs);
    run(fs.remove(&names[0])).unwrap();
    let error = recover_all(snaps.path(), fs).unwrap_err();
    assert!(matches!(error, WalError::Gap { .. }), "{error:?}");
}

// Log segments with no snapshot at all is an error (ZOOKEEPER-2325); an
// entirely empty pair of directories is a fresh start.
#[test]
fn log_without_snapshot_is_an_error_zookeeper_2325() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    let empty = tempfile::tempdir_in(test_root()).unwrap();
    let error = recover_all(empty.path(), fs).unwrap_err();
    assert!(
        matches!(error, WalError::LogWithoutSnapshot { .. }),
        "{error:?}"
    );

    let recovery = wal::recover(empty.path(), empty.path()).unwrap();
    assert!(recovery.snapshot.is_none());
    let tail = recovery.log.finish().unwrap();
    assert_eq!(tail, wal::LogTail::fresh());
}

// A damaged newest snapshot falls back to the previous one (with a warning),
// and the log is replayed from there.
#[test]
fn damaged_newest_snapshot_falls_back() {
    let snaps = snapshot_dir(0);
    let fs = written_log(snaps.path());
    write_snapshot(snaps.path(), 20, b"tree at 20");
    write_snapshot(snaps.path(), 30, b"tree at 30");
    let newest = snaps.path().join(wal::snapshot_name(30));
    let mut bytes = std::fs::read(&newest).unwrap();
    bytes[26] ^= 1;
    std::fs::write(&newest, bytes).unwrap();
    let (result, warnings) = count_warnings(|| {
        let recovery = wal::recover_from(&wal::StdDir::new(snaps.path()), fs.clone()).unwrap();
        let zxid = recovery.snapshot.as_ref().unwrap().zxid;
        (
            zxid,
            recovery.log.map(|r| r.unwrap().zxid).collect::<Vec<_>>(),
        )
    });
    assert_eq!(result.0, 20);
    assert_eq!(result.1, (21..=40).collect::<Vec<_>>());
    assert_eq!(warnings, 1);
    assert_eq!(
        wal::read_snapshot(&snaps.path().join(wal::snapshot_name(20))).unwrap(),
        (20, b"tree at 20".to_vec())
    );
    assert!(matches!(
        wal::verify_snapshot(&newest),
        Err(WalError::SnapshotCorrupt { .. })
    ));
}

// A record whose zxid does not increase (written by hand, in format 1,
// which recovery still reads) is reported.
#[test]
fn zxid_going_backwards_is_an_error() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let header = wal::SegmentHeader {
        version: wal::FORMAT_VERSION_V1,
        zxid_first: 1,
        zxid_previous: -1,
        salt: 9,
    };
    let mut bytes = header.encode();
    wal::encode_record(&mut bytes, 9, 1, 0, b"one");
    let second = bytes.len() as u32 - SEGMENT_HEADER_BYTES as u32;
    wal::encode_record(&mut bytes, 9, 1, second, b"one again");
    bytes.resize(16 * 1024, 0);
    let file = run(fs.create("log.0000000000000001")).unwrap();
    run(fs.write_at(&file, 0, &bytes)).unwrap();
    let error = recover_all(snaps.path(), fs).unwrap_err();
    assert!(matches!(error, WalError::Gap { .. }), "{error:?}");
}

// A default-size (64 MiB) segment whose space after the last write holds
// megabytes of junk that no writer stamped (as a recycled file from before
// sector stamps does) recovers by reading it once: the junk is old content,
// not damage, so the end is clean and nothing in it is returned.
#[test]
fn junk_after_the_data_of_a_full_size_segment() {
    let snaps = snapshot_dir(0);
    let log_dir = tempfile::tempdir_in(test_root()).unwrap();
    let (_, tail) = recover_all(snaps.path(), wal::StdDir::new(log_dir.path())).unwrap();
    let config = wal::WriterConfig {
        salt_seed: 8,
        ..wal::WriterConfig::default()
    };
    let mut writer = open_writer(StdFs::new(log_dir.path()), config, tail);
    append_and_sync(&mut writer, 1, 1..=10, 100);
    let segment = log_dir.path().join(wal::segment_name(1));
    let (data_end, stream_end) = {
        let fs = wal::StdDir::new(log_dir.path());
        let reader = wal::ReadFs::open_read(&fs, &wal::segment_name(1)).unwrap();
        let mut scan = wal::SegmentScan::open(reader, "segment".into()).unwrap();
        while scan.next_record().unwrap().is_some() {}
        let end = scan.end().unwrap();
        (end.offset, end.stream_offset)
    };
    let capacity = wal::stream_capacity(wal::SEGMENT_BYTES_DEFAULT);
    let (_, extent_end) = wal::write_extent(0, stream_end, capacity);
    let junk: Vec<u8> = (0..3 << 20)
        .map(|i: u32| (i.wrapping_mul(2654435761) >> 13) as u8 | 1)
        .collect();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &junk, wal::sector_file_offset(extent_end))
        .unwrap();
    let (result, warnings) =
        count_warnings(|| recover_all(snaps.path(), wal::StdDir::new(log_dir.path())));
    let (records, tail) = result.unwrap();
    check_run(&records, 1, 1..=10, 100);
    assert_eq!(warnings, 0);
    let tail = tail.segment.unwrap();
    assert_eq!((tail.end, tail.scrub_end), (data_end, data_end));
}
