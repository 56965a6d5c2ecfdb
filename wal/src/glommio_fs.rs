//! The production log backend: glommio `DmaFile`s (O_DIRECT, io_uring).
//!
//! Must be used from inside a glommio `LocalExecutor`. Each write copies the
//! caller's bytes into a `DmaBuffer` (aligned memory glommio can hand to the
//! kernel); one memcpy per batch is small next to an fdatasync. Directory
//! listing and directory fsync are blocking calls; they happen only when a
//! segment starts.

use std::io;
use std::path::PathBuf;

use glommio::io::{DmaFile, OpenOptions};

use crate::fs::{list_dir, rename_no_replace, sync_dir_path, LogFs};

/// A log directory written through glommio.
#[derive(Debug, Clone)]
pub struct GlommioFs {
    dir: PathBuf,
}

impl GlommioFs {
    pub fn new(dir: impl Into<PathBuf>) -> GlommioFs {
        GlommioFs { dir: dir.into() }
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
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .dma_open(self.dir.join(name))
            .await
            .map_err(to_io)
    }

    async fn open(&self, name: &str) -> io::Result<DmaFile> {
        OpenOptions::new()
            .read(true)
            .write(true)
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
            // A short O_DIRECT write is not retried: the writer stops (STYLE rule 2).
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                format!("short write: {written} of {} bytes", bytes.len()),
            ));
        }
        Ok(())
    }

    async fn sync_data(&self, file: &DmaFile) -> io::Result<()> {
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
