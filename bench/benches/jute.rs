//! jute encode/decode of the requests and replies a ZooKeeper server handles
//! most: what one frame costs the server's codec (`proto`), per frame.
//!
//! `cargo bench -p bench --bench jute`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use proto::ops::{
    encode_reply, encode_request, CreateRequest, CreateResponse, GetChildrenRequest,
    GetChildrenResponse, GetDataRequest, GetDataResponse, MultiOp, MultiResult, Request, Response,
    SetDataRequest, SetDataResponse,
};
use proto::{
    Acl, ConnectRequest, ErrorCode, OpCode, Reader, Record, ReplyHeader, RequestHeader, Stat,
};

fn stat() -> Stat {
    Stat {
        czxid: 0x1_0000_0042,
        mzxid: 0x1_0000_0042,
        ctime: 1_764_000_000_000,
        mtime: 1_764_000_000_000,
        version: 3,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0,
        data_length: 100,
        num_children: 0,
        pzxid: 0x1_0000_0042,
    }
}

fn requests() -> Vec<(&'static str, Request)> {
    let value = vec![b'v'; 100];
    let path = "/fkbench/keys/k00001234".to_string();
    vec![
        (
            "create-100B",
            Request::Create(CreateRequest {
                path: path.clone(),
                data: Some(value.clone()),
                acl: Acl::open_unsafe(),
                flags: 0,
            }),
        ),
        (
            "setData-100B",
            Request::SetData(SetDataRequest {
                path: path.clone(),
                data: Some(value.clone()),
                version: -1,
            }),
        ),
        (
            "getData",
            Request::GetData(GetDataRequest {
                path: path.clone(),
                watch: true,
            }),
        ),
        (
            "getChildren",
            Request::GetChildren(GetChildrenRequest {
                path: "/fkbench/keys".into(),
                watch: false,
            }),
        ),
        (
            "multi-3",
            Request::Multi(vec![
                MultiOp::Check(proto::ops::CheckVersionRequest {
                    path: path.clone(),
                    version: 3,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: path.clone(),
                    data: Some(value.clone()),
                    version: 3,
                }),
                MultiOp::Create(CreateRequest {
                    path: format!("{path}-lock"),
                    data: Some(vec![]),
                    acl: Acl::open_unsafe(),
                    flags: 1,
                }),
            ]),
        ),
    ]
}

fn replies() -> Vec<(&'static str, OpCode, Response)> {
    vec![
        (
            "create",
            OpCode::Create,
            Response::Create(CreateResponse {
                path: "/fkbench/run-1/s3-12345".into(),
            }),
        ),
        (
            "setData",
            OpCode::SetData,
            Response::SetData(SetDataResponse { stat: stat() }),
        ),
        (
            "getData-100B",
            OpCode::GetData,
            Response::GetData(GetDataResponse {
                data: Some(vec![b'v'; 100]),
                stat: stat(),
            }),
        ),
        (
            "getChildren-100",
            OpCode::GetChildren,
            Response::GetChildren(GetChildrenResponse {
                children: (0..100).map(|i| format!("k{i:08}")).collect(),
            }),
        ),
        (
            "multi-3",
            OpCode::Multi,
            Response::Multi(vec![
                MultiResult::Check,
                MultiResult::SetData { stat: stat() },
                MultiResult::Create {
                    path: "/fkbench/keys/k00001234-lock".into(),
                },
            ]),
        ),
    ]
}

/// The server's side of a request: decode header and body from a frame.
fn decode_request(frame: &[u8]) -> Request {
    let mut r = Reader::new(&frame[4..]);
    let header = RequestHeader::decode(&mut r).expect("header");
    let op = OpCode::from_code(header.op).expect("opcode");
    let request = Request::decode(op, &mut r).expect("body");
    r.finish().expect("whole frame");
    request
}

/// A client's side of a reply.
fn decode_reply(op: OpCode, frame: &[u8]) -> Response {
    let mut r = Reader::new(&frame[4..]);
    let header = ReplyHeader::decode(&mut r).expect("header");
    assert_eq!(header.err, 0);
    Response::decode(op, &mut r).expect("body")
}

fn bench_requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("request");
    for (name, request) in requests() {
        let frame = encode_request(7, &request);
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(BenchmarkId::new("encode", name), &request, |b, request| {
            b.iter(|| encode_request(black_box(7), black_box(request)))
        });
        group.bench_with_input(BenchmarkId::new("decode", name), &frame, |b, frame| {
            b.iter(|| decode_request(black_box(frame)))
        });
    }
    // The load generator's in-place encoder for the same create, for scale.
    let value = vec![b'v'; 100];
    let mut out = Vec::with_capacity(4096);
    group.throughput(Throughput::Bytes(
        encode_request(7, &requests()[0].1).len() as u64
    ));
    group.bench_function("encode/create-100B-in-place (fk-loadgen)", |b| {
        b.iter(|| {
            out.clear();
            bench::wire::put_create(&mut out, black_box(7), "/fkbench/keys/k00001234", &value);
            black_box(out.len())
        })
    });
    let connect = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        timeout_ms: 30_000,
        session_id: 0,
        password: vec![0; 16],
        read_only: Some(false),
    }
    .to_bytes();
    group.throughput(Throughput::Bytes(connect.len() as u64));
    group.bench_function("decode/connect", |b| {
        b.iter(|| ConnectRequest::from_bytes(black_box(&connect)).expect("decodes"))
    });
    group.finish();
}

fn bench_replies(c: &mut Criterion) {
    let mut group = c.benchmark_group("reply");
    for (name, op, response) in replies() {
        let frame = encode_reply(7, 0x1_0000_0042, ErrorCode::Ok, Some(&response));
        group.throughput(Throughput::Bytes(frame.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("encode", name),
            &response,
            |b, response| {
                b.iter(|| {
                    encode_reply(
                        black_box(7),
                        0x1_0000_0042,
                        ErrorCode::Ok,
                        Some(black_box(response)),
                    )
                })
            },
        );
        group.bench_with_input(BenchmarkId::new("decode", name), &frame, |b, frame| {
            b.iter(|| decode_reply(op, black_box(frame)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_requests, bench_replies);
criterion_main!(benches);
