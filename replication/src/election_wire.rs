//! The election port (ZooKeeper's 3888), byte for byte as
//! `QuorumCnxManager` and `FastLeaderElection` speak it.
//!
//! A connection carries, from the side that dialled:
//!
//! ```text
//! hello (once)      long  protocolVersion   -65536 = V1, -65535 = V2; a value >= 0
//!                                            is a pre-3.5 peer's sid and ends the hello
//!                   long  sid
//!                   int   length            1 ..= 2048 (HELLO_ADDRESS_BYTES_MAX)
//!                   bytes "host:port"       V1: one address; V2: several, '|'-joined;
//!                                            IPv6 hosts in brackets "[::1]:3888"
//! then frames       int   length            1 ..= 512 KiB (ELECTION_FRAME_BYTES_MAX)
//!                   bytes notification
//! ```
//!
//! and from the side that accepted, frames only. Only the connection from the
//! larger sid survives (a smaller sid dialling in is closed and dialled back);
//! that rule belongs to the driver, which also maps sids to members.
//!
//! A notification, in the forms ZooKeeper still accepts
//! (`FastLeaderElection.Messenger.WorkerReceiver`):
//!
//! ```text
//! 28 bytes  int state, long leader, long zxid, long electionEpoch
//!           (before ZOOKEEPER-107; peerEpoch is taken from the zxid's epoch)
//! 40 bytes  ... long peerEpoch, then 4 bytes that are ignored (3.4: padding or
//!           version 1)
//! else      ... long peerEpoch, int version, and when version > 1:
//!           int configLength (0 ..= message length), config text
//!           (the sender's QuorumVerifier, "server.N=...\nversion=<hex>")
//! ```
//!
//! state: 0 LOOKING, 1 FOLLOWING, 2 LEADING, 3 OBSERVING. A message shorter
//! than 28 bytes, cut short, or with an unknown state is skipped by ZooKeeper
//! without closing the connection; a frame length out of range closes it. The
//! decoders here report the two cases as different error types so the driver
//! can do the same.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

/// The first protocol version with a hello (ZOOKEEPER-107, 3.5.0): one address.
pub const PROTOCOL_VERSION_V1: i64 = -65536;
/// Multiple '|'-joined addresses (ZOOKEEPER-3188, 3.6.0).
pub const PROTOCOL_VERSION_V2: i64 = -65535;
/// The sid an observer without an id sends; ZooKeeper gives such a connection
/// a made-up negative id (`QuorumPeer.OBSERVER_ID`).
pub const OBSERVER_SID: i64 = i64::MAX;
/// Largest address list a hello may carry (`QuorumCnxManager.maxBuffer`).
pub const HELLO_ADDRESS_BYTES_MAX: usize = 2048;
/// Largest election message (`QuorumCnxManager.PACKETMAXSIZE`).
pub const ELECTION_FRAME_BYTES_MAX: usize = 512 * 1024;
/// The notification format version ZooKeeper sends since 3.5 (with config).
pub const NOTIFICATION_VERSION_CURRENT: i32 = 2;
/// Size of the oldest notification form.
pub const NOTIFICATION_BYTES_28: usize = 28;
/// Size of the 3.4 notification form.
pub const NOTIFICATION_BYTES_40: usize = 40;
/// Size of the current form before its config text.
pub const NOTIFICATION_HEADER_BYTES: usize = 44;

/// What a server is doing, as its notifications say (`QuorumPeer.ServerState`
/// ordinals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ServerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl ServerState {
    pub fn from_wire(value: i32) -> Option<Self> {
        match value {
            0 => Some(Self::Looking),
            1 => Some(Self::Following),
            2 => Some(Self::Leading),
            3 => Some(Self::Observing),
            _ => None,
        }
    }

    pub fn to_wire(self) -> i32 {
        self as i32
    }
}

/// One "host:port" of a hello. Hosts are kept as sent (names, IPv4, IPv6
/// without brackets); resolving them, and ignoring wildcards as ZooKeeper
/// does, is the driver's business.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HostPort {
    pub host: String,
    pub port: u16,
}

impl HostPort {
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Self {
            host: host.into(),
            port,
        }
    }

    /// `0.0.0.0` or `::`, which ZooKeeper drops from a hello's addresses.
    pub fn is_wildcard(&self) -> bool {
        matches!(self.host.as_str(), "0.0.0.0" | "::" | "0:0:0:0:0:0:0:0")
    }
}

impl std::fmt::Display for HostPort {
    /// ZooKeeper's `NetUtils.formatInetAddr`: IPv6 hosts in brackets.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// Splits as Java's `String.split` does, which ZooKeeper's parsers use:
/// trailing empty pieces are dropped ("a:1:" is two pieces), but an empty
/// input is one empty piece.
pub(crate) fn java_split(text: &str, separator: char) -> Vec<&str> {
    if text.is_empty() {
        return vec![text];
    }
    let mut pieces: Vec<&str> = text.split(separator).collect();
    while pieces.last() == Some(&"") {
        pieces.pop();
    }
    pieces
}

/// Splits "host:port[:more...]" as ZooKeeper's `ConfigUtils.getHostAndPort`
/// does: a leading "[v6]" is the host, everything else splits on ':'.
/// `None` when a bracket is not closed or no port follows it.
pub(crate) fn split_host_and_ports(text: &str) -> Option<Vec<&str>> {
    if let Some(rest) = text.strip_prefix('[') {
        let close = rest.find(']')?;
        let host = &rest[..close];
        let after = &rest[close + 1..];
        let ports = after.strip_prefix(':')?;
        if ports.is_empty() {
            return None;
        }
        let mut parts = vec![host];
        parts.extend(java_split(ports, ':'));
        Some(parts)
    } else {
        Some(java_split(text, ':'))
    }
}

/// Why a hello was refused. ZooKeeper closes the connection on each.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum HelloError {
    #[error("unknown election protocol version {0}")]
    UnknownProtocolVersion(i64),
    #[error("hello address length {length} outside 1..={HELLO_ADDRESS_BYTES_MAX}")]
    AddressLength { length: i32 },
    #[error("badly formed hello address {address:?}")]
    BadAddress { address: String },
    #[error("hello address is not UTF-8")]
    AddressNotUtf8,
}

/// The hello version a peer used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HelloVersion {
    /// Before 3.5: the first long was the sid itself, nothing follows.
    Legacy,
    V1,
    V2,
}

/// The first bytes a peer sends on an election connection it dialled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionHello {
    pub version: HelloVersion,
    pub sid: i64,
    /// The dialler's election addresses (empty for [`HelloVersion::Legacy`]).
    pub addresses: Vec<HostPort>,
}

impl ElectionHello {
    /// The hello a current server sends: V1 with one address, V2 with
    /// several (ZooKeeper sends V2 only with multi-address enabled, so that a
    /// rolling upgrade never meets a peer that cannot read it).
    pub fn new(sid: i64, addresses: Vec<HostPort>) -> Self {
        assert!(!addresses.is_empty(), "a hello names at least one address");
        let version = if addresses.len() == 1 {
            HelloVersion::V1
        } else {
            HelloVersion::V2
        };
        Self {
            version,
            sid,
            addresses,
        }
    }

    /// The wire form. Addresses come from validated configuration, so one
    /// that does not fit the 2048 bytes ZooKeeper reads is a programmer error.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(64);
        match self.version {
            HelloVersion::Legacy => {
                assert!(self.sid >= 0, "a legacy hello is a non-negative sid");
                out.extend_from_slice(&self.sid.to_be_bytes());
            }
            HelloVersion::V1 | HelloVersion::V2 => {
                assert!(
                    self.version == HelloVersion::V2 || self.addresses.len() == 1,
                    "a V1 hello carries exactly one address"
                );
                let version = match self.version {
                    HelloVersion::V1 => PROTOCOL_VERSION_V1,
                    _ => PROTOCOL_VERSION_V2,
                };
                let text = self
                    .addresses
                    .iter()
                    .map(HostPort::to_string)
                    .collect::<Vec<_>>()
                    .join("|");
                assert!(
                    (1..=HELLO_ADDRESS_BYTES_MAX).contains(&text.len()),
                    "hello addresses take {} bytes",
                    text.len()
                );
                out.extend_from_slice(&version.to_be_bytes());
                out.extend_from_slice(&self.sid.to_be_bytes());
                out.extend_from_slice(&(text.len() as i32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
        }
        out.freeze()
    }

    /// Parses the address text of a V1/V2 hello (`InitialMessage.parse`).
    fn parse_addresses(bytes: &[u8]) -> Result<Vec<HostPort>, HelloError> {
        let text = std::str::from_utf8(bytes).map_err(|_| HelloError::AddressNotUtf8)?;
        let bad = |address: &str| HelloError::BadAddress {
            address: address.to_string(),
        };
        let mut addresses = Vec::new();
        for address in java_split(text, '|') {
            let parts = split_host_and_ports(address).ok_or_else(|| bad(address))?;
            let [host, port] = parts.as_slice() else {
                return Err(bad(address));
            };
            let port = port.parse::<u16>().map_err(|_| bad(address))?;
            addresses.push(HostPort::new(*host, port));
        }
        Ok(addresses)
    }
}

/// Why a notification was skipped. ZooKeeper logs these and keeps the
/// connection.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NotificationError {
    #[error("notification of {length} bytes is shorter than {NOTIFICATION_BYTES_28}")]
    Short { length: usize },
    #[error("notification of {length} bytes ends inside its {field}")]
    Truncated { length: usize, field: &'static str },
    #[error("notification config length {config_length} outside 0..={length}")]
    ConfigLength { length: usize, config_length: i32 },
    #[error("unknown server state {0} in notification")]
    UnknownState(i32),
}

/// An older notification form, for peers that predate the config field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LegacyNotificationForm {
    /// 28 bytes, no peerEpoch.
    Bytes28,
    /// 40 bytes: peerEpoch and 4 ignored bytes (3.4 writes version 1 there).
    Bytes40,
}

/// One election message: the sender's state and the vote it currently holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: ServerState,
    /// The proposed (or known) leader's sid; `i64::MIN` from an observer that
    /// has no vote yet.
    pub leader: i64,
    /// The proposed leader's last logged zxid.
    pub zxid: i64,
    /// The sender's election round (`logicalclock`).
    pub election_epoch: i64,
    /// The proposed leader's current epoch.
    pub peer_epoch: i64,
    /// Format version: 0 for the 28- and 40-byte forms, else as sent.
    pub version: i32,
    /// The sender's ensemble configuration text, when `version > 1`; empty
    /// otherwise.
    pub config: Bytes,
}

impl Notification {
    /// The current form (44 bytes + config), as ZooKeeper 3.5+ sends it. The
    /// config is written whatever the version; a reader ignores it when the
    /// version is 1 or less.
    pub fn encode(&self) -> Bytes {
        let mut out = BytesMut::with_capacity(NOTIFICATION_HEADER_BYTES + self.config.len());
        self.encode_head(&mut out);
        out.extend_from_slice(&self.peer_epoch.to_be_bytes());
        out.extend_from_slice(&self.version.to_be_bytes());
        let config_length = i32::try_from(self.config.len()).expect("config over 2 GiB");
        out.extend_from_slice(&config_length.to_be_bytes());
        out.extend_from_slice(&self.config);
        out.freeze()
    }

    /// An older form, as 3.4 and earlier servers send it.
    pub fn encode_legacy(&self, form: LegacyNotificationForm) -> Bytes {
        let mut out = BytesMut::with_capacity(NOTIFICATION_BYTES_40);
        self.encode_head(&mut out);
        if form == LegacyNotificationForm::Bytes40 {
            out.extend_from_slice(&self.peer_epoch.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
        }
        out.freeze()
    }

    fn encode_head(&self, out: &mut BytesMut) {
        out.extend_from_slice(&self.state.to_wire().to_be_bytes());
        out.extend_from_slice(&self.leader.to_be_bytes());
        out.extend_from_slice(&self.zxid.to_be_bytes());
        out.extend_from_slice(&self.election_epoch.to_be_bytes());
    }

    /// Decodes any form ZooKeeper accepts, by the same length rules.
    pub fn decode(message: &[u8]) -> Result<Self, NotificationError> {
        let length = message.len();
        if length < NOTIFICATION_BYTES_28 {
            return Err(NotificationError::Short { length });
        }
        let truncated = |field| NotificationError::Truncated { length, field };
        let mut buf = message;
        let state = buf.get_i32();
        let leader = buf.get_i64();
        let zxid = buf.get_i64();
        let election_epoch = buf.get_i64();
        let mut version = 0;
        let mut config = Bytes::new();
        let peer_epoch = if length == NOTIFICATION_BYTES_28 {
            zxid >> 32
        } else {
            let peer_epoch = buf.try_get_i64().map_err(|_| truncated("peerEpoch"))?;
            if length != NOTIFICATION_BYTES_40 {
                version = buf.try_get_i32().map_err(|_| truncated("version"))?;
                if version > 1 {
                    let config_length =
                        buf.try_get_i32().map_err(|_| truncated("config length"))?;
                    if config_length < 0 || config_length as usize > length {
                        return Err(NotificationError::ConfigLength {
                            length,
                            config_length,
                        });
                    }
                    let n = config_length as usize;
                    if buf.remaining() < n {
                        return Err(truncated("config"));
                    }
                    config = Bytes::copy_from_slice(&buf[..n]);
                }
            }
            peer_epoch
        };
        // ZooKeeper reads the whole message before it looks at the state.
        let state = ServerState::from_wire(state).ok_or(NotificationError::UnknownState(state))?;
        Ok(Self {
            state,
            leader,
            zxid,
            election_epoch,
            peer_epoch,
            version,
            config,
        })
    }
}

/// Wraps an election message in its frame (int length + bytes).
pub fn frame_election_message(message: &[u8]) -> Bytes {
    assert!(
        (1..=ELECTION_FRAME_BYTES_MAX).contains(&message.len()),
        "election message of {} bytes",
        message.len()
    );
    let mut out = BytesMut::with_capacity(4 + message.len());
    out.extend_from_slice(&(message.len() as i32).to_be_bytes());
    out.extend_from_slice(message);
    out.freeze()
}

/// Why an election connection must be closed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ElectionStreamError {
    #[error(transparent)]
    Hello(#[from] HelloError),
    #[error("election frame length {length} outside 1..={ELECTION_FRAME_BYTES_MAX}")]
    FrameLength { length: i32 },
}

/// What an election connection delivers, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElectionFrame {
    /// The dialler's hello; first and only once on an accepted connection.
    Hello(ElectionHello),
    /// One message; decode it with [`Notification::decode`] and skip it on
    /// error, as ZooKeeper does.
    Message(Bytes),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ElectionStreamState {
    AwaitingHello,
    Frames,
    Failed,
}

/// Incremental decoder for one election connection: bytes in, frames out.
/// Buffers at most one frame (512 KiB) plus what arrived after it; never
/// panics on any input. After an error it stays failed: close the connection.
#[derive(Debug)]
pub struct ElectionStreamDecoder {
    buffer: BytesMut,
    state: ElectionStreamState,
    error: Option<ElectionStreamError>,
}

impl ElectionStreamDecoder {
    /// For a connection this server accepted: a hello comes first.
    pub fn accepted() -> Self {
        Self::with_state(ElectionStreamState::AwaitingHello)
    }

    /// For a connection this server dialled: frames only.
    pub fn dialled() -> Self {
        Self::with_state(ElectionStreamState::Frames)
    }

    fn with_state(state: ElectionStreamState) -> Self {
        Self {
            buffer: BytesMut::new(),
            state,
            error: None,
        }
    }

    /// Appends received bytes.
    pub fn push(&mut self, bytes: &[u8]) {
        if self.state != ElectionStreamState::Failed {
            self.buffer.extend_from_slice(bytes);
        }
    }

    /// Bytes received but not yet returned as frames.
    pub fn buffered(&self) -> usize {
        self.buffer.len()
    }

    /// The next complete frame, `Ok(None)` when more bytes are needed.
    pub fn next_frame(&mut self) -> Result<Option<ElectionFrame>, ElectionStreamError> {
        if let Some(error) = &self.error {
            return Err(error.clone());
        }
        let result = match self.state {
            ElectionStreamState::AwaitingHello => self.next_hello(),
            ElectionStreamState::Frames => self.next_message(),
            ElectionStreamState::Failed => unreachable!("failed state always has an error"),
        };
        if let Err(error) = &result {
            self.state = ElectionStreamState::Failed;
            self.error = Some(error.clone());
            self.buffer = BytesMut::new();
        }
        result
    }

    fn next_hello(&mut self) -> Result<Option<ElectionFrame>, ElectionStreamError> {
        let Some(protocol) = peek_i64(&self.buffer, 0) else {
            return Ok(None);
        };
        if protocol >= 0 {
            self.buffer.advance(8);
            self.state = ElectionStreamState::Frames;
            return Ok(Some(ElectionFrame::Hello(ElectionHello {
                version: HelloVersion::Legacy,
                sid: protocol,
                addresses: Vec::new(),
            })));
        }
        let version = match protocol {
            PROTOCOL_VERSION_V1 => HelloVersion::V1,
            PROTOCOL_VERSION_V2 => HelloVersion::V2,
            other => return Err(HelloError::UnknownProtocolVersion(other).into()),
        };
        let (Some(sid), Some(length)) = (peek_i64(&self.buffer, 8), peek_i32(&self.buffer, 16))
        else {
            return Ok(None);
        };
        if length <= 0 || length as usize > HELLO_ADDRESS_BYTES_MAX {
            return Err(HelloError::AddressLength { length }.into());
        }
        let end = 20 + length as usize;
        if self.buffer.len() < end {
            return Ok(None);
        }
        let addresses = ElectionHello::parse_addresses(&self.buffer[20..end])?;
        self.buffer.advance(end);
        self.state = ElectionStreamState::Frames;
        Ok(Some(ElectionFrame::Hello(ElectionHello {
            version,
            sid,
            addresses,
        })))
    }

    fn next_message(&mut self) -> Result<Option<ElectionFrame>, ElectionStreamError> {
        let Some(length) = peek_i32(&self.buffer, 0) else {
            return Ok(None);
        };
        if length <= 0 || length as usize > ELECTION_FRAME_BYTES_MAX {
            return Err(ElectionStreamError::FrameLength { length });
        }
        let end = 4 + length as usize;
        if self.buffer.len() < end {
            return Ok(None);
        }
        self.buffer.advance(4);
        let message = self.buffer.split_to(length as usize).freeze();
        Ok(Some(ElectionFrame::Message(message)))
    }
}

fn peek_i64(buf: &[u8], at: usize) -> Option<i64> {
    let bytes = buf.get(at..at + 8)?;
    Some(i64::from_be_bytes(bytes.try_into().expect("8 bytes")))
}

fn peek_i32(buf: &[u8], at: usize) -> Option<i32> {
    let bytes = buf.get(at..at + 4)?;
    Some(i32::from_be_bytes(bytes.try_into().expect("4 bytes")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn notification() -> Notification {
        Notification {
            state: ServerState::Leading,
            leader: 3,
            zxid: 0x0000_0002_0000_0007,
            election_epoch: 5,
            peer_epoch: 2,
            version: NOTIFICATION_VERSION_CURRENT,
            config: Bytes::from_static(b"server.1=a:2888:3888:participant\nversion=0"),
        }
    }

    #[test]
    fn current_notification_layout_matches_zookeeper() {
        // The exact bytes FastLeaderElection.buildMsg writes.
        let n = notification();
        let bytes = n.encode();
        assert_eq!(bytes.len(), 44 + n.config.len());
        assert_eq!(&bytes[0..4], &2i32.to_be_bytes());
        assert_eq!(&bytes[4..12], &3i64.to_be_bytes());
        assert_eq!(&bytes[12..20], &0x0000_0002_0000_0007i64.to_be_bytes());
        assert_eq!(&bytes[20..28], &5i64.to_be_bytes());
        assert_eq!(&bytes[28..36], &2i64.to_be_bytes());
        assert_eq!(&bytes[36..40], &2i32.to_be_bytes());
        assert_eq!(&bytes[40..44], &(n.config.len() as i32).to_be_bytes());
        assert_eq!(Notification::decode(&bytes).unwrap(), n);
    }

    #[test]
    fn oldest_form_takes_peer_epoch_from_the_zxid() {
        // A 28-byte notification has no peerEpoch; ZooKeeper uses the zxid's epoch.
        let n = notification();
        let decoded = Notification::decode(&n.encode_legacy(LegacyNotificationForm::Bytes28));
        let decoded = decoded.unwrap();
        assert_eq!(decoded.peer_epoch, 2);
        assert_eq!(decoded.version, 0);
        assert!(decoded.config.is_empty());
        let forty = Notification::decode(&n.encode_legacy(LegacyNotificationForm::Bytes40));
        assert_eq!(forty.unwrap().version, 0);
    }

    #[test]
    fn notification_length_rules_match_zookeeper() {
        // Short messages and a 36-byte message (no version) are skipped, as in
        // WorkerReceiver; version 1 with trailing bytes is accepted.
        let bytes = notification().encode();
        assert_eq!(
            Notification::decode(&bytes[..27]),
            Err(NotificationError::Short { length: 27 })
        );
        assert!(matches!(
            Notification::decode(&bytes[..36]),
            Err(NotificationError::Truncated {
                field: "version",
                ..
            })
        ));
        let mut v1 = notification();
        v1.version = 1;
        let decoded = Notification::decode(&v1.encode()).unwrap();
        assert_eq!(decoded.version, 1);
        assert!(decoded.config.is_empty());
        let mut huge = bytes.to_vec();
        huge[40..44].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            Notification::decode(&huge),
            Err(NotificationError::ConfigLength { .. })
        ));
        let mut unknown = bytes.to_vec();
        unknown[0..4].copy_from_slice(&7i32.to_be_bytes());
        assert_eq!(
            Notification::decode(&unknown),
            Err(NotificationError::UnknownState(7))
        );
    }

    #[test]
    fn hello_layout_matches_quorum_cnx_manager() {
        // protocol version, sid, length, "host:port" — as initiateConnection writes.
        let hello = ElectionHello::new(7, vec![HostPort::new("10.0.0.7", 3888)]);
        let bytes = hello.encode();
        assert_eq!(&bytes[0..8], &PROTOCOL_VERSION_V1.to_be_bytes());
        assert_eq!(&bytes[8..16], &7i64.to_be_bytes());
        assert_eq!(&bytes[16..20], &13i32.to_be_bytes());
        assert_eq!(&bytes[20..], b"10.0.0.7:3888");
        let v2 = ElectionHello::new(
            8,
            vec![HostPort::new("::1", 3888), HostPort::new("h", 3889)],
        );
        let bytes = v2.encode();
        assert_eq!(&bytes[0..8], &PROTOCOL_VERSION_V2.to_be_bytes());
        assert_eq!(&bytes[20..], b"[::1]:3888|h:3889");
        let mut decoder = ElectionStreamDecoder::accepted();
        decoder.push(&bytes);
        assert_eq!(decoder.next_frame(), Ok(Some(ElectionFrame::Hello(v2))));
    }

    #[test]
    fn stream_yields_hello_then_messages_across_any_split() {
        // Bytes may arrive one at a time; frames come out whole and in order.
        let hello = ElectionHello::new(2, vec![HostPort::new("b", 3888)]);
        let first = notification().encode();
        let second = notification().encode_legacy(LegacyNotificationForm::Bytes28);
        let mut stream = hello.encode().to_vec();
        stream.extend_from_slice(&frame_election_message(&first));
        stream.extend_from_slice(&frame_election_message(&second));
        let mut decoder = ElectionStreamDecoder::accepted();
        let mut frames = Vec::new();
        for byte in stream {
            decoder.push(&[byte]);
            while let Some(frame) = decoder.next_frame().unwrap() {
                frames.push(frame);
            }
        }
        assert_eq!(
            frames,
            vec![
                ElectionFrame::Hello(hello),
                ElectionFrame::Message(first),
                ElectionFrame::Message(second)
            ]
        );
        assert_eq!(decoder.buffered(), 0);
    }

    #[test]
    fn legacy_hello_is_a_bare_sid() {
        // Pre-3.5 peers send their sid where the protocol version would be.
        let mut decoder = ElectionStreamDecoder::accepted();
        decoder.push(&5i64.to_be_bytes());
        let hello = ElectionHello {
            version: HelloVersion::Legacy,
            sid: 5,
            addresses: vec![],
        };
        assert_eq!(
            decoder.next_frame(),
            Ok(Some(ElectionFrame::Hello(hello.clone())))
        );
        assert_eq!(hello.encode().as_ref(), &5i64.to_be_bytes());
    }

    #[test]
    fn bad_hellos_and_frames_fail_the_stream() {
        // Each refusal QuorumCnxManager makes closes the connection here too.
        let cases: Vec<(Vec<u8>, ElectionStreamError)> = vec![
            (
                (-3i64).to_be_bytes().to_vec(),
                HelloError::UnknownProtocolVersion(-3).into(),
            ),
            (
                [
                    &PROTOCOL_VERSION_V1.to_be_bytes()[..],
                    &1i64.to_be_bytes(),
                    &0i32.to_be_bytes(),
                ]
                .concat(),
                HelloError::AddressLength { length: 0 }.into(),
            ),
            (
                [
                    &PROTOCOL_VERSION_V1.to_be_bytes()[..],
                    &1i64.to_be_bytes(),
                    &4i32.to_be_bytes(),
                    b"host",
                ]
                .concat(),
                HelloError::BadAddress {
                    address: "host".into(),
                }
                .into(),
            ),
        ];
        for (bytes, expected) in cases {
            let mut decoder = ElectionStreamDecoder::accepted();
            decoder.push(&bytes);
            assert_eq!(decoder.next_frame(), Err(expected.clone()));
            decoder.push(&[0; 64]);
            assert_eq!(decoder.next_frame(), Err(expected), "errors are sticky");
        }
        let mut decoder = ElectionStreamDecoder::dialled();
        decoder.push(&(ELECTION_FRAME_BYTES_MAX as i32 + 1).to_be_bytes());
        assert!(matches!(
            decoder.next_frame(),
            Err(ElectionStreamError::FrameLength { .. })
        ));
    }
}
