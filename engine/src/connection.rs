//! One client connection: framing, the handshake, four-letter words, and
//! moving frames between the socket and the sequencer.
//!
//! A connection is one task on the executor it was placed on
//! ([`crate::placement`]). It decodes each frame here (so decoding scales
//! with the executors) and sends the typed request to the sequencer;
//! replies and notifications come back through a bounded outbox and are
//! written in the order they were queued. Reading and writing are pumped by
//! one hand-written poll loop ([`Connection::poll_input`])
//! so that a slow reader never stalls the writer and no future is ever dropped
//! half-way through a socket operation. The stream is plain TCP or TLS; the
//! loop only needs `AsyncRead + AsyncWrite`.
//!
//! What one client can make the server hold is bounded:
//!
//! - requests: the connection takes no frame off its socket while
//!   `outstanding_max` requests await replies (`globalOutstandingLimit`,
//!   applied per connection and per request) or while
//!   [`REQUEST_BYTES_IN_FLIGHT_MAX`] bytes of requests do;
//! - replies: it takes everything the outbox brings at once, counts it as
//!   unwritten, and reports what it writes to the node
//!   ([`ToSequencer::Written`]), which takes no more of its requests while
//!   `unsent_bytes_max` bytes are unwritten (the node's credit). At that bound
//!   the connection also stops reading; if it stays there for the session's
//!   timeout — a client that reads nothing for that long has given up on the
//!   connection itself — it is closed, logged with the peer;
//! - time before the handshake: a connection that has not sent its
//!   ConnectRequest within `handshake_timeout` is closed, so idle sockets
//!   cannot use up `maxClientCnxns`.

use std::collections::VecDeque;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_lite::{AsyncRead, AsyncWrite, Stream};
use glommio::timer::Timer;
use proto::ops::Request;
use proto::{ConnectRequest, Id, OpCode, Reader, Record, RequestHeader};
use tracing::{debug, info, warn};

use crate::fourlw;
use crate::messages::{
    ConnId, OutFrame, RequestFrame, ToSequencer, OUTBOX_BATCHES_MAX, REQUESTS_PER_MESSAGE_MAX,
};

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 64 * 1024;

/// Request bytes (frames handed to the sequencer and not yet answered) one
/// connection may have in flight; one more request of any size is always
/// taken below it.
pub const REQUEST_BYTES_IN_FLIGHT_MAX: usize = 4 * 1024 * 1024;

/// Gathering replies into one socket write stops at this many bytes.
const GATHER_BYTES_MAX: usize = 256 * 1024;

#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub frame_bytes_max: usize,
    pub outstanding_max: usize,
    /// The node's credit per connection (`ferrokeeper.unsentReplyBytesMax`).
    pub unsent_bytes_max: u64,
    /// How long a new connection has to send its ConnectRequest.
    pub handshake_timeout: Duration,
    /// How long a connection may stay at its unsent bound before the session
    /// timeout is known (maxSessionTimeout).
    pub stall_timeout_default: Duration,
    /// The whitelist of four-letter words.
    pub config: std::sync::Arc<crate::config::Config>,
    /// What four-letter words report about the host.
    pub host: std::sync::Arc<fourlw::HostContext>,
}

/// What the poll loop produced.
enum Input {
    /// A complete frame's payload (without the length prefix).
    Frame(Vec<u8>),
    /// The first four bytes of the connection spell a four-letter word.
    FourLetterWord(String),
    /// The peer closed the connection or the socket failed.
    Eof(Option<io::Error>),
    /// The length prefix is negative or over `frame_bytes_max`.
    FrameTooLarge(i64),
    /// The sequencer asked for the connection to be closed, and the outbox is flushed.
    CloseRequested,
    /// This many bytes were written and not yet reported to the node.
    Written(u64),
    /// No ConnectRequest came within the handshake timeout.
    HandshakeTimeout,
    /// The connection stayed at its unsent bound (or could not flush before
    /// closing) for the stall timeout.
    Stalled,
}

/// How a connection ended.
struct Ended {
    /// The sequencer knows the connection and must be told it closed.
    registered: bool,
    /// What is queued may still be written (false when the client is not
    /// reading: waiting for it would hold the connection).
    flush: bool,
}

struct Connection<S> {
    conn: ConnId,
    peer: SocketAddr,
    stream: S,
    settings: ConnectionSettings,
    /// Identities the transport established (the TLS client certificate's).
    transport_auth: Vec<Id>,
    /// Bytes read and not yet parsed into frames.
    read_buffer: Vec<u8>,
    /// Bytes being written; `write_offset` is how far they are written.
    write_buffer: Vec<u8>,
    write_offset: usize,
    /// Batches taken from the outbox and not yet in `write_buffer`.
    pending: VecDeque<Vec<u8>>,
    /// Bytes in `write_buffer` past `write_offset` and in `pending`.
    unwritten: u64,
    /// Bytes written and not yet reported to the node.
    written_unreported: u64,
    /// Whether anything was written since the stream was last flushed (TLS
    /// holds records until flushed).
    needs_flush: bool,
    /// Boxed because async-channel's receiver is not `Unpin`.
    outbox: Option<Pin<Box<async_channel::Receiver<OutFrame>>>>,
    /// Requests sent to the sequencer whose replies are not yet taken from
    /// the outbox, oldest first, by size (replies come in request order).
    in_flight: VecDeque<usize>,
    request_bytes_in_flight: usize,
    close_requested: bool,
    handshake_done: bool,
    /// The first batch (beginning with the ConnectResponse) has come.
    session_timeout_seen: bool,
    /// The negotiated session timeout once seen, else `stall_timeout_default`.
    stall_timeout: Duration,
    /// Armed while the handshake is awaited, or while the connection is
    /// stalled (at its unsent bound, or closing with bytes unwritten).
    deadline: Option<Timer>,
    /// Whether `deadline` is the stall timer (else the handshake's).
    stall_armed: bool,
    /// Input parsed while gathering a batch, handled on the next turn.
    stashed: Option<Input>,
}

/// Serves one accepted connection until it ends. `transport_auth` holds the
/// identities its transport proved (a TLS client certificate's `x509` id).
pub async fn serve<S>(
    conn: ConnId,
    stream: S,
    peer: SocketAddr,
    transport_auth: Vec<Id>,
    settings: ConnectionSettings,
    to_sequencer: async_channel::Sender<ToSequencer>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let handshake_timeout = settings.handshake_timeout;
    let stall_timeout = settings.stall_timeout_default;
    let mut connection = Connection {
        conn,
        peer,
        stream,
        settings,
        transport_auth,
        read_buffer: Vec::with_capacity(READ_CHUNK),
        write_buffer: Vec::new(),
        write_offset: 0,
        pending: VecDeque::new(),
        unwritten: 0,
        written_unreported: 0,
        needs_flush: false,
        outbox: None,
        in_flight: VecDeque::new(),
        request_bytes_in_flight: 0,
        close_requested: false,
        handshake_done: false,
        session_timeout_seen: false,
        stall_timeout,
        deadline: Some(Timer::new(handshake_timeout)),
        stall_armed: false,
        stashed: None,
    };
    let ended = connection.run(&to_sequencer).await;
    if ended.flush {
        // Bounded: a client that stops reading now must not hold the task
        // (closing TLS writes a close_notify, which can block as well).
        let timeout = connection.stall_timeout;
        let close = async {
            connection.flush().await;
            let _ =
                futures_lite::future::poll_fn(|cx| Pin::new(&mut connection.stream).poll_close(cx))
                    .await;
        };
        futures_lite::future::or(close, async {
            Timer::new(timeout).await;
        })
        .await;
    }
    // Dropping the stream closes the socket, whatever is left unwritten.
    drop(connection);
    if ended.registered {
        // The sequencer may be shutting down; nothing to do if it is gone.
        let _ = to_sequencer.send(ToSequencer::Closed { conn }).await;
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Connection<S> {
    /// Serves the connection until it ends.
    async fn run(&mut self, to_sequencer: &async_channel::Sender<ToSequencer>) -> Ended {
        let ended = |registered| Ended {
            registered,
            flush: true,
        };
        loop {
            let input = std::future::poll_fn(|cx| self.poll_input(cx)).await;
            let message = match input {
                Input::Frame(payload) if !self.handshake_done => match self.handshake(&payload) {
                    Some(message) => message,
                    None => return ended(false),
                },
                Input::Frame(payload) => {
                    let (requests, malformed) = self.gather_requests(payload);
                    if !requests.is_empty() {
                        let message = ToSequencer::Requests {
                            conn: self.conn,
                            requests,
                        };
                        if !self.send(to_sequencer, message).await {
                            return ended(true);
                        }
                    }
                    if malformed {
                        return ended(true);
                    }
                    continue;
                }
                Input::Written(bytes) => ToSequencer::Written {
                    conn: self.conn,
                    bytes,
                },
                Input::FourLetterWord(word) => {
                    self.four_letter_word(word, to_sequencer).await;
                    return ended(false);
                }
                Input::Eof(err) => {
                    match err {
                        Some(err) => info!(peer = %self.peer, %err, "connection broken"),
                        None => debug!(peer = %self.peer, "connection closed by client"),
                    }
                    return ended(self.handshake_done);
                }
                Input::FrameTooLarge(length) => {
                    warn!(peer = %self.peer, length, max = self.settings.frame_bytes_max,
                        "closing connection: frame length over jute.maxbuffer");
                    return ended(self.handshake_done);
                }
                Input::CloseRequested => return ended(self.handshake_done),
                Input::HandshakeTimeout => {
                    info!(peer = %self.peer, timeout_ms = self.settings.handshake_timeout.as_millis() as u64,
                        "closing connection: no ConnectRequest within the handshake timeout");
                    return Ended {
                        registered: false,
                        flush: false,
                    };
                }
                Input::Stalled => {
                    warn!(peer = %self.peer, unwritten_bytes = self.unwritten,
                        timeout_ms = self.stall_timeout.as_millis() as u64,
                        "closing connection: the client has not read its replies for its session timeout");
                    return Ended {
                        registered: self.handshake_done,
                        flush: false,
                    };
                }
            };
            if !self.send(to_sequencer, message).await {
                return ended(self.handshake_done);
            }
        }
    }

    /// Sends to the sequencer, keeping the socket's writes moving while the
    /// sequencer's inbox is full. Returns false if the sequencer is gone.
    async fn send(
        &mut self,
        to_sequencer: &async_channel::Sender<ToSequencer>,
        message: ToSequencer,
    ) -> bool {
        let message = match to_sequencer.try_send(message) {
            Ok(()) => return true,
            Err(async_channel::TrySendError::Closed(_)) => return false,
            Err(async_channel::TrySendError::Full(message)) => message,
        };
        let send = to_sequencer.send(message);
        futures_lite::pin!(send);
        std::future::poll_fn(|cx| {
            if let Poll::Ready(result) = send.as_mut().poll(cx) {
                return Poll::Ready(result.is_ok());
            }
            // Keep writing replies so that the sequencer can make progress.
            let _ = self.poll_write_side(cx);
            Poll::Pending
        })
        .await
    }

    fn handshake(&mut self, payload: &[u8]) -> Option<ToSequencer> {
        let request = match ConnectRequest::from_bytes(payload) {
            Ok(request) => request,
            Err(err) => {
                warn!(peer = %self.peer, %err, "closing connection: malformed ConnectRequest");
                return None;
            }
        };
        let (outbox_sender, outbox) = async_channel::bounded(OUTBOX_BATCHES_MAX);
        self.outbox = Some(Box::pin(outbox));
        self.handshake_done = true;
        self.deadline = None;
        // The ConnectResponse is this request's reply.
        self.track_request(payload.len());
        Some(ToSequencer::Connect {
            conn: self.conn,
            peer: self.peer,
            request,
            auth: std::mem::take(&mut self.transport_auth),
            outbox: outbox_sender,
        })
    }

    /// Decodes this frame and every further complete frame already read, up
    /// to the per-message and in-flight bounds. Returns them and whether a
    /// malformed header ended the connection.
    fn gather_requests(&mut self, first: Vec<u8>) -> (Vec<RequestFrame>, bool) {
        let mut requests = Vec::new();
        let mut payload = first;
        loop {
            match self.request(&payload) {
                Some(request) => requests.push(request),
                None => return (requests, true),
            }
            if requests.len() >= REQUESTS_PER_MESSAGE_MAX || !self.takes_frames() {
                return (requests, false);
            }
            match self.parse_buffered() {
                Some(Input::Frame(next)) => payload = next,
                Some(other) => {
                    self.stashed = Some(other);
                    return (requests, false);
                }
                None => return (requests, false),
            }
        }
    }

    fn request(&mut self, payload: &[u8]) -> Option<RequestFrame> {
        let mut reader = Reader::new(payload);
        let header = match RequestHeader::decode(&mut reader) {
            Ok(header) => header,
            Err(err) => {
                warn!(peer = %self.peer, %err, "closing connection: malformed request header");
                return None;
            }
        };
        // Bytes after a complete record are ignored, as jute does; nulls are
        // noted where the client sent them, for the node to answer as
        // ZooKeeper does.
        let (body, nulls) = match OpCode::from_code(header.op) {
            Some(op) => match Request::decode_with_nulls(op, &mut reader) {
                Ok((request, nulls)) => (Ok(request), nulls),
                Err(err) => (Err(err), proto::Nulls::default()),
            },
            None => (
                Err(proto::DecodeError::UnknownOpCode(header.op)),
                proto::Nulls::default(),
            ),
        };
        self.track_request(payload.len());
        Some(RequestFrame {
            xid: header.xid,
            op: header.op,
            body,
            nulls,
        })
    }

    /// Counts a request handed to the sequencer until its reply comes.
    fn track_request(&mut self, payload_bytes: usize) {
        let bytes = 4 + payload_bytes;
        self.in_flight.push_back(bytes);
        self.request_bytes_in_flight += bytes;
    }

    /// Whether another frame may be taken off the read buffer (and so whether
    /// the socket is read): within the request bounds, and while the replies
    /// unwritten stay under the credit.
    fn takes_frames(&self) -> bool {
        !self.close_requested
            && self.in_flight.len() < self.settings.outstanding_max
            && self.request_bytes_in_flight < REQUEST_BYTES_IN_FLIGHT_MAX
            && !self.at_unsent_bound()
    }

    /// Whether the node sees this connection's credit as used up: everything
    /// it handed over is either unwritten or written and unreported.
    fn at_unsent_bound(&self) -> bool {
        self.unwritten + self.written_unreported >= self.settings.unsent_bytes_max
    }

    async fn four_letter_word(
        &mut self,
        word: String,
        to_sequencer: &async_channel::Sender<ToSequencer>,
    ) {
        info!(peer = %self.peer, word, "four-letter word");
        if !self.settings.config.four_letter_word_enabled(&word) {
            let text = fourlw::refusal(&word);
            self.queue_bytes(text.into_bytes());
            return;
        }
        let (reply, answer) = async_channel::bounded(1);
        let message = ToSequencer::FourLetterWord {
            word: word.clone(),
            peer: self.peer,
            reply,
        };
        if to_sequencer.send(message).await.is_err() {
            return;
        }
        let Ok(report) = answer.recv().await else {
            return;
        };
        // The host's figures need system calls: a blocking thread reads them.
        let host = std::sync::Arc::clone(&self.settings.host);
        let text = glommio::executor()
            .spawn_blocking(move || fourlw::render(&word, &host.complete(&word, *report)))
            .await;
        self.queue_bytes(text.into_bytes());
    }

    fn queue_bytes(&mut self, bytes: Vec<u8>) {
        self.unwritten += bytes.len() as u64;
        self.pending.push_back(bytes);
    }

    /// Writes everything queued (used when the connection ends).
    async fn flush(&mut self) {
        std::future::poll_fn(|cx| match self.poll_write_side(cx) {
            Poll::Ready(Ok(())) if self.unwritten == 0 && !self.needs_flush => Poll::Ready(()),
            Poll::Ready(Err(_)) => Poll::Ready(()),
            _ => Poll::Pending,
        })
        .await;
    }

    fn poll_input(&mut self, cx: &mut Context<'_>) -> Poll<Input> {
        if let Some(input) = self.stashed.take() {
            return Poll::Ready(input);
        }
        if let Poll::Ready(Err(err)) = self.poll_write_side(cx) {
            return Poll::Ready(Input::Eof(Some(err)));
        }
        if self.handshake_done && self.written_unreported >= self.report_threshold() {
            return Poll::Ready(Input::Written(std::mem::take(&mut self.written_unreported)));
        }
        if self.close_requested && self.unwritten == 0 && !self.needs_flush {
            return Poll::Ready(Input::CloseRequested);
        }
        if let Poll::Ready(input) = self.poll_deadline(cx) {
            return Poll::Ready(input);
        }
        loop {
            if !self.takes_frames() {
                // Throttled: replies must drain (or the node answer) first.
                return Poll::Pending;
            }
            if let Some(input) = self.parse_buffered() {
                return Poll::Ready(input);
            }
            let start = self.read_buffer.len();
            self.read_buffer.resize(start + READ_CHUNK, 0);
            let read = Pin::new(&mut self.stream).poll_read(cx, &mut self.read_buffer[start..]);
            match read {
                Poll::Ready(Ok(0)) => {
                    self.read_buffer.truncate(start);
                    return Poll::Ready(Input::Eof(None));
                }
                Poll::Ready(Ok(n)) => self.read_buffer.truncate(start + n),
                Poll::Ready(Err(err)) => {
                    self.read_buffer.truncate(start);
                    return Poll::Ready(Input::Eof(Some(err)));
                }
                Poll::Pending => {
                    self.read_buffer.truncate(start);
                    return Poll::Pending;
                }
            }
        }
    }

    /// Bytes written that are worth a report: half the credit, so that a
    /// client that reads always gets the node answering again (the node
    /// stops at the whole credit, and then at least half of it is unwritten
    /// here, to be written and reported).
    fn report_threshold(&self) -> u64 {
        (self.settings.unsent_bytes_max / 2).max(1)
    }

    /// Arms, disarms and polls the handshake or stall timer.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<Input> {
        if self.handshake_done {
            let stalled = self.at_unsent_bound() || (self.close_requested && self.unwritten > 0);
            if stalled && !self.stall_armed {
                self.deadline = Some(Timer::new(self.stall_timeout));
                self.stall_armed = true;
            } else if !stalled && self.stall_armed {
                self.deadline = None;
                self.stall_armed = false;
            }
        }
        let Some(timer) = self.deadline.as_mut() else {
            return Poll::Pending;
        };
        match Pin::new(timer).poll(cx) {
            Poll::Ready(_) if self.stall_armed => Poll::Ready(Input::Stalled),
            Poll::Ready(_) => Poll::Ready(Input::HandshakeTimeout),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Takes one complete frame (or a four-letter word) off the read buffer.
    fn parse_buffered(&mut self) -> Option<Input> {
        if self.read_buffer.len() < 4 {
            return None;
        }
        let prefix = [
            self.read_buffer[0],
            self.read_buffer[1],
            self.read_buffer[2],
            self.read_buffer[3],
        ];
        if !self.handshake_done {
            if let Some(word) = fourlw::recognise(prefix) {
                return Some(Input::FourLetterWord(word.to_string()));
            }
        }
        let length = i64::from(i32::from_be_bytes(prefix));
        if length < 0 || length as usize > self.settings.frame_bytes_max {
            return Some(Input::FrameTooLarge(length));
        }
        let total = 4 + length as usize;
        if self.read_buffer.len() < total {
            return None;
        }
        let payload = self.read_buffer[4..total].to_vec();
        self.read_buffer.drain(..total);
        Some(Input::Frame(payload))
    }

    /// Takes everything the outbox holds, then writes until the socket would
    /// block.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.take_outbox(cx);
        loop {
            if self.write_offset >= self.write_buffer.len() && !self.refill_write_buffer() {
                if self.needs_flush {
                    match Pin::new(&mut self.stream).poll_flush(cx) {
                        Poll::Ready(Ok(())) => self.needs_flush = false,
                        Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                        Poll::Pending => return Poll::Pending,
                    }
                }
                return Poll::Ready(Ok(()));
            }
            let unwritten = &self.write_buffer[self.write_offset..];
            match Pin::new(&mut self.stream).poll_write(cx, unwritten) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.write_offset += n;
                    self.unwritten -= n as u64;
                    self.written_unreported += n as u64;
                    self.needs_flush = true;
                }
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Moves what the outbox holds into `pending`: the node bounds it in bytes.
    fn take_outbox(&mut self, cx: &mut Context<'_>) {
        loop {
            let Some(outbox) = self.outbox.as_mut() else {
                return;
            };
            match outbox.as_mut().poll_next(cx) {
                Poll::Ready(Some(OutFrame::Frames { bytes, replies })) => {
                    for _ in 0..replies {
                        let bytes = self.in_flight.pop_front().unwrap_or(0);
                        self.request_bytes_in_flight -= bytes;
                    }
                    if !self.session_timeout_seen {
                        self.session_timeout_seen = true;
                        self.learn_session_timeout(&bytes);
                    }
                    self.unwritten += bytes.len() as u64;
                    self.pending.push_back(bytes);
                }
                Poll::Ready(Some(OutFrame::Close)) | Poll::Ready(None) => {
                    self.close_requested = true;
                    self.outbox = None;
                    return;
                }
                Poll::Pending => return,
            }
        }
    }

    /// The first frame a connection is sent is its ConnectResponse
    /// (length, protocolVersion, timeOut, ...): its timeout becomes the
    /// stall timeout.
    fn learn_session_timeout(&mut self, first_batch: &[u8]) {
        let Some(field) = first_batch.get(8..12) else {
            return;
        };
        let timeout_ms = i32::from_be_bytes(field.try_into().expect("four bytes"));
        if timeout_ms > 0 {
            self.stall_timeout = Duration::from_millis(timeout_ms as u64);
        }
    }

    /// Fills the write buffer from `pending`; false if nothing is pending. A
    /// large batch becomes the buffer as it is; small ones are gathered.
    fn refill_write_buffer(&mut self) -> bool {
        self.write_buffer.clear();
        self.write_offset = 0;
        let Some(first) = self.pending.pop_front() else {
            return false;
        };
        self.write_buffer = first;
        while self.write_buffer.len() < GATHER_BYTES_MAX {
            match self.pending.front() {
                Some(next) if self.write_buffer.len() + next.len() <= GATHER_BYTES_MAX => {
                    let next = self.pending.pop_front().expect("front exists");
                    self.write_buffer.extend_from_slice(&next);
                }
                _ => break,
            }
        }
        true
    }
}
