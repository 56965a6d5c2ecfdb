//! The quorum port (ZooKeeper's 2888): a stream of jute `QuorumPacket`s with
//! no length prefix (`zookeeper.jute`, module `org.apache.zookeeper.server.quorum`):
//!
//! ```text
//! QuorumPacket  int    type        PacketType below
//!               long   zxid
//!               buffer data        int length (-1 = null) + bytes
//!               vector authinfo    int count (-1 = null) + count × Id
//! Id            ustring scheme, ustring id   (int length + UTF-8 each)
//! ```
//!
//! Null and empty are different bytes on the wire and ZooKeeper writes each
//! in its place (a leader's PING has null data, a follower's PING reply an
//! empty touch table), so [`QuorumPacket`] keeps the difference.
//!
//! After a SNAP packet the leader writes the serialized snapshot straight
//! into the stream, outside any packet; [`QuorumStreamDecoder::take_buffered`]
//! hands the bytes already received to whatever reads that snapshot.

use bytes::{BufMut, Bytes, BytesMut};
use proto::{DecodeError, Id, Reader, Record};
use thiserror::Error;

/// ZooKeeper's quorum packet type numbers (`Leader.java`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PacketType {
    /// Learner → leader: a client write (or sync) to run.
    Request = 1,
    /// Leader → follower: a txn to log and ACK.
    Proposal = 2,
    /// Follower → leader: txns durable up to zxid (also the NEWLEADER ack).
    Ack = 3,
    /// Leader → follower: apply txns up to zxid.
    Commit = 4,
    /// Both ways: liveness; the learner's reply carries the touch table.
    Ping = 5,
    /// Both ways: move a session to this learner / whether it is valid.
    Revalidate = 6,
    /// Leader → learner: a forwarded sync is answered.
    Sync = 7,
    /// Leader → observer: a committed txn.
    Inform = 8,
    /// Leader → follower: commit a reconfig and activate it.
    CommitAndActivate = 9,
    /// Leader → learner: the sync phase is complete; ACK it.
    NewLeader = 10,
    /// Follower → leader: first packet, with LearnerInfo.
    FollowerInfo = 11,
    /// Leader → learner: start serving.
    UpToDate = 12,
    /// Leader → learner: proposals follow up to zxid.
    Diff = 13,
    /// Leader → learner: truncate the log to zxid.
    Trunc = 14,
    /// Leader → learner: a snapshot follows in the stream.
    Snap = 15,
    /// Observer → leader: first packet, with LearnerInfo.
    ObserverInfo = 16,
    /// Leader → learner: the new epoch.
    LeaderInfo = 17,
    /// Learner → leader: the new epoch accepted, with the learner's state.
    AckEpoch = 18,
    /// Leader → observer: a committed reconfig to activate.
    InformAndActivate = 19,
}

impl PacketType {
    pub const ALL: &'static [PacketType] = &[
        Self::Request,
        Self::Proposal,
        Self::Ack,
        Self::Commit,
        Self::Ping,
        Self::Revalidate,
        Self::Sync,
        Self::Inform,
        Self::CommitAndActivate,
        Self::NewLeader,
        Self::FollowerInfo,
        Self::UpToDate,
        Self::Diff,
        Self::Trunc,
        Self::Snap,
        Self::ObserverInfo,
        Self::LeaderInfo,
        Self::AckEpoch,
        Self::InformAndActivate,
    ];

    pub fn from_wire(value: i32) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| *t as i32 == value)
    }

    pub fn to_wire(self) -> i32 {
        self as i32
    }
}

/// One jute `QuorumPacket`. The type is kept as a raw int so that a packet
/// of a type this version does not know still decodes (ZooKeeper logs such
/// packets and goes on); [`QuorumPacket::packet_type`] names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumPacket {
    pub packet_type: i32,
    pub zxid: i64,
    /// `None` is jute's null buffer.
    pub data: Option<Bytes>,
    /// `None` is jute's null vector (what ZooKeeper sends on every packet but
    /// REQUEST).
    pub authinfo: Option<Vec<Id>>,
}

/// Bytes of the fixed part: type, zxid, data length, authinfo count.
pub const PACKET_HEADER_BYTES: usize = 4 + 8 + 4 + 4;

/// The largest packet the stream decoder accepts by default: jute.maxbuffer
/// plus the 1 KiB slack ZooKeeper's BinaryInputArchive allows
/// (`zookeeper.jute.maxbuffer.extrasize`), plus the fixed fields.
pub const PACKET_BYTES_MAX_DEFAULT: usize =
    proto::JUTE_MAXBUFFER_DEFAULT + 1024 + PACKET_HEADER_BYTES;

impl QuorumPacket {
    /// A packet with null data and null authinfo, as ZooKeeper builds most.
    pub fn new(packet_type: PacketType, zxid: i64) -> Self {
        Self {
            packet_type: packet_type.to_wire(),
            zxid,
            data: None,
            authinfo: None,
        }
    }

    pub fn with_data(packet_type: PacketType, zxid: i64, data: Bytes) -> Self {
        Self {
            data: Some(data),
            ..Self::new(packet_type, zxid)
        }
    }

    pub fn packet_type(&self) -> Option<PacketType> {
        PacketType::from_wire(self.packet_type)
    }

    /// The data, with null read as empty (how the typed decoders see it when
    /// null and empty mean the same).
    pub fn data_or_empty(&self) -> &[u8] {
        self.data.as_deref().unwrap_or_default()
    }

    /// The exact encoded size.
    pub fn encoded_len(&self) -> usize {
        let data = self.data.as_ref().map_or(0, Bytes::len);
        let authinfo = self.authinfo.as_ref().map_or(0, |ids| {
            ids.iter().map(|id| 8 + id.scheme.len() + id.id.len()).sum()
        });
        PACKET_HEADER_BYTES + data + authinfo
    }

    /// Appends the wire form.
    pub fn encode_into(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        out.put_i32(self.packet_type);
        out.put_i64(self.zxid);
        match &self.data {
            None => out.put_i32(-1),
            Some(data) => {
                out.put_i32(i32::try_from(data.len()).expect("packet data over 2 GiB"));
                out.put_slice(data);
            }
        }
        match &self.authinfo {
            None => out.put_i32(-1),
            Some(ids) => {
                out.put_i32(i32::try_from(ids.len()).expect("authinfo count over i32"));
                for id in ids {
                    for text in [&id.scheme, &id.id] {
                        out.put_i32(i32::try_from(text.len()).expect("id over 2 GiB"));
                        out.put_slice(text.as_bytes());
                    }
                }
            }
        }
    }

    /// The wire form, encoded once: clone the `Bytes` into every follower's
    /// queue instead of encoding again.
    pub fn to_bytes(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        debug_assert_eq!(out.len(), self.encoded_len());
        out.freeze()
    }

    /// Decodes one packet from the front of `buf`. Returns the packet and the
    /// bytes it took, sharing `buf`'s memory for the data.
    pub fn decode_prefix(buf: &Bytes) -> Result<(Self, usize), DecodeError> {
        let parsed = ParsedPacket::parse(buf)?;
        let used = parsed.length;
        Ok((parsed.into_packet(buf), used))
    }

    /// Decodes a buffer that holds exactly one packet.
    pub fn decode(buf: &Bytes) -> Result<Self, DecodeError> {
        let (packet, used) = Self::decode_prefix(buf)?;
        match buf.len() - used {
            0 => Ok(packet),
            n => Err(DecodeError::TrailingBytes(n)),
        }
    }
}

/// A packet parsed from a byte slice, its data still a range of that slice.
struct ParsedPacket {
    packet_type: i32,
    zxid: i64,
    data: Option<std::ops::Range<usize>>,
    authinfo: Option<Vec<Id>>,
    /// Bytes the packet takes.
    length: usize,
}

impl ParsedPacket {
    fn parse(buf: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(buf);
        let packet_type = r.read_i32()?;
        let zxid = r.read_i64()?;
        let data_start = r.offset() + 4;
        let data = r
            .read_buffer_opt()?
            .map(|d| data_start..data_start + d.len());
        let authinfo = r.read_vec_opt(Id::decode)?;
        Ok(Self {
            packet_type,
            zxid,
            data,
            authinfo,
            length: r.offset(),
        })
    }

    /// `bytes` must start with the bytes this was parsed from.
    fn into_packet(self, bytes: &Bytes) -> QuorumPacket {
        QuorumPacket {
            packet_type: self.packet_type,
            zxid: self.zxid,
            data: self.data.map(|range| bytes.slice(range)),
            authinfo: self.authinfo,
        }
    }
}

/// Why a quorum connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PacketStreamError {
    #[error("quorum packet of at least {length} bytes exceeds the limit of {max}")]
    TooLarge { length: usize, max: usize },
    #[error("malformed quorum packet: {0}")]
    Malformed(DecodeError),
}

/// Incremental decoder for one quorum connection: bytes in, packets out.
///
/// Packets have no length prefix, so the decoder parses as far as the bytes
/// go and remembers how many more the packet needs at least, so a large
/// packet arriving in small pieces is not re-parsed on every piece. A packet
/// whose declared size passes `packet_bytes_max` fails the stream before its
/// bytes are buffered. Never panics on any input; after an error it stays
/// failed (close the connection).
#[derive(Debug)]
pub struct QuorumStreamDecoder {
    buffer: BytesMut,
    packet_bytes_max: usize,
    /// The current packet is known to need at least this many bytes.
    needed: usize,
    error: Option<PacketStreamError>,
}

impl QuorumStreamDecoder {
    pub fn new(packet_bytes_max: usize) -> Self {
        assert!(packet_bytes_max >= PACKET_HEADER_BYTES);
        Self {
            buffer: BytesMut::new(),
            packet_bytes_max,
            needed: 0,
            error: None,
        }
    }

    pub fn push(&mut self, bytes: &[u8]) {
        if self.error.is_none() {
            self.buffer.extend_from_slice(bytes);
        }
    }

    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// Takes every byte received and not yet decoded (the start of a SNAP's
    /// snapshot stream, read by other code).
    pub fn take_buffered(&mut self) -> Bytes {
        self.needed = 0;
        self.buffer.split().freeze()
    }

    /// The next complete packet, `Ok(None)` when more bytes are needed.
    pub fn next_packet(&mut self) -> Result<Option<QuorumPacket>, PacketStreamError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = self.decode_next();
        if let Err(error) = &result {
            self.error = Some(error.clone());
            self.buffer = BytesMut::new();
        }
        result
    }

    fn decode_next(&mut self) -> Result<Option<QuorumPacket>, PacketStreamError> {
        if self.buffer.len() < self.needed.max(PACKET_HEADER_BYTES - 4) {
            return Ok(None);
        }
        self.check_declared_data_length()?;
        match ParsedPacket::parse(&self.buffer) {
            Ok(parsed) => {
                self.needed = 0;
                if parsed.length > self.packet_bytes_max {
                    return Err(PacketStreamError::TooLarge {
                        length: parsed.length,
                        max: self.packet_bytes_max,
                    });
                }
                // The packet's bytes leave the buffer without a copy; its data
                // is a slice of them.
                let bytes = self.buffer.split_to(parsed.length).freeze();
                Ok(Some(parsed.into_packet(&bytes)))
            }
            Err(DecodeError::Truncated { needed, .. }) => {
                // `needed` more bytes at least; items of a vector may need more.
                let length = self.buffer.len() + needed;
                if length > self.packet_bytes_max {
                    return Err(PacketStreamError::TooLarge {
                        length,
                        max: self.packet_bytes_max,
                    });
                }
                self.needed = length;
                Ok(None)
            }
            Err(other) => Err(PacketStreamError::Malformed(other)),
        }
    }

    /// Rejects a packet by its data length before waiting for its data.
    fn check_declared_data_length(&self) -> Result<(), PacketStreamError> {
        let length = i32::from_be_bytes(self.buffer[12..16].try_into().expect("4 bytes"));
        if length < -1 {
            return Err(PacketStreamError::Malformed(DecodeError::NegativeLength {
                offset: 12,
                length,
            }));
        }
        let total = PACKET_HEADER_BYTES + length.max(0) as usize;
        if total > self.packet_bytes_max {
            return Err(PacketStreamError::TooLarge {
                length: total,
                max: self.packet_bytes_max,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_layout_matches_jute() {
        // type, zxid, data as a jute buffer, authinfo as a jute vector of Id.
        let packet = QuorumPacket {
            packet_type: PacketType::Request.to_wire(),
            zxid: -1,
            data: Some(Bytes::from_static(b"xy")),
            authinfo: Some(vec![Id::new("ip", "1.2.3.4")]),
        };
        let bytes = packet.to_bytes();
        let expected = [
            &1i32.to_be_bytes()[..],
            &(-1i64).to_be_bytes(),
            &2i32.to_be_bytes(),
            b"xy",
            &1i32.to_be_bytes(),
            &2i32.to_be_bytes(),
            b"ip",
            &7i32.to_be_bytes(),
            b"1.2.3.4",
        ]
        .concat();
        assert_eq!(bytes.as_ref(), expected.as_slice());
        assert_eq!(packet.encoded_len(), expected.len());
        assert_eq!(QuorumPacket::decode(&bytes).unwrap(), packet);
        let ping = QuorumPacket::new(PacketType::Ping, 9).to_bytes();
        assert_eq!(&ping[12..], &[0xff; 8], "null data and null authinfo");
    }

    #[test]
    fn type_numbers_are_zookeepers() {
        // REQUEST 1 ... INFORMANDACTIVATE 19, every number in between used once.
        let numbers: Vec<i32> = PacketType::ALL.iter().map(|t| t.to_wire()).collect();
        assert_eq!(numbers, (1..=19).collect::<Vec<_>>());
        assert_eq!(PacketType::from_wire(17), Some(PacketType::LeaderInfo));
        assert_eq!(PacketType::from_wire(0), None);
        assert_eq!(PacketType::from_wire(20), None);
    }

    #[test]
    fn stream_decodes_packets_split_anywhere() {
        // One byte at a time, packets come out whole, in order, with nothing left.
        let packets = vec![
            QuorumPacket::with_data(
                PacketType::Proposal,
                0x1_0000_0001,
                Bytes::from(vec![7; 300]),
            ),
            QuorumPacket::new(PacketType::Commit, 0x1_0000_0001),
            QuorumPacket {
                authinfo: Some(vec![]),
                ..QuorumPacket::with_data(PacketType::Request, -1, Bytes::new())
            },
        ];
        let stream: Vec<u8> = packets.iter().flat_map(|p| p.to_bytes().to_vec()).collect();
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        let mut out = Vec::new();
        for byte in stream {
            decoder.push(&[byte]);
            while let Some(packet) = decoder.next_packet().unwrap() {
                out.push(packet);
            }
        }
        assert_eq!(out, packets);
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn oversized_packet_fails_before_its_data_arrives() {
        // A declared data length over the limit is refused from the header alone.
        let mut decoder = QuorumStreamDecoder::new(1024);
        let mut header = Vec::new();
        header.extend_from_slice(&2i32.to_be_bytes());
        header.extend_from_slice(&0i64.to_be_bytes());
        header.extend_from_slice(&2000i32.to_be_bytes());
        decoder.push(&header);
        assert_eq!(
            decoder.next_packet(),
            Err(PacketStreamError::TooLarge {
                length: PACKET_HEADER_BYTES + 2000,
                max: 1024
            })
        );
        decoder.push(&[0; 4000]);
        assert!(decoder.next_packet().is_err(), "errors are sticky");
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn malformed_lengths_are_structured_errors() {
        // A data length of -2 is not jute; an authinfo count of -5 reads as
        // an empty list, as Java's jute reads it (its loop never runs).
        let mut bytes = QuorumPacket::new(PacketType::Ack, 1).to_bytes().to_vec();
        bytes[12..16].copy_from_slice(&(-2i32).to_be_bytes());
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        decoder.push(&bytes);
        assert!(matches!(
            decoder.next_packet(),
            Err(PacketStreamError::Malformed(
                DecodeError::NegativeLength { .. }
            ))
        ));
        let mut bytes = QuorumPacket::new(PacketType::Ack, 1).to_bytes().to_vec();
        bytes[16..20].copy_from_slice(&(-5i32).to_be_bytes());
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        decoder.push(&bytes);
        let packet = decoder.next_packet().expect("decodes").expect("one packet");
        assert_eq!(packet.authinfo.map(|ids| ids.len()).unwrap_or(0), 0);
    }

    #[test]
    fn bytes_after_snap_are_handed_over() {
        // What follows a SNAP packet is the raw snapshot, not packets.
        let mut decoder = QuorumStreamDecoder::new(PACKET_BYTES_MAX_DEFAULT);
        let mut stream = QuorumPacket::new(PacketType::Snap, 5).to_bytes().to_vec();
        stream.extend_from_slice(b"snapshot bytes");
        decoder.push(&stream);
        let snap = decoder.next_packet().unwrap().unwrap();
        assert_eq!(snap.packet_type(), Some(PacketType::Snap));
        assert_eq!(decoder.take_buffered().as_ref(), b"snapshot bytes");
    }
}
