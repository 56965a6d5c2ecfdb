//! What ZooKeeper puts in a [`QuorumPacket`]'s zxid and data, per type and
//! direction (`Learner`, `LearnerHandler`, `Leader`). PING and REVALIDATE go
//! both ways with different data, so the two directions are two enums.
//!
//! ```text
//! learner → leader
//!   FOLLOWERINFO / OBSERVERINFO  zxid = acceptedEpoch << 32
//!                                data = LearnerInfo{long sid, int protocolVersion
//!                                       (0x10000), long configVersion}; the leader
//!                                       also reads the 8- and 12-byte prefixes;
//!                                       ferrokeeper may append "FKRC" + long
//!                                       zxid: the learner is recovering lost
//!                                       records (ZooKeeper ignores the extra bytes)
//!   ACKEPOCH    zxid = lastLoggedZxid   data = int currentEpoch (-1: this epoch
//!                                       was already accepted, not an ack)
//!   ACK         zxid = durable up to    data = null
//!   PING        zxid = echoed           data = touch table: (long sessionId,
//!                                       int timeoutMs)* , empty but not null
//!   REVALIDATE  zxid = -1               data = long sessionId, int timeoutMs
//!   REQUEST     zxid = -1               data = long sessionId, int cxid, int type,
//!                                       request body; authinfo = the session's ids
//! leader → learner
//!   LEADERINFO  zxid = newEpoch << 32   data = int protocolVersion (0x10000)
//!   DIFF / TRUNC / SNAP   zxid          data = null (SNAP: snapshot follows raw)
//!   NEWLEADER   zxid = newEpoch << 32   data = config text (null for old learners)
//!   UPTODATE    zxid = -1               data = null
//!   PROPOSAL / INFORM     zxid          data = txn (header, record, digest)
//!   COMMIT      zxid                    data = null
//!   COMMITANDACTIVATE     zxid          data = long designated leader
//!   INFORMANDACTIVATE     zxid          data = long designated leader, txn
//!   PING        zxid = last proposed    data = null
//!   REVALIDATE  zxid = echoed (-1)      data = long sessionId, bool valid
//!   SYNC        zxid = 0                data = null
//! ```
//!
//! Where ZooKeeper reads a fixed prefix of the data and ignores the rest, so
//! do these decoders; where it would fail (data missing, a touch table cut
//! mid-entry), they return a [`MessageError`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use proto::{DecodeError, Id, Zxid};
use thiserror::Error;

use crate::packet::{PacketType, QuorumPacket};

/// The learner protocol version ZooKeeper speaks since 3.4
/// (`LearnerHandler`: below it, no LEADERINFO/ACKEPOCH exchange).
pub const LEARNER_PROTOCOL_VERSION: i32 = 0x10000;

/// Why a packet is not a valid message for its direction.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    #[error("unknown quorum packet type {0}")]
    UnknownType(i32),
    #[error("{packet_type:?} is not sent in this direction")]
    WrongDirection { packet_type: PacketType },
    #[error("{packet_type:?} needs {needed} data bytes, has {length}")]
    DataTooShort {
        packet_type: PacketType,
        needed: usize,
        length: usize,
    },
    #[error("touch table of {length} bytes is not a whole number of 12-byte entries")]
    TouchTableLength { length: usize },
}

/// The learner's identity in FOLLOWERINFO / OBSERVERINFO (jute `LearnerInfo`).
/// Older learners send shorter prefixes, which the leader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LearnerInfo {
    pub sid: i64,
    pub protocol_version: Option<i32>,
    /// The version of the learner's activated configuration; a leader refuses
    /// a learner whose is newer than its own.
    pub config_version: Option<i64>,
    /// ferrokeeper's extension: the learner's log lost every record after
    /// this zxid to damage and it is recovering them (protocol-aware
    /// recovery): it must count in no quorum of this leader until it is
    /// synchronised. Encoded after the 20 bytes ZooKeeper reads (which it
    /// ignores) as [`RECOVERING_TAG`] and the zxid; needs `config_version`.
    pub recovering: Option<Zxid>,
}

/// Marks the recovering extension of [`LearnerInfo`].
pub const RECOVERING_TAG: [u8; 4] = *b"FKRC";

impl LearnerInfo {
    /// What a current learner sends.
    pub fn current(sid: i64, config_version: i64) -> Self {
        Self {
            sid,
            protocol_version: Some(LEARNER_PROTOCOL_VERSION),
            config_version: Some(config_version),
            recovering: None,
        }
    }

    pub fn encode(&self) -> Bytes {
        assert!(
            self.config_version.is_none() || self.protocol_version.is_some(),
            "LearnerInfo fields are a prefix: configVersion needs protocolVersion"
        );
        let mut out = BytesMut::with_capacity(20);
        out.put_i64(self.sid);
        if let Some(version) = self.protocol_version {
            out.put_i32(version);
        }
        if let Some(config_version) = self.config_version {
            out.put_i64(config_version);
        }
        if let Some(zxid) = self.recovering {
            assert!(
                self.config_version.is_some(),
                "the recovering extension follows configVersion"
            );
            out.put_slice(&RECOVERING_TAG);
            out.put_i64(zxid);
        }
        out.freeze()
    }

    /// As `LearnerHandler.run` reads it: 8, 12 or 20 bytes are used; then
    /// ferrokeeper's recovering extension if its tag is there; anything
    /// else is ignored.
    pub fn decode(packet_type: PacketType, mut data: &[u8]) -> Result<Self, MessageError> {
        let length = data.len();
        if length < 8 {
            return Err(MessageError::DataTooShort {
                packet_type,
                needed: 8,
                length,
            });
        }
        let sid = data.get_i64();
        let protocol_version = (length >= 12).then(|| data.get_i32());
        let config_version = (length >= 20).then(|| data.get_i64());
        let recovering = (length >= 32 && data[..4] == RECOVERING_TAG).then(|| {
            data.advance(4);
            data.get_i64()
        });
        Ok(Self {
            sid,
            protocol_version,
            config_version,
            recovering,
        })
    }

    /// True when the learner speaks the LEADERINFO/ACKEPOCH exchange.
    pub fn speaks_epoch_exchange(&self) -> bool {
        self.protocol_version
            .is_some_and(|v| v >= LEARNER_PROTOCOL_VERSION)
    }
}

/// One entry of a follower's PING reply: this session saw client activity
/// (`Learner.ping`, `LearnerSessionTracker.snapshot`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionTouch {
    pub session_id: i64,
    pub timeout_ms: i32,
}

const TOUCH_BYTES: usize = 12;

/// A client request a learner forwards to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: i64,
    pub cxid: i32,
    /// The request's opcode (`proto::OpCode` value, sync 9 included).
    pub op_type: i32,
    /// The request body as the client sent it, after the RequestHeader.
    pub body: Bytes,
    /// The session's authenticated ids; the leader checks ACLs against them.
    pub authinfo: Vec<Id>,
}

/// Packets a learner (follower or observer) sends to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnerMessage {
    /// `zxid` is `acceptedEpoch << 32` from current learners (older ones sent
    /// their last zxid); `None` info is a null buffer.
    FollowerInfo {
        zxid: Zxid,
        info: Option<LearnerInfo>,
    },
    ObserverInfo {
        zxid: Zxid,
        info: Option<LearnerInfo>,
    },
    /// `current_epoch` -1 means the learner had already accepted this epoch:
    /// the leader learns its last zxid but does not count it as an ack.
    AckEpoch {
        last_logged_zxid: Zxid,
        current_epoch: i32,
    },
    Ack {
        zxid: Zxid,
    },
    Ping {
        zxid: Zxid,
        touches: Vec<SessionTouch>,
    },
    Revalidate {
        session_id: i64,
        timeout_ms: i32,
    },
    Request(ForwardedRequest),
}

/// Packets the leader sends to a learner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaderMessage {
    LeaderInfo {
        zxid: Zxid,
        protocol_version: i32,
    },
    Diff {
        zxid: Zxid,
    },
    Trunc {
        zxid: Zxid,
    },
    /// A snapshot of the leader's tree at `zxid` follows. ZooKeeper writes
    /// it raw into the stream; ferrokeeper sends it in its own snapshot
    /// format as SNAP packets with data (`SnapChunk`), ended by a SNAP packet
    /// with empty data (`SnapEnd`). This SNAP has null data.
    Snap {
        zxid: Zxid,
    },
    /// The next bytes of the snapshot (a SNAP packet with non-empty data).
    SnapChunk {
        zxid: Zxid,
        chunk: Bytes,
    },
    /// The snapshot is complete (a SNAP packet with empty, non-null data).
    SnapEnd {
        zxid: Zxid,
    },
    NewLeader {
        zxid: Zxid,
        config: Option<Bytes>,
    },
    UpToDate,
    Proposal {
        zxid: Zxid,
        txn: Bytes,
    },
    Commit {
        zxid: Zxid,
    },
    CommitAndActivate {
        zxid: Zxid,
        designated_leader: i64,
    },
    Inform {
        zxid: Zxid,
        txn: Bytes,
    },
    InformAndActivate {
        zxid: Zxid,
        designated_leader: i64,
        txn: Bytes,
    },
    Ping {
        zxid: Zxid,
    },
    Revalidate {
        session_id: i64,
        valid: bool,
    },
    Sync,
}

fn need(packet: &QuorumPacket, packet_type: PacketType, n: usize) -> Result<&[u8], MessageError> {
    let data = packet.data_or_empty();
    if data.len() < n {
        return Err(MessageError::DataTooShort {
            packet_type,
            needed: n,
            length: data.len(),
        });
    }
    Ok(data)
}

fn known_type(packet: &QuorumPacket) -> Result<PacketType, MessageError> {
    packet
        .packet_type()
        .ok_or(MessageError::UnknownType(packet.packet_type))
}

impl LearnerMessage {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::FollowerInfo { .. } => PacketType::FollowerInfo,
            Self::ObserverInfo { .. } => PacketType::ObserverInfo,
            Self::AckEpoch { .. } => PacketType::AckEpoch,
            Self::Ack { .. } => PacketType::Ack,
            Self::Ping { .. } => PacketType::Ping,
            Self::Revalidate { .. } => PacketType::Revalidate,
            Self::Request(_) => PacketType::Request,
        }
    }

    /// The packet ZooKeeper's learner would send.
    pub fn to_packet(&self) -> QuorumPacket {
        let packet_type = self.packet_type();
        match self {
            Self::FollowerInfo { zxid, info } | Self::ObserverInfo { zxid, info } => QuorumPacket {
                data: info.map(|i| i.encode()),
                ..QuorumPacket::new(packet_type, *zxid)
            },
            Self::AckEpoch {
                last_logged_zxid,
                current_epoch,
            } => QuorumPacket::with_data(
                packet_type,
                *last_logged_zxid,
                Bytes::copy_from_slice(&current_epoch.to_be_bytes()),
            ),
            Self::Ack { zxid } => QuorumPacket::new(packet_type, *zxid),
            Self::Ping { zxid, touches } => {
                let mut data = BytesMut::with_capacity(touches.len() * TOUCH_BYTES);
                for touch in touches {
                    data.put_i64(touch.session_id);
                    data.put_i32(touch.timeout_ms);
                }
                QuorumPacket::with_data(packet_type, *zxid, data.freeze())
            }
            Self::Revalidate {
                session_id,
                timeout_ms,
            } => {
                let mut data = BytesMut::with_capacity(12);
                data.put_i64(*session_id);
                data.put_i32(*timeout_ms);
                QuorumPacket::with_data(packet_type, -1, data.freeze())
            }
            Self::Request(request) => {
                let mut data = BytesMut::with_capacity(16 + request.body.len());
                data.put_i64(request.session_id);
                data.put_i32(request.cxid);
                data.put_i32(request.op_type);
                data.put_slice(&request.body);
                QuorumPacket {
                    authinfo: Some(request.authinfo.clone()),
                    ..QuorumPacket::with_data(packet_type, -1, data.freeze())
                }
            }
        }
    }

    /// Reads a packet the leader received.
    pub fn from_packet(packet: &QuorumPacket) -> Result<Self, MessageError> {
        let packet_type = known_type(packet)?;
        let zxid = packet.zxid;
        let info = |t| {
            packet
                .data
                .as_deref()
                .map(|d| LearnerInfo::decode(t, d))
                .transpose()
        };
        Ok(match packet_type {
            PacketType::FollowerInfo => Self::FollowerInfo {
                zxid,
                info: info(packet_type)?,
            },
            PacketType::ObserverInfo => Self::ObserverInfo {
                zxid,
                info: info(packet_type)?,
            },
            PacketType::AckEpoch => Self::AckEpoch {
                last_logged_zxid: zxid,
                current_epoch: need(packet, packet_type, 4)?.get_i32(),
            },
            PacketType::Ack => Self::Ack { zxid },
            PacketType::Ping => {
                let data = packet.data_or_empty();
                if !data.len().is_multiple_of(TOUCH_BYTES) {
                    return Err(MessageError::TouchTableLength { length: data.len() });
                }
                let touches = data
                    .chunks_exact(TOUCH_BYTES)
                    .map(|mut entry| SessionTouch {
                        session_id: entry.get_i64(),
                        timeout_ms: entry.get_i32(),
                    })
                    .collect();
                Self::Ping { zxid, touches }
            }
            PacketType::Revalidate => {
                let mut data = need(packet, packet_type, 12)?;
                Self::Revalidate {
                    session_id: data.get_i64(),
                    timeout_ms: data.get_i32(),
                }
            }
            PacketType::Request => {
                let mut data = need(packet, packet_type, 16)?;
                let session_id = data.get_i64();
                let cxid = data.get_i32();
                let op_type = data.get_i32();
                let body = packet.data.as_ref().expect("checked above").slice(16..);
                Self::Request(ForwardedRequest {
                    session_id,
                    cxid,
                    op_type,
                    body,
                    authinfo: packet.authinfo.clone().unwrap_or_default(),
                })
            }
            other => return Err(MessageError::WrongDirection { packet_type: other }),
        })
    }
}

impl LeaderMessage {
    pub fn packet_type(&self) -> PacketType {
        match self {
            Self::LeaderInfo { .. } => PacketType::LeaderInfo,
            Self::Diff { .. } => PacketType::Diff,
            Self::Trunc { .. } => PacketType::Trunc,
            Self::Snap { .. } | Self::SnapChunk { .. } | Self::SnapEnd { .. } => PacketType::Snap,
            Self::NewLeader { .. } => PacketType::NewLeader,
            Self::UpToDate => PacketType::UpToDate,
            Self::Proposal { .. } => PacketType::Proposal,
            Self::Commit { .. } => PacketType::Commit,
            Self::CommitAndActivate { .. } => PacketType::CommitAndActivate,
            Self::Inform { .. } => PacketType::Inform,
            Self::InformAndActivate { .. } => PacketType::InformAndActivate,
            Self::Ping { .. } => PacketType::Ping,
            Self::Revalidate { .. } => PacketType::Revalidate,
            Self::Sync => PacketType::Sync,
        }
    }

    /// The packet ZooKeeper's leader would send. A proposal's txn bytes are
    /// shared, not copied; encode the packet once with
    /// [`QuorumPacket::to_bytes`] and share that between follower queues.
    pub fn to_packet(&self) -> QuorumPacket {
        let packet_type = self.packet_type();
        let with_leader = |leader: i64, txn: &[u8]| {
            let mut data = BytesMut::with_capacity(8 + txn.len());
            data.put_i64(leader);
            data.put_slice(txn);
            data.freeze()
        };
        match self {
            Self::LeaderInfo {
                zxid,
                protocol_version,
            } => QuorumPacket::with_data(
                packet_type,
                *zxid,
                Bytes::copy_from_slice(&protocol_version.to_be_bytes()),
            ),
            Self::Diff { zxid }
            | Self::Trunc { zxid }
            | Self::Snap { zxid }
            | Self::Commit { zxid }
            | Self::Ping { zxid } => QuorumPacket::new(packet_type, *zxid),
            Self::SnapChunk { zxid, chunk } => {
                QuorumPacket::with_data(packet_type, *zxid, chunk.clone())
            }
            Self::SnapEnd { zxid } => QuorumPacket::with_data(packet_type, *zxid, Bytes::new()),
            Self::NewLeader { zxid, config } => QuorumPacket {
                data: config.clone(),
                ..QuorumPacket::new(packet_type, *zxid)
            },
            Self::UpToDate => QuorumPacket::new(packet_type, -1),
            Self::Proposal { zxid, txn } | Self::Inform { zxid, txn } => {
                QuorumPacket::with_data(packet_type, *zxid, txn.clone())
            }
            Self::CommitAndActivate {
                zxid,
                designated_leader,
            } => QuorumPacket::with_data(packet_type, *zxid, with_leader(*designated_leader, &[])),
            Self::InformAndActivate {
                zxid,
                designated_leader,
                txn,
            } => QuorumPacket::with_data(packet_type, *zxid, with_leader(*designated_leader, txn)),
            Self::Revalidate { session_id, valid } => {
                let mut data = BytesMut::with_capacity(9);
                data.put_i64(*session_id);
                data.put_u8(u8::from(*valid));
                QuorumPacket::with_data(packet_type, -1, data.freeze())
            }
            Self::Sync => QuorumPacket::new(packet_type, 0),
        }
    }

    /// Reads a packet a learner received.
    pub fn from_packet(packet: &QuorumPacket) -> Result<Self, MessageError> {
        let packet_type = known_type(packet)?;
        let zxid = packet.zxid;
        let data = || packet.data.clone().unwrap_or_default();
        Ok(match packet_type {
            PacketType::LeaderInfo => Self::LeaderInfo {
                zxid,
                protocol_version: need(packet, packet_type, 4)?.get_i32(),
            },
            PacketType::Diff => Self::Diff { zxid },
            PacketType::Trunc => Self::Trunc { zxid },
            PacketType::Snap => match &packet.data {
                None => Self::Snap { zxid },
                Some(data) if data.is_empty() => Self::SnapEnd { zxid },
                Some(data) => Self::SnapChunk {
                    zxid,
                    chunk: data.clone(),
                },
            },
            PacketType::NewLeader => Self::NewLeader {
                zxid,
                config: packet.data.clone(),
            },
            PacketType::UpToDate => Self::UpToDate,
            PacketType::Proposal => Self::Proposal { zxid, txn: data() },
            PacketType::Commit => Self::Commit { zxid },
            PacketType::CommitAndActivate => Self::CommitAndActivate {
                zxid,
                designated_leader: need(packet, packet_type, 8)?.get_i64(),
            },
            PacketType::Inform => Self::Inform { zxid, txn: data() },
            PacketType::InformAndActivate => Self::InformAndActivate {
                zxid,
                designated_leader: need(packet, packet_type, 8)?.get_i64(),
                txn: data().slice(8..),
            },
            PacketType::Ping => Self::Ping { zxid },
            PacketType::Revalidate => {
                let mut data = need(packet, packet_type, 9)?;
                Self::Revalidate {
                    session_id: data.get_i64(),
                    valid: data.get_u8() != 0,
                }
            }
            PacketType::Sync => Self::Sync,
            other => return Err(MessageError::WrongDirection { packet_type: other }),
        })
    }
}

/// Decodes a packet the leader received, from bytes.
pub fn decode_learner_message(bytes: &Bytes) -> Result<LearnerMessage, LearnerWireError> {
    let packet = QuorumPacket::decode(bytes)?;
    Ok(LearnerMessage::from_packet(&packet)?)
}

/// Decodes a packet a learner received, from bytes.
pub fn decode_leader_message(bytes: &Bytes) -> Result<LeaderMessage, LearnerWireError> {
    let packet = QuorumPacket::decode(bytes)?;
    Ok(LeaderMessage::from_packet(&packet)?)
}

/// Either layer's failure, for the two helpers above.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LearnerWireError {
    #[error(transparent)]
    Packet(#[from] DecodeError),
    #[error(transparent)]
    Message(#[from] MessageError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn follower_info_is_jute_learner_info() {
        // 20 bytes: long sid, int 0x10000, long configVersion; zxid acceptedEpoch << 32.
        let message = LearnerMessage::FollowerInfo {
            zxid: 3 << 32,
            info: Some(LearnerInfo::current(2, 0x1_0000_0000)),
        };
        let packet = message.to_packet();
        assert_eq!(packet.packet_type, 11);
        assert_eq!(packet.zxid, 3 << 32);
        let data = packet.data.clone().unwrap();
        assert_eq!(
            data.as_ref(),
            [
                &2i64.to_be_bytes()[..],
                &0x10000i32.to_be_bytes(),
                &0x1_0000_0000i64.to_be_bytes()
            ]
            .concat()
        );
        assert_eq!(LearnerMessage::from_packet(&packet), Ok(message));
    }

    #[test]
    fn shorter_learner_infos_are_read_as_the_leader_reads_them() {
        // 8 bytes: sid only; 12: sid and version; trailing bytes ignored; < 8 refused.
        let t = PacketType::FollowerInfo;
        let sid_only = LearnerInfo::decode(t, &9i64.to_be_bytes()).unwrap();
        assert_eq!((sid_only.sid, sid_only.protocol_version), (9, None));
        assert!(!sid_only.speaks_epoch_exchange());
        let twelve = [
            &9i64.to_be_bytes()[..],
            &0x10000i32.to_be_bytes(),
            &[1, 2, 3],
        ]
        .concat();
        let info = LearnerInfo::decode(t, &twelve).unwrap();
        assert_eq!(info.protocol_version, Some(0x10000));
        assert_eq!(info.config_version, None);
        assert!(info.speaks_epoch_exchange());
        assert_eq!(
            LearnerInfo::decode(t, &[0; 7]),
            Err(MessageError::DataTooShort {
                packet_type: t,
                needed: 8,
                length: 7
            })
        );
    }

    #[test]
    fn the_recovering_extension_follows_the_twenty_bytes_zookeeper_reads() {
        // A recovering learner's LearnerInfo: ZooKeeper's 20 bytes, then
        // "FKRC" + the last good zxid; 32 bytes without the tag are not it.
        let info = LearnerInfo {
            recovering: Some(0x5_0000_0007),
            ..LearnerInfo::current(3, 0)
        };
        let bytes = info.encode();
        assert_eq!(bytes.len(), 32);
        assert_eq!(&bytes[20..24], b"FKRC");
        let t = PacketType::FollowerInfo;
        assert_eq!(LearnerInfo::decode(t, &bytes), Ok(info));
        let mut other = bytes.to_vec();
        other[20] = b'X';
        assert_eq!(LearnerInfo::decode(t, &other).unwrap().recovering, None);
    }

    #[test]
    fn request_carries_session_cxid_type_body_and_ids() {
        // As Learner.request writes it; authinfo is a real (possibly empty) vector.
        let request = ForwardedRequest {
            session_id: 0x0100_0000_0000_0001,
            cxid: 7,
            op_type: 1,
            body: Bytes::from_static(b"create body"),
            authinfo: vec![],
        };
        let packet = LearnerMessage::Request(request.clone()).to_packet();
        assert_eq!(packet.zxid, -1);
        assert_eq!(packet.authinfo, Some(vec![]));
        let data = packet.data.clone().unwrap();
        assert_eq!(&data[0..8], &0x0100_0000_0000_0001i64.to_be_bytes());
        assert_eq!(&data[8..12], &7i32.to_be_bytes());
        assert_eq!(&data[12..16], &1i32.to_be_bytes());
        assert_eq!(&data[16..], b"create body");
        let bytes = packet.to_bytes();
        assert_eq!(
            decode_learner_message(&bytes),
            Ok(LearnerMessage::Request(request))
        );
    }

    #[test]
    fn pings_differ_by_direction() {
        // The leader's PING has null data; the reply carries the touch table.
        let leader_ping = LeaderMessage::Ping { zxid: 5 }.to_packet();
        assert_eq!(leader_ping.data, None);
        let reply = LearnerMessage::Ping {
            zxid: 5,
            touches: vec![],
        }
        .to_packet();
        assert_eq!(reply.data, Some(Bytes::new()));
        let mut cut = LearnerMessage::Ping {
            zxid: 5,
            touches: vec![SessionTouch {
                session_id: 1,
                timeout_ms: 30_000,
            }],
        }
        .to_packet();
        cut.data = Some(cut.data.unwrap().slice(..11));
        assert_eq!(
            LearnerMessage::from_packet(&cut),
            Err(MessageError::TouchTableLength { length: 11 })
        );
    }

    #[test]
    fn epoch_exchange_payloads() {
        // LEADERINFO data = int 0x10000; ACKEPOCH data = int currentEpoch, zxid = last logged.
        let info = LeaderMessage::LeaderInfo {
            zxid: 4 << 32,
            protocol_version: LEARNER_PROTOCOL_VERSION,
        };
        let packet = info.to_packet();
        assert_eq!(packet.data.as_deref(), Some(&0x10000i32.to_be_bytes()[..]));
        assert_eq!(LeaderMessage::from_packet(&packet), Ok(info));
        let ack = LearnerMessage::AckEpoch {
            last_logged_zxid: 0x3_0000_0009,
            current_epoch: -1,
        };
        let packet = ack.to_packet();
        assert_eq!(packet.zxid, 0x3_0000_0009);
        assert_eq!(packet.data.as_deref(), Some(&(-1i32).to_be_bytes()[..]));
        assert_eq!(LearnerMessage::from_packet(&packet), Ok(ack));
        let mut null = packet;
        null.data = None;
        assert!(matches!(
            LearnerMessage::from_packet(&null),
            Err(MessageError::DataTooShort { .. })
        ));
    }

    #[test]
    fn revalidate_both_ways() {
        // Learner asks (long session, int timeout); the leader answers (long session, bool).
        let ask = LearnerMessage::Revalidate {
            session_id: 42,
            timeout_ms: 4000,
        };
        assert_eq!(ask.to_packet().data_or_empty().len(), 12);
        assert_eq!(LearnerMessage::from_packet(&ask.to_packet()), Ok(ask));
        let answer = LeaderMessage::Revalidate {
            session_id: 42,
            valid: true,
        };
        let packet = answer.to_packet();
        assert_eq!(
            packet.data_or_empty(),
            [&42i64.to_be_bytes()[..], &[1]].concat()
        );
        assert_eq!(LeaderMessage::from_packet(&packet), Ok(answer));
    }

    #[test]
    fn direction_is_enforced() {
        // A follower never sends a PROPOSAL; a leader never sends an ACKEPOCH.
        let proposal = LeaderMessage::Proposal {
            zxid: 1,
            txn: Bytes::from_static(b"t"),
        }
        .to_packet();
        assert_eq!(
            LearnerMessage::from_packet(&proposal),
            Err(MessageError::WrongDirection {
                packet_type: PacketType::Proposal
            })
        );
        let unknown = QuorumPacket {
            packet_type: 99,
            ..QuorumPacket::new(PacketType::Ack, 0)
        };
        assert_eq!(
            LeaderMessage::from_packet(&unknown),
            Err(MessageError::UnknownType(99))
        );
    }

    #[test]
    fn proposal_bytes_are_shared_not_copied() {
        // The txn in a decoded proposal points into the received packet's bytes.
        let txn = Bytes::from(vec![9u8; 1000]);
        let packet = LeaderMessage::Proposal {
            zxid: 7,
            txn: txn.clone(),
        }
        .to_packet();
        assert_eq!(packet.data.as_ref().unwrap().as_ptr(), txn.as_ptr());
        let bytes = packet.to_bytes();
        let decoded = QuorumPacket::decode(&bytes).unwrap();
        let LeaderMessage::Proposal { txn: received, .. } =
            LeaderMessage::from_packet(&decoded).unwrap()
        else {
            panic!("not a proposal");
        };
        assert_eq!(received.as_ptr(), bytes[PACKET_DATA_OFFSET..].as_ptr());
    }

    const PACKET_DATA_OFFSET: usize = 16;
}
