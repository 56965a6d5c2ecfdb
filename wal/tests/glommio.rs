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
