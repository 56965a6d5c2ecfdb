//! Histories recorded by real clients against real servers, judged by the
//! simulator's own checkers (`fk-sim check-history FILE.json`).
//!
//! `tests/test_netns_faults.py` runs an ensemble of real processes (either
//! ferrokeeper or Apache ZooKeeper), drives it with kazoo clients while it
//! kills servers and cuts links, and writes down what each client asked and
//! what it was told. This module turns that file into the simulator's
//! [`OpRecord`]s and checks them as `world` checks an ensemble's history:
//!
//! 1. replies leave each session in request order (FIFO);
//! 2. sequential consistency, exactly the simulator's
//!    [`Consistency::Sequential`]: every write (acknowledged ones at the zxid
//!    their reply carried) in one zxid order that respects real time, each
//!    read at its reply's zxid, each session's ops in the order it issued
//!    them, and every answer the [`Model`]'s answer at its place;
//! 3. the final tree — read by the test from every server once the faults
//!    healed and the servers agreed — is the model's tree after all those
//!    writes: no acknowledged write lost, nothing nobody wrote.
//!
//! # Placing the writes whose replies never came
//!
//! The simulator places an unanswered write by the server's log (see
//! `checks`). A real client has no log to read, so the test makes every
//! write leave a *receipt*: a znode it creates and that nothing ever
//! deletes — a plain create of a unique path is its own receipt, and every
//! other write is a multi that also creates `<root>/r/<client>-<n>`. An
//! unanswered write whose receipt is in the final tree took effect at the
//! receipt's czxid (all of a multi shares one zxid); one whose receipt is
//! absent never took effect (a multi is all or nothing), and is left out.
//! An unanswered read says nothing and is left out too.
//!
//! Plain writes of a node that one client owns may name *evidence* instead,
//! kept only for when no reply comes: the client touches that node no more
//! after an unanswered write, so the final tree tells what became of it —
//! `created` (the node exists: at its czxid), `data` (the node holds this
//! setData's data, unique to it: at its mzxid) or `deleted` (the node is
//! gone: at its parent's pzxid, the parent's children changing no more).
//! Otherwise the write never took effect (or was refused: the same).
//!
//! # The file format
//!
//! One JSON object (serde field names; every number a JSON integer):
//!
//! ```text
//! {
//!   "format": "fk-history-1",
//!   "root":   "/netns",            the subtree the test owns; "final" is all of it
//!   "ops": [ {                     every op any client invoked, in any order
//!     "client":  0,                the client (one kazoo instance): u32
//!     "session": 72057594037927936,  the session the op went out on (i64)
//!     "xid":     12,               the request's xid, or null when not known
//!     "call":    5,                position of the invocation in real-time order
//!     "op":      OP,
//!     "receipt": "/netns/r/0-3",   a path only this op creates (writes), or null
//!     "evidence": {"kind": "created" | "data" | "deleted", "path": P},  or null/absent
//!     "ret": null                  no reply: indeterminate; or
//!          | {"at": 9,             position of the reply in real-time order
//!             "zxid": 4294967299,  the reply header's zxid, or null when unknown
//!             "outcome": OUTCOME}
//!   } ],
//!   "final": [ {"path": "/netns/c/0-1", "data": "0-1", "version": 0,
//!               "czxid": 4294967300, "num_children": 0, "ephemeral_owner": 0,
//!               "mzxid": 4294967300, "pzxid": 4294967300} ]   (mzxid, pzxid: optional)
//! }
//! ```
//!
//! `call` and `at` come from one counter shared by all clients, bumped
//! before a request is sent and when a reply is read: op A happened before
//! op B iff A's `at` is below B's `call`. Data are UTF-8 strings (the bytes
//! of the znode). OP is tagged by `kind`:
//!
//! ```text
//! {"kind": "create", "path", "data", "mode"}   mode: ZooKeeper's CreateMode flag (0..3)
//! {"kind": "delete", "path", "version"}       {"kind": "set_data", "path", "data", "version"}
//! {"kind": "check", "path", "version"}        (inside a multi only)
//! {"kind": "multi", "ops": [OP, ...]}          create, delete, set_data, check
//! {"kind": "get_data", "path"}  {"kind": "exists", "path"}  {"kind": "get_children", "path"}
//! {"kind": "sync"}
//! ```
//!
//! OUTCOME is tagged by `kind` as well; STAT is `{"version", "ephemeral_owner",
//! "num_children", "data_length"}`:
//!
//! ```text
//! {"kind": "created", "path"}      {"kind": "deleted"}     {"kind": "data_set", "version"}
//! {"kind": "multi", "results": [{"kind": "created", "path"} | {"kind": "deleted"}
//!                               | {"kind": "data_set", "version"} | {"kind": "checked"}]}
//! {"kind": "multi_failed", "codes": [0, -103, -2]}   a multi refused as a whole
//! {"kind": "data", "data", "stat": STAT}   {"kind": "stat", "stat": STAT}
//! {"kind": "children", "children": ["a", "b"]}       {"kind": "done"}
//! {"kind": "error", "code": -101}          any error reply (KeeperException.Code)
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::Duration;

use proto::{CreateMode, ErrorCode};
use serde::Deserialize;
use thiserror::Error;

use crate::history::{OpRecord, Pin, Return};
use crate::linearizability::{check_ops_with, CheckOp, Consistency, Verdict};
use crate::model::{Model, NodeStat, Op, Outcome, SubOp, SubResult};

/// The value of the file's `format` field this parser reads.
pub const FORMAT: &str = "fk-history-1";

/// Why a file could not be read as a history (not a verdict on the servers).
#[derive(Debug, Error)]
pub enum FileError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("not a history file: {0}")]
    Json(#[from] serde_json::Error),
    #[error("format {found:?}, expected {FORMAT:?}")]
    UnknownFormat { found: String },
    #[error("op {op}: unknown create mode {mode}")]
    UnknownCreateMode { op: usize, mode: i32 },
    #[error("op {op}: unknown error code {code}")]
    UnknownErrorCode { op: usize, code: i32 },
    #[error("op {op}: a {kind} inside a multi (only create, delete, set_data, check)")]
    NotASubOp { op: usize, kind: &'static str },
    #[error("op {op}: a check outside a multi")]
    CheckOutsideMulti { op: usize },
    #[error("op {op}: its reply (at {at}) is not after its call (at {call})")]
    ReplyBeforeCall { op: usize, call: u64, at: u64 },
    #[error("ops {first} and {second} share the real-time position {at}")]
    PositionReused {
        first: usize,
        second: usize,
        at: u64,
    },
    #[error("op {op}: an unanswered write without a receipt cannot be placed")]
    NoReceipt { op: usize },
    #[error("op {op}: evidence {kind} needs {needs}")]
    EvidenceUnusable {
        op: usize,
        kind: &'static str,
        needs: &'static str,
    },
    #[error("ops {first} and {second} name the same receipt {path}")]
    ReceiptShared {
        first: usize,
        second: usize,
        path: String,
    },
    #[error("final node {path} is outside the root {root}")]
    OutsideRoot { path: String, root: String },
}

/// A property the recorded history breaks.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HistoryViolation {
    #[error("client {client} session 0x{session:x}: the reply of {later} came before the reply of {earlier}, issued first (replies out of request order)")]
    RepliesOutOfOrder {
        client: u32,
        session: i64,
        earlier: String,
        later: String,
    },
    #[error("no order of the ops explains {op}: the model answers {model_answer} there (after {linearized} ops in zxid order)")]
    NotSequentiallyConsistent {
        op: String,
        model_answer: String,
        linearized: usize,
    },
    #[error("{first} and {second} both claim txn 0x{zxid:x}")]
    ZxidReused {
        zxid: i64,
        first: String,
        second: String,
    },
    #[error(
        "{earlier} completed before {later} was invoked, yet their zxids order them the other way"
    )]
    RealTimeBroken { earlier: String, later: String },
    #[error("{op} was told it is txn 0x{zxid:x}, but its receipt {receipt} is {found}")]
    AcknowledgedWriteMoved {
        op: String,
        zxid: i64,
        receipt: String,
        found: String,
    },
    #[error("{op} was told it failed, yet its receipt {receipt} is in the final tree (created at 0x{czxid:x})")]
    RefusedWriteApplied {
        op: String,
        receipt: String,
        czxid: i64,
    },
    #[error(
        "one session issued {earlier} before {later}, yet their zxids order them the other way"
    )]
    SessionOrderBroken { earlier: String, later: String },
    #[error(
        "the check was inconclusive after {steps} steps (an answered op without a reply zxid?)"
    )]
    Inconclusive { steps: u64 },
    #[error("final tree at {path}: the writes in the history leave {expected}, the servers hold {found}")]
    FinalTreeDiffers {
        path: String,
        expected: String,
        found: String,
    },
}

/// One znode of the final tree as the test read it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct FinalNode {
    pub path: String,
    pub data: String,
    pub version: i32,
    pub czxid: i64,
    pub num_children: i32,
    pub ephemeral_owner: i64,
    /// Needed by `data` evidence.
    #[serde(default)]
    pub mzxid: Option<i64>,
    /// Needed by `deleted` evidence (on the parent).
    #[serde(default)]
    pub pzxid: Option<i64>,
}

/// What the final tree says about an unanswered plain write (see the
/// module docs).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Evidence {
    Created { path: String },
    Data { path: String },
    Deleted { path: String },
}

/// A history file, converted.
#[derive(Debug, Clone)]
pub struct RecordedHistory {
    pub root: String,
    pub ops: Vec<OpRecord>,
    /// Per op: the path only it creates (see the module docs).
    pub receipts: Vec<Option<String>>,
    /// Per op: what the final tree says of it if no reply came.
    pub evidence: Vec<Option<Evidence>>,
    pub final_tree: BTreeMap<String, FinalNode>,
}

/// What a passing check looked at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub ops: usize,
    pub answered: usize,
    /// Unanswered writes placed at their receipt's czxid.
    pub placed_by_receipt: usize,
    /// Unanswered writes placed by their evidence.
    pub placed_by_evidence: usize,
    /// Unanswered writes whose receipt is absent: they never happened.
    pub never_happened: usize,
    /// Unanswered reads, left out.
    pub unanswered_reads: usize,
    pub final_nodes: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileHistory {
    format: String,
    root: String,
    ops: Vec<FileOp>,
    #[serde(rename = "final")]
    final_tree: Vec<FinalNode>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileOp {
    client: u32,
    session: i64,
    xid: Option<i32>,
    call: u64,
    op: FileOpKind,
    receipt: Option<String>,
    #[serde(default)]
    evidence: Option<Evidence>,
    ret: Option<FileReturn>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FileOpKind {
    Create {
        path: String,
        data: String,
        mode: i32,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: String,
        version: i32,
    },
    Check {
        path: String,
        version: i32,
    },
    Multi {
        ops: Vec<FileOpKind>,
    },
    GetData {
        path: String,
    },
    Exists {
        path: String,
    },
    GetChildren {
        path: String,
    },
    Sync,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileReturn {
    at: u64,
    zxid: Option<i64>,
    outcome: FileOutcome,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileStat {
    version: i32,
    ephemeral_owner: i64,
    num_children: i32,
    data_length: i32,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FileSubResult {
    Created { path: String },
    Deleted,
    DataSet { version: i32 },
    Checked,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum FileOutcome {
    Created { path: String },
    Deleted,
    DataSet { version: i32 },
    Multi { results: Vec<FileSubResult> },
    MultiFailed { codes: Vec<i32> },
    Data { data: String, stat: FileStat },
    Stat { stat: FileStat },
    Children { children: Vec<String> },
    Done,
    Error { code: i32 },
}

/// Reads and converts a history file.
pub fn load(path: &Path) -> Result<RecordedHistory, FileError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::Io {
        path: path.display().to_string(),
        source,
    })?;
    parse(&text)
}

/// Converts a history from its JSON text.
pub fn parse(text: &str) -> Result<RecordedHistory, FileError> {
    let file: FileHistory = serde_json::from_str(text)?;
    if file.format != FORMAT {
        return Err(FileError::UnknownFormat { found: file.format });
    }
    let mut ops = Vec::with_capacity(file.ops.len());
    let mut receipts = Vec::with_capacity(file.ops.len());
    let mut evidence = Vec::with_capacity(file.ops.len());
    for (index, op) in file.ops.into_iter().enumerate() {
        let ret = match op.ret {
            Some(ret) if ret.at <= op.call => {
                return Err(FileError::ReplyBeforeCall {
                    op: index,
                    call: op.call,
                    at: ret.at,
                })
            }
            Some(ret) => Some(Return {
                at: ret.at,
                time: Duration::ZERO,
                zxid: ret.zxid,
                outcome: outcome(index, ret.outcome)?,
            }),
            None => None,
        };
        ops.push(OpRecord {
            client: op.client,
            session: op.session,
            xid: op.xid.unwrap_or(-1),
            op: convert_op(index, op.op)?,
            call: op.call,
            call_time: Duration::ZERO,
            ret,
        });
        receipts.push(op.receipt);
        evidence.push(op.evidence);
    }
    let mut final_tree = BTreeMap::new();
    for node in file.final_tree {
        if !within(&node.path, &file.root) {
            return Err(FileError::OutsideRoot {
                path: node.path,
                root: file.root,
            });
        }
        final_tree.insert(node.path.clone(), node);
    }
    let history = RecordedHistory {
        root: file.root,
        ops,
        receipts,
        evidence,
        final_tree,
    };
    history.validate()?;
    Ok(history)
}

fn within(path: &str, root: &str) -> bool {
    path == root || path.starts_with(&format!("{}/", root.trim_end_matches('/')))
}

fn mode(op: usize, mode: i32) -> Result<CreateMode, FileError> {
    CreateMode::from_code(mode).ok_or(FileError::UnknownCreateMode { op, mode })
}

fn error_code(op: usize, code: i32) -> Result<ErrorCode, FileError> {
    ErrorCode::from_code(code).ok_or(FileError::UnknownErrorCode { op, code })
}

fn convert_op(index: usize, op: FileOpKind) -> Result<Op, FileError> {
    Ok(match op {
        FileOpKind::Create {
            path,
            data,
            mode: m,
        } => Op::Create {
            path,
            data: data.into_bytes(),
            mode: mode(index, m)?,
        },
        FileOpKind::Delete { path, version } => Op::Delete { path, version },
        FileOpKind::SetData {
            path,
            data,
            version,
        } => Op::SetData {
            path,
            data: data.into_bytes(),
            version,
        },
        FileOpKind::Check { .. } => return Err(FileError::CheckOutsideMulti { op: index }),
        FileOpKind::Multi { ops } => Op::Multi(
            ops.into_iter()
                .map(|sub| convert_sub_op(index, sub))
                .collect::<Result<_, _>>()?,
        ),
        FileOpKind::GetData { path } => Op::GetData { path, watch: false },
        FileOpKind::Exists { path } => Op::Exists { path, watch: false },
        FileOpKind::GetChildren { path } => Op::GetChildren { path, watch: false },
        FileOpKind::Sync => Op::Sync,
    })
}

fn convert_sub_op(index: usize, op: FileOpKind) -> Result<SubOp, FileError> {
    let not = |kind| Err(FileError::NotASubOp { op: index, kind });
    Ok(match op {
        FileOpKind::Create {
            path,
            data,
            mode: m,
        } => SubOp::Create {
            path,
            data: data.into_bytes(),
            mode: mode(index, m)?,
        },
        FileOpKind::Delete { path, version } => SubOp::Delete { path, version },
        FileOpKind::SetData {
            path,
            data,
            version,
        } => SubOp::SetData {
            path,
            data: data.into_bytes(),
            version,
        },
        FileOpKind::Check { path, version } => SubOp::Check { path, version },
        FileOpKind::Multi { .. } => return not("multi"),
        FileOpKind::GetData { .. } => return not("get_data"),
        FileOpKind::Exists { .. } => return not("exists"),
        FileOpKind::GetChildren { .. } => return not("get_children"),
        FileOpKind::Sync => return not("sync"),
    })
}

fn stat(stat: FileStat) -> NodeStat {
    NodeStat {
        version: stat.version,
        ephemeral_owner: stat.ephemeral_owner,
        num_children: stat.num_children,
        data_length: stat.data_length,
    }
}

fn outcome(index: usize, outcome: FileOutcome) -> Result<Outcome, FileError> {
    Ok(match outcome {
        FileOutcome::Created { path } => Outcome::Created { path },
        FileOutcome::Deleted => Outcome::Deleted,
        FileOutcome::DataSet { version } => Outcome::DataSet { version },
        FileOutcome::Multi { results } => Outcome::Multi(
            results
                .into_iter()
                .map(|r| match r {
                    FileSubResult::Created { path } => SubResult::Created(path),
                    FileSubResult::Deleted => SubResult::Deleted,
                    FileSubResult::DataSet { version } => SubResult::DataSet { version },
                    FileSubResult::Checked => SubResult::Checked,
                })
                .collect(),
        ),
        FileOutcome::MultiFailed { codes } => {
            for code in &codes {
                error_code(index, *code)?;
            }
            Outcome::MultiFailed(codes)
        }
        FileOutcome::Data { data, stat: s } => Outcome::Data {
            data: data.into_bytes(),
            stat: stat(s),
        },
        FileOutcome::Stat { stat: s } => Outcome::Stat(stat(s)),
        FileOutcome::Children { mut children } => {
            // The model lists children in name order; servers in any.
            children.sort();
            Outcome::Children(children)
        }
        FileOutcome::Done => Outcome::Done,
        FileOutcome::Error { code } => Outcome::Error(error_code(index, code)?),
    })
}

impl RecordedHistory {
    /// The structural rules a recorder must keep (bad files, not bad servers).
    fn validate(&self) -> Result<(), FileError> {
        let mut positions: BTreeMap<u64, usize> = BTreeMap::new();
        for (index, op) in self.ops.iter().enumerate() {
            let ats = std::iter::once(op.call).chain(op.ret.as_ref().map(|r| r.at));
            for at in ats {
                if let Some(first) = positions.insert(at, index) {
                    return Err(FileError::PositionReused {
                        first,
                        second: index,
                        at,
                    });
                }
            }
            let unplaced = self.receipts[index].is_none() && self.evidence[index].is_none();
            if op.is_indeterminate() && op.op.is_write() && unplaced {
                return Err(FileError::NoReceipt { op: index });
            }
            if let Some(evidence) = &self.evidence[index] {
                if matches!(evidence, Evidence::Data { .. }) && !matches!(op.op, Op::SetData { .. })
                {
                    return Err(FileError::EvidenceUnusable {
                        op: index,
                        kind: "data",
                        needs: "a set_data op",
                    });
                }
                if op.is_indeterminate() {
                    self.by_evidence(index, evidence)?;
                }
            }
        }
        let mut named: BTreeMap<&str, usize> = BTreeMap::new();
        for (index, receipt) in self.receipts.iter().enumerate() {
            if let Some(path) = receipt {
                if let Some(first) = named.insert(path, index) {
                    return Err(FileError::ReceiptShared {
                        first,
                        second: index,
                        path: path.clone(),
                    });
                }
            }
        }
        Ok(())
    }

    /// A line naming op `index` for reports.
    pub fn describe(&self, index: usize) -> String {
        let op = &self.ops[index];
        let answer = match &op.ret {
            Some(ret) => format!(
                "-> {} at zxid {}",
                show(&ret.outcome),
                ret.zxid.map_or("?".into(), |z| format!("0x{z:x}"))
            ),
            None => "(no reply)".into(),
        };
        format!(
            "op {index} [client {} session 0x{:x} xid {}: {} {answer}]",
            op.client,
            op.session,
            op.xid,
            op.op.describe()
        )
    }

    /// The ops placed for the checker (see "Placing" in the module docs),
    /// with the index of each in `self.ops`.
    fn place(&self, report: &mut Report) -> (Vec<CheckOp<'_>>, Vec<usize>) {
        let mut placed = Vec::with_capacity(self.ops.len());
        let mut index_of = Vec::with_capacity(self.ops.len());
        for (index, record) in self.ops.iter().enumerate() {
            if !record.is_indeterminate() {
                report.answered += 1;
                placed.push(CheckOp::of(record));
                index_of.push(index);
                continue;
            }
            if !record.op.is_write() {
                report.unanswered_reads += 1;
                continue;
            }
            let zxid = match (&self.receipts[index], &self.evidence[index]) {
                (Some(receipt), _) => {
                    let zxid = self.final_tree.get(receipt).map(|node| node.czxid);
                    report.placed_by_receipt += usize::from(zxid.is_some());
                    zxid
                }
                (None, Some(evidence)) => {
                    let zxid = self.by_evidence(index, evidence).expect("validated");
                    report.placed_by_evidence += usize::from(zxid.is_some());
                    zxid
                }
                (None, None) => unreachable!("validated: an unanswered write names one"),
            };
            match zxid {
                Some(zxid) => {
                    placed.push(CheckOp {
                        record: std::borrow::Cow::Borrowed(record),
                        pin: Pin::Txn(zxid),
                        accept_any: true,
                    });
                    index_of.push(index);
                }
                None => report.never_happened += 1,
            }
        }
        (placed, index_of)
    }

    /// Where the final tree puts an unanswered write by its evidence, or
    /// None when it never took effect.
    fn by_evidence(&self, index: usize, evidence: &Evidence) -> Result<Option<i64>, FileError> {
        let unusable = |kind, needs| FileError::EvidenceUnusable {
            op: index,
            kind,
            needs,
        };
        Ok(match evidence {
            Evidence::Created { path } => self.final_tree.get(path).map(|node| node.czxid),
            Evidence::Data { path } => {
                let Op::SetData { data, .. } = &self.ops[index].op else {
                    unreachable!("validated: data evidence is a set_data's");
                };
                match self.final_tree.get(path) {
                    Some(node) if node.data.as_bytes() == data.as_slice() => {
                        Some(node.mzxid.ok_or(unusable("data", "the node's mzxid"))?)
                    }
                    _ => None,
                }
            }
            Evidence::Deleted { path } => {
                if self.final_tree.contains_key(path) {
                    return Ok(None);
                }
                let parent = match path.rfind('/') {
                    Some(0) => "/",
                    Some(slash) => &path[..slash],
                    None => return Err(unusable("deleted", "an absolute path")),
                };
                let node = self
                    .final_tree
                    .get(parent)
                    .ok_or(unusable("deleted", "the parent in the final tree"))?;
                Some(
                    node.pzxid
                        .ok_or(unusable("deleted", "the parent's pzxid"))?,
                )
            }
        })
    }

    /// Replies in request order on every session.
    fn check_fifo(&self) -> Result<(), HistoryViolation> {
        let mut sessions: BTreeMap<(u32, i64), Vec<usize>> = BTreeMap::new();
        for (index, op) in self.ops.iter().enumerate() {
            if op.ret.is_some() {
                sessions
                    .entry((op.client, op.session))
                    .or_default()
                    .push(index);
            }
        }
        for ((client, session), mut issued) in sessions {
            issued.sort_by_key(|i| self.ops[*i].call);
            for pair in issued.windows(2) {
                let at = |i: usize| self.ops[i].ret.as_ref().expect("answered").at;
                if at(pair[1]) < at(pair[0]) {
                    return Err(HistoryViolation::RepliesOutOfOrder {
                        client,
                        session,
                        earlier: self.describe(pair[0]),
                        later: self.describe(pair[1]),
                    });
                }
            }
        }
        Ok(())
    }

    /// Every answered write against its receipt: a write told it is txn
    /// Z left its receipt at czxid Z (the sim's "logged as told"); a write
    /// told it failed left none.
    fn check_receipts(&self) -> Result<(), HistoryViolation> {
        for (index, op) in self.ops.iter().enumerate() {
            let (Some(ret), Some(receipt)) = (&op.ret, &self.receipts[index]) else {
                continue;
            };
            let found = self.final_tree.get(receipt);
            match (&ret.outcome, op.pin(), found) {
                (Outcome::Created { .. } | Outcome::Multi(_), Pin::Txn(zxid), found)
                    if found.is_none_or(|node| node.czxid != zxid) =>
                {
                    return Err(HistoryViolation::AcknowledgedWriteMoved {
                        op: self.describe(index),
                        zxid,
                        receipt: receipt.clone(),
                        found: found.map_or("absent".into(), |node| {
                            format!("created at 0x{:x}", node.czxid)
                        }),
                    });
                }
                (Outcome::Error(_) | Outcome::MultiFailed(_), _, Some(node)) => {
                    return Err(HistoryViolation::RefusedWriteApplied {
                        op: self.describe(index),
                        receipt: receipt.clone(),
                        czxid: node.czxid,
                    });
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// The model's tree after every placed write, in zxid order.
    fn replay(placed: &[CheckOp<'_>]) -> Model {
        let mut writes: Vec<(i64, u64, usize)> = placed
            .iter()
            .enumerate()
            .filter_map(|(i, op)| match op.pin {
                Pin::Txn(zxid) => Some((zxid, op.record.call, i)),
                _ => None,
            })
            .collect();
        writes.sort();
        let mut model = Model::new();
        for (_, _, i) in writes {
            model.apply(placed[i].record.session, &placed[i].record.op);
        }
        model
    }

    /// The final tree against the model's subtree at the root.
    fn check_final_tree(&self, model: &Model) -> Result<(), HistoryViolation> {
        // Reads change nothing: one copy answers them all.
        let mut model = model.clone();
        let mut in_model = BTreeSet::new();
        let mut pending = vec![self.root.clone()];
        while let Some(path) = pending.pop() {
            let list = Op::GetChildren {
                path: path.clone(),
                watch: false,
            };
            if let Outcome::Children(children) = model.apply(0, &list) {
                for child in children {
                    pending.push(format!("{}/{child}", path.trim_end_matches('/')));
                }
                in_model.insert(path);
            }
        }
        if let Some(path) = in_model.iter().find(|p| !self.final_tree.contains_key(*p)) {
            return Err(HistoryViolation::FinalTreeDiffers {
                path: path.clone(),
                expected: describe_model_node(&mut model, path),
                found: "no such node".into(),
            });
        }
        for (path, node) in &self.final_tree {
            let found = NodeStat {
                version: node.version,
                ephemeral_owner: node.ephemeral_owner,
                num_children: node.num_children,
                data_length: node.data.len() as i32,
            };
            let found = Outcome::Data {
                data: node.data.clone().into_bytes(),
                stat: found,
            };
            let expected = model.apply(
                0,
                &Op::GetData {
                    path: path.clone(),
                    watch: false,
                },
            );
            if expected != found {
                return Err(HistoryViolation::FinalTreeDiffers {
                    path: path.clone(),
                    expected: describe_model_node(&mut model, path),
                    found: show(&found),
                });
            }
        }
        Ok(())
    }

    /// Runs every check (see the module docs).
    pub fn check(&self) -> Result<Report, HistoryViolation> {
        let mut report = Report {
            ops: self.ops.len(),
            final_nodes: self.final_tree.len(),
            ..Report::default()
        };
        self.check_fifo()?;
        self.check_receipts()?;
        let (placed, index_of) = self.place(&mut report);
        let name = |i: usize| self.describe(index_of[i]);
        match check_ops_with(&placed, u64::MAX, Consistency::Sequential) {
            Verdict::Linearizable { .. } => {}
            Verdict::NotLinearizable(cx) => {
                return Err(HistoryViolation::NotSequentiallyConsistent {
                    op: name(cx.op),
                    model_answer: cx.model_answer.as_ref().map_or("nothing".into(), show),
                    linearized: cx.linearized.len(),
                })
            }
            Verdict::Inconclusive { steps } => {
                return Err(HistoryViolation::Inconclusive { steps })
            }
            Verdict::ZxidReused {
                zxid,
                first,
                second,
            } => {
                return Err(HistoryViolation::ZxidReused {
                    zxid,
                    first: name(first),
                    second: name(second),
                })
            }
            Verdict::RealTimeBroken { earlier, later } => {
                return Err(HistoryViolation::RealTimeBroken {
                    earlier: name(earlier),
                    later: name(later),
                })
            }
            Verdict::SessionOrderBroken { earlier, later } => {
                return Err(HistoryViolation::SessionOrderBroken {
                    earlier: name(earlier),
                    later: name(later),
                })
            }
        }
        self.check_final_tree(&Self::replay(&placed))?;
        Ok(report)
    }
}

fn describe_model_node(model: &mut Model, path: &str) -> String {
    let read = Op::GetData {
        path: path.to_string(),
        watch: false,
    };
    match model.apply(0, &read) {
        Outcome::Error(ErrorCode::NoNode) => "no such node".into(),
        other => show(&other),
    }
}

/// An outcome for reports, with data as text (the tests write UTF-8).
fn show(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Data { data, stat } => {
            format!("Data {:?} {stat:?}", String::from_utf8_lossy(data))
        }
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests;
