//! The failover load against two fake servers that share one store, as an
//! ensemble's servers share one tree: server A applies its 50th load create
//! without answering it, then drops every connection and refuses new ones
//! (a crash); server B answers everything.
//!
//! What is proven: the session on A resumes its session on B (same id);
//! nothing is ever sent twice; what was in flight on A is recorded as
//! uncertain, not acknowledged, and the create A applied silently is found
//! among them; every acknowledged create is in the store; and `verify`
//! counts exactly that.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use bench::failover::{self, FailoverConfig, FailoverLoad};
use proto::ops::{encode_reply, CreateResponse, GetChildrenResponse, Response};
use proto::{ConnectRequest, ConnectResponse, ErrorCode, OpCode, Reader, Record, RequestHeader};

/// The load create on A after which A crashes.
const CRASH_AFTER: usize = 50;

#[derive(Default)]
struct Store {
    applied: HashSet<String>,
    /// Every create path any server received, in arrival order.
    received: Vec<String>,
    /// (server, session id asked for in the handshake, session id given).
    handshakes: Vec<(char, i64, i64)>,
    next_session: i64,
    load_creates_on_a: usize,
}

struct Fake {
    addr: SocketAddr,
}

fn read_frame(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut length = [0u8; 4];
    stream.read_exact(&mut length).ok()?;
    let mut frame = vec![0; i32::from_be_bytes(length) as usize];
    stream.read_exact(&mut frame).ok()?;
    Some(frame)
}

impl Fake {
    fn start(name: char, store: Arc<Mutex<Store>>, down: Arc<AtomicBool>) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                if down.load(Ordering::SeqCst) {
                    continue; // dropped: closed at once
                }
                let (store, down) = (Arc::clone(&store), Arc::clone(&down));
                thread::spawn(move || serve(name, stream, store, down));
            }
        });
        Fake { addr }
    }
}

fn serve(name: char, mut stream: TcpStream, store: Arc<Mutex<Store>>, down: Arc<AtomicBool>) {
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let Some(frame) = read_frame(&mut stream) else {
        return;
    };
    let request = ConnectRequest::from_bytes(&frame).unwrap();
    let session_id = {
        let mut s = store.lock().unwrap();
        let id = if request.session_id != 0 {
            request.session_id
        } else {
            s.next_session += 1;
            s.next_session
        };
        s.handshakes.push((name, request.session_id, id));
        id
    };
    let response = ConnectResponse {
        protocol_version: 0,
        timeout_ms: 30_000,
        session_id,
        password: vec![1; 16],
        read_only: Some(false),
    };
    let body = response.to_bytes();
    let mut out = (body.len() as i32).to_be_bytes().to_vec();
    out.extend(body);
    stream.write_all(&out).unwrap();
    let mut zxid = 100;
    loop {
        if down.load(Ordering::SeqCst) {
            return; // crashed: the socket closes with nothing more said
        }
        let Some(frame) = read_frame(&mut stream) else {
            // A read timeout only means "check again"; EOF ends the session.
            let mut probe = [0u8; 1];
            match stream.peek(&mut probe) {
                Ok(0) => return,
                _ => continue,
            }
        };
        let header = RequestHeader::decode(&mut Reader::new(&frame)).unwrap();
        let op = OpCode::from_code(header.op).unwrap();
        let path = || Reader::new(&frame[8..]).read_ustring().unwrap();
        zxid += 1;
        let body = match op {
            OpCode::Create => {
                let path = path();
                let mut s = store.lock().unwrap();
                s.received.push(path.clone());
                let new = s.applied.insert(path.clone());
                if name == 'A' && path.contains("/n") {
                    s.load_creates_on_a += 1;
                    if s.load_creates_on_a == CRASH_AFTER {
                        // Applied, never answered: then the crash.
                        down.store(true, Ordering::SeqCst);
                        return;
                    }
                }
                if !new {
                    let reply = encode_reply(header.xid, zxid, ErrorCode::NodeExists, None);
                    stream.write_all(&reply).unwrap();
                    continue;
                }
                Response::Create(CreateResponse { path })
            }
            OpCode::GetChildren => {
                let dir = path() + "/";
                let s = store.lock().unwrap();
                let children = s
                    .applied
                    .iter()
                    .filter_map(|p| p.strip_prefix(&dir))
                    .filter(|rest| !rest.contains('/'))
                    .map(str::to_owned)
                    .collect();
                Response::GetChildren(GetChildrenResponse { children })
            }
            OpCode::CloseSession => {
                let reply = encode_reply(header.xid, zxid, ErrorCode::Ok, None);
                let _ = stream.write_all(&reply);
                return;
            }
            _ => Response::Empty, // sync, ping
        };
        let reply = encode_reply(header.xid, zxid, ErrorCode::Ok, Some(&body));
        if stream.write_all(&reply).is_err() {
            return;
        }
    }
}

#[test]
fn a_lost_server_moves_the_session_and_nothing_is_sent_twice() {
    let store = Arc::new(Mutex::new(Store::default()));
    let a_down = Arc::new(AtomicBool::new(false));
    let a = Fake::start('A', Arc::clone(&store), Arc::clone(&a_down));
    let b = Fake::start('B', Arc::clone(&store), Arc::new(AtomicBool::new(false)));
    let mut config = FailoverConfig::new(vec![a.addr, b.addr]);
    config.sessions = 2;
    config.outstanding = 4;
    config.rate = None;
    config.buckets = 2;
    let load = FailoverLoad::start(config.clone(), "/fkbench/run-failover-test".into()).unwrap();
    let run_dir = load.run_dir.clone();

    // Wait for the crash, then for progress on B after it.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !a_down.load(Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "A never reached its crash point");
        thread::sleep(Duration::from_millis(5));
    }
    let after_crash = load.acked();
    while load.acked() < after_crash + 500 {
        assert!(Instant::now() < deadline, "no progress after the crash");
        thread::sleep(Duration::from_millis(5));
    }
    let record = load.stop();

    let s = store.lock().unwrap();
    let unique: HashSet<&String> = s.received.iter().collect();
    assert_eq!(unique.len(), s.received.len(), "a create was sent twice");
    // Session 0 started on A (the last new session there; the first was
    // the setup's) and resumed on B with the same id.
    let a_session = s
        .handshakes
        .iter()
        .rev()
        .find(|h| h.0 == 'A' && h.1 == 0 && h.2 != 0)
        .map(|h| h.2)
        .expect("a session opened on A");
    assert!(
        s.handshakes
            .iter()
            .any(|h| h.0 == 'B' && h.1 == a_session && h.2 == a_session),
        "the session on A resumed on B: {:?}",
        s.handshakes
    );
    assert!(record.connections_lost >= 1);
    assert!(
        (1..=config.outstanding).contains(&record.uncertain.len()),
        "in flight at the crash: {:?}",
        record.uncertain
    );
    let acked: HashSet<_> = record.acked.iter().collect();
    assert!(record.uncertain.iter().all(|id| !acked.contains(id)));
    let path_of = |id| failover::create_path(&run_dir, id, config.buckets);
    for &id in &record.acked {
        assert!(
            s.applied.contains(&path_of(id)),
            "acknowledged {id:?} missing"
        );
    }
    let applied_uncertain = record
        .uncertain
        .iter()
        .filter(|&&id| s.applied.contains(&path_of(id)))
        .count();
    assert_eq!(
        applied_uncertain, 1,
        "the create A applied without answering"
    );
    assert_eq!(record.ack_ns.len(), record.acked.len());
    assert!(record.ack_ns.windows(2).all(|w| w[0] <= w[1]));
    drop(s);

    let checks = failover::verify(
        &[b.addr],
        &run_dir,
        &config,
        &record,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(checks[0].acked_missing, 0);
    assert_eq!(checks[0].acked_present, record.acked.len() as u64);
    assert_eq!(checks[0].uncertain_present, 1);
    assert_eq!(checks[0].unknown_present, 0);
}
