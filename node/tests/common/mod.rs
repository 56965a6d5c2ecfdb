//! A driver for tests: feeds a node inputs at a controlled time, collects
//! the actions, checks the node's invariants after every step, and plays
//! the log (records appended, made durable on request) with no runtime.

#![allow(dead_code)]

use std::time::Duration;

use node::{
    Action, AppendLimits, ConnId, Input, LogRecord, Node, Now, Peer, RequestFrame, Settings,
};
use proto::ops::{Request, Response};
use proto::{
    ConnectRequest, ConnectResponse, ErrorCode, OpCode, Reader, Record, ReplyHeader, WatcherEvent,
};
use tree::DataTree;

/// The wall clock the tests start at (any fixed value).
pub const WALL_START_MS: i64 = 1_700_000_000_000;

/// One reply or notification frame, decoded up to its body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
    pub body: Vec<u8>,
}

impl Frame {
    pub fn error(&self) -> ErrorCode {
        ErrorCode::from_code(self.err).expect("a known error code")
    }

    pub fn response(&self, op: OpCode) -> Response {
        Response::decode(op, &mut Reader::new(&self.body)).expect("a well-formed body")
    }

    pub fn event(&self) -> WatcherEvent {
        assert_eq!(self.xid, -1, "a notification");
        WatcherEvent::from_bytes(&self.body).expect("a well-formed event")
    }
}

/// Splits a `Send`'s bytes into frames (each length-prefixed).
pub fn split_frames(mut bytes: &[u8]) -> Vec<Frame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let length = i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
        let frame = &bytes[4..4 + length];
        let mut reader = Reader::new(frame);
        let header = ReplyHeader::decode(&mut reader).expect("a reply header");
        let body = frame[frame.len() - reader.remaining()..].to_vec();
        frames.push(Frame {
            xid: header.xid,
            zxid: header.zxid,
            err: header.err,
            body,
        });
        bytes = &bytes[4 + length..];
    }
    frames
}

/// The frames sent to `conn`, in order, and how many of them were replies.
pub fn frames_to(actions: &[Action], conn: ConnId) -> Vec<Frame> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { conn: c, bytes, .. } if *c == conn => Some(split_frames(bytes)),
            _ => None,
        })
        .flatten()
        .collect()
}

pub fn closes(actions: &[Action]) -> Vec<ConnId> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Close { conn } => Some(*conn),
            _ => None,
        })
        .collect()
}

pub fn appends(actions: &[Action]) -> Vec<&Vec<LogRecord>> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Append { records, .. } => Some(records),
            _ => None,
        })
        .collect()
}

pub fn settings() -> Settings {
    Settings {
        random_seed: 42,
        ..Settings::default()
    }
}

pub fn create(path: &str, data: &[u8], flags: i32) -> Request {
    Request::Create(proto::ops::CreateRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        acl: proto::Acl::open_unsafe(),
        flags,
    })
}

pub fn get_data(path: &str, watch: bool) -> Request {
    Request::GetData(proto::ops::GetDataRequest {
        path: path.into(),
        watch,
    })
}

pub fn exists(path: &str, watch: bool) -> Request {
    Request::Exists(proto::ops::ExistsRequest {
        path: path.into(),
        watch,
    })
}

pub fn set_data(path: &str, data: &[u8], version: i32) -> Request {
    Request::SetData(proto::ops::SetDataRequest {
        path: path.into(),
        data: Some(data.to_vec()),
        version,
    })
}

/// A node, a clock and a log that does exactly what it is told.
pub struct Harness {
    pub node: Node,
    pub now: Now,
    next_conn: ConnId,
    /// Every record ever appended, in order.
    pub log: Vec<LogRecord>,
    /// The append the node is waiting for: its records.
    pub append_in_flight: Option<Vec<LogRecord>>,
    /// Every action seen, in order.
    pub history: Vec<Action>,
}

impl Harness {
    pub fn new(settings: Settings) -> Harness {
        Harness::with_tree(settings, DataTree::new())
    }

    pub fn with_tree(settings: Settings, tree: DataTree) -> Harness {
        Harness::with_limits(settings, tree, AppendLimits::default())
    }

    pub fn with_limits(settings: Settings, tree: DataTree, limits: AppendLimits) -> Harness {
        let now = Now {
            monotonic: Duration::ZERO,
            wall_ms: WALL_START_MS,
        };
        let recovered = node::Recovered {
            tree,
            ..node::Recovered::fresh()
        };
        let node = Node::new(settings, recovered, limits, now);
        node.check_invariants();
        Harness {
            node,
            now,
            next_conn: 1,
            log: Vec::new(),
            append_in_flight: None,
            history: Vec::new(),
        }
    }

    pub fn advance(&mut self, by: Duration) {
        self.now.monotonic += by;
        self.now.wall_ms += by.as_millis() as i64;
    }

    /// One step, then `ready`, then the invariants; returns the actions.
    pub fn step(&mut self, input: Input) -> Vec<Action> {
        self.node.step(self.now, input);
        let mut actions = Vec::new();
        self.node.ready(&mut actions);
        self.node.check_invariants();
        for action in &actions {
            if let Action::Append { records, .. } = action {
                assert!(self.append_in_flight.is_none(), "one append in flight");
                self.append_in_flight = Some(records.clone());
                self.log.extend(records.iter().cloned());
            }
        }
        self.history.extend(actions.iter().cloned());
        actions
    }

    /// Makes the append in flight durable and reports it.
    pub fn durable(&mut self) -> Vec<Action> {
        let records = self
            .append_in_flight
            .take()
            .expect("an append is in flight");
        let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
        self.step(Input::LogDurable {
            zxid: records.last().unwrap().zxid,
            records: records.len(),
            record_bytes: bytes as u64,
            sync_time: Duration::from_micros(100),
        })
    }

    /// Makes appends durable until the node has nothing more to append.
    pub fn settle(&mut self) -> Vec<Action> {
        let mut actions = Vec::new();
        while self.append_in_flight.is_some() {
            actions.extend(self.durable());
        }
        actions
    }

    pub fn new_conn(&mut self) -> ConnId {
        let conn = self.next_conn;
        self.next_conn += 1;
        conn
    }

    /// Opens a connection with a new session; returns it once the session
    /// exists (its createSession is durable and answered).
    pub fn connect(&mut self, timeout_ms: i32) -> (ConnId, ConnectResponse) {
        let conn = self.new_conn();
        let request = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms,
            session_id: 0,
            password: vec![0; 16],
            read_only: Some(false),
        };
        let mut actions = self.connect_with(conn, request);
        actions.extend(self.settle());
        (conn, connect_response(&actions, conn))
    }

    pub fn connect_with(&mut self, conn: ConnId, request: ConnectRequest) -> Vec<Action> {
        self.step(Input::Connect {
            conn,
            peer: Peer {
                ip: "127.0.0.1".into(),
                port: 40000 + conn as u16,
            },
            request,
            auth: Vec::new(),
        })
    }

    /// Sends requests (xid, request) on a connection.
    pub fn send(&mut self, conn: ConnId, requests: Vec<(i32, Request)>) -> Vec<Action> {
        let requests = requests
            .into_iter()
            .map(|(xid, request)| RequestFrame {
                xid,
                op: request.op_code().code(),
                body: Ok(request),
                nulls: proto::Nulls::default(),
            })
            .collect();
        self.step(Input::Requests { conn, requests })
    }

    /// Sends one request and settles the log; returns every frame `conn` got.
    pub fn call(&mut self, conn: ConnId, xid: i32, request: Request) -> Vec<Frame> {
        let mut actions = self.send(conn, vec![(xid, request)]);
        actions.extend(self.settle());
        frames_to(&actions, conn)
    }
}

/// The ConnectResponse sent to `conn` among `actions`.
pub fn connect_response(actions: &[Action], conn: ConnId) -> ConnectResponse {
    let bytes: Vec<u8> = actions
        .iter()
        .find_map(|a| match a {
            Action::Send { conn: c, bytes, .. } if *c == conn => Some(bytes.clone()),
            _ => None,
        })
        .expect("a handshake reply");
    let length = i32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
    ConnectResponse::from_bytes(&bytes[4..4 + length]).expect("a ConnectResponse")
}

pub mod cluster;
