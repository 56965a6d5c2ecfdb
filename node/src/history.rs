//! The most recent applied txns with their encoded records, bounded in count
//! and bytes: what a new leader can DIFF to learners from memory.

use std::collections::VecDeque;

use bytes::Bytes;

#[derive(Debug)]
pub(crate) struct History {
    entries: VecDeque<(i64, Bytes)>,
    bytes: usize,
    txns_max: usize,
    bytes_max: usize,
}

impl History {
    /// `txns_max` 0 keeps nothing (a standalone server).
    pub(crate) fn new(txns_max: usize, bytes_max: usize) -> History {
        History {
            entries: VecDeque::new(),
            bytes: 0,
            txns_max,
            bytes_max,
        }
    }

    pub(crate) fn push(&mut self, zxid: i64, record: Bytes) {
        if self.txns_max == 0 {
            return;
        }
        assert!(
            self.entries.back().is_none_or(|(last, _)| *last < zxid),
            "history in zxid order"
        );
        self.bytes += record.len();
        self.entries.push_back((zxid, record));
        while self.entries.len() > self.txns_max
            || (self.bytes > self.bytes_max && self.entries.len() > 1)
        {
            let (_, old) = self.entries.pop_front().expect("not empty");
            self.bytes -= old.len();
        }
    }

    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.bytes = 0;
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &(i64, Bytes)> {
        self.entries.iter()
    }

    pub(crate) fn check_invariants(&self, zxid_applied: i64) {
        let bytes: usize = self.entries.iter().map(|(_, r)| r.len()).sum();
        assert_eq!(bytes, self.bytes);
        assert!(self.entries.len() <= self.txns_max);
        assert!(self
            .entries
            .back()
            .is_none_or(|(zxid, _)| *zxid <= zxid_applied));
    }
}
