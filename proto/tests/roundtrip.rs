//! Property tests for the codec: every client request and reply body
//! round-trips through its wire form, and no byte string — random, truncated
//! or mutated — makes a decoder panic.

use proptest::prelude::*;
use proto::ops::*;
use proto::{Acl, ConnectRequest, ConnectResponse, Id, OpCode, Reader, Record, Stat, WatcherEvent};

fn text() -> impl Strategy<Value = String> {
    // Paths and ids, including non-ASCII text (decoded leniently but exactly
    // when it is valid UTF-8).
    prop::string::string_regex("[/a-z0-9ü日.-]{0,24}").unwrap()
}

fn data() -> impl Strategy<Value = Data> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..64))
}

fn acl() -> impl Strategy<Value = Vec<Acl>> {
    prop::collection::vec(
        (any::<i32>(), text(), text()).prop_map(|(perms, scheme, id)| Acl {
            perms,
            id: Id::new(scheme, id),
        }),
        0..4,
    )
}

fn stat() -> impl Strategy<Value = Stat> {
    (any::<[i64; 6]>(), any::<[i32; 5]>()).prop_map(|(l, i)| Stat {
        czxid: l[0],
        mzxid: l[1],
        ctime: l[2],
        mtime: l[3],
        ephemeral_owner: l[4],
        pzxid: l[5],
        version: i[0],
        cversion: i[1],
        aversion: i[2],
        data_length: i[3],
        num_children: i[4],
    })
}

fn strings() -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(text(), 0..4)
}

fn create() -> impl Strategy<Value = CreateRequest> {
    (text(), data(), acl(), any::<i32>()).prop_map(|(path, data, acl, flags)| CreateRequest {
        path,
        data,
        acl,
        flags,
    })
}

fn write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        create().prop_map(MultiOp::Create),
        create().prop_map(MultiOp::Create2),
        create().prop_map(MultiOp::CreateContainer),
        (create(), any::<i64>()).prop_map(|(c, ttl)| MultiOp::CreateTtl(CreateTtlRequest {
            path: c.path,
            data: c.data,
            acl: c.acl,
            flags: c.flags,
            ttl,
        })),
        (text(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Delete(DeleteRequest { path, version })),
        (text(), data(), any::<i32>()).prop_map(|(path, data, version)| MultiOp::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        (text(), any::<i32>())
            .prop_map(|(path, version)| MultiOp::Check(CheckVersionRequest { path, version })),
    ]
}

fn read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (text(), any::<bool>())
            .prop_map(|(path, watch)| MultiOp::GetData(GetDataRequest { path, watch })),
        (text(), any::<bool>())
            .prop_map(|(path, watch)| MultiOp::GetChildren(GetChildrenRequest { path, watch })),
    ]
}

fn request() -> impl Strategy<Value = Request> {
    let path_watch = || (text(), any::<bool>());
    prop_oneof![
        create().prop_map(Request::Create),
        create().prop_map(Request::Create2),
        create().prop_map(Request::CreateContainer),
        write_op().prop_filter_map("createTTL", |op| match op {
            MultiOp::CreateTtl(r) => Some(Request::CreateTtl(r)),
            _ => None,
        }),
        (text(), any::<i32>())
            .prop_map(|(path, version)| Request::Delete(DeleteRequest { path, version })),
        path_watch().prop_map(|(path, watch)| Request::Exists(ExistsRequest { path, watch })),
        path_watch().prop_map(|(path, watch)| Request::GetData(GetDataRequest { path, watch })),
        (text(), data(), any::<i32>()).prop_map(|(path, data, version)| Request::SetData(
            SetDataRequest {
                path,
                data,
                version
            }
        )),
        text().prop_map(|path| Request::GetAcl(GetAclRequest { path })),
        (text(), acl(), any::<i32>())
            .prop_map(|(path, acl, version)| Request::SetAcl(SetAclRequest { path, acl, version })),
        path_watch()
            .prop_map(|(path, watch)| Request::GetChildren(GetChildrenRequest { path, watch })),
        path_watch()
            .prop_map(|(path, watch)| Request::GetChildren2(GetChildrenRequest { path, watch })),
        text().prop_map(|path| Request::Sync(SyncRequest { path })),
        Just(Request::Ping),
        (text(), any::<i32>())
            .prop_map(|(path, version)| Request::Check(CheckVersionRequest { path, version })),
        prop::collection::vec(write_op(), 0..5).prop_map(Request::Multi),
        prop::collection::vec(read_op(), 0..5).prop_map(Request::MultiRead),
        (text(), text(), text(), any::<i64>()).prop_map(|(a, b, c, id)| Request::Reconfig(
            ReconfigRequest {
                joining_servers: a,
                leaving_servers: b,
                new_members: c,
                cur_config_id: id,
            }
        )),
        (text(), any::<i32>()).prop_map(|(path, t)| Request::CheckWatches(CheckWatchesRequest {
            path,
            watcher_type: t
        })),
        (text(), any::<i32>()).prop_map(|(path, t)| Request::RemoveWatches(CheckWatchesRequest {
            path,
            watcher_type: t
        })),
        (any::<i64>(), strings(), strings(), strings()).prop_map(|(z, d, e, c)| {
            Request::SetWatches(SetWatches {
                relative_zxid: z,
                data_watches: d,
                exist_watches: e,
                child_watches: c,
            })
        }),
        (
            any::<i64>(),
            strings(),
            strings(),
            strings(),
            strings(),
            strings()
        )
            .prop_map(|(z, d, e, c, p, r)| {
                Request::SetWatches2(SetWatches2 {
                    relative_zxid: z,
                    data_watches: d,
                    exist_watches: e,
                    child_watches: c,
                    persistent_watches: p,
                    persistent_recursive_watches: r,
                })
            }),
        text().prop_map(|prefix_path| Request::GetEphemerals(GetEphemeralsRequest { prefix_path })),
        text().prop_map(|path| Request::GetAllChildrenNumber(GetAllChildrenNumberRequest { path })),
        (text(), any::<i32>())
            .prop_map(|(path, mode)| Request::AddWatch(AddWatchRequest { path, mode })),
        Just(Request::WhoAmI),
        (
            any::<i32>(),
            text(),
            prop::collection::vec(any::<u8>(), 0..32)
        )
            .prop_map(|(auth_type, scheme, auth)| Request::Auth(AuthPacket {
                auth_type,
                scheme,
                auth
            })),
        prop::option::of(prop::collection::vec(any::<u8>(), 0..64))
            .prop_map(|token| Request::Sasl(SaslRequest { token })),
        Just(Request::CloseSession),
    ]
}

fn multi_result() -> impl Strategy<Value = MultiResult> {
    prop_oneof![
        text().prop_map(|path| MultiResult::Create { path }),
        (text(), stat()).prop_map(|(path, stat)| MultiResult::Create2 { path, stat }),
        Just(MultiResult::Delete),
        stat().prop_map(|stat| MultiResult::SetData { stat }),
        Just(MultiResult::Check),
        (data(), stat()).prop_map(|(data, stat)| MultiResult::GetData { data, stat }),
        strings().prop_map(|children| MultiResult::GetChildren { children }),
        any::<i32>().prop_map(MultiResult::Error),
    ]
}

/// Replies with the opcode whose reply they are.
fn response() -> impl Strategy<Value = (OpCode, Response)> {
    prop_oneof![
        text().prop_map(|path| (OpCode::Create, Response::Create(CreateResponse { path }))),
        (text(), stat()).prop_map(|(path, stat)| (
            OpCode::Create2,
            Response::Create2(Create2Response { path, stat })
        )),
        stat().prop_map(|stat| (OpCode::Exists, Response::Exists(ExistsResponse { stat }))),
        (data(), stat()).prop_map(|(data, stat)| (
            OpCode::GetData,
            Response::GetData(GetDataResponse { data, stat })
        )),
        stat().prop_map(|stat| (OpCode::SetData, Response::SetData(SetDataResponse { stat }))),
        (acl(), stat()).prop_map(|(acl, stat)| (
            OpCode::GetAcl,
            Response::GetAcl(GetAclResponse { acl, stat })
        )),
        stat().prop_map(|stat| (OpCode::SetAcl, Response::SetAcl(SetAclResponse { stat }))),
        strings().prop_map(|children| (
            OpCode::GetChildren,
            Response::GetChildren(GetChildrenResponse { children })
        )),
        (strings(), stat()).prop_map(|(children, stat)| {
            (
                OpCode::GetChildren2,
                Response::GetChildren2(GetChildren2Response { children, stat }),
            )
        }),
        text().prop_map(|path| (OpCode::Sync, Response::Sync(SyncResponse { path }))),
        strings().prop_map(|ephemerals| (
            OpCode::GetEphemerals,
            Response::GetEphemerals(GetEphemeralsResponse { ephemerals })
        )),
        any::<i32>().prop_map(|total_number| {
            (
                OpCode::GetAllChildrenNumber,
                Response::GetAllChildrenNumber(GetAllChildrenNumberResponse { total_number }),
            )
        }),
        prop::collection::vec((text(), text()), 0..3).prop_map(|infos| {
            let client_info = infos
                .into_iter()
                .map(|(auth_scheme, user)| ClientInfo { auth_scheme, user })
                .collect();
            (
                OpCode::WhoAmI,
                Response::WhoAmI(WhoAmIResponse { client_info }),
            )
        }),
        prop::collection::vec(multi_result(), 0..5)
            .prop_map(|results| (OpCode::Multi, Response::Multi(results))),
        Just((OpCode::AddWatch, Response::Error(ErrorResponse { err: 0 }))),
    ]
}

fn encode_body(request: &Request) -> Vec<u8> {
    let mut w = proto::Writer::new();
    request.encode(&mut w);
    w.into_inner()
}

proptest! {
    #[test]
    fn every_request_round_trips(request in request()) {
        let bytes = encode_body(&request);
        let mut r = Reader::new(&bytes);
        prop_assert_eq!(Request::decode(request.op_code(), &mut r).unwrap(), request);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn requests_without_nulls_decode_with_none_listed(request in request()) {
        // Proves decode_with_nulls reads every null-free request exactly as
        // decode does, listing nothing (encoders never write a null string).
        let bytes = encode_body(&request);
        let mut r = Reader::new(&bytes);
        let (decoded, nulls) = Request::decode_with_nulls(request.op_code(), &mut r).unwrap();
        prop_assert_eq!(decoded, request);
        prop_assert!(nulls.is_empty(), "{:?}", nulls);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn every_reply_round_trips((op, response) in response()) {
        let mut w = proto::Writer::new();
        response.encode(&mut w);
        let bytes = w.into_inner();
        let mut r = Reader::new(&bytes);
        prop_assert_eq!(Response::decode(op, &mut r).unwrap(), response);
        prop_assert!(r.is_empty());
    }

    #[test]
    fn handshake_and_events_round_trip(
        zxid in any::<i64>(), timeout in any::<i32>(), session in any::<i64>(),
        password in prop::collection::vec(any::<u8>(), 0..20), read_only in any::<Option<bool>>(),
        event in (any::<i32>(), any::<i32>(), text()),
    ) {
        let request = ConnectRequest { protocol_version: 0, last_zxid_seen: zxid, timeout_ms: timeout, session_id: session, password: password.clone(), read_only };
        prop_assert_eq!(ConnectRequest::from_bytes(&request.to_bytes()).unwrap(), request);
        let response = ConnectResponse { protocol_version: 0, timeout_ms: timeout, session_id: session, password, read_only };
        prop_assert_eq!(ConnectResponse::from_bytes(&response.to_bytes()).unwrap(), response);
        let event = WatcherEvent { event_type: event.0, state: event.1, path: event.2 };
        prop_assert_eq!(WatcherEvent::from_bytes(&event.to_bytes()).unwrap(), event);
    }

    #[test]
    fn truncated_and_mutated_requests_never_panic(request in request(), cut in any::<prop::sample::Index>(), flip in any::<(prop::sample::Index, u8)>()) {
        let bytes = encode_body(&request);
        let cut = cut.index(bytes.len() + 1);
        let _ = Request::decode(request.op_code(), &mut Reader::new(&bytes[..cut]));
        if !bytes.is_empty() {
            let mut mutated = bytes.clone();
            let at = flip.0.index(mutated.len());
            mutated[at] ^= flip.1 | 1;
            let _ = Request::decode(request.op_code(), &mut Reader::new(&mutated));
        }
    }

    #[test]
    fn random_bytes_never_panic_any_decoder(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        for op in OpCode::ALL {
            let _ = Request::decode(*op, &mut Reader::new(&bytes));
            let _ = Response::decode(*op, &mut Reader::new(&bytes));
        }
        let _ = ConnectRequest::from_bytes(&bytes);
        let _ = proto::RequestHeader::decode(&mut Reader::new(&bytes));
    }
}
