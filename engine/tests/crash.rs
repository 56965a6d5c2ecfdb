//! Crash safety against the real binary: clients write and record what was
//! acknowledged while the server is killed with SIGKILL at random moments,
//! round after round. After every restart each acknowledged write is there,
//! no multi is half-applied, and the server's tree digest equals an offline
//! replay of the snapshot and log it left behind.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::Server;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const ROUNDS: u64 = 6;
const WRITERS: usize = 4;
const OPS_PER_WRITER_MAX: usize = 5_000;

/// What the clients were told: every acknowledged create or setData (path →
/// highest acknowledged counter value), and every multi pair attempted.
#[derive(Debug, Default)]
struct Acks {
    values: BTreeMap<String, u64>,
    pairs: Vec<(String, String)>,
}

async fn writer(address: String, round: u64, index: usize, acks: Arc<Mutex<Acks>>) {
    let Ok(client) = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&address)
        .await
    else {
        return;
    };
    let base = format!("/crash/r{round}w{index}");
    if client.create(&base, b"", &OPEN).await.is_err() {
        return;
    }
    let mut last = None;
    for op in 0..OPS_PER_WRITER_MAX {
        let counter = op as u64;
        let value = counter.to_string();
        let result = match (op % 4, &last) {
            (1, Some(path)) => {
                let path: String = Clone::clone(path);
                client
                    .set_data(&path, value.as_bytes(), None)
                    .await
                    .map(|_| path)
            }
            (3, _) => {
                let (a, b) = (format!("{base}/m{op}a"), format!("{base}/m{op}b"));
                acks.lock().unwrap().pairs.push((a.clone(), b.clone()));
                let mut multi = client.new_multi_writer();
                multi.add_create(&a, b"", &OPEN).unwrap();
                multi.add_create(&b, b"", &OPEN).unwrap();
                match multi.commit().await {
                    Ok(_) => Ok(a),
                    Err(_) => return,
                }
            }
            _ => {
                let path = format!("{base}/n{op}");
                client
                    .create(&path, value.as_bytes(), &OPEN)
                    .await
                    .map(|_| path)
            }
        };
        let Ok(path) = result else { return };
        if op % 4 != 3 {
            acks.lock().unwrap().values.insert(path.clone(), counter);
            last = Some(path);
        }
    }
}

/// The zxid and digest the server logged when it last recovered. (Asking
/// the live server with `hash` would race with the killed clients' sessions,
/// which reconnect and close after the restart.)
fn recovered_state(log: &str) -> (String, u64) {
    let line = log
        .lines()
        .rfind(|l| l.contains("recovered the data tree"))
        .expect("recovery logged");
    let field = |name: &str| {
        let start = line.find(&format!("{name}=")).expect("field logged") + name.len() + 1;
        line[start..]
            .split_whitespace()
            .next()
            .unwrap()
            .trim_matches('"')
            .to_string()
    };
    (field("zxid"), field("digest").parse().unwrap())
}

fn segment_count(server: &Server) -> usize {
    std::fs::read_dir(server.data_dir())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().starts_with("log."))
        })
        .count()
}

fn covers_snapshots_and_segments(server: &Server) -> bool {
    server.log().contains("snapshot written") && segment_count(server) > 3
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_sigkill() {
    // Small segments and a small snapCount so that crashes land during segment
    // switches and fuzzy snapshots too.
    let mut server = Server::start("snapCount=300\npreAllocSize=64\n");
    let setup = zk::Client::connector()
        .connect(&server.address())
        .await
        .unwrap();
    setup.create("/crash", b"", &OPEN).await.unwrap();
    drop(setup);
    let acks = Arc::new(Mutex::new(Acks::default()));
    let mut random = SmallRng::seed_from_u64(0x5EED);
    // Rounds are timed, so a slow machine gets less done in each: after the
    // first ROUNDS, go on (within a bound) until snapshots and segment
    // switches were both crossed.
    for round in 0..ROUNDS * 4 {
        if round >= ROUNDS && covers_snapshots_and_segments(&server) {
            break;
        }
        let tasks: Vec<_> = (0..WRITERS)
            .map(|index| tokio::spawn(writer(server.address(), round, index, Arc::clone(&acks))))
            .collect();
        tokio::time::sleep(Duration::from_millis(random.gen_range(300..1200))).await;
        server.kill();
        for task in tasks {
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("writer ends")
                .unwrap();
        }
        let offline = engine::storage::recover(&server.data_dir(), &server.data_dir())
            .expect("offline recovery");
        server.restart();
        let expected = (
            format!("0x{:x}", offline.tree.last_processed_zxid()),
            offline.tree.digest(),
        );
        assert_eq!(
            recovered_state(&server.log()),
            expected,
            "round {round}: server and offline replay disagree"
        );
        let snapshot = {
            let acks = acks.lock().unwrap();
            Acks {
                values: acks.values.clone(),
                pairs: acks.pairs.clone(),
            }
        };
        check(&server, &snapshot, round).await;
    }
    let acks = acks.lock().unwrap();
    eprintln!(
        "acknowledged values: {}, multi pairs: {}",
        acks.values.len(),
        acks.pairs.len()
    );
    assert!(
        acks.values.len() > 300,
        "the clients should have got far between crashes"
    );
    let log = server.log();
    assert!(
        log.contains("snapshot written"),
        "the test should cover snapshots"
    );
    assert!(
        segment_count(&server) > 3,
        "the test should cover segment switches"
    );
}

async fn check(server: &Server, acks: &Acks, round: u64) {
    let client = zk::Client::connector()
        .connect(&server.address())
        .await
        .unwrap();
    for (path, counter) in &acks.values {
        let (data, _) = client
            .get_data(path)
            .await
            .unwrap_or_else(|err| panic!("round {round}: acknowledged {path} lost: {err}"));
        let stored: u64 = String::from_utf8(data).unwrap().parse().unwrap();
        assert!(
            stored >= *counter,
            "round {round}: {path} went back from {counter} to {stored}"
        );
    }
    for (a, b) in &acks.pairs {
        let a_exists = client.check_stat(a).await.unwrap().is_some();
        let b_exists = client.check_stat(b).await.unwrap().is_some();
        assert_eq!(
            a_exists, b_exists,
            "round {round}: multi half-applied: {a} {b}"
        );
    }
}
