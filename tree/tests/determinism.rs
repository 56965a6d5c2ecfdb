//! Determinism: two trees whose hash maps are keyed by different seeds, fed
//! the same inputs, give the same outputs — prepared txns, applied results,
//! watch events, reads, reap candidates, session and ephemeral lists, watch
//! reports, digests and snapshot bytes. A simulator replays a run from its
//! seed only if nothing the tree returns follows a hash map's iteration order.

use proptest::prelude::*;
use proto::{perms, Acl, AddWatchMode, CreateMode, Id, WatcherType};
use tree::{Caller, DataTree, TxnHeader, WatchLists, WriteOp};

const NAMES: [&str; 4] = ["a", "b", "c", "d"];
/// Sessions 1..=SESSIONS exist from the start; more sessions than hash
/// buckets in a small table make orders differ between seeds.
const SESSIONS: i64 = 12;

#[derive(Debug, Clone)]
enum Input {
    /// Prepare a write; it stays pending (pipelined) until `Apply`.
    Write {
        session: i64,
        op: WriteOp,
    },
    /// Apply every pending txn, in zxid order.
    Apply,
    /// exists / getData / getChildren, each with a watch.
    Read {
        session: i64,
        kind: u8,
        path: String,
    },
    AddWatch {
        session: i64,
        path: String,
        recursive: bool,
    },
    RemoveWatches {
        session: i64,
        path: String,
        check_only: bool,
    },
    SetWatches {
        session: i64,
        relative_zxid: i64,
        paths: Vec<String>,
    },
    CloseSession {
        session: i64,
    },
}

fn path() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(NAMES.to_vec()), 1..=2)
        .prop_map(|parts| format!("/{}", parts.join("/")))
}

fn session() -> impl Strategy<Value = i64> {
    1..=SESSIONS
}

fn write() -> impl Strategy<Value = WriteOp> {
    let mode = prop::sample::select(vec![
        CreateMode::Persistent,
        CreateMode::Ephemeral,
        CreateMode::PersistentSequential,
        CreateMode::Container,
        CreateMode::PersistentWithTtl,
    ]);
    let create = (path(), mode).prop_map(|(path, mode)| WriteOp::Create {
        data: Some(path.as_bytes().to_vec()),
        path,
        acl: Acl::open_unsafe(),
        mode,
        ttl_ms: if mode.is_ttl() { 5 } else { -1 },
    });
    let simple = prop_oneof![
        4 => create,
        2 => path().prop_map(|path| WriteOp::Delete { path, version: -1 }),
        2 => path().prop_map(|path| WriteOp::SetData { path, data: Some(b"x".to_vec()), version: -1 }),
        1 => path().prop_map(|path| WriteOp::SetAcl {
            path,
            acl: vec![Acl { perms: perms::ALL, id: Id::new("world", "anyone") }],
            version: -1,
        }),
    ];
    prop_oneof![
        6 => simple.clone(),
        1 => prop::collection::vec(simple, 1..4).prop_map(WriteOp::Multi),
    ]
}

fn input() -> impl Strategy<Value = Input> {
    prop_oneof![
        8 => (session(), write()).prop_map(|(session, op)| Input::Write { session, op }),
        4 => Just(Input::Apply),
        6 => (session(), 0..3u8, path()).prop_map(|(session, kind, path)| Input::Read { session, kind, path }),
        2 => (session(), path(), any::<bool>())
            .prop_map(|(session, path, recursive)| Input::AddWatch { session, path, recursive }),
        1 => (session(), path(), any::<bool>())
            .prop_map(|(session, path, check_only)| Input::RemoveWatches { session, path, check_only }),
        1 => (session(), 0..20i64, prop::collection::vec(path(), 0..4))
            .prop_map(|(session, relative_zxid, paths)| Input::SetWatches { session, relative_zxid, paths }),
        1 => session().prop_map(|session| Input::CloseSession { session }),
    ]
}

/// One tree and its pipeline; every output goes to `transcript`.
struct Run {
    tree: DataTree,
    zxid: i64,
    pending: Vec<(TxnHeader, tree::Txn)>,
    transcript: Vec<String>,
}

impl Run {
    fn new(hash_seed: u64) -> Run {
        let mut run = Run {
            tree: DataTree::with_hash_seed(hash_seed),
            zxid: 0,
            pending: Vec::new(),
            transcript: Vec::new(),
        };
        run.tree.set_extended_types_enabled(true);
        for session in 1..=SESSIONS {
            run.write(session, &WriteOp::CreateSession { timeout_ms: 4000 });
        }
        run.apply();
        run
    }

    fn write(&mut self, session_id: i64, op: &WriteOp) {
        let caller = Caller {
            session_id,
            auth: &[],
        };
        let result = self.tree.prepare(&caller, op, self.zxid + 1);
        if let Ok(txn) = &result {
            self.zxid += 1;
            let header = TxnHeader {
                session_id,
                cxid: 0,
                zxid: self.zxid,
                time_ms: self.zxid,
            };
            self.pending.push((header, txn.clone()));
        }
        self.transcript.push(format!("prepare {result:?}"));
    }

    fn apply(&mut self) {
        for (header, txn) in std::mem::take(&mut self.pending) {
            let applied = self.tree.apply(&header, &txn);
            self.transcript.push(format!("apply {applied:?}"));
        }
        self.tree.check_invariants();
    }

    fn step(&mut self, input: &Input) {
        let caller = |session_id| Caller {
            session_id,
            auth: &[],
        };
        let out = match input {
            Input::Write { session, op } => return self.write(*session, op),
            Input::Apply => return self.apply(),
            Input::Read {
                session,
                kind,
                path,
            } => match kind {
                0 => format!("{:?}", self.tree.exists(&caller(*session), path, true)),
                1 => format!("{:?}", self.tree.get_data(&caller(*session), path, true)),
                _ => format!(
                    "{:?}",
                    self.tree.get_children(&caller(*session), path, true)
                ),
            },
            Input::AddWatch {
                session,
                path,
                recursive,
            } => {
                let mode = if *recursive {
                    AddWatchMode::PersistentRecursive
                } else {
                    AddWatchMode::Persistent
                };
                format!("{:?}", self.tree.add_watch(&caller(*session), path, mode))
            }
            Input::RemoveWatches {
                session,
                path,
                check_only,
            } => format!(
                "{:?}",
                self.tree
                    .remove_watches(&caller(*session), path, WatcherType::Any, *check_only)
            ),
            Input::SetWatches {
                session,
                relative_zxid,
                paths,
            } => {
                let lists = WatchLists {
                    data: paths,
                    exist: paths,
                    child: paths,
                    persistent: paths,
                    persistent_recursive: paths,
                };
                format!(
                    "{:?}",
                    self.tree.set_watches(*session, *relative_zxid, &lists)
                )
            }
            Input::CloseSession { session } => {
                self.write(*session, &WriteOp::CloseSession);
                self.apply();
                self.tree.watches.remove_session(*session);
                return self.write(*session, &WriteOp::CreateSession { timeout_ms: 4000 });
            }
        };
        self.transcript.push(out);
    }

    /// Everything the tree reports about itself, as text.
    fn report(&self) -> Vec<String> {
        let mut report = vec![
            format!("digest {}", self.tree.digest()),
            format!("nodes {:?}", self.tree.nodes().collect::<Vec<_>>()),
            format!("sessions {:?}", self.tree.sessions().collect::<Vec<_>>()),
            format!(
                "reap {:?}",
                self.tree.reap_candidates(self.zxid + 100, 1000)
            ),
            format!("watch summary {:?}", self.tree.watches.summary()),
            format!("watches by session {:?}", self.tree.watches.by_session()),
            format!("watches by path {:?}", self.tree.watches.by_path()),
        ];
        for session in 1..=SESSIONS {
            report.push(format!(
                "ephemerals {session} {:?}",
                self.tree.get_ephemerals(session, "/")
            ));
        }
        report
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn outputs_do_not_depend_on_the_hash_seed(
        inputs in prop::collection::vec(input(), 1..80),
        seeds in (any::<u64>(), any::<u64>()),
    ) {
        let mut a = Run::new(seeds.0);
        let mut b = Run::new(seeds.1 ^ 1);
        for input in &inputs {
            a.step(input);
            b.step(input);
            prop_assert_eq!(a.transcript.last(), b.transcript.last(), "after {:?}", input);
        }
        // A close of every session, with writes still pending: the txn lists
        // ephemerals from the tree and from the pipeline (ten of session 1's).
        for index in 0..10 {
            let ephemeral = WriteOp::Create {
                path: format!("/e{index}"),
                data: None,
                acl: Acl::open_unsafe(),
                mode: CreateMode::Ephemeral,
                ttl_ms: -1,
            };
            a.write(1, &ephemeral);
            b.write(1, &ephemeral);
        }
        for session in 1..=SESSIONS {
            a.write(session, &WriteOp::CloseSession);
            b.write(session, &WriteOp::CloseSession);
        }
        prop_assert_eq!(&a.transcript, &b.transcript);
        prop_assert_eq!(a.report(), b.report());
        prop_assert_eq!(a.tree.snapshot_bytes(), b.tree.snapshot_bytes());
        a.apply();
        b.apply();
        prop_assert_eq!(&a.transcript, &b.transcript);
        prop_assert_eq!(a.report(), b.report());
        let snapshot = a.tree.snapshot_bytes();
        prop_assert_eq!(&snapshot, &b.tree.snapshot_bytes());
        // A tree loaded with yet another seed writes the same snapshot.
        let loaded = DataTree::from_snapshot_with_hash_seed(&snapshot, seeds.0 ^ seeds.1 ^ 7).unwrap();
        prop_assert_eq!(loaded.snapshot_bytes(), snapshot);
        prop_assert_eq!(loaded.digest(), a.tree.digest());
    }
}

#[test]
fn the_hash_seed_is_kept_and_new_trees_draw_their_own() {
    // Proves with_hash_seed keys the tree by the given seed and new() draws
    // one from the process's random source (two trees, two seeds).
    assert_eq!(DataTree::with_hash_seed(42).hash_seed(), 42);
    assert_ne!(DataTree::new().hash_seed(), DataTree::new().hash_seed());
}
