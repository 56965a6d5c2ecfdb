//! The load generator against a fake ZooKeeper server whose answers have
//! known delays and error codes, so its counts and percentiles can be checked
//! by hand.
//!
//! The fake server runs on 127.0.0.1, one reader and one writer thread per
//! connection: the reader stamps each request with the time its reply is due
//! (arrival + the delay the test chose for its xid), the writer sends replies
//! in arrival order, each no earlier than its due time. So requests are
//! answered in order (as ZooKeeper does) and pipelined requests overlap.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bench::driver::{self, RunConfig, RunLength};
use bench::stats::{nearest_rank, RunReport};
use bench::workload::Workload;
use proto::ops::{encode_reply, CreateResponse, GetDataResponse, Response, SetDataResponse};
use proto::{ConnectResponse, ErrorCode, OpCode, Reader, Record, RequestHeader, Stat};

/// The delay and error code of the reply to request `xid` on a connection
/// (setup connections included; the load generator's sessions number their
/// requests from xid 1).
type Behaviour = dyn Fn(i32) -> (Duration, ErrorCode) + Send + Sync;

struct FakeServer {
    addr: SocketAddr,
    sessions: Arc<AtomicUsize>,
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut frame = vec![0; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

fn body_for(op: OpCode) -> Response {
    match op {
        OpCode::Create => Response::Create(CreateResponse { path: "/x".into() }),
        OpCode::SetData => Response::SetData(SetDataResponse {
            stat: Stat::default(),
        }),
        OpCode::GetData => Response::GetData(GetDataResponse {
            data: Some(vec![1; 10]),
            stat: Stat::default(),
        }),
        _ => Response::Empty,
    }
}

impl FakeServer {
    fn start(behaviour: Arc<Behaviour>) -> FakeServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let sessions = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&sessions);
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let id = counter.fetch_add(1, Ordering::SeqCst) as i64 + 1;
                let behaviour = Arc::clone(&behaviour);
                thread::spawn(move || serve(stream, id, behaviour));
            }
        });
        FakeServer { addr, sessions }
    }
}

fn serve(mut stream: TcpStream, session_id: i64, behaviour: Arc<Behaviour>) {
    stream.set_nodelay(true).unwrap();
    if read_frame(&mut stream).is_none() {
        return;
    }
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30_000,
        session_id,
        password: vec![0; 16],
        read_only: Some(false),
    };
    let mut frame = (response.to_bytes().len() as i32).to_be_bytes().to_vec();
    frame.extend(response.to_bytes());
    stream.write_all(&frame).unwrap();

    let (tx, rx) = mpsc::channel::<(Instant, Vec<u8>, bool)>();
    let mut writer = stream.try_clone().unwrap();
    let writer = thread::spawn(move || {
        for (due, reply, close) in rx {
            let now = Instant::now();
            if due > now {
                thread::sleep(due - now);
            }
            if writer.write_all(&reply).is_err() || close {
                return;
            }
        }
    });
    let mut zxid = 0;
    while let Some(frame) = read_frame(&mut stream) {
        let arrived = Instant::now();
        let header = RequestHeader::decode(&mut Reader::new(&frame)).unwrap();
        let op = OpCode::from_code(header.op).unwrap();
        zxid += 1;
        let (delay, err, close) = match op {
            OpCode::Ping => (Duration::ZERO, ErrorCode::Ok, false),
            OpCode::CloseSession => (Duration::ZERO, ErrorCode::Ok, true),
            _ => {
                let (delay, err) = behaviour(header.xid);
                (delay, err, false)
            }
        };
        let reply = encode_reply(header.xid, zxid, err, Some(&body_for(op)));
        if tx.send((arrived + delay, reply, close)).is_err() || close {
            break;
        }
    }
    drop(tx);
    let _ = writer.join();
}

fn config(
    server: &FakeServer,
    workload: Workload,
    sessions: usize,
    outstanding: usize,
) -> RunConfig {
    let mut c = RunConfig::new(server.addr, workload);
    c.sessions = sessions;
    c.outstanding = outstanding;
    c.record_samples = true;
    c.drain_timeout = Duration::from_secs(5);
    c.time_limit = Duration::from_secs(60);
    c
}

fn run(c: &RunConfig) -> RunReport {
    driver::run(c, &Arc::new(AtomicBool::new(false))).expect("run succeeds")
}

fn sorted_samples(report: &RunReport) -> Vec<u64> {
    let mut samples = report.samples.clone().expect("samples recorded");
    samples.sort_unstable();
    samples
}

const MS: u64 = 1_000_000;

/// Every 10th request takes 50 ms, the rest 2 ms, every 7th fails with
/// NODEEXISTS: the counts, the error table and the percentiles come out as
/// counted by hand, and the reported percentiles are the exact nearest-rank
/// percentiles of the measured samples (within HdrHistogram's 0.1%).
#[test]
fn percentiles_and_errors_match_a_hand_count() {
    let server = FakeServer::start(Arc::new(|xid| {
        let delay = if xid % 10 == 0 { 50 } else { 2 };
        let err = if xid % 7 == 0 {
            ErrorCode::NodeExists
        } else {
            ErrorCode::Ok
        };
        (Duration::from_millis(delay), err)
    }));
    let mut c = config(&server, Workload::Create, 1, 1);
    c.length = RunLength::Ops(200);
    let report = run(&c);

    assert_eq!(report.ops, 200);
    assert_eq!(report.latency.count, 200);
    assert_eq!(report.errors.len(), 1);
    assert_eq!(report.errors[0].code, -110);
    assert_eq!(report.errors[0].count, 200 / 7);
    assert_eq!(report.unanswered, 0);

    let samples = sorted_samples(&report);
    assert_eq!(samples.len(), 200);
    // 20 slow requests (xids 10, 20, ..., 200), 180 fast ones, by hand:
    let slow = samples.iter().filter(|&&ns| ns >= 50 * MS).count();
    assert_eq!(slow, 20, "samples: {samples:?}");
    assert!(samples[0] >= 2 * MS, "no reply can beat its delay");
    // Nearest rank: p50 is the 100th sample and p90 the 180th — both fast;
    // p91 is the 182nd — slow.
    assert!(nearest_rank(&samples, 0.90) < 50 * MS);
    assert!(nearest_rank(&samples, 0.91) >= 50 * MS);

    let us = |ns: u64| ns as f64 / 1000.0;
    for (q, reported) in [
        (0.5, report.latency.p50_us),
        (0.9, report.latency.p90_us),
        (0.99, report.latency.p99_us),
        (0.999, report.latency.p999_us),
        (1.0, report.latency.max_us),
    ] {
        let exact = us(nearest_rank(&samples, q));
        assert!(
            reported >= exact && reported <= exact * 1.001 + 0.001,
            "q={q}: exact {exact} µs, reported {reported} µs"
        );
    }
}

/// Open loop without coordinated omission: at 500 requests/s with one
/// request in flight, a server that stalls 200 ms once holds back ~100
/// scheduled requests; each is charged from its scheduled time, so about half
/// of them show ≥ 100 ms. A generator that measured from the actual send
/// would show exactly one.
#[test]
fn open_loop_charges_a_stall_to_every_delayed_request() {
    let server = FakeServer::start(Arc::new(|xid| {
        let delay = if xid == 100 { 200 } else { 0 };
        (Duration::from_millis(delay), ErrorCode::Ok)
    }));
    let mut c = config(&server, Workload::SetData, 1, 1);
    c.workload = Workload::Create; // no key space needed on the fake server
    c.rate = Some(500.0);
    c.length = RunLength::Timed {
        warmup: Duration::ZERO,
        duration: Duration::from_secs(1),
    };
    let report = run(&c);
    let samples = sorted_samples(&report);
    let delayed = samples.iter().filter(|&&ns| ns >= 100 * MS).count();
    eprintln!(
        "delayed {delayed}, count {}, max {} µs",
        report.latency.count, report.latency.max_us
    );
    assert!(
        (35..=70).contains(&delayed),
        "{delayed} samples ≥ 100 ms; expected about 50"
    );
    assert!(report.latency.max_us >= 200_000.0);
    // The schedule, not the server, sets the pace: ~500 requests in 1 s.
    assert!(
        (450..=510).contains(&report.latency.count),
        "{}",
        report.latency.count
    );
}

/// Pipelining: a server that answers every request after 20 ms serves
/// 1 session × 1 outstanding at ~50/s and 4 sessions × 8 outstanding
/// (on 2 threads) at ~32× that.
#[test]
fn pipelining_multiplies_throughput_by_requests_in_flight() {
    let server = FakeServer::start(Arc::new(|_| (Duration::from_millis(20), ErrorCode::Ok)));
    let timed = RunLength::Timed {
        warmup: Duration::from_millis(200),
        duration: Duration::from_secs(1),
    };
    let mut serial = config(&server, Workload::Create, 1, 1);
    serial.length = timed;
    let serial = run(&serial);
    let before = server.sessions.load(Ordering::SeqCst);
    let mut piped = config(&server, Workload::Create, 4, 8);
    piped.threads = 2;
    piped.length = timed;
    let piped = run(&piped);
    // 4 load sessions plus the setup connection.
    assert_eq!(server.sessions.load(Ordering::SeqCst) - before, 5);
    assert_eq!(piped.sessions_connected, 4);
    assert!(
        (35.0..=52.0).contains(&serial.throughput),
        "serial {}",
        serial.throughput
    );
    // 32 in flight against 1: ~32×. On a loaded machine every scheduling
    // delay costs the serial run a whole round trip and the pipelined one a
    // fraction of one, so the ratio can pass 32 (34.5 seen in CI-like runs).
    let ratio = piped.throughput / serial.throughput;
    assert!((20.0..=40.0).contains(&ratio), "ratio {ratio}");
    assert!(serial.latency.p50_us >= 20_000.0 && piped.latency.p50_us >= 20_000.0);
}

/// `--ops` sends exactly that many requests across sessions and threads, and
/// every one is measured.
#[test]
fn op_count_is_exact_across_threads() {
    let server = FakeServer::start(Arc::new(|_| (Duration::ZERO, ErrorCode::Ok)));
    let mut c = config(&server, Workload::Create, 6, 4);
    c.threads = 3;
    c.length = RunLength::Ops(3_001);
    let report = run(&c);
    assert_eq!(report.ops, 3_001);
    assert_eq!(report.latency.count, 3_001);
    assert_eq!(report.errors_total, 0);
    assert_eq!(report.sessions_connected, 6);
}
