//! One znode and how its Stat is reported.

use std::collections::BTreeSet;

use std::sync::Arc;

use proto::ops::Data;
use proto::{Acl, Stat};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// `ephemeralOwner` of a container node.
pub const CONTAINER_OWNER: i64 = i64::MIN;
/// High byte of a TTL node's `ephemeralOwner`; the TTL is in the low 40 bits.
const EXTENDED_MASK: i64 = 0xFF00_0000_0000_0000_u64 as i64;
/// Largest TTL a node may have (40 bits of milliseconds).
pub const TTL_MAX_MS: i64 = (1 << 40) - 1;

/// What `ephemeralOwner` says a node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnerKind {
    Persistent,
    Container,
    Ttl(i64),
    Session(i64),
}

pub fn owner_kind(owner: i64) -> OwnerKind {
    if owner == 0 {
        OwnerKind::Persistent
    } else if owner == CONTAINER_OWNER {
        OwnerKind::Container
    } else if owner & EXTENDED_MASK == EXTENDED_MASK {
        OwnerKind::Ttl(owner & TTL_MAX_MS)
    } else {
        OwnerKind::Session(owner)
    }
}

/// The `ephemeralOwner` of a TTL node.
pub fn ttl_owner(ttl_ms: i64) -> i64 {
    assert!(
        ttl_ms > 0 && ttl_ms <= TTL_MAX_MS,
        "ttl checked before encoding"
    );
    EXTENDED_MASK | ttl_ms
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// `None` when the client wrote jute's null buffer; read back as null.
    pub data: Data,
    /// Shared: nodes with equal ACLs hold one copy (see `DataTree::intern_acl`).
    pub acl: Arc<[Acl]>,
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    /// Child creates, as ZooKeeper stores it. Reported as
    /// `2 * cversion - numChildren`, which counts deletes too (DataNode.copyStat),
    /// while sequential names use the stored count.
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub pzxid: i64,
    pub children: BTreeSet<String>,
}

impl Node {
    pub fn new(data: Data, acl: Arc<[Acl]>, zxid: i64, time_ms: i64, ephemeral_owner: i64) -> Node {
        Node {
            data,
            acl,
            czxid: zxid,
            mzxid: zxid,
            ctime: time_ms,
            mtime: time_ms,
            version: 0,
            cversion: 0,
            aversion: 0,
            ephemeral_owner,
            pzxid: zxid,
            children: BTreeSet::new(),
        }
    }

    pub fn stat(&self) -> Stat {
        let num_children = self.children.len() as i32;
        Stat {
            czxid: self.czxid,
            mzxid: self.mzxid,
            ctime: self.ctime,
            mtime: self.mtime,
            version: self.version,
            cversion: self.cversion.wrapping_mul(2).wrapping_sub(num_children),
            aversion: self.aversion,
            ephemeral_owner: self.client_ephemeral_owner(),
            data_length: self.data_len() as i32,
            num_children,
            pzxid: self.pzxid,
        }
    }

    pub fn data_len(&self) -> usize {
        self.data.as_ref().map_or(0, Vec::len)
    }

    /// What clients see as `ephemeralOwner`: the owning session, or 0 for
    /// persistent, container and TTL nodes (DataNode.getClientEphemeralOwner).
    pub fn client_ephemeral_owner(&self) -> i64 {
        match owner_kind(self.ephemeral_owner) {
            OwnerKind::Session(session_id) => session_id,
            OwnerKind::Persistent | OwnerKind::Container | OwnerKind::Ttl(_) => 0,
        }
    }

    /// A 64-bit digest (xxh3) of the node's path, data, ACL and stored stat
    /// (children are covered by their own digests). The tree digest is the
    /// wrapping sum of these, so it can be kept up to date change by change.
    pub fn digest(&self, path: &str) -> u64 {
        // One-shot hashes of each part with distinct seeds, combined: cheaper
        // than streaming the parts through one hasher.
        let mut fixed = [0u8; 6 * 8 + 3 * 4 + 1];
        let longs = [
            self.czxid,
            self.mzxid,
            self.ctime,
            self.mtime,
            self.ephemeral_owner,
            self.pzxid,
        ];
        let ints = [self.version, self.cversion, self.aversion];
        for (slot, value) in fixed.chunks_exact_mut(8).zip(longs) {
            slot.copy_from_slice(&value.to_be_bytes());
        }
        for (slot, value) in fixed[48..60].chunks_exact_mut(4).zip(ints) {
            slot.copy_from_slice(&value.to_be_bytes());
        }
        fixed[60] = u8::from(self.data.is_some());
        let mut digest = xxh3_64_with_seed(path.as_bytes(), 1)
            .wrapping_mul(3)
            .wrapping_add(xxh3_64_with_seed(
                self.data.as_deref().unwrap_or_default(),
                2,
            ))
            .wrapping_mul(3)
            .wrapping_add(xxh3_64_with_seed(&fixed, 3));
        for entry in self.acl.iter() {
            digest = digest
                .wrapping_mul(3)
                .wrapping_add(xxh3_64_with_seed(
                    entry.id.scheme.as_bytes(),
                    entry.perms as u64,
                ))
                .wrapping_add(xxh3_64_with_seed(entry.id.id.as_bytes(), 4));
        }
        digest
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reported_cversion_counts_creates_and_deletes() {
        // ZooKeeper: /zookeeper (two children created at start-up, stored cversion 0) reports -2.
        let mut node = Node::new(None, Vec::new().into(), 0, 0, 0);
        node.children.insert("config".into());
        node.children.insert("quota".into());
        assert_eq!(node.stat().cversion, -2);
        // One child created then deleted: stored 1, reported 2.
        let mut node = Node::new(None, Vec::new().into(), 0, 0, 0);
        node.cversion = 1;
        assert_eq!(node.stat().cversion, 2);
    }

    #[test]
    fn owner_kinds_decode() {
        assert_eq!(owner_kind(0), OwnerKind::Persistent);
        assert_eq!(owner_kind(CONTAINER_OWNER), OwnerKind::Container);
        assert_eq!(owner_kind(ttl_owner(1)), OwnerKind::Ttl(1));
        assert_eq!(ttl_owner(1), 0xff00_0000_0000_0001_u64 as i64);
        assert_eq!(
            owner_kind(0x0100_0000_0000_0001),
            OwnerKind::Session(0x0100_0000_0000_0001)
        );
    }
}
