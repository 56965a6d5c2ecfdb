//! The load generator's hot-path codec: request frames written in place into
//! a session's output buffer, and reply frames cut out of its input buffer.
//!
//! `proto::ops::encode_request` builds a fresh `Vec` per request from owned
//! `String`/`Vec<u8>` fields, which costs three allocations and two copies of
//! the value per operation. At a few hundred thousand operations a second on a
//! shared 2-core machine that is CPU the server under test should have, so the
//! handful of request shapes the load generator sends are written here
//! directly in jute form. The tests below prove that every one of them is byte
//! for byte what `proto` encodes, and the connect handshake and reply headers
//! go through `proto` itself.

use proto::{ConnectRequest, ConnectResponse, DecodeError, OpCode, Reader, Record, ReplyHeader};

/// Largest reply frame the load generator accepts. ZooKeeper's own client
/// limit is `jute.maxbuffer` (1 MiB); a little headroom keeps a server that
/// is configured larger from looking broken.
pub const FRAME_BYTES_MAX: usize = 16 << 20;

/// The `world:anyone` ACL with every permission (OPEN_ACL_UNSAFE).
const ACL_PERMS_ALL: i32 = proto::perms::ALL;

/// Starts a frame: reserves the 4-byte length and writes the request header.
/// Returns where the frame starts so that [`end_frame`] can fill the length in.
fn begin_frame(out: &mut Vec<u8>, xid: i32, op: OpCode) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&xid.to_be_bytes());
    out.extend_from_slice(&op.code().to_be_bytes());
    start
}

fn end_frame(out: &mut [u8], start: usize) {
    let length = i32::try_from(out.len() - start - 4).expect("request frame over 2 GiB");
    out[start..start + 4].copy_from_slice(&length.to_be_bytes());
}

fn put_i32(out: &mut Vec<u8>, v: i32) {
    out.extend_from_slice(&v.to_be_bytes());
}

fn put_bytes(out: &mut Vec<u8>, v: &[u8]) {
    put_i32(
        out,
        i32::try_from(v.len()).expect("jute buffer over i32::MAX"),
    );
    out.extend_from_slice(v);
}

/// `create(path, data, OPEN_ACL_UNSAFE, PERSISTENT)`.
pub fn put_create(out: &mut Vec<u8>, xid: i32, path: &str, data: &[u8]) {
    let start = begin_frame(out, xid, OpCode::Create);
    put_bytes(out, path.as_bytes());
    put_bytes(out, data);
    put_i32(out, 1);
    put_i32(out, ACL_PERMS_ALL);
    put_bytes(out, b"world");
    put_bytes(out, b"anyone");
    put_i32(out, 0);
    end_frame(out, start);
}

/// `setData(path, data, version -1)`.
pub fn put_set_data(out: &mut Vec<u8>, xid: i32, path: &str, data: &[u8]) {
    let start = begin_frame(out, xid, OpCode::SetData);
    put_bytes(out, path.as_bytes());
    put_bytes(out, data);
    put_i32(out, -1);
    end_frame(out, start);
}

/// `getData(path, watch false)`.
pub fn put_get_data(out: &mut Vec<u8>, xid: i32, path: &str) {
    let start = begin_frame(out, xid, OpCode::GetData);
    put_bytes(out, path.as_bytes());
    out.push(0);
    end_frame(out, start);
}

/// `getChildren(path, watch false)`.
pub fn put_get_children(out: &mut Vec<u8>, xid: i32, path: &str) {
    let start = begin_frame(out, xid, OpCode::GetChildren);
    put_bytes(out, path.as_bytes());
    out.push(0);
    end_frame(out, start);
}

/// `delete(path, version -1)`.
pub fn put_delete(out: &mut Vec<u8>, xid: i32, path: &str) {
    let start = begin_frame(out, xid, OpCode::Delete);
    put_bytes(out, path.as_bytes());
    put_i32(out, -1);
    end_frame(out, start);
}

/// A ping (xid -2, opcode 11, no body).
pub fn put_ping(out: &mut Vec<u8>) {
    let start = begin_frame(out, proto::xid::PING, OpCode::Ping);
    end_frame(out, start);
}

/// `closeSession` (opcode -11, no body).
pub fn put_close_session(out: &mut Vec<u8>, xid: i32) {
    let start = begin_frame(out, xid, OpCode::CloseSession);
    end_frame(out, start);
}

/// `sync(path)`: the server this session is connected to catches up with
/// the leader before answering.
pub fn put_sync(out: &mut Vec<u8>, xid: i32, path: &str) {
    let start = begin_frame(out, xid, OpCode::Sync);
    put_bytes(out, path.as_bytes());
    end_frame(out, start);
}

/// The handshake frame for a new session (the 45-byte form with readOnly
/// false, as the Java client sends it).
pub fn put_connect(out: &mut Vec<u8>, timeout_ms: i32) {
    put_reconnect(out, timeout_ms, 0, &[0; 16], 0);
}

/// The handshake frame that resumes session `session_id` (with its password)
/// on another server, telling it the highest zxid this client has seen: a
/// server behind that zxid refuses the connection, as ZooKeeper's clients
/// expect (they then try the next server).
pub fn put_reconnect(
    out: &mut Vec<u8>,
    timeout_ms: i32,
    session_id: i64,
    password: &[u8],
    last_zxid_seen: i64,
) {
    let request = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen,
        timeout_ms,
        session_id,
        password: password.to_vec(),
        read_only: Some(false),
    };
    let body = request.to_bytes();
    put_bytes(out, &body);
}

/// The names in a getChildren reply's body.
pub fn decode_children(body: &[u8]) -> Result<Vec<String>, DecodeError> {
    let mut r = Reader::new(body);
    let count = r.read_i32()?;
    let mut names = Vec::with_capacity(usize::try_from(count).unwrap_or(0).min(1 << 16));
    for _ in 0..count.max(0) {
        names.push(r.read_ustring()?);
    }
    Ok(names)
}

/// The first reply of a connection. A server that refuses the session answers
/// with timeout 0 (or session id 0).
pub fn decode_connect_response(frame: &[u8]) -> Result<ConnectResponse, DecodeError> {
    ConnectResponse::decode(&mut Reader::new(frame))
}

/// The header of a reply frame (the body is not decoded on the hot path).
pub fn decode_reply_header(frame: &[u8]) -> Result<ReplyHeader, DecodeError> {
    ReplyHeader::decode(&mut Reader::new(frame))
}

/// Why the bytes from a server cannot be cut into frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadFrameLength(pub i32);

/// Cuts the next whole frame off `buf`: `Ok(Some((payload_range, consumed)))`
/// when a whole frame is there, `Ok(None)` when more bytes are needed.
pub fn next_frame(buf: &[u8]) -> Result<Option<(std::ops::Range<usize>, usize)>, BadFrameLength> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let length = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if length < 0 || length as usize > FRAME_BYTES_MAX {
        return Err(BadFrameLength(length));
    }
    let end = 4 + length as usize;
    if buf.len() < end {
        return Ok(None);
    }
    Ok(Some((4..end, end)))
}

#[cfg(test)]
mod tests {
    //! Proves the hand-written encoders produce exactly `proto`'s bytes.
    use super::*;
    use proto::ops::{
        encode_request, CreateRequest, DeleteRequest, GetChildrenRequest, GetDataRequest, Request,
        SetDataRequest,
    };
    use proto::Acl;

    fn frame(f: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut out = vec![0xAA; 3]; // a frame must not depend on where it starts
        f(&mut out);
        out.split_off(3)
    }

    #[test]
    fn create_matches_proto() {
        let data = vec![7u8; 100];
        let expected = encode_request(
            5,
            &Request::Create(CreateRequest {
                path: "/fkbench/x".into(),
                data: Some(data.clone()),
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
        );
        assert_eq!(frame(|o| put_create(o, 5, "/fkbench/x", &data)), expected);
    }

    #[test]
    fn set_get_list_delete_match_proto() {
        let data = b"value".to_vec();
        let cases: Vec<(Vec<u8>, Request)> = vec![
            (
                frame(|o| put_set_data(o, 9, "/a", &data)),
                Request::SetData(SetDataRequest {
                    path: "/a".into(),
                    data: Some(data.clone()),
                    version: -1,
                }),
            ),
            (
                frame(|o| put_get_data(o, 9, "/a")),
                Request::GetData(GetDataRequest {
                    path: "/a".into(),
                    watch: false,
                }),
            ),
            (
                frame(|o| put_get_children(o, 9, "/a")),
                Request::GetChildren(GetChildrenRequest {
                    path: "/a".into(),
                    watch: false,
                }),
            ),
            (
                frame(|o| put_delete(o, 9, "/a")),
                Request::Delete(DeleteRequest {
                    path: "/a".into(),
                    version: -1,
                }),
            ),
            (frame(|o| put_close_session(o, 9)), Request::CloseSession),
            (
                frame(|o| put_sync(o, 9, "/a")),
                Request::Sync(proto::ops::SyncRequest { path: "/a".into() }),
            ),
        ];
        for (ours, request) in cases {
            assert_eq!(ours, encode_request(9, &request), "{request:?}");
        }
        assert_eq!(
            frame(put_ping),
            encode_request(proto::xid::PING, &Request::Ping)
        );
    }

    #[test]
    fn connect_frame_is_the_45_byte_form() {
        let bytes = frame(|o| put_connect(o, 30_000));
        assert_eq!(bytes.len(), 4 + 45);
        let request = ConnectRequest::from_bytes(&bytes[4..]).unwrap();
        assert_eq!(request.timeout_ms, 30_000);
        assert_eq!(request.read_only, Some(false));
    }

    /// A resumed session's handshake carries its id, password and last zxid.
    #[test]
    fn reconnect_frame_carries_the_session() {
        let bytes = frame(|o| put_reconnect(o, 30_000, 0x1234, &[7; 16], 99));
        assert_eq!(bytes.len(), 4 + 45);
        let request = ConnectRequest::from_bytes(&bytes[4..]).unwrap();
        assert_eq!(
            (
                request.session_id,
                request.last_zxid_seen,
                request.password.as_slice()
            ),
            (0x1234, 99, &[7u8; 16][..])
        );
    }

    /// getChildren bodies decode to their names, and a short body is an error.
    #[test]
    fn children_decode() {
        let mut w = proto::Writer::new();
        w.write_i32(2);
        w.write_ustring("a");
        w.write_ustring("bc");
        let body = w.as_slice().to_vec();
        assert_eq!(decode_children(&body).unwrap(), vec!["a", "bc"]);
        assert!(decode_children(&body[..body.len() - 1]).is_err());
    }

    #[test]
    fn frames_are_cut_only_when_whole() {
        let mut buf = Vec::new();
        put_ping(&mut buf);
        put_ping(&mut buf);
        assert_eq!(next_frame(&buf[..3]), Ok(None));
        assert_eq!(next_frame(&buf[..11]), Ok(None));
        assert_eq!(next_frame(&buf), Ok(Some((4..12, 12))));
        assert_eq!(next_frame(&(-5i32).to_be_bytes()), Err(BadFrameLength(-5)));
    }
}
