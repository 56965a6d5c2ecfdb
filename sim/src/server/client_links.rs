//! A server's client connections: frames in (decoded as
//! `engine/src/connection.rs` does), frames out (with the order and
//! durability checks of every `Send`), resets and closes.

use node::{ConnId, Input, Peer};
use proto::{ConnectRequest, Reader, Record, ReplyHeader};

use crate::context::Context;
use crate::network::{Endpoint, LinkId, Payload};
use crate::options::Bug;
use crate::violation::Violation;
use crate::wire::{decode_requests, first_frame, frame_slices};

use super::{ConnState, Server};

impl Server {
    /// A message from a client.
    pub fn on_delivery(
        &mut self,
        cx: &mut Context,
        link: LinkId,
        from: Endpoint,
        payload: Payload,
    ) {
        let Some(running) = &mut self.running else {
            // Nobody listens: the connection is refused.
            cx.reset(link);
            return;
        };
        if let Endpoint::Server(peer) = from {
            return self.on_peer_delivery(cx, link, peer, payload);
        }
        let known = running.by_link.get(&link).copied();
        match (payload, known) {
            (Payload::Fin, Some(conn)) => {
                running.by_link.remove(&link);
                running.conns.remove(&conn);
                self.step(cx, Input::Closed { conn });
            }
            (Payload::Fin, None) => {
                running.closed_links.remove(&link);
            }
            (Payload::Open(_), _) => cx.reset(link),
            (Payload::Bytes(_), None) if running.closed_links.contains(&link) => {}
            (Payload::Bytes(bytes), None) => self.accept(cx, link, from, &bytes),
            (Payload::Bytes(bytes), Some(conn)) => {
                let requests = match decode_requests(&bytes) {
                    Ok(requests) => requests,
                    Err(_) => return self.drop_link(cx, link),
                };
                let running = self.running.as_mut().expect("checked above");
                if !running.held.is_empty() || !running.node.accepts_requests() {
                    running.held.push_back((conn, requests));
                    return;
                }
                self.step(cx, Input::Requests { conn, requests });
            }
        }
    }

    /// The first message on a link: the handshake.
    pub(super) fn accept(&mut self, cx: &mut Context, link: LinkId, from: Endpoint, bytes: &[u8]) {
        let request = match first_frame(bytes).and_then(|f| ConnectRequest::from_bytes(f).ok()) {
            Some(request) => request,
            None => return cx.reset(link),
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        let running = self.running.as_mut().expect("accepting while up");
        running.conns.insert(
            conn,
            ConnState {
                link,
                handshake_sent: false,
                held_back: None,
            },
        );
        running.by_link.insert(link, conn);
        let Endpoint::Client(client) = from else {
            unreachable!("only clients open client connections")
        };
        let peer = Peer {
            ip: format!("10.0.0.{}", client % 250 + 1),
            port: 30_000 + (link % 30_000) as u16,
        };
        self.step(
            cx,
            Input::Connect {
                conn,
                peer,
                request,
                auth: Vec::new(),
            },
        );
    }

    /// Resets a link and tells the node its connection is gone.
    pub(super) fn drop_link(&mut self, cx: &mut Context, link: LinkId) {
        cx.reset(link);
        if let Some(running) = &mut self.running {
            if let Some(conn) = running.by_link.remove(&link) {
                running.conns.remove(&conn);
                self.step(cx, Input::Closed { conn });
            }
        }
    }

    /// A reset of `link` reached this server.
    pub fn on_reset(&mut self, cx: &mut Context, link: LinkId) {
        let Some(running) = &mut self.running else {
            return;
        };
        if running.peers.knows(link) {
            return self.on_peer_reset(cx, link);
        }
        if let Some(conn) = running.by_link.remove(&link) {
            running.conns.remove(&conn);
            self.step(cx, Input::Closed { conn });
        }
    }

    /// The driver's deferred report that a connection it closed is gone.
    pub fn on_conn_closed(&mut self, cx: &mut Context, conn: ConnId) {
        self.step(cx, Input::Closed { conn });
    }

    /// Writes frames to a connection, checking first that none reveals a
    /// zxid beyond the durable log.
    pub(super) fn send(&mut self, cx: &mut Context, conn: ConnId, bytes: Vec<u8>) {
        let running = self.running.as_mut().expect("acting while up");
        cx.trace.mix_bytes(&bytes);
        let handed = bytes.len() as u64;
        let Some(state) = running.conns.get_mut(&conn) else {
            // Closed meanwhile (the node heard of it after deciding).
            return;
        };
        // A learner's tree may come from the leader's snapshot, durable
        // once sealed, with the log behind it.
        let durable = running.disk.zxid_durable().max(running.snapshot_sealed);
        let skip = usize::from(!state.handshake_sent);
        state.handshake_sent = true;
        if self.assert_reply_after_durable {
            let beyond = frame_slices(&bytes)
                .skip(skip)
                .map(|frame| ReplyHeader::decode(&mut Reader::new(frame)).map_or(0, |h| h.zxid))
                .find(|zxid| *zxid > durable);
            if let Some(zxid) = beyond {
                return cx.violation(Violation::ReplyBeforeDurable {
                    server: self.sid,
                    zxid,
                    durable,
                });
            }
        }
        let bytes = if self.bug == Some(Bug::DropWatchEvents) && skip == 0 {
            drop_a_notification(&bytes, &mut cx.rng)
        } else {
            bytes
        };
        let link = state.link;
        let from = Endpoint::Server(self.sid);
        let written = if self.bug == Some(Bug::ReorderSends) && skip == 0 {
            match state.held_back.take() {
                Some((held, held_len)) => {
                    cx.send(link, from, Payload::Bytes(bytes));
                    cx.send(link, from, Payload::Bytes(held));
                    handed + held_len
                }
                None if cx.rng.chance(1, 20) => {
                    state.held_back = Some((bytes, handed));
                    0
                }
                None => {
                    cx.send(link, from, Payload::Bytes(bytes));
                    handed
                }
            }
        } else {
            cx.send(link, from, Payload::Bytes(bytes));
            handed
        };
        // The socket took the bytes: the connection's credit comes back, as
        // the engine's connection reports what it wrote.
        if written > 0 {
            self.step(
                cx,
                Input::Written {
                    conn,
                    bytes: written,
                },
            );
        }
    }
}

/// The reintroduced `Bug::DropWatchEvents`: the frames without one of
/// their notifications, now and then.
pub(super) fn drop_a_notification(bytes: &[u8], rng: &mut crate::rng::Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut dropped = false;
    let mut rest = bytes;
    for frame in frame_slices(bytes) {
        let whole = &rest[..4 + frame.len()];
        rest = &rest[4 + frame.len()..];
        let notification = ReplyHeader::decode(&mut Reader::new(frame)).is_ok_and(|h| h.xid == -1);
        if notification && !dropped && rng.chance(1, 4) {
            dropped = true;
            continue;
        }
        out.extend_from_slice(whole);
    }
    out
}
