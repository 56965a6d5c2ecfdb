//! What the clients of one database were told, gathered as replies
//! arrive: the highest zxid any of them saw, the txns acknowledged to
//! them, and the writes refused without a txn of their own. The checks
//! made at a restart (standalone) and across an ensemble hold the servers
//! to it.

use std::collections::BTreeMap;

use crate::client::Received;

#[derive(Debug, Clone, Default)]
pub struct Told {
    /// The highest zxid any client received from this database.
    pub zxid_seen: i64,
    /// Txns clients were told about, by zxid: (session, cxid).
    pub acknowledged: BTreeMap<i64, (i64, i32)>,
    /// Writes the client was told failed, without a txn of their own
    /// (SYSTEMERROR, SESSIONEXPIRED...), by (session, cxid), with the
    /// answer: a failure the client takes as final, so none of them may
    /// ever become a txn. (A write whose connection was closed under it
    /// got no answer: its outcome is unknown, and either is fine.)
    pub refused: BTreeMap<(i64, i32), proto::ErrorCode>,
}

impl Told {
    /// A client reported what it received.
    pub fn record(&mut self, received: &Received) {
        self.zxid_seen = self.zxid_seen.max(received.zxid_max);
        for (zxid, session, cxid) in &received.txns {
            self.acknowledged.insert(*zxid, (*session, *cxid));
        }
        self.refused.extend(
            received
                .refused
                .iter()
                .map(|(session, cxid, answer)| ((*session, *cxid), *answer)),
        );
    }
}
