//! Unit tests of history_file: each proves the checker passes what a
//! correct ensemble records and fails each kind of wrong history.

use super::*;
use serde_json::{json, Value};

/// Zxids of the history below: the root's create, then one per write.
const Z: i64 = 0x1_0000_0000;

fn create(path: &str, data: &str) -> Value {
    json!({"kind": "create", "path": path, "data": data, "mode": 0})
}

fn op(client: u32, call: u64, op: Value, receipt: Option<&str>, ret: Value) -> Value {
    json!({"client": client, "session": 100 + i64::from(client), "xid": call, "call": call,
           "op": op, "receipt": receipt, "ret": ret})
}

fn ret(at: u64, zxid: i64, outcome: Value) -> Value {
    json!({"at": at, "zxid": zxid, "outcome": outcome})
}

fn node(path: &str, data: &str, version: i32, czxid: i64, children: i32) -> Value {
    json!({"path": path, "data": data, "version": version, "czxid": czxid,
           "num_children": children, "ephemeral_owner": 0})
}

fn data(value: &str, version: i32) -> Value {
    json!({"kind": "data", "data": value,
           "stat": {"version": version, "ephemeral_owner": 0, "num_children": 0,
                    "data_length": value.len()}})
}

/// Client 0 makes /t, /t/r and /t/k; client 0 sets /t/k in a multi with
/// a receipt; client 1 reads the new value; client 1's multi gets no reply
/// but its receipt is in the final tree, and client 0's second one gets
/// none and left no receipt.
fn valid() -> Value {
    let set = |value: &str, receipt: &str| {
        json!({"kind": "multi", "ops": [
            {"kind": "set_data", "path": "/t/k", "data": value, "version": -1},
            {"kind": "create", "path": receipt, "data": "", "mode": 0}]})
    };
    let multi_done = |version: i32, receipt: &str| {
        json!({"kind": "multi", "results": [
            {"kind": "data_set", "version": version}, {"kind": "created", "path": receipt}]})
    };
    let ops = vec![
        op(
            0,
            1,
            create("/t", ""),
            Some("/t"),
            ret(2, Z, json!({"kind": "created", "path": "/t"})),
        ),
        op(
            0,
            3,
            create("/t/r", ""),
            Some("/t/r"),
            ret(4, Z + 1, json!({"kind": "created", "path": "/t/r"})),
        ),
        op(
            0,
            5,
            create("/t/k", "a"),
            Some("/t/k"),
            ret(6, Z + 2, json!({"kind": "created", "path": "/t/k"})),
        ),
        op(
            0,
            7,
            set("b", "/t/r/0-1"),
            Some("/t/r/0-1"),
            ret(8, Z + 3, multi_done(1, "/t/r/0-1")),
        ),
        op(
            1,
            9,
            json!({"kind": "get_data", "path": "/t/k"}),
            None,
            ret(10, Z + 3, data("b", 1)),
        ),
        op(1, 11, set("c", "/t/r/1-1"), Some("/t/r/1-1"), Value::Null),
        op(0, 12, set("d", "/t/r/0-2"), Some("/t/r/0-2"), Value::Null),
        op(
            1,
            13,
            json!({"kind": "get_data", "path": "/t/k"}),
            None,
            Value::Null,
        ),
    ];
    let tree = vec![
        node("/t", "", 0, Z, 2),
        node("/t/r", "", 0, Z + 1, 2),
        node("/t/k", "c", 2, Z + 2, 0),
        node("/t/r/0-1", "", 0, Z + 3, 0),
        node("/t/r/1-1", "", 0, Z + 4, 0),
    ];
    json!({"format": FORMAT, "root": "/t", "ops": ops, "final": tree})
}

fn check(history: &Value) -> Result<Report, HistoryViolation> {
    parse(&history.to_string())
        .expect("a well-formed file")
        .check()
}

#[test]
fn a_valid_history_passes_and_unanswered_writes_are_placed_by_receipt() {
    // Proves the conversion and the checks accept what a correct
    // ensemble produces, placing or dropping the unanswered writes.
    let report = check(&valid()).expect("valid");
    assert_eq!(
        report,
        Report {
            ops: 8,
            answered: 5,
            placed_by_receipt: 1,
            placed_by_evidence: 0,
            never_happened: 1,
            unanswered_reads: 1,
            final_nodes: 5,
        }
    );
}

#[test]
fn a_lost_acknowledged_write_fails() {
    // The final tree lacks the receipt of the acknowledged set of /t/k:
    // the servers lost an acknowledged write.
    let mut history = valid();
    let tree = history["final"].as_array_mut().unwrap();
    tree.retain(|n| n["path"] != "/t/r/0-1");
    tree[1]["num_children"] = json!(1);
    let violation = check(&history).unwrap_err();
    assert!(
        matches!(&violation, HistoryViolation::AcknowledgedWriteMoved { receipt, found, .. }
            if receipt == "/t/r/0-1" && found == "absent"),
        "{violation}"
    );
    // And a final tree whose data went back to an older value.
    let mut history = valid();
    history["final"][2]["data"] = json!("b");
    assert!(matches!(
        check(&history),
        Err(HistoryViolation::FinalTreeDiffers { .. })
    ));
    // And one holding a node no write made.
    let mut history = valid();
    history["final"][0]["num_children"] = json!(3);
    let tree = history["final"].as_array_mut().unwrap();
    tree.push(node("/t/ghost", "", 0, Z + 9, 0));
    assert!(matches!(
        check(&history),
        Err(HistoryViolation::FinalTreeDiffers { path, .. }) if path == "/t"
    ));
}

#[test]
fn stale_reads_fail() {
    // A read claiming the set's zxid but answering the old value.
    let mut history = valid();
    history["ops"][4]["ret"] = ret(10, Z + 3, data("a", 0));
    let violation = check(&history).unwrap_err();
    assert!(
        matches!(
            violation,
            HistoryViolation::NotSequentiallyConsistent { .. }
        ),
        "{violation}"
    );
    // A session that read the new value and then an older one.
    let mut history = valid();
    history["ops"][7]["ret"] = ret(14, Z + 2, data("a", 0));
    let violation = check(&history).unwrap_err();
    assert!(
        matches!(violation, HistoryViolation::SessionOrderBroken { .. }),
        "{violation}"
    );
    // A stale read by another session is sequentially consistent.
    let mut history = valid();
    history["ops"][4]["ret"] = ret(10, Z + 2, data("a", 0));
    assert!(check(&history).is_ok());
}

#[test]
fn replies_out_of_request_order_fail() {
    // Client 0's second op answered before its first.
    let mut history = valid();
    history["ops"][1]["ret"]["at"] = json!(20);
    assert!(matches!(
        check(&history),
        Err(HistoryViolation::RepliesOutOfOrder { client: 0, .. })
    ));
}

#[test]
fn an_unanswered_write_whose_receipt_names_an_acknowledged_txn_fails() {
    // The receipt of client 1's unanswered multi claims the zxid the
    // server acknowledged to client 0's set: one txn, two writes.
    let mut history = valid();
    history["final"][4]["czxid"] = json!(Z + 3);
    assert!(matches!(
        check(&history),
        Err(HistoryViolation::ZxidReused { zxid, .. }) if zxid == Z + 3
    ));
}

#[test]
fn receipts_must_agree_with_what_writes_were_told() {
    // A write told it is txn Z whose receipt was created at another
    // zxid, and a write told it failed whose receipt exists.
    let mut history = valid();
    history["final"][3]["czxid"] = json!(Z + 5);
    assert!(matches!(
        check(&history),
        Err(HistoryViolation::AcknowledgedWriteMoved { zxid, .. }) if zxid == Z + 3
    ));
    let mut history = valid();
    history["ops"][3]["ret"]["outcome"] = json!({"kind": "multi_failed", "codes": [-103, -2]});
    assert!(matches!(
        check(&history),
        Err(HistoryViolation::RefusedWriteApplied { .. })
    ));
}

#[test]
fn malformed_files_are_refused() {
    // An unanswered write needs a receipt; a reply comes after its call.
    let mut history = valid();
    history["ops"][5]["receipt"] = Value::Null;
    assert!(matches!(
        parse(&history.to_string()),
        Err(FileError::NoReceipt { op: 5 })
    ));
    let mut history = valid();
    history["ops"][0]["ret"]["at"] = json!(1);
    assert!(matches!(
        parse(&history.to_string()),
        Err(FileError::ReplyBeforeCall { op: 0, .. })
    ));
    let mut history = valid();
    history["format"] = json!("other");
    assert!(matches!(
        parse(&history.to_string()),
        Err(FileError::UnknownFormat { .. })
    ));
}

/// Client 0 makes /t, /t/p and /t/p/x (data "a"), then sends `last` on
/// /t/p/x with `evidence` and gets no reply; `x` is the final /t/p/x (or
/// none) and `pzxid` the final /t/p's.
fn owned(last: Value, evidence: Value, x: Option<Value>, pzxid: i64) -> Value {
    let created = |path: &str| json!({"kind": "created", "path": path});
    let ops = vec![
        op(0, 1, create("/t", ""), Some("/t"), ret(2, Z, created("/t"))),
        op(
            0,
            3,
            create("/t/p", ""),
            Some("/t/p"),
            ret(4, Z + 1, created("/t/p")),
        ),
        op(
            0,
            5,
            create("/t/p/x", "a"),
            None,
            ret(6, Z + 2, created("/t/p/x")),
        ),
        json!({"client": 0, "session": 100, "xid": 7, "call": 7, "op": last,
               "receipt": null, "evidence": evidence, "ret": null}),
    ];
    let mut parent = node("/t/p", "", 0, Z + 1, i32::from(x.is_some()));
    parent["pzxid"] = json!(pzxid);
    let mut tree = vec![node("/t", "", 0, Z, 1), parent];
    tree.extend(x);
    json!({"format": FORMAT, "root": "/t", "ops": ops, "final": tree})
}

fn x_node(data: &str, version: i32, mzxid: i64) -> Value {
    let mut x = node("/t/p/x", data, version, Z + 2, 0);
    x["mzxid"] = json!(mzxid);
    x
}

#[test]
fn unanswered_plain_writes_are_placed_by_their_evidence() {
    // A setData whose data is in the final tree happened (at its mzxid);
    // one whose data is not never did; a delete whose node is gone
    // happened at the parent's pzxid.
    let set = json!({"kind": "set_data", "path": "/t/p/x", "data": "b", "version": 0});
    let by_data = json!({"kind": "data", "path": "/t/p/x"});
    let seen = check(&owned(
        set.clone(),
        by_data.clone(),
        Some(x_node("b", 1, Z + 3)),
        Z + 2,
    ));
    assert_eq!(seen.expect("placed").placed_by_evidence, 1);
    let unseen = check(&owned(
        set.clone(),
        by_data.clone(),
        Some(x_node("a", 0, Z + 2)),
        Z + 2,
    ));
    assert_eq!(unseen.expect("left out").never_happened, 1);
    let delete = json!({"kind": "delete", "path": "/t/p/x", "version": 0});
    let gone = json!({"kind": "deleted", "path": "/t/p/x"});
    let deleted = check(&owned(delete, gone, None, Z + 3));
    assert_eq!(deleted.expect("placed").placed_by_evidence, 1);
    // The set's data with a version it cannot have after one set: no
    // order of the writes leaves that tree.
    assert!(matches!(
        check(&owned(
            set.clone(),
            by_data.clone(),
            Some(x_node("b", 2, Z + 3)),
            Z + 2
        )),
        Err(HistoryViolation::FinalTreeDiffers { .. })
    ));
    // Evidence of data needs the node's mzxid.
    let mut no_mzxid = owned(set, by_data, Some(x_node("b", 1, Z + 3)), Z + 2);
    no_mzxid["final"][2]["mzxid"] = Value::Null;
    assert!(matches!(
        parse(&no_mzxid.to_string()),
        Err(FileError::EvidenceUnusable {
            op: 3,
            kind: "data",
            ..
        })
    ));
}
