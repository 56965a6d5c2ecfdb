//! The small I/O surface wal needs, and its std-file implementations.
//!
//! Three traits, because reading and writing happen in different worlds:
//!
//! - [`ReadFs`] is blocking: recovery runs before any executor starts, and the
//!   tools and tests read with plain std files (or a [`crate::MemFs`] image).
//! - [`WriteFs`] (which extends `ReadFs`) is blocking too: snapshots, epoch
//!   files and purge run on threads of their own and write whole files
//!   sequentially (create a temp, append, sync, rename, sync the directory).
//! - [`LogFs`] is async and `!Send`-friendly: the log writer runs as one
//!   glommio task ([`crate::GlommioFs`], O_DIRECT through io_uring), or under a
//!   trivial executor over [`StdFs`] or [`crate::MemFs`].
//!
//! All address files by name inside one directory; the directory itself is
//! the unit that `sync_dir` / `sync_directory` makes durable. [`StdDir`]
//! implements the blocking pair over a real directory, [`crate::MemFs`] all
//! three in memory, so the fault-injecting backend can crash every file wal
//! writes.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

/// Random-access reads of one file.
pub trait ReadAt: std::fmt::Debug {
    /// The file's length in bytes.
    fn len(&self) -> u64;
    /// Whether the file is empty.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads up to `buf.len()` bytes at `offset`; returns how many were read
    /// (fewer only at the end of the file).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
}

/// A directory read with blocking calls.
pub trait ReadFs: std::fmt::Debug {
    type Reader: ReadAt;
    /// The names of the files in the directory, in no particular order.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Opens a file for reading.
    fn open_read(&self, name: &str) -> io::Result<Self::Reader>;
    /// How to name a file in messages (a path for real directories).
    fn display(&self, name: &str) -> String;
}

/// A file being written sequentially through a [`WriteFs`].
pub trait FileWriter: std::fmt::Debug {
    /// Appends all of `bytes` after what was appended so far.
    fn append(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// fdatasync: everything appended so far, and the file's length, is
    /// durable when this returns Ok. The file's name is not (see
    /// [`WriteFs::sync_directory`]).
    fn sync(&mut self) -> io::Result<()>;
}

/// A directory written with blocking calls (snapshots, epoch files, purge).
///
/// Contract: nothing appended is durable until [`FileWriter::sync`] returns
/// Ok; no creation, rename or removal is durable until `sync_directory` does.
/// The method names differ from [`LogFs`]'s so that a type implementing both
/// (MemFs) never needs a qualified call.
pub trait WriteFs: ReadFs {
    type Writer: FileWriter;
    /// Creates `name` empty and opens it for appending; a file already named
    /// so is replaced.
    fn create_file(&self, name: &str) -> io::Result<Self::Writer>;
    /// Renames `from` to `to` atomically, replacing `to` if it exists.
    fn rename_file(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    fn remove_file(&self, name: &str) -> io::Result<()>;
    /// fsync of the directory: makes creations, renames and removals durable.
    fn sync_directory(&self) -> io::Result<()>;
}

/// A directory the log writer writes through.
///
/// Contract: `write_at` offsets and lengths are multiples of
/// [`crate::BLOCK_BYTES`]; nothing is durable until `sync_data` (file data)
/// or `sync_dir` (creations, renames, removals) returns Ok.
#[allow(async_fn_in_trait)]
pub trait LogFs: std::fmt::Debug {
    type File: std::fmt::Debug;
    /// The names of the files in the directory.
    fn list(&self) -> io::Result<Vec<String>>;
    /// Creates a new, empty file; fails if the name exists.
    async fn create(&self, name: &str) -> io::Result<Self::File>;
    /// Opens an existing file for writing.
    async fn open(&self, name: &str) -> io::Result<Self::File>;
    /// The current length of an open file.
    async fn len(&self, file: &Self::File) -> io::Result<u64>;
    /// Writes all of `bytes` at `offset` (block-aligned).
    async fn write_at(&self, file: &Self::File, offset: u64, bytes: &[u8]) -> io::Result<()>;
    /// Reads up to `buf.len()` bytes at `offset` (any alignment); returns how
    /// many were read (fewer only at the end of the file). Used off the hot
    /// path: a spare's old header, the segment a truncation cuts.
    async fn read_at(&self, file: &Self::File, offset: u64, buf: &mut [u8]) -> io::Result<usize>;
    /// fdatasync: makes the file's written data durable.
    async fn sync_data(&self, file: &Self::File) -> io::Result<()>;
    /// Renames a file, replacing nothing (the target must not exist).
    async fn rename(&self, from: &str, to: &str) -> io::Result<()>;
    /// Removes a file.
    async fn remove(&self, name: &str) -> io::Result<()>;
    /// fsync of the directory: makes creations, renames and removals durable.
    async fn sync_dir(&self) -> io::Result<()>;
    /// How to name a file in messages.
    fn display(&self, name: &str) -> String;
}

/// Lists the plain file names of a real directory.
pub(crate) fn list_dir(dir: &Path) -> io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        if let Some(name) = entry.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    Ok(names)
}

/// fsync of a real directory.
pub fn sync_dir_path(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// A real directory read with std files.
#[derive(Debug, Clone)]
pub struct StdDir {
    dir: PathBuf,
}

impl StdDir {
    pub fn new(dir: impl Into<PathBuf>) -> StdDir {
        StdDir { dir: dir.into() }
    }

    pub fn path(&self) -> &Path {
        &self.dir
    }
}

/// A std file opened for reading, with its length taken at open.
#[derive(Debug)]
pub struct StdReader {
    file: File,
    len: u64,
}

impl ReadAt for StdReader {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        read_fully_at(&self.file, offset, buf)
    }
}

/// Reads until `buf` is full or the file ends.
pub(crate) fn read_fully_at(file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match file.read_at(&mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

impl ReadFs for StdDir {
    type Reader = StdReader;

    fn list(&self) -> io::Result<Vec<String>> {
        list_dir(&self.dir)
    }

    fn open_read(&self, name: &str) -> io::Result<StdReader> {
        let file = File::open(self.dir.join(name))?;
        let len = file.metadata()?.len();
        Ok(StdReader { file, len })
    }

    fn display(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// A std file opened for appending by [`StdDir`].
#[derive(Debug)]
pub struct StdFileWriter {
    file: File,
}

impl FileWriter for StdFileWriter {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        std::io::Write::write_all(&mut self.file, bytes)
    }

    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

impl WriteFs for StdDir {
    type Writer = StdFileWriter;

    fn create_file(&self, name: &str) -> io::Result<StdFileWriter> {
        File::create(self.dir.join(name)).map(|file| StdFileWriter { file })
    }

    fn rename_file(&self, from: &str, to: &str) -> io::Result<()> {
        std::fs::rename(self.dir.join(from), self.dir.join(to))
    }

    fn remove_file(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    fn sync_directory(&self) -> io::Result<()> {
        sync_dir_path(&self.dir)
    }
}

/// The log writer over plain (buffered) std files: for tools, tests and
/// comparisons. Every call blocks the calling thread; not for the server.
#[derive(Debug, Clone)]
pub struct StdFs {
    dir: PathBuf,
}

impl StdFs {
    pub fn new(dir: impl Into<PathBuf>) -> StdFs {
        StdFs { dir: dir.into() }
    }
}

impl LogFs for StdFs {
    type File = File;

    fn list(&self) -> io::Result<Vec<String>> {
        list_dir(&self.dir)
    }

    async fn create(&self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(self.dir.join(name))
    }

    async fn open(&self, name: &str) -> io::Result<File> {
        OpenOptions::new()
            .read(true)
            .write(true)
            .open(self.dir.join(name))
    }

    async fn len(&self, file: &File) -> io::Result<u64> {
        Ok(file.metadata()?.len())
    }

    async fn write_at(&self, file: &File, offset: u64, bytes: &[u8]) -> io::Result<()> {
        file.write_all_at(bytes, offset)
    }

    async fn read_at(&self, file: &File, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        read_fully_at(file, offset, buf)
    }

    async fn sync_data(&self, file: &File) -> io::Result<()> {
        file.sync_data()
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        rename_no_replace(&self.dir.join(from), &self.dir.join(to))
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        std::fs::remove_file(self.dir.join(name))
    }

    async fn sync_dir(&self) -> io::Result<()> {
        sync_dir_path(&self.dir)
    }

    fn display(&self, name: &str) -> String {
        self.dir.join(name).display().to_string()
    }
}

/// Renames `from` to `to`, refusing to replace an existing `to`. The check and
/// the rename are two steps; only one log writer owns a directory, so no one
/// else creates names there in between.
pub(crate) fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    if to.exists() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} already exists", to.display()),
        ));
    }
    std::fs::rename(from, to)
}
