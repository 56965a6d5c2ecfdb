//! The write pipeline: every txn between "prepared" and "applied", and who
//! waits for each one's reply.
//!
//! ```text
//!   prepare ─▶ appends ─▶ Append (≤ 1 in flight) ─▶ durable ─▶ committed ─▶ applied
//!   (zxid n)   [batch][batch]…                      (log says)  (standalone:    (tree)
//!                                                                = durable)
//! ```
//!
//! Invariant: `applied ≤ committed ≤ durable ≤ prepared`, and the txns in
//! flight are exactly those with `applied < zxid ≤ prepared`, in zxid order.
//!
//! A write's reply is found by (session, cxid) — the identity a txn carries
//! in its header on every server — not by a zxid that only this server
//! assigned, so that a follower can wait for the commit of a write it
//! forwarded. The waiting index maps that pair to the connection whose queue
//! holds the reply slot.

use std::collections::{BTreeMap, VecDeque};

use tree::{Txn, TxnHeader};

use crate::io::{Action, ConnId, LogRecord, StorageFailure};

/// Txns prepared and not yet durable before the node stops taking requests
/// (the driver stops feeding it until the log catches up).
pub const PIPELINE_TXNS_MAX: usize = 16 * 1024;
/// The same bound in encoded bytes.
pub const PIPELINE_BYTES_MAX: usize = 64 << 20;

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
    zxid_committed: i64,
    /// Prepared txns not yet applied, in zxid order.
    in_flight: VecDeque<(TxnHeader, Txn)>,
    /// Prepared txns not yet handed to the log, cut into appends.
    batches: VecDeque<Batch>,
    /// Encoded bytes prepared and not yet durable.
    bytes_not_durable: usize,
    /// The last zxid and the payload bytes of the append in flight.
    append_in_flight: Option<(i64, usize)>,
    /// (session, cxid) → the connection waiting for that txn's reply, and
    /// how many replies it waits for under that pair (a client that reuses
    /// an xid while the first is in flight).
    waiting: BTreeMap<(i64, i32), (ConnId, u32)>,
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
            zxid_committed: zxid,
            in_flight: VecDeque::new(),
            batches: VecDeque::new(),
            bytes_not_durable: 0,
            append_in_flight: None,
            waiting: BTreeMap::new(),
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

    pub(crate) fn zxid_committed(&self) -> i64 {
        self.zxid_committed
    }

    /// The zxid the next prepared txn gets.
    pub(crate) fn zxid_next(&self) -> i64 {
        self.zxid_prepared + 1
    }

    pub(crate) fn failed(&self) -> Option<StorageFailure> {
        self.failed
    }

    /// Whether the node can take more requests without the pipeline growing
    /// past its bounds.
    pub(crate) fn has_room(&self) -> bool {
        let txns = (self.zxid_prepared - self.zxid_durable) as usize;
        txns < PIPELINE_TXNS_MAX && self.bytes_not_durable < PIPELINE_BYTES_MAX
    }

    /// Gives a prepared txn the next zxid and queues it for the log.
    pub(crate) fn enqueue(&mut self, header: TxnHeader, txn: Txn) -> i64 {
        assert!(
            self.failed.is_none(),
            "nothing is prepared after the log failed"
        );
        assert_eq!(
            header.zxid,
            self.zxid_next(),
            "txns are prepared in zxid order"
        );
        let payload = tree::encode_record(&header, &txn);
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
        self.in_flight.push_back((header, txn));
        self.zxid_prepared
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

    /// Everything up to `zxid` is committed (standalone: as soon as it is durable).
    pub(crate) fn commit(&mut self, zxid: i64) {
        assert!(
            zxid <= self.zxid_durable,
            "commit only what is durable here"
        );
        self.zxid_committed = self.zxid_committed.max(zxid);
    }

    /// The next committed txn to apply, in zxid order.
    pub(crate) fn pop_committed(&mut self) -> Option<(TxnHeader, Txn)> {
        if self
            .in_flight
            .front()
            .is_some_and(|(h, _)| h.zxid <= self.zxid_committed)
        {
            self.in_flight.pop_front()
        } else {
            None
        }
    }

    /// The log failed: drops every txn not yet applied (none was
    /// acknowledged) and returns them; nothing is prepared again.
    pub(crate) fn fail(
        &mut self,
        failure: StorageFailure,
        zxid_applied: i64,
    ) -> Vec<(TxnHeader, Txn)> {
        self.failed.get_or_insert(failure);
        self.batches.clear();
        self.append_in_flight = None;
        self.bytes_not_durable = 0;
        self.zxid_prepared = zxid_applied;
        self.zxid_durable = self.zxid_durable.min(zxid_applied);
        self.zxid_committed = self.zxid_committed.min(zxid_applied);
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
        self.in_flight.iter().map(|(h, _)| h)
    }

    pub(crate) fn check_invariants(&self, zxid_applied: i64) {
        assert!(zxid_applied <= self.zxid_committed, "applied ≤ committed");
        assert!(
            self.zxid_committed <= self.zxid_durable,
            "committed ≤ durable"
        );
        assert!(
            self.zxid_durable <= self.zxid_prepared,
            "durable ≤ prepared"
        );
        let expected = (self.zxid_prepared - zxid_applied) as usize;
        assert_eq!(
            self.in_flight.len(),
            expected,
            "in flight = (applied, prepared]"
        );
        for (i, (header, _)) in self.in_flight.iter().enumerate() {
            assert_eq!(
                header.zxid,
                zxid_applied + 1 + i as i64,
                "in flight in zxid order"
            );
        }
        let mut queued = self
            .append_in_flight
            .map_or(self.zxid_durable, |(zxid, _)| zxid);
        let mut bytes = self.append_in_flight.map_or(0, |(_, bytes)| bytes);
        for batch in &self.batches {
            assert!(!batch.records.is_empty());
            bytes += batch.bytes;
            assert!(
                batch.records.len() <= self.append_records_max,
                "appends are bounded"
            );
            for record in &batch.records {
                assert_eq!(record.zxid, queued + 1, "appends hold consecutive zxids");
                queued = record.zxid;
            }
        }
        assert_eq!(
            queued, self.zxid_prepared,
            "every prepared txn is on its way to the log"
        );
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
