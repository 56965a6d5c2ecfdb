//! Seeds that once failed, kept so they keep passing. A seed's meaning is
//! tied to the simulator's code: when a change to the simulator alters what
//! a seed does, re-find a seed for the scenario and say so here.
//!
//! The slowest ensemble seeds run only in release builds (`cargo test -p
//! sim --release`), to keep a debug `cargo test -p sim` near a minute; the
//! node or replication test beside each fix runs everywhere.

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

/// FIXED (node): after a failed fsync, node answered the writes whose
/// batch was in flight with SYSTEMERROR — a final failure to the client —
/// though their records were written (not synced) and came back when the
/// server restarted: the client was told a write failed that later took
/// effect. Found with seed 0 (4,000 steps, `--faults fsync,crash`):
/// `multi[3]` of session ...0004 (xid 8) was in the batch whose fdatasync
/// failed, was answered SYSTEMERROR, and recovery replayed it. node now
/// closes the connections of the writes in flight instead, as a ZooKeeper
/// server that stops does (CONNECTIONLOSS: outcome unknown), and answers
/// SYSTEMERROR only to writes that arrive after the failure, which never
/// reach the log. Checked: no write the client was told failed (SYSTEMERROR,
/// SESSIONEXPIRED...: an answer without a txn of its own) is ever in the
/// recovered log, and the history, with such answers taken as final and
/// writes whose connection closed under them as unknown, is linearizable.
#[test]
fn a_write_told_it_failed_never_comes_back() {
    let (mut log_failures, mut refused_answers) = (0, 0);
    for seed in 0..6 {
        let options = Options {
            faults: "fsync,crash".parse().unwrap(),
            trace: true,
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
        log_failures += outcome.summary.servers.log_failures;
        refused_answers += outcome
            .trace
            .iter()
            .filter(|line| line.contains(": Error(SystemError)"))
            .count();
    }
    assert!(log_failures >= 3, "{log_failures} log failures");
    assert!(refused_answers > 0, "no write was answered SYSTEMERROR");
}

/// FIXED (tree + node): a session with more ephemerals than fit one
/// closeSession txn could be neither closed nor expired, and its ephemerals
/// lived forever: node shed them first — one `WriteOp::DeleteEphemeral` txn
/// each — but tree refused a session-owned node in that delete with
/// BADVERSION, so the client's closeSession was answered BADARGUMENTS and
/// an expiry failed ("could not expire session ...: Op(BadArguments)") after
/// the session had left the expiry queue: it never expired and refused
/// every reconnect. Found with the many-ephemerals mix (16 KiB log
/// segments, so a closeSession txn holds at most ~12 KB; sessions gather
/// hundreds of long-named ephemerals) and silent clients, seeds 0..5 at
/// 2,000 steps. tree now lets a session delete its own ephemerals that
/// way, and node retries an expiry that fails. Seed 6 (1,500 steps) sheds
/// a session's ephemerals for its own closeSession and for an expiry;
/// seed 0 for a closeSession.
#[test]
fn a_session_with_many_ephemerals_closes_and_expires() {
    let mut shed_by_close = 0;
    let mut shed_by_expiry = 0;
    for seed in [0, 6] {
        let options = Options {
            mix: sim::Mix::ManyEphemerals,
            faults: "silent".parse().unwrap(),
            steps: 1_500,
            trace: true,
            ..ci_options(seed)
        };
        let outcome = run(&options);
        assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
        let expiring: Vec<&str> = outcome
            .trace
            .iter()
            .filter_map(|line| line.split("expiring session ").nth(1))
            .filter_map(|rest| rest.split(':').next())
            .collect();
        for line in &outcome.trace {
            let Some(rest) = line.split("closing session ").nth(1) else {
                continue;
            };
            if !rest.contains("with too many ephemerals") {
                continue;
            }
            let session = rest.split(' ').next().unwrap_or_default();
            if expiring.contains(&session) {
                shed_by_expiry += 1;
            } else {
                shed_by_close += 1;
            }
        }
    }
    assert!(shed_by_close > 0, "no closeSession shed ephemerals");
    assert!(shed_by_expiry > 0, "no expiry shed ephemerals");
}

/// A client's closeSession sent while its own ephemeral creates are still
/// in flight (pipelined, prepared but not applied), when they are too many
/// for one closeSession txn. tree's closeSession prepare lists the
/// session's ephemerals as they will be (applied, plus pending creates,
/// minus pending deletes); node's `shed_ephemerals` deleted one by one only
/// the applied ones, so the closeSession prepared again was still too large:
/// answered BADARGUMENTS, the session stayed open. Found by seed 41 of the
/// many-ephemerals mix, 20,000 steps (session ...380001, closeSession xid
/// 282 at 27.53s, "closing session ... with too many ephemerals (24)").
/// `fk-sim --seed 41 --steps 20000 --mix many-ephemerals --trace` shows it.
#[test]
fn a_closesession_behind_its_own_ephemeral_creates_closes() {
    let options = Options {
        mix: sim::Mix::ManyEphemerals,
        steps: 20_000,
        ..ci_options(41)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): a client whose connection broke reconnected its session
/// to a follower; the follower asked the leader to revalidate it, and
/// node's own invariant check took the handshake waiting for that answer
/// for one waiting on a createSession txn and panicked ("reply slots and
/// the waiting index agree"). Found by the first ensemble seed,
/// `fk-sim --seed 0 --servers 3 --steps 4000` (client 3 moving to s2 at
/// 2.91s). node test `a_session_moves_to_a_follower_through_revalidate`.
#[test]
fn a_session_moves_to_a_follower() {
    let options = Options {
        servers: 3,
        ..ci_options(0)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
    assert!(outcome.summary.clients.reconnects > 0);
}

/// FIXED (node): a learner lost its leader while it held the leader's
/// snapshot unsealed (ZOOKEEPER-3642: it must reload what is durable
/// before it votes) and an append of a proposal received during its sync
/// was in flight; the reload was asked for at once, came back while the
/// append was in flight, and the pipeline asserted ("no append in flight
/// while the state is replaced"). Found by `fk-sim --seed 2 --servers 3
/// --steps 20000` (s3 at 15.61s). The reload now waits for the append's
/// outcome; node test
/// `a_reload_after_losing_the_leader_waits_for_the_append_in_flight`.
/// (A later fix — no append above an unsealed snapshot — changed this
/// seed's path: it no longer reloads there; the node test keeps the
/// scenario. 15,400 steps reach the step that failed, 15,398.) Six servers'
/// worth of debug-build time: it runs with `cargo test --release`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug builds: cargo test -p sim --release"
)]
fn a_reload_waits_for_the_append_in_flight() {
    let options = Options {
        servers: 3,
        steps: 15_400,
        ..ci_options(2)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (replication + node): a follower's client sent `sync` and then a
/// create; the sync was answered with the zxid of that later create's txn
/// (sessions must see their own requests in order: the sync, and a read
/// queued behind it, answered from a tree that already held the session's
/// later write). The leader answered forwarded syncs only after a whole
/// batch of commits, behind the COMMITs of txns proposed after the sync;
/// and a follower released syncs only after applying a whole batch of
/// txns. Found by `fk-sim --seed 5 --servers 5 --observers 1 --steps 20000`
/// (client 1's sync and create /k4, both answered at zxid 0x1000000c3).
/// The leader now answers a sync right after the COMMIT of the last txn
/// proposed before it, as ZooKeeper's tryToCommit answers pendingSyncs,
/// and a follower releases syncs after each txn it applies. node tests
/// `a_forwarded_sync_is_answered_before_later_commits` and
/// `a_sync_on_a_slow_follower_is_answered_before_later_txns_apply`.
/// (The violation shows at the end-of-run check, so the seed needs its
/// 20,000 steps: it runs with `cargo test --release`.)
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug builds: cargo test -p sim --release"
)]
fn a_sync_is_answered_before_the_sessions_later_writes() {
    let options = Options {
        servers: 5,
        observers: 1,
        steps: 20_000,
        ..ci_options(5)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): a learner lost its leader while its acceptedEpoch write
/// was in flight (a slow disk), found the next leader at once and was asked
/// for another epoch write: node asserted "one epoch write at a time" (in
/// the engine the first write still runs on its blocking thread). Had the
/// old write finished first, the new learner would have taken its
/// completion for its own. Found by `fk-sim --seed 17 --servers 3
/// --steps 20000` (s1 at 9.95s; the run is the same up to step 10,000 at
/// any length). An epoch write now outlives the role that asked for it:
/// its completion updates the epoch and tells no role, and the new role's
/// write waits for it. node test
/// `an_epoch_write_in_flight_outlives_the_role_that_asked_for_it`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug builds: cargo test -p sim --release"
)]
fn an_epoch_write_outlives_its_role() {
    let options = Options {
        servers: 3,
        steps: 10_000,
        ..ci_options(17)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): a learner logged the leader's proposals while the
/// snapshot it had received (SNAP) was still being written; the write
/// failed on a full disk, the learner reloaded from its disk — an older
/// snapshot and a log whose new records followed a gap — and got a tree
/// missing txns 0xd2..0x141 under zxid 0x100000142, which then synced by
/// DIFF and served. A power cut before the seal leaves the same log.
/// Found by `fk-sim --seed 13 --servers 5 --observers 1 --steps 20000`
/// ("s3 disagrees with s5 at zxid 0x100000143" at 5.07s, step 11,111). A
/// learner now logs nothing above a received snapshot until it is sealed;
/// node test `a_learner_logs_no_txn_above_a_snapshot_not_yet_sealed`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug builds: cargo test -p sim --release"
)]
fn a_learner_logs_nothing_above_an_unsealed_snapshot() {
    let options = Options {
        servers: 5,
        observers: 1,
        steps: 11_200,
        ..ci_options(13)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (replication): a leader whose own log was slow applied committed
/// txns late (a quorum of followers commits without it) and sent a
/// rejoining learner a snapshot of its older tree (SNAP at 0x20000004b)
/// followed only by the txns of its window of recent commits, which
/// started far above: the txns between never reached the learner, whose
/// digest then disagreed with the others'. Found by `fk-sim --seed 27
/// --servers 5 --observers 1 --steps 20000` (s5 at 3.70s, step 8,325). The
/// leader now takes such a snapshot again at the next tick, once its tree
/// has caught up; node test
/// `a_snapshot_from_a_lagging_leader_never_skips_txns`.
#[test]
fn a_snapshot_from_a_lagging_leader_skips_no_txn() {
    let options = Options {
        servers: 5,
        observers: 1,
        steps: 8_400,
        ..ci_options(27)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): a learner told to TRUNC its uncommitted tail (no reload
/// needed: the tail was never applied) lost its leader while the cut was
/// still running on a slow disk; its election waited for the log, and
/// when the cut was done (`Input::LogTruncated`) nothing started it: it
/// looked for a leader forever, the ensemble ran on two servers and never
/// settled. Found by `fk-sim --seed 98 --servers 3 --steps 20000` (s1's
/// cut from 5.40s to 7.82s; the run is the same up to step 5,000 at any
/// length, and at 5,000 steps it is stuck too). node test
/// `a_learner_looks_for_a_leader_once_its_truncation_is_done`.
#[test]
fn a_learner_votes_again_after_a_slow_truncation() {
    let options = Options {
        servers: 3,
        steps: 5_000,
        ..ci_options(98)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): with the previous fix an epoch write could outlive its
/// role, but the next role started from the durable epochs only: a learner
/// whose acceptedEpoch write of 4 was still in flight told the next leader
/// 3 in FOLLOWERINFO, accepted that leader's epoch 3, and its file went
/// from 4 back to 3 — then, restarted with 4, it refused the leader of
/// epoch 3 (StaleEpoch) forever and the ensemble never settled. Found by
/// `fk-sim --seed 100122 --servers 3` (stuck at any --steps >= 12,000). A
/// new role now starts from the epochs of an orphaned write in flight;
/// node test `a_new_leader_counts_an_accepted_epoch_still_being_written`.
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug builds: cargo test -p sim --release"
)]
fn an_accepted_epoch_being_written_is_counted_by_the_next_role() {
    let options = Options {
        servers: 3,
        steps: 12_000,
        ..ci_options(100_122)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (replication): a leader that never got established (s2) had chosen
/// epoch 3 and offered it to an observer and to itself; meanwhile s3 and s1
/// established epoch 2 without either. s2, back as a participant with
/// acceptedEpoch 3, refused the leader of epoch 2 (StaleEpoch), looked,
/// found it again, forever — and the observer, which had accepted 3 too,
/// likewise. Found by `fk-sim --seed 400031 --servers 3 --observers 1
/// --steps 20000` (never settled). A leader now steps down when a
/// participant has accepted a later epoch (the next election chooses one
/// above it), and an observer — which never votes — follows an
/// established leader of an older epoch than one it accepted. replication
/// tests `a_participant_that_accepted_a_later_epoch_makes_the_leader_step_down`
/// and `an_observer_follows_an_established_leader_of_an_older_epoch`. Runs
/// with `cargo test -p sim --release` (20,000 steps of four servers).
#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "slow in debug builds: cargo test -p sim --release"
)]
fn a_participant_with_a_later_accepted_epoch_rejoins() {
    let options = Options {
        servers: 3,
        observers: 1,
        steps: 20_000,
        ..ci_options(400_031)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): a client gave up on a handshake to s3 that a partition
/// held (its Fin held behind it) and dialled s3 again; both handshakes
/// reached s3 and both were revalidated by the leader, the stale one last,
/// so the session's watch events went to the stale connection — and when
/// its Fin arrived, the session's watches were dropped with it, while the
/// client went on using the other connection: a data watch on /k3 never
/// fired. Found by `fk-sim --seed 100488 --servers 3` (any --steps >=
/// 8,000). A session that takes a connection now closes the one it had;
/// node test `a_session_on_a_follower_keeps_one_connection`.
#[test]
fn a_session_keeps_one_connection_per_server() {
    let options = Options {
        servers: 3,
        steps: 8_000,
        ..ci_options(100_488)
    };
    let outcome = run(&options);
    assert!(outcome.found.is_none(), "{}", failure(&outcome, &options));
}

/// FIXED (node): a leader expiring several sessions on one tick prepared
/// a closeSession that hit the zxid counter's end (`zxid_counter_max`,
/// ZOOKEEPER-1277): it went looking and dropped its sessions, and the next
/// expired session's lookup panicked ("just expired"). Found with seed
/// 1106 of `fk-sim --servers 3 --steps 6000 --zxid-counter-max 30`. node
/// now stops expiring once its role no longer expires sessions; the next
/// leader expires the rest.
#[test]
fn a_leader_whose_zxid_counter_runs_out_while_expiring_sessions() {
    passes(&Options {
        servers: 3,
        steps: 6_000,
        zxid_counter_max: Some(30),
        ..ci_options(1106)
    });
}
