//! One ZooKeeper session of the load generator: a non-blocking socket, its
//! output and input buffers, and the FIFO of requests it has in flight.
//!
//! ```text
//! Connecting --writable--> Handshake --ConnectResponse--> Ready --closeSession--> Closing --> Closed
//!      \                        \                           \
//!       +-------- any socket error, bad frame, xid out of order --------> Failed
//! ```
//!
//! ZooKeeper answers a session's requests in the order it sent them, so the
//! in-flight requests are a queue and every reply must carry the xid at its
//! front; anything else is a protocol error that ends the session (the Java
//! client does the same: "Xid out of order"). Watch notifications (xid -1) and
//! ping replies (xid -2) are not in the queue and are skipped.
//!
//! Requests are appended to `out` as they are issued and written with one
//! `write` per session per event-loop turn, so a pipeline refilled by a burst
//! of replies goes out in one segment.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::SocketAddr;

use mio::net::TcpStream;

use crate::wire;
use crate::workload::{OpKind, OpSource};

/// Initial size of a session's input buffer; it grows for larger replies up
/// to [`wire::FRAME_BYTES_MAX`].
const INPUT_BYTES_INITIAL: usize = 32 << 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionPhase {
    Connecting,
    Handshake,
    Ready,
    Closing,
    Closed,
    Failed,
}

/// A request in flight.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    xid: i32,
    kind: OpKind,
    /// When the request was meant to be sent, ns since the run's start.
    intended_ns: u64,
}

/// What the event loop learns from a session's replies.
pub trait ReplySink {
    /// A reply to a request of `kind` meant to be sent at `intended_ns`
    /// arrived at `now_ns` with error code `err` (0 = OK).
    fn reply(&mut self, kind: OpKind, intended_ns: u64, now_ns: u64, err: i32);
    /// A request will never be answered: `lost` says whether its connection
    /// was lost (CONNECTIONLOSS) rather than the run giving up waiting.
    fn unanswered(&mut self, kind: OpKind, intended_ns: u64, lost: bool);
}

/// Why a session stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionFailure {
    Refused,
    Io(io::ErrorKind),
    PeerClosed,
    BadFrame(i32),
    Undecodable,
    XidOutOfOrder { expected: i32, got: i32 },
}

#[derive(Debug)]
pub struct Session {
    /// Global index (names, open-loop phase).
    pub index: usize,
    stream: TcpStream,
    pub phase: SessionPhase,
    pub failure: Option<SessionFailure>,
    out: Vec<u8>,
    out_written: usize,
    input: Vec<u8>,
    input_filled: usize,
    in_flight: VecDeque<InFlight>,
    next_xid: i32,
    close_xid: i32,
    source: OpSource,
    pub session_id: i64,
    pub negotiated_timeout_ms: i32,
    requested_timeout_ms: i32,
    /// Open loop: the number of this session's scheduled sends so far.
    pub scheduled: u64,
    last_send_ns: u64,
}

impl Session {
    /// Starts a non-blocking connect; register the stream before polling.
    pub fn connect(
        addr: SocketAddr,
        index: usize,
        source: OpSource,
        timeout_ms: i32,
    ) -> io::Result<Session> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Session {
            index,
            stream,
            phase: SessionPhase::Connecting,
            failure: None,
            out: Vec::with_capacity(8 << 10),
            out_written: 0,
            input: vec![0; INPUT_BYTES_INITIAL],
            input_filled: 0,
            in_flight: VecDeque::new(),
            next_xid: 1,
            close_xid: 0,
            source,
            session_id: 0,
            negotiated_timeout_ms: 0,
            requested_timeout_ms: timeout_ms,
            scheduled: 0,
            last_send_ns: 0,
        })
    }

    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    pub fn is_ready(&self) -> bool {
        self.phase == SessionPhase::Ready
    }

    pub fn is_done(&self) -> bool {
        matches!(self.phase, SessionPhase::Closed | SessionPhase::Failed)
    }

    fn take_xid(&mut self) -> i32 {
        let xid = self.next_xid;
        // Positive xids only; the negative ones are ZooKeeper's special xids.
        self.next_xid = if xid == i32::MAX { 1 } else { xid + 1 };
        xid
    }

    /// Appends the next request of the workload; the caller flushes.
    pub fn issue(&mut self, now_ns: u64, intended_ns: u64) {
        assert!(self.is_ready(), "issue on a session that is not ready");
        let xid = self.take_xid();
        let kind = self.source.next(xid, &mut self.out);
        self.in_flight.push_back(InFlight {
            xid,
            kind,
            intended_ns,
        });
        self.last_send_ns = now_ns;
    }

    /// Sends a ping when the session has been quiet for a third of its
    /// timeout, as ZooKeeper clients do, so a slow open-loop run keeps it.
    pub fn ping_if_idle(&mut self, now_ns: u64) {
        let idle_max_ns =
            u64::try_from(self.negotiated_timeout_ms.max(3)).unwrap_or(3) * 1_000_000 / 3;
        if self.is_ready() && now_ns.saturating_sub(self.last_send_ns) > idle_max_ns {
            wire::put_ping(&mut self.out);
            self.last_send_ns = now_ns;
        }
    }

    /// Queues closeSession; in-flight requests are still answered before it.
    pub fn start_close(&mut self) {
        if self.is_ready() {
            self.close_xid = self.take_xid();
            wire::put_close_session(&mut self.out, self.close_xid);
            self.phase = SessionPhase::Closing;
        }
    }

    pub fn has_output(&self) -> bool {
        self.out_written < self.out.len()
    }

    /// Writes as much queued output as the socket takes.
    pub fn flush(&mut self, sink: &mut impl ReplySink) {
        while self.has_output() && !self.is_done() {
            match self.stream.write(&self.out[self.out_written..]) {
                Ok(0) => self.fail(SessionFailure::PeerClosed, sink),
                Ok(n) => self.out_written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.fail(SessionFailure::Io(e.kind()), sink),
            }
        }
        if !self.has_output() {
            self.out.clear();
            self.out_written = 0;
        }
    }

    /// The socket became writable: finish connecting, then flush.
    pub fn on_writable(&mut self, sink: &mut impl ReplySink) {
        if self.phase == SessionPhase::Connecting {
            match self.stream.take_error() {
                Ok(Some(e)) | Err(e) => return self.fail(SessionFailure::Io(e.kind()), sink),
                Ok(None) => {}
            }
            match self.stream.peer_addr() {
                Ok(_) => {
                    wire::put_connect(&mut self.out, self.requested_timeout_ms);
                    self.phase = SessionPhase::Handshake;
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => return,
                Err(e) => return self.fail(SessionFailure::Io(e.kind()), sink),
            }
        }
        self.flush(sink);
    }

    /// The socket became readable: read until it would block, handing every
    /// whole reply to `sink`. `now_ns` is called once per successful read: all
    /// replies that arrived in one read share their arrival time.
    pub fn on_readable(&mut self, now_ns: impl Fn() -> u64, sink: &mut impl ReplySink) {
        while !self.is_done() {
            if self.input_filled == self.input.len() {
                let grown = (self.input.len() * 2).min(wire::FRAME_BYTES_MAX + 4);
                assert!(
                    grown > self.input.len(),
                    "a frame over FRAME_BYTES_MAX was not rejected"
                );
                self.input.resize(grown, 0);
            }
            match self.stream.read(&mut self.input[self.input_filled..]) {
                Ok(0) => return self.fail(SessionFailure::PeerClosed, sink),
                Ok(n) => {
                    self.input_filled += n;
                    let now = now_ns();
                    self.take_frames(now, sink);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail(SessionFailure::Io(e.kind()), sink),
            }
        }
    }

    fn take_frames(&mut self, now_ns: u64, sink: &mut impl ReplySink) {
        let mut consumed = 0;
        while !self.is_done() {
            match wire::next_frame(&self.input[consumed..self.input_filled]) {
                Ok(Some((range, length))) => {
                    let frame = (consumed + range.start)..(consumed + range.end);
                    consumed += length;
                    self.on_frame(frame, now_ns, sink);
                }
                Ok(None) => break,
                Err(bad) => return self.fail(SessionFailure::BadFrame(bad.0), sink),
            }
        }
        self.input.copy_within(consumed..self.input_filled, 0);
        self.input_filled -= consumed;
    }

    fn on_frame(&mut self, frame: std::ops::Range<usize>, now_ns: u64, sink: &mut impl ReplySink) {
        let bytes = &self.input[frame];
        if self.phase == SessionPhase::Handshake {
            match wire::decode_connect_response(bytes) {
                Ok(r) if r.timeout_ms > 0 && r.session_id != 0 => {
                    self.session_id = r.session_id;
                    self.negotiated_timeout_ms = r.timeout_ms;
                    self.phase = SessionPhase::Ready;
                    self.last_send_ns = now_ns;
                }
                Ok(_) => self.fail(SessionFailure::Refused, sink),
                Err(_) => self.fail(SessionFailure::Undecodable, sink),
            }
            return;
        }
        let Ok(header) = wire::decode_reply_header(bytes) else {
            return self.fail(SessionFailure::Undecodable, sink);
        };
        if header.xid == proto::xid::NOTIFICATION || header.xid == proto::xid::PING {
            return;
        }
        if self.phase == SessionPhase::Closing {
            // Replies to abandoned requests may still come before closeSession's.
            if header.xid == self.close_xid {
                self.phase = SessionPhase::Closed;
            }
            return;
        }
        match self.in_flight.front() {
            Some(front) if front.xid == header.xid => {
                let done = self.in_flight.pop_front().expect("front exists");
                sink.reply(done.kind, done.intended_ns, now_ns, header.err);
            }
            front => {
                let expected = front.map_or(0, |f| f.xid);
                self.fail(
                    SessionFailure::XidOutOfOrder {
                        expected,
                        got: header.xid,
                    },
                    sink,
                );
            }
        }
    }

    /// Ends the session: every request in flight is lost with it.
    pub fn fail(&mut self, failure: SessionFailure, sink: &mut impl ReplySink) {
        if self.is_done() {
            return;
        }
        self.phase = SessionPhase::Failed;
        self.failure = Some(failure);
        for lost in self.in_flight.drain(..) {
            sink.unanswered(lost.kind, lost.intended_ns, true);
        }
        self.out.clear();
        self.out_written = 0;
    }

    /// The run gives up on this session's outstanding requests.
    pub fn abandon(&mut self, sink: &mut impl ReplySink) {
        for lost in self.in_flight.drain(..) {
            sink.unanswered(lost.kind, lost.intended_ns, false);
        }
    }
}
