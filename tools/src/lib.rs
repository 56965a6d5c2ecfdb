//! Operator tools for ferrokeeper's data directories: inspect and verify log
//! segments and snapshots, purge old ones, truncate the log (accepting a
//! loss recovery refuses to take). The `fk-tools` binary is a thin
//! clap front end over these functions; every report is plain data that
//! prints as text or serialises as JSON.

use std::path::{Path, PathBuf};

use serde::Serialize;
use wal::{EndKind, ReadFs, SegmentScan, StdDir, WalError};

/// What can stop a tool.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    #[error(transparent)]
    Wal(#[from] WalError),
    #[error("{path}: {reason}")]
    BadPath { path: String, reason: String },
}

/// One record of a segment, as `log dump` shows it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RecordReport {
    pub offset: u64,
    pub zxid: i64,
    pub zxid_hex: String,
    /// Framed length: header and payload.
    pub length: usize,
    pub payload_bytes: usize,
    /// Records are only returned once their crc matched.
    pub crc: &'static str,
    /// The decoded txn (tree's codec), when the payload decodes.
    pub txn: Option<String>,
    pub txn_error: Option<String>,
}

/// One segment file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct SegmentReport {
    pub file: String,
    pub zxid_first: Option<i64>,
    pub zxid_previous: Option<i64>,
    pub record_count: u64,
    pub zxid_last: Option<i64>,
    /// The segment's format version (1: before sector stamps).
    pub format: Option<u32>,
    /// Where the data ends (the offset after the last good record).
    pub end_offset: u64,
    /// "clean", "torn: <reason>" or "corrupt: <reason>".
    pub end: String,
    /// Where durable bytes are damaged (recovery refuses).
    pub corrupt_at: Option<u64>,
    pub records: Vec<RecordReport>,
    pub problems: Vec<String>,
}

/// A log directory or a single segment file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct LogReport {
    pub segments: Vec<SegmentReport>,
    /// Everything that makes the log unusable as it is (empty: verified).
    pub problems: Vec<String>,
    /// Things recovery handles by itself (a torn tail it will cut).
    pub notes: Vec<String>,
}

/// Reads every segment of `path` (a directory, or one `log.<hex>` file), in
/// zxid order, checking framing, crcs, zxid order and the chain between
/// segments. With `with_records`, keeps each record's details (dump).
pub fn inspect_log(path: &Path, with_records: bool) -> Result<LogReport, ToolError> {
    let (dir, names) = segment_files(path)?;
    let fs = StdDir::new(&dir);
    let mut report = LogReport::default();
    let mut zxid_last_before: Option<i64> = None;
    for (i, name) in names.iter().enumerate() {
        let is_last = i + 1 == names.len();
        let segment = inspect_segment(&fs, name, with_records);
        if let (Some(before), Some(previous)) = (zxid_last_before, segment.zxid_previous) {
            if before != previous {
                report.problems.push(format!(
                    "{}: follows zxid {previous:#x} but the segment before ends at {before:#x} (missing segment?)",
                    segment.file
                ));
            }
        }
        if segment.zxid_last.is_some() || segment.zxid_previous.is_some() {
            zxid_last_before = segment.zxid_last.or(segment.zxid_previous);
        }
        report.problems.extend(segment.problems.iter().cloned());
        if segment.end.starts_with("torn") {
            let what = format!(
                "{}: data ends at byte {} ({})",
                segment.file, segment.end_offset, segment.end
            );
            if is_last {
                report.notes.push(format!(
                    "{what}; recovery cuts this torn tail (an unacknowledged write)"
                ));
            } else {
                report.problems.push(format!(
                    "{what}, but a later segment follows, so that write had completed"
                ));
            }
        }
        report.segments.push(segment);
    }
    Ok(report)
}

fn inspect_segment(fs: &StdDir, name: &str, with_records: bool) -> SegmentReport {
    let file = fs.display(name);
    let mut report = SegmentReport {
        file: file.clone(),
        ..SegmentReport::default()
    };
    let opened = fs.open_read(name).map_err(|e| WalError::Io {
        op: "open",
        path: file.clone(),
        source: e,
    });
    let mut scan = match opened.and_then(|reader| SegmentScan::open(reader, file.clone())) {
        Ok(scan) => scan,
        Err(error) => {
            report.end = "unreadable".to_string();
            report.problems.push(error.to_string());
            return report;
        }
    };
    report.format = Some(scan.header().version);
    report.zxid_first = Some(scan.header().zxid_first);
    report.zxid_previous = Some(scan.header().zxid_previous);
    if wal::parse_segment_name(name).is_some_and(|z| z != scan.header().zxid_first) {
        report.problems.push(format!(
            "{file}: header's first zxid does not match the file name"
        ));
    }
    loop {
        match scan.next_record() {
            Ok(Some(record)) => {
                report.record_count += 1;
                report.zxid_last = Some(record.zxid);
                if with_records {
                    report
                        .records
                        .push(record_report(record.offset, record.zxid, &record.payload));
                }
            }
            Ok(None) => break,
            Err(error) => {
                report.problems.push(error.to_string());
                report.end = "stopped".to_string();
                return report;
            }
        }
    }
    let end = scan.end().expect("scan finished").clone();
    report.end_offset = end.offset;
    report.end = match &end.kind {
        EndKind::Clean => "clean".to_string(),
        EndKind::Torn { reason } => format!("torn: {reason}"),
        EndKind::Corrupt { reason, .. } => format!("corrupt: {reason}"),
    };
    if let EndKind::Corrupt { at, reason } = &end.kind {
        report.corrupt_at = Some(*at);
        report
            .problems
            .push(format!("{file}: corrupt at byte {at}: {reason}"));
    }
    report
}

fn record_report(offset: u64, zxid: i64, payload: &[u8]) -> RecordReport {
    let (txn, txn_error) = match tree::txn::decode_record(payload) {
        Ok((header, txn)) => (
            Some(format!(
                "session {:#x} cxid {} time {} {:?}",
                header.session_id, header.cxid, header.time_ms, txn
            )),
            None,
        ),
        Err(error) => (None, Some(format!("{error:?}"))),
    };
    RecordReport {
        offset,
        zxid,
        zxid_hex: format!("{:#x}", zxid),
        length: wal::record_bytes(payload.len()),
        payload_bytes: payload.len(),
        crc: "ok",
        txn,
        txn_error,
    }
}

/// The directory and the segment names to read for `path`.
fn segment_files(path: &Path) -> Result<(PathBuf, Vec<String>), ToolError> {
    let bad = |reason: &str| ToolError::BadPath {
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    if path.is_dir() {
        let segments = wal::list_segments(&StdDir::new(path))?;
        return Ok((
            path.to_path_buf(),
            segments.into_iter().map(|(_, n)| n).collect(),
        ));
    }
    if !path.is_file() {
        return Err(bad("no such file or directory"));
    }
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| bad("not a file name"))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((dir.to_path_buf(), vec![name.to_string()]))
}

/// A snapshot file.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct SnapshotReport {
    pub file: String,
    pub zxid: Option<i64>,
    pub body_bytes: Option<u64>,
    /// "ok" or what is wrong.
    pub status: String,
    /// The first bytes of the body, in hex (dump only).
    pub body_head_hex: Option<String>,
}

/// Bytes of the body shown by `snapshot dump`.
const BODY_HEAD_BYTES: usize = 64;

/// Verifies a snapshot file (crc over the whole body); with `dump`, also
/// shows the start of the body.
pub fn inspect_snapshot(path: &Path, dump: bool) -> SnapshotReport {
    let mut report = SnapshotReport {
        file: path.display().to_string(),
        zxid: None,
        body_bytes: None,
        status: String::new(),
        body_head_hex: None,
    };
    match wal::read_snapshot(path) {
        Ok((zxid, body)) => {
            report.zxid = Some(zxid);
            report.body_bytes = Some(body.len() as u64);
            report.status = "ok".to_string();
            if dump {
                let head: Vec<String> = body
                    .iter()
                    .take(BODY_HEAD_BYTES)
                    .map(|b| format!("{b:02x}"))
                    .collect();
                report.body_head_hex = Some(head.concat());
            }
        }
        Err(error) => report.status = error.to_string(),
    }
    report
}

/// Renders a log report as text.
pub fn render_log(report: &LogReport) -> String {
    let mut out = String::new();
    for segment in &report.segments {
        out += &format!(
            "{}  format {}  first {}  previous {}  records {}  last {}  end {} at byte {}\n",
            segment.file,
            segment.format.map_or("?".to_string(), |v| v.to_string()),
            hex(segment.zxid_first),
            hex(segment.zxid_previous),
            segment.record_count,
            hex(segment.zxid_last),
            segment.end,
            segment.end_offset
        );
        for record in &segment.records {
            out += &format!(
                "  @{:<10} zxid {:<14} len {:<7} payload {:<7} crc {}  {}\n",
                record.offset,
                record.zxid_hex,
                record.length,
                record.payload_bytes,
                record.crc,
                record.txn.as_deref().map_or_else(
                    || format!(
                        "(not a txn: {})",
                        record.txn_error.as_deref().unwrap_or("?")
                    ),
                    str::to_string
                )
            );
        }
    }
    for note in &report.notes {
        out += &format!("note: {note}\n");
    }
    for problem in &report.problems {
        out += &format!("PROBLEM: {problem}\n");
    }
    out += &format!(
        "{} segments, {} records: {}\n",
        report.segments.len(),
        report.segments.iter().map(|s| s.record_count).sum::<u64>(),
        if report.problems.is_empty() {
            "OK"
        } else {
            "DAMAGED"
        }
    );
    out
}

/// Renders a snapshot report as text.
pub fn render_snapshot(report: &SnapshotReport) -> String {
    let mut out = format!(
        "{}  zxid {}  body {} bytes  {}\n",
        report.file,
        hex(report.zxid),
        report.body_bytes.map_or("?".to_string(), |b| b.to_string()),
        report.status
    );
    if let Some(head) = &report.body_head_hex {
        out += &format!("  body starts {head}\n");
    }
    out
}

/// Renders a purge report as text.
pub fn render_purge(report: &wal::PurgeReport) -> String {
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(" ")
        }
    };
    format!(
        "snapshots kept: {}\nsnapshots removed: {}\nsegments kept: {}\nsegments recycled: {}\nsegments removed: {}\ntemp files removed: {}\n",
        list(&report.snapshots_kept),
        list(&report.snapshots_removed),
        list(&report.segments_kept),
        list(&report.segments_recycled),
        list(&report.segments_removed),
        list(&report.temps_removed)
    )
}

/// The purge report as JSON.
pub fn purge_json(report: &wal::PurgeReport) -> serde_json::Value {
    serde_json::json!({
        "snapshots_kept": report.snapshots_kept,
        "snapshots_removed": report.snapshots_removed,
        "segments_kept": report.segments_kept,
        "segments_recycled": report.segments_recycled,
        "segments_removed": report.segments_removed,
        "temps_removed": report.temps_removed,
    })
}

/// Parses a zxid given as decimal or as hex with a `0x` prefix.
pub fn parse_zxid(text: &str) -> Result<i64, String> {
    let parsed = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).map(|z| z as i64),
        None => text.parse::<i64>(),
    };
    parsed.map_err(|e| format!("not a zxid: {text} ({e})"))
}

/// Renders a truncation report as text.
pub fn render_truncate(report: &wal::TruncateLogReport) -> String {
    let list = |names: &[String]| {
        if names.is_empty() {
            "-".to_string()
        } else {
            names.join(" ")
        }
    };
    let cut = report
        .log
        .segment_cut
        .as_ref()
        .map_or("-".to_string(), |(name, at)| format!("{name} at byte {at}"));
    format!(
        "snapshots removed: {}\nsegments removed: {}\nsegment cut: {cut}\nthe log now ends at zxid {:#x}\n",
        list(&report.snapshots_removed),
        list(&report.log.segments_removed),
        report.log.zxid_last
    )
}

/// The truncation report as JSON.
pub fn truncate_json(report: &wal::TruncateLogReport) -> serde_json::Value {
    serde_json::json!({
        "snapshots_removed": report.snapshots_removed,
        "segments_removed": report.log.segments_removed,
        "segment_cut": report.log.segment_cut.as_ref().map(|(name, at)| {
            serde_json::json!({ "file": name, "offset": at })
        }),
        "zxid_last": report.log.zxid_last,
    })
}

fn hex(zxid: Option<i64>) -> String {
    zxid.map_or("-".to_string(), |z| format!("{z:#x}"))
}
