//! Ensemble membership and quorum arithmetic.
//!
//! A zoo.cfg names every server of the ensemble with one line
//! (`QuorumPeer.QuorumServer`):
//!
//! ```text
//! server.N=host:quorumPort:electionPort[:participant|:observer][;[clientHost:]clientPort[;secureClientPort]]
//! ```
//!
//! Hosts may be IPv6 in brackets (`[::1]:2888:3888`). The client part, when
//! only a port, binds 0.0.0.0. Several '|'-joined addresses need ZooKeeper's
//! multi-address feature, off by default, and are refused here as there.
//!
//! Quorums are majorities of participants (`QuorumMaj`): with `p`
//! participants, any set holding more than `p / 2` of them. Observers never
//! count, whatever set they appear in.

use std::collections::{BTreeMap, BTreeSet};

use thiserror::Error;

use crate::election_wire::{java_split, split_host_and_ports, HostPort};

/// A server id (`myid`, the N of `server.N`).
pub type Sid = u64;

/// Whether a server votes (`QuorumPeer.LearnerType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LearnerType {
    Participant,
    Observer,
}

/// Why a `server.N` line or a set of them was refused. Each names the server.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum EnsembleError {
    #[error("{key:?} is not server.N with N a server id")]
    BadKey { key: String },
    #[error("server.{sid}={value:?} is not host:quorumPort:electionPort[:type][;clientPort]")]
    Format { sid: Sid, value: String },
    #[error("server.{sid}: {text:?} is not a port")]
    BadPort { sid: Sid, text: String },
    #[error("server.{sid}: quorum and election port are both {port}")]
    SamePorts { sid: Sid, port: u16 },
    #[error("server.{sid}: unknown peer type {text:?} (participant or observer)")]
    UnknownPeerType { sid: Sid, text: String },
    #[error("server.{sid}: several addresses need multi-address support, which is off")]
    MultipleAddresses { sid: Sid },
    #[error("server.{sid} is listed twice")]
    DuplicateSid { sid: Sid },
    #[error("no server.N lines")]
    Empty,
    #[error("observers without participants is an invalid configuration")]
    NoParticipants,
}

/// One member of the ensemble, as its `server.N` line gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerSpec {
    pub sid: Sid,
    /// Where the leader listens for followers (2888).
    pub quorum: HostPort,
    /// Where the server listens for election connections (3888).
    pub election: HostPort,
    pub learner_type: LearnerType,
    /// The client address from the line, if it has one.
    pub client: Option<HostPort>,
    pub secure_client: Option<HostPort>,
}

impl ServerSpec {
    /// Parses a whole `server.N=value` line.
    pub fn parse_line(line: &str) -> Result<Self, EnsembleError> {
        let Some((key, value)) = line.split_once('=') else {
            return Err(EnsembleError::BadKey {
                key: line.to_string(),
            });
        };
        Self::parse(Self::parse_key(key)?, value)
    }

    /// The N of a `server.N` key.
    pub fn parse_key(key: &str) -> Result<Sid, EnsembleError> {
        key.trim()
            .strip_prefix("server.")
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| EnsembleError::BadKey {
                key: key.to_string(),
            })
    }

    /// Parses the value of `server.<sid>`.
    pub fn parse(sid: Sid, value: &str) -> Result<Self, EnsembleError> {
        let value = value.trim();
        let format = || EnsembleError::Format {
            sid,
            value: value.to_string(),
        };
        let parts = java_split(value, ';');
        // Java's split leaves nothing of ";" or "|" (ZooKeeper then fails
        // on an index; here it is a format error).
        if parts.is_empty() || parts.len() > 3 {
            return Err(format());
        }
        let addresses = java_split(parts[0], '|');
        if addresses.len() > 1 {
            return Err(EnsembleError::MultipleAddresses { sid });
        }
        let address = addresses.first().ok_or_else(format)?;
        let fields = split_host_and_ports(address).ok_or_else(format)?;
        if !(3..=4).contains(&fields.len()) {
            return Err(format());
        }
        let host = fields[0];
        let quorum = HostPort::new(host, parse_port(sid, fields[1])?);
        let election = HostPort::new(host, parse_port(sid, fields[2])?);
        if quorum.port == election.port {
            return Err(EnsembleError::SamePorts {
                sid,
                port: quorum.port,
            });
        }
        let learner_type = match fields.get(3).map(|t| t.trim().to_ascii_lowercase()) {
            None => LearnerType::Participant,
            Some(t) if t == "participant" => LearnerType::Participant,
            Some(t) if t == "observer" => LearnerType::Observer,
            Some(t) => return Err(EnsembleError::UnknownPeerType { sid, text: t }),
        };
        let client_part = |index: usize| -> Result<Option<HostPort>, EnsembleError> {
            match parts.get(index) {
                None => Ok(None),
                Some(&"") => Ok(None),
                Some(text) => {
                    let fields = split_host_and_ports(text).ok_or_else(format)?;
                    match fields.as_slice() {
                        [port] => Ok(Some(HostPort::new("0.0.0.0", parse_port(sid, port)?))),
                        [host, port] => Ok(Some(HostPort::new(*host, parse_port(sid, port)?))),
                        _ => Err(format()),
                    }
                }
            }
        };
        Ok(Self {
            sid,
            quorum,
            election,
            learner_type,
            client: client_part(1)?,
            secure_client: client_part(2)?,
        })
    }

    /// The line's value as ZooKeeper prints it in a configuration
    /// (`QuorumServer.toString`): the type always, client parts when given.
    pub fn to_config_value(&self) -> String {
        let mut out = format!("{}:{}", self.quorum, self.election.port);
        out.push_str(match self.learner_type {
            LearnerType::Participant => ":participant",
            LearnerType::Observer => ":observer",
        });
        if let Some(client) = &self.client {
            out.push(';');
            out.push_str(&client.to_string());
        }
        if let Some(secure) = &self.secure_client {
            if self.client.is_none() {
                out.push(';');
            }
            out.push(';');
            out.push_str(&secure.to_string());
        }
        out
    }
}

fn parse_port(sid: Sid, text: &str) -> Result<u16, EnsembleError> {
    text.parse().map_err(|_| EnsembleError::BadPort {
        sid,
        text: text.to_string(),
    })
}

/// The members of an ensemble and its majority quorum over participants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensemble {
    servers: BTreeMap<Sid, ServerSpec>,
    voters: BTreeSet<Sid>,
}

impl Ensemble {
    pub fn new(specs: impl IntoIterator<Item = ServerSpec>) -> Result<Self, EnsembleError> {
        let mut servers = BTreeMap::new();
        for spec in specs {
            let sid = spec.sid;
            if servers.insert(sid, spec).is_some() {
                return Err(EnsembleError::DuplicateSid { sid });
            }
        }
        if servers.is_empty() {
            return Err(EnsembleError::Empty);
        }
        let voters: BTreeSet<Sid> = servers
            .values()
            .filter(|s| s.learner_type == LearnerType::Participant)
            .map(|s| s.sid)
            .collect();
        if voters.is_empty() {
            return Err(EnsembleError::NoParticipants);
        }
        Ok(Self { servers, voters })
    }

    /// Builds the ensemble from `(sid, value)` pairs of `server.N` lines, as
    /// a zoo.cfg parser collects them.
    pub fn from_server_values<'a>(
        values: impl IntoIterator<Item = (Sid, &'a str)>,
    ) -> Result<Self, EnsembleError> {
        let specs = values
            .into_iter()
            .map(|(sid, value)| ServerSpec::parse(sid, value))
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(specs)
    }

    pub fn get(&self, sid: Sid) -> Option<&ServerSpec> {
        self.servers.get(&sid)
    }

    pub fn contains(&self, sid: Sid) -> bool {
        self.servers.contains_key(&sid)
    }

    /// Every member, in sid order.
    pub fn members(&self) -> impl Iterator<Item = &ServerSpec> {
        self.servers.values()
    }

    /// True for a participant: its vote and its acks count.
    pub fn is_voter(&self, sid: Sid) -> bool {
        self.voters.contains(&sid)
    }

    pub fn is_observer(&self, sid: Sid) -> bool {
        self.get(sid)
            .is_some_and(|s| s.learner_type == LearnerType::Observer)
    }

    /// The participants, in sid order.
    pub fn voters(&self) -> &BTreeSet<Sid> {
        &self.voters
    }

    pub fn observers(&self) -> impl Iterator<Item = Sid> + '_ {
        self.servers
            .values()
            .filter(|s| s.learner_type == LearnerType::Observer)
            .map(|s| s.sid)
    }

    /// How many participants make a quorum.
    pub fn quorum_size(&self) -> usize {
        self.voters.len() / 2 + 1
    }

    /// True when `sids` holds a majority of the participants. Observers and
    /// unknown sids in the set are ignored (ZooKeeper's SyncedLearnerTracker
    /// only records acks from voting members).
    pub fn is_quorum<'a>(&self, sids: impl IntoIterator<Item = &'a Sid>) -> bool {
        let mut counted = 0;
        let mut seen = BTreeSet::new();
        for sid in sids {
            if self.is_voter(*sid) && seen.insert(*sid) {
                counted += 1;
            }
        }
        counted >= self.quorum_size()
    }

    /// The configuration text ZooKeeper sends in notifications and NEWLEADER
    /// (`QuorumMaj.toString`): one `server.N=...` line per member, then
    /// `version=<hex>`.
    pub fn config_text(&self, version: i64) -> String {
        let mut out = String::new();
        for spec in self.servers.values() {
            out.push_str(&format!("server.{}={}\n", spec.sid, spec.to_config_value()));
        }
        out.push_str(&format!("version={version:x}"));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(value: &str) -> Result<ServerSpec, EnsembleError> {
        ServerSpec::parse(1, value)
    }

    #[test]
    fn every_documented_form_parses() {
        // The forms zoo.cfg allows, each field where ZooKeeper puts it.
        let plain = spec("zk1:2888:3888").unwrap();
        assert_eq!(plain.quorum, HostPort::new("zk1", 2888));
        assert_eq!(plain.election, HostPort::new("zk1", 3888));
        assert_eq!(plain.learner_type, LearnerType::Participant);
        assert_eq!(plain.client, None);
        let observer = spec("zk1:2888:3888:Observer;2181").unwrap();
        assert_eq!(observer.learner_type, LearnerType::Observer);
        assert_eq!(observer.client, Some(HostPort::new("0.0.0.0", 2181)));
        let full = spec(" 127.0.0.1:2888:3888:participant;127.0.0.1:2181 ").unwrap();
        assert_eq!(full.client, Some(HostPort::new("127.0.0.1", 2181)));
        let v6 = spec("[::1]:2888:3888;[::1]:2181;2281").unwrap();
        assert_eq!(v6.quorum, HostPort::new("::1", 2888));
        assert_eq!(v6.client, Some(HostPort::new("::1", 2181)));
        assert_eq!(v6.secure_client, Some(HostPort::new("0.0.0.0", 2281)));
        let line = ServerSpec::parse_line("server.12=h:1:2").unwrap();
        assert_eq!(line.sid, 12);
    }

    #[test]
    fn malformed_lines_are_structured_errors() {
        // Each mistake names the server and what is wrong.
        let format = |v: &str| EnsembleError::Format {
            sid: 1,
            value: v.to_string(),
        };
        assert_eq!(spec("zk1:2888"), Err(format("zk1:2888")));
        assert_eq!(
            spec("zk1:2888:3888:participant:x"),
            Err(format("zk1:2888:3888:participant:x"))
        );
        assert_eq!(
            spec("zk1:2888:38a8"),
            Err(EnsembleError::BadPort {
                sid: 1,
                text: "38a8".into()
            })
        );
        assert_eq!(
            spec("zk1:70000:3888"),
            Err(EnsembleError::BadPort {
                sid: 1,
                text: "70000".into()
            })
        );
        assert_eq!(
            spec("zk1:2888:2888"),
            Err(EnsembleError::SamePorts { sid: 1, port: 2888 })
        );
        assert_eq!(
            spec("zk1:2888:3888:voter"),
            Err(EnsembleError::UnknownPeerType {
                sid: 1,
                text: "voter".into()
            })
        );
        assert_eq!(
            spec("a:1:2|b:1:2"),
            Err(EnsembleError::MultipleAddresses { sid: 1 })
        );
        assert_eq!(spec("[::1:2888:3888"), Err(format("[::1:2888:3888")));
        assert_eq!(spec("h:1:2;a:b:3"), Err(format("h:1:2;a:b:3")));
        for nothing in [";", "|", ":", ";;", ""] {
            assert_eq!(spec(nothing), Err(format(nothing)), "{nothing:?}");
        }
        assert!(matches!(
            ServerSpec::parse_line("server.x=h:1:2"),
            Err(EnsembleError::BadKey { .. })
        ));
    }

    #[test]
    fn majority_counts_participants_only() {
        // 3 participants + 2 observers: 2 participants are a quorum, observers never count.
        let ensemble = Ensemble::from_server_values([
            (1, "a:1:2"),
            (2, "b:1:2"),
            (3, "c:1:2"),
            (4, "d:1:2:observer"),
            (5, "e:1:2:observer"),
        ])
        .unwrap();
        assert_eq!(ensemble.quorum_size(), 2);
        assert!(ensemble.is_quorum(&[1, 3]));
        assert!(!ensemble.is_quorum(&[1, 4, 5]));
        assert!(
            !ensemble.is_quorum(&[1, 1, 9]),
            "duplicates and strangers do not count"
        );
        assert!(ensemble.is_quorum(&BTreeSet::from([1, 2, 3, 4, 5])));
        assert_eq!(ensemble.observers().collect::<Vec<_>>(), vec![4, 5]);
        let four =
            Ensemble::from_server_values([(1, "a:1:2"), (2, "b:1:2"), (3, "c:1:2"), (4, "d:1:2")])
                .unwrap();
        assert_eq!(four.quorum_size(), 3);
        assert!(!four.is_quorum(&[1, 2]));
    }

    #[test]
    fn ensemble_level_errors() {
        // Duplicates, nothing at all, or observers alone are refused.
        assert_eq!(
            Ensemble::from_server_values([(1, "a:1:2"), (1, "b:1:2")]),
            Err(EnsembleError::DuplicateSid { sid: 1 })
        );
        assert_eq!(Ensemble::new([]), Err(EnsembleError::Empty));
        assert_eq!(
            Ensemble::from_server_values([(1, "a:1:2:observer")]),
            Err(EnsembleError::NoParticipants)
        );
    }

    #[test]
    fn config_text_is_quorum_maj_to_string() {
        // What ZooKeeper puts in the config field of a notification.
        let ensemble = Ensemble::from_server_values([
            (1, "127.0.0.1:2888:3888"),
            (2, "[::1]:2889:3889:observer;2181"),
        ])
        .unwrap();
        assert_eq!(
            ensemble.config_text(0x1_0000_0000),
            "server.1=127.0.0.1:2888:3888:participant\n\
             server.2=[::1]:2889:3889:observer;0.0.0.0:2181\n\
             version=100000000"
        );
    }
}
