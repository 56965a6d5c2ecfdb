//! What one acknowledged write costs the leader of an ensemble, counted
//! from outside the server so that both systems are counted the same way:
//!
//! - **quorum bytes sent / received**: TCP payload on the leader process's
//!   quorum connections (`ss -tinpO`: `bytes_acked`, i.e. bytes the
//!   followers acknowledged, and `bytes_received`), summed over followers.
//!   Proposals, commits, pings and acks; client traffic is not included.
//! - **storage bytes**: `write_bytes` of the leader process (/proc/<pid>/io):
//!   bytes it caused to be written to storage (its log, and any snapshot).
//! - **device flushes**: cache flushes the disk completed
//!   (`/sys/class/block/<dev>/stat`, field 16) — machine-wide, so they are
//!   every member's fsyncs together (all members share the disk) plus
//!   whatever else ran on the machine.
//! - **leader fsyncs**: the leader's own count, where the server keeps one:
//!   ZooKeeper's `zk_cnt_fsynctime` in `mntr` (one per fsync of its txn log).
//!   ferrokeeper exposes none (it writes its log `O_DSYNC` through io_uring,
//!   which no per-process counter sees), so that column is empty for it.
//!
//! Each figure is `(after − before) / writes acknowledged in the case`; the
//! counters span the whole case (setup, warmup and drain too), so the
//! per-write figures are slightly high for cases with setup writes.

use std::path::Path;

use serde::Serialize;

use super::ensemble::{self, Ensemble, QuorumTraffic};
use super::machine::{self, DiskCounters};
use crate::table::render;

/// The `mntr` key that counts a server's txn-log fsyncs (ZooKeeper 3.6+).
pub const MNTR_FSYNC_COUNT: &str = "zk_cnt_fsynctime";

/// The leader's counters at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct LeaderSample {
    pub sid: u32,
    pub pid: Option<u32>,
    pub write_bytes: Option<u64>,
    pub quorum: Option<QuorumTraffic>,
    pub fsyncs: Option<u64>,
    pub device: Option<DiskCounters>,
}

/// Reads the counters of member `leader`.
pub fn sample(ensemble: &Ensemble, leader: usize, disk_stat: Option<&Path>) -> LeaderSample {
    let process = &ensemble.members[leader];
    let pid = process.server_pid();
    let members: Vec<_> = ensemble
        .members
        .iter()
        .filter_map(|m| m.spec.member)
        .collect();
    let quorum = match (pid, process.spec.member, ensemble::tcp_connections()) {
        (Some(pid), Some(me), Ok(conns)) => {
            Some(ensemble::quorum_traffic(&conns, pid, &me, &members))
        }
        _ => None,
    };
    let fsyncs = ensemble::four_letter_word(process.spec.addr(), "mntr")
        .ok()
        .and_then(|text| ensemble::mntr_value(&text, MNTR_FSYNC_COUNT));
    LeaderSample {
        sid: process.spec.member.map_or(0, |m| m.sid),
        pid,
        write_bytes: pid.and_then(machine::process_write_bytes),
        quorum,
        fsyncs,
        device: disk_stat.and_then(machine::read_disk_counters),
    }
}

/// Per-write costs on the leader during one case.
#[derive(Debug, Clone, Serialize)]
pub struct LeaderCost {
    pub server: String,
    pub case: String,
    pub leader_sid: u32,
    pub writes_acknowledged: u64,
    /// The leader changed (or restarted) during the case: no figures.
    pub leader_changed: bool,
    pub fsyncs_per_write: Option<f64>,
    pub device_flushes_per_write: Option<f64>,
    pub storage_bytes_per_write: Option<f64>,
    pub quorum_bytes_sent_per_write: Option<f64>,
    pub quorum_bytes_received_per_write: Option<f64>,
    pub quorum_connections: Option<usize>,
}

/// The costs between two samples of the same leader.
pub fn cost(
    server: &str,
    case: &str,
    writes: u64,
    before: &LeaderSample,
    after: &LeaderSample,
) -> LeaderCost {
    let changed = before.sid != after.sid || before.pid != after.pid || before.pid.is_none();
    let per = |b: Option<u64>, a: Option<u64>| match (b, a) {
        (Some(b), Some(a)) if !changed && writes > 0 => {
            Some(a.saturating_sub(b) as f64 / writes as f64)
        }
        _ => None,
    };
    let quorum = |f: fn(&QuorumTraffic) -> u64| {
        per(before.quorum.as_ref().map(f), after.quorum.as_ref().map(f))
    };
    LeaderCost {
        server: server.to_owned(),
        case: case.to_owned(),
        leader_sid: before.sid,
        writes_acknowledged: writes,
        leader_changed: changed,
        fsyncs_per_write: per(before.fsyncs, after.fsyncs),
        device_flushes_per_write: per(
            before.device.map(|d| d.flushes),
            after.device.map(|d| d.flushes),
        ),
        storage_bytes_per_write: per(before.write_bytes, after.write_bytes),
        quorum_bytes_sent_per_write: quorum(|q| q.bytes_sent),
        quorum_bytes_received_per_write: quorum(|q| q.bytes_received),
        quorum_connections: after.quorum.map(|q| q.connections),
    }
}

pub fn costs_table(costs: &[LeaderCost]) -> String {
    let header = [
        "server",
        "case",
        "leader",
        "writes acked",
        "leader fsyncs/write",
        "device flushes/write (all servers)",
        "leader storage B/write",
        "leader quorum B sent/write",
        "quorum B received/write",
        "quorum conns",
    ];
    let num =
        |v: Option<f64>, digits: usize| v.map_or_else(|| "-".into(), |v| format!("{v:.digits$}"));
    let rows: Vec<Vec<String>> = costs
        .iter()
        .filter(|c| c.writes_acknowledged > 0)
        .map(|c| {
            vec![
                c.server.clone(),
                c.case.clone(),
                if c.leader_changed {
                    format!("s{} (changed: no figures)", c.leader_sid)
                } else {
                    format!("s{}", c.leader_sid)
                },
                c.writes_acknowledged.to_string(),
                num(c.fsyncs_per_write, 3),
                num(c.device_flushes_per_write, 3),
                num(c.storage_bytes_per_write, 0),
                num(c.quorum_bytes_sent_per_write, 0),
                num(c.quorum_bytes_received_per_write, 0),
                c.quorum_connections
                    .map_or_else(|| "-".into(), |n| n.to_string()),
            ]
        })
        .collect();
    render(&header, &rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(sid: u32, pid: u32, bytes: u64, sent: u64, fsyncs: Option<u64>) -> LeaderSample {
        LeaderSample {
            sid,
            pid: Some(pid),
            write_bytes: Some(bytes),
            quorum: Some(QuorumTraffic {
                connections: 2,
                bytes_sent: sent,
                bytes_received: sent / 10,
            }),
            fsyncs,
            device: Some(DiskCounters {
                write_ios: 0,
                flushes: bytes / 1000,
            }),
        }
    }

    /// Deltas over acknowledged writes; nothing when the leader changed or
    /// a counter is missing.
    #[test]
    fn costs_are_deltas_per_write() {
        let before = sample(2, 100, 1_000_000, 50_000, Some(10));
        let after = sample(2, 100, 1_400_000, 550_000, None);
        let c = cost("zookeeper", "create", 1000, &before, &after);
        assert!(!c.leader_changed);
        assert_eq!(c.storage_bytes_per_write, Some(400.0));
        assert_eq!(c.quorum_bytes_sent_per_write, Some(500.0));
        assert_eq!(c.quorum_bytes_received_per_write, Some(50.0));
        assert_eq!(c.device_flushes_per_write, Some(0.4));
        assert_eq!(c.fsyncs_per_write, None);
        let moved = cost(
            "zookeeper",
            "create",
            1000,
            &before,
            &sample(3, 101, 0, 0, None),
        );
        assert!(moved.leader_changed);
        assert_eq!(moved.storage_bytes_per_write, None);
        let text = costs_table(&[c, moved]);
        assert!(text.contains("changed: no figures"), "{text}");
    }
}
