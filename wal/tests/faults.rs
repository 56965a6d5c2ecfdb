//! Failed fsync, ENOSPC and torn writes: the writer returns the error, then
//! refuses everything (STYLE rule 2), and what it had acknowledged survives.

mod common;

use common::*;
use wal::{LogTail, LogWriter, MemFs, WalError};

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

// ENOSPC while preallocating the next segment: the sync fails, the writer
// stops, nothing acknowledged is lost.
#[test]
fn enospc_stops_the_writer() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut writer = fresh_writer(&fs);
    append_and_sync(&mut writer, 1, 1..=5, 1000);
    fs.limit_bytes(20 * 1024);
    let mut zxid = 6;
    let error = loop {
        writer.append(zxid, &payload(1, zxid, 1000)).unwrap();
        match run(writer.sync()) {
            Ok(_) => zxid += 1,
            Err(error) => break error,
        }
        assert!(zxid < 100, "never ran out of space");
    };
    match error {
        WalError::NoSpace { source, .. } => assert_eq!(source.raw_os_error(), Some(28)),
        other => panic!("{other:?}"),
    }
    assert_refuses(&mut writer, zxid + 1);
    let (records, _) = recover_all(snaps.path(), fs.crash_image(1)).unwrap();
    assert!(records.len() as i64 >= zxid - 1);
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
