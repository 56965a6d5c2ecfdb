//! The tree's share of a request, on a tree of 1,000,000 znodes (1,000
//! directories of 1,000 children, 100-byte values): create, setData and
//! getData, each through `DataTree::prepare` + `apply` as the server runs a
//! write, and apply alone as recovery replays one.
//!
//! `cargo bench -p bench --bench tree`
//!
//! Creates are timed 1,000 at a time and then deleted untimed, so the tree
//! stays at 1M znodes however long criterion measures.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use proto::{Acl, CreateMode};
use tree::{Caller, DataTree, Txn, TxnHeader, WriteOp};

const DIRECTORIES: usize = 1_000;
const CHILDREN: usize = 1_000;
const VALUE_BYTES: usize = 100;
/// Creates timed per batch before the batch is deleted again.
const CREATE_BATCH: u64 = 1_000;

const CALLER: Caller<'static> = Caller {
    session_id: 0x100,
    auth: &[],
};

/// A tree with its next zxid.
struct Bench {
    tree: DataTree,
    zxid: i64,
    value: Vec<u8>,
}

impl Bench {
    fn write(&mut self, op: &WriteOp) {
        let txn = self.prepare(op);
        self.apply(&txn);
    }

    fn prepare(&mut self, op: &WriteOp) -> Txn {
        self.zxid += 1;
        self.tree
            .prepare(&CALLER, op, self.zxid)
            .expect("prepare succeeds")
    }

    fn apply(&mut self, txn: &Txn) {
        let header = TxnHeader {
            session_id: CALLER.session_id,
            cxid: 1,
            zxid: self.zxid,
            time_ms: 1_764_000_000_000,
        };
        let applied = self.tree.apply(&header, txn);
        assert!(applied.result.is_ok(), "{:?}", applied.result);
    }

    fn create(&self, path: String) -> WriteOp {
        WriteOp::Create {
            path,
            data: Some(self.value.clone()),
            acl: Acl::open_unsafe(),
            mode: CreateMode::Persistent,
            ttl_ms: -1,
        }
    }

    fn delete(&self, path: String) -> WriteOp {
        WriteOp::Delete { path, version: -1 }
    }

    /// Builds the 1M-znode tree.
    fn new() -> Bench {
        let mut bench = Bench {
            tree: DataTree::new(),
            zxid: 0,
            value: vec![b'v'; VALUE_BYTES],
        };
        bench.write(&WriteOp::CreateSession { timeout_ms: 30_000 });
        bench.write(&bench.create("/b".into()));
        for d in 0..DIRECTORIES {
            bench.write(&bench.create(format!("/b/d{d:04}")));
            for c in 0..CHILDREN {
                bench.write(&bench.create(format!("/b/d{d:04}/c{c:04}")));
            }
        }
        assert!(bench.tree.node_count() > DIRECTORIES * CHILDREN);
        bench
    }
}

/// A spread of existing children: a cheap deterministic walk over the tree.
fn key(i: u64) -> String {
    let n = i.wrapping_mul(0x9E37_79B9) as usize % (DIRECTORIES * CHILDREN);
    format!("/b/d{:04}/c{:04}", n / CHILDREN, n % CHILDREN)
}

fn bench_tree(c: &mut Criterion) {
    let started = Instant::now();
    let mut bench = Bench::new();
    eprintln!(
        "tree: built {} znodes in {:.1}s",
        bench.tree.node_count(),
        started.elapsed().as_secs_f64()
    );
    let mut group = c.benchmark_group("tree-1M");
    group.throughput(Throughput::Elements(1));
    let mut created = 0u64;

    group.bench_function("create (prepare+apply)", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(CREATE_BATCH);
                let paths: Vec<String> = (0..batch)
                    .map(|i| {
                        format!(
                            "/b/d{:04}/n{}",
                            (created + i) as usize % DIRECTORIES,
                            created + i
                        )
                    })
                    .collect();
                let ops: Vec<WriteOp> = paths.iter().map(|p| bench.create(p.clone())).collect();
                let start = Instant::now();
                for op in &ops {
                    bench.write(black_box(op));
                }
                timed += start.elapsed();
                for p in paths {
                    bench.write(&bench.delete(p));
                }
                created += batch;
                left -= batch;
            }
            timed
        })
    });

    group.bench_function("create (apply only, replay)", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters;
            while left > 0 {
                let batch = left.min(CREATE_BATCH);
                let paths: Vec<String> = (0..batch)
                    .map(|i| {
                        format!(
                            "/b/d{:04}/r{}",
                            (created + i) as usize % DIRECTORIES,
                            created + i
                        )
                    })
                    .collect();
                let mut txns = Vec::with_capacity(paths.len());
                for p in &paths {
                    let op = bench.create(p.clone());
                    let txn = bench.prepare(&op);
                    bench.apply(&txn); // keep zxids and the overlay in step
                    txns.push((bench.zxid, txn));
                }
                for p in &paths {
                    bench.write(&bench.delete(p.clone()));
                }
                // Replay: the same creates again, applied without prepare.
                let start = Instant::now();
                for (_, txn) in &txns {
                    bench.zxid += 1;
                    bench.apply(black_box(txn));
                }
                timed += start.elapsed();
                for p in paths {
                    bench.write(&bench.delete(p));
                }
                created += batch;
                left -= batch;
            }
            timed
        })
    });

    let mut i = 0u64;
    group.bench_function("setData (prepare+apply)", |b| {
        b.iter(|| {
            i += 1;
            let op = WriteOp::SetData {
                path: key(i),
                data: Some(bench.value.clone()),
                version: -1,
            };
            bench.write(black_box(&op));
        })
    });

    group.bench_function("getData", |b| {
        b.iter(|| {
            i += 1;
            let path = key(i);
            black_box(
                bench
                    .tree
                    .get_data(&CALLER, black_box(&path), false)
                    .expect("exists"),
            )
        })
    });
    group.finish();
    bench.tree.check_invariants();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench_tree
}
criterion_main!(benches);
