//! The production backend: a real glommio LocalExecutor writes with O_DIRECT
//! DmaFiles, with fdatasync or with O_DSYNC writes; the std reader recovers
//! every synced record.

mod common;

use common::*;
use glommio::LocalExecutorBuilder;
use wal::{GlommioFs, LogWriter, StdDir};

#[test]
fn glommio_writer_then_std_recovery() {
    write_then_recover(|dir| GlommioFs::new(dir));
}

#[test]
fn glommio_dsync_writer_then_std_recovery() {
    write_then_recover(|dir| GlommioFs::with_dsync_writes(dir));
}

fn write_then_recover(backend: fn(&std::path::Path) -> GlommioFs) {
    let snaps = snapshot_dir(0);
    let log = tempfile::tempdir_in(test_root()).unwrap();
    let (_, tail) = recover_all(snaps.path(), StdDir::new(log.path())).unwrap();
    let log_path = log.path().to_path_buf();
    let handle = LocalExecutorBuilder::default()
        .io_memory(512 * 1024)
        .name("wal-test")
        .spawn(move || async move {
            let mut writer = LogWriter::open(backend(&log_path), small_config(41), tail)
                .await
                .unwrap();
            writer.ensure_spare().await.unwrap();
            let mut zxid = 1;
            for batch in 0..40 {
                for _ in 0..=batch % 7 {
                    writer.append(zxid, &payload(1, zxid, 200)).unwrap();
                    zxid += 1;
                }
                let stats = writer.sync().await.unwrap();
                assert_eq!(stats.zxid_durable, zxid - 1);
                if batch == 20 {
                    writer.roll();
                }
            }
            zxid - 1
        })
        .unwrap();
    let zxid_last = handle.join().unwrap();
    let (records, tail) = recover_all(snaps.path(), StdDir::new(log.path())).unwrap();
    assert_eq!(records.len() as i64, zxid_last);
    for record in &records {
        assert_eq!(record.payload, payload(1, record.zxid, 200));
    }
    assert_eq!(tail.zxid_last, zxid_last);
}

// TRUNC on the production backend: the glommio writer cuts its own log in
// the middle of an earlier segment, appends over the cut, and the std reader
// recovers exactly the records kept and the new ones.
#[test]
fn glommio_writer_truncates_and_continues() {
    let snaps = snapshot_dir(0);
    let log = tempfile::tempdir_in(test_root()).unwrap();
    let (_, tail) = recover_all(snaps.path(), StdDir::new(log.path())).unwrap();
    let log_path = log.path().to_path_buf();
    let handle = LocalExecutorBuilder::default()
        .io_memory(512 * 1024)
        .name("wal-truncate")
        .spawn(move || async move {
            let mut writer = LogWriter::open(GlommioFs::new(&log_path), small_config(43), tail)
                .await
                .unwrap();
            for zxid in 1..=80 {
                writer.append(zxid, &payload(1, zxid, 300)).unwrap();
                writer.sync().await.unwrap();
            }
            let report = writer.truncate(33).await.unwrap();
            assert!(!report.segments_removed.is_empty());
            assert_eq!(report.zxid_last, 33);
            for zxid in 34..=50 {
                writer.append(zxid, &payload(2, zxid, 90)).unwrap();
                writer.sync().await.unwrap();
            }
        })
        .unwrap();
    handle.join().unwrap();
    let (records, _) = recover_all(snaps.path(), StdDir::new(log.path())).unwrap();
    let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
    assert_eq!(zxids, (1..=50).collect::<Vec<_>>());
    for record in &records {
        let expected = if record.zxid <= 33 {
            payload(1, record.zxid, 300)
        } else {
            payload(2, record.zxid, 90)
        };
        assert_eq!(record.payload, expected);
    }
}
