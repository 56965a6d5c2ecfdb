//! fk-tools on a generated data directory: dump decodes txns, verify accepts
//! a sound log and names the file and offset of damage, snapshot verify
//! checks the crc, purge keeps what the newest snapshots need.

use std::path::Path;
use std::process::Command;

use tree::txn::{encode_record, Txn, TxnHeader};
use wal::{LogTail, LogWriter, SnapshotWriter, StdFs, WriterConfig};

const RECORDS: i64 = 60;

/// A log of `RECORDS` SetData txns in small segments, with snapshots every 15.
fn generated_dirs() -> (tempfile::TempDir, tempfile::TempDir) {
    let root = std::env::var_os("CARGO_TARGET_TMPDIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let snaps = tempfile::tempdir_in(&root).unwrap();
    let log = tempfile::tempdir_in(&root).unwrap();
    let config = WriterConfig {
        segment_bytes: 16 * 1024,
        salt_seed: 7,
        ..WriterConfig::default()
    };
    let tail = LogTail {
        zxid_last: 0,
        segment: None,
    };
    let mut writer =
        futures_lite::future::block_on(LogWriter::open(StdFs::new(log.path()), config, tail))
            .unwrap();
    write_snapshot(snaps.path(), 0);
    for zxid in 1..=RECORDS {
        let header = TxnHeader {
            session_id: 0x10,
            cxid: zxid as i32,
            zxid,
            time_ms: 1000 + zxid,
        };
        let txn = Txn::SetData {
            path: format!("/node{zxid}"),
            data: vec![b'x'; 500].into(),
            version: zxid as i32,
        };
        writer.append(zxid, &encode_record(&header, &txn)).unwrap();
        if zxid % 3 == 0 {
            futures_lite::future::block_on(writer.sync()).unwrap();
        }
        if zxid % 15 == 0 {
            writer.roll();
            write_snapshot(snaps.path(), zxid);
        }
    }
    (snaps, log)
}

fn write_snapshot(dir: &Path, zxid: i64) {
    let mut writer = SnapshotWriter::create(dir, zxid).unwrap();
    writer.write(format!("tree at {zxid}").as_bytes()).unwrap();
    writer.finish().unwrap();
}

fn fk_tools(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_fk-tools"))
        .args(args)
        .output()
        .unwrap();
    let text =
        String::from_utf8(output.stdout).unwrap() + &String::from_utf8(output.stderr).unwrap();
    (output.status.code().unwrap(), text)
}

fn segments(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("log."))
        .collect();
    names.sort();
    names
}

// Dump shows every record with its decoded txn; verify passes; JSON parses.
#[test]
fn dump_and_verify_a_sound_log() {
    let (_snaps, log) = generated_dirs();
    let report = tools::inspect_log(log.path(), true).unwrap();
    let records: Vec<_> = report
        .segments
        .iter()
        .flat_map(|s| s.records.iter())
        .collect();
    assert_eq!(records.len() as i64, RECORDS);
    assert!(
        records[4].txn.as_deref().unwrap().contains("/node5"),
        "{:?}",
        records[4]
    );
    assert!(report.problems.is_empty(), "{:?}", report.problems);

    let (code, text) = fk_tools(&["log", "dump", log.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("SetData") && text.contains("OK"), "{text}");
    let (code, text) = fk_tools(&["log", "verify", "--json", log.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["problems"].as_array().unwrap().len(), 0);
    // One segment file on its own.
    let first = log.path().join(&segments(log.path())[0]);
    let (code, text) = fk_tools(&["log", "dump", first.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
}

// A flipped byte in the middle of an early segment: verify exits 1 and names
// the file and byte offset.
#[test]
fn verify_names_damage() {
    let (_snaps, log) = generated_dirs();
    let name = segments(log.path())[0].clone();
    let path = log.path().join(&name);
    let report = tools::inspect_log(&path, true).unwrap();
    let victim = report.segments[0].records[1].offset;
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[victim as usize + 100] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    let (code, text) = fk_tools(&["log", "verify", log.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&name) && text.contains(&format!("byte {victim}")),
        "{text}"
    );
}

// Snapshot dump/verify accept a sound snapshot and reject a damaged one.
#[test]
fn snapshot_dump_and_verify() {
    let (snaps, _log) = generated_dirs();
    let file = snaps.path().join(wal::snapshot_name(30));
    let (code, text) = fk_tools(&["snapshot", "dump", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("0x1e") && text.contains("ok"), "{text}");
    let mut bytes = std::fs::read(&file).unwrap();
    bytes[25] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let (code, text) = fk_tools(&["snapshot", "verify", "--json", file.to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(json["status"].as_str().unwrap().contains("crc"), "{text}");
}

// Offline purge keeps the newest 3 snapshots and the log they need, and the
// result still recovers; a count below 3 is refused.
#[test]
fn purge_keeps_what_snapshots_need() {
    let (snaps, log) = generated_dirs();
    let (s, l) = (snaps.path().to_str().unwrap(), log.path().to_str().unwrap());
    let (code, _) = fk_tools(&["purge", "--snap-dir", s, "--log-dir", l, "--count", "2"]);
    assert_eq!(code, 2);
    let (code, text) = fk_tools(&[
        "purge",
        "--json",
        "--snap-dir",
        s,
        "--log-dir",
        l,
        "--count",
        "3",
    ]);
    assert_eq!(code, 0, "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["snapshots_kept"].as_array().unwrap().len(), 3);
    assert_eq!(json["snapshots_removed"].as_array().unwrap().len(), 2);
    let recovery = wal::recover(snaps.path(), log.path()).unwrap();
    assert_eq!(recovery.snapshot.as_ref().unwrap().zxid, RECORDS);
    assert_eq!(recovery.log.finish().unwrap().zxid_last, RECORDS);
    // The oldest kept snapshot (zxid 30) still has every record after it.
    for name in [wal::snapshot_name(60), wal::snapshot_name(45)] {
        std::fs::remove_file(snaps.path().join(name)).unwrap();
    }
    let recovery = wal::recover(snaps.path(), log.path()).unwrap();
    let zxids: Vec<i64> = recovery.log.map(|r| r.unwrap().zxid).collect();
    assert_eq!(zxids, (31..=RECORDS).collect::<Vec<_>>());
}

/// The file offset of byte `k` of the record that starts at file offset `at`
/// (a record's bytes skip the 32-byte stamp at the start of each sector).
fn record_byte(at: u64, k: u64) -> u64 {
    let from_sectors = at - wal::SEGMENT_HEADER_BYTES as u64;
    let sector = from_sectors / wal::SECTOR_BYTES as u64;
    let within = from_sectors % wal::SECTOR_BYTES as u64 - wal::SECTOR_STAMP_BYTES as u64;
    wal::stream_file_offset(sector * wal::SECTOR_STREAM_BYTES as u64 + within + k)
}

// A flipped byte in the last, acknowledged record: recovery refuses, naming
// the file, the offset and the fk-tools command that accepts the loss;
// verify reports it; a cut above the damage is refused; the command from the
// error message, run as it stands, drops that record (and the snapshots
// above it), after which recovery and verify succeed.
#[test]
fn damaged_last_record_refuses_until_truncate_accepts_the_loss() {
    let (snaps, log) = generated_dirs();
    std::fs::remove_file(snaps.path().join(wal::snapshot_name(60))).unwrap();
    let name = segments(log.path()).last().unwrap().clone();
    let path = log.path().join(&name);
    let report = tools::inspect_log(&path, true).unwrap();
    let last = report.segments[0].records.last().unwrap().clone();
    assert_eq!(last.zxid, RECORDS);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[record_byte(last.offset, 200) as usize] ^= 0x08;
    std::fs::write(&path, bytes).unwrap();

    let error = match wal::recover(snaps.path(), log.path()) {
        Ok(recovery) => recovery.log.finish().unwrap_err(),
        Err(error) => error,
    };
    let message = error.to_string();
    let wal::WalError::Corrupt {
        file,
        offset,
        accept_loss: Some(command),
        ..
    } = error
    else {
        panic!("{message}");
    };
    assert!(file.ends_with(&name) && offset == last.offset, "{message}");
    assert!(message.contains(&format!("byte {offset}")) && message.contains(&command));
    let (code, text) = fk_tools(&["log", "verify", log.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains(&format!("corrupt at byte {offset}")),
        "{text}"
    );

    let (s, l) = (snaps.path().to_str().unwrap(), log.path().to_str().unwrap());
    let beyond = format!("{:#x}", RECORDS);
    let (code, text) = fk_tools(&[
        "log",
        "truncate",
        "--snap-dir",
        s,
        "--log-dir",
        l,
        "--after-zxid",
        &beyond,
    ]);
    assert_eq!(code, 2, "{text}");

    let args: Vec<&str> = command.split_whitespace().collect();
    assert_eq!(args[0], "fk-tools");
    let (code, text) = fk_tools(&args[1..]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains(&format!("ends at zxid {:#x}", RECORDS - 1)),
        "{text}"
    );
    let recovery = wal::recover(snaps.path(), log.path()).unwrap();
    assert_eq!(recovery.snapshot.as_ref().unwrap().zxid, 45);
    let zxids: Vec<i64> = recovery.log.map(|r| r.unwrap().zxid).collect();
    assert_eq!(zxids, (46..RECORDS).collect::<Vec<_>>());
    let (code, text) = fk_tools(&["log", "verify", l]);
    assert_eq!(code, 0, "{text}");
}
