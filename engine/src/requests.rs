//! Turning decoded requests into sequencer work, and results into replies.
//!
//! [`on_request`] decides, at arrival, what each request is: a write (prepared
//! at once, so later requests are validated against it), a read or `sync`
//! (answered when it reaches the front of its connection's queue), or a
//! connection-level packet (auth, an undecodable frame). [`answer_read`] and
//! [`write_reply`] build the reply frames.

use std::time::Instant;

use proto::ops::{
    encode_reply, ClientInfo, Create2Response, CreateResponse, ErrorResponse, ExistsResponse,
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, MultiOp, MultiResult, Request, Response,
    SetAclResponse, SetDataResponse, WhoAmIResponse,
};
use proto::{AddWatchMode, CreateMode, DecodeError, ErrorCode, Id, OpCode, WatcherType};
use tracing::{info, warn};
use tree::{Caller, MultiOpResult, PrepareError, TxnResult, WatchLists, WriteOp};

use crate::messages::ConnId;
use crate::sequencer::{Pending, Sequencer};

pub fn on_request(
    seq: &mut Sequencer,
    conn: ConnId,
    xid: i32,
    op: i32,
    body: Result<Request, DecodeError>,
) {
    let Some(c) = seq.conns.get(&conn) else {
        return;
    };
    if c.closing {
        return;
    }
    let session_id = c.session_id;
    let peer = c.peer;
    match seq.sessions.get_mut(&session_id) {
        // After closeSession nothing more is answered; the connection closes
        // once that reply is out, as ZooKeeper's does.
        Some(session) if session.closing => return,
        Some(session) => session.last_active = seq.clock,
        None => {}
    }
    let received = seq.clock;
    let request = match body {
        Ok(request) => request,
        // Opcodes ZooKeeper uses internally are valid request types there:
        // they fail in prep and the connection stays (PrepRequestProcessor).
        Err(DecodeError::UnknownOpCode(code)) if code == OpCode::DeleteContainer.code() => {
            warn!(%peer, session = format!("0x{session_id:x}"), op = code, "client sent the internal deleteContainer: answering BADARGUMENTS");
            push_error(seq, conn, xid, ErrorCode::BadArguments);
            return;
        }
        Err(DecodeError::UnknownOpCode(code)) if code == OpCode::CreateSession.code() => {
            warn!(%peer, session = format!("0x{session_id:x}"), op = code, "client sent the internal createSession: answering MARSHALLINGERROR");
            push_error(seq, conn, xid, ErrorCode::MarshallingError);
            return;
        }
        Err(DecodeError::UnknownOpCode(code)) => {
            warn!(%peer, session = format!("0x{session_id:x}"), op = code, "unknown opcode: answering UNIMPLEMENTED and closing");
            // ZooKeeper's UnimplementedRequestProcessor answers with zxid -1.
            let frame = encode_reply(xid, -1, ErrorCode::Unimplemented, None);
            push(seq, conn, Pending::Ready(frame));
            push(seq, conn, Pending::Close);
            return;
        }
        Err(err) => {
            warn!(%peer, session = format!("0x{session_id:x}"), op, %err, "undecodable request: answering MARSHALLINGERROR");
            push_error(seq, conn, xid, ErrorCode::MarshallingError);
            return;
        }
    };
    let op = request.op_code();
    match request {
        Request::Auth(packet) => on_auth(seq, conn, xid, packet),
        Request::Sync(sync) => seq.register_sync(conn, xid, sync.path, received),
        Request::Reconfig(_) => push_error(seq, conn, xid, ErrorCode::Unimplemented),
        request => match classify(request) {
            Classified::Write(shape, write) => on_write(seq, conn, xid, shape, write, received),
            Classified::Malformed(code) => push_error(seq, conn, xid, code),
            Classified::Read(request) => push(
                seq,
                conn,
                Pending::Read {
                    xid,
                    op,
                    request,
                    received,
                },
            ),
        },
    }
}

fn push(seq: &mut Sequencer, conn: ConnId, pending: Pending) {
    if let Some(c) = seq.conns.get_mut(&conn) {
        c.queue.push_back(pending);
    }
}

fn push_error(seq: &mut Sequencer, conn: ConnId, xid: i32, code: ErrorCode) {
    let frame = encode_reply(xid, seq.zxid_applied(), code, None);
    push(seq, conn, Pending::Ready(frame));
}

/// `auth` packets change the connection's identities at once, so that every
/// later request is checked with them. Clients send them with xid -4 (the
/// Java client) or a counted xid (others); the reply echoes it, as ZooKeeper's.
fn on_auth(seq: &mut Sequencer, conn: ConnId, xid: i32, packet: proto::ops::AuthPacket) {
    let super_digest = seq.config.super_digest.clone();
    let Some(c) = seq.conns.get_mut(&conn) else {
        return;
    };
    let identity = match packet.scheme.as_str() {
        "digest" => std::str::from_utf8(&packet.auth)
            .ok()
            .filter(|s| s.contains(':'))
            .map(tree::acl::digest_id),
        _ => None,
    };
    match identity {
        Some(id) => {
            if super_digest.as_deref() == Some(id.as_str()) {
                c.auth.push(Id::new("super", ""));
            }
            if !c.auth.iter().any(|a| a.scheme == "digest" && a.id == id) {
                c.auth.push(Id::new("digest", id));
            }
            let frame = encode_reply(xid, 0, ErrorCode::Ok, None);
            c.queue.push_back(Pending::Ready(frame));
        }
        None => {
            info!(peer = %c.peer, scheme = packet.scheme, "authentication failed: closing connection");
            let frame = encode_reply(xid, 0, ErrorCode::AuthFailed, None);
            c.queue.push_back(Pending::Ready(frame));
            c.queue.push_back(Pending::Close);
        }
    }
}

/// What a write's reply looks like: its opcode and, for multi, each op's
/// (`create` answers with a path only, the other creates with a stat too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyShape {
    pub op: OpCode,
    pub multi_ops: Vec<OpCode>,
}

impl ReplyShape {
    fn of(request: &Request) -> ReplyShape {
        let multi_ops = match request {
            Request::Multi(ops) => ops.iter().map(MultiOp::op_code).collect(),
            _ => Vec::new(),
        };
        ReplyShape {
            op: request.op_code(),
            multi_ops,
        }
    }
}

fn on_write(
    seq: &mut Sequencer,
    conn: ConnId,
    xid: i32,
    shape: ReplyShape,
    write: WriteOp,
    received: Instant,
) {
    let Some(c) = seq.conns.get(&conn) else {
        return;
    };
    let session_id = c.session_id;
    let auth = c.auth.clone();
    if seq.sessions.get(&session_id).is_some_and(|s| s.closing) {
        push_error(seq, conn, xid, ErrorCode::SessionExpired);
        return;
    }
    match seq.prepare(session_id, xid, &auth, &write) {
        Ok(zxid) => {
            seq.attach_client(conn, xid, shape, zxid, received);
            if write == WriteOp::CloseSession {
                if let Some(session) = seq.sessions.get_mut(&session_id) {
                    session.closing = true;
                }
            }
            push(seq, conn, Pending::Write { zxid });
        }
        Err(PrepareError::Op(code)) => {
            log_bad_arguments(seq, conn, xid, shape.op, code);
            refuse(seq, conn, xid, shape, &[code], received);
        }
        Err(PrepareError::Multi(codes)) => refuse(seq, conn, xid, shape, &codes, received),
    }
}

/// A refused write still goes through the log (see `Sequencer::prepare_refusal`).
fn refuse(
    seq: &mut Sequencer,
    conn: ConnId,
    xid: i32,
    shape: ReplyShape,
    codes: &[ErrorCode],
    received: Instant,
) {
    let Some(session_id) = seq.conns.get(&conn).map(|c| c.session_id) else {
        return;
    };
    match seq.prepare_refusal(session_id, xid, codes) {
        Some(zxid) => {
            seq.attach_client(conn, xid, shape, zxid, received);
            push(seq, conn, Pending::Write { zxid });
        }
        None => push_error(seq, conn, xid, ErrorCode::SystemError),
    }
}

/// What a request turned out to be.
enum Classified {
    /// A write: the tree op it asks for and the shape of its reply.
    Write(ReplyShape, WriteOp),
    /// A write malformed in a way the codec cannot see.
    Malformed(ErrorCode),
    /// Not a write: answered from the tree when its turn comes.
    Read(Request),
}

/// Sorts a request, taking it by value so that paths and data move into the
/// tree op rather than being copied.
fn classify(request: Request) -> Classified {
    let shape = ReplyShape::of(&request);
    // The kinds a multi may hold map through `multi_op`, so each mapping is written once.
    let op = match request {
        Request::Create(r) => multi_op(MultiOp::Create(r)),
        Request::Create2(r) => multi_op(MultiOp::Create2(r)),
        Request::CreateContainer(r) => multi_op(MultiOp::CreateContainer(r)),
        Request::CreateTtl(r) => multi_op(MultiOp::CreateTtl(r)),
        Request::Delete(r) => multi_op(MultiOp::Delete(r)),
        Request::SetData(r) => multi_op(MultiOp::SetData(r)),
        Request::Check(r) => multi_op(MultiOp::Check(r)),
        Request::SetAcl(r) => Ok(WriteOp::SetAcl {
            path: r.path,
            acl: r.acl,
            version: r.version,
        }),
        Request::CloseSession => Ok(WriteOp::CloseSession),
        Request::Multi(ops) => ops
            .into_iter()
            .map(multi_op)
            .collect::<Result<Vec<_>, _>>()
            .map(WriteOp::Multi),
        request => return Classified::Read(request),
    };
    match op {
        Ok(op) => Classified::Write(shape, op),
        Err(code) => Classified::Malformed(code),
    }
}

fn multi_op(op: MultiOp) -> Result<WriteOp, ErrorCode> {
    match op {
        MultiOp::Create(r) | MultiOp::Create2(r) => {
            create(r.path, r.data, r.acl, r.flags, -1, false)
        }
        MultiOp::CreateContainer(r) => create(r.path, r.data, r.acl, r.flags, -1, true),
        MultiOp::CreateTtl(r) => create(r.path, r.data, r.acl, r.flags, r.ttl, false),
        MultiOp::Delete(r) => Ok(WriteOp::Delete {
            path: r.path,
            version: r.version,
        }),
        MultiOp::SetData(r) => Ok(WriteOp::SetData {
            path: r.path,
            data: r.data,
            version: r.version,
        }),
        MultiOp::Check(r) => Ok(WriteOp::Check {
            path: r.path,
            version: r.version,
        }),
        MultiOp::GetData(_) | MultiOp::GetChildren(_) => Err(ErrorCode::BadArguments),
    }
}

/// A create request as a tree op. ZooKeeper ties containers to the
/// createContainer opcode; TTL modes without createTTL's TTL fail in the
/// tree's validation (BADARGUMENTS, or UNIMPLEMENTED when TTLs are off).
fn create(
    path: String,
    data: proto::ops::Data,
    acl: Vec<proto::Acl>,
    flags: i32,
    ttl_ms: i64,
    container: bool,
) -> Result<WriteOp, ErrorCode> {
    let mode = match CreateMode::from_code(flags).ok_or(ErrorCode::BadArguments)? {
        // Only createContainer makes a container (its txn is a
        // CreateContainerTxn whatever the flags); the CONTAINER flag through
        // create or create2 makes a plain persistent node (PrepRequestProcessor).
        _ if container => CreateMode::Container,
        CreateMode::Container => CreateMode::Persistent,
        mode => mode,
    };
    Ok(WriteOp::Create {
        path,
        data,
        acl,
        mode,
        ttl_ms,
    })
}

/// The reply frame of an applied write.
pub fn write_reply(
    xid: i32,
    zxid: i64,
    shape: &ReplyShape,
    result: &Result<TxnResult, ErrorCode>,
) -> Vec<u8> {
    let result = match result {
        Ok(result) => result,
        Err(code) => return encode_reply(xid, zxid, *code, None),
    };
    let response = match (shape.op, result) {
        (OpCode::Create, TxnResult::Created { path, .. }) => {
            Response::Create(CreateResponse { path: path.clone() })
        }
        (_, TxnResult::Created { path, stat }) => Response::Create2(Create2Response {
            path: path.clone(),
            stat: *stat,
        }),
        (_, TxnResult::DataSet { stat }) => Response::SetData(SetDataResponse { stat: *stat }),
        (_, TxnResult::AclSet { stat }) => Response::SetAcl(SetAclResponse { stat: *stat }),
        (OpCode::Multi, TxnResult::Failed(codes)) => Response::Multi(
            codes
                .iter()
                .map(|code| MultiResult::Error(code.code()))
                .collect(),
        ),
        (_, TxnResult::Failed(codes)) => {
            let code = codes.first().copied().unwrap_or(ErrorCode::SystemError);
            return encode_reply(xid, zxid, code, None);
        }
        (_, TxnResult::Multi(results)) => Response::Multi(
            results
                .iter()
                .zip(&shape.multi_ops)
                .map(|(result, op)| multi_result(result, *op))
                .collect(),
        ),
        _ => Response::Empty,
    };
    encode_reply(xid, zxid, ErrorCode::Ok, Some(&response))
}

fn multi_result(result: &MultiOpResult, op: OpCode) -> MultiResult {
    match result {
        MultiOpResult::Created { path, .. } if op == OpCode::Create => {
            MultiResult::Create { path: path.clone() }
        }
        MultiOpResult::Created { path, stat } => MultiResult::Create2 {
            path: path.clone(),
            stat: *stat,
        },
        MultiOpResult::Deleted => MultiResult::Delete,
        MultiOpResult::DataSet { stat } => MultiResult::SetData { stat: *stat },
        MultiOpResult::Checked => MultiResult::Check,
        MultiOpResult::Error(code) => MultiResult::Error(code.code()),
    }
}

/// Answers a read (or a watch-management request) from the applied tree.
pub fn answer_read(
    seq: &mut Sequencer,
    conn: ConnId,
    xid: i32,
    op: OpCode,
    request: Request,
) -> Vec<u8> {
    let zxid = seq.zxid_applied();
    let (session_id, auth) = match seq.conns.get(&conn) {
        Some(c) => (c.session_id, c.auth.clone()),
        None => return Vec::new(),
    };
    let caller = Caller {
        session_id,
        auth: &auth,
    };
    let tree = &mut seq.tree;
    let result: Result<Response, ErrorCode> = match request {
        Request::Ping => return encode_reply(xid, zxid, ErrorCode::Ok, None),
        Request::Exists(r) => tree
            .exists(&caller, &r.path, r.watch)
            .map(|stat| Response::Exists(ExistsResponse { stat })),
        Request::GetData(r) => tree
            .get_data(&caller, &r.path, r.watch)
            .map(|(data, stat)| Response::GetData(GetDataResponse { data, stat })),
        Request::GetChildren(r) => tree
            .get_children(&caller, &r.path, r.watch)
            .map(|(children, _)| Response::GetChildren(GetChildrenResponse { children })),
        Request::GetChildren2(r) => {
            tree.get_children(&caller, &r.path, r.watch)
                .map(|(children, stat)| {
                    Response::GetChildren2(GetChildren2Response { children, stat })
                })
        }
        Request::GetAcl(r) => tree
            .get_acl(&caller, &r.path)
            .map(|(acl, stat)| Response::GetAcl(GetAclResponse { acl, stat })),
        Request::GetAllChildrenNumber(r) => {
            tree.get_all_children_number(&caller, &r.path)
                .map(|total_number| {
                    Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number })
                })
        }
        Request::GetEphemerals(r) => Ok(Response::GetEphemerals(GetEphemeralsResponse {
            ephemerals: tree.get_ephemerals(session_id, &r.prefix_path),
        })),
        Request::WhoAmI => Ok(Response::WhoAmI(WhoAmIResponse {
            client_info: auth
                .iter()
                .map(|id| ClientInfo {
                    auth_scheme: id.scheme.clone(),
                    // The digest provider reports the user name, not its hash.
                    user: match id.scheme.as_str() {
                        "digest" => id.id.split(':').next().unwrap_or_default().to_string(),
                        _ => id.id.clone(),
                    },
                })
                .collect(),
        })),
        Request::AddWatch(r) => match AddWatchMode::from_code(r.mode) {
            Some(mode) => tree
                .add_watch(&caller, &r.path, mode)
                .map(|()| Response::Error(ErrorResponse { err: 0 })),
            None => Err(ErrorCode::BadArguments),
        },
        Request::CheckWatches(r) | Request::RemoveWatches(r) => {
            let check_only = op == OpCode::CheckWatches;
            match WatcherType::from_code(r.watcher_type) {
                Some(wtype) => match tree.remove_watches(&caller, &r.path, wtype, check_only) {
                    Ok(events) => {
                        seq.deliver(&events);
                        Ok(Response::Empty)
                    }
                    Err(code) => Err(code),
                },
                None => Err(ErrorCode::BadArguments),
            }
        }
        Request::SetWatches(r) => {
            let lists = WatchLists {
                data: &r.data_watches,
                exist: &r.exist_watches,
                child: &r.child_watches,
                ..WatchLists::default()
            };
            let events = tree.set_watches(session_id, r.relative_zxid, &lists);
            seq.deliver(&events);
            return encode_reply(xid, zxid, ErrorCode::Ok, None);
        }
        Request::SetWatches2(r) => {
            let lists = WatchLists {
                data: &r.data_watches,
                exist: &r.exist_watches,
                child: &r.child_watches,
                persistent: &r.persistent_watches,
                persistent_recursive: &r.persistent_recursive_watches,
            };
            let events = tree.set_watches(session_id, r.relative_zxid, &lists);
            seq.deliver(&events);
            return encode_reply(xid, zxid, ErrorCode::Ok, None);
        }
        Request::MultiRead(ops) => Ok(Response::Multi(
            ops.iter().map(|op| multi_read(tree, &caller, op)).collect(),
        )),
        other => {
            warn!(op = ?other.op_code(), "request reached the read path by mistake");
            Err(ErrorCode::SystemError)
        }
    };
    match result {
        Ok(response) => encode_reply(xid, zxid, ErrorCode::Ok, Some(&response)),
        Err(code) => {
            log_bad_arguments(seq, conn, xid, op, code);
            encode_reply(xid, zxid, code, None)
        }
    }
}

/// BADARGUMENTS means the client sent something no valid request holds (an
/// invalid path, a bad create mode): worth one line naming the peer.
fn log_bad_arguments(seq: &Sequencer, conn: ConnId, xid: i32, op: OpCode, code: ErrorCode) {
    if code != ErrorCode::BadArguments {
        return;
    }
    if let Some(c) = seq.conns.get(&conn) {
        info!(peer = %c.peer, session = format!("0x{:x}", c.session_id), xid, ?op,
            "answering BADARGUMENTS: invalid path or argument");
    }
}

fn multi_read(tree: &mut tree::DataTree, caller: &Caller<'_>, op: &MultiOp) -> MultiResult {
    let result = match op {
        MultiOp::GetData(r) => tree
            .get_data(caller, &r.path, false)
            .map(|(data, stat)| MultiResult::GetData { data, stat }),
        MultiOp::GetChildren(r) => tree
            .get_children(caller, &r.path, false)
            .map(|(children, _)| MultiResult::GetChildren { children }),
        _ => Err(ErrorCode::BadArguments),
    };
    result.unwrap_or_else(|code| MultiResult::Error(code.code()))
}
