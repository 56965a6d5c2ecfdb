//! The checks made once a run is quiet: sessions against the tree, the live
//! tree against recovery, and the history against the model.
//!
//! # Placing the ops whose replies never came
//!
//! An op whose reply was lost may or may not have taken effect. The server's
//! log says which: every txn carries the (session, cxid) of the request it
//! came from. So before the linearizability search, each such op is looked
//! up in the log of the server's final disk (snapshot 0 and every record
//! since: nothing is purged in a run): found, it is pinned at that zxid (any
//! answer will do, none was seen); not found, it never happened and is
//! left out. An expiry is the session's closeSession txn (cxid 0). The
//! search then branches over almost nothing, and what it checks stays a
//! claim about what clients saw: every answer, in the server's one order of
//! txns, is the model's answer. A write whose effect a crash undid is not in
//! the log, so any read that saw it has no explanation — which is the bug.

use std::collections::{BTreeMap, BTreeSet};

use crate::disk::{Logged, TxnKind};
use crate::history::{OpRecord, Pin};
use crate::linearizability::CheckOp;
use crate::model::Op;
use crate::violation::Violation;

/// Sessions in the tree must be exactly the live clients' sessions, and
/// every ephemeral must belong to one of them.
pub fn sessions(server: u8, tree: &tree::DataTree, live: &BTreeSet<i64>) -> Result<(), Violation> {
    let in_tree: BTreeSet<i64> = tree.sessions().map(|(id, _)| id).collect();
    let dead: Vec<i64> = in_tree.difference(live).copied().collect();
    let missing: Vec<i64> = live.difference(&in_tree).copied().collect();
    if !dead.is_empty() || !missing.is_empty() {
        return Err(Violation::SessionsDisagree {
            server,
            dead,
            missing,
        });
    }
    let orphan = tree.nodes().find_map(|(path, n)| {
        let owner = n.client_ephemeral_owner();
        (owner != 0 && !live.contains(&owner)).then(|| (path.to_string(), owner))
    });
    match orphan {
        Some((path, owner)) => Err(Violation::OrphanEphemeral {
            server,
            path,
            owner,
        }),
        None => Ok(()),
    }
}

/// The ops of a history, placed for the search (see the module docs).
pub fn place_by_log<'a>(
    server: u8,
    ops: &'a [OpRecord],
    logged: &[Logged],
) -> Result<Vec<CheckOp<'a>>, Violation> {
    let by_zxid: BTreeMap<i64, &Logged> = logged.iter().map(|t| (t.zxid, t)).collect();
    let mut requests: BTreeMap<(i64, i32), i64> = BTreeMap::new();
    let mut closes: BTreeMap<(i64, i32), i64> = BTreeMap::new();
    for t in logged {
        let index = match t.kind {
            TxnKind::CreateSession => continue,
            TxnKind::CloseSession => &mut closes,
            TxnKind::Request => &mut requests,
        };
        index.entry((t.session, t.cxid)).or_insert(t.zxid);
    }
    let mut placed = Vec::with_capacity(ops.len());
    for record in ops {
        if !record.is_indeterminate() && record.op != Op::Expire {
            if let Pin::Txn(zxid) = record.pin() {
                check_logged_as_told(server, record, zxid, &by_zxid)?;
            }
            placed.push(CheckOp::of(record));
            continue;
        }
        if !record.op.is_write() {
            // A read that got no answer says nothing.
            continue;
        }
        let zxid = match record.op {
            // The server's expiry is its closeSession with cxid 0; a session
            // closed by its client's own closeSession (whose reply was lost)
            // is that request's txn, already in the history.
            Op::Expire => match closes.get(&(record.session, 0)) {
                Some(zxid) => Some(*zxid),
                None if record.ret.is_some()
                    && !closes.keys().any(|(session, _)| *session == record.session) =>
                {
                    return Err(Violation::SessionVanished {
                        server,
                        session: record.session,
                    })
                }
                None => None,
            },
            Op::CloseSession => closes.get(&(record.session, record.xid)).copied(),
            _ => requests.get(&(record.session, record.xid)).copied(),
        };
        // A client hears that its session expired as soon as the server
        // marks it closing, before the closeSession txn is durable or
        // applied (ZooKeeper refuses a closing session's reconnect the same
        // way): that is no bound on when the txn takes effect. Not found in
        // the log: it never happened.
        if let Some(zxid) = zxid {
            placed.push(CheckOp {
                record,
                pin: Pin::Txn(zxid),
                accept_any: true,
            });
        }
    }
    Ok(placed)
}

/// A write acknowledged as txn `zxid` is that txn in the final log.
fn check_logged_as_told(
    server: u8,
    record: &OpRecord,
    zxid: i64,
    by_zxid: &BTreeMap<i64, &Logged>,
) -> Result<(), Violation> {
    match by_zxid.get(&zxid) {
        Some(t) if t.session == record.session && t.cxid == record.xid => Ok(()),
        other => Err(Violation::AcknowledgedWriteLost {
            server,
            zxid,
            session: record.session,
            cxid: record.xid,
            found: match other {
                Some(t) => format!(
                    "the final log's txn 0x{zxid:x} is session 0x{:x} cxid {}",
                    t.session, t.cxid
                ),
                None => "the final log has no txn with that zxid".into(),
            },
        }),
    }
}
