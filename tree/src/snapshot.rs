//! Serialising the tree for snapshots, a piece at a time.
//!
//! A snapshot is *fuzzy*: the server writes it in chunks between batches of
//! applied txns, so it is not the tree at any single zxid. It records the zxid
//! applied when it began; recovery loads it and replays the log from the next
//! zxid, and because `apply` is idempotent (see `data_tree`) the result is
//! exactly the tree the server had. Nodes are visited in pre-order (a parent
//! before its children, siblings by name) through a [`SnapshotCursor`] that
//! remembers only the last path written, so it survives any change made
//! between chunks: the walk resumes from the nearest node still present.
//!
//! Body format (jute encoding; the `wal` snapshot file wraps it with its own
//! header, length and checksum):
//!
//! ```text
//! magic     4 bytes "FKTS"
//! version   int 1
//! zxid      long     last applied zxid when the snapshot began
//! sessions  int count, then count × (long session_id, int timeout_ms)
//! nodes     repeated: byte 1, ustring path, buffer data, vector<ACL> acl,
//!           long czxid, long mzxid, long ctime, long mtime, int version,
//!           int cversion (stored: children created), int aversion,
//!           long ephemeral_owner, long pzxid
//! end       byte 0
//! ```
//!
//! Child lists are not stored: loading rebuilds them from the paths.

use std::collections::btree_set::Range;
use std::ops::Bound;

use proto::{read_records, write_records, Acl, DecodeError, Reader, Writer};
use thiserror::Error;

use crate::data_tree::DataTree;
use crate::node::Node;
use crate::path;

const MAGIC: &[u8; 4] = b"FKTS";
const VERSION: i32 = 1;
const NODE_MARKER: u8 = 1;
const END_MARKER: u8 = 0;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum SnapshotError {
    #[error("not a ferrokeeper tree snapshot (bad magic)")]
    BadMagic,
    #[error("unsupported tree snapshot version {0}")]
    UnsupportedVersion(i32),
    #[error("snapshot record undecodable at byte {offset}: {source}")]
    Decode { offset: usize, source: DecodeError },
    #[error("snapshot node {path} has no parent before it")]
    Orphan { path: String },
    #[error("snapshot holds {path} twice")]
    Duplicate { path: String },
    #[error("snapshot ends without its end marker")]
    Unterminated,
}

/// Where a snapshot in progress has got to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotCursor {
    zxid: i64,
    /// The last path written; `None` before the root.
    last: Option<String>,
    done: bool,
}

impl SnapshotCursor {
    pub fn zxid(&self) -> i64 {
        self.zxid
    }

    pub fn is_done(&self) -> bool {
        self.done
    }
}

impl DataTree {
    /// Starts a snapshot: returns its header (magic, zxid, sessions) and the
    /// cursor for [`DataTree::snapshot_chunk`].
    pub fn snapshot_begin(&self) -> (Vec<u8>, SnapshotCursor) {
        let mut bytes = MAGIC.to_vec();
        let mut w = Writer::new();
        w.write_i32(VERSION);
        w.write_i64(self.zxid_applied);
        w.write_i32(i32::try_from(self.sessions.len()).expect("sessions fit in i32"));
        for (session_id, timeout_ms) in &self.sessions {
            w.write_i64(*session_id);
            w.write_i32(*timeout_ms);
        }
        bytes.extend_from_slice(w.as_slice());
        let cursor = SnapshotCursor {
            zxid: self.zxid_applied,
            last: None,
            done: false,
        };
        (bytes, cursor)
    }

    /// Writes the next nodes, stopping once about `bytes_max` bytes are
    /// written; the chunk that reaches the end carries the end marker and
    /// marks the cursor done.
    pub fn snapshot_chunk(&self, cursor: &mut SnapshotCursor, bytes_max: usize) -> Vec<u8> {
        assert!(!cursor.done, "snapshot_chunk after the end");
        let mut w = Writer::with_capacity(bytes_max + 4096);
        let mut walk = match &cursor.last {
            None => {
                let root = self.nodes.get("/").expect("the root always exists");
                write_node(&mut w, "/", root);
                cursor.last = Some("/".to_string());
                vec![("/".to_string(), root.children.range::<str, _>(..))]
            }
            Some(last) => self.resume_walk(last),
        };
        // Within one chunk the tree cannot change, so the walk keeps an
        // iterator per level and looks each node up once.
        while w.len() < bytes_max {
            let Some((parent, children)) = walk.last_mut() else {
                w.write_bool(false);
                cursor.done = true;
                break;
            };
            let Some(child) = children.next() else {
                walk.pop();
                continue;
            };
            let path = path::join(parent, child);
            let node = self.nodes.get(&path).expect("listed children exist");
            write_node(&mut w, &path, node);
            walk.push((path, node.children.range::<str, _>(..)));
        }
        // The loop stops right after writing a node, which is then on top.
        if let (false, Some((path, _))) = (cursor.done, walk.last()) {
            cursor.last = Some(path.clone());
        }
        w.into_inner()
    }

    /// The walk's state right after `last` in pre-order, even if `last` or
    /// some of its ancestors are gone: for each existing ancestor, its
    /// children after the one on the way down; then `last`'s own children.
    fn resume_walk(&self, last: &str) -> Vec<(String, Range<'_, String>)> {
        let mut levels = Vec::new();
        let mut current = last;
        while current != "/" {
            let (parent, name) = path::split(current).expect("snapshot paths are absolute");
            if let Some(node) = self.nodes.get(parent) {
                let after = (Bound::Excluded(name), Bound::Unbounded);
                levels.push((parent.to_string(), node.children.range::<str, _>(after)));
            }
            current = parent;
        }
        levels.reverse();
        if let Some(node) = self.nodes.get(last) {
            levels.push((last.to_string(), node.children.range::<str, _>(..)));
        }
        levels
    }

    /// The whole snapshot in one buffer (tests and tools; the server streams).
    pub fn snapshot_bytes(&self) -> Vec<u8> {
        let (mut bytes, mut cursor) = self.snapshot_begin();
        while !cursor.is_done() {
            bytes.extend(self.snapshot_chunk(&mut cursor, 1 << 20));
        }
        bytes
    }

    /// Loads a snapshot body. Returns the tree and the zxid to replay from
    /// (exclusive). The tree's applied zxid is that zxid. Its hash maps are
    /// keyed from the process's random source, as [`DataTree::new`]'s.
    pub fn from_snapshot(bytes: &[u8]) -> Result<DataTree, SnapshotError> {
        DataTree::from_snapshot_with_hash_seed(bytes, crate::random_hash_seed())
    }

    /// [`DataTree::from_snapshot`] with the hash maps keyed by `hash_seed`.
    pub fn from_snapshot_with_hash_seed(
        bytes: &[u8],
        hash_seed: u64,
    ) -> Result<DataTree, SnapshotError> {
        if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
            return Err(SnapshotError::BadMagic);
        }
        let mut r = Reader::new(&bytes[MAGIC.len()..]);
        let decode = |r: &Reader<'_>, source| SnapshotError::Decode {
            offset: MAGIC.len() + r.offset(),
            source,
        };
        let version = r.read_i32().map_err(|e| decode(&r, e))?;
        if version != VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let mut tree = DataTree::empty(hash_seed);
        tree.zxid_applied = r.read_i64().map_err(|e| decode(&r, e))?;
        let sessions = r
            .read_vec(|r| Ok((r.read_i64()?, r.read_i32()?)))
            .map_err(|e| decode(&r, e))?;
        tree.sessions = sessions.into_iter().collect();
        loop {
            let marker = r.read_bool().map_err(|_| SnapshotError::Unterminated)?;
            if !marker {
                break;
            }
            let (path, mut node, acl) = read_node(&mut r).map_err(|e| decode(&r, e))?;
            node.acl = tree.intern_acl(&acl);
            load_node(&mut tree, path, node)?;
        }
        r.finish().map_err(|e| decode(&r, e))?;
        Ok(tree)
    }
}

fn write_node(w: &mut Writer, path: &str, node: &Node) {
    w.write_bool(NODE_MARKER != 0);
    w.write_ustring(path);
    w.write_buffer_opt(node.data.as_deref());
    write_records(w, &node.acl);
    w.write_i64(node.czxid);
    w.write_i64(node.mzxid);
    w.write_i64(node.ctime);
    w.write_i64(node.mtime);
    w.write_i32(node.version);
    w.write_i32(node.cversion);
    w.write_i32(node.aversion);
    w.write_i64(node.ephemeral_owner);
    w.write_i64(node.pzxid);
}

fn read_node(r: &mut Reader<'_>) -> Result<(String, Node, Vec<Acl>), DecodeError> {
    let path = r.read_ustring()?;
    let data = r.read_buffer_opt()?.map(<[u8]>::to_vec);
    let acl = read_records(r)?;
    let mut node = Node::new(data, Vec::new().into(), 0, 0, 0);
    node.czxid = r.read_i64()?;
    node.mzxid = r.read_i64()?;
    node.ctime = r.read_i64()?;
    node.mtime = r.read_i64()?;
    node.version = r.read_i32()?;
    node.cversion = r.read_i32()?;
    node.aversion = r.read_i32()?;
    node.ephemeral_owner = r.read_i64()?;
    node.pzxid = r.read_i64()?;
    Ok((path, node, acl))
}

fn load_node(tree: &mut DataTree, path: String, node: Node) -> Result<(), SnapshotError> {
    if tree.nodes.contains_key(&path) {
        return Err(SnapshotError::Duplicate { path });
    }
    if path != "/" {
        let orphan = || SnapshotError::Orphan { path: path.clone() };
        let (parent, name) = path::split(&path).ok_or_else(orphan)?;
        let parent = tree.nodes.get_mut(parent).ok_or_else(orphan)?;
        parent.children.insert(name.to_string());
    }
    tree.insert_node(path, node);
    Ok(())
}

const _: () = assert!(
    NODE_MARKER == 1 && END_MARKER == 0,
    "markers are jute booleans"
);
