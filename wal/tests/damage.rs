//! Protocol-aware recovery, wal's half (`damage.rs`): damage to durable
//! records told from a torn tail, set aside (kept, never deleted), the log
//! cut before it, and the "recovering" marker durable before the cut at
//! every crash point.

mod common;

use common::*;
use wal::{
    find_log_damage, read_recovering_in, recover_from, set_aside_damage, LogFs, LogRecord, MemFs,
    ReadFs, SnapshotWriter, WalError, WriteFs, DAMAGED_SUFFIX,
};

/// One disk with a data directory (snapshot 0) and a log directory holding
/// zxids 1..=40 in batches of 5 over small segments (several of them).
fn disk_with_log() -> (MemFs, MemFs, MemFs) {
    let disk = MemFs::new();
    let (data, log) = (disk.dir("data"), disk.dir("log"));
    let mut snapshot = SnapshotWriter::create_in(data.clone(), 0).unwrap();
    snapshot.write(b"tree").unwrap();
    snapshot.finish().unwrap();
    let (_, tail) = recover(&data, log.clone()).unwrap();
    let mut writer = open_writer(log.clone(), small_config(3), tail);
    for batch in 0..8 {
        append_and_sync(&mut writer, 1, batch * 5 + 1..=batch * 5 + 5, 700);
    }
    (disk, data, log)
}

fn recover<R: ReadFs>(data: &MemFs, log: R) -> Result<(Vec<LogRecord>, wal::LogTail), WalError> {
    let mut reader = recover_from(data, log)?.log;
    let mut records = Vec::new();
    for record in reader.by_ref() {
        records.push(record?);
    }
    Ok((records, reader.finish()?))
}

fn segments(fs: &MemFs) -> Vec<String> {
    let mut names: Vec<String> = LogFs::list(fs)
        .unwrap()
        .into_iter()
        .filter(|n| wal::parse_segment_name(n).is_some())
        .collect();
    names.sort_by_key(|n| wal::parse_segment_name(n));
    names
}

/// Flips one bit inside the payload of record `zxid` (durable, acknowledged).
fn flip_record(log: &MemFs, zxid: i64) -> String {
    for name in segments(log) {
        let reader = ReadFs::open_read(log, &name).unwrap();
        let mut scan = wal::SegmentScan::open(reader, name.clone()).unwrap();
        while let Some(record) = scan.next_record().unwrap() {
            if record.zxid == zxid {
                // Byte 40 of the record: past its header, within its first
                // sector's stream bytes or the next one's.
                let at = wal::stream_file_offset(
                    stream_of(record.offset) + wal::RECORD_HEADER_BYTES as u64 + 5,
                );
                let byte = log.contents(&name).unwrap()[at as usize];
                log.overwrite(&name, at, &[byte ^ 0x08]);
                return name;
            }
        }
    }
    panic!("no record {zxid}");
}

/// The stream offset of a file offset inside a sector's data.
fn stream_of(file_offset: u64) -> u64 {
    let from = file_offset - wal::SEGMENT_HEADER_BYTES as u64;
    let sector = from / wal::SECTOR_BYTES as u64;
    sector * wal::SECTOR_STREAM_BYTES as u64 + from % wal::SECTOR_BYTES as u64
        - wal::SECTOR_STAMP_BYTES as u64
}

#[test]
fn a_torn_tail_is_not_damage_but_a_flipped_acknowledged_record_is() {
    // The classification: a write whose sync failed (never acknowledged)
    // reads as no damage at all; a bit flipped in an acknowledged record
    // with valid records after it is damage, with the last good zxid
    // before it.
    let (_, data, log) = disk_with_log();
    let (_, tail) = recover(&data, log.clone()).unwrap();
    let mut writer = open_writer(log.clone(), small_config(4), tail);
    log.tear_write_at(0);
    for zxid in 41..=45 {
        writer.append(zxid, &payload(1, zxid, 700)).unwrap();
    }
    assert!(run(writer.sync()).is_err());
    let torn = log.snapshot_current();
    assert_eq!(find_log_damage(&data, torn.clone()).unwrap(), None);
    let name = flip_record(&torn, 17);
    let damage = find_log_damage(&data, torn).unwrap().expect("damage found");
    assert_eq!(damage.segment, name);
    assert_eq!(damage.zxid_good, 16);
}

#[test]
fn set_aside_keeps_the_damaged_segments_cuts_the_log_and_writes_the_marker() {
    // After the set-aside: the damaged segment is kept byte for byte under
    // another name, every later segment too; recovery reads records 1..=16
    // and nothing after; the marker says 16.
    let (_, data, log) = disk_with_log();
    let before = segments(&log);
    let name = flip_record(&log, 17);
    let damaged_bytes = log.contents(&name).unwrap();
    let later: Vec<String> = before
        .iter()
        .filter(|n| wal::parse_segment_name(n) > wal::parse_segment_name(&name))
        .cloned()
        .collect();
    assert!(
        !later.is_empty(),
        "the test wants segments after the damage"
    );
    let later_bytes: Vec<Vec<u8>> = later.iter().map(|n| log.contents(n).unwrap()).collect();
    assert!(matches!(
        recover(&data, log.clone()),
        Err(WalError::Corrupt { .. })
    ));
    let damage = find_log_damage(&data, log.clone()).unwrap().unwrap();
    let report = set_aside_damage(&data, &log, log.clone(), &damage).unwrap();
    assert_eq!(report.zxid_good, 16);
    assert_eq!(
        log.contents(&format!("{name}{DAMAGED_SUFFIX}")).unwrap(),
        damaged_bytes
    );
    for (n, bytes) in later.iter().zip(&later_bytes) {
        assert_eq!(log.contents(n), None, "{n} still in the log");
        assert_eq!(
            log.contents(&format!("{n}{DAMAGED_SUFFIX}")).as_ref(),
            Some(bytes)
        );
    }
    let (records, tail) = recover(&data, log.clone()).unwrap();
    check_run(&records, 1, 1..=16, 700);
    assert_eq!(tail.zxid_last, 16);
    assert_eq!(read_recovering_in(&data).unwrap(), Some(16));
    // The writer goes on after the cut, and nothing set aside comes back.
    let mut writer = open_writer(log.clone(), small_config(9), tail);
    append_and_sync(&mut writer, 2, 17..=20, 30);
    let (records, _) = recover(&data, log.clone()).unwrap();
    check_run(&records[..16], 1, 1..=16, 700);
    check_run(&records[16..], 2, 17..=20, 30);
    wal::clear_recovering_in(&data).unwrap();
    assert_eq!(read_recovering_in(&data).unwrap(), None);
}

#[test]
fn every_crash_image_of_a_set_aside_keeps_the_damage_or_the_marker() {
    // A power cut at any point of the set-aside leaves either the damage
    // still in the log (found again at the next start) or the log cut with
    // the marker durable: never a log that silently lost records 17..=40
    // without the marker. Running the set-aside again on such an image
    // finishes the job.
    let (disk, data, log) = disk_with_log();
    flip_record(&log, 17);
    let damage = find_log_damage(&data, log.clone()).unwrap().unwrap();
    disk.record_checkpoints();
    set_aside_damage(&data, &log, log.clone(), &damage).unwrap();
    let checkpoints = disk.checkpoints();
    assert!(checkpoints.len() > 10, "{} checkpoints", checkpoints.len());
    let (mut damaged, mut cut) = (0, 0);
    for (i, state) in checkpoints.iter().enumerate() {
        for seed in 0..4 {
            let image = state.crash_image(seed);
            let (data, log) = (image.dir("data"), image.dir("log"));
            wal::remove_temporary_files_in(&data, &log).unwrap();
            let marker = read_recovering_in(&data).unwrap();
            match find_log_damage(&data, log.clone()).unwrap() {
                Some(found) => {
                    damaged += 1;
                    assert_eq!(found.zxid_good, 16, "checkpoint {i} seed {seed}");
                    set_aside_damage(&data, &log, log.clone(), &found).unwrap();
                    assert_eq!(read_recovering_in(&data).unwrap(), Some(16));
                }
                None => {
                    cut += 1;
                    assert_eq!(
                        marker,
                        Some(16),
                        "checkpoint {i} seed {seed}: cut without marker"
                    );
                }
            }
            let (records, _) = recover(&data, log).unwrap();
            assert!(records.len() >= 16, "checkpoint {i} seed {seed}");
            check_run(&records[..16], 1, 1..=16, 700);
        }
    }
    assert!(damaged > 0 && cut > 0, "damaged {damaged}, cut {cut}");
}

#[test]
fn a_damaged_marker_is_an_error_not_a_voter() {
    // A marker that does not hold a zxid must not read as "no marker".
    let disk = MemFs::new();
    let mut file = disk.create_file(wal::RECOVERING_FILE).unwrap();
    wal::FileWriter::append(&mut file, b"x12\n").unwrap();
    assert!(matches!(
        read_recovering_in(&disk),
        Err(WalError::MarkerCorrupt { .. })
    ));
}

#[test]
fn damage_in_the_newest_write_is_cut_too() {
    // A flip in the last sector of the newest write, in a record starting
    // in that sector (the sector turns bad, and no current sector lies
    // past the cut): the set-aside still stamps the cut, so recovery reads
    // up to the record before instead of finding the damage again.
    let (_, data, log) = disk_with_log();
    let (_, tail) = recover(&data, log.clone()).unwrap();
    let mut writer = open_writer(log.clone(), small_config(5), tail);
    append_and_sync(&mut writer, 2, 41..=43, 20);
    drop(writer);
    flip_record(&log, 43);
    let damage = find_log_damage(&data, log.clone()).unwrap().unwrap();
    assert_eq!(damage.zxid_good, 42);
    set_aside_damage(&data, &log, log.clone(), &damage).unwrap();
    let (records, tail) = recover(&data, log.clone()).unwrap();
    check_run(&records[..40], 1, 1..=40, 700);
    check_run(&records[40..], 2, 41..=42, 20);
    let mut writer = open_writer(log.clone(), small_config(11), tail);
    append_and_sync(&mut writer, 3, 43..=45, 30);
    let (records, _) = recover(&data, log).unwrap();
    check_run(&records[42..], 3, 43..=45, 30);
}
