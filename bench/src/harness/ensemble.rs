//! Ensembles for the side-by-side harness: N servers of one system on
//! 127.0.0.1, each with its own client, quorum and election port and its own
//! data and log directories under the work directory (so all on one disk),
//! started together, watched through the four-letter word `srvr`, and — for
//! the failover measurement — killed and restarted one at a time.
//!
//! ```text
//! <work>/<system>/s1/{zoo.cfg, data/myid, data/, log/, server.log}
//! <work>/<system>/s2/...
//! zoo.cfg = the standalone shape (tickTime, dataDir, dataLogDir, clientPort,
//!           clientPortAddress, forceSync) + initLimit=10, syncLimit=5,
//!           4lw.commands.whitelist=srvr,mntr and one server.N line per member
//! ```
//!
//! "Settled" means what a client needs: every running member answers `srvr`
//! with a mode (a server without a quorum answers "not currently serving
//! requests" instead, on both systems) and exactly one of them is the leader.
//!
//! The leader's per-write costs come from outside the server, so they mean
//! the same on both systems: the bytes its quorum connections carried
//! (`ss -tinpO`: TCP payload acknowledged by the followers, and received from
//! them) and the bytes it sent to storage (`write_bytes` in /proc/<pid>/io).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::server::{self, Kind, Member, ServerProcess, ServerSpec};

/// Bound on an ensemble's size (ports, processes, JVM heaps on one machine).
pub const ENSEMBLE_SIZE_MAX: usize = 9;
/// How long an ensemble gets to elect a leader and serve.
pub const SETTLE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bound on one four-letter word's connect and reply.
const FOUR_LETTER_TIMEOUT: Duration = Duration::from_secs(1);
/// Bound on a four-letter word's reply (`mntr` is a few kB).
const FOUR_LETTER_REPLY_BYTES_MAX: u64 = 1 << 20;
/// How often the ensemble is polled while waiting for it to settle.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// `count` distinct free TCP ports on 127.0.0.1 (all bound at once, then
/// released; the servers bind them moments later).
pub fn free_ports(count: usize) -> io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| TcpListener::bind(("127.0.0.1", 0)))
        .collect::<io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}

/// The specs of an ensemble of `size` servers of `kind` under `root`.
/// ZooKeeper runs as in the standalone harness (Debian's jar, `heap`,
/// AdminServer off); every ferrokeeper member gets `ferrokeeper.cores=1`
/// (the members share the machine's cores).
pub fn ensemble_specs(
    kind: Kind,
    root: &Path,
    size: usize,
    zk_heap: &str,
    fk_binary: &Path,
) -> io::Result<Vec<ServerSpec>> {
    assert!(
        (2..=ENSEMBLE_SIZE_MAX).contains(&size),
        "ensemble size {size} outside 2..={ENSEMBLE_SIZE_MAX}"
    );
    let ports = free_ports(3 * size)?;
    let members: Vec<Member> = (0..size)
        .map(|i| Member {
            sid: i as u32 + 1,
            quorum_port: ports[3 * i + 1],
            election_port: ports[3 * i + 2],
        })
        .collect();
    let server_lines: String = members
        .iter()
        .map(|m| {
            format!(
                "server.{}=127.0.0.1:{}:{}\n",
                m.sid, m.quorum_port, m.election_port
            )
        })
        .collect();
    let specs = members
        .iter()
        .enumerate()
        .map(|(i, member)| {
            let dir = root.join(format!("s{}", member.sid));
            let port = ports[3 * i];
            let own = match kind {
                Kind::ZooKeeper => "admin.enableServer=false\n",
                Kind::Ferrokeeper => "ferrokeeper.cores=1\n",
            };
            let extra = format!(
                "initLimit=10\nsyncLimit=5\n4lw.commands.whitelist=srvr,mntr\n{own}{server_lines}"
            );
            let mut spec = match kind {
                Kind::ZooKeeper => server::zookeeper(&dir, port, zk_heap),
                Kind::Ferrokeeper => server::ferrokeeper(&dir, port, fk_binary),
            };
            spec.config_text = server::zoo_cfg(&dir, port, &extra);
            spec.member = Some(*member);
            spec
        })
        .collect();
    Ok(specs)
}

/// A member's role as `srvr` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    Leader,
    Follower,
    Observer,
    Standalone,
}

/// The `Mode:` line of a `srvr` reply; `None` for a server that is not
/// serving (its reply says so and has no mode).
pub fn parse_mode(srvr: &str) -> Option<Mode> {
    let mode = srvr.lines().find_map(|l| l.strip_prefix("Mode:"))?.trim();
    match mode {
        "leader" => Some(Mode::Leader),
        "follower" => Some(Mode::Follower),
        "observer" => Some(Mode::Observer),
        "standalone" => Some(Mode::Standalone),
        _ => None,
    }
}

/// A value of a `mntr` reply (`key<TAB>value` lines), when numeric.
pub fn mntr_value(mntr: &str, key: &str) -> Option<u64> {
    mntr.lines()
        .find_map(|l| {
            let (k, v) = l.split_once('\t')?;
            (k.trim() == key).then(|| v.trim().parse::<f64>().ok())?
        })
        .map(|v| v as u64)
}

/// Sends a four-letter word and reads the reply until the server closes.
pub fn four_letter_word(addr: SocketAddr, word: &str) -> io::Result<String> {
    let mut stream = TcpStream::connect_timeout(&addr, FOUR_LETTER_TIMEOUT)?;
    stream.set_read_timeout(Some(FOUR_LETTER_TIMEOUT))?;
    stream.set_write_timeout(Some(FOUR_LETTER_TIMEOUT))?;
    stream.write_all(word.as_bytes())?;
    let mut reply = String::new();
    stream
        .take(FOUR_LETTER_REPLY_BYTES_MAX)
        .read_to_string(&mut reply)?;
    Ok(reply)
}

/// A running ensemble; every member is stopped when it is dropped.
#[derive(Debug)]
pub struct Ensemble {
    pub members: Vec<ServerProcess>,
}

impl Ensemble {
    /// Starts every member and waits until the ensemble has settled.
    pub fn start(specs: Vec<ServerSpec>, lifetime: Duration) -> io::Result<Ensemble> {
        let mut ensemble = Ensemble {
            members: Vec::with_capacity(specs.len()),
        };
        for spec in specs {
            ensemble
                .members
                .push(ServerProcess::launch(spec, lifetime)?);
        }
        ensemble.wait_settled(SETTLE_TIMEOUT)?;
        Ok(ensemble)
    }

    /// Every member's client address, in sid order.
    pub fn addrs(&self) -> Vec<SocketAddr> {
        self.members.iter().map(|m| m.spec.addr()).collect()
    }

    /// Each member's mode; `None` for a member that is not running, not
    /// answering or not serving.
    pub fn modes(&mut self) -> Vec<Option<Mode>> {
        self.members
            .iter_mut()
            .map(|m| {
                if !m.is_running() {
                    return None;
                }
                four_letter_word(m.spec.addr(), "srvr")
                    .ok()
                    .and_then(|text| parse_mode(&text))
            })
            .collect()
    }

    /// The leader among `modes`, if the running members have settled:
    /// every running member has a mode and exactly one leads.
    fn settled(&mut self, modes: &[Option<Mode>]) -> Option<usize> {
        let mut leader = None;
        for (i, mode) in modes.iter().enumerate() {
            match mode {
                Some(Mode::Leader) if leader.is_none() => leader = Some(i),
                Some(Mode::Leader) => return None,
                Some(_) => {}
                None if self.members[i].is_running() => return None,
                None => {}
            }
        }
        leader
    }

    /// Waits until the running members have settled; returns the leader's
    /// index. The error carries every member's last log lines.
    pub fn wait_settled(&mut self, timeout: Duration) -> io::Result<usize> {
        let deadline = Instant::now() + timeout;
        loop {
            let modes = self.modes();
            if let Some(leader) = self.settled(&modes) {
                return Ok(leader);
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "the ensemble did not settle within {timeout:?} (modes {modes:?}); last log lines:\n{}",
                    self.log_tails(10)
                )));
            }
            std::thread::sleep(POLL_INTERVAL);
        }
    }

    /// The current leader's index, if one member says it leads.
    pub fn leader(&mut self) -> Option<usize> {
        self.modes().iter().position(|m| *m == Some(Mode::Leader))
    }

    /// A follower's index (the first that says so).
    pub fn follower(&mut self) -> Option<usize> {
        self.modes().iter().position(|m| *m == Some(Mode::Follower))
    }

    pub fn log_tails(&self, lines: usize) -> String {
        self.members
            .iter()
            .map(|m| {
                format!(
                    "--- server {}\n{}",
                    m.spec.member.map_or(0, |x| x.sid),
                    m.log_tail(lines)
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn stop(&mut self) {
        for member in &mut self.members {
            member.stop();
        }
    }
}

/// One TCP connection as `ss -tinpO` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpConn {
    pub local: SocketAddr,
    pub peer: SocketAddr,
    pub pids: Vec<u32>,
    /// Payload bytes the peer acknowledged (`bytes_acked`).
    pub bytes_acked: u64,
    pub bytes_received: u64,
}

/// Parses `ss -tinpHO` output: one connection a line; the first two tokens
/// that are socket addresses are the local and the peer address.
pub fn parse_ss(text: &str) -> Vec<TcpConn> {
    text.lines()
        .filter_map(|line| {
            let mut addrs = line
                .split_whitespace()
                .filter_map(|t| t.parse::<SocketAddr>().ok());
            let local = addrs.next()?;
            let peer = addrs.next()?;
            let counter = |name: &str| {
                line.split_whitespace()
                    .find_map(|t| t.strip_prefix(name)?.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let pids = line
                .split("pid=")
                .skip(1)
                .filter_map(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                })
                .collect();
            Some(TcpConn {
                local,
                peer,
                pids,
                bytes_acked: counter("bytes_acked:"),
                bytes_received: counter("bytes_received:"),
            })
        })
        .collect()
}

/// Every established TCP connection on the machine (`ss`).
pub fn tcp_connections() -> io::Result<Vec<TcpConn>> {
    let output = Command::new("ss")
        .args(["-tinpHO", "state", "established"])
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "ss failed: {}",
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    Ok(parse_ss(&String::from_utf8_lossy(&output.stdout)))
}

/// What the leader's quorum connections carried, summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct QuorumTraffic {
    pub connections: usize,
    /// Payload bytes the leader sent that the followers acknowledged.
    pub bytes_sent: u64,
    pub bytes_received: u64,
}

impl QuorumTraffic {
    pub fn since(self, before: QuorumTraffic) -> QuorumTraffic {
        QuorumTraffic {
            connections: self.connections,
            bytes_sent: self.bytes_sent.saturating_sub(before.bytes_sent),
            bytes_received: self.bytes_received.saturating_sub(before.bytes_received),
        }
    }
}

/// The quorum connections of the leader process `pid`: those it owns whose
/// local port is its own quorum port or whose peer is another member's quorum
/// port (whichever side connected).
pub fn quorum_traffic(
    conns: &[TcpConn],
    pid: u32,
    leader: &Member,
    members: &[Member],
) -> QuorumTraffic {
    let mut traffic = QuorumTraffic::default();
    for conn in conns.iter().filter(|c| c.pids.contains(&pid)) {
        let peer_is_quorum = members
            .iter()
            .any(|m| m.sid != leader.sid && m.quorum_port == conn.peer.port());
        if conn.local.port() == leader.quorum_port || peer_is_quorum {
            traffic.connections += 1;
            traffic.bytes_sent += conn.bytes_acked;
            traffic.bytes_received += conn.bytes_received;
        }
    }
    traffic
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `srvr`'s mode line, and a non-serving server's reply, as both systems write them.
    #[test]
    fn modes_parse() {
        let srvr = "Zookeeper version: 3.8.0\nLatency min/avg/max: 0/0.0/0\nMode: follower\nNode count: 5\n";
        assert_eq!(parse_mode(srvr), Some(Mode::Follower));
        assert_eq!(parse_mode("Mode: leader\n"), Some(Mode::Leader));
        assert_eq!(
            parse_mode("This ZooKeeper instance is not currently serving requests\n"),
            None
        );
    }

    #[test]
    fn mntr_values_parse() {
        let mntr = "zk_version\t3.8.0\nzk_cnt_fsynctime\t1234\nzk_avg_fsynctime\t0.5\n";
        assert_eq!(mntr_value(mntr, "zk_cnt_fsynctime"), Some(1234));
        assert_eq!(mntr_value(mntr, "zk_avg_fsynctime"), Some(0));
        assert_eq!(mntr_value(mntr, "zk_version"), None);
        assert_eq!(mntr_value(mntr, "zk_missing"), None);
    }

    /// Only the leader's own quorum connections count, in either direction.
    #[test]
    fn quorum_traffic_picks_the_leaders_quorum_connections() {
        let text = "\
0 0 127.0.0.1:4001 127.0.0.1:50000 users:((\"java\",pid=11,fd=40)) cubic bytes_sent:900 bytes_acked:900 bytes_received:70 segs_out:3
0 0 127.0.0.1:50000 127.0.0.1:4001 users:((\"java\",pid=22,fd=41)) cubic bytes_acked:70 bytes_received:900
0 0 127.0.0.1:50001 127.0.0.1:4003 users:((\"java\",pid=11,fd=42)) cubic bytes_acked:100 bytes_received:10
0 0 127.0.0.1:2181 127.0.0.1:50002 users:((\"java\",pid=11,fd=43)) cubic bytes_acked:5000 bytes_received:5000
";
        let conns = parse_ss(text);
        assert_eq!(conns.len(), 4);
        assert_eq!(conns[0].pids, vec![11]);
        let member = |sid, quorum_port| Member {
            sid,
            quorum_port,
            election_port: 0,
        };
        let members = [member(1, 4001), member(2, 4002), member(3, 4003)];
        let traffic = quorum_traffic(&conns, 11, &members[0], &members);
        assert_eq!(
            traffic,
            QuorumTraffic {
                connections: 2,
                bytes_sent: 1000,
                bytes_received: 80
            }
        );
    }

    /// Every member's config names every member and its own ports; ports
    /// are distinct.
    #[test]
    fn ensemble_configs_name_every_member() {
        let root = Path::new("/nonexistent/fk");
        let specs =
            ensemble_specs(Kind::Ferrokeeper, root, 3, "1g", Path::new("/bin/true")).unwrap();
        let mut ports = Vec::new();
        for spec in &specs {
            let member = spec.member.unwrap();
            ports.extend([spec.port, member.quorum_port, member.election_port]);
            for other in &specs {
                let m = other.member.unwrap();
                let line = format!(
                    "server.{}=127.0.0.1:{}:{}\n",
                    m.sid, m.quorum_port, m.election_port
                );
                assert!(spec.config_text.contains(&line), "{}", spec.config_text);
            }
            assert!(spec.config_text.contains("ferrokeeper.cores=1\n"));
            assert!(spec
                .config_text
                .contains(&format!("clientPort={}\n", spec.port)));
        }
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 9);
        let zk = ensemble_specs(Kind::ZooKeeper, root, 5, "1g", Path::new("/bin/true")).unwrap();
        assert_eq!(zk.len(), 5);
        assert!(!zk[0].config_text.contains("ferrokeeper."));
    }
}
