//! One client connection: framing, the handshake, four-letter words, and
//! moving frames between the socket and the sequencer.
//!
//! A connection is one task on the executor that accepted it. It decodes each
//! frame here (so decoding scales with the executors) and sends the typed
//! request to the sequencer; replies and notifications come back through a
//! bounded outbox and are written in the order they were queued. Reading and
//! writing are pumped by one hand-written poll loop ([`Connection::next_frame`])
//! so that a slow reader never stalls the writer and no future is ever dropped
//! half-way through a socket operation.
//!
//! A connection stops reading while `outstanding_max` requests await replies
//! (`globalOutstandingLimit`, applied per connection), which bounds what one
//! client can queue in the server.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_lite::{AsyncRead, AsyncWrite, Stream};
use glommio::net::TcpStream;
use proto::ops::Request;
use proto::{ConnectRequest, OpCode, Reader, Record, RequestHeader};
use tracing::{debug, info, warn};

use crate::fourlw;
use crate::messages::{
    ConnId, OutFrame, RequestFrame, ToSequencer, OUTBOX_BATCHES_MAX, REQUESTS_PER_MESSAGE_MAX,
};

/// Bytes read from the socket per read call.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    pub frame_bytes_max: usize,
    pub outstanding_max: usize,
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
}

struct Connection {
    conn: ConnId,
    peer: SocketAddr,
    stream: TcpStream,
    settings: ConnectionSettings,
    /// Bytes read and not yet parsed into frames.
    read_buffer: Vec<u8>,
    /// Bytes queued for the socket; `write_offset` is how far they are written.
    write_buffer: Vec<u8>,
    write_offset: usize,
    /// Boxed because async-channel's receiver is not `Unpin`.
    outbox: Option<Pin<Box<async_channel::Receiver<OutFrame>>>>,
    /// Requests sent to the sequencer whose replies are not yet written.
    outstanding: usize,
    close_requested: bool,
    handshake_done: bool,
    /// Input parsed while gathering a batch, handled on the next turn.
    stashed: Option<Input>,
}

pub async fn serve(
    conn: ConnId,
    stream: TcpStream,
    settings: ConnectionSettings,
    to_sequencer: async_channel::Sender<ToSequencer>,
) {
    let peer = match stream.peer_addr() {
        Ok(peer) => peer,
        Err(err) => {
            debug!(conn, %err, "connection gone before it could be served");
            return;
        }
    };
    // Latency matters more than packet count: replies go out as soon as they are queued.
    let _ = stream.set_nodelay(true);
    let mut connection = Connection {
        conn,
        peer,
        stream,
        settings,
        read_buffer: Vec::with_capacity(READ_CHUNK),
        write_buffer: Vec::new(),
        write_offset: 0,
        outbox: None,
        outstanding: 0,
        close_requested: false,
        handshake_done: false,
        stashed: None,
    };
    let registered = connection.run(&to_sequencer).await;
    connection.flush().await;
    let _ = connection.stream.shutdown(std::net::Shutdown::Both).await;
    if registered {
        // The sequencer may be shutting down; nothing to do if it is gone.
        let _ = to_sequencer.send(ToSequencer::Closed { conn }).await;
    }
}

impl Connection {
    /// Serves the connection until it ends. Returns whether the sequencer
    /// knows about it (and so must be told it closed).
    async fn run(&mut self, to_sequencer: &async_channel::Sender<ToSequencer>) -> bool {
        loop {
            let input = std::future::poll_fn(|cx| self.poll_input(cx)).await;
            let message = match input {
                Input::Frame(payload) if !self.handshake_done => match self.handshake(&payload) {
                    Some(message) => message,
                    None => return false,
                },
                Input::Frame(payload) => {
                    let (requests, malformed) = self.gather_requests(payload);
                    if !requests.is_empty() {
                        let message = ToSequencer::Requests {
                            conn: self.conn,
                            requests,
                        };
                        if !self.send(to_sequencer, message).await {
                            return true;
                        }
                    }
                    if malformed {
                        return true;
                    }
                    continue;
                }
                Input::FourLetterWord(word) => {
                    self.four_letter_word(word, to_sequencer).await;
                    return false;
                }
                Input::Eof(err) => {
                    match err {
                        Some(err) => info!(peer = %self.peer, %err, "connection broken"),
                        None => debug!(peer = %self.peer, "connection closed by client"),
                    }
                    return self.handshake_done;
                }
                Input::FrameTooLarge(length) => {
                    warn!(peer = %self.peer, length, max = self.settings.frame_bytes_max,
                        "closing connection: frame length over jute.maxbuffer");
                    return self.handshake_done;
                }
                Input::CloseRequested => return self.handshake_done,
            };
            if !self.send(to_sequencer, message).await {
                return self.handshake_done;
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
        // The ConnectResponse is this request's reply.
        self.outstanding += 1;
        Some(ToSequencer::Connect {
            conn: self.conn,
            peer: self.peer,
            request,
            outbox: outbox_sender,
        })
    }

    /// Decodes this frame and every further complete frame already read, up
    /// to the per-message and outstanding bounds. Returns them and whether a
    /// malformed header ended the connection.
    fn gather_requests(&mut self, first: Vec<u8>) -> (Vec<RequestFrame>, bool) {
        let mut requests = Vec::new();
        let mut payload = first;
        loop {
            match self.request(&payload) {
                Some(request) => requests.push(request),
                None => return (requests, true),
            }
            if requests.len() >= REQUESTS_PER_MESSAGE_MAX
                || self.outstanding >= self.settings.outstanding_max
            {
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
        self.outstanding += 1;
        Some(RequestFrame {
            xid: header.xid,
            op: header.op,
            body,
            nulls,
        })
    }

    async fn four_letter_word(
        &mut self,
        word: String,
        to_sequencer: &async_channel::Sender<ToSequencer>,
    ) {
        info!(peer = %self.peer, word, "four-letter word");
        if !self.settings.config.four_letter_word_enabled(&word) {
            let text = fourlw::refusal(&word);
            self.write_buffer.extend_from_slice(text.as_bytes());
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
        self.write_buffer.extend_from_slice(text.as_bytes());
    }

    /// Writes everything queued (used when the connection ends).
    async fn flush(&mut self) {
        std::future::poll_fn(|cx| match self.poll_write_side(cx) {
            Poll::Ready(Ok(())) if self.write_offset >= self.write_buffer.len() => Poll::Ready(()),
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
        if self.close_requested && self.write_offset >= self.write_buffer.len() {
            return Poll::Ready(Input::CloseRequested);
        }
        loop {
            if let Some(input) = self.parse_buffered() {
                return Poll::Ready(input);
            }
            if self.outstanding >= self.settings.outstanding_max || self.close_requested {
                // Throttled: wait for replies to drain before reading more.
                return Poll::Pending;
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

    /// Moves frames from the outbox to the socket until one of them would block.
    fn poll_write_side(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            if self.write_offset >= self.write_buffer.len() {
                self.write_buffer.clear();
                self.write_offset = 0;
                if !self.fill_write_buffer(cx) {
                    return Poll::Ready(Ok(()));
                }
            }
            let pending = &self.write_buffer[self.write_offset..];
            match Pin::new(&mut self.stream).poll_write(cx, pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => self.write_offset += n,
                Poll::Ready(Err(err)) => return Poll::Ready(Err(err)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Gathers queued frames into the write buffer; false if there were none.
    fn fill_write_buffer(&mut self, cx: &mut Context<'_>) -> bool {
        /// Gathering stops at this many bytes so one write stays a sensible size.
        const GATHER_BYTES_MAX: usize = 256 * 1024;
        let Some(outbox) = self.outbox.as_mut() else {
            return false;
        };
        while self.write_buffer.len() < GATHER_BYTES_MAX {
            match outbox.as_mut().poll_next(cx) {
                Poll::Ready(Some(OutFrame::Frames { bytes, replies })) => {
                    self.outstanding = self.outstanding.saturating_sub(replies);
                    if self.write_buffer.is_empty() {
                        self.write_buffer = bytes;
                    } else {
                        self.write_buffer.extend_from_slice(&bytes);
                    }
                }
                Poll::Ready(Some(OutFrame::Close)) | Poll::Ready(None) => {
                    self.close_requested = true;
                    self.outbox = None;
                    break;
                }
                Poll::Pending => break,
            }
        }
        !self.write_buffer.is_empty()
    }
}
