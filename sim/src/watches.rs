//! Watches: the set a client holds, the log of what each connection saw,
//! and the check that no watch event was lost.
//!
//! # No event lost
//!
//! A watch set on a connection by a read answered at zxid R must fire on
//! that connection at the first later txn that triggers it (ZooKeeper's
//! trigger rules: a create, delete or setData of the path; a child created
//! or deleted for a child watch; anything in the subtree, but child-list
//! changes, for a recursive one), and its event must arrive before any
//! reply carrying that txn's zxid or a later one — the server had applied
//! the txn when it answered. A persistent watch must so fire for every
//! triggering txn. The txns come from the server's final log, decoded into
//! the changes they made; the connection's side is its [`Note`]s in
//! arrival order. Watches re-registered by setWatches after a reconnect
//! are held to the spurious-event and ordering checks only: what they fire
//! at once depends on the tree at that moment, not on one txn.

use std::collections::{BTreeMap, BTreeSet};

use proto::EventType;

use crate::recovery::{Change, Logged};
use crate::violation::Violation;

/// The watches this client has set: one-shot ones not yet seen fire, and
/// persistent ones (which stay).
#[derive(Debug, Default)]
pub struct Watches {
    pub data: BTreeSet<String>,
    pub exist: BTreeSet<String>,
    pub child: BTreeSet<String>,
    pub persistent: BTreeSet<String>,
    pub recursive: BTreeSet<String>,
}

impl Watches {
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
            && self.exist.is_empty()
            && self.child.is_empty()
            && self.persistent.is_empty()
            && self.recursive.is_empty()
    }

    /// Every path watched in any way.
    pub fn paths(&self) -> BTreeSet<String> {
        (self.data.iter())
            .chain(&self.exist)
            .chain(&self.child)
            .chain(&self.persistent)
            .chain(&self.recursive)
            .cloned()
            .collect()
    }

    /// Whether a persistent watch covers the event: one on the path (any
    /// event), or a recursive one on the path or an ancestor (every event
    /// but NodeChildrenChanged, as ZooKeeper's persistent-recursive mode).
    fn persistent_covers(&self, event: EventType, path: &str) -> bool {
        if self.persistent.contains(path) {
            return true;
        }
        event != EventType::NodeChildrenChanged
            && self.recursive.iter().any(|root| is_in_subtree(path, root))
    }

    /// Removes the one-shot watches an event fires; false if it matches
    /// no watch at all.
    pub fn fire(&mut self, event: EventType, path: &str) -> bool {
        let persistent = self.persistent_covers(event, path);
        let one_shot = self.fire_one_shot(event, path);
        persistent || one_shot
    }

    fn fire_one_shot(&mut self, event: EventType, path: &str) -> bool {
        match event {
            EventType::NodeCreated | EventType::NodeDataChanged => {
                let data = self.data.remove(path);
                let exist = self.exist.remove(path);
                data || exist
            }
            EventType::NodeDeleted => {
                let data = self.data.remove(path);
                let exist = self.exist.remove(path);
                let child = self.child.remove(path);
                data || exist || child
            }
            EventType::NodeChildrenChanged => self.child.remove(path),
            // Watch-removal and other events are not part of the workload.
            _ => true,
        }
    }
}

/// Whether `path` is `root` or below it.
pub fn is_in_subtree(path: &str, root: &str) -> bool {
    root == "/"
        || path == root
        || (path.starts_with(root) && path.as_bytes().get(root.len()) == Some(&b'/'))
}

/// What kind of watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum WatchKind {
    Data,
    Exist,
    Child,
    Persistent,
    Recursive,
}

/// One watch: its kind and path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct WatchKey {
    pub kind: WatchKind,
    pub path: String,
}

impl std::fmt::Display for WatchKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?} watch on {}", self.kind, self.path)
    }
}

/// What a connection saw, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A read or addWatch answered at `zxid` set this watch.
    Set { watch: WatchKey, zxid: i64 },
    /// A watch event for a txn.
    Event {
        event: EventType,
        path: String,
        zxid: i64,
    },
    /// A reply (pings included) carrying this zxid.
    Reply { zxid: i64 },
}

/// Everything one connection of one session saw.
#[derive(Debug, Clone, Default)]
pub struct ConnectionLog {
    pub client: u32,
    pub session: i64,
    pub notes: Vec<Note>,
}

fn parent_of(path: &str) -> &str {
    match path.rfind('/') {
        Some(0) | None => "/",
        Some(slash) => &path[..slash],
    }
}

/// The event a change fires for a watch, if it fires one.
fn fires(watch: &WatchKey, change: &Change) -> Option<(EventType, String)> {
    let (event, path) = match change {
        Change::Created(p) => (EventType::NodeCreated, p),
        Change::Deleted(p) => (EventType::NodeDeleted, p),
        Change::DataChanged(p) => (EventType::NodeDataChanged, p),
    };
    let on_path = *path == watch.path;
    let child_list = parent_of(path) == watch.path
        && path != "/"
        && matches!(change, Change::Created(_) | Change::Deleted(_));
    match watch.kind {
        WatchKind::Data | WatchKind::Exist if on_path => Some((event, path.clone())),
        WatchKind::Child | WatchKind::Persistent if on_path && event == EventType::NodeDeleted => {
            Some((event, path.clone()))
        }
        WatchKind::Child | WatchKind::Persistent if child_list => {
            Some((EventType::NodeChildrenChanged, watch.path.clone()))
        }
        WatchKind::Persistent if on_path => Some((event, path.clone())),
        WatchKind::Recursive if is_in_subtree(path, &watch.path) => Some((event, path.clone())),
        _ => None,
    }
}

/// Checks that every watch set on a connection fired there in time (see
/// the module docs).
pub fn check_delivery(
    server: u8,
    logs: &[ConnectionLog],
    logged: &[Logged],
) -> Result<(), Violation> {
    let txns: BTreeMap<i64, &[Change]> = logged
        .iter()
        .map(|t| (t.zxid, t.changes.as_slice()))
        .collect();
    // A session's watches end with its closeSession txn: an ensemble's
    // follower may still answer the session's requests after it (with
    // SESSIONEXPIRED), but fires none of its watches for that txn or later.
    let mut closes: BTreeMap<i64, i64> = BTreeMap::new();
    for t in logged
        .iter()
        .filter(|t| t.kind == crate::recovery::TxnKind::CloseSession)
    {
        closes.entry(t.session).or_insert(t.zxid);
    }
    for log in logs {
        let closed_at = closes.get(&log.session).copied().unwrap_or(i64::MAX);
        check_connection(server, log, &txns, closed_at)?;
    }
    Ok(())
}

/// A txn that fires a watch: its zxid and the events it fires.
type Trigger = (i64, Vec<(EventType, String)>);

/// The first txn after `after` that fires `watch`, with what it fires.
fn first_trigger(watch: &WatchKey, after: i64, txns: &BTreeMap<i64, &[Change]>) -> Option<Trigger> {
    txns.range(after + 1..).find_map(|(zxid, changes)| {
        let fired: Vec<_> = changes.iter().filter_map(|c| fires(watch, c)).collect();
        (!fired.is_empty()).then_some((*zxid, fired))
    })
}

fn lost(server: u8, log: &ConnectionLog, watch: &WatchKey, txn: i64, reply_zxid: i64) -> Violation {
    Violation::WatchEventLost {
        server,
        client: log.client,
        session: log.session,
        watch: watch.to_string(),
        txn,
        reply_zxid,
    }
}

fn check_connection(
    server: u8,
    log: &ConnectionLog,
    txns: &BTreeMap<i64, &[Change]>,
    closed_at: i64,
) -> Result<(), Violation> {
    // One-shot watches with the txn that must fire them.
    let mut one_shots: Vec<(&WatchKey, Option<Trigger>)> = Vec::new();
    // Persistent watches, with the zxid up to which their firing is checked.
    let mut persistent: Vec<(&WatchKey, i64)> = Vec::new();
    let mut delivered: BTreeSet<(i64, i32, &str)> = BTreeSet::new();
    for note in &log.notes {
        match note {
            Note::Set { watch, zxid } => match watch.kind {
                WatchKind::Persistent | WatchKind::Recursive => {
                    if !persistent.iter().any(|(w, _)| *w == watch) {
                        persistent.push((watch, *zxid));
                    }
                }
                _ => {
                    // The server holds one watch per (kind, path): a second
                    // read with a watch before it fires changes nothing.
                    if !one_shots.iter().any(|(w, _)| *w == watch) {
                        let trigger =
                            first_trigger(watch, *zxid, txns).filter(|(txn, _)| *txn < closed_at);
                        one_shots.push((watch, trigger));
                    }
                }
            },
            Note::Event { event, path, zxid } => {
                delivered.insert((*zxid, event.code(), path));
                one_shots.retain(|(_, trigger)| {
                    !trigger.as_ref().is_some_and(|(txn, fired)| {
                        txn == zxid && fired.iter().any(|(e, p)| e == event && p == path)
                    })
                });
            }
            Note::Reply { zxid } => {
                for (watch, trigger) in &one_shots {
                    if let Some((txn, _)) = trigger {
                        if txn <= zxid {
                            return Err(lost(server, log, watch, *txn, *zxid));
                        }
                    }
                }
                for (watch, checked) in &mut persistent {
                    if *zxid <= *checked {
                        continue;
                    }
                    let until = (*zxid).min(closed_at.saturating_sub(1));
                    let unchecked = if until > *checked {
                        txns.range(*checked + 1..=until)
                    } else {
                        txns.range(0..0)
                    };
                    for (txn, changes) in unchecked {
                        for (event, path) in changes.iter().filter_map(|c| fires(watch, c)) {
                            if !delivered.contains(&(*txn, event.code(), path.as_str())) {
                                return Err(lost(server, log, watch, *txn, *zxid));
                            }
                        }
                    }
                    *checked = (*checked).max(*zxid);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::recovery::TxnKind;

    fn txn(zxid: i64, changes: Vec<Change>) -> Logged {
        Logged {
            zxid,
            session: 1,
            cxid: zxid as i32,
            kind: TxnKind::Request,
            changes,
        }
    }

    fn log(notes: Vec<Note>) -> Vec<ConnectionLog> {
        vec![ConnectionLog {
            client: 0,
            session: 7,
            notes,
        }]
    }

    fn set(kind: WatchKind, path: &str, zxid: i64) -> Note {
        Note::Set {
            watch: WatchKey {
                kind,
                path: path.into(),
            },
            zxid,
        }
    }

    fn event(event: EventType, path: &str, zxid: i64) -> Note {
        Note::Event {
            event,
            path: path.into(),
            zxid,
        }
    }

    /// /a's data changes at 2 and 4; a child of / is created at 3.
    fn txns() -> Vec<Logged> {
        vec![
            txn(2, vec![Change::DataChanged("/a".into())]),
            txn(3, vec![Change::Created("/b".into())]),
            txn(4, vec![Change::DataChanged("/a".into())]),
        ]
    }

    #[test]
    fn a_one_shot_watch_must_fire_before_a_reply_past_its_trigger() {
        let watched = set(WatchKind::Data, "/a", 1);
        let ok = log(vec![
            watched.clone(),
            event(EventType::NodeDataChanged, "/a", 2),
            Note::Reply { zxid: 4 },
        ]);
        assert_eq!(check_delivery(1, &ok, &txns()), Ok(()));
        let lost = log(vec![watched, Note::Reply { zxid: 3 }]);
        assert!(matches!(
            check_delivery(1, &lost, &txns()),
            Err(Violation::WatchEventLost {
                txn: 2,
                reply_zxid: 3,
                ..
            })
        ));
    }

    #[test]
    fn no_watch_of_a_session_fires_at_or_after_its_close() {
        // Session 7 is closed by txn 3 (it deletes /a's sibling): a reply
        // after it (SESSIONEXPIRED from a follower) owes no event for txn
        // 3 or 4; before the close a reply past a trigger still does.
        let mut closed = txns();
        closed[1] = Logged {
            zxid: 3,
            session: 7,
            cxid: 0,
            kind: TxnKind::CloseSession,
            changes: vec![Change::Deleted("/b".into())],
        };
        let after_close = log(vec![
            set(WatchKind::Recursive, "/", 2),
            Note::Reply { zxid: 5 },
        ]);
        assert_eq!(check_delivery(1, &after_close, &closed), Ok(()));
        let before = log(vec![set(WatchKind::Data, "/a", 1), Note::Reply { zxid: 5 }]);
        assert!(matches!(
            check_delivery(1, &before, &closed),
            Err(Violation::WatchEventLost { txn: 2, .. })
        ));
    }

    #[test]
    fn a_reply_before_the_trigger_says_nothing_yet() {
        let early = log(vec![set(WatchKind::Data, "/a", 1), Note::Reply { zxid: 1 }]);
        assert_eq!(check_delivery(1, &early, &txns()), Ok(()));
    }

    #[test]
    fn a_persistent_watch_must_fire_for_every_trigger() {
        let once = log(vec![
            set(WatchKind::Persistent, "/a", 1),
            event(EventType::NodeDataChanged, "/a", 2),
            Note::Reply { zxid: 4 },
        ]);
        assert!(matches!(
            check_delivery(1, &once, &txns()),
            Err(Violation::WatchEventLost { txn: 4, .. })
        ));
        let recursive = log(vec![
            set(WatchKind::Recursive, "/", 1),
            event(EventType::NodeDataChanged, "/a", 2),
            event(EventType::NodeCreated, "/b", 3),
            event(EventType::NodeDataChanged, "/a", 4),
            Note::Reply { zxid: 4 },
        ]);
        assert_eq!(check_delivery(1, &recursive, &txns()), Ok(()));
    }

    #[test]
    fn a_child_watch_fires_on_a_child_created() {
        let child = log(vec![set(WatchKind::Child, "/", 2), Note::Reply { zxid: 3 }]);
        assert!(matches!(
            check_delivery(1, &child, &txns()),
            Err(Violation::WatchEventLost { txn: 3, .. })
        ));
    }
}
