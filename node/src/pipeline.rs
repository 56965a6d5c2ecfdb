//! The write pipeline: every txn between "prepared" (or received from the
//! leader) and "applied", and who waits for each one's reply.
//!
//! ```text
//!   prepare / receive ─▶ appends ─▶ Append (≤ 1 in flight) ─▶ durable ─┐
//!   (zxid n)             [batch][batch]…                    (log says) ├─▶ committed ─▶ applied
//!                                      commit known (standalone: durable;┘   (here: known   (tree)
//!                                      leader: quorum acks; learner: COMMIT)  and durable)
//! ```
//!
//! Invariant: `applied ≤ committed ≤ durable ≤ prepared`, where committed
//! means "known committed and durable here" — a txn is applied only once
//! both hold. The txns in flight are exactly those after `applied`, up to
//! `prepared`, in increasing zxid order (zxids jump at an epoch change).
//!
//! A write's reply is found by (session, cxid) — the identity a txn carries
//! in its header on every server — not by a zxid that only this server
//! assigned, so that a follower can wait for the commit of a write it
//! forwarded. The waiting index maps that pair to the connection whose queue
//! holds the reply slot.

use std::collections::VecDeque;

use bytes::Bytes;
use tree::{Txn, TxnHeader};

use crate::io::{Action, ConnId, LogRecord, StorageFailure};

/// Txns prepared and not yet durable before the node stops taking requests
/// (the driver stops feeding it until the log catches up).
pub const PIPELINE_TXNS_MAX: usize = 16 * 1024;
/// The same bound in encoded bytes.
pub const PIPELINE_BYTES_MAX: usize = 64 << 20;

/// A txn not yet applied.
pub(crate) type InFlight = (TxnHeader, Txn, Bytes);

/// One append's worth of records.
#[derive(Debug, Default)]
struct Batch {
    records: Vec<LogRecord>,
    bytes: usize,
}

#[derive(Debug)]
pub(crate) struct Pipeline {
    zxid_prepared: i64,
    zxid_durable: i64,
    /// Known committed (by the quorum), durable here or not.
    zxid_commit_known: i64,
    /// The next prepared txn's zxid is above this (an epoch's start).
    zxid_floor: i64,
    /// Txns not yet applied, in zxid order, with their encoded records.
    in_flight: VecDeque<InFlight>,
    /// Txns not yet handed to the log, cut into appends.
    batches: VecDeque<Batch>,
    /// Encoded bytes prepared and not yet durable.
    bytes_not_durable: usize,
    /// The last zxid and the payload bytes of the append in flight.
    append_in_flight: Option<(i64, usize)>,
    /// (session, cxid) → the connection waiting for that txn's reply, and
    /// how many replies it waits for under that pair (a client that reuses
    /// an xid while the first is in flight). A hash map: every write
    /// inserts and removes an entry, and nothing iterates it but the
    /// invariant check.
    waiting: tree::HashMap<(i64, i32), (ConnId, u32)>,
    /// The log failed: nothing more is prepared, ever.
    failed: Option<StorageFailure>,
    append_records_max: usize,
    append_bytes_max: usize,
}

impl Pipeline {
    /// A pipeline whose tree has applied everything up to `zxid`.
    pub(crate) fn new(zxid: i64, append_records_max: usize, append_bytes_max: usize) -> Pipeline {
        assert!(append_records_max > 0 && append_bytes_max > 0);
        Pipeline {
            zxid_prepared: zxid,
            zxid_durable: zxid,
            zxid_commit_known: zxid,
            zxid_floor: zxid,
            in_flight: VecDeque::new(),
            batches: VecDeque::new(),
            bytes_not_durable: 0,
            append_in_flight: None,
            waiting: tree::HashMap::with_hasher(tree::hasher(0)),
            failed: None,
            append_records_max,
            append_bytes_max,
        }
    }

    pub(crate) fn zxid_prepared(&self) -> i64 {
        self.zxid_prepared
    }

    pub(crate) fn zxid_durable(&self) -> i64 {
        self.zxid_durable
    }

    /// Committed and durable here: what may be applied.
    pub(crate) fn zxid_committed(&self) -> i64 {
        self.zxid_commit_known.min(self.zxid_durable)
    }

    pub(crate) fn zxid_commit_known(&self) -> i64 {
        self.zxid_commit_known
    }

    /// The zxid the next prepared txn gets.
    pub(crate) fn zxid_next(&self) -> i64 {
        self.zxid_prepared.max(self.zxid_floor) + 1
    }

    /// Txns prepared from now on carry zxids above `zxid` (a new epoch).
    pub(crate) fn set_floor(&mut self, zxid: i64) {
        self.zxid_floor = self.zxid_floor.max(zxid);
    }

    pub(crate) fn failed(&self) -> Option<StorageFailure> {
        self.failed
    }

    /// Whether an append is with the log.
    pub(crate) fn append_in_flight(&self) -> bool {
        self.append_in_flight.is_some()
    }

    /// Whether the node can take more requests without the pipeline growing
    /// past its bounds.
    pub(crate) fn has_room(&self) -> bool {
        let txns = self.in_flight.len();
        txns < PIPELINE_TXNS_MAX && self.bytes_not_durable < PIPELINE_BYTES_MAX
    }

    /// Gives a prepared txn the next zxid and queues it for the log; returns
    /// its encoded record (shared with followers).
    pub(crate) fn enqueue(&mut self, header: TxnHeader, txn: Txn) -> Bytes {
        assert_eq!(
            header.zxid,
            self.zxid_next(),
            "txns are prepared in zxid order"
        );
        let payload = Bytes::from(tree::encode_record(&header, &txn));
        self.push(header, txn, payload.clone());
        payload
    }

    /// Queues a txn received from the leader (its zxid is the leader's).
    pub(crate) fn enqueue_received(&mut self, header: TxnHeader, txn: Txn, payload: Bytes) {
        assert!(
            header.zxid > self.zxid_prepared,
            "received txns in zxid order"
        );
        self.push(header, txn, payload);
    }

    fn push(&mut self, header: TxnHeader, txn: Txn, payload: Bytes) {
        assert!(
            self.failed.is_none(),
            "nothing is logged after the log failed"
        );
        let full = self.batches.back().is_none_or(|b| {
            b.records.len() >= self.append_records_max || b.bytes >= self.append_bytes_max
        });
        if full {
            self.batches.push_back(Batch::default());
        }
        let batch = self.batches.back_mut().expect("pushed above");
        batch.bytes += payload.len();
        self.bytes_not_durable += payload.len();
        batch.records.push(LogRecord {
            zxid: header.zxid,
            payload,
        });
        self.zxid_prepared = header.zxid;
        self.in_flight.push_back((
            header,
            txn,
            batch.records.last().expect("pushed").payload.clone(),
        ));
    }

    /// The next append for the log, if the log is idle and there is one.
    pub(crate) fn take_append(&mut self, roll_first: impl FnOnce() -> bool) -> Option<Action> {
        if self.append_in_flight.is_some() || self.failed.is_some() {
            return None;
        }
        let batch = self.batches.pop_front()?;
        let last = batch.records.last().expect("batches are never empty").zxid;
        self.append_in_flight = Some((last, batch.bytes));
        Some(Action::Append {
            records: batch.records,
            roll_first: roll_first(),
        })
    }

    /// The log made everything up to `zxid` durable.
    pub(crate) fn durable(&mut self, zxid: i64) {
        let (last, bytes) = self
            .append_in_flight
            .take()
            .expect("the log reports only the append in flight");
        assert_eq!(last, zxid, "the log reports the append in flight, whole");
        assert!(zxid > self.zxid_durable && zxid <= self.zxid_prepared);
        self.zxid_durable = zxid;
        self.bytes_not_durable -= bytes;
    }

    /// Everything up to `zxid` is committed (by a quorum); it is applied once
    /// durable here too.
    pub(crate) fn commit(&mut self, zxid: i64) {
        assert!(zxid <= self.zxid_prepared, "commit only what is here");
        self.zxid_commit_known = self.zxid_commit_known.max(zxid);
    }

    /// The next txn to apply (committed and durable), in zxid order.
    pub(crate) fn pop_committed(&mut self) -> Option<InFlight> {
        let committed = self.zxid_committed();
        if self
            .in_flight
            .front()
            .is_some_and(|(h, _, _)| h.zxid <= committed)
        {
            self.in_flight.pop_front()
        } else {
            None
        }
    }

    /// Leaving a serving role: txns not yet handed to the log are forgotten
    /// (they were never acknowledged); logged ones stay, uncommitted, for
    /// the next leader to commit or truncate. Returns the forgotten ones.
    pub(crate) fn drop_unlogged(&mut self, zxid_applied: i64) -> Vec<InFlight> {
        let unlogged: usize = self.batches.iter().map(|b| b.records.len()).sum();
        self.batches.clear();
        let keep = self.in_flight.len() - unlogged;
        let dropped: Vec<_> = self.in_flight.drain(keep..).collect();
        self.zxid_prepared = self
            .in_flight
            .back()
            .map_or(zxid_applied, |(h, _, _)| h.zxid);
        self.bytes_not_durable = self.append_in_flight.map_or(0, |(_, bytes)| bytes);
        dropped
    }

    /// The log was cut after `zxid` (TRUNC): txns after it are gone. None of
    /// them is applied, and no append is in flight.
    pub(crate) fn truncate(&mut self, zxid: i64) {
        assert!(self.append_in_flight.is_none() && self.batches.is_empty());
        while self.in_flight.back().is_some_and(|(h, _, _)| h.zxid > zxid) {
            self.in_flight.pop_back();
        }
        self.zxid_prepared = self.zxid_prepared.min(zxid);
        self.zxid_durable = self.zxid_durable.min(zxid);
        self.zxid_commit_known = self.zxid_commit_known.min(zxid);
        self.zxid_floor = self.zxid_floor.min(zxid);
    }

    /// The tree was replaced by one at `zxid` (a snapshot from the leader, or
    /// a reload from disk): every stage starts there.
    pub(crate) fn reset(&mut self, zxid: i64) {
        assert!(
            self.append_in_flight.is_none(),
            "no append in flight while the state is replaced"
        );
        self.in_flight.clear();
        self.batches.clear();
        self.bytes_not_durable = 0;
        self.zxid_prepared = zxid;
        self.zxid_durable = zxid;
        self.zxid_commit_known = zxid;
        self.zxid_floor = zxid;
    }

    /// The log failed: drops every txn not yet applied (none was
    /// acknowledged) and returns them; nothing is prepared again.
    pub(crate) fn fail(&mut self, failure: StorageFailure, zxid_applied: i64) -> Vec<InFlight> {
        self.failed.get_or_insert(failure);
        self.batches.clear();
        self.append_in_flight = None;
        self.bytes_not_durable = 0;
        self.zxid_prepared = zxid_applied;
        self.zxid_durable = self.zxid_durable.min(zxid_applied);
        self.zxid_commit_known = self.zxid_commit_known.min(zxid_applied);
        self.in_flight.drain(..).collect()
    }

    /// `conn` waits for the reply of the txn (session, cxid).
    pub(crate) fn wait(&mut self, session_id: i64, cxid: i32, conn: ConnId) {
        let entry = self.waiting.entry((session_id, cxid)).or_insert((conn, 0));
        if entry.0 != conn {
            // The session moved and reused the xid: the old connection is
            // closed and will never be answered.
            *entry = (conn, 0);
        }
        entry.1 += 1;
    }

    /// The connection waiting for (session, cxid), if any.
    pub(crate) fn waiter(&self, session_id: i64, cxid: i32) -> Option<ConnId> {
        self.waiting.get(&(session_id, cxid)).map(|(conn, _)| *conn)
    }

    /// One reply for (session, cxid) was filled in (or will never be).
    pub(crate) fn unwait(&mut self, session_id: i64, cxid: i32, conn: ConnId) {
        let key = (session_id, cxid);
        if let Some((waiting, count)) = self.waiting.get_mut(&key) {
            if *waiting == conn {
                *count -= 1;
                if *count == 0 {
                    self.waiting.remove(&key);
                }
            }
        }
    }

    pub(crate) fn waiting(&self) -> impl Iterator<Item = ((i64, i32), ConnId, u32)> + '_ {
        self.waiting
            .iter()
            .map(|(key, (conn, n))| (*key, *conn, *n))
    }

    pub(crate) fn in_flight(&self) -> impl Iterator<Item = &TxnHeader> {
        self.in_flight.iter().map(|(h, _, _)| h)
    }

    pub(crate) fn check_invariants(&self, zxid_applied: i64) {
        let committed = self.zxid_committed();
        assert!(zxid_applied <= committed, "applied ≤ committed");
        assert!(committed <= self.zxid_durable, "committed ≤ durable");
        assert!(
            self.zxid_durable <= self.zxid_prepared,
            "durable ≤ prepared"
        );
        match (self.in_flight.front(), self.in_flight.back()) {
            (Some((first, _, _)), Some((last, _, _))) => {
                assert!(first.zxid > zxid_applied, "in flight is after applied");
                assert_eq!(last.zxid, self.zxid_prepared, "in flight ends at prepared");
                assert!(first.zxid > committed, "committed txns are applied at once");
            }
            _ => assert_eq!(
                self.zxid_prepared, zxid_applied,
                "nothing in flight: prepared = applied"
            ),
        }
        let mut previous = zxid_applied;
        for (header, _, _) in &self.in_flight {
            assert!(header.zxid > previous, "in flight in zxid order");
            previous = header.zxid;
        }
        let mut queued = self
            .append_in_flight
            .map_or(self.zxid_durable, |(zxid, _)| zxid);
        let mut bytes = self.append_in_flight.map_or(0, |(_, bytes)| bytes);
        for batch in &self.batches {
            assert!(!batch.records.is_empty());
            assert!(
                batch.records.len() <= self.append_records_max,
                "appends are bounded"
            );
            bytes += batch.bytes;
            for record in &batch.records {
                assert!(record.zxid > queued, "appends hold increasing zxids");
                queued = record.zxid;
            }
        }
        if !self.batches.is_empty() || self.append_in_flight.is_some() {
            assert_eq!(
                queued, self.zxid_prepared,
                "every prepared txn is on its way to the log"
            );
        }
        assert_eq!(
            bytes, self.bytes_not_durable,
            "byte count matches the queued records"
        );
        for (_, count) in self.waiting.values() {
            assert!(*count > 0);
        }
        if self.failed.is_some() {
            assert!(self.in_flight.is_empty() && self.batches.is_empty());
        }
    }
}
