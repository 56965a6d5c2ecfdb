//! The linearizability checker: Wing & Gong's search with Lowe's memo
//! (the algorithm of Porcupine and Knossos), over the [`Model`] tree, with
//! ZooKeeper's zxids as extra constraints.
//!
//! # What it proves
//!
//! That there is one sequential order of all operations which (a) respects
//! real time — an op that completed before another was invoked comes first,
//! (b) respects the zxids the replies carried — writes in zxid order, each
//! read between the txns at or below its zxid and those above it, and (c)
//! in which every completed op answers exactly what the model answers at
//! its place. Indeterminate ops (no reply) may fall anywhere after their
//! invocation or nowhere; an [`crate::model::Op::Expire`] floats from the session's last
//! sign of life.
//!
//! (b) is stronger than linearizability and it is what ZooKeeper promises:
//! one total order of txns, named by zxid. It is also what keeps the search
//! small — completed writes are pinned, so the search branches only over
//! where indeterminate ops and expiries go.
//!
//! # Ensembles: sequential consistency
//!
//! An ensemble promises less for reads: a follower answers from its own
//! tree, which may be behind the leader's. [`Consistency::Sequential`]
//! keeps (b) and (c) but weakens (a) to what ZooKeeper guarantees: writes
//! and syncs respect real time among themselves (writes are linearizable,
//! and a sync sees every write completed before it was called), and each
//! session's answered ops take effect in the order the session issued
//! them (a read never sees less than the session's earlier ops did). A
//! stale read of another session's write is fine; a read that goes back
//! is not.
//!
//! # Two ways to the verdict
//!
//! When every op is pinned (the simulator places unanswered ops by the
//! server's log, see `checks`), the pins leave no choice but the order of
//! reads of one zxid, which commute: [`check_ops`] then checks real time
//! against zxid order and replays the model once, in linear time. When some
//! op floats, it searches.
//!
//! # The search
//!
//! Calls and returns in real-time order form a list. Walking it from the
//! head, a call may be linearized if the zxid constraints allow it and the
//! model answers what the op saw; it is then lifted out of the list (call
//! and return) and the walk restarts. Reaching a return whose op is not yet
//! linearized means the last choice was wrong: undo it and try the next
//! candidate. A state (which ops are linearized, the model's digest) is
//! explored at most once. The search is bounded by a step budget; past it
//! the verdict is "inconclusive", never a false alarm.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashSet};

use crate::history::{OpRecord, Pin};
use crate::model::{Model, Outcome};

/// One op as the search sees it: the record, where its zxid pins it, and
/// whether any answer will do (an op whose reply never came, placed by
/// the caller from the server's log).
#[derive(Debug, Clone)]
pub struct CheckOp<'a> {
    /// Borrowed from the history, or made up for a txn the server made
    /// itself (see `checks`).
    pub record: Cow<'a, OpRecord>,
    pub pin: Pin,
    pub accept_any: bool,
}

impl<'a> CheckOp<'a> {
    /// The op as its reply alone places it.
    pub fn of(record: &'a OpRecord) -> CheckOp<'a> {
        CheckOp {
            record: Cow::Borrowed(record),
            pin: record.pin(),
            accept_any: record.is_indeterminate(),
        }
    }
}

/// What the checker concluded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Linearizable {
        /// Search steps taken.
        steps: u64,
    },
    /// No valid order exists. `op` is an operation that no order could
    /// place, from the deepest point the search reached.
    NotLinearizable(Box<Counterexample>),
    /// The step budget ran out first.
    Inconclusive { steps: u64 },
    /// Two completed writes claim the same zxid.
    ZxidReused {
        zxid: i64,
        first: usize,
        second: usize,
    },
    /// `earlier` completed before `later` was invoked, yet their zxids put
    /// `earlier` after `later` (a stale read, or a write ordered before
    /// one that completed ahead of it).
    RealTimeBroken { earlier: usize, later: usize },
    /// `earlier` and `later` are one session's ops, issued in that order,
    /// yet their zxids put `later` before `earlier`.
    SessionOrderBroken { earlier: usize, later: usize },
}

/// Which real-time guarantee a history is held to (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    /// Every op in one order that respects real time (a standalone server).
    Linearizable,
    /// Writes and syncs linearizable, every session in its own order (an
    /// ensemble).
    Sequential,
}

/// The deepest point the search reached before it had to give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counterexample {
    /// Ops in the order they were linearized up to that point.
    pub linearized: Vec<usize>,
    /// The op whose completion came with no order to explain it.
    pub op: usize,
    /// What the model would answer there (for the report).
    pub model_answer: Option<Outcome>,
}

const NIL: usize = usize::MAX;

/// The doubly linked list of call and return entries.
struct Entries {
    /// For entry `e`: the op it belongs to, and whether it is the call.
    op: Vec<usize>,
    is_call: Vec<bool>,
    /// The matching return of a call entry.
    partner: Vec<usize>,
    next: Vec<usize>,
    prev: Vec<usize>,
    /// Index of the sentinel head.
    head: usize,
}

impl Entries {
    fn build(ops: &[CheckOp<'_>]) -> Entries {
        // (position, is_return, op): returns of indeterminate ops go last.
        let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            events.push((op.record.call, false, i));
            let at = match (&op.record.ret, op.accept_any) {
                (Some(ret), false) => ret.at,
                // An op placed by the log (no reply came, or an expiry the
                // client learned before its txn) may take effect any time
                // after its call.
                _ => u64::MAX,
            };
            events.push((at, true, i));
        }
        events.sort();
        let n = events.len();
        let head = n;
        let mut entries = Entries {
            op: Vec::with_capacity(n),
            is_call: Vec::with_capacity(n),
            partner: vec![NIL; n],
            next: vec![NIL; n + 1],
            prev: vec![NIL; n + 1],
            head,
        };
        let mut call_of = vec![NIL; ops.len()];
        for (e, (_, is_return, op)) in events.iter().enumerate() {
            entries.op.push(*op);
            entries.is_call.push(!is_return);
            if *is_return {
                entries.partner[call_of[*op]] = e;
            } else {
                call_of[*op] = e;
            }
        }
        let mut last = head;
        for e in 0..n {
            entries.next[last] = e;
            entries.prev[e] = last;
            last = e;
        }
        entries.next[last] = NIL;
        entries
    }

    fn first(&self) -> usize {
        self.next[self.head]
    }

    fn unlink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = n;
        if n != NIL {
            self.prev[n] = p;
        }
    }

    fn relink(&mut self, e: usize) {
        let (p, n) = (self.prev[e], self.next[e]);
        self.next[p] = e;
        if n != NIL {
            self.prev[n] = e;
        }
    }

    /// Takes a call and its return out of the list.
    fn lift(&mut self, call: usize) {
        self.unlink(call);
        self.unlink(self.partner[call]);
    }

    /// Puts them back (in the reverse order of `lift`).
    fn unlift(&mut self, call: usize) {
        self.relink(self.partner[call]);
        self.relink(call);
    }
}

/// The zxid constraints, kept as the search moves.
struct Pins {
    /// Zxids of pinned txns not yet linearized.
    txns_open: BTreeSet<i64>,
    /// Zxids of pinned txns linearized, in order.
    txns_done: Vec<i64>,
}

impl Pins {
    fn allows(&self, pin: Pin) -> bool {
        match pin {
            Pin::Free => true,
            Pin::Txn(zxid) => self.txns_open.first() == Some(&zxid),
            Pin::Point(zxid) => {
                self.txns_open.first().is_none_or(|next| *next > zxid)
                    && self.txns_done.last().is_none_or(|last| *last <= zxid)
            }
        }
    }

    fn take(&mut self, pin: Pin) {
        if let Pin::Txn(zxid) = pin {
            assert!(self.txns_open.remove(&zxid));
            self.txns_done.push(zxid);
        }
    }

    fn give_back(&mut self, pin: Pin) {
        if let Pin::Txn(zxid) = pin {
            assert_eq!(self.txns_done.pop(), Some(zxid));
            self.txns_open.insert(zxid);
        }
    }
}

/// A fixed per-op key for the memo's hash of "which ops are linearized".
fn zobrist(op: usize) -> u64 {
    let mut z = (op as u64).wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One choice on the search stack.
struct Choice {
    call: usize,
    /// The state before, if the op changed it.
    state_before: Option<Model>,
}

/// Checks a history as its replies alone place each op.
pub fn check(ops: &[OpRecord], budget: u64) -> Verdict {
    let ops: Vec<CheckOp<'_>> = ops
        .iter()
        .filter(|op| !op.is_indeterminate() || op.op.is_write())
        .map(CheckOp::of)
        .collect();
    check_ops(&ops, budget)
}

/// Checks `ops` (one database's history) within `budget` search steps.
/// Indices in the verdict are positions in `ops`.
pub fn check_ops(ops: &[CheckOp<'_>], budget: u64) -> Verdict {
    check_ops_with(ops, budget, Consistency::Linearizable)
}

/// [`check_ops`] under a chosen guarantee. The search handles only
/// [`Consistency::Linearizable`]: a sequential history with an op left
/// unpinned is inconclusive (the simulator pins every op it checks).
pub fn check_ops_with(ops: &[CheckOp<'_>], budget: u64, consistency: Consistency) -> Verdict {
    let mut owner = std::collections::BTreeMap::new();
    for (i, op) in ops.iter().enumerate() {
        if let Pin::Txn(zxid) = op.pin {
            if let Some(first) = owner.insert(zxid, i) {
                return Verdict::ZxidReused {
                    zxid,
                    first,
                    second: i,
                };
            }
        }
    }
    let pinned = ops.iter().all(|op| op.pin != Pin::Free);
    match consistency {
        Consistency::Linearizable if pinned => check_in_zxid_order(ops),
        Consistency::Linearizable => search(ops, budget),
        Consistency::Sequential if pinned => check_sequential(ops),
        Consistency::Sequential => Verdict::Inconclusive { steps: 0 },
    }
}

/// The search itself (what `check_ops` falls back to when some op is not
/// pinned; tests run it on pinned histories too, to cross-check).
pub fn search(ops: &[CheckOp<'_>], budget: u64) -> Verdict {
    let mut txns_open = BTreeSet::new();
    for op in ops {
        if let Pin::Txn(zxid) = op.pin {
            txns_open.insert(zxid);
        }
    }
    let pins: Vec<Pin> = ops.iter().map(|op| op.pin).collect();
    let mut pinned = Pins {
        txns_open,
        txns_done: Vec::new(),
    };
    let mut entries = Entries::build(ops);
    let mut state = Model::new();
    let mut stack: Vec<Choice> = Vec::new();
    let mut linearized_hash = 0u64;
    let mut seen: HashSet<(u64, u64)> = HashSet::new();
    let mut deepest: Option<Counterexample> = None;
    let mut steps = 0u64;
    let mut entry = entries.first();
    while entries.first() != NIL {
        steps += 1;
        if steps > budget {
            return Verdict::Inconclusive { steps };
        }
        assert_ne!(entry, NIL, "a walk ends at a return before the list ends");
        let op_index = entries.op[entry];
        if entries.is_call[entry] {
            let pin = pins[op_index];
            if pinned.allows(pin) {
                if let Some(next_state) = try_op(&state, &ops[op_index]) {
                    let changed = next_state.is_some();
                    let digest = next_state.as_ref().unwrap_or(&state).digest();
                    let key = (linearized_hash ^ zobrist(op_index), digest);
                    if seen.insert(key) {
                        let state_before = next_state.map(|s| std::mem::replace(&mut state, s));
                        debug_assert_eq!(changed, state_before.is_some());
                        stack.push(Choice {
                            call: entry,
                            state_before,
                        });
                        linearized_hash ^= zobrist(op_index);
                        pinned.take(pin);
                        entries.lift(entry);
                        entry = entries.first();
                        continue;
                    }
                }
            }
            entry = entries.next[entry];
        } else {
            // A return before its op was placed: remember how deep we got,
            // then undo the last choice and try the next candidate.
            if deepest
                .as_ref()
                .is_none_or(|d| d.linearized.len() < stack.len())
            {
                let mut probe = state.clone();
                deepest = Some(Counterexample {
                    linearized: stack.iter().map(|c| entries.op[c.call]).collect(),
                    op: op_index,
                    model_answer: Some(
                        probe.apply(ops[op_index].record.session, &ops[op_index].record.op),
                    ),
                });
            }
            let Some(choice) = stack.pop() else {
                return Verdict::NotLinearizable(Box::new(deepest.expect("recorded just above")));
            };
            let undone = entries.op[choice.call];
            if let Some(before) = choice.state_before {
                state = before;
            }
            linearized_hash ^= zobrist(undone);
            pinned.give_back(pins[undone]);
            entries.unlift(choice.call);
            entry = entries.next[choice.call];
        }
    }
    Verdict::Linearizable { steps }
}

/// Where a pinned op sits in zxid order: a txn at (zxid, 0), a read of the
/// tree as of a zxid at (zxid, 1).
fn slot(pin: Pin) -> (i64, u8) {
    match pin {
        Pin::Txn(zxid) => (zxid, 0),
        Pin::Point(zxid) => (zxid, 1),
        Pin::Free => unreachable!("only pinned ops have slots"),
    }
}

/// The search without a search: when every op is pinned, the only orders
/// the pins allow are zxid order with the reads of one zxid in any order
/// among themselves (they change nothing, so ordering them by invocation
/// loses no generality and meets every real-time constraint among them).
/// So: check that real time never contradicts the slots, then replay the
/// model in that order. Exact, and linear in the history.
fn check_in_zxid_order(ops: &[CheckOp<'_>]) -> Verdict {
    if let Some(broken) = real_time_broken(ops, |_| true) {
        return broken;
    }
    replay_in_zxid_order(ops)
}

/// The pinned check under [`Consistency::Sequential`]: real time among
/// writes and syncs, each session's issue order, then the model replayed
/// in zxid order.
fn check_sequential(ops: &[CheckOp<'_>]) -> Verdict {
    // An expiry is the server's closeSession, placed by the log: its
    // "invocation" (the session's last sign of life) may be a read a
    // lagging follower answered after the txn, so it orders nothing here.
    let ordered = |op: &CheckOp<'_>| {
        let expiry = op.record.op == crate::model::Op::Expire;
        (matches!(op.pin, Pin::Txn(_)) && !expiry) || op.record.op == crate::model::Op::Sync
    };
    if let Some(broken) = real_time_broken(ops, ordered) {
        return broken;
    }
    // Each session's answered ops, in the order it issued them.
    let mut sessions: std::collections::BTreeMap<(u32, i64), Vec<usize>> = Default::default();
    for (i, op) in ops.iter().enumerate() {
        let by_client = op.record.client != crate::checks::SERVER_CLIENT;
        let answered = op.record.ret.is_some() && !op.accept_any;
        if by_client && answered && op.record.op != crate::model::Op::Expire {
            sessions
                .entry((op.record.client, op.record.session))
                .or_default()
                .push(i);
        }
    }
    for issued in sessions.values_mut() {
        issued.sort_by_key(|i| ops[*i].record.call);
        let mut latest: Option<((i64, u8), usize)> = None;
        for i in issued.iter() {
            let here = slot(ops[*i].pin);
            if let Some((before, earlier)) = latest {
                if before > here {
                    return Verdict::SessionOrderBroken { earlier, later: *i };
                }
            }
            if latest.is_none_or(|(before, _)| here > before) {
                latest = Some((here, *i));
            }
        }
    }
    replay_in_zxid_order(ops)
}

/// The first pair of ops (among those `ordered` picks) where one completed
/// before the other was invoked yet their slots say otherwise.
fn real_time_broken(
    ops: &[CheckOp<'_>],
    ordered: impl Fn(&CheckOp<'_>) -> bool,
) -> Option<Verdict> {
    let never = u64::MAX;
    let ret_at = |op: &CheckOp<'_>| match (&op.record.ret, op.accept_any) {
        (Some(ret), false) => ret.at,
        _ => never,
    };
    // Sweep invocations and completions in real-time order, keeping the
    // latest slot among the ops completed so far.
    let mut events: Vec<(u64, bool, usize)> = Vec::with_capacity(ops.len() * 2);
    for (i, op) in ops.iter().enumerate().filter(|(_, op)| ordered(op)) {
        events.push((op.record.call, true, i));
        if ret_at(op) != never {
            events.push((ret_at(op), false, i));
        }
    }
    // At one position a completion comes before an invocation: a later
    // op's invocation number is always above an earlier one's completion.
    events.sort_by_key(|(at, is_call, i)| (*at, *is_call, *i));
    let mut latest: Option<((i64, u8), usize)> = None;
    for (_, is_call, i) in &events {
        let here = slot(ops[*i].pin);
        if *is_call {
            if let Some((before, earlier)) = latest {
                if before > here {
                    return Some(Verdict::RealTimeBroken { earlier, later: *i });
                }
            }
        } else if latest.is_none_or(|(before, _)| here > before) {
            latest = Some((here, *i));
        }
    }
    None
}

/// Replays the model over the ops in zxid order (reads of one zxid by
/// invocation), checking every answer.
fn replay_in_zxid_order(ops: &[CheckOp<'_>]) -> Verdict {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|i| (slot(ops[*i].pin), ops[*i].record.call));
    let mut state = Model::new();
    for (done, i) in order.iter().enumerate() {
        if try_op(&state, &ops[*i]).is_none() {
            let mut probe = state.clone();
            let record = &ops[*i].record;
            return Verdict::NotLinearizable(Box::new(Counterexample {
                linearized: order[..done].to_vec(),
                op: *i,
                model_answer: Some(probe.apply(record.session, &record.op)),
            }));
        }
        if let Some(Some(next)) = try_op(&state, &ops[*i]) {
            state = next;
        }
    }
    Verdict::Linearizable {
        steps: ops.len() as u64,
    }
}

/// Applies `record` to `state` if the model's answer matches what the op
/// saw: `Some(None)` (matches, state unchanged), `Some(Some(new))`
/// (matches, new state), `None` (does not match here).
fn try_op(state: &Model, op: &CheckOp<'_>) -> Option<Option<Model>> {
    let record = &op.record;
    if record.op.is_write() && matches!(op.pin, Pin::Point(_)) {
        // Refused before it became a txn: it changed nothing, and its
        // answer (SYSTEMERROR, SESSIONEXPIRED...) is the server's, not the tree's.
        return Some(None);
    }
    let mut next = state.clone();
    let answer = next.apply(record.session, &record.op);
    match &record.ret {
        Some(ret) if !op.accept_any && answer != ret.outcome => return None,
        _ => {}
    }
    // Digests differ whenever states do; equal digests are checked in full.
    let changed = next.digest() != state.digest() || next != *state;
    Some(changed.then_some(next))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, Return};
    use crate::model::Op;
    use proto::{CreateMode, ErrorCode};
    use std::time::Duration;

    /// Checks a history both ways (the zxid-order check when every op is
    /// pinned, and the search) and asserts they agree; returns the first.
    fn check(ops: &[OpRecord], budget: u64) -> Verdict {
        let fast = super::check(ops, budget);
        let placed: Vec<CheckOp<'_>> = ops
            .iter()
            .filter(|op| !op.is_indeterminate() || op.op.is_write())
            .map(CheckOp::of)
            .collect();
        let slow = search(&placed, budget);
        let ok = |v: &Verdict| matches!(v, Verdict::Linearizable { .. });
        if !matches!(slow, Verdict::Inconclusive { .. }) {
            assert_eq!(ok(&fast), ok(&slow), "{fast:?} vs {slow:?}");
        }
        fast
    }

    fn set(path: &str, data: &[u8]) -> Op {
        Op::SetData {
            path: path.into(),
            data: data.to_vec(),
            version: -1,
        }
    }

    fn get(path: &str) -> Op {
        Op::GetData {
            path: path.into(),
            watch: false,
        }
    }

    fn ret(at: u64, zxid: Option<i64>, outcome: Outcome) -> Return {
        Return {
            at,
            time: Duration::ZERO,
            zxid,
            outcome,
        }
    }

    fn data(bytes: &[u8], version: i32) -> Outcome {
        Outcome::Data {
            data: bytes.to_vec(),
            stat: crate::model::NodeStat {
                version,
                ephemeral_owner: 0,
                num_children: 0,
                data_length: bytes.len() as i32,
            },
        }
    }

    /// A history with /a created at zxid 1 by client 0.
    fn with_a() -> History {
        let mut h = History::default();
        let create = Op::Create {
            path: "/a".into(),
            data: b"0".to_vec(),
            mode: CreateMode::Persistent,
        };
        let id = h.invoke(0, 1, 0, create, 1, Duration::ZERO);
        h.complete(id, ret(2, Some(1), Outcome::Created { path: "/a".into() }));
        h
    }

    #[test]
    fn a_read_of_the_latest_write_is_linearizable_and_a_stale_one_is_not() {
        let mut h = with_a();
        let w = h.invoke(0, 1, 0, set("/a", b"1"), 3, Duration::ZERO);
        h.complete(w, ret(4, Some(2), Outcome::DataSet { version: 1 }));
        let r = h.invoke(1, 2, 0, get("/a"), 5, Duration::ZERO);
        h.complete(r, ret(6, Some(2), data(b"1", 1)));
        assert!(matches!(
            check(&h.ops, 10_000),
            Verdict::Linearizable { .. }
        ));

        // The same read answering the old value after the write completed.
        h.ops[r].ret = Some(ret(6, Some(1), data(b"0", 0)));
        assert_eq!(
            check(&h.ops, 10_000),
            Verdict::RealTimeBroken {
                earlier: w,
                later: r
            }
        );
        // Or claiming the new zxid with the old value.
        h.ops[r].ret = Some(ret(6, Some(2), data(b"0", 0)));
        let Verdict::NotLinearizable(cx) = check(&h.ops, 10_000) else {
            panic!("a read whose value is not its zxid's must be caught");
        };
        assert_eq!(cx.op, r);
    }

    #[test]
    fn an_indeterminate_write_may_have_happened_or_not() {
        let mut h = with_a();
        h.invoke(0, 1, 0, set("/a", b"lost?"), 3, Duration::ZERO);
        let r1 = h.invoke(1, 2, 0, get("/a"), 4, Duration::ZERO);
        h.complete(r1, ret(5, Some(1), data(b"0", 0)));
        assert!(matches!(
            check(&h.ops, 10_000),
            Verdict::Linearizable { .. }
        ));
        let r2 = h.invoke(1, 2, 0, get("/a"), 6, Duration::ZERO);
        h.complete(r2, ret(7, Some(2), data(b"lost?", 1)));
        assert!(matches!(
            check(&h.ops, 10_000),
            Verdict::Linearizable { .. }
        ));
        // But it cannot be undone once seen.
        let r3 = h.invoke(1, 2, 0, get("/a"), 8, Duration::ZERO);
        h.complete(r3, ret(9, Some(2), data(b"0", 0)));
        assert!(matches!(check(&h.ops, 10_000), Verdict::NotLinearizable(_)));
    }

    #[test]
    fn writes_must_follow_their_zxids_even_when_concurrent() {
        // Two concurrent setData calls; the replies say w1 got zxid 3 and
        // w2 zxid 2, and both report version 1 — impossible in zxid order.
        let mut h = with_a();
        let w1 = h.invoke(0, 1, 0, set("/a", b"x"), 3, Duration::ZERO);
        let w2 = h.invoke(1, 2, 0, set("/a", b"y"), 4, Duration::ZERO);
        h.complete(w1, ret(5, Some(3), Outcome::DataSet { version: 1 }));
        h.complete(w2, ret(6, Some(2), Outcome::DataSet { version: 1 }));
        assert!(matches!(check(&h.ops, 10_000), Verdict::NotLinearizable(_)));
        h.ops[w1].ret = Some(ret(5, Some(3), Outcome::DataSet { version: 2 }));
        assert!(matches!(
            check(&h.ops, 10_000),
            Verdict::Linearizable { .. }
        ));
    }

    #[test]
    fn an_expiry_removes_ephemerals_somewhere_after_the_last_sign_of_life() {
        let mut h = History::default();
        let c = h.invoke(
            0,
            9,
            0,
            Op::Create {
                path: "/e".into(),
                data: vec![],
                mode: CreateMode::Ephemeral,
            },
            1,
            Duration::ZERO,
        );
        h.complete(c, ret(2, Some(1), Outcome::Created { path: "/e".into() }));
        h.expired(0, 9, (2, Duration::ZERO), None);
        let r = h.invoke(1, 3, 0, get("/e"), 5, Duration::ZERO);
        h.complete(r, ret(6, Some(2), Outcome::Error(ErrorCode::NoNode)));
        assert!(matches!(
            check(&h.ops, 10_000),
            Verdict::Linearizable { .. }
        ));
        // Without the expiry nothing explains the vanished ephemeral.
        h.ops.remove(1);
        assert!(matches!(check(&h.ops, 10_000), Verdict::NotLinearizable(_)));
    }

    #[test]
    fn two_acknowledged_writes_cannot_share_a_zxid() {
        let mut h = with_a();
        let w = h.invoke(0, 1, 0, set("/a", b"1"), 3, Duration::ZERO);
        h.complete(w, ret(4, Some(1), Outcome::DataSet { version: 1 }));
        assert!(matches!(
            check(&h.ops, 10_000),
            Verdict::ZxidReused { zxid: 1, .. }
        ));
    }

    #[test]
    fn the_budget_bounds_the_search() {
        let mut h = with_a();
        for i in 0..30u64 {
            h.invoke(0, 1, 0, set("/a", &[i as u8]), 3 + i, Duration::ZERO);
        }
        assert!(matches!(check(&h.ops, 10), Verdict::Inconclusive { .. }));
    }
}
