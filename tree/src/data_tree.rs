//! The data tree: znodes by path, the session table, ephemeral, container
//! and TTL indexes, watches, and the running tree digest.
//!
//! Changes arrive only as txns through [`DataTree::apply`], in zxid order.
//! Applying is idempotent so that replaying the log over a fuzzy snapshot
//! (one taken while txns kept being applied) converges on the same tree:
//!
//! - create on an existing node fails with NodeExists, but still raises the
//!   parent's cversion to the txn's value, moves its pzxid and makes sure the
//!   parent lists the node (it may have been captured under an earlier
//!   incarnation of the parent);
//! - delete of a missing node fails with NoNode after moving the parent's
//!   pzxid forward (never backwards: ZOOKEEPER-3144/3145);
//! - setData and setACL carry the resulting version, not an increment.
//!
//! Reads ([`DataTree::get_data`] and friends) check ACLs and register watches
//! as ZooKeeper's FinalRequestProcessor does.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proto::ops::Data;
use proto::{
    perms, Acl, AddWatchMode, ErrorCode, EventType, NullAt, Nulls, Stat, WatchList, WatcherType,
};

use crate::acl;
use crate::node::{owner_kind, Node, OwnerKind};
use crate::path;
use crate::prepare::Overlay;
use crate::txn::{Txn, TxnHeader};
use crate::watch::{WatchEvent, WatchManager};
use crate::{HashMap, HashSet};

/// Who is asking: the session and every identity its connection proved.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub session_id: i64,
    pub auth: &'a [proto::Id],
}

/// The outcome of one applied txn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TxnResult {
    SessionCreated,
    SessionClosed,
    Created {
        path: String,
        stat: Stat,
    },
    Deleted,
    DataSet {
        stat: Stat,
    },
    AclSet {
        stat: Stat,
    },
    Checked,
    Multi(Vec<MultiOpResult>),
    /// A logged refusal (`Txn::Failed`): the codes for its reply.
    Failed(Vec<ErrorCode>),
    /// A request refused as a whole (`Txn::Refused`): a plain error reply.
    Refused(ErrorCode),
}

/// The outcome of one op inside an applied multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOpResult {
    Created { path: String, stat: Stat },
    Deleted,
    DataSet { stat: Stat },
    Checked,
    Error(ErrorCode),
}

/// What [`DataTree::apply`] did: the result for the client (an error only on
/// replay, where ZooKeeper ignores it too) and the watch events it fired.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub result: Result<TxnResult, ErrorCode>,
    pub events: Vec<WatchEvent>,
}

#[derive(Debug, Clone)]
pub struct DataTree {
    pub(crate) nodes: HashMap<String, Node>,
    /// Session id → paths of its ephemeral nodes.
    pub(crate) ephemerals: HashMap<i64, BTreeSet<String>>,
    pub(crate) containers: BTreeSet<String>,
    pub(crate) ttls: BTreeSet<String>,
    /// Session id → negotiated timeout (ms): the durable part of each session.
    pub(crate) sessions: BTreeMap<i64, i32>,
    pub watches: WatchManager,
    pub(crate) zxid_applied: i64,
    /// Wrapping sum of every node's digest.
    pub(crate) digest: u64,
    /// Sum of path and data lengths (ZooKeeper's approximate data size).
    pub(crate) data_bytes: u64,
    pub(crate) extended_types_enabled: bool,
    /// Authentication providers beyond ip and digest (which ACL schemes are valid).
    pub(crate) providers: crate::acl::Providers,
    /// Changes prepared but not yet applied (see `prepare`).
    pub(crate) overlay: Overlay,
    /// The largest txn `prepare` may produce.
    pub(crate) txn_bytes_max: usize,
    /// Interned ACL lists (see `intern_acl`).
    pub(crate) acls: HashSet<Arc<[Acl]>>,
    pub(crate) acls_after_sweep: usize,
    /// Keys every hash map of this tree (see [`crate::HashMap`]).
    pub(crate) hash_seed: u64,
}

impl Default for DataTree {
    fn default() -> Self {
        Self::new()
    }
}

impl DataTree {
    /// A fresh tree as ZooKeeper starts one: `/`, `/zookeeper`,
    /// `/zookeeper/quota` and the read-only `/zookeeper/config`, its hash
    /// maps keyed from the process's random source. Outputs do not depend on
    /// the seed; [`DataTree::with_hash_seed`] also makes the maps' layout
    /// reproducible.
    pub fn new() -> DataTree {
        DataTree::with_hash_seed(crate::random_hash_seed())
    }

    /// [`DataTree::new`] with its hash maps keyed by `hash_seed`: servers
    /// pass a random seed (crafted paths cannot collide without knowing it),
    /// simulators the run's seed.
    pub fn with_hash_seed(hash_seed: u64) -> DataTree {
        let mut tree = DataTree::empty(hash_seed);
        let mut root = Node::new(Some(Vec::new()), Acl::open_unsafe().into(), 0, 0, 0);
        root.children.insert("zookeeper".into());
        let mut zookeeper = Node::new(Some(Vec::new()), Acl::open_unsafe().into(), 0, 0, 0);
        zookeeper.children.insert("quota".into());
        zookeeper.children.insert("config".into());
        let quota = Node::new(Some(Vec::new()), Acl::open_unsafe().into(), 0, 0, 0);
        let read_only = vec![Acl {
            perms: perms::READ,
            id: proto::Id::new("world", "anyone"),
        }];
        let mut config = Node::new(Some(Vec::new()), read_only.into(), 0, 0, 0);
        // DataTree.addConfigNode sets the ACL with version -1, which becomes the aversion.
        config.aversion = -1;
        for (path, node) in [
            ("/", root),
            ("/zookeeper", zookeeper),
            ("/zookeeper/quota", quota),
            ("/zookeeper/config", config),
        ] {
            tree.insert_node(path.to_string(), node);
        }
        tree
    }

    /// A tree with no nodes at all (snapshot loading fills it).
    pub(crate) fn empty(hash_seed: u64) -> DataTree {
        let hasher = crate::hasher(hash_seed);
        DataTree {
            nodes: HashMap::with_hasher(hasher.clone()),
            ephemerals: HashMap::with_hasher(hasher.clone()),
            containers: BTreeSet::new(),
            ttls: BTreeSet::new(),
            sessions: BTreeMap::new(),
            watches: WatchManager::with_hash_seed(hash_seed),
            zxid_applied: 0,
            digest: 0,
            data_bytes: 0,
            extended_types_enabled: false,
            providers: crate::acl::Providers::default(),
            overlay: Overlay::with_hash_seed(hash_seed),
            txn_bytes_max: usize::MAX,
            acls: HashSet::with_hasher(hasher),
            acls_after_sweep: 0,
            hash_seed,
        }
    }

    /// The seed keying this tree's hash maps.
    pub fn hash_seed(&self) -> u64 {
        self.hash_seed
    }

    pub fn set_extended_types_enabled(&mut self, enabled: bool) {
        self.extended_types_enabled = enabled;
    }

    /// The authentication providers the server has beyond ip and digest
    /// (ACLs on other schemes are INVALIDACL).
    pub fn set_providers(&mut self, providers: crate::acl::Providers) {
        self.providers = providers;
    }

    /// The providers set by [`DataTree::set_providers`] (for ACL checks
    /// made outside the tree, such as whether a watch event may be delivered).
    pub fn providers(&self) -> crate::acl::Providers {
        self.providers
    }

    pub fn last_processed_zxid(&self) -> i64 {
        self.zxid_applied
    }

    /// The digest of every node; equal trees have equal digests.
    pub fn digest(&self) -> u64 {
        self.digest
    }

    /// ZooKeeper's znode count, which counts the root twice (as "" and "/").
    pub fn node_count(&self) -> usize {
        self.nodes.len() + 1
    }

    pub fn approximate_data_size(&self) -> u64 {
        self.data_bytes
    }

    pub fn ephemeral_count(&self) -> usize {
        self.ephemerals.values().map(BTreeSet::len).sum()
    }

    /// Every live session with its timeout, sorted by id.
    pub fn sessions(&self) -> impl Iterator<Item = (i64, i32)> + '_ {
        self.sessions.iter().map(|(id, timeout)| (*id, *timeout))
    }

    pub fn has_session(&self, session_id: i64) -> bool {
        self.sessions.contains_key(&session_id)
    }

    pub fn node(&self, path: &str) -> Option<&Node> {
        self.nodes.get(path)
    }

    /// Every node with its path, sorted by path (it collects and sorts:
    /// for tools and tests, not the request path).
    pub fn nodes(&self) -> impl Iterator<Item = (&str, &Node)> {
        let mut nodes: Vec<(&str, &Node)> = self
            .nodes
            .iter()
            .map(|(path, node)| (path.as_str(), node))
            .collect();
        nodes.sort_unstable_by_key(|(path, _)| *path);
        nodes.into_iter()
    }

    // ----- applying txns --------------------------------------------------------

    /// Applies one txn. Live, a txn from `prepare` always succeeds; on replay
    /// errors are expected and harmless (see the module docs).
    pub fn apply(&mut self, header: &TxnHeader, txn: &Txn) -> Applied {
        let mut events = Vec::new();
        let result = self.apply_one(header, txn, &mut events);
        self.zxid_applied = self.zxid_applied.max(header.zxid);
        self.overlay.applied(header.zxid);
        Applied { result, events }
    }

    fn apply_one(
        &mut self,
        header: &TxnHeader,
        txn: &Txn,
        events: &mut Vec<WatchEvent>,
    ) -> Result<TxnResult, ErrorCode> {
        let zxid = header.zxid;
        match txn {
            Txn::CreateSession { timeout_ms } => {
                self.sessions.insert(header.session_id, *timeout_ms);
                Ok(TxnResult::SessionCreated)
            }
            Txn::CloseSession { paths } => {
                for path in paths {
                    // Live, every path is this session's ephemeral. On replay a
                    // path may already be gone (its parent's pzxid must still
                    // move: ZOOKEEPER-3145) or hold a later incarnation from
                    // the fuzzy snapshot, which goes too: its own create comes
                    // later in the log and brings it back.
                    let _ = self.delete_node(path, zxid, events);
                }
                self.sessions.remove(&header.session_id);
                self.watches.remove_session(header.session_id);
                Ok(TxnResult::SessionClosed)
            }
            Txn::Create {
                path,
                data,
                acl,
                ephemeral_owner,
                parent_cversion,
            } => {
                let created = NewNode {
                    path,
                    data,
                    acl,
                    ephemeral_owner: *ephemeral_owner,
                    parent_cversion: *parent_cversion,
                };
                let stat = self.create_node(&created, zxid, header.time_ms, events)?;
                Ok(TxnResult::Created {
                    path: path.clone(),
                    stat,
                })
            }
            Txn::Delete { path } => {
                self.delete_node(path, zxid, events)?;
                Ok(TxnResult::Deleted)
            }
            Txn::SetData {
                path,
                data,
                version,
            } => {
                let stat = self.set_data(path, data, *version, zxid, header.time_ms, events)?;
                Ok(TxnResult::DataSet { stat })
            }
            Txn::SetAcl { path, acl, version } => {
                let stat = self.set_acl(path, acl, *version)?;
                Ok(TxnResult::AclSet { stat })
            }
            Txn::Check { .. } => Ok(TxnResult::Checked),
            Txn::Refused { code } => Ok(TxnResult::Refused(
                ErrorCode::from_code(*code).unwrap_or(ErrorCode::SystemError),
            )),
            Txn::Failed { codes } => Ok(TxnResult::Failed(
                codes
                    .iter()
                    .map(|code| ErrorCode::from_code(*code).unwrap_or(ErrorCode::SystemError))
                    .collect(),
            )),
            Txn::Multi(txns) => {
                let results = txns
                    .iter()
                    .map(|sub| match self.apply_one(header, sub, events) {
                        Ok(TxnResult::Created { path, stat }) => {
                            MultiOpResult::Created { path, stat }
                        }
                        Ok(TxnResult::DataSet { stat }) => MultiOpResult::DataSet { stat },
                        Ok(TxnResult::Deleted) => MultiOpResult::Deleted,
                        Ok(_) => MultiOpResult::Checked,
                        Err(code) => MultiOpResult::Error(code),
                    })
                    .collect();
                Ok(TxnResult::Multi(results))
            }
        }
    }

    fn create_node(
        &mut self,
        new: &NewNode<'_>,
        zxid: i64,
        time_ms: i64,
        events: &mut Vec<WatchEvent>,
    ) -> Result<Stat, ErrorCode> {
        let (parent_path, name) = path::split(new.path).ok_or(ErrorCode::BadArguments)?;
        let exists = self.nodes.contains_key(new.path);
        self.update_node(parent_path, |parent| {
            if new.parent_cversion > parent.cversion {
                parent.cversion = new.parent_cversion;
                parent.pzxid = zxid;
            }
            // On replay the node may exist already, captured by the fuzzy
            // snapshot under an earlier incarnation of this parent that the
            // replay has since deleted and re-created: link it again.
            parent.children.insert(name.to_string());
        })?;
        if exists {
            return Err(ErrorCode::NodeExists);
        }
        let node = Node::new(
            new.data.clone(),
            self.intern_acl(new.acl),
            zxid,
            time_ms,
            new.ephemeral_owner,
        );
        let stat = node.stat();
        self.insert_node(new.path.to_string(), node);
        events.extend(
            self.watches
                .trigger(new.path, EventType::NodeCreated, zxid, new.acl),
        );
        self.trigger_children_changed(parent_path, zxid, events);
        Ok(stat)
    }

    fn delete_node(
        &mut self,
        path: &str,
        zxid: i64,
        events: &mut Vec<WatchEvent>,
    ) -> Result<(), ErrorCode> {
        let (parent_path, name) = path::split(path).ok_or(ErrorCode::BadArguments)?;
        let exists = self.nodes.contains_key(path);
        self.update_node(parent_path, |parent| {
            parent.children.remove(name);
            if zxid > parent.pzxid {
                parent.pzxid = zxid;
            }
        })?;
        if !exists {
            return Err(ErrorCode::NoNode);
        }
        let node = self.remove_node(path);
        events.extend(
            self.watches
                .trigger(path, EventType::NodeDeleted, zxid, &node.acl),
        );
        self.trigger_children_changed(parent_path, zxid, events);
        Ok(())
    }

    fn trigger_children_changed(
        &mut self,
        parent_path: &str,
        zxid: i64,
        events: &mut Vec<WatchEvent>,
    ) {
        let acl = self
            .nodes
            .get(parent_path)
            .map_or(&[][..], |parent| &parent.acl);
        let changed = EventType::NodeChildrenChanged;
        events.extend(self.watches.trigger(parent_path, changed, zxid, acl));
    }

    fn set_data(
        &mut self,
        path: &str,
        data: &Data,
        version: i32,
        zxid: i64,
        time_ms: i64,
        events: &mut Vec<WatchEvent>,
    ) -> Result<Stat, ErrorCode> {
        let old_length = self.nodes.get(path).ok_or(ErrorCode::NoNode)?.data_len();
        let new_length = data.as_ref().map_or(0, Vec::len);
        self.data_bytes = self.data_bytes - old_length as u64 + new_length as u64;
        let stat = self.update_node(path, |node| {
            node.data = data.clone();
            node.version = version;
            node.mzxid = zxid;
            node.mtime = time_ms;
            node.stat()
        })?;
        let acl = &self.nodes[path].acl;
        events.extend(
            self.watches
                .trigger(path, EventType::NodeDataChanged, zxid, acl),
        );
        Ok(stat)
    }

    fn set_acl(&mut self, path: &str, acl: &[Acl], version: i32) -> Result<Stat, ErrorCode> {
        let acl = self.intern_acl(acl);
        self.update_node(path, |node| {
            node.acl = acl;
            node.aversion = version;
            node.stat()
        })
    }

    /// The shared copy of an ACL list, so that a million nodes with the same
    /// ACL hold it once (ZooKeeper's ReferenceCountedACLCache). Copies no
    /// node uses any more are dropped whenever the table has doubled.
    pub(crate) fn intern_acl(&mut self, acl: &[Acl]) -> Arc<[Acl]> {
        if let Some(shared) = self.acls.get(acl) {
            return Arc::clone(shared);
        }
        if self.acls.len() >= self.acls_after_sweep.max(64) * 2 {
            self.acls.retain(|shared| Arc::strong_count(shared) > 1);
            self.acls_after_sweep = self.acls.len();
        }
        let shared: Arc<[Acl]> = acl.into();
        self.acls.insert(Arc::clone(&shared));
        shared
    }

    /// Changes a node in place, keeping the tree digest up to date.
    fn update_node<T>(
        &mut self,
        path: &str,
        change: impl FnOnce(&mut Node) -> T,
    ) -> Result<T, ErrorCode> {
        let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
        let before = node.digest(path);
        let result = change(node);
        let after = node.digest(path);
        self.digest = self.digest.wrapping_sub(before).wrapping_add(after);
        Ok(result)
    }

    /// Adds a node and indexes it; its parent already lists it.
    pub(crate) fn insert_node(&mut self, path: String, node: Node) {
        self.digest = self.digest.wrapping_add(node.digest(&path));
        self.data_bytes += (path.len() + node.data_len()) as u64;
        match owner_kind(node.ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Container => {
                self.containers.insert(path.clone());
            }
            OwnerKind::Ttl(_) => {
                self.ttls.insert(path.clone());
            }
            OwnerKind::Session(session_id) => {
                self.ephemerals
                    .entry(session_id)
                    .or_default()
                    .insert(path.clone());
            }
        }
        let previous = self.nodes.insert(path, node);
        assert!(previous.is_none(), "insert_node over an existing node");
    }

    fn remove_node(&mut self, path: &str) -> Node {
        let node = self
            .nodes
            .remove(path)
            .expect("remove_node of a missing node");
        self.digest = self.digest.wrapping_sub(node.digest(path));
        self.data_bytes -= (path.len() + node.data_len()) as u64;
        match owner_kind(node.ephemeral_owner) {
            OwnerKind::Persistent => {}
            OwnerKind::Container => {
                self.containers.remove(path);
            }
            OwnerKind::Ttl(_) => {
                self.ttls.remove(path);
            }
            OwnerKind::Session(session_id) => {
                if let Some(paths) = self.ephemerals.get_mut(&session_id) {
                    paths.remove(path);
                    if paths.is_empty() {
                        self.ephemerals.remove(&session_id);
                    }
                }
            }
        }
        node
    }

    // ----- reads ----------------------------------------------------------------

    /// `exists`: the stat, or NoNode. A watch is left either way (an exist
    /// watch when the node is missing). No ACL is checked: ZooKeeper's
    /// FinalRequestProcessor answers exists from `statNode` without one, so
    /// lock recipes and service discovery can test nodes they cannot read.
    pub fn exists(
        &mut self,
        caller: &Caller<'_>,
        path: &str,
        watch: bool,
    ) -> Result<Stat, ErrorCode> {
        if path.contains('\0') {
            return Err(ErrorCode::BadArguments);
        }
        let stat = self.lookup(path).map(Node::stat);
        if watch {
            match stat {
                Some(_) => self.watches.add_data_watch(caller.session_id, path),
                None => self.watches.add_exist_watch(caller.session_id, path),
            }
        }
        stat.ok_or(ErrorCode::NoNode)
    }

    pub fn get_data(
        &mut self,
        caller: &Caller<'_>,
        path: &str,
        watch: bool,
    ) -> Result<(Data, Stat), ErrorCode> {
        let node = self.readable(caller, path)?;
        let result = (node.data.clone(), node.stat());
        if watch {
            self.watches.add_data_watch(caller.session_id, path);
        }
        Ok(result)
    }

    pub fn get_children(
        &mut self,
        caller: &Caller<'_>,
        path: &str,
        watch: bool,
    ) -> Result<(Vec<String>, Stat), ErrorCode> {
        let node = self.readable(caller, path)?;
        let result = (node.children.iter().cloned().collect(), node.stat());
        if watch {
            self.watches.add_child_watch(caller.session_id, path);
        }
        Ok(result)
    }

    /// `getACL` needs READ or ADMIN, and hides digest hashes from callers
    /// without ADMIN (CVE-2019-0201).
    pub fn get_acl(&self, caller: &Caller<'_>, path: &str) -> Result<(Vec<Acl>, Stat), ErrorCode> {
        let node = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        acl::check(
            &node.acl,
            perms::READ | perms::ADMIN,
            caller.auth,
            self.providers,
        )?;
        Ok((
            acl::visible_to(&node.acl, caller.auth, self.providers),
            node.stat(),
        ))
    }

    /// Every descendant of `path` (for "/", every node but the root).
    pub fn get_all_children_number(
        &self,
        caller: &Caller<'_>,
        path: &str,
    ) -> Result<i32, ErrorCode> {
        self.readable(caller, path)?;
        if path == "/" {
            return Ok((self.nodes.len() - 1) as i32);
        }
        let mut count = 0usize;
        let mut stack = vec![path.to_string()];
        while let Some(current) = stack.pop() {
            let Some(node) = self.nodes.get(&current) else {
                continue;
            };
            count += node.children.len();
            stack.extend(
                node.children
                    .iter()
                    .map(|child| path::join(&current, child)),
            );
        }
        Ok(count as i32)
    }

    /// The session's ephemeral paths starting with `prefix` ("/" or "" = all).
    pub fn get_ephemerals(&self, session_id: i64, prefix: &str) -> Vec<String> {
        let Some(paths) = self.ephemerals.get(&session_id) else {
            return Vec::new();
        };
        let prefix = prefix.trim();
        let all = prefix.is_empty() || prefix == "/";
        paths
            .iter()
            .filter(|p| all || p.starts_with(prefix))
            .cloned()
            .collect()
    }

    /// A node for a read. ZooKeeper also keeps the root under "", so reads of
    /// "" see the root.
    fn lookup(&self, path: &str) -> Option<&Node> {
        self.nodes.get(if path.is_empty() { "/" } else { path })
    }

    fn readable(&self, caller: &Caller<'_>, path: &str) -> Result<&Node, ErrorCode> {
        let node = self.lookup(path).ok_or(ErrorCode::NoNode)?;
        acl::check(&node.acl, perms::READ, caller.auth, self.providers)?;
        Ok(node)
    }

    // ----- watches ----------------------------------------------------------------

    /// `addWatch`: ZooKeeper checks neither the path, nor existence, nor ACL here.
    pub fn add_watch(
        &mut self,
        caller: &Caller<'_>,
        path: &str,
        mode: AddWatchMode,
    ) -> Result<(), ErrorCode> {
        let recursive = mode == AddWatchMode::PersistentRecursive;
        self.watches
            .add_persistent_watch(caller.session_id, path, recursive);
        Ok(())
    }

    pub fn remove_watches(
        &mut self,
        caller: &Caller<'_>,
        path: &str,
        watcher_type: WatcherType,
        check_only: bool,
    ) -> Result<Vec<WatchEvent>, ErrorCode> {
        self.watches
            .remove_watches(caller.session_id, path, watcher_type, check_only)
    }

    /// Re-registers a reconnecting session's watches (`setWatches`,
    /// `setWatches2`). A watch whose node changed after `relative_zxid` (the
    /// last zxid the client saw) fires at once instead of being registered.
    pub fn set_watches(
        &mut self,
        session_id: i64,
        relative_zxid: i64,
        lists: &WatchLists<'_>,
    ) -> Vec<WatchEvent> {
        let (events, result) =
            self.set_watches_with_nulls(session_id, relative_zxid, lists, &Nulls::NONE);
        assert!(result.is_ok(), "only a null stops a restore");
        events
    }

    /// [`DataTree::set_watches`] for a request that carried jute nulls
    /// (`Request::decode_with_nulls`; null lists read as empty, null paths
    /// as ""). ZooKeeper restores the lists in order (data, exist, child,
    /// persistent, recursive) and throws at a null list or at a null path it
    /// looks up (the first three lists): what it restored before stays, its
    /// events are sent, and the reply is MARSHALLINGERROR. A null path in a
    /// persistent list is registered there under the null path, where no
    /// event can fire it; here it is skipped.
    pub fn set_watches_with_nulls(
        &mut self,
        session_id: i64,
        relative_zxid: i64,
        lists: &WatchLists<'_>,
        nulls: &Nulls,
    ) -> (Vec<WatchEvent>, Result<(), ErrorCode>) {
        let mut events = Vec::new();
        let stop = nulls.watch_stop();
        for list in WatchList::ALL {
            if stop == Some(NullAt::WatchList { list }) {
                return (events, Err(ErrorCode::MarshallingError));
            }
            for (index, path) in lists.get(list).iter().enumerate() {
                let at = NullAt::WatchPath { list, index };
                if stop == Some(at) {
                    return (events, Err(ErrorCode::MarshallingError));
                }
                if !nulls.is_empty() && nulls.contains(at) {
                    continue;
                }
                self.restore_watch(session_id, relative_zxid, list, path, &mut events);
            }
        }
        (events, Ok(()))
    }

    /// One watch of a setWatches list: registered, or fired at once (zxid -1,
    /// unfiltered by ACL, like ZooKeeper's) when the node changed after
    /// `relative_zxid`, the last zxid the client saw.
    fn restore_watch(
        &mut self,
        session_id: i64,
        relative_zxid: i64,
        list: WatchList,
        path: &str,
        events: &mut Vec<WatchEvent>,
    ) {
        let node = self.nodes.get(path);
        let fire = match (list, node) {
            (WatchList::Data, None) | (WatchList::Child, None) => Some(EventType::NodeDeleted),
            (WatchList::Data, Some(node)) if node.mzxid > relative_zxid => {
                Some(EventType::NodeDataChanged)
            }
            (WatchList::Exist, Some(_)) => Some(EventType::NodeCreated),
            (WatchList::Child, Some(node)) if node.pzxid > relative_zxid => {
                Some(EventType::NodeChildrenChanged)
            }
            _ => None,
        };
        if let Some(event_type) = fire {
            events.push(WatchEvent {
                session_id,
                event_type,
                path: path.to_string(),
                zxid: -1,
                acl: Vec::new().into(),
            });
            return;
        }
        match list {
            WatchList::Data => self.watches.add_data_watch(session_id, path),
            WatchList::Exist => self.watches.add_exist_watch(session_id, path),
            WatchList::Child => self.watches.add_child_watch(session_id, path),
            WatchList::Persistent => self.watches.add_persistent_watch(session_id, path, false),
            WatchList::PersistentRecursive => {
                self.watches.add_persistent_watch(session_id, path, true)
            }
        }
    }

    // ----- server housekeeping ------------------------------------------------------

    /// Containers whose last child is gone (they once had one: cversion > 0)
    /// and TTL nodes without children untouched for longer than their TTL
    /// (ContainerManager.getCandidates), at most `max` of them.
    pub fn reap_candidates(&self, now_ms: i64, max: usize) -> Vec<String> {
        let empty_container = |path: &&String| {
            self.nodes
                .get(path.as_str())
                .is_some_and(|n| n.children.is_empty() && n.cversion > 0)
        };
        let expired_ttl = |path: &&String| {
            self.nodes.get(path.as_str()).is_some_and(|n| {
                let OwnerKind::Ttl(ttl_ms) = owner_kind(n.ephemeral_owner) else {
                    return false;
                };
                n.children.is_empty() && ttl_ms != 0 && now_ms - n.mtime > ttl_ms
            })
        };
        self.containers
            .iter()
            .filter(empty_container)
            .chain(self.ttls.iter().filter(expired_ttl))
            .take(max)
            .cloned()
            .collect()
    }

    /// Checks that the indexes, child lists and digest agree with the nodes.
    pub fn check_invariants(&self) {
        let mut digest = 0u64;
        let mut data_bytes = 0u64;
        for (path, node) in &self.nodes {
            digest = digest.wrapping_add(node.digest(path));
            data_bytes += (path.len() + node.data_len()) as u64;
            for child in &node.children {
                let child_path = path::join(path, child);
                assert!(
                    self.nodes.contains_key(&child_path),
                    "{path} lists missing child {child}"
                );
            }
            if path != "/" {
                let (parent, name) = path::split(path).expect("stored paths are absolute");
                let parent = self.nodes.get(parent).expect("every node has a parent");
                assert!(
                    parent.children.contains(name),
                    "parent of {path} does not list it"
                );
            }
            match owner_kind(node.ephemeral_owner) {
                OwnerKind::Persistent => {}
                OwnerKind::Container => assert!(self.containers.contains(path)),
                OwnerKind::Ttl(_) => assert!(self.ttls.contains(path)),
                OwnerKind::Session(id) => {
                    assert!(self.ephemerals.get(&id).is_some_and(|p| p.contains(path)));
                    assert!(node.children.is_empty(), "ephemeral {path} has children");
                }
            }
        }
        assert_eq!(digest, self.digest, "running digest drifted");
        assert_eq!(data_bytes, self.data_bytes, "data size drifted");
        let indexed: usize = self.containers.len()
            + self.ttls.len()
            + self.ephemerals.values().map(BTreeSet::len).sum::<usize>();
        let owned = self
            .nodes
            .values()
            .filter(|n| n.ephemeral_owner != 0)
            .count();
        assert_eq!(indexed, owned, "owner indexes disagree with the nodes");
        self.watches.check_invariants();
    }
}

/// The watches a reconnecting client asks to restore, by kind.
#[derive(Debug, Clone, Copy, Default)]
pub struct WatchLists<'a> {
    pub data: &'a [String],
    pub exist: &'a [String],
    pub child: &'a [String],
    pub persistent: &'a [String],
    pub persistent_recursive: &'a [String],
}

impl<'a> WatchLists<'a> {
    /// The paths of one list.
    pub fn get(&self, list: WatchList) -> &'a [String] {
        match list {
            WatchList::Data => self.data,
            WatchList::Exist => self.exist,
            WatchList::Child => self.child,
            WatchList::Persistent => self.persistent,
            WatchList::PersistentRecursive => self.persistent_recursive,
        }
    }
}

/// A create txn's fields, borrowed.
struct NewNode<'a> {
    path: &'a str,
    data: &'a Data,
    acl: &'a [Acl],
    ephemeral_owner: i64,
    parent_cversion: i32,
}
