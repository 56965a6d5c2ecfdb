//! Failed fsync, full disks and torn writes: the writer returns the error;
//! after a failed write or sync it refuses everything (STYLE rule 2), after a
//! full disk it waits for space; what it had acknowledged always survives.

mod common;

use common::*;
use wal::{LogFs, LogTail, LogWriter, MemFs, WalError};

fn fresh_writer(fs: &MemFs) -> LogWriter<MemFs> {
    open_writer(
        fs.clone(),
        small_config(21),
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    )
}

fn assert_refuses(writer: &mut LogWriter<MemFs>, zxid: i64) {
    assert!(writer.is_failed());
    assert!(matches!(
        writer.append(zxid, b"more"),
        Err(WalError::WriterFailed { .. })
    ));
    assert!(matches!(
        run(writer.sync()),
        Err(WalError::WriterFailed { .. })
    ));
    assert!(matches!(
        run(writer.ensure_spare()),
        Err(WalError::WriterFailed { .. })
    ));
}

// A failed fdatasync is returned once, never retried, and stops the writer;
// the records acknowledged before it are all recovered.
#[test]
fn failed_fsync_stops_the_writer() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut writer = fresh_writer(&fs);
    append_and_sync(&mut writer, 1, 1..=10, 100);
    fs.fail_sync_data_at(0);
    writer.append(11, &payload(1, 11, 100)).unwrap();
    match run(writer.sync()) {
        Err(WalError::Io {
            op: "fdatasync", ..
        }) => {}
        other => panic!("{other:?}"),
    }
    assert_refuses(&mut writer, 12);
    for seed in 0..20 {
        let (records, _) = recover_all(snaps.path(), fs.crash_image(seed)).unwrap();
        assert!(records.len() >= 10 && records.len() <= 11);
    }
}

fn temp_files(fs: &MemFs) -> Vec<String> {
    LogFs::list(fs)
        .unwrap()
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

// A full disk shows when the next segment cannot be prepared, before any
// record fails: sync returns NoSpace having written nothing, the batch stays
// staged, the writer stays usable and no temp file is left. While the disk
// stays full, trying again changes nothing; once space returns, the same
// batch syncs and every acknowledged record is recovered.
#[test]
fn full_disk_refuses_the_batch_then_resumes() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut writer = fresh_writer(&fs);
    append_and_sync(&mut writer, 1, 1..=5, 1000);
    // Room for less than one more segment (16 KiB).
    fs.limit_bytes(fs.bytes_used() + 8 * 1024);
    let mut zxid = 6;
    let error = loop {
        writer.append(zxid, &payload(1, zxid, 1000)).unwrap();
        match run(writer.sync()) {
            Ok(_) => zxid += 1,
            Err(error) => break error,
        }
        assert!(zxid < 100, "never ran out of space");
    };
    match &error {
        WalError::NoSpace { source, .. } => assert_eq!(source.raw_os_error(), Some(28)),
        other => panic!("{other:?}"),
    }
    assert!(!writer.is_failed());
    assert_eq!(writer.zxid_durable(), zxid - 1);
    assert_eq!(writer.batch_records(), 1);
    assert!(temp_files(&fs).is_empty(), "{:?}", temp_files(&fs));
    assert!(!writer.spare_ready().unwrap());
    assert!(run(writer.ensure_spare()).unwrap_err().is_no_space());
    let used = fs.bytes_used();
    assert!(run(writer.sync()).unwrap_err().is_no_space());
    assert_eq!(fs.bytes_used(), used);
    assert!(temp_files(&fs).is_empty());

    fs.limit_bytes(None);
    let stats = run(writer.sync()).unwrap();
    assert_eq!((stats.zxid_durable, stats.segments_started), (zxid, 1));
    append_and_sync(&mut writer, 1, zxid + 1..=zxid + 3, 1000);
    run(writer.ensure_spare()).unwrap();
    assert!(writer.spare_ready().unwrap());
    let (records, _) = recover_all(snaps.path(), fs.crash_image(1)).unwrap();
    let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
    assert_eq!(zxids, (1..=zxid + 3).collect::<Vec<_>>());
}

// A spare that fails to be prepared for any other reason (a failed sync)
// removes its temp file too, and stops the writer.
#[test]
fn failed_spare_leaves_no_temp_file() {
    let fs = MemFs::new();
    let mut writer = fresh_writer(&fs);
    fs.fail_sync_data_at(0);
    let error = run(writer.ensure_spare()).unwrap_err();
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
    assert!(LogFs::list(&fs).unwrap().is_empty());
    assert_refuses(&mut writer, 1);
    // The standalone preparer (the engine's spare keeper) cleans up as well.
    fs.limit_bytes(0);
    assert!(run(wal::prepare_spare(&fs, 16 * 1024))
        .unwrap_err()
        .is_no_space());
    assert!(LogFs::list(&fs).unwrap().is_empty());
}

// A write that fails after storing part of its bytes (a torn write the
// device reports) stops the writer; recovery cuts the torn part.
#[test]
fn torn_write_error_stops_the_writer() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut writer = fresh_writer(&fs);
    append_and_sync(&mut writer, 1, 1..=4, 300);
    fs.tear_write_at(0);
    for zxid in 5..=9 {
        writer.append(zxid, &payload(1, zxid, 300)).unwrap();
    }
    assert!(matches!(
        run(writer.sync()),
        Err(WalError::Io { op: "write", .. })
    ));
    assert_refuses(&mut writer, 10);
    let (records, tail) = recover_all(snaps.path(), fs.snapshot_current()).unwrap();
    assert!(records.len() >= 4 && records.len() < 9);
    assert_eq!(tail.zxid_last, records.len() as i64);
}

// Batch bounds are enforced without changing anything: a full batch says so,
// and the record goes in after a sync.
#[test]
fn batch_bounds() {
    let fs = MemFs::new();
    let mut config = small_config(22);
    config.batch_records_max = 3;
    let mut writer = open_writer(
        fs.clone(),
        config,
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    );
    for zxid in 1..=3 {
        writer.append(zxid, b"x").unwrap();
    }
    assert!(writer.is_batch_full());
    assert!(matches!(
        writer.append(4, b"x"),
        Err(WalError::BatchFull { records: 3, .. })
    ));
    let stats = run(writer.sync()).unwrap();
    assert_eq!((stats.records, stats.fsyncs, stats.zxid_durable), (3, 1, 3));
    writer.append(4, b"x").unwrap();
    let too_large = vec![0u8; writer.config().record_payload_bytes_max() + 1];
    assert!(matches!(
        writer.append(5, &too_large),
        Err(WalError::RecordTooLarge { .. })
    ));
    assert_eq!(run(writer.sync()).unwrap().records, 1);
    // An empty sync does nothing.
    assert_eq!(run(writer.sync()).unwrap().records, 0);
}
