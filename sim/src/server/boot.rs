//! A server's start: recovery from its disk through wal, as the engine
//! starts, and the check that nothing a client was told is missing.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::Duration;

use node::{AppendLimits, Node};
use wal::{ReadFs, WalError, WriteFs};

use crate::context::{Context, Event};
use crate::disk::LogDisk;
use crate::options::Bug;
use crate::recovery;
use crate::script::When;
use crate::violation::Violation;

use super::{peers, Running, Server};

impl Server {
    /// Recovers from the disk and starts a node on it.
    pub(super) fn start(&mut self, cx: &mut Context) {
        assert!(self.running.is_none(), "start a stopped server");
        let replay = self.bug != Some(Bug::SkipLogReplay);
        let recovered = match recovery::recover_member(
            self.snapshots.dir(),
            &self.log_fs,
            replay,
            self.member.is_some(),
        ) {
            Ok(recovered) => recovered,
            // Setting log damage aside writes (the marker, the copy, the
            // cut): a disk failing then stops the process, as below.
            Err(recovery::RecoveryError::Wal(
                err @ (WalError::Io { .. } | WalError::NoSpace { .. }),
            )) => return self.failed_start(cx, &err),
            // A log with no snapshot under it (ZOOKEEPER-2325): the server
            // refuses to start rather than replay it onto an empty tree.
            // In an ensemble the operator then gives it an empty disk and
            // it is synchronised from the leader; a standalone server has
            // lost its data (a violation, below).
            Err(recovery::RecoveryError::Wal(err @ WalError::LogWithoutSnapshot { .. }))
                if self.member.is_some() =>
            {
                return self.refused_start(cx, &err)
            }
            Err(err) => {
                return cx.violation(Violation::RecoveryFailed {
                    server: self.sid,
                    error: err.to_string(),
                })
            }
        };
        // In an ensemble a restarted follower may rightly be behind what
        // clients saw (the world checks the ensemble as a whole).
        if self.check_recovery && self.member.is_none() {
            self.check_nothing_acknowledged_is_lost(cx, &recovered);
        }
        self.stats.replayed_txns += recovered.replayed.len() as u64;
        self.stats.replayed_multis += recovered.replayed_multis as u64;
        let config = self.writer_config(cx);
        // The engine's `log_stage::append_limits`, for this writer's bounds.
        let limits = AppendLimits {
            records_max: config.batch_records_max,
            bytes_max: config.batch_bytes_max / 2,
        };
        let settings = self.settings(cx, &config);
        let disk = match LogDisk::open(self.log_fs.clone(), config, recovered.tail.clone()) {
            Ok(disk) => disk,
            Err(err @ (WalError::Io { .. } | WalError::NoSpace { .. })) => {
                // The disk failed while the writer readied the log (zeroing a
                // cut tail and syncing it).
                return self.failed_start(cx, &err);
            }
            Err(err) => {
                return cx.violation(Violation::RecoveryFailed {
                    server: self.sid,
                    error: format!("opening the log writer: {err}"),
                })
            }
        };
        self.booted_at = cx.now;
        self.monotonic_leap = Duration::ZERO;
        let now = self.now(cx);
        let (snapshot_zxid, replayed) = (recovered.snapshot_zxid, recovered.replayed.len());
        self.disk_log_zxid = recovered.tail.zxid_last;
        self.disk_snapshot_zxid = snapshot_zxid.unwrap_or(0);
        if recovered.recovering.is_none() {
            self.damaged_floor = None;
        }
        let node = Node::new(settings, recovered.into_node_state(), limits, now);
        node.check_invariants();
        let (sid, zxid) = (self.sid, node.zxid_applied());
        cx.trace.line(cx.now, || {
            format!("s{sid} boots at zxid 0x{zxid:x} (snapshot {snapshot_zxid:?}, {replayed} txns replayed)")
        });
        self.running = Some(Running {
            node,
            disk,
            disk_event_pending: false,
            conns: BTreeMap::new(),
            by_link: BTreeMap::new(),
            closed_links: BTreeSet::new(),
            held: VecDeque::new(),
            snapshot: VecDeque::new(),
            snapshot_event_pending: false,
            snapshot_active: false,
            chunks_this_snapshot: 0,
            log_failed: false,
            peers: peers::Peers::default(),
            snapshot_sealed: snapshot_zxid.unwrap_or(0),
            tick_due: cx.now,
            tick_generation: 0,
            reported_early: 0,
            batch_started: Duration::ZERO,
        });
        self.schedule_tick(cx);
        self.scripted(cx, When::Booted, None);
    }

    /// Recovery refused the disk (a log without a snapshot): the process
    /// exits; its operator moves the orphaned log aside — an empty disk,
    /// epoch files kept — and starts it again a while later, to be
    /// synchronised from its leader.
    fn refused_start(&mut self, cx: &mut Context, err: &WalError) {
        self.stats.starts_refused += 1;
        let sid = self.sid;
        cx.trace
            .line(cx.now, || format!("s{sid} refuses to start: {err}"));
        let names = self.log_fs.list().expect("the in-memory disk lists");
        for name in names
            .iter()
            .filter(|n| wal::parse_segment_name(n).is_some())
        {
            self.log_fs
                .remove_file(name)
                .expect("the in-memory disk removes");
        }
        self.disk_log_zxid = 0;
        let delay = Duration::from_millis(cx.rng.between(500, 3_000));
        cx.after(delay, Event::Restart { server: sid });
    }

    /// The disk failed during start-up: the process exits and its operator
    /// starts it again a while later.
    fn failed_start(&mut self, cx: &mut Context, err: &WalError) {
        self.stats.failed_starts += 1;
        let sid = self.sid;
        cx.trace
            .line(cx.now, || format!("s{sid} fails to start: {err}"));
        let delay = Duration::from_millis(cx.rng.between(100, 1_000));
        cx.after(delay, Event::Restart { server: sid });
    }

    /// After recovery: every zxid a client saw is there, and every txn a
    /// client was told about that the log replayed is that client's txn.
    pub(super) fn check_nothing_acknowledged_is_lost(
        &self,
        cx: &mut Context,
        recovered: &recovery::Recovered,
    ) {
        let told = &cx.told[self.database];
        let zxid = recovered.tree.last_processed_zxid();
        if zxid < told.zxid_seen {
            let seen = told.zxid_seen;
            return cx.violation(Violation::AcknowledgedStateLost {
                server: self.sid,
                recovered: zxid,
                seen,
            });
        }
        let replayed: BTreeMap<i64, (i64, i32)> = recovered
            .replayed
            .iter()
            .map(|t| (t.zxid, (t.session, t.cxid)))
            .collect();
        let applied = recovered.replayed.iter().find_map(|t| {
            let answer = told.refused.get(&(t.session, t.cxid))?;
            (t.kind != recovery::TxnKind::Refused).then_some((t, *answer))
        });
        if let Some((t, answer)) = applied {
            return cx.violation(Violation::RefusedWriteApplied {
                server: self.sid,
                zxid: t.zxid,
                session: t.session,
                cxid: t.cxid,
                answer,
            });
        }
        let from = recovered.snapshot_zxid.unwrap_or(0);
        let lost = told
            .acknowledged
            .range(from + 1..)
            .find_map(|(zxid, (session, cxid))| match replayed.get(zxid) {
                Some(found) if found == &(*session, *cxid) => None,
                other => Some(Violation::AcknowledgedWriteLost {
                    server: self.sid,
                    zxid: *zxid,
                    session: *session,
                    cxid: *cxid,
                    found: match other {
                        Some((s, c)) => format!("zxid holds session 0x{s:x} cxid {c}"),
                        None => "no txn with that zxid".into(),
                    },
                }),
            });
        if let Some(violation) = lost {
            cx.violation(violation);
        }
    }
}
