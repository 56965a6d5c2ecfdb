//! Four-letter words: the plain-text admin commands a client sends as the
//! first four bytes of a fresh connection (`echo ruok | nc host 2181`).
//!
//! The connection recognises the word ([`recognise`]); the sequencer, which
//! holds the state they report, renders the answer ([`render`]) from a
//! [`Snapshot`] of its counters. Words outside `4lw.commands.whitelist` get
//! ZooKeeper's refusal text.

use std::fmt::Write;

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

/// One client connection, as `cons` and `stat` list it.
#[derive(Debug, Clone)]
pub struct ConnectionInfo {
    pub peer: String,
    pub session_id: i64,
    pub timeout_ms: i32,
    pub queued: usize,
    pub received: u64,
    pub sent: u64,
    pub last_zxid: i64,
}

/// Everything the words report, gathered by the sequencer.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub version: String,
    pub latency_min_ms: u64,
    pub latency_avg_ms: f64,
    pub latency_max_ms: u64,
    pub packets_received: u64,
    pub packets_sent: u64,
    pub outstanding_requests: usize,
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
    pub connections: Vec<ConnectionInfo>,
    /// `wchc`: session → watched paths.
    pub watches_by_session: Vec<(i64, Vec<String>)>,
    /// `wchp`: path → watching sessions.
    pub watches_by_path: Vec<(String, Vec<i64>)>,
    /// `dump`: session → ephemeral paths; and sessions with their timeouts.
    pub ephemerals_by_session: Vec<(i64, Vec<String>)>,
    pub sessions: Vec<(i64, i32)>,
    pub config: Vec<(String, String)>,
    pub environment: Vec<(String, String)>,
    pub open_file_descriptors: u64,
    pub max_file_descriptors: u64,
    pub fsync_threshold_exceeded: u64,
    /// The tree digest at `last_zxid` (`hash`).
    pub digest: u64,
    /// Bytes of the files in dataDir and dataLogDir (`dirs`).
    pub data_dir_bytes: u64,
    pub log_dir_bytes: u64,
}

/// The answer to `word`, given whether the whitelist enables it.
pub fn render(word: &str, enabled: bool, s: &Snapshot) -> String {
    if !enabled {
        return format!("{word} is not executed because it is not in the whitelist.\n");
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
            s.watching_connections, s.watched_paths, s.data_watches
        ),
        "wchc" => grouped(
            &s.watches_by_session,
            |id| format!("0x{id:x}"),
            |p| p.clone(),
        ),
        "wchp" => grouped(&s.watches_by_path, |p| p.clone(), |id| format!("0x{id:x}")),
        "dump" => dump(s),
        "dirs" => format!(
            "datadir_size: {}\nlogdir_size: {}\n",
            s.data_dir_bytes, s.log_dir_bytes
        ),
        "hash" => format!("zxid: 0x{:x}, digest: {}\n", s.last_zxid, s.digest),
        "crst" => "Connection stats reset.\n".to_string(),
        "srst" => "Server stats reset.\n".to_string(),
        _ => format!("{word} is not supported by ferrokeeper.\n"),
    }
}

fn server_stats(s: &Snapshot, with_clients: bool) -> String {
    let mut out = format!("Zookeeper version: {}\n", s.version);
    if with_clients {
        out.push_str("Clients:\n");
        for c in &s.connections {
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
         Outstanding: {}\nZxid: 0x{:x}\nMode: standalone\nNode count: {}\n",
        s.latency_min_ms,
        s.latency_avg_ms,
        s.latency_max_ms,
        s.packets_received,
        s.packets_sent,
        s.connections.len(),
        s.outstanding_requests,
        s.last_zxid,
        s.node_count
    );
    out
}

fn monitor(s: &Snapshot) -> String {
    let rows: Vec<(&str, String)> = vec![
        ("zk_version", s.version.clone()),
        ("zk_server_state", "standalone".into()),
        ("zk_avg_latency", format!("{:.4}", s.latency_avg_ms)),
        ("zk_max_latency", s.latency_max_ms.to_string()),
        ("zk_min_latency", s.latency_min_ms.to_string()),
        ("zk_packets_received", s.packets_received.to_string()),
        ("zk_packets_sent", s.packets_sent.to_string()),
        ("zk_num_alive_connections", s.connections.len().to_string()),
        (
            "zk_outstanding_requests",
            s.outstanding_requests.to_string(),
        ),
        ("zk_znode_count", s.node_count.to_string()),
        ("zk_watch_count", s.watch_count.to_string()),
        ("zk_ephemerals_count", s.ephemerals_count.to_string()),
        (
            "zk_approximate_data_size",
            s.approximate_data_size.to_string(),
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
            s.fsync_threshold_exceeded.to_string(),
        ),
        ("zk_last_zxid", format!("0x{:x}", s.last_zxid)),
    ];
    rows.into_iter()
        .map(|(k, v)| format!("{k}\t{v}\n"))
        .collect()
}

fn key_values(rows: &[(String, String)]) -> String {
    rows.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
}

fn connections(s: &Snapshot) -> String {
    let mut out = String::new();
    for c in &s.connections {
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
    let _ = writeln!(out, "Session Sets ({}):", s.sessions.len());
    for (id, timeout) in &s.sessions {
        let _ = writeln!(out, "\t0x{id:x}\t{timeout}ms");
    }
    out.push_str("ephemeral nodes dump:\n");
    let _ = writeln!(
        out,
        "Sessions with Ephemerals ({}):",
        s.ephemerals_by_session.len()
    );
    out.push_str(&grouped(
        &s.ephemerals_by_session,
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
        let text = render("dump", false, &Snapshot::default());
        assert_eq!(
            text,
            "dump is not executed because it is not in the whitelist.\n"
        );
        assert_eq!(render("ruok", true, &Snapshot::default()), "imok");
    }

    #[test]
    fn mntr_is_tab_separated_key_values() {
        let s = Snapshot {
            node_count: 4,
            last_zxid: 0x1f,
            ..Snapshot::default()
        };
        let text = render("mntr", true, &s);
        assert!(text.contains("zk_znode_count\t4\n"), "{text}");
        assert!(text.contains("zk_server_state\tstandalone\n"));
        assert!(text.lines().all(|l| l.split('\t').count() == 2));
    }
}
