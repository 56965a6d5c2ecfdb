//! Logs written before sector stamps (format 1) still recover; the writer
//! never appends to a format-1 segment (it starts a format-2 one), purge
//! deletes format-1 segments instead of recycling them, and a recycled
//! format-1 spare is never reused: its unstamped bytes would read as damage
//! inside a format-2 segment.

mod common;

use common::*;
use wal::{
    encode_record, purge_in, LogFs, MemFs, ReadFs, SegmentHeader, SegmentScan, WriteFs,
    FORMAT_VERSION, FORMAT_VERSION_V1,
};

const SEGMENT_BYTES: usize = 16 * 1024;

/// A format-1 segment holding `writes` (each a run of zxids written at once).
fn v1_segment(zxid_previous: i64, salt: u64, writes: &[std::ops::RangeInclusive<i64>]) -> Vec<u8> {
    let zxid_first = *writes[0].start();
    let header = SegmentHeader {
        version: FORMAT_VERSION_V1,
        zxid_first,
        zxid_previous,
        salt,
    };
    let mut bytes = header.encode();
    for write in writes {
        let start = bytes.len();
        for zxid in write.clone() {
            let offset = (bytes.len() - start) as u32;
            encode_record(&mut bytes, salt, zxid, offset, &payload(1, zxid, 300));
        }
    }
    bytes.resize(SEGMENT_BYTES, 0);
    bytes
}

fn put(fs: &MemFs, name: &str, bytes: &[u8]) {
    let file = run(fs.create(name)).unwrap();
    run(fs.write_at(&file, 0, bytes)).unwrap();
    run(fs.sync_data(&file)).unwrap();
    run(fs.sync_dir()).unwrap();
}

fn version_of(fs: &MemFs, name: &str) -> u32 {
    let reader = ReadFs::open_read(fs, name).unwrap();
    SegmentScan::open(reader, name.to_string())
        .unwrap()
        .header()
        .version
}

fn names(fs: &MemFs) -> Vec<String> {
    let mut names = ReadFs::list(fs).unwrap();
    names.sort();
    names
}

// A format-1 log recovers; the writer leaves its segment as it is and puts
// new records in a format-2 segment; both read back in order.
#[test]
fn format_1_log_is_read_and_the_writer_moves_on() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    put(
        &fs,
        "log.0000000000000001",
        &v1_segment(-1, 77, &[1..=4, 5..=10]),
    );
    let before = fs.contents("log.0000000000000001").unwrap();
    let (records, tail) = recover_all(snaps.path(), fs.clone()).unwrap();
    assert_eq!(records.len(), 10);
    let mut writer = open_writer(fs.clone(), small_config(3), tail);
    append_and_sync(&mut writer, 1, 11..=15, 300);
    assert_eq!(fs.contents("log.0000000000000001").unwrap(), before);
    assert_eq!(version_of(&fs, "log.000000000000000b"), FORMAT_VERSION);
    let (records, _) = recover_all(snaps.path(), fs.clone()).unwrap();
    let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
    assert_eq!(zxids, (1..=15).collect::<Vec<_>>());
    for record in &records {
        assert_eq!(record.payload, payload(1, record.zxid, 300));
    }
}

// A format-1 torn tail is cut as format 1 always did (one warning), its
// leftovers zeroed before the writer moves on to a format-2 segment.
#[test]
fn format_1_torn_tail_is_still_cut() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    let mut bytes = v1_segment(-1, 78, &[1..=4, 5..=8]);
    // The second write tore: its first record is cut short, its later ones landed.
    let fifth = SegmentScan::open(wal::MemReader::new(bytes.clone()), "v1".into())
        .map(|mut scan| {
            (0..4).for_each(|_| drop(scan.next_record().unwrap()));
            scan.next_record().unwrap().unwrap().offset
        })
        .unwrap() as usize;
    bytes[fifth + 40..fifth + 200].fill(0);
    put(&fs, "log.0000000000000001", &bytes);
    let (result, warnings) = count_warnings(|| recover_all(snaps.path(), fs.clone()));
    let (records, tail) = result.unwrap();
    assert_eq!((records.len(), warnings), (4, 1));
    let mut writer = open_writer(fs.clone(), small_config(4), tail);
    append_and_sync(&mut writer, 2, 5..=9, 50);
    let (records, _) = recover_all(snaps.path(), fs.clone()).unwrap();
    let zxids: Vec<i64> = records.iter().map(|r| r.zxid).collect();
    assert_eq!(zxids, (1..=9).collect::<Vec<_>>());
    assert!(records[4..]
        .iter()
        .all(|r| r.payload == payload(2, r.zxid, 50)));
}

// Purge deletes an unneeded format-1 segment instead of recycling it, and
// the writer deletes a recycled format-1 spare instead of reusing it.
#[test]
fn format_1_files_are_never_recycled() {
    let disk = MemFs::new();
    let (data, log) = (disk.dir("data"), disk.dir("log"));
    put(&log, "log.0000000000000001", &v1_segment(-1, 79, &[1..=10]));
    put(
        &log,
        "spare.recycled.0000000000000000",
        &v1_segment(-1, 80, &[1..=3]),
    );
    for zxid in [0, 10] {
        let mut writer = wal::SnapshotWriter::create_in(data.clone(), zxid).unwrap();
        writer.write(b"tree").unwrap();
        writer.finish().unwrap();
    }
    let recovery = wal::recover_from(&data, log.clone()).unwrap();
    let tail = recovery.log.finish().unwrap();
    let mut writer = open_writer(log.clone(), small_config(5), tail);
    append_and_sync(&mut writer, 1, 11..=20, 300);
    assert!(!names(&log).contains(&"spare.recycled.0000000000000000".to_string()));
    for zxid in [15, 20] {
        let mut writer = wal::SnapshotWriter::create_in(data.clone(), zxid).unwrap();
        writer.write(b"tree").unwrap();
        writer.finish().unwrap();
    }
    let report = purge_in(&data, &log, 3).unwrap();
    assert_eq!(
        report.segments_removed,
        vec!["log.0000000000000001".to_string()]
    );
    assert!(report.segments_recycled.is_empty());
    let (zxid, records) = {
        let recovery = wal::recover_from(&data, log.clone()).unwrap();
        let zxid = recovery.snapshot.unwrap().zxid;
        (
            zxid,
            recovery.log.map(|r| r.unwrap().zxid).collect::<Vec<_>>(),
        )
    };
    assert_eq!(zxid, 20);
    assert!(records.is_empty());
    data.remove_file(&wal::snapshot_name(20)).unwrap();
    data.remove_file(&wal::snapshot_name(15)).unwrap();
    let recovery = wal::recover_from(&data, log).unwrap();
    let zxids: Vec<i64> = recovery.log.map(|r| r.unwrap().zxid).collect();
    assert_eq!(zxids, (11..=20).collect::<Vec<_>>());
}

// A cut inside a format-1 segment is refused (its unstamped sectors cannot
// make the cut durable and final), changing nothing; a cut at its end, with
// later segments removed, works.
#[test]
fn truncation_inside_a_format_1_segment_is_refused() {
    let snaps = snapshot_dir(0);
    let fs = MemFs::new();
    put(&fs, "log.0000000000000001", &v1_segment(-1, 81, &[1..=6]));
    let (_, tail) = recover_all(snaps.path(), fs.clone()).unwrap();
    let mut writer = open_writer(fs.clone(), small_config(6), tail);
    append_and_sync(&mut writer, 1, 7..=9, 300);
    let before = names(&fs);
    let mut cutter = open_writer(fs.clone(), small_config(6), wal::LogTail::fresh());
    let error = run(cutter.truncate(3)).unwrap_err();
    assert!(
        matches!(error, wal::WalError::Unsupported { .. }),
        "{error}"
    );
    assert!(before.contains(&"log.0000000000000001".to_string()));
    let mut cutter = open_writer(fs.clone(), small_config(6), wal::LogTail::fresh());
    let report = run(cutter.truncate(6)).unwrap();
    assert_eq!(
        report.segments_removed,
        vec!["log.0000000000000007".to_string()]
    );
    let (records, _) = recover_all(snaps.path(), fs.clone()).unwrap();
    assert_eq!(records.len(), 6);
}
