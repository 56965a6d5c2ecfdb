//! An in-memory directory that remembers what is durable, injects faults, and
//! produces the images a power cut could leave behind.
//!
//! The model, per file: `durable` bytes (as of the last `sync_data`) plus the
//! writes issued since, in order. Per directory: the names as of the last
//! `sync_dir` plus the creations, renames and removals since, in order. A
//! power cut keeps, for every unsynced write, any subset of its 512-byte
//! sectors (one of them possibly torn at a byte boundary), and a prefix of the
//! unsynced directory operations. A file whose name did not survive is gone.
//!
//! With [`MemFs::record_checkpoints`] on, the state after every mutating call
//! is kept, so a test can crash the system at every point of a recorded run.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io;
use std::rc::Rc;

use crate::format::{mix64, SECTOR_BYTES};
use crate::fs::{LogFs, ReadAt, ReadFs};

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

/// One state of the whole directory (what a checkpoint keeps).
#[derive(Debug, Clone, Default)]
pub struct MemState {
    inodes: BTreeMap<u64, Inode>,
    inode_next: u64,
    names: BTreeMap<String, u64>,
    names_durable: BTreeMap<String, u64>,
    dir_ops_unsynced: Vec<DirOp>,
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

/// The in-memory, fault-injecting backend for tests. Clones share one directory.
#[derive(Debug, Clone, Default)]
pub struct MemFs {
    shared: Rc<RefCell<Shared>>,
}

fn enoent(name: &str) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("{name}: no such file"))
}

/// Sets `data[offset..]` to `bytes`, growing the file with zeros as needed.
fn write_into(data: &mut Vec<u8>, offset: u64, bytes: &[u8]) {
    let offset = offset as usize;
    if data.len() < offset + bytes.len() {
        data.resize(offset + bytes.len(), 0);
    }
    data[offset..offset + bytes.len()].copy_from_slice(bytes);
}

impl MemFs {
    pub fn new() -> MemFs {
        MemFs::default()
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

    /// The `n`-th `sync_data` call from now (0 = the next) fails with EIO.
    pub fn fail_sync_data_at(&self, n: u64) {
        let mut shared = self.shared.borrow_mut();
        shared.faults.sync_data_calls = 0;
        shared.faults.sync_data_fail_at = Some(n);
    }

    /// The `n`-th `write_at` call from now stores only the first half of its
    /// bytes and fails with EIO (a torn write reported to the writer).
    pub fn tear_write_at(&self, n: u64) {
        let mut shared = self.shared.borrow_mut();
        shared.faults.write_calls = 0;
        shared.faults.write_torn_at = Some(n);
    }

    /// Writes that would grow the files beyond `bytes` in total fail with ENOSPC.
    pub fn limit_bytes(&self, bytes: u64) {
        self.shared.borrow_mut().faults.bytes_limit = Some(bytes);
    }

    /// Everything, as a power cut right now could leave it; see [`MemState::crash_image`].
    pub fn crash_image(&self, seed: u64) -> MemFs {
        self.shared.borrow().state.crash_image(seed)
    }

    /// A copy of what a reader sees now, with everything made durable.
    pub fn snapshot_current(&self) -> MemFs {
        let state = &self.shared.borrow().state;
        let mut copy = MemState {
            inode_next: state.inode_next,
            ..MemState::default()
        };
        for (name, &inode) in &state.names {
            let data = state.inodes[&inode].data.clone();
            copy.inodes.insert(
                inode,
                Inode {
                    durable: data.clone(),
                    data,
                    unsynced: Vec::new(),
                },
            );
            copy.names.insert(name.clone(), inode);
        }
        copy.names_durable = copy.names.clone();
        MemFs::from_state(copy)
    }

    /// Replaces the bytes of a file as a reader sees them (for damage tests).
    pub fn overwrite(&self, name: &str, offset: u64, bytes: &[u8]) {
        let mut shared = self.shared.borrow_mut();
        let state = &mut shared.state;
        let inode = *state.names.get(name).expect("file exists");
        let node = state.inodes.get_mut(&inode).expect("inode exists");
        write_into(&mut node.data, offset, bytes);
        write_into(&mut node.durable, offset, bytes);
    }

    /// The bytes of a file as a reader sees them.
    pub fn contents(&self, name: &str) -> Option<Vec<u8>> {
        let shared = self.shared.borrow();
        let inode = shared.state.names.get(name)?;
        Some(shared.state.inodes[inode].data.clone())
    }

    fn from_state(state: MemState) -> MemFs {
        MemFs {
            shared: Rc::new(RefCell::new(Shared {
                state,
                ..Shared::default()
            })),
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
}

impl MemState {
    /// Turns a recorded state back into a directory (no unsynced data).
    pub fn into_fs(self) -> MemFs {
        MemFs::from_state(self)
    }

    fn bytes_total(&self) -> u64 {
        self.inodes
            .values()
            .map(|inode| inode.data.len() as u64)
            .sum()
    }

    /// One image a power cut could leave, chosen by `seed`: every unsynced
    /// write is lost, kept, or kept in part (a random subset of its sectors,
    /// one possibly torn mid-sector); a random prefix of the unsynced directory
    /// operations survives.
    pub fn crash_image(&self, seed: u64) -> MemFs {
        let mut rng = seed;
        let mut next = move || {
            rng = mix64(rng);
            rng
        };
        let mut names = self.names_durable.clone();
        let kept_ops = (next() % (self.dir_ops_unsynced.len() as u64 + 1)) as usize;
        for op in &self.dir_ops_unsynced[..kept_ops] {
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
        let mut image = MemState {
            inode_next: self.inode_next,
            ..MemState::default()
        };
        for (name, inode) in names {
            let node = &self.inodes[&inode];
            let mut bytes = node.durable.clone();
            for (offset, write) in &node.unsynced {
                apply_partially(&mut bytes, *offset, write, &mut next);
            }
            image.inodes.insert(
                inode,
                Inode {
                    data: bytes.clone(),
                    durable: bytes,
                    unsynced: Vec::new(),
                },
            );
            image.names.insert(name, inode);
        }
        image.names_durable = image.names.clone();
        MemFs::from_state(image)
    }
}

/// Applies a subset of one write's sectors, chosen by `next`.
fn apply_partially(bytes: &mut Vec<u8>, offset: u64, write: &[u8], next: &mut impl FnMut() -> u64) {
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
                _ => (next() % (end - at) as u64) as usize,
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
        Ok(self.shared.borrow().state.names.keys().cloned().collect())
    }

    async fn create(&self, name: &str) -> io::Result<u64> {
        self.mutate(|state, _| {
            if state.names.contains_key(name) {
                return Err(io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    name.to_string(),
                ));
            }
            let inode = state.inode_next;
            state.inode_next += 1;
            state.inodes.insert(inode, Inode::default());
            state.names.insert(name.to_string(), inode);
            state.dir_ops_unsynced.push(DirOp::Link {
                name: name.to_string(),
                inode,
            });
            Ok(inode)
        })
    }

    async fn open(&self, name: &str) -> io::Result<u64> {
        self.shared
            .borrow()
            .state
            .names
            .get(name)
            .copied()
            .ok_or_else(|| enoent(name))
    }

    async fn len(&self, file: &u64) -> io::Result<u64> {
        Ok(self.shared.borrow().state.inodes[file].data.len() as u64)
    }

    async fn write_at(&self, file: &u64, offset: u64, bytes: &[u8]) -> io::Result<()> {
        self.mutate(|state, faults| {
            let call = faults.write_calls;
            faults.write_calls += 1;
            let grows =
                (offset + bytes.len() as u64).saturating_sub(state.inodes[file].data.len() as u64);
            if let Some(limit) = faults.bytes_limit {
                if state.bytes_total() + grows > limit {
                    return Err(io::Error::from_raw_os_error(28)); // ENOSPC
                }
            }
            let torn = faults.write_torn_at == Some(call);
            let stored = if torn {
                &bytes[..bytes.len() / 2]
            } else {
                bytes
            };
            let node = state.inodes.get_mut(file).expect("open file");
            write_into(&mut node.data, offset, stored);
            node.unsynced.push((offset, stored.to_vec()));
            if torn {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            Ok(())
        })
    }

    async fn sync_data(&self, file: &u64) -> io::Result<()> {
        self.mutate(|state, faults| {
            let call = faults.sync_data_calls;
            faults.sync_data_calls += 1;
            if faults.sync_data_fail_at == Some(call) {
                return Err(io::Error::from_raw_os_error(5)); // EIO
            }
            let node = state.inodes.get_mut(file).expect("open file");
            node.durable = node.data.clone();
            node.unsynced.clear();
            Ok(())
        })
    }

    async fn rename(&self, from: &str, to: &str) -> io::Result<()> {
        self.mutate(|state, _| {
            if state.names.contains_key(to) {
                return Err(io::Error::new(io::ErrorKind::AlreadyExists, to.to_string()));
            }
            let inode = state.names.remove(from).ok_or_else(|| enoent(from))?;
            state.names.insert(to.to_string(), inode);
            state.dir_ops_unsynced.push(DirOp::Rename {
                from: from.to_string(),
                to: to.to_string(),
            });
            Ok(())
        })
    }

    async fn remove(&self, name: &str) -> io::Result<()> {
        self.mutate(|state, _| {
            state.names.remove(name).ok_or_else(|| enoent(name))?;
            state.dir_ops_unsynced.push(DirOp::Unlink {
                name: name.to_string(),
            });
            Ok(())
        })
    }

    async fn sync_dir(&self) -> io::Result<()> {
        self.mutate(|state, _| {
            state.names_durable = state.names.clone();
            state.dir_ops_unsynced.clear();
            Ok(())
        })
    }

    fn display(&self, name: &str) -> String {
        format!("mem:{name}")
    }
}

/// A file of a [`MemFs`] as it was when opened for reading.
#[derive(Debug)]
pub struct MemReader {
    bytes: Vec<u8>,
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
        LogFs::list(self)
    }

    fn open_read(&self, name: &str) -> io::Result<MemReader> {
        self.contents(name)
            .map(|bytes| MemReader { bytes })
            .ok_or_else(|| enoent(name))
    }

    fn display(&self, name: &str) -> String {
        format!("mem:{name}")
    }
}
