//! Purge and recycled segments: old segments are reused as spares, their
//! stale records are never returned, and purge keeps what snapshots need.

mod common;

use common::*;
use wal::{LogTail, StdDir, StdFs, WalError};

fn names(dir: &std::path::Path, prefix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with(prefix))
        .collect();
    names.sort();
    names
}

// Purge keeps the newest snapshots and the segments from the one holding the
// oldest kept snapshot + 1; it recycles older segments into spares, which the
// writer then reuses. The stale records inside them never come back, even
// though the recycled files are not zeroed.
#[test]
fn purge_recycles_and_stale_records_never_return() {
    let snaps = tempfile::tempdir_in(test_root()).unwrap();
    let log = tempfile::tempdir_in(test_root()).unwrap();
    write_snapshot(snaps.path(), 0, b"t0");
    let mut writer = open_writer(
        StdFs::new(log.path()),
        small_config(31),
        LogTail {
            zxid_last: 0,
            segment: None,
        },
    );
    let mut zxid = 1;
    for snapshot in 1..=5 {
        for _ in 0..4 {
            append_and_sync(&mut writer, 1, zxid..=zxid + 4, 600);
            zxid += 5;
        }
        writer.roll();
        write_snapshot(snaps.path(), zxid - 1, format!("t{snapshot}").as_bytes());
    }
    let segments_before = names(log.path(), "log.");
    assert!(matches!(
        wal::purge(snaps.path(), log.path(), 2),
        Err(WalError::InvalidConfig(_))
    ));
    let report = wal::purge(snaps.path(), log.path(), 3).unwrap();
    assert_eq!(report.snapshots_kept.len(), 3);
    assert_eq!(report.snapshots_removed.len(), 3);
    let oldest_kept = wal::parse_snapshot_name(report.snapshots_kept.last().unwrap()).unwrap();
    assert_eq!(report.segments_recycled.len(), wal::SPARES_MAX);
    assert_eq!(
        report.segments_kept.len() + report.segments_recycled.len() + report.segments_removed.len(),
        segments_before.len()
    );
    assert_eq!(names(log.path(), "spare.recycled.").len(), wal::SPARES_MAX);

    // Recovery still replays everything after the oldest kept snapshot too.
    let recovery = wal::recover_from(&StdDir::new(snaps.path()), StdDir::new(log.path())).unwrap();
    assert_eq!(recovery.snapshot.as_ref().unwrap().zxid, zxid - 1);

    // Keep writing: the writer takes the recycled spares first.
    for _ in 0..8 {
        append_and_sync(&mut writer, 2, zxid..=zxid + 4, 600);
        zxid += 5;
    }
    assert!(
        names(log.path(), "spare.recycled.").is_empty(),
        "recycled spares were not reused"
    );
    let (records, _) = recover_all(snaps.path(), StdDir::new(log.path())).unwrap();
    let first = records.first().unwrap().zxid;
    for (i, record) in records.iter().enumerate() {
        assert_eq!(record.zxid, first + i as i64);
        let run_id = if record.zxid < 101 { 1 } else { 2 };
        assert_eq!(record.payload, payload(run_id, record.zxid, 600));
    }
    assert_eq!(records.last().unwrap().zxid, zxid - 1);
    // Replaying from the oldest kept snapshot works too: its segments are there.
    std::fs::remove_file(snaps.path().join(&report.snapshots_kept[0])).unwrap();
    std::fs::remove_file(snaps.path().join(&report.snapshots_kept[1])).unwrap();
    let (records, _) = recover_all(snaps.path(), StdDir::new(log.path())).unwrap();
    assert_eq!(records.first().unwrap().zxid, oldest_kept + 1);
}
