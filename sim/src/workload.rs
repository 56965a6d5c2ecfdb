//! What simulated clients ask for: a ZooKeeper workload over a small set of
//! paths, so that clients collide — creates (plain, ephemeral, sequential,
//! ephemeral sequential), setData and delete with and without versions,
//! multi, reads with and without watches, sync, and now and then a
//! closeSession.
//!
//! Every data value a client writes is unique (`c<client>-<n>`), so a read
//! names the write it saw. Conditional writes use the last version the
//! client saw for the path, which is often stale: BADVERSION is part of the
//! workload.

use std::collections::{BTreeMap, BTreeSet};

use proto::ops::{
    AddWatchRequest, CheckVersionRequest, CreateRequest, DeleteRequest, ExistsRequest,
    GetChildrenRequest, GetDataRequest, MultiOp, Request, SetDataRequest, SyncRequest,
};
use proto::{Acl, CreateMode};

use crate::model::{Op, SubOp};
use crate::options::Mix;
use crate::rng::Rng;

/// Plain keys every client reads and writes.
pub const KEYS: [&str; 5] = ["/k0", "/k1", "/k2", "/k3", "/k4"];
/// Paths clients create as ephemerals.
pub const EPHEMERALS: [&str; 3] = ["/e0", "/e1", "/e2"];
/// The parent of sequential nodes.
pub const QUEUE: &str = "/q";
/// The prefix of sequential children.
pub const QUEUE_CHILD: &str = "/q/s-";
/// A directory of many, sometimes large, nodes: it makes the tree big
/// enough that a snapshot takes several chunks, with txns applied between
/// them (the fuzzy snapshot at work).
pub const BULK: &str = "/d";
/// Nodes the bulk directory may hold.
pub const BULK_NODES: u64 = 400;
/// The largest value a bulk write carries (every segment size the
/// simulator picks takes it in one record).
pub const BULK_VALUE_BYTES_MAX: usize = 4096;

/// Everything a client reads at the end of a run.
pub fn final_reads() -> Vec<Op> {
    let mut ops: Vec<Op> = KEYS
        .iter()
        .chain(EPHEMERALS.iter())
        .chain([QUEUE].iter())
        .map(|p| Op::GetData {
            path: p.to_string(),
            watch: false,
        })
        .collect();
    for path in ["/", QUEUE, BULK] {
        ops.push(Op::GetChildren {
            path: path.into(),
            watch: false,
        });
    }
    ops
}

/// What a client remembers to aim its next requests.
#[derive(Debug, Default)]
pub struct Knowledge {
    /// The last version seen per path.
    pub versions: BTreeMap<String, i32>,
    /// Sequential children seen (created, or listed).
    pub queue_children: BTreeSet<String>,
    /// Values written so far (for unique data).
    pub writes: u64,
}

/// Children remembered at most (old ones are forgotten first).
const QUEUE_CHILDREN_REMEMBERED_MAX: usize = 32;

impl Knowledge {
    pub fn saw_version(&mut self, path: &str, version: i32) {
        self.versions.insert(path.to_string(), version);
    }

    pub fn saw_child(&mut self, path: String) {
        self.queue_children.insert(path);
        while self.queue_children.len() > QUEUE_CHILDREN_REMEMBERED_MAX {
            let oldest = self.queue_children.first().cloned().expect("not empty");
            self.queue_children.remove(&oldest);
        }
    }

    pub fn forget(&mut self, path: &str) {
        self.versions.remove(path);
        self.queue_children.remove(path);
    }

    /// A version to expect: the one last seen (often stale) or any (-1).
    fn version(&self, path: &str, rng: &mut Rng) -> i32 {
        match self.versions.get(path) {
            Some(v) if rng.chance(1, 2) => *v,
            _ => -1,
        }
    }

    fn data(&mut self, client: u32) -> Vec<u8> {
        self.writes += 1;
        format!("c{client}-{}", self.writes).into_bytes()
    }

    /// A unique value, mostly small, now and then kilobytes long (always
    /// kilobytes long when `large`).
    fn bulk_data(&mut self, client: u32, large: bool, rng: &mut Rng) -> Vec<u8> {
        let mut data = self.data(client);
        let length = match rng.below(10) {
            _ if large => rng.between(2048, 3072),
            0 => rng.between(1024, BULK_VALUE_BYTES_MAX as u64),
            1..=3 => rng.between(100, 1000),
            _ => 0,
        } as usize;
        data.resize(data.len().max(length), b'.');
        data
    }
}

/// Picks the next operation for `client`.
pub fn next_op(client: u32, mix: Mix, knowledge: &mut Knowledge, rng: &mut Rng) -> Op {
    let key = |rng: &mut Rng| rng.pick(&KEYS).to_string();
    let watch = |rng: &mut Rng| rng.chance(1, 2);
    // Weights: create, ephemeral, sequential, setData, delete, getData,
    // exists, getChildren, multi, sync, closeSession, bulk create, bulk
    // setData, bulk delete, bulk read, addWatch, many ephemerals. The
    // standard mix leaves many ephemerals out: the trees they grow make
    // every step's `check_invariants` several times slower; `--mix
    // many-ephemerals` and `tests/regressions.rs` run them.
    let weights = match mix {
        Mix::Standard => [10, 6, 6, 16, 8, 14, 8, 6, 6, 3, 1, 12, 4, 3, 4, 1, 0],
        Mix::ManyEphemerals => [2, 2, 2, 2, 1, 2, 1, 2, 1, 1, 1, 0, 0, 0, 0, 1, 20],
        Mix::BigTree => [4, 2, 2, 6, 3, 8, 4, 3, 3, 2, 1, 30, 16, 1, 6, 1, 0],
        Mix::Multis => [8, 2, 2, 6, 2, 4, 2, 2, 30, 1, 1, 16, 8, 1, 2, 1, 8],
    };
    // Multis too write kilobyte values: a big tree makes a snapshot's walk
    // long enough for multis to land between its chunks.
    let large = matches!(mix, Mix::BigTree | Mix::Multis);
    let bulk_node = |rng: &mut Rng| format!("{BULK}/n{}", rng.below(BULK_NODES));
    match rng.weighted(&weights) {
        0 => {
            let path = if rng.chance(1, 6) {
                QUEUE.to_string()
            } else {
                key(rng)
            };
            Op::Create {
                path,
                data: knowledge.data(client),
                mode: CreateMode::Persistent,
            }
        }
        1 => Op::Create {
            path: rng.pick(&EPHEMERALS).to_string(),
            data: knowledge.data(client),
            mode: CreateMode::Ephemeral,
        },
        2 => Op::Create {
            path: QUEUE_CHILD.to_string(),
            data: knowledge.data(client),
            mode: if rng.chance(1, 2) {
                CreateMode::EphemeralSequential
            } else {
                CreateMode::PersistentSequential
            },
        },
        3 => {
            let path = key(rng);
            Op::SetData {
                version: knowledge.version(&path, rng),
                data: knowledge.data(client),
                path,
            }
        }
        4 => {
            let path = delete_target(knowledge, rng);
            Op::Delete {
                version: knowledge.version(&path, rng),
                path,
            }
        }
        5 => Op::GetData {
            path: read_target(rng),
            watch: watch(rng),
        },
        6 => Op::Exists {
            path: read_target(rng),
            watch: watch(rng),
        },
        7 => Op::GetChildren {
            path: if rng.chance(1, 2) { "/" } else { QUEUE }.to_string(),
            watch: watch(rng),
        },
        8 => Op::Multi(multi_ops(client, knowledge, rng)),
        9 => Op::Sync,
        10 => Op::CloseSession,
        11 => Op::Create {
            path: if rng.chance(1, 10) {
                BULK.to_string()
            } else {
                bulk_node(rng)
            },
            data: knowledge.bulk_data(client, large, rng),
            mode: CreateMode::Persistent,
        },
        12 => {
            let path = bulk_node(rng);
            Op::SetData {
                version: knowledge.version(&path, rng),
                data: knowledge.bulk_data(client, large, rng),
                path,
            }
        }
        13 => {
            let path = bulk_node(rng);
            Op::Delete {
                version: knowledge.version(&path, rng),
                path,
            }
        }
        14 => {
            if rng.chance(1, 4) {
                Op::GetChildren {
                    path: BULK.to_string(),
                    watch: watch(rng),
                }
            } else {
                Op::GetData {
                    path: bulk_node(rng),
                    watch: watch(rng),
                }
            }
        }
        16 => Op::Multi(many_ephemerals(client, knowledge, rng)),
        _ => Op::AddWatch {
            path: match rng.below(4) {
                0 => "/".to_string(),
                1 => QUEUE.to_string(),
                _ => read_target(rng),
            },
            recursive: rng.chance(1, 2),
        },
    }
}

fn read_target(rng: &mut Rng) -> String {
    match rng.below(4) {
        0 => rng.pick(&EPHEMERALS).to_string(),
        1 if rng.chance(1, 3) => QUEUE.to_string(),
        _ => rng.pick(&KEYS).to_string(),
    }
}

fn delete_target(knowledge: &Knowledge, rng: &mut Rng) -> String {
    let children: Vec<&String> = knowledge.queue_children.iter().collect();
    match rng.below(5) {
        0 | 1 if !children.is_empty() => rng.pick(&children).to_string(),
        2 => rng.pick(&EPHEMERALS).to_string(),
        3 if rng.chance(1, 4) => QUEUE.to_string(),
        _ => rng.pick(&KEYS).to_string(),
    }
}

/// Long-named ephemeral sequential nodes, many at once: a session that
/// gathers a few hundred of them no longer fits its closeSession in one
/// txn on the smaller log segments, and the server deletes them one by one
/// first.
fn many_ephemerals(client: u32, knowledge: &mut Knowledge, rng: &mut Rng) -> Vec<SubOp> {
    let name = format!("{QUEUE}/e{client}-{}-", "x".repeat(EPHEMERAL_NAME_PAD));
    (0..rng.between(5, 20))
        .map(|_| SubOp::Create {
            path: name.clone(),
            data: knowledge.data(client),
            mode: CreateMode::EphemeralSequential,
        })
        .collect()
}

/// Padding in the names of the many ephemerals (long names make big
/// closeSession txns).
const EPHEMERAL_NAME_PAD: usize = 100;

/// Two to four ops, often a check guarding writes (a compare-and-set).
fn multi_ops(client: u32, knowledge: &mut Knowledge, rng: &mut Rng) -> Vec<SubOp> {
    let count = rng.between(2, 4);
    let mut ops = Vec::new();
    for _ in 0..count {
        let path = rng.pick(&KEYS).to_string();
        let op = match rng.below(4) {
            0 => SubOp::Check {
                version: knowledge.version(&path, rng),
                path,
            },
            1 => SubOp::SetData {
                version: knowledge.version(&path, rng),
                data: knowledge.data(client),
                path,
            },
            2 => SubOp::Create {
                data: knowledge.data(client),
                path,
                mode: if rng.chance(1, 3) {
                    CreateMode::Ephemeral
                } else {
                    CreateMode::Persistent
                },
            },
            _ => SubOp::Delete {
                version: knowledge.version(&path, rng),
                path,
            },
        };
        ops.push(op);
    }
    ops
}

/// The client request for an op (the expiry pseudo-op has none).
pub fn request(op: &Op) -> Request {
    match op {
        Op::Create { path, data, mode } => Request::Create(create_request(path, data, *mode)),
        Op::Delete { path, version } => Request::Delete(DeleteRequest {
            path: path.clone(),
            version: *version,
        }),
        Op::SetData {
            path,
            data,
            version,
        } => Request::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(data.clone()),
            version: *version,
        }),
        Op::Multi(ops) => Request::Multi(ops.iter().map(multi_op).collect()),
        Op::GetData { path, watch } => Request::GetData(GetDataRequest {
            path: path.clone(),
            watch: *watch,
        }),
        Op::Exists { path, watch } => Request::Exists(ExistsRequest {
            path: path.clone(),
            watch: *watch,
        }),
        Op::GetChildren { path, watch } => Request::GetChildren(GetChildrenRequest {
            path: path.clone(),
            watch: *watch,
        }),
        Op::Sync => Request::Sync(SyncRequest { path: "/".into() }),
        Op::AddWatch { path, recursive } => Request::AddWatch(AddWatchRequest {
            path: path.clone(),
            mode: if *recursive {
                proto::AddWatchMode::PersistentRecursive
            } else {
                proto::AddWatchMode::Persistent
            }
            .code(),
        }),
        Op::CloseSession => Request::CloseSession,
        Op::Expire => unreachable!("the expiry pseudo-op is never sent"),
    }
}

fn create_request(path: &str, data: &[u8], mode: CreateMode) -> CreateRequest {
    CreateRequest {
        path: path.to_string(),
        data: Some(data.to_vec()),
        acl: Acl::open_unsafe(),
        flags: mode.code(),
    }
}

fn multi_op(op: &SubOp) -> MultiOp {
    match op {
        SubOp::Create { path, data, mode } => MultiOp::Create(create_request(path, data, *mode)),
        SubOp::Delete { path, version } => MultiOp::Delete(DeleteRequest {
            path: path.clone(),
            version: *version,
        }),
        SubOp::SetData {
            path,
            data,
            version,
        } => MultiOp::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(data.clone()),
            version: *version,
        }),
        SubOp::Check { path, version } => MultiOp::Check(CheckVersionRequest {
            path: path.clone(),
            version: *version,
        }),
    }
}
