//! An in-memory disk that remembers what is durable, injects faults, and
//! produces the images a power cut could leave behind.
//!
//! The model, per file: `durable` bytes (as of the last sync) plus the writes
//! issued since, in order. Per directory: the names as of the last directory
//! sync plus the creations, renames and removals since, in order. A power cut
//! keeps, for every unsynced write, any subset of its 512-byte sectors, and in
//! each directory a prefix of the unsynced directory operations. A file whose
//! name did not survive is gone.
//!
//! Sectors are atomic in [`MemState::crash_image`]: each one holds its old or
//! its new bytes, as a device's atomic write unit guarantees (see the format
//! doc in `format.rs` for why the log relies on it).
//! [`MemState::crash_image_tearing_sectors`] also tears one sector mid-way now
//! and then, for tests of what happens when a device breaks that promise.
//!
//! One `MemFs` is one directory of a disk; [`MemFs::dir`] opens another
//! directory of the same disk (a dataDir beside its dataLogDir), so one crash
//! image, one set of faults and one list of checkpoints cover both.
//!
//! With [`MemFs::record_checkpoints`] on, the state after every mutating call
//! is kept, so a test can crash the system at every point of a recorded run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use crate::format::{mix64, SECTOR_BYTES};
use crate::fs::{FileWriter, LogFs, ReadAt, ReadFs, WriteFs};

#[derive(Debug, Clone, Default)]
struct Inode {
    /// What a reader sees now.
    data: Vec<u8>,
    /// What survives any power cut.
    durable: Vec<u8>,
    /// Writes since the last sync, oldest first: (offset, bytes).
    unsynced: Vec<(u64, Vec<u8>)>,
}

#[derive(Debug, Clone)]
enum DirOp {
    Link { name: String, inode: u64 },
    Rename { from: String, to: String },
    Unlink { name: String },
}

#[derive(Debug, Clone, Default)]
struct Dir {
    names: BTreeMap<String, u64>,
    names_durable: BTreeMap<String, u64>,
    ops_unsynced: Vec<DirOp>,
}

/// One state of the whole disk (what a checkpoint keeps).
#[derive(Debug, Clone, Default)]
pub struct MemState {
    inodes: BTreeMap<u64, Inode>,
    inode_next: u64,
    dirs: BTreeMap<String, Dir>,
}

/// Faults to inject, counted in calls from the moment they are set.
#[derive(Debug, Clone, Default)]
struct Faults {
    sync_data_calls: u64,
    sync_data_fail_at: Option<u64>,
    write_calls: u64,
    write_torn_at: Option<u64>,
    bytes_limit: Option<u64>,
}

#[derive(Debug, Default)]
struct Shared {
    state: MemState,
    faults: Faults,
    checkpoints: Option<Vec<MemState>>,
}

/// The in-memory, fault-injecting backend for tests: one directory of an
/// in-memory disk. Clones share the directory.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    shared: Rc<RefCell<Shared>>,
    dir: String,
}

fn enoent(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

/// ENOSPC, as the kernel reports a full disk.
const ENOSPC: i32 = 28;
/// EIO, as the kernel reports a failed write or sync.
const EIO: i32 = 5;

/// Sets `data[offset..]` to `bytes`, growing the file with zeros as needed.
fn write_into(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let offset = offset as usize;
    if data.len() < offset + bytes.len() {
        data.resize(offset + bytes.len(), 0);
    }
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
}

impl MemFs {
    /// The root directory of a new, empty disk.
    pub fn new() -> MemFs {
        MemFs::default()
    }

    /// Another directory of the same disk (created empty on first use).
    pub fn dir(&self, name: &str) -> MemFs {
        MemFs {
            shared: self.shared.clone(),
            dir: name.to_string(),
        }
    }

    /// Keeps a copy of the state after every mutating call from now on.
    pub fn record_checkpoints(&self) {
        let mut shared = self.shared.borrow_mut();
        let first = shared.state.clone();
        shared.checkpoints = Some(vec![first]);
    }

    /// The states recorded since `record_checkpoints` (the first is the
    /// state when recording began).
    pub fn checkpoints(&self) -> Vec<MemState> {
        self.shared.borrow().checkpoints.clone().unwrap_or_default()
    }

    /// How many checkpoints have been recorded so far.
    pub fn checkpoint_count(&self) -> usize {
        self.shared
            .borrow()
            .checkpoints
            .as_ref()
            .map_or(0, Vec::len)
    }

    /// The `n`-th sync of file data from now (0 = the next; `LogFs::sync_data`
    /// and `FileWriter::sync` both count) fails with EIO.
    pub fn fail_sync_data_at(&self, n: u64) {
        let mut shared = self.shared.borrow_mut();
        shared.faults.sync_data_calls = 0;
        shared.faults.sync_data_fail_at = Some(n);
    }

    /// The `n`-th write from now (`LogFs::write_at` and `FileWriter::append`
    /// both count) stores only the whole sectors of its first half and fails
    /// with EIO (a torn write reported to the writer).
    pub fn tear_write_at(&self, n: u64) {
        let mut shared = self.shared.borrow_mut();
        shared.faults.write_calls = 0;
        shared.faults.write_torn_at = Some(n);
    }

    /// Writes that would grow the disk's files beyond `bytes` in total fail
    /// with ENOSPC; `None` lifts the limit (space was freed).
    pub fn limit_bytes(&self, bytes: impl Into<Option<u64>>) {
        self.shared.borrow_mut().faults.bytes_limit = bytes.into();
    }

    /// The bytes all files of the disk hold now.
    pub fn bytes_used(&self) -> u64 {
        self.shared.borrow().state.bytes_total()
    }

    /// Everything, as a power cut right now could leave it; see [`MemState::crash_image`].
    pub fn crash_image(&self, seed: u64) -> MemFs {
        let image = self.shared.borrow().state.crash_image(seed);
        image.dir(&self.dir)
    }

    /// A copy of what a reader sees now, with everything made durable.
    pub fn snapshot_current(&self) -> MemFs {
        let state = &self.shared.borrow().state;
        let mut copy = MemState {
            inode_next: state.inode_next,
            ..MemState::default()
        };
        for (dir_name, dir) in &state.dirs {
            let mut names = BTreeMap::new();
            for (name, &inode) in &dir.names {
                let data = state.inodes[&inode].data.clone();
                copy.inodes.insert(
                    inode,
                    Inode {
                        durable: data.clone(),
                        data,
                        unsynced: Vec::new(),
                    },
                );
                names.insert(name.clone(), inode);
            }
            copy.dirs.insert(
                dir_name.clone(),
                Dir {
                    names_durable: names.clone(),
                    names,
                    ops_unsynced: Vec::new(),
                },
            );
        }
        MemFs::from_state(copy).dir(&self.dir)
    }

    /// Replaces the bytes of a file as a reader sees them (for damage tests).
    pub fn overwrite(&self, name: &str, offset: u64, bytes: &[u8]) {
        let mut shared = self.shared.borrow_mut();
        let state = &mut shared.state;
        let inode = state.lookup(&self.dir, name).expect("file exists");
        let node = state.inodes.get_mut(&inode).expect("inode exists");
        write_into(&mut node.data, offset, bytes);
        write_into(&mut node.durable, offset, bytes);
    }

    /// The bytes of a file as a reader sees them.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let shared = self.shared.borrow();
        let inode = shared.state.lookup(&self.dir, name)?;
        Some(shared.state.inodes[&inode].data.clone())
    }

    fn from_state(state: MemState) -> MemFs {
        MemFs {
            shared: Rc::new(RefCell::new(Shared {
                state,
                ..Shared::default()
            })),
            dir: String::new(),
        }
    }

    fn mutate<T>(
        &self,
        f: impl FnOnce(&mut MemState, &mut Faults) -> io::Result<T>,
    ) -> io::Result<T> {
        let mut shared = self.shared.borrow_mut();
        let Shared {
            state,
            faults,
            checkpoints,
        } = &mut *shared;
        let result = f(state, faults);
        if let Some(checkpoints) = checkpoints {
            checkpoints.push(state.clone());
        }
        result
    }

    fn names(&self) -> Vec<String> {
        let shared = self.shared.borrow();
        shared
            .state
            .dirs
            .get(&self.dir)
            .map(|dir| dir.names.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Links a new empty inode as `name`, replacing an existing file if asked.
    fn link_new(&self, name: &str, replace: bool) -> io::Result<u64> {
        let dir_name = self.dir.clone();
        self.mutate(|state, _| {
            let inode = state.inode_next;
            let dir = state.dirs.entry(dir_name).or_default();
            if dir.names.contains_key(name) {
                if !replace {
                    return Err(io::Error::new(
                        io::ErrorKind::AlreadyExists,
                        name.to_string(),
                    ));
                }
                dir.ops_unsynced.push(DirOp::Unlink {
                    name: name.to_string(),
                });
            }
            dir.names.insert(name.to_string(), inode);
            dir.ops_unsynced.push(DirOp::Link {
                name: name.to_string(),
                inode,
            });
            state.inode_next += 1;
            state.inodes.insert(inode, Inode::default());
            Ok(inode)
        })
    }

    fn write_inode(&self, inode: u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.mutate(|state, faults| {
            let call = faults.write_calls;
            faults.write_calls += 1;
            let grows = (offset + bytes.len() as u64)
                .saturating_sub(state.inodes[&inode].data.len() as u64);
            if let Some(limit) = faults.bytes_limit {
                if state.bytes_total() + grows > limit {
                    return Err(io::Error::from_raw_os_error(ENOSPC));
                }
            }
            let torn = faults.write_torn_at == Some(call);
            let stored = if torn {
                let half_end = offset + bytes.len() as u64 / 2;
                let kept_end = half_end - half_end % SECTOR_BYTES as u64;
                &bytes[..kept_end.saturating_sub(offset) as usize]
            } else {
                bytes
            };
            let node = state.inodes.get_mut(&inode).expect("open file");
            write_into(&mut node.data, offset, stored);
            node.unsynced.push((offset, stored.to_vec()));
            if torn {
                return Err(io::Error::from_raw_os_error(EIO));
            }
            Ok(())
        })
    }

    fn sync_inode(&self, inode: u64) -> io::Result<()> {
        self.mutate(|state, faults| {
            let call = faults.sync_data_calls;
            faults.sync_data_calls += 1;
            if faults.sync_data_fail_at == Some(call) {
                return Err(io::Error::from_raw_os_error(EIO));
            }
            let node = state.inodes.get_mut(&inode).expect("open file");
            node.durable = node.data.clone();
            node.unsynced.clear();
            Ok(())
        })
    }

    fn rename_inner(&self, from: &str, to: &str, replace: bool) -> io::Result<()> {
        let dir_name = self.dir.clone();
        self.mutate(|state, _| {
            let dir = state.dirs.entry(dir_name).or_default();
            if !replace && dir.names.contains_key(to) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, to.to_string()));
            }
            let inode = dir.names.remove(from).ok_or_else(|| enoent(from))?;
            dir.names.insert(to.to_string(), inode);
            dir.ops_unsynced.push(DirOp::Rename {
                from: from.to_string(),
                to: to.to_string(),
            });
            Ok(())
        })
    }

    fn unlink(&self, name: &str) -> io::Result<()> {
        let dir_name = self.dir.clone();
        self.mutate(|state, _| {
            let dir = state.dirs.entry(dir_name).or_default();
            dir.names.remove(name).ok_or_else(|| enoent(name))?;
            dir.ops_unsynced.push(DirOp::Unlink {
                name: name.to_string(),
            });
            Ok(())
        })
    }

    fn sync_names(&self) -> io::Result<()> {
        let dir_name = self.dir.clone();
        self.mutate(|state, _| {
            let dir = state.dirs.entry(dir_name).or_default();
            dir.names_durable = dir.names.clone();
            dir.ops_unsynced.clear();
            Ok(())
        })
    }

    fn lookup(&self, name: &str) -> io::Result<u64> {
        self.shared
            .borrow()
            .state
            .lookup(&self.dir, name)
            .ok_or_else(|| enoent(name))
    }
}

impl MemState {
    /// Turns a recorded state back into a disk (no unsynced data); the
    /// `MemFs` returned is its root directory (see [`MemFs::dir`]).
    pub fn into_fs(self) -> MemFs {
        MemFs::from_state(self)
    }

    fn lookup(&self, dir: &str, name: &str) -> Option<u64> {
        self.dirs.get(dir)?.names.get(name).copied()
    }

    /// Bytes held by the files that have a name.
    fn bytes_total(&self) -> u64 {
        let mut linked: Vec<u64> = self
            .dirs
            .values()
            .flat_map(|dir| dir.names.values().copied())
            .collect();
        linked.sort_unstable();
        linked.dedup();
        linked
            .iter()
            .map(|inode| self.inodes[inode].data.len() as u64)
            .sum()
    }

    /// One image a power cut could leave, chosen by `seed`: every unsynced
    /// write is lost, kept, or kept in part (a random subset of its sectors,
    /// each whole); in each directory a random prefix of the unsynced
    /// directory operations survives. The `MemFs` returned is the image's
    /// root directory (see [`MemFs::dir`]).
    pub fn crash_image(&self, seed: u64) -> MemFs {
        self.crash_image_with(seed, false)
    }

    /// As [`Self::crash_image`], but a kept sector may also be torn at a byte
    /// boundary (its new bytes up to some point, its old bytes after), which
    /// devices promise never to do within their atomic write unit.
    pub fn crash_image_tearing_sectors(&self, seed: u64) -> MemFs {
        self.crash_image_with(seed, true)
    }

    fn crash_image_with(&self, seed: u64, tear_sectors: bool) -> MemFs {
        let mut rng = seed;
        let mut next = move || {
            rng = mix64(rng);
            rng
        };
        let mut image = MemState {
            inode_next: self.inode_next,
            ..MemState::default()
        };
        for (dir_name, dir) in &self.dirs {
            let mut names = dir.names_durable.clone();
            let kept_ops = (next() % (dir.ops_unsynced.len() as u64 + 1)) as usize;
            for op in &dir.ops_unsynced[..kept_ops] {
                match op {
                    DirOp::Link { name, inode } => {
                        names.insert(name.clone(), *inode);
                    }
                    DirOp::Rename { from, to } => {
                        if let Some(inode) = names.remove(from) {
                            names.insert(to.clone(), inode);
                        }
                    }
                    DirOp::Unlink { name } => {
                        names.remove(name);
                    }
                }
            }
            image.dirs.insert(
                dir_name.clone(),
                Dir {
                    names_durable: names.clone(),
                    names,
                    ops_unsynced: Vec::new(),
                },
            );
        }
        let linked: Vec<u64> = image
            .dirs
            .values()
            .flat_map(|dir| dir.names.values().copied())
            .collect();
        for inode in linked {
            if image.inodes.contains_key(&inode) {
                continue;
            }
            let node = &self.inodes[&inode];
            let mut bytes = node.durable.clone();
            for (offset, write) in &node.unsynced {
                apply_partially(&mut bytes, *offset, write, &mut next, tear_sectors);
            }
            image.inodes.insert(
                inode,
                Inode {
                    data: bytes.clone(),
                    durable: bytes,
                    unsynced: Vec::new(),
                },
            );
        }
        MemFs::from_state(image)
    }
}

/// Applies a subset of one write's sectors, chosen by `next`; with
/// `tear_sectors`, a sector may be kept only up to a byte boundary.
fn apply_partially(
    bytes: &mut Vec<u8>,
    offset: u64,
    write: &[u8],
    next: &mut impl FnMut() -> u64,
    tear_sectors: bool,
) {
    let mode = next() % 4;
    let mut at = 0usize;
    while at < write.len() {
        // Sector boundaries are absolute file offsets.
        let absolute = offset as usize + at;
        let sector_end = (absolute / SECTOR_BYTES + 1) * SECTOR_BYTES;
        let end = (sector_end - offset as usize).min(write.len());
        let keep = match mode {
            0 => 0,
            1 => end - at,
            _ => match next() % 8 {
                0..=3 => 0,
                4..=6 => end - at,
                _ if tear_sectors => (next() % (end - at) as u64) as usize,
                _ => end - at,
            },
        };
        if keep > 0 {
            write_into(bytes, absolute as u64, &write[at..at + keep]);
        }
        at = end;
    }
}

impl LogFs for MemFs {
    type File = u64;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.names())
    }

    async fn create(&self, name: &str) -> io::Result<u64> {
        self.link_new(name, false)
    }

    async fn open(&self, name: &str) -> io::Result<u64> {
        self.lookup(name)
    }

    async fn len(&self, file: &u64) -> io::Result<u64> {
        Ok(self.shared.borrow().state.inodes[file].data.len() as u64)
    }

    async fn write_at(&self, file: &u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.write_inode(*file, offset, bytes)
    }

    async fn read_at(&self, file: &u64, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let shared = self.shared.borrow();
        let data = &shared.state.inodes[file].data;
        let start = (offset as usize).min(data.len());
        let n = buf.len().min(data.len() - start);
        buf[..n].copy_from_slice(&data[start..start + n]);
        Ok(n)
    }

    async fn sync_data(&self, file: &u64) -> io::Result<()> {
        self.sync_inode(*file)
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.rename_inner(from, to, false)
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        self.unlink(name)
    }

    async fn sync_dir(&self) -> io::Result<()> {
        self.sync_names()
    }

    fn display(&self, name: &str) -> String {
        ReadFs::display(self, name)
    }
}

/// A file of a [`MemFs`] as it was when opened for reading.
#[derive(Debug)]
pub struct MemReader {
    bytes: Vec<u8>,
}

impl MemReader {
    /// A reader over bytes held in memory.
    pub fn new(bytes: Vec<u8>) -> MemReader {
        MemReader { bytes }
    }
}

impl ReadAt for MemReader {
    fn len(&self) -> u64 {
        self.bytes.len() as u64
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let start = (offset as usize).min(self.bytes.len());
        let n = buf.len().min(self.bytes.len() - start);
        buf[..n].copy_from_slice(&self.bytes[start..start + n]);
        Ok(n)
    }
}

impl ReadFs for MemFs {
    type Reader = MemReader;

    fn list(&self) -> io::Result<Vec<String>> {
        Ok(self.names())
    }

    fn open_read(&self, name: &str) -> io::Result<MemReader> {
        self.contents(name)
            .map(|bytes| MemReader { bytes })
            .ok_or_else(|| enoent(name))
    }

    fn display(&self, name: &str) -> String {
        if self.dir.is_empty() {
            format!("mem:{name}")
        } else {
            format!("mem:{}/{name}", self.dir)
        }
    }
}

/// A file of a [`MemFs`] opened for appending by [`WriteFs::create_file`].
#[derive(Debug)]
pub struct MemFileWriter {
    fs: MemFs,
    inode: u64,
    at: u64,
}

impl FileWriter for MemFileWriter {
    fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.fs.write_inode(self.inode, self.at, bytes)?;
        self.at += bytes.len() as u64;
        Ok(())
    }

    fn sync(&mut self) -> io::Result<()> {
        self.fs.sync_inode(self.inode)
    }
}

impl WriteFs for MemFs {
    type Writer = MemFileWriter;

    fn create_file(&self, name: &str) -> io::Result<MemFileWriter> {
        let inode = self.link_new(name, true)?;
        Ok(MemFileWriter {
            fs: self.clone(),
            inode,
            at: 0,
        })
    }

    fn rename_file(&self, from: &str, to: &str) -> io::Result<()> {
        self.rename_inner(from, to, true)
    }

    fn remove_file(&self, name: &str) -> io::Result<()> {
        self.unlink(name)
    }

    fn sync_directory(&self) -> io::Result<()> {
        self.sync_names()
    }
}
