//! Seeds that once failed, kept so they keep passing. A seed's meaning is
//! tied to the simulator's code: when a change to the simulator alters what
//! a seed does, re-find a seed for the scenario and say so here.

mod common;

use common::{ci_options, failure};
use sim::{run, Options};

fn passes(options: &Options) {
    let outcome = run(options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, options));
}

#[test]
fn an_expiry_learned_before_its_closesession_is_durable() {
    // Seeds 2, 4 and 9 (5,000 steps): a client reconnects while the server
    // has its session's closeSession prepared but not yet durable (the log
    // failed or the disk was slow) and is told the session expired; the txn
    // took effect later (after the restart). The checker once took the
    // client's learning as a bound on the txn and reported a false
    // violation; ZooKeeper refuses a closing session's reconnect the same way.
    // (The seeds failed when first found; the simulator has changed since,
    // so `checks::tests` pins the scenario down without a seed too.)
    for seed in [2, 4, 9] {
        passes(&ci_options(seed));
    }
}

#[test]
fn a_session_closed_by_its_own_closesession_whose_reply_was_lost() {
    // Seed 7: the client sent closeSession, its connection broke, and its
    // reconnect was refused as expired. The session's end is the client's
    // own closeSession txn (cxid = its xid), not a server expiry (cxid 0).
    passes(&ci_options(7));
}

/// OPEN BUG (node): after a failed fsync, node answers the writes whose
/// batch was in flight with SYSTEMERROR — a final failure to the client —
/// though their records were written (not synced) and come back when the
/// server restarts: the client is told a write failed that later takes
/// effect. ZooKeeper's server exits on a failed log sync instead, and its
/// clients see a connection loss (outcome unknown); a ZooKeeper server never
/// sends SYSTEMERROR. With `--faults fsync,crash` nearly every seed hits
/// it. Seed 0 (4,000 steps): `multi[3]` of session ...0004 (xid 8) is in
/// the batch whose fdatasync fails at 0.35s and is answered SYSTEMERROR;
/// the operator restarts the server at 2.9s (a process restart keeps the
/// page cache) and recovery replays it as txn 0x1b.
/// `fk-sim --seed 0 --steps 4000 --faults fsync,crash --trace` shows it.
/// The CI options turn this check off until it is fixed; un-ignore then.
#[test]
#[ignore = "open bug in node: SYSTEMERROR for writes in flight when the log fails; see the doc comment"]
fn a_write_answered_systemerror_never_comes_back() {
    for seed in 0..10 {
        let options = Options {
            faults: "fsync,crash".parse().unwrap(),
            check_refused_writes: true,
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
    }
}

/// OPEN BUG (tree + node): a session with more ephemerals than fit one
/// closeSession txn can be neither closed nor expired, and its ephemerals
/// live forever. node's `prepare` sheds them first — one
/// `WriteOp::DeleteEphemeral` txn each — but tree's prepare turns each into
/// `delete(.., version: None)`, whose check for the server's
/// deleteContainer ("only containers and TTL nodes qualify") refuses a
/// session-owned node with BADVERSION; node ignores those errors, prepares
/// the closeSession again, and it is as large as before. So the client's
/// closeSession is answered BADARGUMENTS (the session stays open), and an
/// expiry fails ("could not expire session ...: Op(BadArguments)") after
/// `Sessions::take_expired` has already marked the session closing and
/// taken it out of the expiry queue: it never expires, refuses every
/// reconnect, and keeps its ephemerals (a lock held forever) until a
/// restart, after which the same happens again. Seeds of 0..5 with
/// the many-ephemerals mix (16 KiB log segments, so a closeSession txn
/// holds at most ~12 KB; sessions gather hundreds of long-named ephemerals)
/// and silent clients ends with such sessions in the tree; e.g.
/// `fk-sim --seed 0 --steps 2000 --mix many-ephemerals --faults silent --trace`
/// logs "could not expire session 0x8bcfe56bf50005: Op(BadArguments)" at
/// 3.6s and ends with that session and 0x...06 still in the tree. The standard mix leaves this op out until the bug is fixed.
#[test]
#[ignore = "open bug in tree/node: sessions with too many ephemerals for one txn never close; see the doc comment"]
fn a_session_with_many_ephemerals_closes_and_expires() {
    for seed in 0..5 {
        let options = Options {
            mix: sim::Mix::ManyEphemerals,
            faults: "silent".parse().unwrap(),
            steps: 2_000,
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
    }
}
