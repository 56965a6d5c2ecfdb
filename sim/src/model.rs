//! A small, independent model of ZooKeeper's data tree: what each client
//! operation does and answers, written from ZooKeeper's semantics (the
//! order of checks in `PrepRequestProcessor`, multi's all-or-nothing
//! results) rather than from the `tree` crate, so that the checker judges
//! the server against something it did not write.
//!
//! The model keeps, per znode: data, version, ephemeral owner, children and
//! the count of children ever created (the sequential suffix). It leaves
//! out what the workload never asks about (ACLs, times, zxids in stats,
//! cversion as reported). Its [`Model::digest`] is kept up to date on every
//! change, so the linearizability checker can remember which states it has
//! already explored.

use std::collections::{BTreeMap, BTreeSet};

use proto::{CreateMode, ErrorCode};
use xxhash_rust::xxh3::xxh3_64;

/// One operation inside a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubOp {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
}

/// A client operation, or the server's expiry of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        mode: CreateMode,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
    Multi(Vec<SubOp>),
    GetData {
        path: String,
        watch: bool,
    },
    Exists {
        path: String,
        watch: bool,
    },
    GetChildren {
        path: String,
        watch: bool,
    },
    Sync,
    /// `addWatch`: a persistent watch on `path` (and its subtree when
    /// `recursive`). Changes nothing in the tree.
    AddWatch {
        path: String,
        recursive: bool,
    },
    CloseSession,
    /// Not a request: the server expired the session. The checker places
    /// it somewhere after the session's last sign of life.
    Expire,
}

impl Op {
    /// Whether the op changes the tree (or may).
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Op::Create { .. }
                | Op::Delete { .. }
                | Op::SetData { .. }
                | Op::Multi(_)
                | Op::CloseSession
                | Op::Expire
        )
    }

    /// A short name for traces and reports.
    pub fn describe(&self) -> String {
        match self {
            Op::Create { path, mode, .. } => format!("create {path} {mode:?}"),
            Op::Delete { path, version } => format!("delete {path} v{version}"),
            Op::SetData { path, version, .. } => format!("setData {path} v{version}"),
            Op::Multi(ops) => format!("multi[{}]", ops.len()),
            Op::GetData { path, .. } => format!("getData {path}"),
            Op::Exists { path, .. } => format!("exists {path}"),
            Op::GetChildren { path, .. } => format!("getChildren {path}"),
            Op::Sync => "sync".into(),
            Op::AddWatch { path, recursive } => {
                format!(
                    "addWatch {path}{}",
                    if *recursive { " recursive" } else { "" }
                )
            }
            Op::CloseSession => "closeSession".into(),
            Op::Expire => "expire".into(),
        }
    }
}

/// The part of a Stat the model keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStat {
    pub version: i32,
    pub ephemeral_owner: i64,
    pub num_children: i32,
    pub data_length: i32,
}

/// One successful op inside a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SubResult {
    Created(String),
    Deleted,
    DataSet { version: i32 },
    Checked,
}

/// What an op answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Created {
        path: String,
    },
    Deleted,
    DataSet {
        version: i32,
    },
    Multi(Vec<SubResult>),
    /// A multi that failed as a whole: one code per op (0 before the failing
    /// op, its code, RUNTIMEINCONSISTENCY after).
    MultiFailed(Vec<i32>),
    Data {
        data: Vec<u8>,
        stat: NodeStat,
    },
    Stat(NodeStat),
    Children(Vec<String>),
    Done,
    Error(ErrorCode),
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ZNode {
    data: Vec<u8>,
    version: i32,
    ephemeral_owner: i64,
    children: BTreeSet<String>,
    /// Children ever created: the next sequential suffix.
    created_children: i32,
}

impl ZNode {
    fn new(data: Vec<u8>, ephemeral_owner: i64) -> ZNode {
        ZNode {
            data,
            version: 0,
            ephemeral_owner,
            children: BTreeSet::new(),
            created_children: 0,
        }
    }

    fn stat(&self) -> NodeStat {
        NodeStat {
            version: self.version,
            ephemeral_owner: self.ephemeral_owner,
            num_children: self.children.len() as i32,
            data_length: self.data.len() as i32,
        }
    }

    /// This node's share of the model digest (children are implied by the
    /// paths, so they are left out).
    fn digest(&self, path: &str) -> u64 {
        let mut bytes = Vec::with_capacity(path.len() + self.data.len() + 24);
        bytes.extend_from_slice(path.as_bytes());
        bytes.push(0);
        bytes.extend_from_slice(&self.data);
        bytes.extend_from_slice(&self.version.to_le_bytes());
        bytes.extend_from_slice(&self.ephemeral_owner.to_le_bytes());
        bytes.extend_from_slice(&self.created_children.to_le_bytes());
        bytes.extend_from_slice(&(self.data.len() as u64).to_le_bytes());
        xxh3_64(&bytes)
    }
}

/// The model tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    nodes: BTreeMap<String, ZNode>,
    closed_sessions: BTreeSet<i64>,
    digest: u64,
}

impl Default for Model {
    fn default() -> Self {
        Model::new()
    }
}

fn parent_of(path: &str) -> Option<(&str, &str)> {
    let slash = path.rfind('/')?;
    if path == "/" {
        return None;
    }
    let parent = if slash == 0 { "/" } else { &path[..slash] };
    Some((parent, &path[slash + 1..]))
}

/// ZooKeeper's version check: -1 matches any version.
fn version_matches(current: i32, expected: i32) -> bool {
    expected == -1 || expected == current
}

impl Model {
    /// A fresh tree as ZooKeeper starts one (`/`, `/zookeeper`, its `quota`
    /// and `config`).
    pub fn new() -> Model {
        let mut model = Model {
            nodes: BTreeMap::new(),
            closed_sessions: BTreeSet::new(),
            digest: 0,
        };
        for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            model.put(path, ZNode::new(Vec::new(), 0));
        }
        for (parent, child) in [
            ("/", "zookeeper"),
            ("/zookeeper", "quota"),
            ("/zookeeper", "config"),
        ] {
            let mut node = model.nodes[parent].clone();
            node.children.insert(child.to_string());
            model.put(parent, node);
        }
        model
    }

    /// A hash of the whole state: equal models have equal digests.
    pub fn digest(&self) -> u64 {
        let closed: u64 = self
            .closed_sessions
            .iter()
            .fold(0, |acc, s| acc.wrapping_add(xxh3_64(&s.to_le_bytes())));
        self.digest ^ closed.rotate_left(17)
    }

    pub fn exists(&self, path: &str) -> bool {
        self.nodes.contains_key(path)
    }

    /// Paths of the ephemerals a session owns.
    pub fn ephemerals_of(&self, session: i64) -> Vec<String> {
        self.nodes
            .iter()
            .filter(|(_, n)| n.ephemeral_owner == session)
            .map(|(p, _)| p.clone())
            .collect()
    }

    fn put(&mut self, path: &str, node: ZNode) {
        if let Some(old) = self.nodes.get(path) {
            self.digest = self.digest.wrapping_sub(old.digest(path));
        }
        self.digest = self.digest.wrapping_add(node.digest(path));
        self.nodes.insert(path.to_string(), node);
    }

    fn remove(&mut self, path: &str) {
        if let Some(old) = self.nodes.remove(path) {
            self.digest = self.digest.wrapping_sub(old.digest(path));
        }
    }

    /// Applies `op` issued by `session`; returns what it answers. A failed
    /// write changes nothing.
    pub fn apply(&mut self, session: i64, op: &Op) -> Outcome {
        if op.is_write() && *op != Op::Expire && self.closed_sessions.contains(&session) {
            return Outcome::Error(ErrorCode::SessionExpired);
        }
        match op {
            Op::Create { path, data, mode } => match self.create(session, path, data, *mode) {
                Ok(path) => Outcome::Created { path },
                Err(code) => Outcome::Error(code),
            },
            Op::Delete { path, version } => match self.delete(path, *version) {
                Ok(()) => Outcome::Deleted,
                Err(code) => Outcome::Error(code),
            },
            Op::SetData {
                path,
                data,
                version,
            } => match self.set_data(path, data, *version) {
                Ok(version) => Outcome::DataSet { version },
                Err(code) => Outcome::Error(code),
            },
            Op::Multi(ops) => self.multi(session, ops),
            Op::GetData { path, .. } => match self.nodes.get(path) {
                Some(node) => Outcome::Data {
                    data: node.data.clone(),
                    stat: node.stat(),
                },
                None => Outcome::Error(ErrorCode::NoNode),
            },
            Op::Exists { path, .. } => match self.nodes.get(path) {
                Some(node) => Outcome::Stat(node.stat()),
                None => Outcome::Error(ErrorCode::NoNode),
            },
            Op::GetChildren { path, .. } => match self.nodes.get(path) {
                Some(node) => Outcome::Children(node.children.iter().cloned().collect()),
                None => Outcome::Error(ErrorCode::NoNode),
            },
            Op::Sync | Op::AddWatch { .. } => Outcome::Done,
            Op::CloseSession | Op::Expire => {
                self.close_session(session);
                Outcome::Done
            }
        }
    }

    fn create(
        &mut self,
        session: i64,
        path: &str,
        data: &[u8],
        mode: CreateMode,
    ) -> Result<String, ErrorCode> {
        let (parent_path, _) = parent_of(path).ok_or(ErrorCode::BadArguments)?;
        let parent = self.nodes.get(parent_path).ok_or(ErrorCode::NoNode)?;
        let path = if mode.is_sequential() {
            format!("{path}{:010}", parent.created_children)
        } else {
            path.to_string()
        };
        if self.nodes.contains_key(&path) {
            return Err(ErrorCode::NodeExists);
        }
        if parent.ephemeral_owner != 0 {
            return Err(ErrorCode::NoChildrenForEphemerals);
        }
        let owner = if mode.is_ephemeral() { session } else { 0 };
        let mut parent = parent.clone();
        let (_, name) = parent_of(&path).expect("has a parent");
        parent.children.insert(name.to_string());
        parent.created_children = parent.created_children.wrapping_add(1);
        self.put(parent_path, parent);
        self.put(&path, ZNode::new(data.to_vec(), owner));
        Ok(path)
    }

    fn delete(&mut self, path: &str, version: i32) -> Result<(), ErrorCode> {
        let (parent_path, name) = parent_of(path).ok_or(ErrorCode::BadArguments)?;
        if path.starts_with("/zookeeper") {
            return Err(ErrorCode::BadArguments);
        }
        let parent = self.nodes.get(parent_path).ok_or(ErrorCode::NoNode)?;
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if !version_matches(node.version, version) {
            return Err(ErrorCode::BadVersion);
        }
        if !node.children.is_empty() {
            return Err(ErrorCode::NotEmpty);
        }
        let mut parent = parent.clone();
        parent.children.remove(name);
        self.put(parent_path, parent);
        self.remove(path);
        Ok(())
    }

    fn set_data(&mut self, path: &str, data: &[u8], version: i32) -> Result<i32, ErrorCode> {
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if !version_matches(node.version, version) {
            return Err(ErrorCode::BadVersion);
        }
        let mut node = node.clone();
        // The version after i32::MAX skips -1 (ZOOKEEPER-4743); never reached here.
        node.version = node.version.wrapping_add(1);
        node.data = data.to_vec();
        let version = node.version;
        self.put(path, node);
        Ok(version)
    }

    fn check(&self, path: &str, version: i32) -> Result<(), ErrorCode> {
        let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
        if !version_matches(node.version, version) {
            return Err(ErrorCode::BadVersion);
        }
        Ok(())
    }

    /// All or nothing: applied in order on a scratch copy, kept only if
    /// every op succeeds.
    fn multi(&mut self, session: i64, ops: &[SubOp]) -> Outcome {
        let mut scratch = self.clone();
        let mut results = Vec::with_capacity(ops.len());
        for (index, op) in ops.iter().enumerate() {
            let result = match op {
                SubOp::Create { path, data, mode } => scratch
                    .create(session, path, data, *mode)
                    .map(SubResult::Created),
                SubOp::Delete { path, version } => {
                    scratch.delete(path, *version).map(|()| SubResult::Deleted)
                }
                SubOp::SetData {
                    path,
                    data,
                    version,
                } => scratch
                    .set_data(path, data, *version)
                    .map(|version| SubResult::DataSet { version }),
                SubOp::Check { path, version } => {
                    scratch.check(path, *version).map(|()| SubResult::Checked)
                }
            };
            match result {
                Ok(result) => results.push(result),
                Err(code) => {
                    let mut codes = vec![0; index];
                    codes.push(code.code());
                    codes.resize(ops.len(), ErrorCode::RuntimeInconsistency.code());
                    return Outcome::MultiFailed(codes);
                }
            }
        }
        *self = scratch;
        Outcome::Multi(results)
    }

    fn close_session(&mut self, session: i64) {
        for path in self.ephemerals_of(session) {
            let (parent_path, name) = parent_of(&path).expect("ephemerals have parents");
            let mut parent = self.nodes[parent_path].clone();
            parent.children.remove(name);
            self.put(parent_path, parent);
            self.remove(&path);
        }
        self.closed_sessions.insert(session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(path: &str, mode: CreateMode) -> Op {
        Op::Create {
            path: path.into(),
            data: b"d".to_vec(),
            mode,
        }
    }

    #[test]
    fn creates_sets_and_deletes_follow_zookeepers_checks() {
        let mut m = Model::new();
        let s = 7;
        assert_eq!(
            m.apply(s, &create("/a/b", CreateMode::Persistent)),
            Outcome::Error(ErrorCode::NoNode)
        );
        assert_eq!(
            m.apply(s, &create("/a", CreateMode::Persistent)),
            Outcome::Created { path: "/a".into() }
        );
        assert_eq!(
            m.apply(s, &create("/a", CreateMode::Persistent)),
            Outcome::Error(ErrorCode::NodeExists)
        );
        let set = |version| Op::SetData {
            path: "/a".into(),
            data: b"x".to_vec(),
            version,
        };
        assert_eq!(m.apply(s, &set(3)), Outcome::Error(ErrorCode::BadVersion));
        assert_eq!(m.apply(s, &set(0)), Outcome::DataSet { version: 1 });
        assert_eq!(m.apply(s, &set(-1)), Outcome::DataSet { version: 2 });
        m.apply(s, &create("/a/c", CreateMode::Persistent));
        let delete = |path: &str, version| Op::Delete {
            path: path.into(),
            version,
        };
        assert_eq!(
            m.apply(s, &delete("/a", -1)),
            Outcome::Error(ErrorCode::NotEmpty)
        );
        assert_eq!(
            m.apply(s, &delete("/a/c", 1)),
            Outcome::Error(ErrorCode::BadVersion)
        );
        assert_eq!(m.apply(s, &delete("/a/c", 0)), Outcome::Deleted);
        assert_eq!(
            m.apply(
                s,
                &Op::GetChildren {
                    path: "/".into(),
                    watch: false
                }
            ),
            Outcome::Children(vec!["a".into(), "zookeeper".into()])
        );
    }

    #[test]
    fn sequential_names_count_every_child_ever_created() {
        let mut m = Model::new();
        m.apply(1, &create("/q", CreateMode::Persistent));
        let first = m.apply(1, &create("/q/s-", CreateMode::PersistentSequential));
        assert_eq!(
            first,
            Outcome::Created {
                path: "/q/s-0000000000".into()
            }
        );
        m.apply(
            1,
            &Op::Delete {
                path: "/q/s-0000000000".into(),
                version: -1,
            },
        );
        let second = m.apply(1, &create("/q/s-", CreateMode::EphemeralSequential));
        assert_eq!(
            second,
            Outcome::Created {
                path: "/q/s-0000000001".into()
            }
        );
    }

    #[test]
    fn ephemerals_vanish_with_their_session_and_take_no_children() {
        let mut m = Model::new();
        m.apply(5, &create("/e", CreateMode::Ephemeral));
        assert_eq!(
            m.apply(6, &create("/e/x", CreateMode::Persistent)),
            Outcome::Error(ErrorCode::NoChildrenForEphemerals)
        );
        let before = m.digest();
        m.apply(5, &Op::Expire);
        assert!(!m.exists("/e"));
        assert_ne!(m.digest(), before);
        assert_eq!(
            m.apply(5, &create("/f", CreateMode::Persistent)),
            Outcome::Error(ErrorCode::SessionExpired)
        );
    }

    #[test]
    fn a_failed_multi_changes_nothing_and_reports_each_op() {
        let mut m = Model::new();
        let before = m.clone();
        let ops = vec![
            SubOp::Create {
                path: "/m".into(),
                data: vec![],
                mode: CreateMode::Persistent,
            },
            SubOp::Check {
                path: "/nope".into(),
                version: -1,
            },
            SubOp::Delete {
                path: "/m".into(),
                version: -1,
            },
        ];
        assert_eq!(
            m.apply(1, &Op::Multi(ops)),
            Outcome::MultiFailed(vec![0, -101, -2])
        );
        assert_eq!(m, before);
    }

    #[test]
    fn the_digest_is_a_function_of_the_state() {
        let mut a = Model::new();
        let mut b = Model::new();
        a.apply(1, &create("/x", CreateMode::Persistent));
        a.apply(1, &create("/y", CreateMode::Persistent));
        b.apply(1, &create("/y", CreateMode::Persistent));
        b.apply(1, &create("/x", CreateMode::Persistent));
        assert_eq!(a.digest(), b.digest());
        b.apply(
            1,
            &Op::Delete {
                path: "/x".into(),
                version: -1,
            },
        );
        assert_ne!(a.digest(), b.digest());
    }
}
