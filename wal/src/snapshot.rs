//! Snapshot files: an opaque byte stream that starts at a zxid, sealed with a
//! length and a crc, and made visible only once complete.
//!
//! ```text
//! snapshot.<zxid as 16 hex digits>        (all integers little-endian)
//!   0   8  magic      b"FKSNAPSH"
//!   8   4  version    u32 = 1
//!  12   4  reserved   u32 = 0
//!  16   8  zxid       i64   the snapshot holds every txn up to at least this zxid
//!  24   …  body       opaque (the serialised tree, written in chunks)
//!  end-16  8  body length  u64
//!  end-8   4  crc          u32   crc32c of header and body
//!  end-4   4  end magic    b"FKSE"
//! ```
//!
//! The writer writes `snapshot.<hex>.tmp`, syncs it, renames it into place
//! and syncs the directory: a snapshot file either is complete or does not
//! exist under its final name. The crc still catches media damage, and
//! recovery falls back to the previous snapshot when the newest is damaged.
//! A writer that fails or is dropped before `finish` removes its temp file,
//! so failed snapshots leave nothing behind (issue 10, "Disks").

use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::WalError;
use crate::format::parse_hex_suffix;
use crate::fs::{FileWriter, ReadAt, ReadFs, StdDir, WriteFs};

const SNAPSHOT_MAGIC: [u8; 8] = *b"FKSNAPSH";
const SNAPSHOT_END_MAGIC: [u8; 4] = *b"FKSE";
const SNAPSHOT_VERSION: u32 = 1;
/// Bytes before the body.
pub const SNAPSHOT_HEADER_BYTES: usize = 24;
/// Bytes after the body.
pub const SNAPSHOT_TRAILER_BYTES: usize = 16;
const READ_CHUNK_BYTES: usize = 1 << 20;
/// Body bytes are gathered into appends of this size.
const WRITE_CHUNK_BYTES: usize = 1 << 20;

/// `snapshot.<16 hex digits>`.
pub fn snapshot_name(zxid: i64) -> String {
    format!("snapshot.{:016x}", zxid as u64)
}

/// The zxid of a snapshot file name (`snapshot.<hex>`), if it is one.
pub fn parse_snapshot_name(name: &str) -> Option<i64> {
    parse_hex_suffix(name, "snapshot.")
}

/// The zxid of a snapshot's temp file name (`snapshot.<hex>.tmp`), if it is one.
pub fn parse_snapshot_temp_name(name: &str) -> Option<i64> {
    parse_snapshot_name(name.strip_suffix(TEMP_SUFFIX)?)
}

/// Files being written carry this suffix until they are complete.
pub(crate) const TEMP_SUFFIX: &str = ".tmp";

/// A verified snapshot file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    pub zxid: i64,
    /// The file name inside its directory.
    pub name: String,
    /// The file as shown in messages (its path for real directories).
    pub file: String,
    /// Length of the opaque body.
    pub body_bytes: u64,
}

/// Writes one snapshot with blocking calls, on a thread of its own, through
/// any [`WriteFs`] (a real directory by default).
#[derive(Debug)]
pub struct SnapshotWriter<F: WriteFs = StdDir> {
    fs: F,
    zxid: i64,
    tmp: String,
    /// `None` once the temp file is renamed into place or removed.
    out: Option<F::Writer>,
    buf: Vec<u8>,
    crc: u32,
    body_bytes: u64,
    /// Body bytes written since the last intermediate sync.
    unsynced_bytes: u64,
}

/// A snapshot writer syncs after every this many bytes, so that the page
/// cache never holds a whole snapshot's worth of dirty pages: flushed all at
/// once at the end, they would queue in front of the txn log's fdatasyncs on
/// the same disk and stall write replies for tens of milliseconds.
pub const SNAPSHOT_SYNC_EVERY_BYTES: u64 = 1 << 20;

impl SnapshotWriter<StdDir> {
    /// Starts `snapshot.<zxid>.tmp` in `dir` (replacing a leftover one).
    pub fn create(dir: &Path, zxid: i64) -> Result<SnapshotWriter<StdDir>, WalError> {
        SnapshotWriter::create_in(StdDir::new(dir), zxid)
    }
}

impl<F: WriteFs> SnapshotWriter<F> {
    /// Starts `snapshot.<zxid>.tmp` in `fs` (replacing a leftover one).
    pub fn create_in(fs: F, zxid: i64) -> Result<SnapshotWriter<F>, WalError> {
        let tmp = format!("{}{TEMP_SUFFIX}", snapshot_name(zxid));
        let out = fs
            .create_file(&tmp)
            .map_err(|e| WalError::io("create", fs.display(&tmp), e))?;
        let mut header = Vec::with_capacity(WRITE_CHUNK_BYTES);
        header.extend_from_slice(&SNAPSHOT_MAGIC);
        header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
        header.extend_from_slice(&0u32.to_le_bytes());
        header.extend_from_slice(&zxid.to_le_bytes());
        let crc = crc32c::crc32c(&header);
        Ok(SnapshotWriter {
            fs,
            zxid,
            tmp,
            out: Some(out),
            buf: header,
            crc,
            body_bytes: 0,
            unsynced_bytes: 0,
        })
    }

    /// Appends body bytes. After an error, drop the writer (its temp file
    /// goes with it).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), WalError> {
        self.crc = crc32c::crc32c_append(self.crc, bytes);
        self.body_bytes += bytes.len() as u64;
        self.unsynced_bytes += bytes.len() as u64;
        let mut rest = bytes;
        while !rest.is_empty() {
            let room = WRITE_CHUNK_BYTES - self.buf.len();
            let (now, later) = rest.split_at(room.min(rest.len()));
            self.buf.extend_from_slice(now);
            rest = later;
            if self.buf.len() == WRITE_CHUNK_BYTES {
                self.flush()?;
            }
        }
        if self.unsynced_bytes >= SNAPSHOT_SYNC_EVERY_BYTES {
            self.unsynced_bytes = 0;
            self.flush()?;
            self.sync()?;
        }
        Ok(())
    }

    /// Seals the file (trailer, sync), renames it into place, syncs the
    /// directory. On an error before the rename the temp file is removed.
    pub fn finish(mut self) -> Result<SnapshotInfo, WalError> {
        self.buf.extend_from_slice(&self.body_bytes.to_le_bytes());
        self.buf.extend_from_slice(&self.crc.to_le_bytes());
        self.buf.extend_from_slice(&SNAPSHOT_END_MAGIC);
        self.flush()?;
        self.sync()?;
        let name = snapshot_name(self.zxid);
        let file = self.fs.display(&name);
        let out = self.out.take();
        if let Err(e) = self.fs.rename_file(&self.tmp, &name) {
            self.out = out;
            return Err(WalError::io("rename", self.fs.display(&self.tmp), e));
        }
        drop(out);
        self.fs
            .sync_directory()
            .map_err(|e| WalError::io("fsync directory", &file, e))?;
        Ok(SnapshotInfo {
            zxid: self.zxid,
            name,
            file,
            body_bytes: self.body_bytes,
        })
    }

    /// Gives up on this snapshot and removes its temp file.
    pub fn abandon(mut self) -> Result<(), WalError> {
        self.remove_temp()
    }

    /// The zxid this snapshot is written at.
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    fn flush(&mut self) -> Result<(), WalError> {
        let out = self.out.as_mut().expect("snapshot still being written");
        out.append(&self.buf)
            .map_err(|e| WalError::io("write", self.fs.display(&self.tmp), e))?;
        self.buf.clear();
        Ok(())
    }

    fn sync(&mut self) -> Result<(), WalError> {
        let out = self.out.as_mut().expect("snapshot still being written");
        out.sync()
            .map_err(|e| WalError::io("fdatasync", self.fs.display(&self.tmp), e))
    }

    fn remove_temp(&mut self) -> Result<(), WalError> {
        if self.out.take().is_none() {
            return Ok(());
        }
        match self.fs.remove_file(&self.tmp) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(WalError::io("remove", self.fs.display(&self.tmp), e)),
        }
    }
}

impl<F: WriteFs> Drop for SnapshotWriter<F> {
    /// A snapshot that did not finish leaves no temp file behind.
    fn drop(&mut self) {
        if let Err(error) = self.remove_temp() {
            tracing::warn!(%error, "could not remove an unfinished snapshot's temp file");
        }
    }
}

/// The snapshots in a directory, newest (highest zxid) first: (zxid, name).
pub fn list_snapshots<R: ReadFs>(fs: &R) -> Result<Vec<(i64, String)>, WalError> {
    let names = fs
        .list()
        .map_err(|e| WalError::io("list", fs.display(""), e))?;
    let mut snapshots: Vec<(i64, String)> = names
        .into_iter()
        .filter_map(|n| parse_snapshot_name(&n).map(|z| (z, n)))
        .collect();
    snapshots.sort_by(|a, b| b.cmp(a));
    Ok(snapshots)
}

/// Streams the body of a snapshot, checking the crc when it reaches the end:
/// the last `read` returns `InvalidData` instead of `Ok(0)` if it does not match.
#[derive(Debug)]
pub struct SnapshotReader<Rd: ReadAt> {
    reader: Rd,
    info: SnapshotInfo,
    crc_expected: u32,
    crc: u32,
    at: u64,
}

fn damaged(file: &str, reason: impl Into<String>) -> WalError {
    WalError::SnapshotCorrupt {
        file: file.to_string(),
        reason: reason.into(),
    }
}

impl<Rd: ReadAt> SnapshotReader<Rd> {
    /// Checks header and trailer (not yet the crc) and gets ready to stream.
    pub fn new(reader: Rd, name: &str, file: String) -> Result<Self, WalError> {
        let len = reader.len();
        if len < (SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) as u64 {
            return Err(damaged(&file, format!("only {len} bytes long")));
        }
        let mut header = [0u8; SNAPSHOT_HEADER_BYTES];
        let mut trailer = [0u8; SNAPSHOT_TRAILER_BYTES];
        let read = |at, buf: &mut [u8]| {
            reader
                .read_at(at, buf)
                .map_err(|e| WalError::io("read", &file, e))
        };
        read(0, &mut header)?;
        read(len - SNAPSHOT_TRAILER_BYTES as u64, &mut trailer)?;
        if header[0..8] != SNAPSHOT_MAGIC || trailer[12..16] != SNAPSHOT_END_MAGIC {
            return Err(damaged(&file, "bad magic"));
        }
        let version = u32::from_le_bytes(header[8..12].try_into().expect("4 bytes"));
        if version != SNAPSHOT_VERSION {
            return Err(damaged(&file, format!("unsupported version {version}")));
        }
        let zxid = i64::from_le_bytes(header[16..24].try_into().expect("8 bytes"));
        let body_bytes = u64::from_le_bytes(trailer[0..8].try_into().expect("8 bytes"));
        if body_bytes != len - (SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) as u64 {
            return Err(damaged(
                &file,
                format!("trailer says {body_bytes} body bytes, file has room for another"),
            ));
        }
        if parse_snapshot_name(name).is_some_and(|z| z != zxid) {
            return Err(damaged(
                &file,
                format!("name says zxid differs from header zxid {zxid:#x}"),
            ));
        }
        let crc_expected = u32::from_le_bytes(trailer[8..12].try_into().expect("4 bytes"));
        let info = SnapshotInfo {
            zxid,
            name: name.to_string(),
            file,
            body_bytes,
        };
        Ok(SnapshotReader {
            reader,
            info,
            crc_expected,
            crc: crc32c::crc32c(&header),
            at: 0,
        })
    }

    pub fn info(&self) -> &SnapshotInfo {
        &self.info
    }

    /// Reads the whole body through, checking the crc.
    pub fn verify(mut self) -> Result<SnapshotInfo, WalError> {
        let mut chunk = vec![0u8; READ_CHUNK_BYTES];
        loop {
            match self.read(&mut chunk) {
                Ok(0) => return Ok(self.info),
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    return Err(damaged(&self.info.file, e.to_string()))
                }
                Err(e) => return Err(WalError::io("read", &self.info.file, e)),
            }
        }
    }
}

impl<Rd: ReadAt> Read for SnapshotReader<Rd> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let left = self.info.body_bytes - self.at;
        if left == 0 || buf.is_empty() {
            if left == 0 && self.crc != self.crc_expected {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "snapshot crc mismatch",
                ));
            }
            return Ok(0);
        }
        let want = buf.len().min(left as usize);
        let n = self
            .reader
            .read_at(SNAPSHOT_HEADER_BYTES as u64 + self.at, &mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "snapshot shorter than its trailer says",
            ));
        }
        self.crc = crc32c::crc32c_append(self.crc, &buf[..n]);
        self.at += n as u64;
        Ok(n)
    }
}

/// Opens a snapshot in a directory for streaming.
pub fn open_snapshot<R: ReadFs>(fs: &R, name: &str) -> Result<SnapshotReader<R::Reader>, WalError> {
    let reader = fs
        .open_read(name)
        .map_err(|e| WalError::io("open", fs.display(name), e))?;
    SnapshotReader::new(reader, name, fs.display(name))
}

/// Reads and verifies a whole snapshot file: its zxid and body.
pub fn read_snapshot(path: &Path) -> Result<(i64, Vec<u8>), WalError> {
    let (dir, name) = split_path(path)?;
    let mut reader = open_snapshot(&StdDir::new(dir), &name)?;
    let mut body = Vec::with_capacity(reader.info().body_bytes as usize);
    let file = reader.info().file.clone();
    reader.read_to_end(&mut body).map_err(|e| match e.kind() {
        io::ErrorKind::InvalidData => damaged(&file, e.to_string()),
        _ => WalError::io("read", &file, e),
    })?;
    Ok((reader.info().zxid, body))
}

/// Verifies a snapshot file without keeping its body.
pub fn verify_snapshot(path: &Path) -> Result<SnapshotInfo, WalError> {
    let (dir, name) = split_path(path)?;
    open_snapshot(&StdDir::new(dir), &name)?.verify()
}

pub(crate) fn split_path(path: &Path) -> Result<(PathBuf, String), WalError> {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string);
    let Some(name) = name else {
        return Err(WalError::io(
            "open",
            path.display(),
            io::ErrorKind::InvalidInput.into(),
        ));
    };
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    Ok((dir, name))
}

/// The newest snapshot that verifies, falling back past damaged ones with a
/// warning each. `Ok(None)`: there are no snapshots at all.
pub fn newest_valid_snapshot<R: ReadFs>(fs: &R) -> Result<Option<SnapshotInfo>, WalError> {
    let snapshots = list_snapshots(fs)?;
    for (_, name) in &snapshots {
        match open_snapshot(fs, name).and_then(SnapshotReader::verify) {
            Ok(info) => return Ok(Some(info)),
            Err(WalError::SnapshotCorrupt { file, reason }) => {
                tracing::warn!(%file, %reason, "snapshot damaged; falling back to the previous one");
            }
            Err(other) => return Err(other),
        }
    }
    if snapshots.is_empty() {
        Ok(None)
    } else {
        Err(WalError::NoValidSnapshot {
            snap_dir: fs.display(""),
            count: snapshots.len(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A snapshot written in chunks reads back whole; it is listed newest
    // first; a truncated file, a flipped body byte or a wrong name is damage.
    #[test]
    fn snapshot_round_trip_and_damage() {
        let dir = tempfile::tempdir().unwrap();
        let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7) as u8).collect();
        let mut writer = SnapshotWriter::create(dir.path(), 0x1_0000_0005).unwrap();
        for chunk in body.chunks(4093) {
            writer.write(chunk).unwrap();
        }
        let info = writer.finish().unwrap();
        assert_eq!(
            (info.zxid, info.body_bytes),
            (0x1_0000_0005, body.len() as u64)
        );
        SnapshotWriter::create(dir.path(), 3)
            .unwrap()
            .finish()
            .unwrap();
        let listed = list_snapshots(&StdDir::new(dir.path())).unwrap();
        assert_eq!(
            listed.iter().map(|(z, _)| *z).collect::<Vec<_>>(),
            vec![0x1_0000_0005, 3]
        );
        let path = dir.path().join(&info.name);
        assert_eq!(read_snapshot(&path).unwrap(), (0x1_0000_0005, body.clone()));

        let original = std::fs::read(&path).unwrap();
        let mut flipped = original.clone();
        flipped[SNAPSHOT_HEADER_BYTES + 123_456] ^= 0x10;
        std::fs::write(&path, &flipped).unwrap();
        assert!(matches!(
            verify_snapshot(&path),
            Err(WalError::SnapshotCorrupt { .. })
        ));
        assert!(matches!(
            read_snapshot(&path),
            Err(WalError::SnapshotCorrupt { .. })
        ));
        std::fs::write(&path, &original[..original.len() - 5]).unwrap();
        assert!(matches!(
            verify_snapshot(&path),
            Err(WalError::SnapshotCorrupt { .. })
        ));
        let renamed = dir.path().join(snapshot_name(9));
        std::fs::write(&renamed, &original).unwrap();
        assert!(matches!(
            verify_snapshot(&renamed),
            Err(WalError::SnapshotCorrupt { .. })
        ));
    }
}
