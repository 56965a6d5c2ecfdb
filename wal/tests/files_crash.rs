//! Crash images of the blocking file writers: a snapshot, an epoch file and a
//! purge, each recorded on the in-memory disk and cut by a power failure at
//! every step, each cut sampled several ways (sectors kept or lost, some even
//! torn mid-sector; unsynced renames kept or not). What recovery sees must be:
//! a snapshot either absent or complete and valid; an epoch file holding the
//! old or the new value, never anything else; after a purge, every record the
//! kept snapshots need. Failed writers leave no temp file behind.

mod common;

use std::io::Read;

use common::*;
use wal::{
    list_snapshots, newest_valid_snapshot, open_snapshot, purge_in, read_epoch_in, recover_from,
    remove_temporary_files_in, write_epoch_in, EpochFile, LogTail, MemFs, MemState, ReadFs,
    SnapshotWriter, WalError, WriteFs,
};

const IMAGES_PER_CHECKPOINT: u64 = 8;

/// A recognisable snapshot body of `len` bytes.
fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2654435761).to_le_bytes()[2] ^ seed)
        .collect()
}

fn write_snapshot_in(fs: &MemFs, zxid: i64, body: &[u8]) {
    let mut writer = SnapshotWriter::create_in(fs.clone(), zxid).unwrap();
    for chunk in body.chunks(300_001) {
        writer.write(chunk).unwrap();
    }
    writer.finish().unwrap();
}

/// The images a test examines for one checkpoint: atomic sectors mostly,
/// torn sectors in a quarter of them.
fn images(state: &MemState, index: usize) -> impl Iterator<Item = MemFs> + '_ {
    (0..IMAGES_PER_CHECKPOINT).map(move |sample| {
        let seed = (index as u64) << 8 | sample;
        if sample % 4 == 3 {
            state.crash_image_tearing_sectors(seed)
        } else {
            state.crash_image(seed)
        }
    })
}

fn names(fs: &MemFs) -> Vec<String> {
    let mut names = ReadFs::list(fs).unwrap();
    names.sort();
    names
}

// A snapshot written in chunks with intermediate syncs: every crash image
// holds each snapshot file whole and valid or not at all, the newest valid
// one is the new snapshot once `finish` returned, and the start-up cleanup
// leaves nothing but complete snapshots.
#[test]
fn every_crash_image_of_a_snapshot_write_holds_it_whole_or_not_at_all() {
    let disk = MemFs::new();
    let data = disk.dir("data");
    let old_body = body(5000, 1);
    write_snapshot_in(&data, 5, &old_body);
    let new_body = body(3 * (1 << 20) + 1234, 2);
    disk.record_checkpoints();
    write_snapshot_in(&data, 9, &new_body);
    let checkpoints = disk.checkpoints();
    assert!(checkpoints.len() > 10, "{} checkpoints", checkpoints.len());
    let (mut without_new, mut with_new) = (0, 0);
    for (index, state) in checkpoints.iter().enumerate() {
        for image in images(state, index) {
            let image = image.dir("data");
            let context = format!("checkpoint {index}");
            for (zxid, name) in list_snapshots(&image).unwrap() {
                let mut reader = open_snapshot(&image, &name).unwrap();
                let mut got = Vec::new();
                reader.read_to_end(&mut got).unwrap();
                let expected = if zxid == 5 { &old_body } else { &new_body };
                assert!(zxid == 5 || zxid == 9, "{context}: {name}");
                assert!(got == *expected, "{context}: {name} differs");
            }
            let newest = newest_valid_snapshot(&image).unwrap().unwrap().zxid;
            if index + 1 == checkpoints.len() {
                assert_eq!(newest, 9, "{context}: finished snapshot missing");
            }
            without_new += usize::from(newest == 5);
            with_new += usize::from(newest == 9);
            let removed = remove_temporary_files_in(&image, &image.dir("log")).unwrap();
            assert!(removed.iter().all(|n| n.ends_with(".tmp")), "{removed:?}");
            assert!(
                names(&image).iter().all(|n| !n.ends_with(".tmp")),
                "{context}"
            );
        }
    }
    assert!(without_new > 10 && with_new > 0, "{without_new} {with_new}");
}

// Replacing an epoch file: every crash image reads the old or the new value
// (a file written for the first time: absent or the new value), never an
// error, and the new value once the write returned.
#[test]
fn every_crash_image_of_an_epoch_write_holds_the_old_or_the_new_value() {
    let disk = MemFs::new();
    let data = disk.dir("data");
    write_epoch_in(&data, EpochFile::Current, 3).unwrap();
    disk.record_checkpoints();
    write_epoch_in(&data, EpochFile::Current, 4).unwrap();
    let current_written = disk.checkpoint_count();
    write_epoch_in(&data, EpochFile::Accepted, 12).unwrap();
    let checkpoints = disk.checkpoints();
    let mut seen = std::collections::BTreeSet::new();
    for (index, state) in checkpoints.iter().enumerate() {
        for image in images(state, index) {
            let image = image.dir("data");
            let current = read_epoch_in(&image, EpochFile::Current).unwrap();
            let accepted = read_epoch_in(&image, EpochFile::Accepted).unwrap();
            assert!(
                matches!(current, Some(3 | 4)),
                "checkpoint {index}: {current:?}"
            );
            assert!(
                matches!(accepted, None | Some(12)),
                "checkpoint {index}: {accepted:?}"
            );
            if index + 1 >= current_written {
                assert_eq!(current, Some(4), "checkpoint {index}");
            }
            if index + 1 == checkpoints.len() {
                assert_eq!(accepted, Some(12), "checkpoint {index}");
            }
            seen.insert((current, accepted));
        }
    }
    // The sampling reaches old and new values of both files.
    assert!(seen.contains(&(Some(3), None)) && seen.contains(&(Some(4), None)));
    assert!(seen.contains(&(Some(4), Some(12))), "{seen:?}");
}

// A failed sync or a full disk while writing an epoch file returns the
// error, removes the temp file and leaves the old value in place.
#[test]
fn failed_epoch_write_keeps_the_old_value_and_no_temp_file() {
    let disk = MemFs::new();
    let data = disk.dir("data");
    write_epoch_in(&data, EpochFile::Accepted, 5).unwrap();
    disk.fail_sync_data_at(0);
    let error = write_epoch_in(&data, EpochFile::Accepted, 6).unwrap_err();
    assert!(matches!(error, WalError::Io { op: "fsync", .. }), "{error}");
    disk.limit_bytes(disk.bytes_used());
    let error = write_epoch_in(&data, EpochFile::Accepted, 7).unwrap_err();
    assert!(error.is_no_space(), "{error}");
    assert_eq!(names(&data), vec!["acceptedEpoch".to_string()]);
    assert_eq!(read_epoch_in(&data, EpochFile::Accepted).unwrap(), Some(5));
    disk.limit_bytes(None);
    write_epoch_in(&data, EpochFile::Accepted, 8).unwrap();
    assert_eq!(read_epoch_in(&data, EpochFile::Accepted).unwrap(), Some(8));
}

// A snapshot that fails (full disk, failed sync) or is given up leaves no
// temp file; space comes back, and the next snapshot succeeds.
#[test]
fn failed_and_abandoned_snapshots_leave_no_temp_file() {
    let disk = MemFs::new();
    let data = disk.dir("data");
    write_snapshot_in(&data, 1, b"tree");
    let used = disk.bytes_used();

    disk.limit_bytes(used + 1_500_000);
    let mut writer = SnapshotWriter::create_in(data.clone(), 2).unwrap();
    let big = body(3 << 20, 3);
    let error = big
        .chunks(100_000)
        .find_map(|chunk| writer.write(chunk).err())
        .expect("the disk fills up");
    assert!(error.is_no_space(), "{error}");
    drop(writer);
    assert_eq!(names(&data), vec![wal::snapshot_name(1)]);
    assert_eq!(disk.bytes_used(), used);

    disk.limit_bytes(None);
    disk.fail_sync_data_at(0);
    let mut writer = SnapshotWriter::create_in(data.clone(), 3).unwrap();
    writer.write(b"tree at 3").unwrap();
    let error = writer.finish().unwrap_err();
    assert!(
        matches!(
            error,
            WalError::Io {
                op: "fdatasync",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(names(&data), vec![wal::snapshot_name(1)]);

    let mut writer = SnapshotWriter::create_in(data.clone(), 4).unwrap();
    writer.write(b"tree at 4").unwrap();
    writer.abandon().unwrap();
    assert_eq!(names(&data), vec![wal::snapshot_name(1)]);

    write_snapshot_in(&data, 5, b"tree at 5");
    assert_eq!(newest_valid_snapshot(&data).unwrap().unwrap().zxid, 5);
}

/// Recovers from in-memory directories: the snapshot's zxid and every record.
fn recover_mem(snaps: &MemFs, log: MemFs) -> Result<(i64, Vec<wal::LogRecord>), WalError> {
    let recovery = recover_from(snaps, log)?;
    let zxid = recovery.snapshot.as_ref().map_or(-1, |s| s.zxid);
    let records = recovery.log.collect::<Result<Vec<_>, _>>()?;
    Ok((zxid, records))
}

// Purge at every crash point: the kept snapshots are all there, and from
// every snapshot an image holds (tried as the newest, which recovery uses),
// recovery finds every record after it up to the last one written. The
// killed snapshot's temp file goes, the finished ones stay.
#[test]
fn every_crash_image_of_a_purge_keeps_what_recovery_needs() {
    let disk = MemFs::new();
    let (data, log) = (disk.dir("data"), disk.dir("log"));
    write_snapshot_in(&data, 0, b"t0");
    let mut writer = open_writer(
        log.clone(),
        small_config(51),
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    );
    let mut zxid = 1;
    for round in 1..=6 {
        for _ in 0..4 {
            append_and_sync(&mut writer, 1, zxid..=zxid + 4, 500);
            zxid += 5;
        }
        writer.roll();
        write_snapshot_in(&data, zxid - 1, format!("t{round}").as_bytes());
        if round == 3 {
            // A snapshot killed mid-way leaves its temp file.
            let mut killed = SnapshotWriter::create_in(data.clone(), zxid - 3).unwrap();
            killed.write(b"half a tree").unwrap();
            std::mem::forget(killed);
        }
    }
    append_and_sync(&mut writer, 1, zxid..=zxid + 6, 500);
    let zxid_last = zxid + 6;
    drop(writer);

    disk.record_checkpoints();
    let report = purge_in(&data, &log, 3).unwrap();
    assert_eq!(report.temps_removed.len(), 1, "{report:?}");
    assert_eq!(report.snapshots_removed.len(), 4);
    assert!(report.segments_recycled.len() + report.segments_removed.len() > 3);
    let kept: Vec<i64> = report
        .snapshots_kept
        .iter()
        .map(|n| wal::parse_snapshot_name(n).unwrap())
        .collect();
    let checkpoints = disk.checkpoints();
    for (index, state) in checkpoints.iter().enumerate() {
        for image in images(state, index) {
            let (data, log) = (image.dir("data"), image.dir("log"));
            // Every snapshot the image holds (kept ones, and removed ones
            // whose removal did not survive), tried as the newest, finds its log.
            let present = list_snapshots(&data).unwrap();
            assert!(kept.iter().all(|z| present.iter().any(|(p, _)| p == z)));
            for (i, &(snapshot, _)) in present.iter().enumerate() {
                if i > 0 {
                    data.remove_file(&present[i - 1].1).unwrap();
                }
                let (zxid, records) = recover_mem(&data, log.clone())
                    .unwrap_or_else(|e| panic!("checkpoint {index}, snapshot {snapshot}: {e}"));
                assert_eq!(zxid, snapshot);
                let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
                assert_eq!(zxids, (snapshot + 1..=zxid_last).collect::<Vec<_>>());
                for record in &records {
                    assert_eq!(record.payload, payload(1, record.zxid, 500));
                }
            }
        }
    }
}
