//! The production log backend: glommio `DmaFile`s (O_DIRECT, io_uring).
//!
//! With [`GlommioFs::with_dsync_writes`], files are opened with `O_DSYNC`: a
//! write completes only once it is durable (the kernel marks it FUA, or
//! follows it with a cache flush where the device has no FUA), so
//! `sync_data` has nothing left to do. A batch then costs one io_uring round
//! trip instead of a write and an fdatasync: serial creates measured p50
//! 313 → 233 µs on a virtio disk with a write-back cache, with one device
//! flush per write either way (`/sys/block/<dev>/stat`, field 16).
//!
//! Must be used from inside a glommio `LocalExecutor`. Each write copies the
//! caller's bytes into a `DmaBuffer` (aligned memory glommio can hand to the
//! kernel); one memcpy per batch is small next to an fdatasync. Directory
//! listing and directory fsync are blocking calls; they happen only when a
//! segment starts.

use std::io;
use std::path::PathBuf;

use glommio::io::{DmaFile, OpenOptions};

use crate::fs::{list_dir, read_fully_at, rename_no_replace, sync_dir_path, LogFs};

/// A log directory written through glommio.
#[derive(Debug, Clone)]
pub struct GlommioFs {
    dir: PathBuf,
    dsync_writes: bool,
}

/// `O_DSYNC` (Linux, every architecture glommio supports).
const O_DSYNC: i32 = 0o10000;

impl GlommioFs {
    /// Files written normally; `sync_data` issues fdatasync.
    pub fn new(dir: impl Into<PathBuf>) -> GlommioFs {
        GlommioFs {
            dir: dir.into(),
            dsync_writes: false,
        }
    }

    /// Files opened with `O_DSYNC`: every write is durable when it completes
    /// (see the module docs).
    pub fn with_dsync_writes(dir: impl Into<PathBuf>) -> GlommioFs {
        GlommioFs {
            dir: dir.into(),
            dsync_writes: true,
        }
    }

    fn options(&self) -> OpenOptions {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if self.dsync_writes {
            options.custom_flags(O_DSYNC);
        }
        options
    }
}

fn to_io(error: glommio::GlommioError<()>) -> io::Error {
    io::Error::from(error)
}

impl LogFs for GlommioFs {
    type File = DmaFile;

    fn list(&self) -> io::Result<Vec<String>> {
        list_dir(&self.dir)
    }

    async fn create(&self, name: &str) -> io::Result<DmaFile> {
        self.options()
            .create_new(true)
            .dma_open(self.dir.join(name))
            .await
            .map_err(to_io)
    }

    async fn open(&self, name: &str) -> io::Result<DmaFile> {
        self.options()
            .dma_open(self.dir.join(name))
            .await
            .map_err(to_io)
    }

    async fn len(&self, file: &DmaFile) -> io::Result<u64> {
        file.file_size().await.map_err(to_io)
    }

    async fn write_at(&self, file: &DmaFile, offset: u64, bytes: &[u8]) -> io::Result<()> {
        let mut buffer = file.alloc_dma_buffer(bytes.len());
        buffer.as_bytes_mut().copy_from_slice(bytes);
        let written = file.write_at(buffer, offset).await.map_err(to_io)?;
        if written != bytes.len() {
            // A regular file's write comes back short when its file system
            // ran out of blocks (the next write would say ENOSPC): a full
            // disk, which the caller may wait out (a spare being zero-filled)
            // or stops on (the log: STYLE rule 2, never retried).
            return Err(io::Error::new(
                io::ErrorKind::StorageFull,
                format!("short write: {written} of {} bytes", bytes.len()),
            ));
        }
        Ok(())
    }

    /// A blocking read through a std file opened by the DmaFile's path.
    /// glommio's own DMA reads fail with EOPNOTSUPP on some kernels and
    /// devices, and these reads are rare and small (a spare's old header at a
    /// segment switch; the segment a truncation cuts), so they are not worth
    /// a second I/O path. The kernel keeps buffered reads coherent with
    /// O_DIRECT writes.
    async fn read_at(&self, file: &DmaFile, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let path = file
            .path()
            .map(|path| path.to_path_buf())
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "DmaFile without a path"))?;
        read_fully_at(&std::fs::File::open(path)?, offset, buf)
    }

    async fn sync_data(&self, file: &DmaFile) -> io::Result<()> {
        if self.dsync_writes {
            // Every write through this file completed durably already.
            return Ok(());
        }
        file.fdatasync().await.map_err(to_io)
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rename_no_replace(&self.dir.join(from), &self.dir.join(to))
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        glommio::io::remove(self.dir.join(name))
            .await
            .map_err(to_io)
    }

    async fn sync_dir(&self) -> io::Result<()> {
        sync_dir_path(&self.dir)
    }

    fn display(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}
