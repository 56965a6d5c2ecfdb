//! What the node contributes to four-letter words (`srvr`, `mntr`, `cons`,
//! `wchc`, `dump`, ...): counters and lists only it holds, gathered per
//! word so that a cheap word never pays for an expensive one's lists.
//!
//! Rendering, the configuration, the environment and the file-system figures
//! (`dirs`, open file descriptors) are the driver's: they need no node state
//! and must not cost the ordering core a system call.

use crate::node::Node;

/// One client connection, as `cons` and `stat` list it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub peer: String,
    pub session_id: i64,
    pub timeout_ms: i32,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    pub last_zxid: i64,
}

/// Everything the node reports for one word. Lists a word does not show are
/// left empty.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NodeReport {
    /// standalone, leader, follower, observer, or looking.
    pub mode: &'static str,
    /// Whether the server serves clients (an established leader, a synced
    /// learner, standalone). ZooKeeper's words answer "not currently serving
    /// requests" otherwise.
    pub serving: bool,
    /// Leader only: learners connected, synced followers, learners syncing.
    pub followers: usize,
    pub observers: usize,
    pub synced_followers: usize,
    pub pending_syncs: usize,
    /// Protocol-aware recovery: the log lost records to damage (wal's
    /// "recovering" marker) and the node has not yet synchronised from an
    /// established leader, so it counts in no quorum and serves nobody.
    /// False again from the sync on ([`crate::Node::recovering`]).
    pub recovering: bool,
    pub server_id: u8,
    pub latency_min_ms: u64,
    pub latency_avg_ms: f64,
    pub latency_max_ms: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub outstanding_requests: usize,
    pub connection_count: usize,
    pub last_zxid: i64,
    pub node_count: usize,
    pub approximate_data_size: u64,
    pub ephemerals_count: usize,
    /// `mntr`'s zk_watch_count: data and child tables.
    pub watch_count: usize,
    /// `wchs`'s total: the data table.
    pub data_watches: usize,
    pub watched_paths: usize,
    pub watching_connections: usize,
    pub fsync_threshold_exceeded: u64,
    /// Log syncs (each a group commit), and their longest and total time
    /// (`mntr`'s zk_cnt_fsynctime, zk_max_fsynctime, zk_sum_fsynctime, ms).
    pub log_syncs: u64,
    pub log_sync_max_ms: u64,
    pub log_sync_sum_ms: u64,
    /// The tree digest at `last_zxid` (`hash`).
    pub digest: u64,
    /// `stat`, `cons`.
    pub connections: Vec<ConnectionInfo>,
    /// `wchc`: session → watched paths.
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// `wchp`: path → watching sessions.
    pub watches_by_path: Vec<(String, Vec<i64>)>,
    /// `dump`: session → ephemeral paths, and the sessions with their timeouts.
    pub ephemerals_by_session: Vec<(i64, Vec<String>)>,
    pub sessions: Vec<(i64, i32)>,
    /// `wchs`, `wchc`, `wchp`: a copy of the watch tables, for the driver to
    /// summarise and list off the ordering core (with a million watches the
    /// lists take seconds to build; the copy takes a fraction of that).
    pub watches: Option<Box<tree::watch::WatchManager>>,
}

/// Paths of watches copied per turn for `wchs`, `wchc` and `wchp`: a bounded
/// slice of each turn, whatever the number of watches.
pub const WATCH_COPY_PATHS_PER_TURN: usize = 10_000;

/// A watch report being copied a slice per turn.
#[derive(Debug)]
pub(crate) struct WatchReport {
    pub(crate) request: u64,
    pub(crate) report: NodeReport,
    cursor: tree::watch::WatchCursor,
    copy: tree::watch::WatchManager,
}

impl WatchReport {
    pub(crate) fn new(request: u64, report: NodeReport) -> WatchReport {
        WatchReport {
            request,
            report,
            cursor: tree::watch::WatchCursor::default(),
            copy: tree::watch::WatchManager::with_hash_seed(0),
        }
    }

    /// Copies the next slice; the finished report once every watch is copied.
    pub(crate) fn advance(&mut self, watches: &tree::watch::WatchManager) -> Option<NodeReport> {
        if !watches.copy_some(&mut self.cursor, WATCH_COPY_PATHS_PER_TURN, &mut self.copy) {
            return None;
        }
        let mut report = std::mem::take(&mut self.report);
        report.watches = Some(Box::new(std::mem::take(&mut self.copy)));
        Some(report)
    }
}

/// Whether a word lists or sums the watch tables (copied over several turns).
pub(crate) fn reports_watches(word: &str) -> bool {
    matches!(word, "wchs" | "wchc" | "wchp")
}

/// Gathers what `word` reports.
pub(crate) fn gather(node: &Node, word: &str) -> NodeReport {
    let tree = node.tree();
    let stats = node.stats();
    let (followers, observers, synced_followers, pending_syncs) = node.leader_counts();
    let mut report = NodeReport {
        mode: node.mode(),
        serving: node.serving(),
        followers,
        observers,
        synced_followers,
        pending_syncs,
        recovering: node.recovering().is_some(),
        server_id: node.settings().server_id,
        latency_min_ms: stats.latency_min_ms(),
        latency_avg_ms: stats.latency_avg_ms(),
        latency_max_ms: stats.latency_max_ms(),
        packets_received: stats.packets_received,
        packets_sent: stats.packets_sent,
        outstanding_requests: node.outstanding(),
        connection_count: node.connections().len(),
        last_zxid: node.zxid_applied(),
        node_count: tree.node_count(),
        approximate_data_size: tree.approximate_data_size(),
        ephemerals_count: tree.ephemeral_count(),
        fsync_threshold_exceeded: stats.fsync_threshold_exceeded,
        log_syncs: stats.log_syncs,
        log_sync_max_ms: stats.log_sync_max.as_millis() as u64,
        log_sync_sum_ms: stats.log_sync_total.as_millis() as u64,
        digest: tree.digest(),
        ..NodeReport::default()
    };
    report.watch_count = tree.watches.watch_count();
    match word {
        "stat" | "cons" => {
            report.connections = node
                .connections()
                .iter()
                .map(|(_, c)| ConnectionInfo {
                    peer: c.peer.to_string(),
                    session_id: c.session_id,
                    timeout_ms: c.timeout_ms,
                    queued: c.queued(),
                    received: c.received,
                    sent: c.sent,
                    last_zxid: c.last_zxid,
                })
                .collect();
        }
        "dump" => {
            report.sessions = node
                .sessions()
                .iter()
                .map(|(id, s)| (id, s.timeout_ms))
                .collect();
            report.ephemerals_by_session = report
                .sessions
                .iter()
                .map(|(id, _)| (*id, tree.get_ephemerals(*id, "/")))
                .filter(|(_, paths)| !paths.is_empty())
                .collect();
        }
        _ => {}
    }
    report
}
