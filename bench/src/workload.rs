//! What the load generator asks for: the workloads, the namespace they use,
//! and the per-session source that writes the next request.
//!
//! ```text
//! /fkbench                         everything the load generator creates
//! /fkbench/keys                    data = "<keys>:<value size>" once set up
//! /fkbench/keys/k00000000 ...      the key space (--keys) for setData, getData,
//!                                  the read/write mix and the keeper mix
//! /fkbench/run-<tag>               one per run; create and write-1m put
//!                                  s<session>-<seq> here (unique names)
//! /fkbench/run-<tag>/k<session>    the keeper mix's per-session directory:
//!                                  n<seq> children created, listed, deleted
//! ```
//!
//! Keys are chosen uniformly at random from a per-session seeded RNG, so a run
//! is reproducible from `--seed` up to the interleaving of sessions.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Arc;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::wire;

/// Root of the load generator's namespace.
pub const ROOT: &str = "/fkbench";
/// Parent of the key space.
pub const KEYS_DIR: &str = "/fkbench/keys";
/// The keeper mix keeps at most this many live znodes per session, so that
/// its getChildren replies and its directories stay small.
pub const KEEPER_LIVE_MAX: usize = 64;

/// The default op count of the write-1m workload.
pub const WRITE_1M_OPS: u64 = 1_000_000;

/// A workload: which requests a session sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// Unique persistent creates (`s<session>-<seq>` under the run directory).
    Create,
    /// setData of a random key.
    SetData,
    /// getData of a random key.
    GetData,
    /// getData with probability `read_percent`%, setData otherwise.
    Mix { read_percent: u8 },
    /// A ClickHouse-Keeper-style mix of create, delete, setData, getData and
    /// getChildren (weights in [`Workload::Keeper`]'s source).
    Keeper,
    /// Unique creates, 1,000,000 of them unless `--ops` says otherwise.
    Write1M,
}

impl Workload {
    /// Parses `create`, `setdata`, `getdata`, `mix:<read %>`, `keeper`, `write-1m`.
    pub fn parse(s: &str) -> Result<Workload, String> {
        let lower = s.to_ascii_lowercase();
        Ok(match lower.as_str() {
            "create" => Workload::Create,
            "setdata" | "set" => Workload::SetData,
            "getdata" | "get" => Workload::GetData,
            "keeper" => Workload::Keeper,
            "write-1m" | "write1m" => Workload::Write1M,
            other => match other.strip_prefix("mix:") {
                Some(p) => {
                    let read_percent: u8 = p.parse().map_err(|_| format!("bad read %: {p}"))?;
                    if read_percent > 100 {
                        return Err(format!("read % over 100: {read_percent}"));
                    }
                    Workload::Mix { read_percent }
                }
                None => {
                    return Err(format!(
                        "unknown workload {s:?} (create, setdata, getdata, mix:<read %>, keeper, write-1m)"
                    ))
                }
            },
        })
    }

    /// The name `parse` accepts.
    pub fn name(&self) -> String {
        match self {
            Workload::Create => "create".into(),
            Workload::SetData => "setdata".into(),
            Workload::GetData => "getdata".into(),
            Workload::Mix { read_percent } => format!("mix:{read_percent}"),
            Workload::Keeper => "keeper".into(),
            Workload::Write1M => "write-1m".into(),
        }
    }

    /// Whether the key space must exist before the run.
    pub fn needs_keys(&self) -> bool {
        matches!(
            self,
            Workload::SetData | Workload::GetData | Workload::Mix { .. } | Workload::Keeper
        )
    }
}

/// The kinds of request the workloads send; the report has a histogram each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum OpKind {
    Create,
    SetData,
    GetData,
    GetChildren,
    Delete,
}

impl OpKind {
    pub const COUNT: usize = 5;
    pub const ALL: [OpKind; OpKind::COUNT] = [
        OpKind::Create,
        OpKind::SetData,
        OpKind::GetData,
        OpKind::GetChildren,
        OpKind::Delete,
    ];

    pub fn index(self) -> usize {
        self as usize
    }

    pub fn name(self) -> &'static str {
        match self {
            OpKind::Create => "create",
            OpKind::SetData => "setData",
            OpKind::GetData => "getData",
            OpKind::GetChildren => "getChildren",
            OpKind::Delete => "delete",
        }
    }
}

/// The path of key `index`.
pub fn key_path(out: &mut String, index: u64) {
    out.clear();
    write!(out, "{KEYS_DIR}/k{index:08}").expect("writing to a String");
}

/// The run directory for `tag`.
pub fn run_dir(tag: &str) -> String {
    format!("{ROOT}/run-{tag}")
}

/// The keeper mix's directory for session `session`.
pub fn keeper_dir(run_dir: &str, session: usize) -> String {
    format!("{run_dir}/k{session}")
}

/// Writes the requests of one session.
#[derive(Debug)]
pub struct OpSource {
    workload: Workload,
    session: usize,
    rng: SmallRng,
    keys: u64,
    value: Arc<[u8]>,
    run_dir: Arc<str>,
    keeper_dir: String,
    /// Next sequence number for unique names.
    seq: u64,
    /// Keeper mix: sequence numbers of this session's live znodes, oldest
    /// first (a create is counted live once sent: the session's FIFO order
    /// applies it before any later delete).
    live: VecDeque<u64>,
    path: String,
}

impl OpSource {
    pub fn new(
        workload: Workload,
        session: usize,
        seed: u64,
        keys: u64,
        value: Arc<[u8]>,
        run_dir: Arc<str>,
    ) -> OpSource {
        assert!(keys > 0 || !workload.needs_keys(), "key space is empty");
        let keeper_dir = keeper_dir(&run_dir, session);
        OpSource {
            workload,
            session,
            rng: SmallRng::seed_from_u64(
                seed ^ (session as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15),
            ),
            keys,
            value,
            run_dir,
            keeper_dir,
            seq: 0,
            live: VecDeque::new(),
            path: String::with_capacity(64),
        }
    }

    /// Appends the next request frame (with `xid`) to `out` and says what it is.
    pub fn next(&mut self, xid: i32, out: &mut Vec<u8>) -> OpKind {
        match self.workload {
            Workload::Create | Workload::Write1M => self.create_unique(xid, out),
            Workload::SetData => self.set_data(xid, out),
            Workload::GetData => self.get_data(xid, out),
            Workload::Mix { read_percent } => {
                if self.rng.gen_range(0..100u8) < read_percent {
                    self.get_data(xid, out)
                } else {
                    self.set_data(xid, out)
                }
            }
            Workload::Keeper => self.keeper(xid, out),
        }
    }

    fn create_unique(&mut self, xid: i32, out: &mut Vec<u8>) -> OpKind {
        self.path.clear();
        write!(self.path, "{}/s{}-{}", self.run_dir, self.session, self.seq)
            .expect("writing to a String");
        self.seq += 1;
        wire::put_create(out, xid, &self.path, &self.value);
        OpKind::Create
    }

    fn random_key(&mut self) {
        let index = self.rng.gen_range(0..self.keys);
        key_path(&mut self.path, index);
    }

    fn set_data(&mut self, xid: i32, out: &mut Vec<u8>) -> OpKind {
        self.random_key();
        wire::put_set_data(out, xid, &self.path, &self.value);
        OpKind::SetData
    }

    fn get_data(&mut self, xid: i32, out: &mut Vec<u8>) -> OpKind {
        self.random_key();
        wire::put_get_data(out, xid, &self.path);
        OpKind::GetData
    }

    /// Weights: create 25, delete 25, setData 15, getData 25, getChildren 10.
    /// A create with [`KEEPER_LIVE_MAX`] live znodes becomes a delete, a delete
    /// with none becomes a create, so the directory stays bounded.
    fn keeper(&mut self, xid: i32, out: &mut Vec<u8>) -> OpKind {
        let roll = self.rng.gen_range(0..100u8);
        match roll {
            0..=49 => {
                let create =
                    (roll < 25 || self.live.is_empty()) && self.live.len() < KEEPER_LIVE_MAX;
                self.path.clear();
                if create {
                    write!(self.path, "{}/n{}", self.keeper_dir, self.seq)
                        .expect("writing to a String");
                    self.live.push_back(self.seq);
                    self.seq += 1;
                    wire::put_create(out, xid, &self.path, &self.value);
                    OpKind::Create
                } else {
                    let seq = self.live.pop_front().expect("a live znode to delete");
                    write!(self.path, "{}/n{}", self.keeper_dir, seq).expect("writing to a String");
                    wire::put_delete(out, xid, &self.path);
                    OpKind::Delete
                }
            }
            50..=64 => self.set_data(xid, out),
            65..=89 => self.get_data(xid, out),
            _ => {
                wire::put_get_children(out, xid, &self.keeper_dir);
                OpKind::GetChildren
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_names_round_trip() {
        for w in [
            Workload::Create,
            Workload::SetData,
            Workload::GetData,
            Workload::Mix { read_percent: 90 },
            Workload::Keeper,
            Workload::Write1M,
        ] {
            assert_eq!(Workload::parse(&w.name()).unwrap(), w);
        }
        assert!(Workload::parse("mix:101").is_err());
        assert!(Workload::parse("nope").is_err());
    }

    /// The keeper mix never deletes what it did not create, and stays bounded.
    #[test]
    fn keeper_mix_is_bounded_and_consistent() {
        let mut source = OpSource::new(
            Workload::Keeper,
            3,
            42,
            100,
            Arc::from(&b"v"[..]),
            Arc::from("/fkbench/run-t"),
        );
        let mut created = std::collections::HashSet::new();
        let mut counts = [0u32; OpKind::COUNT];
        for xid in 0..100_000 {
            let mut out = Vec::new();
            let kind = source.next(xid, &mut out);
            counts[kind.index()] += 1;
            let frame = &out[4..];
            let path_len = i32::from_be_bytes(frame[8..12].try_into().unwrap()) as usize;
            let path = std::str::from_utf8(&frame[12..12 + path_len])
                .unwrap()
                .to_owned();
            match kind {
                OpKind::Create => assert!(created.insert(path)),
                OpKind::Delete => assert!(created.remove(&path), "deleted {path} never created"),
                OpKind::GetChildren => assert_eq!(path, "/fkbench/run-t/k3"),
                OpKind::SetData | OpKind::GetData => assert!(path.starts_with("/fkbench/keys/k")),
            }
            assert!(created.len() <= KEEPER_LIVE_MAX);
        }
        for kind in OpKind::ALL {
            assert!(
                counts[kind.index()] > 5_000,
                "{kind:?} too rare: {counts:?}"
            );
        }
    }
}
