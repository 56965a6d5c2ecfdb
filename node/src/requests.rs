//! Requests as tree operations, and results as reply frames: the pure part
//! of the request pipeline.
//!
//! [`classify`] decides what each request is: a write (a [`WriteOp`] to
//! prepare), a read (answered from the applied tree when it reaches the
//! front of its connection's queue), or a write malformed in a way the codec
//! cannot see. [`answer_read`] and [`write_reply`] build the reply frames.

use proto::ops::{
    encode_reply, ClientInfo, Create2Response, CreateResponse, ErrorResponse, ExistsResponse,
    GetAclResponse, GetAllChildrenNumberResponse, GetChildren2Response, GetChildrenResponse,
    GetDataResponse, GetEphemeralsResponse, MultiOp, MultiResult, Request, Response,
    SetAclResponse, SetDataResponse, WhoAmIResponse,
};
use proto::{AddWatchMode, CreateMode, ErrorCode, Id, Nulls, OpCode, WatcherType};
use tree::watch::WatchEvent;
use tree::{Caller, DataTree, MultiOpResult, TxnResult, WatchLists, WriteOp};

/// ZooKeeper answers every ping with this xid, whatever the request carried.
pub const PING_XID: i32 = -2;

/// What a write's reply looks like: its opcode and, for multi, each op's
/// (`create` answers with a path only, the other creates with a stat too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyShape {
    pub op: OpCode,
    pub multi_ops: Vec<OpCode>,
}

impl ReplyShape {
    pub(crate) fn of(request: &Request) -> ReplyShape {
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

/// What a request turned out to be.
pub(crate) enum Classified {
    /// A write: the tree op it asks for and the shape of its reply.
    Write(ReplyShape, WriteOp),
    /// A write malformed in a way the codec cannot see.
    Malformed(ErrorCode),
    /// Not a write: answered from the tree when its turn comes.
    Read(Request),
}

/// Sorts a request, taking it by value so that paths and data move into the
/// tree op rather than being copied.
pub(crate) fn classify(request: Request) -> Classified {
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
        // A request refused as a whole (a multi too) is a plain error
        // reply, as ZooKeeper's single ErrorTxn.
        (_, TxnResult::Refused(code)) => return encode_reply(xid, zxid, *code, None),
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

/// A read's reply, and the watch events answering it fired (removeWatches,
/// setWatches), to be delivered before the reply.
#[derive(Debug)]
pub(crate) struct ReadAnswer {
    pub(crate) frame: Vec<u8>,
    pub(crate) events: Vec<WatchEvent>,
    /// The error the reply carries, if any.
    pub(crate) error: Option<ErrorCode>,
}

/// Answers a read (or a watch-management request) from the applied tree.
pub(crate) fn answer_read(
    tree: &mut DataTree,
    session_id: i64,
    auth: &[Id],
    xid: i32,
    op: OpCode,
    request: Request,
    nulls: &Nulls,
) -> ReadAnswer {
    let zxid = tree.last_processed_zxid();
    let caller = Caller { session_id, auth };
    let mut events = Vec::new();
    let result: Result<Response, ErrorCode> = match request {
        Request::Ping => {
            return ReadAnswer {
                frame: encode_reply(PING_XID, zxid, ErrorCode::Ok, None),
                events,
                error: None,
            }
        }
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
                Some(wtype) => tree
                    .remove_watches(&caller, &r.path, wtype, check_only)
                    .map(|fired| {
                        events = fired;
                        Response::Empty
                    }),
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
            let (fired, result) =
                tree.set_watches_with_nulls(session_id, r.relative_zxid, &lists, nulls);
            events = fired;
            result.map(|()| Response::Empty)
        }
        Request::SetWatches2(r) => {
            let lists = WatchLists {
                data: &r.data_watches,
                exist: &r.exist_watches,
                child: &r.child_watches,
                persistent: &r.persistent_watches,
                persistent_recursive: &r.persistent_recursive_watches,
            };
            let (fired, result) =
                tree.set_watches_with_nulls(session_id, r.relative_zxid, &lists, nulls);
            events = fired;
            result.map(|()| Response::Empty)
        }
        Request::MultiRead(ops) => Ok(Response::Multi(
            ops.iter().map(|op| multi_read(tree, &caller, op)).collect(),
        )),
        // Writes, sync and auth never reach here (`classify` and the node
        // route them); answering anyway keeps the connection's order.
        _ => Err(ErrorCode::SystemError),
    };
    match result {
        Ok(response) => ReadAnswer {
            frame: encode_reply(xid, zxid, ErrorCode::Ok, Some(&response)),
            events,
            error: None,
        },
        Err(code) => ReadAnswer {
            frame: encode_reply(xid, zxid, code, None),
            events,
            error: Some(code),
        },
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
