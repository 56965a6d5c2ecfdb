//! A small blocking ZooKeeper client for the work around a run: creating the
//! namespace and the key space before it, checking that a server is up.
//! Requests are pipelined in windows so that setting up 100,000 keys takes
//! seconds, not one fsync each.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use proto::{ErrorCode, Reader};

use crate::wire;

/// Requests in flight at once during setup.
const PIPELINE_WINDOW: usize = 256;

/// A reply: its error code and, when OK, its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub err: i32,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn is_ok(&self) -> bool {
        self.err == 0
    }
}

#[derive(Debug)]
pub struct SyncClient {
    stream: TcpStream,
    next_xid: i32,
    pub session_id: i64,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl SyncClient {
    /// Connects and opens a session; `timeout` bounds the TCP connect and
    /// every read.
    pub fn connect(addr: SocketAddr, timeout: Duration) -> io::Result<SyncClient> {
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        let mut client = SyncClient {
            stream,
            next_xid: 1,
            session_id: 0,
        };
        let mut out = Vec::new();
        wire::put_connect(&mut out, 30_000);
        client.stream.write_all(&out)?;
        let frame = client.read_frame()?;
        let response =
            wire::decode_connect_response(&frame).map_err(|e| invalid(format!("connect: {e}")))?;
        if response.timeout_ms <= 0 || response.session_id == 0 {
            return Err(invalid("server refused the session"));
        }
        client.session_id = response.session_id;
        Ok(client)
    }

    fn read_frame(&mut self) -> io::Result<Vec<u8>> {
        let mut length = [0u8; 4];
        self.stream.read_exact(&mut length)?;
        let length = i32::from_be_bytes(length);
        if length < 0 || length as usize > wire::FRAME_BYTES_MAX {
            return Err(invalid(format!("bad frame length {length}")));
        }
        let mut frame = vec![0; length as usize];
        self.stream.read_exact(&mut frame)?;
        Ok(frame)
    }

    /// Sends `count` requests, `PIPELINE_WINDOW` at a time; `put(i, xid, out)`
    /// appends request `i`. Returns the replies in request order.
    pub fn pipeline(
        &mut self,
        count: usize,
        mut put: impl FnMut(usize, i32, &mut Vec<u8>),
    ) -> io::Result<Vec<Reply>> {
        let mut replies = Vec::with_capacity(count);
        let mut out = Vec::new();
        let mut sent = 0;
        while replies.len() < count {
            let window_end = (replies.len() + PIPELINE_WINDOW).min(count);
            let first_xid = self.next_xid;
            out.clear();
            while sent < window_end {
                put(sent, self.next_xid, &mut out);
                self.next_xid += 1;
                sent += 1;
            }
            self.stream.write_all(&out)?;
            let mut expected_xid = first_xid;
            while replies.len() < window_end {
                let frame = self.read_frame()?;
                let header = wire::decode_reply_header(&frame)
                    .map_err(|e| invalid(format!("reply header: {e}")))?;
                if header.xid < 0 {
                    continue; // notification or ping
                }
                if header.xid != expected_xid {
                    return Err(invalid(format!(
                        "xid out of order: expected {expected_xid}, got {}",
                        header.xid
                    )));
                }
                expected_xid += 1;
                replies.push(Reply {
                    err: header.err,
                    body: frame[16..].to_vec(),
                });
            }
        }
        Ok(replies)
    }

    /// One request.
    pub fn call(&mut self, put: impl FnOnce(i32, &mut Vec<u8>)) -> io::Result<Reply> {
        let mut put = Some(put);
        let mut replies = self.pipeline(1, |_, xid, out| {
            (put.take().expect("called once"))(xid, out)
        })?;
        Ok(replies.pop().expect("one reply"))
    }

    /// Creates `path` unless it exists.
    pub fn ensure(&mut self, path: &str, data: &[u8]) -> io::Result<()> {
        let reply = self.call(|xid, out| wire::put_create(out, xid, path, data))?;
        match reply.err {
            0 => Ok(()),
            e if e == ErrorCode::NodeExists.code() => Ok(()),
            e => Err(invalid(format!("create {path}: error {e}"))),
        }
    }

    /// getData: `Ok(None)` when the node does not exist.
    pub fn get_data(&mut self, path: &str) -> io::Result<Option<Vec<u8>>> {
        let reply = self.call(|xid, out| wire::put_get_data(out, xid, path))?;
        match reply.err {
            0 => {
                let mut r = Reader::new(&reply.body);
                let data = r
                    .read_buffer()
                    .map_err(|e| invalid(format!("getData body: {e}")))?;
                Ok(Some(data))
            }
            e if e == ErrorCode::NoNode.code() => Ok(None),
            e => Err(invalid(format!("getData {path}: error {e}"))),
        }
    }

    /// sync(path): returns once the server has caught up with the leader.
    pub fn sync(&mut self, path: &str) -> io::Result<()> {
        let reply = self.call(|xid, out| wire::put_sync(out, xid, path))?;
        match reply.err {
            0 => Ok(()),
            e => Err(invalid(format!("sync {path}: error {e}"))),
        }
    }

    /// getChildren: the names, or `Ok(None)` when the node does not exist.
    pub fn get_children(&mut self, path: &str) -> io::Result<Option<Vec<String>>> {
        let reply = self.call(|xid, out| wire::put_get_children(out, xid, path))?;
        match reply.err {
            0 => wire::decode_children(&reply.body)
                .map(Some)
                .map_err(|e| invalid(format!("getChildren body: {e}"))),
            e if e == ErrorCode::NoNode.code() => Ok(None),
            e => Err(invalid(format!("getChildren {path}: error {e}"))),
        }
    }

    /// Closes the session (best effort: the server may close first).
    pub fn close(mut self) {
        let xid = self.next_xid;
        let mut out = Vec::new();
        wire::put_close_session(&mut out, xid);
        if self.stream.write_all(&out).is_ok() {
            let _ = self.read_frame();
        }
    }
}
