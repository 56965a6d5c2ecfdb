//! Watch registrations and the events a change triggers.
//!
//! Four tables, each path → watching sessions:
//!
//! ```text
//! data        one-shot, from getData/exists(watch)   fires on created, deleted, data changed
//! child       one-shot, from getChildren(watch)      fires on children changed, deleted
//! persistent  addWatch mode 0, stays                 fires on all four event types of the path
//! recursive   addWatch mode 1, stays                 fires on created, deleted, data changed of
//!                                                    the path or any descendant
//! ```
//!
//! One trigger call yields at most one event per session (ZooKeeper
//! de-duplicates a session watching one path in several ways). Events come
//! out sorted by session id so the state machine stays deterministic.
//! Cost: one path string per watched path per table, plus one entry per
//! (session, path, kind) in the per-session index used to drop a session's
//! watches when it ends.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proto::{Acl, ErrorCode, EventType, WatcherType};

use crate::HashMap;

/// One notification to deliver to one session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchEvent {
    pub session_id: i64,
    pub event_type: EventType,
    pub path: String,
    pub zxid: i64,
    /// The ACL of the node the event is about (the parent's for
    /// NodeChildrenChanged). The event reaches only connections with READ on
    /// it (ZOOKEEPER-4799, CVE-2024-23944); empty means no check.
    pub acl: Arc<[Acl]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Kind {
    Data,
    Child,
    Persistent,
    Recursive,
}

const KINDS: [Kind; 4] = [Kind::Data, Kind::Child, Kind::Persistent, Kind::Recursive];

/// Counts for `wchs` and `mntr`. ZooKeeper keeps exist, data and persistent
/// watches in its "data" table and child and persistent (not recursive)
/// watches in its "child" table; `wchs`/`wchc`/`wchp` report the data table,
/// `zk_watch_count` both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WatchSummary {
    /// Sessions with a watch in the data table.
    pub connections_watching: usize,
    /// Paths in the data table.
    pub paths_watched: usize,
    /// Entries in the data table (`wchs`'s "Total watches").
    pub data_watches: usize,
    /// Entries in both tables (`mntr`'s `zk_watch_count`).
    pub watch_count: usize,
}

/// Where [`WatchManager::copy_some`] goes on.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WatchCursor {
    kind: usize,
    after: Option<String>,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct WatchManager {
    /// Path → watching sessions, per kind. Ordered, so that a report can
    /// copy them a slice at a time (see [`WatchManager::copy_some`]).
    tables: [BTreeMap<String, BTreeSet<i64>>; 4],
    by_session: HashMap<i64, BTreeSet<(Kind, String)>>,
    /// Watches in each table, kept as they change so that `mntr` costs O(1).
    counts: [usize; 4],
}

impl WatchManager {
    /// Tables keyed from the process's random source (see [`crate::HashMap`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// Tables keyed by `hash_seed`, as the tree that owns them.
    pub fn with_hash_seed(hash_seed: u64) -> Self {
        WatchManager {
            tables: Default::default(),
            by_session: HashMap::with_hasher(crate::hasher(hash_seed)),
            counts: [0; 4],
        }
    }

    fn table(&mut self, kind: Kind) -> &mut BTreeMap<String, BTreeSet<i64>> {
        &mut self.tables[kind as usize]
    }

    fn add(&mut self, kind: Kind, session_id: i64, path: &str) {
        let added = self
            .table(kind)
            .entry(path.to_string())
            .or_default()
            .insert(session_id);
        if added {
            self.counts[kind as usize] += 1;
        }
        self.by_session
            .entry(session_id)
            .or_default()
            .insert((kind, path.to_string()));
    }

    fn remove(&mut self, kind: Kind, session_id: i64, path: &str) -> bool {
        let table = self.table(kind);
        let Some(sessions) = table.get_mut(path) else {
            return false;
        };
        let removed = sessions.remove(&session_id);
        if sessions.is_empty() {
            table.remove(path);
        }
        if removed {
            self.counts[kind as usize] -= 1;
            if let Some(index) = self.by_session.get_mut(&session_id) {
                index.remove(&(kind, path.to_string()));
                if index.is_empty() {
                    self.by_session.remove(&session_id);
                }
            }
        }
        removed
    }

    pub fn add_data_watch(&mut self, session_id: i64, path: &str) {
        self.add(Kind::Data, session_id, path);
    }

    /// exists(watch) on a missing node: ZooKeeper keeps it with the data watches.
    pub fn add_exist_watch(&mut self, session_id: i64, path: &str) {
        self.add(Kind::Data, session_id, path);
    }

    pub fn add_child_watch(&mut self, session_id: i64, path: &str) {
        self.add(Kind::Child, session_id, path);
    }

    pub fn add_persistent_watch(&mut self, session_id: i64, path: &str, recursive: bool) {
        self.add(
            if recursive {
                Kind::Recursive
            } else {
                Kind::Persistent
            },
            session_id,
            path,
        );
    }

    /// The events a change at `path` (whose node has `acl`) fires; one-shot
    /// watches that fire are removed, even for sessions the ACL will filter.
    pub fn trigger(
        &mut self,
        path: &str,
        event_type: EventType,
        zxid: i64,
        acl: &[Acl],
    ) -> Vec<WatchEvent> {
        let mut sessions = BTreeSet::new();
        let one_shot: &[Kind] = match event_type {
            EventType::NodeCreated | EventType::NodeDataChanged => &[Kind::Data],
            EventType::NodeDeleted => &[Kind::Data, Kind::Child],
            EventType::NodeChildrenChanged => &[Kind::Child],
            _ => &[],
        };
        for &kind in one_shot {
            if let Some(fired) = self.table(kind).remove(path) {
                self.counts[kind as usize] -= fired.len();
                for session in fired {
                    if let Some(index) = self.by_session.get_mut(&session) {
                        index.remove(&(kind, path.to_string()));
                        if index.is_empty() {
                            self.by_session.remove(&session);
                        }
                    }
                    sessions.insert(session);
                }
            }
        }
        if let Some(persistent) = self.tables[Kind::Persistent as usize].get(path) {
            sessions.extend(persistent.iter().copied());
        }
        let recursive = &self.tables[Kind::Recursive as usize];
        if event_type != EventType::NodeChildrenChanged && !recursive.is_empty() {
            for ancestor in ancestors_and_self(path) {
                if let Some(watching) = recursive.get(ancestor) {
                    sessions.extend(watching.iter().copied());
                }
            }
        }
        if sessions.is_empty() {
            return Vec::new();
        }
        let acl: Arc<[Acl]> = acl.into();
        sessions
            .into_iter()
            .map(|session_id| WatchEvent {
                session_id,
                event_type,
                path: path.to_string(),
                zxid,
                acl: Arc::clone(&acl),
            })
            .collect()
    }

    /// checkWatches (`check_only`) and removeWatches. The server sends no
    /// event for a removal: clients raise DataWatchRemoved/ChildWatchRemoved
    /// themselves, so the returned list is empty; it exists so callers need
    /// not change if that ever differs.
    pub fn remove_watches(
        &mut self,
        session_id: i64,
        path: &str,
        watcher_type: WatcherType,
        check_only: bool,
    ) -> Result<Vec<WatchEvent>, ErrorCode> {
        let kinds: &[Kind] = match watcher_type {
            WatcherType::Children => &[Kind::Child],
            WatcherType::Data => &[Kind::Data],
            WatcherType::Persistent => &[Kind::Persistent],
            WatcherType::PersistentRecursive => &[Kind::Recursive],
            WatcherType::Any => &KINDS,
        };
        let has = |manager: &Self, kind: Kind| {
            manager.tables[kind as usize]
                .get(path)
                .is_some_and(|s| s.contains(&session_id))
        };
        let found: Vec<Kind> = kinds.iter().copied().filter(|k| has(self, *k)).collect();
        if found.is_empty() {
            return Err(ErrorCode::NoWatcher);
        }
        if !check_only {
            for kind in found {
                self.remove(kind, session_id, path);
            }
        }
        Ok(Vec::new())
    }

    pub fn remove_session(&mut self, session_id: i64) {
        let Some(index) = self.by_session.remove(&session_id) else {
            return;
        };
        for (kind, path) in index {
            let table = self.table(kind);
            if let Some(sessions) = table.get_mut(&path) {
                let removed = sessions.remove(&session_id);
                if sessions.is_empty() {
                    table.remove(&path);
                }
                if removed {
                    self.counts[kind as usize] -= 1;
                }
            }
        }
    }

    /// Copies the watches of up to `paths_max` more paths into `copy`,
    /// resuming where `cursor` stopped; true once every table is copied.
    /// Watches may change between calls: the copy is fuzzy, as a report
    /// taken over time is, never torn within one path.
    pub fn copy_some(
        &self,
        cursor: &mut WatchCursor,
        paths_max: usize,
        copy: &mut WatchManager,
    ) -> bool {
        let mut copied = 0;
        while cursor.kind < KINDS.len() {
            let kind = KINDS[cursor.kind];
            let range = match &cursor.after {
                Some(after) => self.tables[cursor.kind].range::<String, _>((
                    std::ops::Bound::Excluded(after),
                    std::ops::Bound::Unbounded,
                )),
                None => self.tables[cursor.kind].range::<String, _>(..),
            };
            for (path, sessions) in range {
                if copied == paths_max {
                    // `after` names the last path copied: resume past it.
                    return false;
                }
                for session in sessions {
                    copy.add(kind, *session, path);
                }
                copied += 1;
                cursor.after = Some(path.clone());
            }
            cursor.kind += 1;
            cursor.after = None;
        }
        true
    }

    /// `mntr`'s zk_watch_count: data and child tables, a persistent watch
    /// counting in both as in ZooKeeper. O(1).
    pub fn watch_count(&self) -> usize {
        let [data, child, persistent, recursive] =
            [Kind::Data, Kind::Child, Kind::Persistent, Kind::Recursive]
                .map(|kind| self.counts[kind as usize]);
        data + child + 2 * persistent + recursive
    }

    pub fn summary(&self) -> WatchSummary {
        let entries = |kind: Kind| {
            self.tables[kind as usize]
                .values()
                .map(BTreeSet::len)
                .sum::<usize>()
        };
        let by_session = self.data_table_by_session();
        WatchSummary {
            connections_watching: by_session.len(),
            paths_watched: self.data_table_by_path().len(),
            data_watches: by_session.values().map(BTreeSet::len).sum(),
            watch_count: entries(Kind::Data)
                + entries(Kind::Child)
                + 2 * entries(Kind::Persistent)
                + entries(Kind::Recursive),
        }
    }

    /// ZooKeeper's data table: exist/data, persistent and recursive watches.
    const DATA_TABLE: [Kind; 3] = [Kind::Data, Kind::Persistent, Kind::Recursive];

    fn data_table_by_session(&self) -> BTreeMap<i64, BTreeSet<&String>> {
        let mut sorted: BTreeMap<i64, BTreeSet<&String>> = BTreeMap::new();
        for kind in Self::DATA_TABLE {
            for (path, sessions) in &self.tables[kind as usize] {
                for session in sessions {
                    sorted.entry(*session).or_default().insert(path);
                }
            }
        }
        sorted
    }

    fn data_table_by_path(&self) -> BTreeMap<&String, BTreeSet<i64>> {
        let mut sorted: BTreeMap<&String, BTreeSet<i64>> = BTreeMap::new();
        for kind in Self::DATA_TABLE {
            for (path, sessions) in &self.tables[kind as usize] {
                sorted.entry(path).or_default().extend(sessions);
            }
        }
        sorted
    }

    /// `wchc`: every session with the paths it watches (data table), sorted.
    pub fn by_session(&self) -> Vec<(i64, Vec<String>)> {
        self.data_table_by_session()
            .into_iter()
            .map(|(s, paths)| (s, paths.into_iter().cloned().collect()))
            .collect()
    }

    /// `wchp`: every watched path (data table) with its sessions, sorted.
    pub fn by_path(&self) -> Vec<(String, Vec<i64>)> {
        self.data_table_by_path()
            .into_iter()
            .map(|(p, s)| (p.clone(), s.into_iter().collect()))
            .collect()
    }

    pub fn count_for_session(&self, session_id: i64) -> usize {
        self.by_session.get(&session_id).map_or(0, BTreeSet::len)
    }

    /// The path tables and the per-session index describe the same watches.
    pub fn check_invariants(&self) {
        let mut from_tables = 0;
        for (kind, table) in KINDS.iter().zip(&self.tables) {
            for (path, sessions) in table {
                assert!(!sessions.is_empty(), "empty watch set left for {path}");
                for session in sessions {
                    let index = self
                        .by_session
                        .get(session)
                        .expect("session missing from index");
                    assert!(
                        index.contains(&(*kind, path.clone())),
                        "index lacks {kind:?} {path}"
                    );
                    from_tables += 1;
                }
            }
        }
        let from_index: usize = self.by_session.values().map(BTreeSet::len).sum();
        assert_eq!(from_tables, from_index, "watch tables and index disagree");
        for (kind, table) in KINDS.iter().zip(&self.tables) {
            let entries: usize = table.values().map(BTreeSet::len).sum();
            assert_eq!(
                self.counts[*kind as usize], entries,
                "{kind:?} count drifted"
            );
        }
        let summary_count = self.summary().watch_count;
        assert_eq!(self.watch_count(), summary_count);
    }
}

/// "/a/b/c" → "/a/b/c", "/a/b", "/a", "/".
fn ancestors_and_self(path: &str) -> impl Iterator<Item = &str> {
    let mut next = Some(path);
    std::iter::from_fn(move || {
        let current = next?;
        next = match current.rfind('/') {
            _ if current == "/" => None,
            Some(0) => Some("/"),
            Some(i) => Some(&current[..i]),
            None => None,
        };
        Some(current)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy made a few paths at a time equals the tables it copied.
    #[test]
    fn copying_in_slices_gives_the_same_tables() {
        let mut watches = WatchManager::with_hash_seed(1);
        for i in 0..50 {
            watches.add_data_watch(i % 7, &format!("/d{i}"));
            watches.add_child_watch(i % 3, &format!("/c{}", i % 11));
            if i % 5 == 0 {
                watches.add_persistent_watch(i, &format!("/p{i}"), i % 2 == 0);
            }
        }
        let mut copy = WatchManager::with_hash_seed(2);
        let mut cursor = WatchCursor::default();
        let mut calls = 0;
        while !watches.copy_some(&mut cursor, 4, &mut copy) {
            calls += 1;
            assert!(calls < 1000);
        }
        assert!(calls > 10, "copied in slices");
        copy.check_invariants();
        assert_eq!(copy.by_path(), watches.by_path());
        assert_eq!(copy.by_session(), watches.by_session());
        assert_eq!(copy.summary(), watches.summary());
        assert_eq!(copy.watch_count(), watches.watch_count());
    }

    fn sessions(events: &[WatchEvent]) -> Vec<i64> {
        events.iter().map(|e| e.session_id).collect()
    }

    #[test]
    fn one_shot_data_watch_fires_once() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        assert_eq!(
            sessions(&w.trigger("/a", EventType::NodeDataChanged, 5, &[])),
            vec![1]
        );
        assert!(w
            .trigger("/a", EventType::NodeDataChanged, 6, &[])
            .is_empty());
        w.check_invariants();
    }

    #[test]
    fn delete_fires_data_and_child_watches_once_per_session() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_child_watch(1, "/a");
        w.add_child_watch(2, "/a");
        let events = w.trigger("/a", EventType::NodeDeleted, 5, &[]);
        assert_eq!(sessions(&events), vec![1, 2]);
        assert_eq!(w.summary().watch_count, 0);
        w.check_invariants();
    }

    #[test]
    fn child_watches_ignore_data_changes() {
        let mut w = WatchManager::new();
        w.add_child_watch(1, "/a");
        assert!(w
            .trigger("/a", EventType::NodeDataChanged, 5, &[])
            .is_empty());
        assert_eq!(
            sessions(&w.trigger("/a", EventType::NodeChildrenChanged, 6, &[])),
            vec![1]
        );
    }

    #[test]
    fn persistent_watches_stay_and_see_children_changes() {
        let mut w = WatchManager::new();
        w.add_persistent_watch(1, "/a", false);
        for event in [
            EventType::NodeDataChanged,
            EventType::NodeChildrenChanged,
            EventType::NodeDeleted,
            EventType::NodeCreated,
        ] {
            assert_eq!(
                sessions(&w.trigger("/a", event, 1, &[])),
                vec![1],
                "{event:?}"
            );
        }
        assert!(
            w.trigger("/a/b", EventType::NodeCreated, 2, &[]).is_empty(),
            "not recursive"
        );
    }

    #[test]
    fn recursive_watches_cover_descendants_but_not_child_lists() {
        let mut w = WatchManager::new();
        w.add_persistent_watch(1, "/a", true);
        w.add_persistent_watch(2, "/", true);
        assert_eq!(
            sessions(&w.trigger("/a/b/c", EventType::NodeCreated, 1, &[])),
            vec![1, 2]
        );
        assert_eq!(
            sessions(&w.trigger("/x", EventType::NodeDataChanged, 2, &[])),
            vec![2]
        );
        assert!(w
            .trigger("/a", EventType::NodeChildrenChanged, 3, &[])
            .is_empty());
    }

    #[test]
    fn one_shot_and_persistent_on_one_path_give_one_event() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_persistent_watch(1, "/a", false);
        w.add_persistent_watch(1, "/a", true);
        assert_eq!(w.trigger("/a", EventType::NodeDataChanged, 1, &[]).len(), 1);
        assert_eq!(
            w.count_for_session(1),
            2,
            "the one-shot watch is gone, the persistent ones stay"
        );
    }

    #[test]
    fn remove_watches_reports_no_watcher_and_removes_by_type() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_child_watch(1, "/a");
        assert_eq!(
            w.remove_watches(1, "/a", WatcherType::Persistent, true),
            Err(ErrorCode::NoWatcher)
        );
        assert_eq!(
            w.remove_watches(2, "/a", WatcherType::Any, true),
            Err(ErrorCode::NoWatcher)
        );
        assert!(w.remove_watches(1, "/a", WatcherType::Data, true).is_ok());
        assert_eq!(w.count_for_session(1), 2, "check does not remove");
        assert!(w
            .remove_watches(1, "/a", WatcherType::Children, false)
            .is_ok());
        assert_eq!(
            w.remove_watches(1, "/a", WatcherType::Children, true),
            Err(ErrorCode::NoWatcher)
        );
        assert!(w.remove_watches(1, "/a", WatcherType::Any, false).is_ok());
        assert_eq!(w.count_for_session(1), 0);
        w.check_invariants();
    }

    #[test]
    fn session_removal_forgets_every_watch() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_persistent_watch(1, "/b", true);
        w.add_child_watch(2, "/a");
        w.remove_session(1);
        assert!(w.by_path().is_empty(), "wchp reports the data table only");
        assert_eq!(
            w.summary().watch_count,
            1,
            "session 2's child watch is left"
        );
        w.check_invariants();
    }

    #[test]
    fn summaries_count_like_zookeepers_two_tables() {
        let mut w = WatchManager::new();
        w.add_data_watch(1, "/a");
        w.add_child_watch(1, "/a");
        w.add_exist_watch(2, "/b");
        w.add_persistent_watch(3, "/c", false);
        w.add_persistent_watch(3, "/d", true);
        let summary = w.summary();
        assert_eq!(
            summary.data_watches, 4,
            "data, exist, persistent, recursive"
        );
        assert_eq!(summary.paths_watched, 4);
        assert_eq!(summary.connections_watching, 3);
        assert_eq!(
            summary.watch_count, 6,
            "persistent watches sit in both tables"
        );
    }

    #[test]
    fn ancestors_walk_up_to_the_root() {
        assert_eq!(
            ancestors_and_self("/a/b").collect::<Vec<_>>(),
            vec!["/a/b", "/a", "/"]
        );
        assert_eq!(ancestors_and_self("/").collect::<Vec<_>>(), vec!["/"]);
    }
}
