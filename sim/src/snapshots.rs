//! A server's snapshot store.
//!
//! wal's snapshot writer writes real files with std I/O for now (moving it
//! onto the fs traits is under way on another branch). Until then the
//! snapshot files live in [`MemSnapshots`] with the writer's crash
//! semantics — a snapshot is invisible until sealed, sealing makes it
//! durable at once, a crash loses the one in progress — behind the
//! [`SnapshotStore`] trait, so the switch to wal's writer over `wal::MemFs` is
//! one implementation. The files carry wal's own snapshot format, so
//! recovery reads them with wal's own reader (`wal::recover_from`).

use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use node::{SnapshotWritten, StorageFailure};
use wal::{ReadAt, ReadFs};

/// Where a server's snapshots are written and read back from. See the
/// module docs for why this is a trait.
pub trait SnapshotStore: std::fmt::Debug {
    /// What recovery reads the snapshots from.
    type Dir: ReadFs;
    /// Starts snapshot `snapshot.<zxid>` (invisible until sealed).
    fn begin(&mut self, zxid: i64) -> Result<(), StorageFailure>;
    /// Appends body bytes to the snapshot in progress.
    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageFailure>;
    /// Makes the snapshot in progress durable and visible.
    fn seal(&mut self) -> Result<SnapshotWritten, StorageFailure>;
    /// A power cut or a kill: the snapshot in progress is gone.
    fn crash(&mut self);
    /// From now on every write fails with a full disk (`false` lifts it).
    fn set_full(&mut self, full: bool);
    fn dir(&self) -> &Self::Dir;
}

const SNAPSHOT_MAGIC: [u8; 8] = *b"FKSNAPSH";
const SNAPSHOT_END_MAGIC: [u8; 4] = *b"FKSE";
const SNAPSHOT_VERSION: u32 = 1;

/// wal's snapshot file header (see `wal/src/snapshot.rs`, whose reader
/// checks these bytes; `snapshot_files_are_what_wal_reads` proves they agree).
fn snapshot_header(zxid: i64) -> Vec<u8> {
    let mut header = Vec::with_capacity(wal::SNAPSHOT_HEADER_BYTES);
    header.extend_from_slice(&SNAPSHOT_MAGIC);
    header.extend_from_slice(&SNAPSHOT_VERSION.to_le_bytes());
    header.extend_from_slice(&0u32.to_le_bytes());
    header.extend_from_slice(&zxid.to_le_bytes());
    header
}

/// wal's snapshot file trailer: body length, crc32c of header and body, end magic.
fn snapshot_trailer(file_so_far: &[u8]) -> Vec<u8> {
    let body_bytes = (file_so_far.len() - wal::SNAPSHOT_HEADER_BYTES) as u64;
    let mut trailer = Vec::with_capacity(wal::SNAPSHOT_TRAILER_BYTES);
    trailer.extend_from_slice(&body_bytes.to_le_bytes());
    trailer.extend_from_slice(&crc32c::crc32c(file_so_far).to_le_bytes());
    trailer.extend_from_slice(&SNAPSHOT_END_MAGIC);
    trailer
}

/// Sealed snapshot files in memory, and the one being written.
#[derive(Debug, Clone, Default)]
pub struct MemSnapshots {
    dir: MemSnapshotDir,
    in_progress: Option<(i64, Vec<u8>)>,
    full: bool,
}

/// The sealed files, readable as a directory.
#[derive(Debug, Clone, Default)]
pub struct MemSnapshotDir {
    files: BTreeMap<String, Rc<Vec<u8>>>,
}

/// One sealed snapshot file, opened for reading.
#[derive(Debug)]
pub struct MemSnapshotReader(Rc<Vec<u8>>);

impl ReadAt for MemSnapshotReader {
    fn len(&self) -> u64 {
        self.0.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = (offset as usize).min(self.0.len());
        let n = buf.len().min(self.0.len() - start);
        buf[..n].copy_from_slice(&self.0[start..start + n]);
        Ok(n)
    }
}

impl ReadFs for MemSnapshotDir {
    type Reader = MemSnapshotReader;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.files.keys().cloned().collect())
    }

    fn open_read(&self, name: &str) -> io::Result<MemSnapshotReader> {
        self.files
            .get(name)
            .map(|bytes| MemSnapshotReader(bytes.clone()))
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, name.to_string()))
    }

    fn display(&self, name: &str) -> String {
        format!("mem-snapshots:{name}")
    }
}

impl MemSnapshots {
    /// A store holding these sealed files (and nothing in progress).
    pub fn from_files(files: impl IntoIterator<Item = (String, Vec<u8>)>) -> MemSnapshots {
        let files = files
            .into_iter()
            .map(|(name, bytes)| (name, Rc::new(bytes)))
            .collect();
        MemSnapshots {
            dir: MemSnapshotDir { files },
            ..MemSnapshots::default()
        }
    }
}

impl SnapshotStore for MemSnapshots {
    type Dir = MemSnapshotDir;

    fn begin(&mut self, zxid: i64) -> Result<(), StorageFailure> {
        // A leftover in progress is replaced, as the writer replaces a stale temp file.
        self.in_progress = None;
        if self.full {
            return Err(StorageFailure::NoSpace);
        }
        self.in_progress = Some((zxid, snapshot_header(zxid)));
        Ok(())
    }

    fn write(&mut self, bytes: &[u8]) -> Result<(), StorageFailure> {
        if self.full {
            self.in_progress = None;
            return Err(StorageFailure::NoSpace);
        }
        let (_, file) = self.in_progress.as_mut().expect("a snapshot in progress");
        file.extend_from_slice(bytes);
        Ok(())
    }

    fn seal(&mut self) -> Result<SnapshotWritten, StorageFailure> {
        let (zxid, mut file) = self.in_progress.take().expect("a snapshot in progress");
        if self.full {
            return Err(StorageFailure::NoSpace);
        }
        let trailer = snapshot_trailer(&file);
        file.extend_from_slice(&trailer);
        let name = wal::snapshot_name(zxid);
        let bytes = (file.len() - wal::SNAPSHOT_HEADER_BYTES - wal::SNAPSHOT_TRAILER_BYTES) as u64;
        self.dir.files.insert(name.clone(), Rc::new(file));
        Ok(SnapshotWritten {
            zxid,
            file: name,
            bytes,
        })
    }

    fn crash(&mut self) {
        self.in_progress = None;
        self.full = false;
    }

    fn set_full(&mut self, full: bool) {
        self.full = full;
    }

    fn dir(&self) -> &MemSnapshotDir {
        &self.dir
    }
}

/// The snapshot store every simulated server uses (one line to switch).
pub type ServerSnapshots = MemSnapshots;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn snapshot_files_are_what_wal_reads() {
        // The in-memory snapshot files carry wal's format: wal's own reader
        // finds, verifies and streams them back.
        let mut store = MemSnapshots::default();
        store.begin(0x1_0000_0007).unwrap();
        store.write(b"hello ").unwrap();
        store.write(b"snapshot").unwrap();
        let written = store.seal().unwrap();
        assert_eq!(written.bytes, 14);
        let info = wal::newest_valid_snapshot(store.dir()).unwrap().unwrap();
        assert_eq!(info.zxid, 0x1_0000_0007);
        let mut body = Vec::new();
        wal::open_snapshot(store.dir(), &info.name)
            .unwrap()
            .read_to_end(&mut body)
            .unwrap();
        assert_eq!(body, b"hello snapshot");
    }

    #[test]
    fn a_crash_loses_the_snapshot_in_progress_only() {
        let mut store = MemSnapshots::default();
        store.begin(1).unwrap();
        store.write(b"a").unwrap();
        store.seal().unwrap();
        store.begin(2).unwrap();
        store.write(b"b").unwrap();
        store.crash();
        let info = wal::newest_valid_snapshot(store.dir()).unwrap().unwrap();
        assert_eq!(info.zxid, 1);
    }
}
