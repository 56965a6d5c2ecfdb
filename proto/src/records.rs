//! Records shared by requests, replies, the tree and the log: Stat, Id, ACL,
//! the headers and the handshake.

use crate::jute::{DecodeError, Reader, Record, Writer};

/// A transaction id: epoch in the high 32 bits, counter in the low 32 bits.
pub type Zxid = i64;

/// The epoch of a zxid.
pub fn zxid_epoch(zxid: Zxid) -> u32 {
    (zxid >> 32) as u32
}

/// The counter of a zxid within its epoch.
pub fn zxid_counter(zxid: Zxid) -> u32 {
    zxid as u32
}

/// A znode's metadata, field for field as ZooKeeper's `Stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Record for Stat {
    fn encode(&self, w: &mut Writer) {
        w.write_i64(self.czxid);
        w.write_i64(self.mzxid);
        w.write_i64(self.ctime);
        w.write_i64(self.mtime);
        w.write_i32(self.version);
        w.write_i32(self.cversion);
        w.write_i32(self.aversion);
        w.write_i64(self.ephemeral_owner);
        w.write_i32(self.data_length);
        w.write_i32(self.num_children);
        w.write_i64(self.pzxid);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            czxid: r.read_i64()?,
            mzxid: r.read_i64()?,
            ctime: r.read_i64()?,
            mtime: r.read_i64()?,
            version: r.read_i32()?,
            cversion: r.read_i32()?,
            aversion: r.read_i32()?,
            ephemeral_owner: r.read_i64()?,
            data_length: r.read_i32()?,
            num_children: r.read_i32()?,
            pzxid: r.read_i64()?,
        })
    }
}

/// An identity under an auth scheme, e.g. `("digest", "bob:hash")` or `("world", "anyone")`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Id {
    pub scheme: String,
    pub id: String,
}

impl Id {
    pub fn new(scheme: impl Into<String>, id: impl Into<String>) -> Self {
        Self {
            scheme: scheme.into(),
            id: id.into(),
        }
    }
}

impl Record for Id {
    fn encode(&self, w: &mut Writer) {
        w.write_ustring(&self.scheme);
        w.write_ustring(&self.id);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            scheme: r.read_ustring()?,
            id: r.read_ustring()?,
        })
    }
}

/// One access-control entry: permission bits for an identity.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Acl {
    pub perms: i32,
    pub id: Id,
}

impl Acl {
    /// `world:anyone` with every permission (ZooDefs.Ids.OPEN_ACL_UNSAFE).
    pub fn open_unsafe() -> Vec<Acl> {
        vec![Acl {
            perms: crate::perms::ALL,
            id: Id::new("world", "anyone"),
        }]
    }
}

impl Record for Acl {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.perms);
        self.id.encode(w);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            perms: r.read_i32()?,
            id: Id::decode(r)?,
        })
    }
}

/// Encodes a vector of records.
pub fn write_records<T: Record>(w: &mut Writer, items: &[T]) {
    w.write_vec(items, |w, it| it.encode(w));
}

/// Decodes a vector of records (null decodes as empty).
pub fn read_records<T: Record>(r: &mut Reader<'_>) -> Result<Vec<T>, DecodeError> {
    r.read_vec(T::decode)
}

/// Encodes a vector of strings.
pub fn write_strings(w: &mut Writer, items: &[String]) {
    w.write_vec(items, |w, s| w.write_ustring(s));
}

/// Decodes a vector of strings (null decodes as empty).
pub fn read_strings(r: &mut Reader<'_>) -> Result<Vec<String>, DecodeError> {
    r.read_vec(|r| r.read_ustring())
}

/// Precedes every request after the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    /// The raw opcode; decode it with [`crate::OpCode::from_code`] so that an
    /// unknown one can still be answered with UNIMPLEMENTED.
    pub op: i32,
}

impl Record for RequestHeader {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.xid);
        w.write_i32(self.op);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            xid: r.read_i32()?,
            op: r.read_i32()?,
        })
    }
}

/// Precedes every reply and notification. The body follows only when `err == 0`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl Record for ReplyHeader {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.xid);
        w.write_i64(self.zxid);
        w.write_i32(self.err);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            xid: r.read_i32()?,
            zxid: r.read_i64()?,
            err: r.read_i32()?,
        })
    }
}

/// Special xids (ClientCnxn).
pub mod xid {
    pub const NOTIFICATION: i32 = -1;
    pub const PING: i32 = -2;
    pub const AUTH: i32 = -4;
    pub const SET_WATCHES: i32 = -8;
}

/// The first frame of a connection. `read_only` is `None` when the client
/// sent the older 44-byte form without the trailing flag.
///
/// ZooKeeper reads the record, then tries one more bool for the flag, and
/// never looks at what follows (`ZooKeeperServer.processConnectRequest`):
/// any bytes after the flag are ignored, so [`ConnectRequest::from_bytes`]
/// accepts them too instead of refusing the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i64(self.last_zxid_seen);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id);
        w.write_buffer(&self.password);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.read_i32()?,
            last_zxid_seen: r.read_i64()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            password: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }

    /// Decodes a handshake frame, ignoring whatever follows the read-only flag.
    fn from_bytes(buf: &[u8]) -> Result<Self, DecodeError> {
        Self::decode(&mut Reader::new(buf))
    }
}

/// The answer to [`ConnectRequest`], in the same form (with or without the
/// read-only flag) that the client used (ZOOKEEPER-4814).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub password: Vec<u8>,
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.protocol_version);
        w.write_i32(self.timeout_ms);
        w.write_i64(self.session_id);
        w.write_buffer(&self.password);
        if let Some(ro) = self.read_only {
            w.write_bool(ro);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            protocol_version: r.read_i32()?,
            timeout_ms: r.read_i32()?,
            session_id: r.read_i64()?,
            password: r.read_buffer()?,
            read_only: if r.is_empty() {
                None
            } else {
                Some(r.read_bool()?)
            },
        })
    }
}

/// A watch notification body (sent with xid -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: String,
}

impl Record for WatcherEvent {
    fn encode(&self, w: &mut Writer) {
        w.write_i32(self.event_type);
        w.write_i32(self.state);
        w.write_ustring(&self.path);
    }

    fn decode(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self {
            event_type: r.read_i32()?,
            state: r.read_i32()?,
            path: r.read_ustring()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_request_keeps_its_form() {
        for read_only in [None, Some(false), Some(true)] {
            let req = ConnectRequest {
                protocol_version: 0,
                last_zxid_seen: 5,
                timeout_ms: 30_000,
                session_id: 0,
                password: vec![0; 16],
                read_only,
            };
            let bytes = req.to_bytes();
            assert_eq!(bytes.len(), if read_only.is_some() { 45 } else { 44 });
            assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap(), req);
        }
    }

    #[test]
    fn connect_request_ignores_bytes_after_the_read_only_flag() {
        // Proves a handshake with trailing bytes decodes as ZooKeeper reads it:
        // the 45th byte is the flag, the rest is ignored.
        let req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 10_000,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(true),
        };
        let mut bytes = req.to_bytes();
        bytes.extend_from_slice(&[0, 7, 8, 9]);
        assert_eq!(ConnectRequest::from_bytes(&bytes).unwrap(), req);
        // A frame too short for the record is still refused.
        assert!(ConnectRequest::from_bytes(&bytes[..40]).is_err());
    }

    #[test]
    fn stat_is_68_bytes() {
        assert_eq!(Stat::default().to_bytes().len(), 68);
    }
}
