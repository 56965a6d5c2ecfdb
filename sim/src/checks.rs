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

use crate::history::{OpRecord, Pin};
use crate::linearizability::CheckOp;
use crate::model::Op;
use std::borrow::Cow;

use crate::recovery::{Change, Logged, TxnKind};
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
            TxnKind::Request | TxnKind::Refused => &mut requests,
        };
        index.entry((t.session, t.cxid)).or_insert(t.zxid);
    }
    let mut placed = Vec::with_capacity(ops.len());
    let mut claimed = BTreeSet::new();
    for record in ops {
        if !record.is_indeterminate() && record.op != Op::Expire {
            if let Pin::Txn(zxid) = record.pin() {
                check_logged_as_told(server, record, zxid, &by_zxid)?;
                claimed.insert(zxid);
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
            claimed.insert(zxid);
            placed.push(CheckOp {
                record: Cow::Borrowed(record),
                pin: Pin::Txn(zxid),
                accept_any: true,
            });
        }
    }
    let closers: BTreeSet<(i64, i32)> = ops
        .iter()
        .filter(|o| o.op == Op::CloseSession)
        .map(|o| (o.session, o.xid))
        .collect();
    // Writes refused as a whole — answered so (the reply names no txn of
    // theirs), or unanswered — may have an error txn in the log (an
    // ensemble's leader logs one, e.g. for a closeSession of a session it
    // already expired): it is theirs, and changes nothing.
    let refusals: BTreeSet<(i64, i32)> = ops
        .iter()
        .filter(|o| o.op.is_write() && o.op != Op::Expire)
        .filter(|o| matches!(o.pin(), Pin::Point(_)) || o.is_indeterminate())
        .map(|o| (o.session, o.xid))
        .collect();
    for t in logged.iter().filter(|t| !claimed.contains(&t.zxid)) {
        if t.kind == TxnKind::Refused && refusals.contains(&(t.session, t.cxid)) {
            continue;
        }
        if let Some(op) = server_op(server, t, &closers)? {
            placed.push(op);
        }
    }
    Ok(placed)
}

/// The client id of the ops the server makes itself.
pub const SERVER_CLIENT: u32 = u32::MAX;

/// A txn no request in the history claims: one the server made itself —
/// creating a session, expiring one (closeSession, cxid 0), deleting a
/// closing session's ephemerals one by one when they do not fit one txn,
/// reaping a container — made into an op of the model at its zxid. Any
/// other unclaimed txn is a write no client asked for.
///
/// `closers` are the (session, xid) of the clients' closeSession requests:
/// the ephemerals a closing session sheds carry its close's cxid (0 for an
/// expiry, as a reaped container's delete does).
fn server_op(
    server: u8,
    t: &Logged,
    closers: &BTreeSet<(i64, i32)>,
) -> Result<Option<CheckOp<'static>>, Violation> {
    let made_by_server = t.cxid == 0 || closers.contains(&(t.session, t.cxid));
    let op = match (t.kind, t.changes.as_slice()) {
        (TxnKind::CreateSession, _) => return Ok(None),
        (TxnKind::CloseSession, _) => Op::Expire,
        (TxnKind::Request, [Change::Deleted(path)]) if made_by_server => Op::Delete {
            path: path.clone(),
            version: -1,
        },
        _ => {
            return Err(Violation::PhantomTxn {
                server,
                zxid: t.zxid,
                session: t.session,
                cxid: t.cxid,
            })
        }
    };
    let record = OpRecord {
        client: SERVER_CLIENT,
        session: t.session,
        xid: t.cxid,
        op,
        call: 0,
        call_time: std::time::Duration::ZERO,
        ret: None,
    };
    Ok(Some(CheckOp {
        record: Cow::Owned(record),
        pin: Pin::Txn(t.zxid),
        accept_any: true,
    }))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, Return};
    use crate::linearizability::{check_ops, Verdict};
    use crate::model::Outcome;
    use proto::CreateMode;
    use std::time::Duration;

    fn logged(zxid: i64, session: i64, cxid: i32, kind: TxnKind) -> Logged {
        Logged {
            zxid,
            session,
            cxid,
            kind,
            changes: Vec::new(),
        }
    }

    fn done(at: u64, zxid: i64, outcome: Outcome) -> Return {
        Return {
            at,
            time: Duration::ZERO,
            zxid: Some(zxid),
            outcome,
        }
    }

    /// Session 9 creates ephemeral /e (txn 2); another client's read at
    /// zxid 2 sees it.
    fn history() -> (History, Vec<Logged>) {
        let mut h = History::default();
        let create = Op::Create {
            path: "/e".into(),
            data: vec![],
            mode: CreateMode::Ephemeral,
        };
        let c = h.invoke(0, 9, 1, create, 1, Duration::ZERO);
        h.complete(c, done(2, 2, Outcome::Created { path: "/e".into() }));
        let log = vec![
            logged(1, 9, 0, TxnKind::CreateSession),
            logged(2, 9, 1, TxnKind::Request),
        ];
        (h, log)
    }

    #[test]
    fn an_expiry_learned_before_its_txn_is_placed_at_the_txn() {
        // The client hears "expired" (order 4) before the closeSession txn
        // (zxid 3) is applied; a read at zxid 2 after that (order 5..6)
        // still sees /e. Placed at its txn, the expiry explains both.
        let (mut h, mut log) = history();
        h.expired(0, 9, (2, Duration::ZERO), Some((4, Duration::ZERO)));
        let get = Op::GetData {
            path: "/e".into(),
            watch: false,
        };
        let r = h.invoke(1, 5, 1, get, 5, Duration::ZERO);
        let seen = Outcome::Data {
            data: vec![],
            stat: crate::model::NodeStat {
                version: 0,
                ephemeral_owner: 9,
                num_children: 0,
                data_length: 0,
            },
        };
        h.complete(r, done(6, 2, seen));
        log.push(logged(3, 9, 0, TxnKind::CloseSession));
        let placed = place_by_log(1, &h.ops, &log).unwrap();
        assert_eq!(placed[1].pin, Pin::Txn(3));
        assert!(matches!(
            check_ops(&placed, 1000),
            Verdict::Linearizable { .. }
        ));
    }

    #[test]
    fn a_session_ended_by_its_own_unanswered_closesession_is_not_expired_twice() {
        // The client's closeSession (xid 2) got no reply and its reconnect
        // was refused: the close txn is that request, and the expiry the
        // client recorded is left out rather than claimed by the same txn.
        let (mut h, mut log) = history();
        h.invoke(0, 9, 2, Op::CloseSession, 3, Duration::ZERO);
        h.expired(0, 9, (2, Duration::ZERO), Some((5, Duration::ZERO)));
        log.push(logged(3, 9, 2, TxnKind::CloseSession));
        let placed = place_by_log(1, &h.ops, &log).unwrap();
        assert_eq!(placed.len(), 2);
        assert_eq!(placed[1].pin, Pin::Txn(3));
        assert!(matches!(
            check_ops(&placed, 1000),
            Verdict::Linearizable { .. }
        ));
    }

    #[test]
    fn an_expiry_the_log_never_saw_is_reported() {
        // The client was told its session expired, but no closeSession for
        // it was ever logged: the server forgot a session it had confirmed.
        let (mut h, log) = history();
        h.expired(0, 9, (2, Duration::ZERO), Some((4, Duration::ZERO)));
        assert_eq!(
            place_by_log(1, &h.ops, &log).unwrap_err(),
            Violation::SessionVanished {
                server: 1,
                session: 9
            }
        );
    }

    #[test]
    fn an_unanswered_write_missing_from_the_log_never_happened() {
        // No reply and no txn: the write is left out; with a txn it is
        // pinned there and any answer will do.
        let (mut h, mut log) = history();
        let set = |data: &[u8]| Op::SetData {
            path: "/e".into(),
            data: data.to_vec(),
            version: -1,
        };
        h.invoke(0, 9, 2, set(b"a"), 3, Duration::ZERO);
        h.invoke(0, 9, 3, set(b"b"), 4, Duration::ZERO);
        log.push(logged(3, 9, 3, TxnKind::Request));
        let placed = place_by_log(1, &h.ops, &log).unwrap();
        assert_eq!(placed.len(), 2);
        assert_eq!((placed[1].pin, placed[1].accept_any), (Pin::Txn(3), true));
    }

    #[test]
    fn an_unanswered_write_refused_by_an_error_txn_is_no_phantom() {
        // A closeSession (xid 3) whose reply was lost, refused by the leader
        // with an error txn (the session had expired): the txn is the
        // request's refusal, not a write nobody asked for; a refusal txn
        // matching no request still is one.
        let (mut h, mut log) = history();
        h.invoke(0, 9, 3, Op::CloseSession, 3, Duration::ZERO);
        log.push(logged(3, 9, 3, TxnKind::Refused));
        assert!(place_by_log(1, &h.ops, &log).is_ok());
        log.push(logged(4, 9, 4, TxnKind::Refused));
        assert!(matches!(
            place_by_log(1, &h.ops, &log),
            Err(Violation::PhantomTxn { zxid: 4, .. })
        ));
    }

    #[test]
    fn an_acknowledged_txn_must_be_in_the_final_log_as_told() {
        // The client was told its create is txn 2, but the final log's txn
        // 2 belongs to someone else (a crash lost it and the zxid was reused).
        let (h, mut log) = history();
        log[1] = logged(2, 7, 4, TxnKind::Request);
        assert!(matches!(
            place_by_log(1, &h.ops, &log),
            Err(Violation::AcknowledgedWriteLost { zxid: 2, .. })
        ));
    }
}
