//! Four-letter words: the plain-text admin commands a client sends as the
//! first four bytes of a fresh connection (`echo ruok | nc host 2181`).
//!
//! The connection recognises the word ([`recognise`]) and refuses words
//! outside `4lw.commands.whitelist` with ZooKeeper's text. For the others it
//! asks the node for what only the node knows (a
//! [`node::fourlw::NodeReport`]), adds the host's figures — configuration,
//! environment, open file descriptors, directory sizes — read on a blocking
//! thread so they never cost an executor a system call, and renders the
//! answer ([`render`]) on its own executor.

use std::fmt::Write;

use node::fourlw::NodeReport;

/// Every word ZooKeeper 3.9 knows. Only some are answered; the rest are
/// recognised so that they are refused cleanly instead of read as a frame.
const KNOWN: &[&str] = &[
    "ruok", "srvr", "stat", "mntr", "conf", "cons", "envi", "wchs", "wchc", "wchp", "dump", "isro",
    "crst", "srst", "dirs", "gtmk", "stmk", "hash", "rqst",
];

/// The word spelled by the first four bytes of a connection, if any.
pub fn recognise(prefix: [u8; 4]) -> Option<&'static str> {
    KNOWN.iter().copied().find(|word| word.as_bytes() == prefix)
}

/// What a word reports: the node's part and the host's.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub node: NodeReport,
    pub version: String,
    pub config: Vec<(String, String)>,
    pub environment: Vec<(String, String)>,
    pub open_file_descriptors: u64,
    pub max_file_descriptors: u64,
    /// Bytes of the files in dataDir and dataLogDir (`dirs`).
    pub data_dir_bytes: u64,
    pub log_dir_bytes: u64,
    /// Live client connections per executor (`mntr`).
    pub executor_connections: Vec<usize>,
}

/// What the host part of a report needs, fixed at start-up.
#[derive(Debug, Clone)]
pub struct HostContext {
    pub config: Vec<(String, String)>,
    pub data_dir: std::path::PathBuf,
    pub data_log_dir: std::path::PathBuf,
    pub loads: std::sync::Arc<crate::placement::ExecutorLoads>,
}

impl HostContext {
    pub fn new(
        config: &crate::config::Config,
        loads: std::sync::Arc<crate::placement::ExecutorLoads>,
    ) -> HostContext {
        HostContext {
            config: vec![
                ("clientPort".into(), config.client_port.to_string()),
                (
                    "clientPortAddress".into(),
                    config.client_address().to_string(),
                ),
                ("dataDir".into(), config.data_dir.display().to_string()),
                (
                    "dataLogDir".into(),
                    config.data_log_dir.display().to_string(),
                ),
                ("tickTime".into(), config.tick_time_ms.to_string()),
                ("maxClientCnxns".into(), config.max_client_cnxns.to_string()),
                (
                    "minSessionTimeout".into(),
                    config.min_session_timeout_ms.to_string(),
                ),
                (
                    "maxSessionTimeout".into(),
                    config.max_session_timeout_ms.to_string(),
                ),
            ],
            data_dir: config.data_dir.clone(),
            data_log_dir: config.data_log_dir.clone(),
            loads,
        }
    }

    /// Completes the node's report with the host's figures `word` shows, and
    /// lists the watch tables the node copied. Blocking: it reads /proc,
    /// lists directories, and walks every watch.
    pub fn complete(&self, word: &str, mut node: NodeReport) -> Snapshot {
        if let Some(watches) = node.watches.take() {
            match word {
                "wchc" => node.watches_by_session = watches.by_session(),
                "wchp" => node.watches_by_path = watches.by_path(),
                _ => {
                    let summary = watches.summary();
                    node.data_watches = summary.data_watches;
                    node.watched_paths = summary.paths_watched;
                    node.watching_connections = summary.connections_watching;
                }
            }
        }
        let mut config = self.config.clone();
        config.push(("serverId".into(), node.server_id.to_string()));
        let mut snapshot = Snapshot {
            node,
            version: crate::VERSION.to_string(),
            config,
            ..Snapshot::default()
        };
        match word {
            "mntr" => {
                snapshot.open_file_descriptors =
                    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64);
                snapshot.max_file_descriptors = max_open_files();
                snapshot.executor_connections = self.loads.live();
            }
            "dirs" => {
                snapshot.data_dir_bytes = dir_bytes(&self.data_dir);
                snapshot.log_dir_bytes = dir_bytes(&self.data_log_dir);
            }
            "envi" => snapshot.environment = environment(),
            _ => {}
        }
        snapshot
    }
}

fn environment() -> Vec<(String, String)> {
    vec![
        ("zookeeper.version".into(), crate::VERSION.to_string()),
        (
            "host.name".into(),
            std::env::var("HOSTNAME").unwrap_or_else(|_| "localhost".into()),
        ),
        ("os.name".into(), std::env::consts::OS.into()),
        ("os.arch".into(), std::env::consts::ARCH.into()),
        (
            "user.name".into(),
            std::env::var("USER").unwrap_or_else(|_| "unknown".into()),
        ),
        (
            "user.dir".into(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
        ),
    ]
}

/// The total size of the files directly in `dir` (0 if it cannot be read).
fn dir_bytes(dir: &std::path::Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.metadata().ok())
        .filter(std::fs::Metadata::is_file)
        .map(|metadata| metadata.len())
        .sum()
}

/// The soft limit on open files, from /proc (no libc call needed).
fn max_open_files() -> u64 {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .and_then(|l| l.split_whitespace().nth(3))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// ZooKeeper's answer to a word `4lw.commands.whitelist` does not allow.
pub fn refusal(word: &str) -> String {
    format!("{word} is not executed because it is not in the whitelist.\n")
}

/// What ZooKeeper's words answer while the server serves no clients.
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests\n";

/// The answer to `word`.
pub fn render(word: &str, s: &Snapshot) -> String {
    let needs_a_serving_server = !matches!(word, "ruok" | "conf" | "envi" | "isro");
    if needs_a_serving_server && !s.node.serving {
        // ZooKeeper's answer, exactly, unless the server recovers lost
        // records (protocol-aware recovery): then mntr adds
        // zk_fk_recovering 1 after ZooKeeper's line, since that is why it
        // serves nobody and operators must see it while it lasts.
        if word == "mntr" && s.node.recovering {
            return format!("{NOT_SERVING}{}", recovering_line(s));
        }
        return NOT_SERVING.to_string();
    }
    match word {
        "ruok" => "imok".to_string(),
        "isro" => "rw".to_string(),
        "srvr" => server_stats(s, false),
        "stat" => server_stats(s, true),
        "mntr" => monitor(s),
        "conf" => key_values(&s.config),
        "envi" => format!("Environment:\n{}", key_values(&s.environment)),
        "cons" => connections(s),
        "wchs" => format!(
            "{} connections watching {} paths\nTotal watches:{}\n",
            s.node.watching_connections, s.node.watched_paths, s.node.data_watches
        ),
        "wchc" => grouped(
            &s.node.watches_by_session,
            |id| format!("0x{id:x}"),
            |p| p.clone(),
        ),
        "wchp" => grouped(
            &s.node.watches_by_path,
            |p| p.clone(),
            |id| format!("0x{id:x}"),
        ),
        "dump" => dump(s),
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            s.data_dir_bytes, s.log_dir_bytes
        ),
        "hash" => format!(
            "zxid: 0x{:x}, digest: {}\n",
            s.node.last_zxid, s.node.digest
        ),
        "crst" => "Connection stats reset.\n".to_string(),
        "srst" => "Server stats reset.\n".to_string(),
        _ => format!("{word} is not supported by ferrokeeper.\n"),
    }
}

fn server_stats(s: &Snapshot, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {}\n", s.version);
    if with_clients {
        out.push_str("Clients:\n");
        for c in &s.node.connections {
            let _ = writeln!(
                out,
                " /{}[1](queued={},recved={},sent={})",
                c.peer, c.queued, c.received, c.sent
            );
        }
        out.push('\n');
    }
    let _ = write!(
        out,
        "Latency min/avg/max: {}/{:.4}/{}\nReceived: {}\nSent: {}\nConnections: {}\n\
         Outstanding: {}\nZxid: 0x{:x}\nMode: {}\nNode count: {}\n",
        s.node.latency_min_ms,
        s.node.latency_avg_ms,
        s.node.latency_max_ms,
        s.node.packets_received,
        s.node.packets_sent,
        s.node.connection_count,
        s.node.outstanding_requests,
        s.node.last_zxid,
        s.node.mode,
        s.node.node_count
    );
    out
}

fn monitor(s: &Snapshot) -> String {
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", s.version.clone()),
        ("zk_server_state", s.node.mode.into()),
        ("zk_avg_latency", format!("{:.4}", s.node.latency_avg_ms)),
        ("zk_max_latency", s.node.latency_max_ms.to_string()),
        ("zk_min_latency", s.node.latency_min_ms.to_string()),
        ("zk_packets_received", s.node.packets_received.to_string()),
        ("zk_packets_sent", s.node.packets_sent.to_string()),
        (
            "zk_num_alive_connections",
            s.node.connection_count.to_string(),
        ),
        (
            "zk_outstanding_requests",
            s.node.outstanding_requests.to_string(),
        ),
        ("zk_znode_count", s.node.node_count.to_string()),
        ("zk_watch_count", s.node.watch_count.to_string()),
        ("zk_ephemerals_count", s.node.ephemerals_count.to_string()),
        (
            "zk_approximate_data_size",
            s.node.approximate_data_size.to_string(),
        ),
        (
            "zk_open_file_descriptor_count",
            s.open_file_descriptors.to_string(),
        ),
        (
            "zk_max_file_descriptor_count",
            s.max_file_descriptors.to_string(),
        ),
        (
            "zk_fsync_threshold_exceed_count",
            s.node.fsync_threshold_exceeded.to_string(),
        ),
        ("zk_last_zxid", format!("0x{:x}", s.node.last_zxid)),
        ("zk_cnt_fsynctime", s.node.log_syncs.to_string()),
        ("zk_max_fsynctime", s.node.log_sync_max_ms.to_string()),
        ("zk_sum_fsynctime", s.node.log_sync_sum_ms.to_string()),
    ];
    let mut rows = rows;
    if s.node.mode == "leader" {
        rows.push((
            "zk_learners",
            (s.node.followers + s.node.observers).to_string(),
        ));
        rows.push(("zk_followers", s.node.followers.to_string()));
        rows.push(("zk_synced_followers", s.node.synced_followers.to_string()));
        rows.push(("zk_synced_observers", s.node.observers.to_string()));
        rows.push(("zk_pending_syncs", s.node.pending_syncs.to_string()));
    }
    // ferrokeeper's own: which executor serves how many connections
    // (engine/src/placement.rs); monitoring tools skip keys they do not know.
    let executors: Vec<(String, String)> = s
        .executor_connections
        .iter()
        .enumerate()
        .map(|(index, live)| {
            (
                format!("zk_fk_connections_executor_{index}"),
                live.to_string(),
            )
        })
        .collect();
    let mut out: String = rows
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(executors)
        .map(|(k, v)| format!("{k}\t{v}\n"))
        .collect();
    out.push_str(&recovering_line(s));
    out
}

/// ferrokeeper's own mntr line: 1 while the server recovers records its
/// log lost to damage (wal's "recovering" marker, until it has synchronised
/// from an established leader; it neither votes nor serves meanwhile), else 0.
fn recovering_line(s: &Snapshot) -> String {
    format!("zk_fk_recovering\t{}\n", u8::from(s.node.recovering))
}

fn key_values(rows: &[(String, String)]) -> String {
    rows.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn connections(s: &Snapshot) -> String {
    let mut out = String::new();
    for c in &s.node.connections {
        let _ = writeln!(
            out,
            " /{}[1](queued={},recved={},sent={},sid=0x{:x},lzxid=0x{:x},to={})",
            c.peer, c.queued, c.received, c.sent, c.session_id, c.last_zxid, c.timeout_ms
        );
    }
    out.push('\n');
    out
}

fn grouped<K, V>(
    rows: &[(K, Vec<V>)],
    key: impl Fn(&K) -> String,
    value: impl Fn(&V) -> String,
) -> String {
    let mut out = String::new();
    for (k, values) in rows {
        let _ = writeln!(out, "{}", key(k));
        for v in values {
            let _ = writeln!(out, "\t{}", value(v));
        }
    }
    out
}

fn dump(s: &Snapshot) -> String {
    let mut out = String::from("SessionTracker dump:\n");
    let _ = writeln!(out, "Session Sets ({}):", s.node.sessions.len());
    for (id, timeout) in &s.node.sessions {
        let _ = writeln!(out, "\t0x{id:x}\t{timeout}ms");
    }
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(
        out,
        "Sessions with Ephemerals ({}):",
        s.node.ephemerals_by_session.len()
    );
    out.push_str(&grouped(
        &s.node.ephemerals_by_session,
        |id| format!("0x{id:x}:"),
        |p| p.clone(),
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_are_recognised_only_as_known_ascii() {
        assert_eq!(recognise(*b"ruok"), Some("ruok"));
        assert_eq!(recognise(*b"mntr"), Some("mntr"));
        assert_eq!(recognise([0, 0, 0, 45]), None);
        assert_eq!(recognise(*b"RUOK"), None);
    }

    #[test]
    fn words_outside_the_whitelist_are_refused_by_name() {
        assert_eq!(
            refusal("dump"),
            "dump is not executed because it is not in the whitelist.\n"
        );
        assert_eq!(render("ruok", &Snapshot::default()), "imok");
        assert_eq!(render("srvr", &Snapshot::default()), NOT_SERVING);
    }

    #[test]
    fn mntr_is_tab_separated_key_values() {
        let s = Snapshot {
            node: NodeReport {
                mode: "standalone",
                serving: true,
                node_count: 4,
                last_zxid: 0x1f,
                ..NodeReport::default()
            },
            ..Snapshot::default()
        };
        let text = render("mntr", &s);
        assert!(text.contains("zk_znode_count\t4\n"), "{text}");
        assert!(text.contains("zk_server_state\tstandalone\n"));
        assert!(text.lines().all(|l| l.split('\t').count() == 2));
    }

    #[test]
    fn mntr_says_whether_the_server_recovers_lost_records_serving_or_not() {
        // zk_fk_recovering is 0 on a serving server, 1 while a damaged one
        // recovers (and so does not serve: ZooKeeper's line comes first);
        // one that merely has no quorum answers exactly as ZooKeeper does.
        let report = |serving, recovering| Snapshot {
            node: NodeReport {
                mode: if serving { "follower" } else { "looking" },
                serving,
                recovering,
                ..NodeReport::default()
            },
            ..Snapshot::default()
        };
        let serving = render("mntr", &report(true, false));
        assert!(serving.ends_with("zk_fk_recovering\t0\n"), "{serving}");
        assert!(serving.contains("zk_server_state\tfollower\n"));
        assert_eq!(
            render("mntr", &report(false, true)),
            format!("{NOT_SERVING}zk_fk_recovering\t1\n")
        );
        assert_eq!(render("mntr", &report(false, false)), NOT_SERVING);
        assert_eq!(render("srvr", &report(false, true)), NOT_SERVING);
    }
}
