//! Property tests: the tree against a simple model, and fuzzy snapshots plus
//! replay against the live tree (the traps of ZOOKEEPER-3127, -3144, -3145
//! and -3249: replaying txns over a snapshot taken while they were applied
//! must converge on exactly the live tree, cversion and pzxid included).

mod common;

use std::collections::BTreeMap;

use common::{create, delete, set_data, Driver};
use proptest::prelude::*;
use proto::{CreateMode, ErrorCode};
use tree::{DataTree, PrepareError, Txn, TxnHeader, WriteOp};

const NAMES: [&str; 3] = ["a", "b", "c"];

#[derive(Debug, Clone)]
enum Step {
    Create {
        path: String,
        mode: CreateMode,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        version: i32,
    },
    Multi(Vec<Step>),
    /// Closes the session and opens a new one with the same id slot.
    Reopen {
        session: i64,
    },
}

fn any_path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES.to_vec()), 1..=3)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn simple_step() -> impl Strategy<Value = Step> {
    let mode = prop::sample::select(vec![
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::EphemeralSequential,
        CreateMode::Container,
    ]);
    prop_oneof![
        4 => (any_path(), mode).prop_map(|(path, mode)| Step::Create { path, mode }),
        2 => (any_path(), -1..2i32).prop_map(|(path, version)| Step::Delete { path, version }),
        2 => (any_path(), -1..3i32).prop_map(|(path, version)| Step::SetData { path, version }),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        10 => simple_step(),
        2 => prop::collection::vec(simple_step(), 1..4).prop_map(Step::Multi),
        1 => (1..4i64).prop_map(|session| Step::Reopen { session }),
    ]
}

/// A step as the server would see it: (session, op). `Reopen` becomes a
/// close followed by a create of the same session id.
fn ops_of(step: &Step, session: i64) -> Vec<(i64, WriteOp)> {
    match step {
        Step::Reopen { session } => vec![
            (*session, WriteOp::CloseSession),
            (*session, WriteOp::CreateSession { timeout_ms: 4000 }),
        ],
        step => vec![(session, write_op(step))],
    }
}

fn write_op(step: &Step) -> WriteOp {
    match step {
        Step::Create { path, mode } => create(path, *mode),
        Step::Delete { path, version } => delete(path, *version),
        Step::SetData { path, version } => set_data(path, b"d", *version),
        Step::Multi(steps) => WriteOp::Multi(steps.iter().map(write_op).collect()),
        Step::Reopen { .. } => unreachable!("expanded by ops_of"),
    }
}

// ----- the model ------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelNode {
    data: Option<Vec<u8>>,
    version: i32,
    cversion: i32,
    owner: i64,
}

#[derive(Debug, Clone, Default)]
struct Model {
    nodes: BTreeMap<String, ModelNode>,
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) => "/",
        Some(i) => &path[..i],
        None => "",
    }
}

impl Model {
    fn new() -> Model {
        let mut nodes = BTreeMap::new();
        for path in ["/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"] {
            nodes.insert(
                path.to_string(),
                ModelNode {
                    data: Some(vec![]),
                    version: 0,
                    cversion: 0,
                    owner: 0,
                },
            );
        }
        Model { nodes }
    }

    fn children(&self, path: &str) -> usize {
        self.nodes
            .keys()
            .filter(|p| p.as_str() != "/" && parent_of(p) == path)
            .count()
    }

    fn apply(&mut self, session: i64, op: &WriteOp) -> Result<(), PrepareError> {
        match op {
            WriteOp::Multi(ops) => {
                let mut scratch = self.clone();
                for (index, op) in ops.iter().enumerate() {
                    if let Err(code) = scratch.apply_simple(session, op) {
                        let mut codes = vec![ErrorCode::Ok; index];
                        codes.push(code);
                        codes.resize(ops.len(), ErrorCode::RuntimeInconsistency);
                        return Err(PrepareError::Multi(codes));
                    }
                }
                *self = scratch;
                Ok(())
            }
            op => self.apply_simple(session, op).map_err(PrepareError::Op),
        }
    }

    fn apply_simple(&mut self, session: i64, op: &WriteOp) -> Result<(), ErrorCode> {
        match op {
            WriteOp::CreateSession { .. } => Ok(()),
            WriteOp::CloseSession => {
                self.nodes.retain(|_, n| n.owner != session);
                Ok(())
            }
            WriteOp::Create { path, mode, .. } => {
                let parent_path = parent_of(path).to_string();
                let parent = self
                    .nodes
                    .get(&parent_path)
                    .ok_or(ErrorCode::NoNode)?
                    .clone();
                let data = Some(path.as_bytes().to_vec());
                let path = if mode.is_sequential() {
                    format!("{path}{:010}", parent.cversion)
                } else {
                    path.clone()
                };
                if self.nodes.contains_key(&path) {
                    return Err(ErrorCode::NodeExists);
                }
                if parent.owner > 0 {
                    return Err(ErrorCode::NoChildrenForEphemerals);
                }
                self.nodes.get_mut(&parent_path).expect("checked").cversion += 1;
                let owner = match mode {
                    CreateMode::Container => i64::MIN,
                    mode if mode.is_ephemeral() => session,
                    _ => 0,
                };
                self.nodes.insert(
                    path.clone(),
                    ModelNode {
                        data,
                        version: 0,
                        cversion: 0,
                        owner,
                    },
                );
                Ok(())
            }
            WriteOp::Delete { path, version } => {
                if !self.nodes.contains_key(parent_of(path)) {
                    return Err(ErrorCode::NoNode);
                }
                let node = self.nodes.get(path).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                if self.children(path) > 0 {
                    return Err(ErrorCode::NotEmpty);
                }
                self.nodes.remove(path);
                Ok(())
            }
            WriteOp::SetData {
                path,
                data,
                version,
            } => {
                let node = self.nodes.get_mut(path).ok_or(ErrorCode::NoNode)?;
                if *version != -1 && *version != node.version {
                    return Err(ErrorCode::BadVersion);
                }
                node.version += 1;
                node.data = data.clone();
                Ok(())
            }
            other => panic!("model does not generate {other:?}"),
        }
    }

    fn assert_matches(&self, tree: &DataTree) {
        for (path, expected) in &self.nodes {
            let node = tree
                .node(path)
                .unwrap_or_else(|| panic!("tree lacks {path}"));
            let actual = ModelNode {
                data: node.data.clone(),
                version: node.version,
                cversion: node.cversion,
                owner: node.ephemeral_owner,
            };
            assert_eq!(&actual, expected, "{path}");
            assert_eq!(node.children.len(), self.children(path), "{path} children");
        }
        assert_eq!(
            tree.node_count(),
            self.nodes.len() + 1,
            "node count (root counted twice)"
        );
    }
}

// ----- properties -------------------------------------------------------------------

/// Runs `steps` through the driver, preparing up to `window` ops before
/// applying them (as the server pipelines a log batch), and the model beside it.
fn run(
    steps: &[(Step, i64)],
    windows: &[usize],
    mut between_applies: impl FnMut(&Driver),
) -> (Driver, Model) {
    let mut driver = Driver::new();
    let mut model = Model::new();
    for session in 1..4 {
        let (h, t) = driver
            .prepare(session, &WriteOp::CreateSession { timeout_ms: 4000 })
            .unwrap();
        driver.apply(h, t);
    }
    let ops: Vec<(i64, WriteOp)> = steps
        .iter()
        .flat_map(|(step, session)| ops_of(step, *session))
        .collect();
    let mut pending: Vec<(TxnHeader, Txn)> = Vec::new();
    for (index, (session, op)) in ops.iter().enumerate() {
        let expected = model.apply(*session, op);
        let actual = driver.prepare(*session, op);
        assert_eq!(
            actual.as_ref().err(),
            expected.as_ref().err(),
            "op {index}: {op:?}"
        );
        if let Ok(prepared) = actual {
            pending.push(prepared);
        }
        if pending.len() >= windows[index % windows.len()] || index + 1 == ops.len() {
            for (header, txn) in pending.drain(..) {
                driver.apply(header, txn);
                between_applies(&driver);
            }
        }
    }
    (driver, model)
}

proptest! {
    #[test]
    fn tree_agrees_with_the_model(
        steps in prop::collection::vec((step(), 1..4i64), 1..60),
        windows in prop::collection::vec(1..5usize, 1..5),
    ) {
        let (driver, model) = run(&steps, &windows, |_| {});
        model.assert_matches(&driver.tree);
        driver.tree.check_invariants();
    }

    #[test]
    fn fuzzy_snapshot_plus_replay_equals_the_live_tree(
        steps in prop::collection::vec((step(), 1..4i64), 1..80),
        windows in prop::collection::vec(1..5usize, 1..5),
        start in 0..40usize,
        chunk_bytes in 1..400usize,
    ) {
        let mut applies = 0usize;
        let mut snapshot: Option<(Vec<u8>, tree::SnapshotCursor)> = None;
        let (driver, _) = run(&steps, &windows, |d| {
            applies += 1;
            match &mut snapshot {
                None if applies >= start => snapshot = Some(d.tree.snapshot_begin()),
                Some((bytes, cursor)) if !cursor.is_done() => bytes.extend(d.tree.snapshot_chunk(cursor, chunk_bytes)),
                _ => {}
            }
        });
        let (mut bytes, mut cursor) = snapshot.unwrap_or_else(|| driver.tree.snapshot_begin());
        while !cursor.is_done() {
            bytes.extend(driver.tree.snapshot_chunk(&mut cursor, chunk_bytes));
        }
        let mut recovered = DataTree::from_snapshot(&bytes).expect("snapshot loads");
        prop_assert_eq!(recovered.last_processed_zxid(), cursor.zxid());
        for (header, txn) in driver.log.iter().filter(|(h, _)| h.zxid > cursor.zxid()) {
            recovered.apply(header, txn);
        }
        recovered.check_invariants();
        for (path, node) in driver.tree.nodes() {
            prop_assert_eq!(recovered.node(path), Some(node), "{}", path);
        }
        for (path, _) in recovered.nodes() {
            prop_assert!(driver.tree.node(path).is_some(), "recovered has extra {}", path);
        }
        prop_assert_eq!(recovered.digest(), driver.tree.digest());
        prop_assert_eq!(recovered.last_processed_zxid(), driver.tree.last_processed_zxid());
        for (path, node) in driver.log.iter().filter_map(|(_, t)| match t { Txn::Create { path, .. } => Some(path), _ => None })
            .filter_map(|p| driver.tree.node(p).map(|n| (p, n)))
        {
            prop_assert_eq!(recovered.node(path), Some(node));
        }
        for path in ["/", "/a", "/b", "/c", "/a/a", "/a/b", "/b/c"] {
            prop_assert_eq!(recovered.node(path), driver.tree.node(path), "{}", path);
        }
        prop_assert_eq!(recovered.sessions().collect::<Vec<_>>(), driver.tree.sessions().collect::<Vec<_>>());
    }
}

#[test]
fn a_snapshot_round_trips_exactly() {
    // Proves a snapshot of a quiet tree loads back into an identical tree.
    let mut d = Driver::new();
    d.write(1, WriteOp::CreateSession { timeout_ms: 3000 })
        .unwrap();
    for path in ["/a", "/a/b", "/c"] {
        d.write(1, create(path, CreateMode::Persistent)).unwrap();
    }
    d.write(1, create("/a/e", CreateMode::Ephemeral)).unwrap();
    let loaded = DataTree::from_snapshot(&d.tree.snapshot_bytes()).unwrap();
    loaded.check_invariants();
    assert_eq!(loaded.digest(), d.tree.digest());
    assert_eq!(loaded.get_ephemerals(1, "/"), vec!["/a/e".to_string()]);
    assert_eq!(loaded.sessions().collect::<Vec<_>>(), vec![(1, 3000)]);
}

#[test]
fn damaged_snapshots_are_errors_not_panics() {
    // Proves truncated or corrupted snapshot bodies are reported, never half-loaded.
    let mut d = Driver::new();
    d.write(1, create("/a", CreateMode::Persistent)).unwrap();
    let bytes = d.tree.snapshot_bytes();
    for cut in 0..bytes.len() {
        assert!(
            DataTree::from_snapshot(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut flipped = bytes.clone();
    flipped[0] ^= 1;
    assert_eq!(
        DataTree::from_snapshot(&flipped).unwrap_err(),
        tree::SnapshotError::BadMagic
    );
}
