//! A server's snapshot writer: wal's own [`SnapshotWriter`] over the
//! server's data directory on its in-memory disk, as the engine's snapshot
//! thread (`engine/src/storage.rs`) runs it over a real directory.
//!
//! The writer's crash semantics are wal's and [`MemFs`]'s, not a model of
//! them: a snapshot is written to `snapshot.<zxid>.tmp`, synced, renamed
//! and the directory synced, so a power cut mid-way leaves a temp file (or
//! nothing) that the next start removes, and a sealed snapshot survives.
//! Because the data directory is a directory of the same disk as the log,
//! a full disk and a failed fdatasync strike snapshots too.

use node::{SnapshotWritten, StorageFailure};
use wal::{MemFs, SnapshotWriter};

use crate::disk::storage_failure;

/// The snapshot in progress, if any, in one data directory.
#[derive(Debug)]
pub struct Snapshots {
    dir: MemFs,
    writer: Option<SnapshotWriter<MemFs>>,
}

impl Snapshots {
    pub fn new(dir: MemFs) -> Snapshots {
        Snapshots { dir, writer: None }
    }

    /// Starts snapshot `snapshot.<zxid>` (invisible until sealed).
    pub fn begin(&mut self, zxid: i64) -> Result<(), StorageFailure> {
        // A snapshot that failed part-way was dropped already; one at a time.
        assert!(self.writer.is_none(), "one snapshot at a time");
        let writer = SnapshotWriter::create_in(self.dir.clone(), zxid)
            .map_err(|err| storage_failure(&err))?;
        self.writer = Some(writer);
        Ok(())
    }

    /// Appends body bytes to the snapshot in progress. A failure drops it
    /// (and its temp file), as the engine's snapshot thread gives up.
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StorageFailure> {
        let writer = self.writer.as_mut().expect("a snapshot in progress");
        writer.write(bytes).map_err(|err| {
            self.writer = None;
            storage_failure(&err)
        })
    }

    /// Seals the snapshot in progress: trailer, sync, rename, directory sync.
    pub fn seal(&mut self) -> Result<SnapshotWritten, StorageFailure> {
        let writer = self.writer.take().expect("a snapshot in progress");
        let info = writer.finish().map_err(|err| storage_failure(&err))?;
        Ok(SnapshotWritten {
            zxid: info.zxid,
            file: info.file,
            bytes: info.body_bytes,
        })
    }

    /// Whether a snapshot is in progress.
    pub fn is_writing(&self) -> bool {
        self.writer.is_some()
    }

    pub fn dir(&self) -> &MemFs {
        &self.dir
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn a_sealed_snapshot_is_what_wal_reads() {
        // The writer is wal's: its reader finds, verifies and streams the
        // body back.
        let mut store = Snapshots::new(MemFs::new().dir("data"));
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
    fn a_power_cut_loses_the_snapshot_in_progress_only() {
        // The sealed snapshot survives any crash image; the one being
        // written never shows up under its final name.
        let disk = MemFs::new();
        let mut store = Snapshots::new(disk.dir("data"));
        store.begin(1).unwrap();
        store.write(b"a").unwrap();
        store.seal().unwrap();
        store.begin(2).unwrap();
        store.write(b"b").unwrap();
        for seed in 0..20 {
            let image = disk.crash_image(seed).dir("data");
            let info = wal::newest_valid_snapshot(&image).unwrap().unwrap();
            assert_eq!(info.zxid, 1);
        }
    }
}
