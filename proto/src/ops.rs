//! Request and response bodies for every client opcode, and the typed
//! envelopes ([`Request`], [`Response`]) that the server and clients use.
//!
//! Field order follows ZooKeeper's `zookeeper.jute` exactly; a record is the
//! plain concatenation of its fields in jute form. `getChildren2` sends the
//! same body as `getChildren`; `createContainer` the same as `create`.
//!
//! Multi (`multi` 14, `multiRead` 22) is a sequence of
//! `MultiHeader{type, done=false, err=-1}` + op body, closed by
//! `MultiHeader{-1, true, -1}`. Its response is a sequence of
//! `MultiHeader{type, done=false, err}` + result body, closed the same way;
//! an error result has type -1, its code in `err`, and an `ErrorResponse`
//! body carrying the code again.

use crate::jute::{DecodeError, Reader, Record, Writer};
use crate::nulls::{self, NullAt, Nulls, WatchList};
use crate::records::{Acl, ReplyHeader, RequestHeader, Stat, WatcherEvent};
use crate::{ErrorCode, OpCode};

/// A value that knows its own jute form (the building block of records).
trait Field: Sized {
    fn put(&self, w: &mut Writer);
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError>;
}

impl Field for i32 {
    fn put(&self, w: &mut Writer) {
        w.write_i32(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i32()
    }
}

impl Field for i64 {
    fn put(&self, w: &mut Writer) {
        w.write_i64(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_i64()
    }
}

impl Field for bool {
    fn put(&self, w: &mut Writer) {
        w.write_bool(*self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_bool()
    }
}

/// Strings read jute's null as "": [`Request::decode_with_nulls`] notes
/// where a request had one (see [`crate::nulls`]).
impl Field for String {
    fn put(&self, w: &mut Writer) {
        w.write_ustring(self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_ustring_opt()?.unwrap_or_default())
    }
}

impl Field for Vec<u8> {
    fn put(&self, w: &mut Writer) {
        w.write_buffer(self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        r.read_buffer()
    }
}

/// A znode's data as the wire carries it: `None` is jute's null buffer
/// (length -1), which ZooKeeper stores and hands back as null.
pub type Data = Option<Vec<u8>>;

impl Field for Option<Vec<u8>> {
    fn put(&self, w: &mut Writer) {
        w.write_buffer_opt(self.as_deref())
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(r.read_buffer_opt()?.map(<[u8]>::to_vec))
    }
}

impl Field for Vec<String> {
    fn put(&self, w: &mut Writer) {
        crate::records::write_strings(w, self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        crate::records::read_strings(r)
    }
}

impl Field for Vec<Acl> {
    fn put(&self, w: &mut Writer) {
        crate::records::write_records(w, self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        nulls::read_acl(r, &mut Nulls::default(), 0)
    }
}

impl Field for Vec<ClientInfo> {
    fn put(&self, w: &mut Writer) {
        crate::records::write_records(w, self)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        crate::records::read_records(r)
    }
}

impl Field for Stat {
    fn put(&self, w: &mut Writer) {
        self.encode(w)
    }
    fn get(r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Stat::decode(r)
    }
}

/// Declares a record struct whose wire form is its fields in order.
macro_rules! record {
    ($(#[$meta:meta])* $name:ident { $($field:ident : $ty:ty),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $(pub $field: $ty),* }

        impl Record for $name {
            fn encode(&self, _w: &mut Writer) {
                $(Field::put(&self.$field, _w);)*
            }
            fn decode(_r: &mut Reader<'_>) -> Result<Self, DecodeError> {
                Ok(Self { $($field: Field::get(_r)?),* })
            }
        }
    };
}

record!(CreateRequest { path: String, data: Data, acl: Vec<Acl>, flags: i32 });
record!(CreateTtlRequest { path: String, data: Data, acl: Vec<Acl>, flags: i32, ttl: i64 });
record!(CreateResponse { path: String });
record!(Create2Response {
    path: String,
    stat: Stat
});
record!(DeleteRequest {
    path: String,
    version: i32
});
record!(ExistsRequest {
    path: String,
    watch: bool
});
record!(ExistsResponse { stat: Stat });
record!(GetDataRequest {
    path: String,
    watch: bool
});
record!(GetDataResponse {
    data: Data,
    stat: Stat
});
record!(SetDataRequest {
    path: String,
    data: Data,
    version: i32
});
record!(SetDataResponse { stat: Stat });
record!(GetAclRequest { path: String });
record!(GetAclResponse { acl: Vec<Acl>, stat: Stat });
record!(SetAclRequest { path: String, acl: Vec<Acl>, version: i32 });
record!(SetAclResponse { stat: Stat });
record!(
    /// Also the body of getChildren2.
    GetChildrenRequest { path: String, watch: bool }
);
record!(GetChildrenResponse { children: Vec<String> });
record!(GetChildren2Response { children: Vec<String>, stat: Stat });
record!(SyncRequest { path: String });
record!(SyncResponse { path: String });
record!(CheckVersionRequest {
    path: String,
    version: i32
});
record!(ReconfigRequest {
    joining_servers: String,
    leaving_servers: String,
    new_members: String,
    cur_config_id: i64
});
record!(
    /// Also the body of removeWatches.
    CheckWatchesRequest { path: String, watcher_type: i32 }
);
record!(GetEphemeralsRequest {
    prefix_path: String
});
record!(GetEphemeralsResponse { ephemerals: Vec<String> });
record!(GetAllChildrenNumberRequest { path: String });
record!(GetAllChildrenNumberResponse { total_number: i32 });
record!(AddWatchRequest {
    path: String,
    mode: i32
});
record!(SetWatches { relative_zxid: i64, data_watches: Vec<String>, exist_watches: Vec<String>, child_watches: Vec<String> });
record!(SetWatches2 {
    relative_zxid: i64,
    data_watches: Vec<String>,
    exist_watches: Vec<String>,
    child_watches: Vec<String>,
    persistent_watches: Vec<String>,
    persistent_recursive_watches: Vec<String>,
});
record!(AuthPacket { auth_type: i32, scheme: String, auth: Vec<u8> });
record!(
    /// One client token of a SASL exchange (opcode 102; ZooKeeper's
    /// GetSASLRequest). The token may be jute's null buffer (`None`).
    SaslRequest { token: Option<Vec<u8>> }
);
record!(
    /// The server's token in answer to a [`SaslRequest`] (SetSASLResponse);
    /// `None` is jute's null buffer.
    SetSaslResponse { token: Option<Vec<u8>> }
);
record!(ClientInfo {
    auth_scheme: String,
    user: String
});
record!(WhoAmIResponse { client_info: Vec<ClientInfo> });
record!(ErrorResponse { err: i32 });
record!(MultiHeader {
    op_type: i32,
    done: bool,
    err: i32
});

/// The marker that closes a multi request or response.
const MULTI_END: MultiHeader = MultiHeader {
    op_type: -1,
    done: true,
    err: -1,
};

/// Most operations one multi may carry: each takes at least a 9-byte header,
/// so a frame within jute.maxbuffer can never reach this; it bounds hostile input.
pub const MULTI_OPS_MAX: usize = 1 << 20;

/// One operation inside `multi` (writes) or `multiRead` (reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    SetData(SetDataRequest),
    Check(CheckVersionRequest),
    GetData(GetDataRequest),
    GetChildren(GetChildrenRequest),
}

impl MultiOp {
    /// The opcodes a multi or multiRead may hold.
    const ALLOWED: [OpCode; 9] = [
        OpCode::Create,
        OpCode::Create2,
        OpCode::CreateContainer,
        OpCode::CreateTtl,
        OpCode::Delete,
        OpCode::SetData,
        OpCode::Check,
        OpCode::GetData,
        OpCode::GetChildren,
    ];

    pub fn op_code(&self) -> OpCode {
        match self {
            MultiOp::Create(_) => OpCode::Create,
            MultiOp::Create2(_) => OpCode::Create2,
            MultiOp::CreateContainer(_) => OpCode::CreateContainer,
            MultiOp::CreateTtl(_) => OpCode::CreateTtl,
            MultiOp::Delete(_) => OpCode::Delete,
            MultiOp::SetData(_) => OpCode::SetData,
            MultiOp::Check(_) => OpCode::Check,
            MultiOp::GetData(_) => OpCode::GetData,
            MultiOp::GetChildren(_) => OpCode::GetChildren,
        }
    }

    fn is_read(&self) -> bool {
        matches!(self, MultiOp::GetData(_) | MultiOp::GetChildren(_))
    }

    fn encode_body(&self, w: &mut Writer) {
        match self {
            MultiOp::Create(r) | MultiOp::Create2(r) | MultiOp::CreateContainer(r) => r.encode(w),
            MultiOp::CreateTtl(r) => r.encode(w),
            MultiOp::Delete(r) => r.encode(w),
            MultiOp::SetData(r) => r.encode(w),
            MultiOp::Check(r) => r.encode(w),
            MultiOp::GetData(r) => r.encode(w),
            MultiOp::GetChildren(r) => r.encode(w),
        }
    }

    /// Decodes op number `index` of a multi; every op's body starts with its path.
    fn decode_body(
        op: i32,
        r: &mut Reader<'_>,
        nulls: &mut Nulls,
        index: usize,
    ) -> Result<Self, DecodeError> {
        let invalid = DecodeError::InvalidValue {
            field: "multi op type",
            value: i64::from(op),
        };
        let op = OpCode::from_code(op).ok_or(invalid.clone())?;
        if MultiOp::ALLOWED.contains(&op) {
            nulls::note_path(r, nulls, index);
        }
        Ok(match op {
            OpCode::Create => MultiOp::Create(decode_create(r, nulls, index)?),
            OpCode::Create2 => MultiOp::Create2(decode_create(r, nulls, index)?),
            OpCode::CreateContainer => MultiOp::CreateContainer(decode_create(r, nulls, index)?),
            OpCode::CreateTtl => MultiOp::CreateTtl(decode_create_ttl(r, nulls, index)?),
            OpCode::Delete => MultiOp::Delete(r.read_record()?),
            OpCode::SetData => MultiOp::SetData(r.read_record()?),
            OpCode::Check => MultiOp::Check(r.read_record()?),
            OpCode::GetData => MultiOp::GetData(r.read_record()?),
            OpCode::GetChildren => MultiOp::GetChildren(r.read_record()?),
            _ => return Err(invalid),
        })
    }
}

fn encode_multi(ops: &[MultiOp], w: &mut Writer) {
    for op in ops {
        MultiHeader {
            op_type: op.op_code().code(),
            done: false,
            err: -1,
        }
        .encode(w);
        op.encode_body(w);
    }
    MULTI_END.encode(w);
}

/// Decodes a multi or multiRead body; `reads` says which kind of op it may hold.
fn decode_multi(
    r: &mut Reader<'_>,
    reads: bool,
    nulls: &mut Nulls,
) -> Result<Vec<MultiOp>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let header = MultiHeader::decode(r)?;
        if header.done {
            return Ok(ops);
        }
        if ops.len() >= MULTI_OPS_MAX {
            return Err(DecodeError::InvalidValue {
                field: "multi op count",
                value: ops.len() as i64,
            });
        }
        let op = MultiOp::decode_body(header.op_type, r, nulls, ops.len())?;
        if op.is_read() != reads {
            return Err(DecodeError::InvalidValue {
                field: "multi op type",
                value: i64::from(header.op_type),
            });
        }
        ops.push(op);
    }
}

/// One result inside a multi or multiRead response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiResult {
    /// `create`: the path only.
    Create {
        path: String,
    },
    /// `create2`, `createTTL`, `createContainer`: path and stat.
    Create2 {
        path: String,
        stat: Stat,
    },
    Delete,
    SetData {
        stat: Stat,
    },
    Check,
    GetData {
        data: Data,
        stat: Stat,
    },
    GetChildren {
        children: Vec<String>,
    },
    /// A failed (or rolled-back) op: its KeeperException code.
    Error(i32),
}

impl MultiResult {
    fn header(&self) -> MultiHeader {
        let (op, err) = match self {
            MultiResult::Create { .. } => (OpCode::Create.code(), 0),
            MultiResult::Create2 { .. } => (OpCode::Create2.code(), 0),
            MultiResult::Delete => (OpCode::Delete.code(), 0),
            MultiResult::SetData { .. } => (OpCode::SetData.code(), 0),
            MultiResult::Check => (OpCode::Check.code(), 0),
            MultiResult::GetData { .. } => (OpCode::GetData.code(), 0),
            MultiResult::GetChildren { .. } => (OpCode::GetChildren.code(), 0),
            MultiResult::Error(code) => (OpCode::Error.code(), *code),
        };
        MultiHeader {
            op_type: op,
            done: false,
            err,
        }
    }

    fn encode(&self, w: &mut Writer) {
        self.header().encode(w);
        match self {
            MultiResult::Create { path } => w.write_ustring(path),
            MultiResult::Create2 { path, stat } => {
                w.write_ustring(path);
                stat.encode(w);
            }
            MultiResult::Delete | MultiResult::Check => {}
            MultiResult::SetData { stat } => stat.encode(w),
            MultiResult::GetData { data, stat } => {
                w.write_buffer_opt(data.as_deref());
                stat.encode(w);
            }
            MultiResult::GetChildren { children } => crate::records::write_strings(w, children),
            MultiResult::Error(code) => ErrorResponse { err: *code }.encode(w),
        }
    }

    fn decode(header: &MultiHeader, r: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let invalid = DecodeError::InvalidValue {
            field: "multi result type",
            value: i64::from(header.op_type),
        };
        Ok(
            match OpCode::from_code(header.op_type).ok_or(invalid.clone())? {
                OpCode::Create => MultiResult::Create {
                    path: r.read_ustring()?,
                },
                OpCode::Create2 | OpCode::CreateTtl | OpCode::CreateContainer => {
                    MultiResult::Create2 {
                        path: r.read_ustring()?,
                        stat: Stat::decode(r)?,
                    }
                }
                OpCode::Delete | OpCode::DeleteContainer => MultiResult::Delete,
                OpCode::SetData => MultiResult::SetData {
                    stat: Stat::decode(r)?,
                },
                OpCode::Check => MultiResult::Check,
                OpCode::GetData => MultiResult::GetData {
                    data: r.read_buffer_opt()?.map(<[u8]>::to_vec),
                    stat: Stat::decode(r)?,
                },
                OpCode::GetChildren => MultiResult::GetChildren {
                    children: crate::records::read_strings(r)?,
                },
                OpCode::Error => MultiResult::Error(ErrorResponse::decode(r)?.err),
                _ => return Err(invalid),
            },
        )
    }
}

/// A decoded client request body, one variant per opcode a client may send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Create(CreateRequest),
    Create2(CreateRequest),
    CreateContainer(CreateRequest),
    CreateTtl(CreateTtlRequest),
    Delete(DeleteRequest),
    Exists(ExistsRequest),
    GetData(GetDataRequest),
    SetData(SetDataRequest),
    GetAcl(GetAclRequest),
    SetAcl(SetAclRequest),
    GetChildren(GetChildrenRequest),
    GetChildren2(GetChildrenRequest),
    Sync(SyncRequest),
    Ping,
    Check(CheckVersionRequest),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<MultiOp>),
    Reconfig(ReconfigRequest),
    CheckWatches(CheckWatchesRequest),
    RemoveWatches(CheckWatchesRequest),
    SetWatches(SetWatches),
    SetWatches2(SetWatches2),
    GetEphemerals(GetEphemeralsRequest),
    GetAllChildrenNumber(GetAllChildrenNumberRequest),
    AddWatch(AddWatchRequest),
    WhoAmI,
    Auth(AuthPacket),
    Sasl(SaslRequest),
    CloseSession,
}

/// A create body whose path (noted by the caller) and ACL fields may be null.
fn decode_create(
    r: &mut Reader<'_>,
    nulls: &mut Nulls,
    op: usize,
) -> Result<CreateRequest, DecodeError> {
    Ok(CreateRequest {
        path: Field::get(r)?,
        data: Field::get(r)?,
        acl: nulls::read_acl(r, nulls, op)?,
        flags: r.read_i32()?,
    })
}

fn decode_create_ttl(
    r: &mut Reader<'_>,
    nulls: &mut Nulls,
    op: usize,
) -> Result<CreateTtlRequest, DecodeError> {
    Ok(CreateTtlRequest {
        path: Field::get(r)?,
        data: Field::get(r)?,
        acl: nulls::read_acl(r, nulls, op)?,
        flags: r.read_i32()?,
        ttl: r.read_i64()?,
    })
}

impl Request {
    /// Decodes the body that follows a RequestHeader with opcode `op`.
    ///
    /// Jute nulls read as "" and empty lists, except that a request is
    /// refused ([`DecodeError::Null`], answered MARSHALLINGERROR) for a null
    /// that ZooKeeper answers MARSHALLINGERROR when nothing else fails first
    /// ([`Nulls::first_refused`]). A server answers every null exactly as
    /// ZooKeeper does with [`Request::decode_with_nulls`] instead.
    pub fn decode(op: OpCode, r: &mut Reader<'_>) -> Result<Request, DecodeError> {
        let (request, nulls) = Request::decode_with_nulls(op, r)?;
        match nulls.first_refused(&request) {
            Some(at) => Err(DecodeError::Null { at }),
            None => Ok(request),
        }
    }

    /// Decodes the body that follows a RequestHeader with opcode `op`,
    /// reading jute nulls as "" and empty lists and listing where they were
    /// (see [`crate::nulls`] for what ZooKeeper answers for each).
    pub fn decode_with_nulls(
        op: OpCode,
        r: &mut Reader<'_>,
    ) -> Result<(Request, Nulls), DecodeError> {
        let mut nulls = Nulls::default();
        if Request::body_starts_with_path(op) {
            nulls::note_path(r, &mut nulls, 0);
        }
        let request = Request::decode_noting(op, r, &mut nulls)?;
        Ok((request, nulls))
    }

    /// Whether the body of `op` starts with a path (`prefixPath` for getEphemerals).
    fn body_starts_with_path(op: OpCode) -> bool {
        matches!(
            op,
            OpCode::Create
                | OpCode::Create2
                | OpCode::CreateContainer
                | OpCode::CreateTtl
                | OpCode::Delete
                | OpCode::Exists
                | OpCode::GetData
                | OpCode::SetData
                | OpCode::GetAcl
                | OpCode::SetAcl
                | OpCode::GetChildren
                | OpCode::GetChildren2
                | OpCode::Sync
                | OpCode::Check
                | OpCode::CheckWatches
                | OpCode::RemoveWatches
                | OpCode::GetEphemerals
                | OpCode::GetAllChildrenNumber
                | OpCode::AddWatch
        )
    }

    fn decode_noting(
        op: OpCode,
        r: &mut Reader<'_>,
        nulls: &mut Nulls,
    ) -> Result<Request, DecodeError> {
        Ok(match op {
            OpCode::Create => Request::Create(decode_create(r, nulls, 0)?),
            OpCode::Create2 => Request::Create2(decode_create(r, nulls, 0)?),
            OpCode::CreateContainer => Request::CreateContainer(decode_create(r, nulls, 0)?),
            OpCode::CreateTtl => Request::CreateTtl(decode_create_ttl(r, nulls, 0)?),
            OpCode::Delete => Request::Delete(r.read_record()?),
            OpCode::Exists => Request::Exists(r.read_record()?),
            OpCode::GetData => Request::GetData(r.read_record()?),
            OpCode::SetData => Request::SetData(r.read_record()?),
            OpCode::GetAcl => Request::GetAcl(r.read_record()?),
            OpCode::SetAcl => Request::SetAcl(SetAclRequest {
                path: Field::get(r)?,
                acl: nulls::read_acl(r, nulls, 0)?,
                version: r.read_i32()?,
            }),
            OpCode::GetChildren => Request::GetChildren(r.read_record()?),
            OpCode::GetChildren2 => Request::GetChildren2(r.read_record()?),
            OpCode::Sync => Request::Sync(r.read_record()?),
            OpCode::Ping => Request::Ping,
            OpCode::Check => Request::Check(r.read_record()?),
            OpCode::Multi => Request::Multi(decode_multi(r, false, nulls)?),
            OpCode::MultiRead => Request::MultiRead(decode_multi(r, true, nulls)?),
            OpCode::Reconfig => Request::Reconfig(ReconfigRequest {
                joining_servers: nulls::read_string(r, nulls, NullAt::Reconfig { field: 0 })?,
                leaving_servers: nulls::read_string(r, nulls, NullAt::Reconfig { field: 1 })?,
                new_members: nulls::read_string(r, nulls, NullAt::Reconfig { field: 2 })?,
                cur_config_id: r.read_i64()?,
            }),
            OpCode::CheckWatches => Request::CheckWatches(r.read_record()?),
            OpCode::RemoveWatches => Request::RemoveWatches(r.read_record()?),
            OpCode::SetWatches => Request::SetWatches(SetWatches {
                relative_zxid: r.read_i64()?,
                data_watches: nulls::read_watch_list(r, nulls, WatchList::Data)?,
                exist_watches: nulls::read_watch_list(r, nulls, WatchList::Exist)?,
                child_watches: nulls::read_watch_list(r, nulls, WatchList::Child)?,
            }),
            OpCode::SetWatches2 => Request::SetWatches2(SetWatches2 {
                relative_zxid: r.read_i64()?,
                data_watches: nulls::read_watch_list(r, nulls, WatchList::Data)?,
                exist_watches: nulls::read_watch_list(r, nulls, WatchList::Exist)?,
                child_watches: nulls::read_watch_list(r, nulls, WatchList::Child)?,
                persistent_watches: nulls::read_watch_list(r, nulls, WatchList::Persistent)?,
                persistent_recursive_watches: nulls::read_watch_list(
                    r,
                    nulls,
                    WatchList::PersistentRecursive,
                )?,
            }),
            OpCode::GetEphemerals => Request::GetEphemerals(r.read_record()?),
            OpCode::GetAllChildrenNumber => Request::GetAllChildrenNumber(r.read_record()?),
            OpCode::AddWatch => Request::AddWatch(r.read_record()?),
            OpCode::WhoAmI => Request::WhoAmI,
            OpCode::Auth => Request::Auth(AuthPacket {
                auth_type: r.read_i32()?,
                scheme: nulls::read_string(r, nulls, NullAt::AuthScheme)?,
                auth: r.read_buffer_opt()?.map_or_else(
                    || {
                        nulls.push(NullAt::AuthCredential);
                        Vec::new()
                    },
                    <[u8]>::to_vec,
                ),
            }),
            OpCode::Sasl => Request::Sasl(r.read_record()?),
            OpCode::CloseSession => Request::CloseSession,
            OpCode::Notification
            | OpCode::DeleteContainer
            | OpCode::CreateSession
            | OpCode::Error => return Err(DecodeError::UnknownOpCode(op.code())),
        })
    }

    pub fn op_code(&self) -> OpCode {
        match self {
            Request::Create(_) => OpCode::Create,
            Request::Create2(_) => OpCode::Create2,
            Request::CreateContainer(_) => OpCode::CreateContainer,
            Request::CreateTtl(_) => OpCode::CreateTtl,
            Request::Delete(_) => OpCode::Delete,
            Request::Exists(_) => OpCode::Exists,
            Request::GetData(_) => OpCode::GetData,
            Request::SetData(_) => OpCode::SetData,
            Request::GetAcl(_) => OpCode::GetAcl,
            Request::SetAcl(_) => OpCode::SetAcl,
            Request::GetChildren(_) => OpCode::GetChildren,
            Request::GetChildren2(_) => OpCode::GetChildren2,
            Request::Sync(_) => OpCode::Sync,
            Request::Ping => OpCode::Ping,
            Request::Check(_) => OpCode::Check,
            Request::Multi(_) => OpCode::Multi,
            Request::MultiRead(_) => OpCode::MultiRead,
            Request::Reconfig(_) => OpCode::Reconfig,
            Request::CheckWatches(_) => OpCode::CheckWatches,
            Request::RemoveWatches(_) => OpCode::RemoveWatches,
            Request::SetWatches(_) => OpCode::SetWatches,
            Request::SetWatches2(_) => OpCode::SetWatches2,
            Request::GetEphemerals(_) => OpCode::GetEphemerals,
            Request::GetAllChildrenNumber(_) => OpCode::GetAllChildrenNumber,
            Request::AddWatch(_) => OpCode::AddWatch,
            Request::WhoAmI => OpCode::WhoAmI,
            Request::Auth(_) => OpCode::Auth,
            Request::Sasl(_) => OpCode::Sasl,
            Request::CloseSession => OpCode::CloseSession,
        }
    }

    /// Encodes the body (without the RequestHeader).
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Request::Create(r) | Request::Create2(r) | Request::CreateContainer(r) => r.encode(w),
            Request::CreateTtl(r) => r.encode(w),
            Request::Delete(r) => r.encode(w),
            Request::Exists(r) => r.encode(w),
            Request::GetData(r) => r.encode(w),
            Request::SetData(r) => r.encode(w),
            Request::GetAcl(r) => r.encode(w),
            Request::SetAcl(r) => r.encode(w),
            Request::GetChildren(r) | Request::GetChildren2(r) => r.encode(w),
            Request::Sync(r) => r.encode(w),
            Request::Check(r) => r.encode(w),
            Request::Multi(ops) | Request::MultiRead(ops) => encode_multi(ops, w),
            Request::Reconfig(r) => r.encode(w),
            Request::CheckWatches(r) | Request::RemoveWatches(r) => r.encode(w),
            Request::SetWatches(r) => r.encode(w),
            Request::SetWatches2(r) => r.encode(w),
            Request::GetEphemerals(r) => r.encode(w),
            Request::GetAllChildrenNumber(r) => r.encode(w),
            Request::AddWatch(r) => r.encode(w),
            Request::Auth(r) => r.encode(w),
            Request::Sasl(r) => r.encode(w),
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
        }
    }
}

/// A reply body. `Empty` is for replies that carry none (delete, setWatches,
/// auth, check, addWatch, removeWatches, closeSession, ping).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Empty,
    Create(CreateResponse),
    Create2(Create2Response),
    Exists(ExistsResponse),
    GetData(GetDataResponse),
    SetData(SetDataResponse),
    GetAcl(GetAclResponse),
    SetAcl(SetAclResponse),
    GetChildren(GetChildrenResponse),
    GetChildren2(GetChildren2Response),
    Sync(SyncResponse),
    /// sync's reply when the request's path was null: ZooKeeper echoes the
    /// null (length -1), not "".
    SyncNullPath,
    GetEphemerals(GetEphemeralsResponse),
    GetAllChildrenNumber(GetAllChildrenNumberResponse),
    WhoAmI(WhoAmIResponse),
    Sasl(SetSaslResponse),
    Multi(Vec<MultiResult>),
    /// A bare error-code body: addWatch answers `ErrorResponse(0)`.
    Error(ErrorResponse),
}

impl Response {
    pub fn encode(&self, w: &mut Writer) {
        match self {
            Response::Empty => {}
            Response::Create(r) => r.encode(w),
            Response::Create2(r) => r.encode(w),
            Response::Exists(r) => r.encode(w),
            Response::GetData(r) => r.encode(w),
            Response::SetData(r) => r.encode(w),
            Response::GetAcl(r) => r.encode(w),
            Response::SetAcl(r) => r.encode(w),
            Response::GetChildren(r) => r.encode(w),
            Response::GetChildren2(r) => r.encode(w),
            Response::Sync(r) => r.encode(w),
            Response::SyncNullPath => w.write_ustring_opt(None),
            Response::GetEphemerals(r) => r.encode(w),
            Response::GetAllChildrenNumber(r) => r.encode(w),
            Response::WhoAmI(r) => r.encode(w),
            Response::Sasl(r) => r.encode(w),
            Response::Error(r) => r.encode(w),
            Response::Multi(results) => {
                for result in results {
                    result.encode(w);
                }
                MULTI_END.encode(w);
            }
        }
    }

    /// Decodes the body of a successful reply to a request with opcode `op`
    /// (for clients: the load generator and the tests).
    pub fn decode(op: OpCode, r: &mut Reader<'_>) -> Result<Response, DecodeError> {
        Ok(match op {
            OpCode::Create => Response::Create(r.read_record()?),
            OpCode::Create2 | OpCode::CreateContainer | OpCode::CreateTtl => {
                Response::Create2(r.read_record()?)
            }
            OpCode::Exists => Response::Exists(r.read_record()?),
            OpCode::GetData => Response::GetData(r.read_record()?),
            OpCode::SetData => Response::SetData(r.read_record()?),
            OpCode::GetAcl => Response::GetAcl(r.read_record()?),
            OpCode::SetAcl => Response::SetAcl(r.read_record()?),
            OpCode::GetChildren => Response::GetChildren(r.read_record()?),
            OpCode::GetChildren2 => Response::GetChildren2(r.read_record()?),
            OpCode::Sync => match r.read_ustring_opt()? {
                Some(path) => Response::Sync(SyncResponse { path }),
                None => Response::SyncNullPath,
            },
            OpCode::GetEphemerals => Response::GetEphemerals(r.read_record()?),
            OpCode::GetAllChildrenNumber => Response::GetAllChildrenNumber(r.read_record()?),
            OpCode::WhoAmI => Response::WhoAmI(r.read_record()?),
            OpCode::Sasl => Response::Sasl(r.read_record()?),
            OpCode::AddWatch => Response::Error(r.read_record()?),
            OpCode::Multi | OpCode::MultiRead => {
                let mut results = Vec::new();
                loop {
                    let header = MultiHeader::decode(r)?;
                    if header.done {
                        break Response::Multi(results);
                    }
                    if results.len() >= MULTI_OPS_MAX {
                        return Err(DecodeError::InvalidValue {
                            field: "multi result count",
                            value: results.len() as i64,
                        });
                    }
                    results.push(MultiResult::decode(&header, r)?);
                }
            }
            _ => Response::Empty,
        })
    }
}

/// A whole reply frame: length, ReplyHeader, and the body only when `err` is OK.
pub fn encode_reply(xid: i32, zxid: i64, err: ErrorCode, body: Option<&Response>) -> Vec<u8> {
    let data_bytes = match body {
        Some(Response::GetData(r)) => r.data.as_ref().map_or(0, Vec::len),
        _ => 0,
    };
    let mut w = Writer::begin_frame_with_capacity(160 + data_bytes);
    ReplyHeader {
        xid,
        zxid,
        err: err.code(),
    }
    .encode(&mut w);
    if err == ErrorCode::Ok {
        if let Some(body) = body {
            body.encode(&mut w);
        }
    }
    w.finish_frame()
}

/// A whole watch-notification frame (xid -1).
pub fn encode_notification(zxid: i64, event: &WatcherEvent) -> Vec<u8> {
    let mut w = Writer::begin_frame();
    ReplyHeader {
        xid: crate::xid::NOTIFICATION,
        zxid,
        err: 0,
    }
    .encode(&mut w);
    event.encode(&mut w);
    w.finish_frame()
}

/// A whole request frame: length, RequestHeader, body.
pub fn encode_request(xid: i32, request: &Request) -> Vec<u8> {
    let mut w = Writer::begin_frame();
    RequestHeader {
        xid,
        op: request.op_code().code(),
    }
    .encode(&mut w);
    request.encode(&mut w);
    w.finish_frame()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn create_request_bytes_match_the_jute_layout() {
        // path "/a", data "x", one world:anyone ALL acl, flags 1 (ephemeral).
        let request = CreateRequest {
            path: "/a".into(),
            data: Some(b"x".to_vec()),
            acl: Acl::open_unsafe(),
            flags: 1,
        };
        let mut expected = vec![
            0, 0, 0, 2, b'/', b'a', 0, 0, 0, 1, b'x', 0, 0, 0, 1, 0, 0, 0, 31,
        ];
        expected.extend_from_slice(&[0, 0, 0, 5]);
        expected.extend_from_slice(b"world");
        expected.extend_from_slice(&[0, 0, 0, 6]);
        expected.extend_from_slice(b"anyone");
        expected.extend_from_slice(&[0, 0, 0, 1]);
        assert_eq!(request.to_bytes(), expected);
    }

    #[test]
    fn failed_multi_response_uses_error_results() {
        // ZooKeeper's layout for a multi whose second op failed with NoNode.
        let response = Response::Multi(vec![
            MultiResult::Error(0),
            MultiResult::Error(-101),
            MultiResult::Error(-2),
        ]);
        let mut w = Writer::new();
        response.encode(&mut w);
        let bytes = w.into_inner();
        let mut expected = Vec::new();
        for code in [0i32, -101, -2] {
            expected.extend_from_slice(&(-1i32).to_be_bytes());
            expected.push(0);
            expected.extend_from_slice(&code.to_be_bytes());
            expected.extend_from_slice(&code.to_be_bytes());
        }
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        expected.push(1);
        expected.extend_from_slice(&(-1i32).to_be_bytes());
        assert_eq!(bytes, expected);
        let decoded = Response::decode(OpCode::Multi, &mut Reader::new(&bytes)).unwrap();
        assert_eq!(decoded, response);
    }

    #[test]
    fn multi_rejects_reads_and_multi_read_rejects_writes() {
        let write = Request::Multi(vec![MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        })]);
        let mut w = Writer::new();
        write.encode(&mut w);
        let bytes = w.into_inner();
        assert!(Request::decode(OpCode::MultiRead, &mut Reader::new(&bytes)).is_err());
        assert_eq!(
            Request::decode(OpCode::Multi, &mut Reader::new(&bytes)).unwrap(),
            write
        );
    }

    #[test]
    fn error_replies_carry_no_body() {
        let frame = encode_reply(
            7,
            9,
            ErrorCode::NoNode,
            Some(&Response::Sync(SyncResponse { path: "/x".into() })),
        );
        assert_eq!(frame.len(), 4 + 16);
    }
}
