//! Admission and credit: a connection whose client does not read its
//! replies gets no more built for it than its credit allows, its requests
//! wait unanswered and in order, and it resumes exactly where it stopped
//! when the driver reports bytes written.

mod common;

use std::time::Duration;

use common::*;
use node::admission::{EVENTS_OVER_CREDIT_MAX, READS_QUEUED_MAX};
use node::{Action, ConnId, Input, Settings};
use proto::ops::{AddWatchRequest, MultiOp, Request};
use proto::{AddWatchMode, ErrorCode};

const CREDIT: u64 = 10_000;

fn small_credit() -> Settings {
    Settings {
        unsent_bytes_max: CREDIT,
        ..settings()
    }
}

/// The bytes handed to `conn` among `actions`.
fn bytes_to(actions: &[Action], conn: ConnId) -> u64 {
    actions
        .iter()
        .map(|a| match a {
            Action::Send { conn: c, bytes, .. } if *c == conn => bytes.len() as u64,
            _ => 0,
        })
        .sum()
}

fn xids(frames: &[Frame]) -> Vec<i32> {
    frames.iter().map(|f| f.xid).collect()
}

fn get_data_requests(xids: std::ops::Range<i32>, path: &str) -> Vec<(i32, Request)> {
    xids.map(|xid| (xid, get_data(path, false))).collect()
}

/// A pipelining client that reads nothing is answered only until its credit
/// is used up (one reply may overshoot); each report of bytes written lets
/// the next replies go, in request order, until every request is answered.
#[test]
fn replies_stop_at_the_credit_and_resume_when_bytes_are_written() {
    let mut h = Harness::new(small_credit());
    let (conn, _) = h.connect(10_000);
    h.call(conn, 1, create("/big", &[7; 3000], 0));
    let bytes = bytes_to(&h.history, conn);
    h.step(Input::Written { conn, bytes });

    let actions = h.send(conn, get_data_requests(10..30, "/big"));
    let first = frames_to(&actions, conn);
    let sent = bytes_to(&actions, conn);
    assert_eq!(
        xids(&first),
        (10..14).collect::<Vec<_>>(),
        "4 replies fill 10 kB"
    );
    assert!(
        (CREDIT..CREDIT + 3200).contains(&sent),
        "one reply of overshoot"
    );

    // Time passes and other inputs come: nothing more without a report.
    h.advance(Duration::from_millis(500));
    let actions = h.step(Input::Tick);
    assert!(frames_to(&actions, conn).is_empty());
    // A report below the credit's worth lets only as much go as it frees.
    let actions = h.step(Input::Written { conn, bytes: 3200 });
    assert_eq!(xids(&frames_to(&actions, conn)), vec![14]);

    let mut answered: Vec<i32> = (10..15).collect();
    let mut unsent = sent + bytes_to(&actions, conn) - 3200;
    while answered.len() < 20 {
        let actions = h.step(Input::Written {
            conn,
            bytes: unsent,
        });
        let frames = frames_to(&actions, conn);
        assert!(!frames.is_empty(), "a full report always frees room");
        answered.extend(xids(&frames));
        unsent = bytes_to(&actions, conn);
    }
    assert_eq!(answered, (10..30).collect::<Vec<_>>(), "request order kept");
}

/// Requests that wait for credit are taken as if the client sent them when
/// the credit came back: a write sent after a waiting read is not prepared
/// before that read is answered, so the read never sees it.
#[test]
fn a_write_behind_waiting_reads_is_prepared_only_after_they_are_answered() {
    let mut h = Harness::new(small_credit());
    let (conn, _) = h.connect(10_000);
    h.call(conn, 1, create("/big", &[1; 6000], 0));
    let bytes = bytes_to(&h.history, conn);
    h.step(Input::Written { conn, bytes });

    let mut requests = get_data_requests(2..5, "/big");
    requests.push((5, set_data("/big", b"new", -1)));
    let actions = h.send(conn, requests);
    assert_eq!(xids(&frames_to(&actions, conn)), vec![2, 3]);
    assert!(
        appends(&actions).is_empty(),
        "the setData waits, unprepared"
    );
    let pending = bytes_to(&actions, conn);

    let mut actions = h.step(Input::Written {
        conn,
        bytes: pending,
    });
    actions.extend(h.settle());
    let frames = frames_to(&actions, conn);
    assert_eq!(xids(&frames), vec![4, 5]);
    match frames[0].response(proto::OpCode::GetData) {
        proto::ops::Response::GetData(r) => {
            assert_eq!(r.data, Some(vec![1; 6000]), "the read sees the old data")
        }
        other => panic!("{other:?}"),
    }
}

/// Reads queued behind a write are all answered when it is applied, so at
/// most READS_QUEUED_MAX of them are queued; the rest are taken once the
/// write's reply is out, still in order and in the same step.
#[test]
fn reads_behind_a_write_are_queued_up_to_their_bound() {
    let mut h = Harness::new(settings());
    let (conn, _) = h.connect(10_000);
    let mut requests = vec![(1, create("/x", b"x", 0))];
    let reads = READS_QUEUED_MAX as i32 + 10;
    requests.extend(get_data_requests(2..2 + reads, "/x"));
    requests.push((100, create("/y", b"y", 0)));
    let actions = h.send(conn, requests);
    let records = appends(&actions);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0].len(),
        1,
        "only /x is prepared: /y waits behind the parked reads"
    );
    assert!(frames_to(&actions, conn).is_empty());

    let mut actions = h.durable();
    actions.extend(h.settle());
    let frames = frames_to(&actions, conn);
    let mut expected = vec![1];
    expected.extend(2..2 + reads);
    expected.push(100);
    assert_eq!(xids(&frames), expected);
    assert!(frames.iter().all(|f| f.error() == ErrorCode::Ok));
}

/// A client that keeps sending while it reads nothing is alive: its
/// requests touch its session when they arrive, even while they wait.
#[test]
fn waiting_requests_keep_their_session_alive() {
    let mut h = Harness::new(small_credit());
    let (conn, _) = h.connect(4000);
    h.call(conn, 1, create("/big", &[0; 12_000], 0));
    // One getData uses up the credit; the pings after it wait.
    let actions = h.send(conn, vec![(2, get_data("/big", false))]);
    assert_eq!(frames_to(&actions, conn).len(), 1);
    for _ in 0..10 {
        h.advance(Duration::from_millis(2000));
        let mut actions = h.send(conn, vec![(-2, Request::Ping)]);
        actions.extend(h.step(Input::Tick));
        assert!(closes(&actions).is_empty(), "the session did not expire");
        assert!(frames_to(&actions, conn).is_empty(), "the pings wait");
    }
}

/// Watch events are sent while the credit is used up, but only so many: a
/// connection sent more than EVENTS_OVER_CREDIT_MAX of them without reading
/// is closed, once, with a log line naming its peer.
#[test]
fn a_connection_that_reads_no_events_is_closed_past_their_bound() {
    let mut h = Harness::new(small_credit());
    let (watcher, _) = h.connect(10_000);
    let (writer, _) = h.connect(10_000);
    let frames = h.call(
        watcher,
        1,
        Request::AddWatch(AddWatchRequest {
            path: "/".into(),
            mode: AddWatchMode::PersistentRecursive.code(),
        }),
    );
    assert_eq!(frames[0].error(), ErrorCode::Ok);
    h.history.clear();
    let per_multi = 1000;
    let multis = EVENTS_OVER_CREDIT_MAX / per_multi + 2;
    let mut closed = Vec::new();
    let mut events = 0;
    for m in 0..multis {
        let ops = (0..per_multi)
            .map(|i| match create(&format!("/n{m}-{i}"), b"", 0) {
                Request::Create(c) => MultiOp::Create(c),
                _ => unreachable!(),
            })
            .collect();
        let frames = h.call(writer, m as i32 + 2, Request::Multi(ops));
        assert_eq!(frames[0].error(), ErrorCode::Ok);
        // The writer reads everything it is sent.
        let bytes = bytes_to(&h.history, writer);
        h.step(Input::Written {
            conn: writer,
            bytes,
        });
        events += frames_to(&h.history, watcher).len();
        closed.extend(closes(&h.history));
        h.history.clear();
    }
    assert_eq!(closed, vec![watcher]);
    let credit_events = events - EVENTS_OVER_CREDIT_MAX;
    assert!(
        credit_events > 0 && credit_events < CREDIT as usize / 10,
        "events sent: {events}, the bound and what fit in the credit"
    );
}
