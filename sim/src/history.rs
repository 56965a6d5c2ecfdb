//! What the clients saw: every operation with when it was invoked, when (and
//! whether) it completed, the zxid its reply carried and what it answered.
//!
//! Real-time order is the order of history events: one counter, shared by
//! every client and bumped at each invocation and completion, stands for
//! "happened before" — op A precedes op B iff A's completion number is below
//! B's invocation number. Simulated times are kept beside it for reports.
//!
//! An operation whose reply never came (its connection broke, its server
//! crashed) is *indeterminate*: it may have taken effect, at any point after
//! its invocation, or not at all. The server's expiry of a session is
//! recorded the same way, as a pseudo-operation ([`Op::Expire`]) that may
//! fall anywhere after the session's last sign of life.

use std::time::Duration;

use proto::ErrorCode;

use crate::model::{Op, Outcome};

/// Index of an operation in its history.
pub type OpId = usize;

/// A completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Return {
    /// Position in real-time order.
    pub at: u64,
    pub time: Duration,
    /// The zxid in the reply header (`None` for the expiry pseudo-op, whose
    /// "reply" is the client learning of it).
    pub zxid: Option<i64>,
    pub outcome: Outcome,
}

/// One operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpRecord {
    pub client: u32,
    pub session: i64,
    /// The request's xid: its cxid in the txn it becomes (0 for an expiry,
    /// which the server's closeSession txn carries with cxid 0).
    pub xid: i32,
    pub op: Op,
    /// Position in real-time order of the invocation.
    pub call: u64,
    pub call_time: Duration,
    /// `None`: indeterminate.
    pub ret: Option<Return>,
}

impl OpRecord {
    /// How the reply's zxid pins the op in the server's total order:
    /// a write whose reply came from applying its own txn is that txn; a
    /// read (or a write refused before it became a txn) saw the tree as of
    /// its zxid.
    pub fn pin(&self) -> Pin {
        let Some(Return {
            zxid: Some(zxid),
            outcome,
            ..
        }) = &self.ret
        else {
            return Pin::Free;
        };
        if self.is_indeterminate() {
            return Pin::Free;
        }
        if self.op.is_write() && !is_refused_before_the_log(outcome) {
            Pin::Txn(*zxid)
        } else {
            Pin::Point(*zxid)
        }
    }
}

impl OpRecord {
    /// Whether the op may or may not have taken effect: no reply came (its
    /// connection broke or was closed under it — the node closes the
    /// connections of writes in flight when the log fails, since their
    /// records may still be on disk and come back at the next start). An
    /// error reply is final: a write told it failed never takes effect
    /// (`Violation::RefusedWriteApplied`).
    pub fn is_indeterminate(&self) -> bool {
        self.ret.is_none()
    }
}

/// Errors a write gets without a txn of its own: the reply carries the
/// zxid the tree stood at, not a txn's.
fn is_refused_before_the_log(outcome: &Outcome) -> bool {
    matches!(
        outcome,
        Outcome::Error(
            ErrorCode::SystemError
                | ErrorCode::SessionExpired
                | ErrorCode::SessionMoved
                | ErrorCode::MarshallingError
                | ErrorCode::Unimplemented
        )
    )
}

/// Where a reply's zxid puts an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pin {
    /// The op is the txn with this zxid.
    Txn(i64),
    /// The op saw the tree with every txn up to this zxid and none after.
    Point(i64),
    /// No zxid: anywhere its real-time window allows.
    Free,
}

/// One database's history (a standalone server, later an ensemble).
#[derive(Debug, Clone, Default)]
pub struct History {
    pub ops: Vec<OpRecord>,
}

impl History {
    /// Records an invocation; `call` comes from the world's shared counter.
    pub fn invoke(
        &mut self,
        client: u32,
        session: i64,
        xid: i32,
        op: Op,
        call: u64,
        call_time: Duration,
    ) -> OpId {
        self.ops.push(OpRecord {
            client,
            session,
            xid,
            op,
            call,
            call_time,
            ret: None,
        });
        self.ops.len() - 1
    }

    /// Records a completion.
    pub fn complete(&mut self, id: OpId, ret: Return) {
        let record = &mut self.ops[id];
        assert!(record.ret.is_none(), "op {id} completed twice");
        assert!(ret.at > record.call, "a completion follows its invocation");
        record.ret = Some(ret);
    }

    /// Records that `session` was expired by the server at some point after
    /// `alive_at` (its last sign of life); `learned` is when its client
    /// found out, if it did.
    pub fn expired(
        &mut self,
        client: u32,
        session: i64,
        alive_at: (u64, Duration),
        learned: Option<(u64, Duration)>,
    ) {
        let id = self.invoke(client, session, 0, Op::Expire, alive_at.0, alive_at.1);
        if let Some((at, time)) = learned {
            self.complete(
                id,
                Return {
                    at,
                    time,
                    zxid: None,
                    outcome: Outcome::Done,
                },
            );
        }
    }

    pub fn completed(&self) -> usize {
        self.ops.iter().filter(|o| o.ret.is_some()).count()
    }
}
