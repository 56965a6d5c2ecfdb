//! The checks that span the servers of one ensemble, made after every step
//! and once the run is quiet.
//!
//! After every step ([`Agreement::after_step`]):
//! - at most one established leader per epoch (ZAB's primary uniqueness);
//! - one txn per zxid: every serving server's recent applied txns (what it
//!   would DIFF from if it led) are byte for byte the txns any other
//!   serving server applied at those zxids — committed logs are prefixes
//!   of each other;
//! - one predecessor per txn: every serving server applied each txn right
//!   after the same one (no server kept a txn the others skipped);
//! - equal tree digests at equal applied zxids, among serving servers;
//! - no client has seen a zxid that a quorum of voters does not hold
//!   durably (a synced log record or a sealed snapshot): what clients are
//!   told survives any minority of power cuts;
//! - no acknowledged write is left behind by a new leader: a leader of
//!   epoch E whose history of earlier epochs ends at zxid Z0 can never hold
//!   a txn of an earlier epoch above Z0 (ZAB truncates it everywhere), so
//!   a write clients were told about in (Z0, E << 32) is lost — the loss
//!   protocol-aware recovery prevents (a server whose log lost records to
//!   damage voting as if it held them), caught as the leader serves,
//!   whether or not any disk keeps a whole log at the end.
//!
//! Once quiet ([`final_log`]): every server serves at one zxid with one
//! digest, its disk recovers to that tree, and one server's whole log
//! (snapshot 0 and every record since) replays to it: that log is the
//! ensemble's history of txns, against which the clients' history is
//! checked (see `checks`).

use std::collections::BTreeMap;
use std::time::Duration;

use crate::recovery::{Logged, Recovered};
use crate::server::Server;
use crate::told::Told;
use crate::violation::Violation;

/// What one server showed so far (per boot).
#[derive(Debug, Default, Clone, Copy)]
struct Seen {
    boot: u64,
    /// Txns of its history up to this zxid were compared.
    txns_checked: i64,
    /// The applied zxid whose digest was compared last.
    applied: i64,
}

/// The state of the continuous checks of one ensemble.
#[derive(Debug, Default)]
pub struct Agreement {
    /// Established leaders by epoch.
    leaders: BTreeMap<i64, u8>,
    /// Where each established leader's history of earlier epochs ended.
    leader_starts: BTreeMap<i64, i64>,
    /// The hash of each applied txn, and the first server seen with it.
    txns: BTreeMap<i64, (u64, u8)>,
    /// Each applied txn as the checkers read it: the ensemble's history
    /// as its serving servers applied it, for when no single disk keeps
    /// it whole (see [`final_log`]).
    applied: BTreeMap<i64, (Logged, Vec<u8>)>,
    /// The txn applied just before each applied txn, and the first server
    /// seen with it.
    predecessors: BTreeMap<i64, (i64, u8)>,
    /// The tree digest at each applied zxid, and the first server seen at it.
    digests: BTreeMap<i64, (u64, u8)>,
    seen: BTreeMap<u8, Seen>,
    /// The one serving leader and its epoch, and since when (for settling).
    leader: Option<(u8, i64, Duration)>,
}

impl Agreement {
    /// Checks the ensemble after a step (see the module docs).
    pub fn after_step(
        &mut self,
        database: usize,
        servers: &[Server],
        told: &Told,
        now: Duration,
    ) -> Result<(), Violation> {
        let mut serving_leaders = Vec::new();
        for server in servers {
            let Some(node) = server.node() else {
                continue;
            };
            if node.mode() == "leader" && node.serving() {
                let epoch = node.epochs().0;
                let first = *self.leaders.entry(epoch).or_insert(server.sid);
                if first != server.sid {
                    return Err(Violation::TwoLeaders {
                        epoch,
                        first,
                        second: server.sid,
                    });
                }
                serving_leaders.push((server.sid, epoch));
                self.leader_starts
                    .entry(epoch)
                    .or_insert_with(|| history_before(node, epoch));
            }
            // A server that is not synchronised may hold an uncommitted
            // tail (recovery replays the whole log): it is held to the
            // others once it serves.
            if node.serving() {
                self.check_server(server)?;
            }
        }
        let leader = match serving_leaders.as_slice() {
            [(sid, epoch)] => Some((*sid, *epoch)),
            _ => None,
        };
        if self.leader.map(|(s, e, _)| (s, e)) != leader {
            self.leader = leader.map(|(s, e)| (s, e, now));
        }
        for (&epoch, &start) in &self.leader_starts {
            let below = (epoch << 32) - 1;
            if start >= below {
                continue;
            }
            if let Some((&zxid, &(session, cxid))) =
                told.acknowledged.range(start + 1..=below).next()
            {
                return Err(Violation::AcknowledgedWriteLost {
                    server: self.leaders[&epoch],
                    zxid,
                    session,
                    cxid,
                    found: format!(
                        "it leads epoch {epoch} with a history that ends at 0x{start:x} before that \
                         epoch: the write is truncated everywhere"
                    ),
                });
            }
        }
        let quorum_durable = quorum_durable(servers);
        if told.zxid_seen > quorum_durable {
            return Err(Violation::SeenNotOnQuorum {
                database,
                zxid: told.zxid_seen,
                quorum_durable,
            });
        }
        Ok(())
    }

    /// One server's new txns and digest against everyone's.
    fn check_server(&mut self, server: &Server) -> Result<(), Violation> {
        let node = server.node().expect("checked up");
        let seen = self.seen.entry(server.sid).or_default();
        if seen.boot != server.boot() {
            *seen = Seen {
                boot: server.boot(),
                ..Seen::default()
            };
        }
        // A history that went back (TRUNC, a reload, a snapshot from the
        // leader) is looked at whole again.
        let newest = node.recent_txns().next_back().map_or(0, |(zxid, _)| zxid);
        if newest < seen.txns_checked {
            seen.txns_checked = 0;
        }
        let from = seen.txns_checked;
        seen.txns_checked = newest;
        // Walking down from the newest: `later` is the txn this server
        // applied right after `zxid`.
        let mut later: Option<i64> = None;
        for (zxid, record) in node.recent_txns().rev() {
            if let Some(later) = later {
                self.check_predecessor(later, zxid, server.sid)?;
            }
            if zxid <= from {
                break;
            }
            later = Some(zxid);
            let hash = xxhash_rust::xxh3::xxh3_64(record);
            if !self.txns.contains_key(&zxid) {
                if let Ok((header, txn)) = tree::decode_record(record) {
                    let logged = Logged::of(&header, &txn);
                    self.applied.insert(zxid, (logged, record.to_vec()));
                }
            }
            let (first_hash, first) = *self.txns.entry(zxid).or_insert((hash, server.sid));
            if first_hash != hash {
                return Err(Violation::ServersDisagree {
                    zxid,
                    first,
                    second: server.sid,
                    what: "they applied different txns at this zxid".into(),
                });
            }
        }
        let seen = self.seen.get_mut(&server.sid).expect("inserted above");
        let applied = node.zxid_applied();
        if applied != seen.applied {
            seen.applied = applied;
            let digest = node.tree().digest();
            let (first_digest, first) =
                *self.digests.entry(applied).or_insert((digest, server.sid));
            if first_digest != digest {
                return Err(Violation::ServersDisagree {
                    zxid: applied,
                    first,
                    second: server.sid,
                    what: format!("tree digest {digest:x}, where s{first} had {first_digest:x}"),
                });
            }
        }
        Ok(())
    }

    /// Committed logs are prefixes of each other, so every server applies
    /// `zxid` right after the same txn: one that applied a txn the others
    /// skipped (a lone uncommitted txn kept through a DIFF, ZOOKEEPER-1154)
    /// or skipped one they applied disagrees here, even when the txn
    /// changed nothing a digest sees.
    fn check_predecessor(&mut self, zxid: i64, before: i64, sid: u8) -> Result<(), Violation> {
        let (first_before, first) = *self.predecessors.entry(zxid).or_insert((before, sid));
        if first_before != before {
            return Err(Violation::ServersDisagree {
                zxid,
                first,
                second: sid,
                what: format!(
                    "s{sid} applied it right after 0x{before:x}, s{first} right after 0x{first_before:x}"
                ),
            });
        }
        Ok(())
    }

    /// The txns serving servers applied, in zxid order, if they are the
    /// whole history up to `zxid`: no gap in any epoch (see `has_no_gap`),
    /// and replayed on an empty tree they give the final tree (`digest`).
    pub fn applied_history(&self, zxid: i64, digest: u64) -> Option<Vec<Logged>> {
        let history: Vec<Logged> = self
            .applied
            .range(..=zxid)
            .map(|(_, (t, _))| t.clone())
            .collect();
        if history.last().is_none_or(|t| t.zxid != zxid) || !has_no_gap(&history) {
            return None;
        }
        let mut tree = tree::DataTree::new();
        for (_, (_, payload)) in self.applied.range(..=zxid) {
            let (header, txn) = tree::decode_record(payload).ok()?;
            tree.apply(&header, &txn);
        }
        (tree.last_processed_zxid() == zxid && tree.digest() == digest).then_some(history)
    }

    /// Whether `history` holds every txn a serving server applied, up to
    /// its last.
    pub fn covers(&self, history: &[Logged]) -> bool {
        let Some(last) = history.last().map(|t| t.zxid) else {
            return self.applied.is_empty();
        };
        let held: std::collections::BTreeSet<i64> = history.iter().map(|t| t.zxid).collect();
        self.applied
            .range(..=last)
            .all(|(zxid, _)| held.contains(zxid))
    }

    /// The serving leader, if one alone serves, with its epoch and since when.
    pub fn leader(&self) -> Option<(u8, i64, Duration)> {
        self.leader
    }
}

/// The last txn of an epoch before `epoch` in a leader's history: its
/// applied zxid, or (if it already applied txns of its own epoch) the
/// newest earlier-epoch txn its recent history shows.
fn history_before(node: &node::Node, epoch: i64) -> i64 {
    let applied = node.zxid_applied();
    if applied >> 32 < epoch {
        return applied;
    }
    node.recent_txns()
        .rev()
        .map(|(zxid, _)| zxid)
        .find(|zxid| zxid >> 32 < epoch)
        .unwrap_or(i64::MAX)
}

/// The highest zxid a quorum of voters holds durably.
pub fn quorum_durable(servers: &[Server]) -> i64 {
    let mut durable: Vec<i64> = servers
        .iter()
        .filter(|s| s.is_voter())
        .map(Server::zxid_on_disk)
        .collect();
    durable.sort_unstable_by(|a, b| b.cmp(a));
    let quorum = durable.len() / 2 + 1;
    durable[quorum - 1]
}

/// Whether the ensemble is in its final shape: every server up and
/// serving, one leader, every server applied up to what the leader committed.
pub fn is_caught_up(servers: &[Server]) -> bool {
    let nodes: Option<Vec<_>> = servers.iter().map(Server::node).collect();
    let Some(nodes) = nodes else {
        return false;
    };
    let leaders: Vec<_> = nodes.iter().filter(|n| n.mode() == "leader").collect();
    let [leader] = leaders.as_slice() else {
        return false;
    };
    let committed = leader.zxid_committed();
    nodes
        .iter()
        .all(|n| n.serving() && n.zxid_applied() == committed)
        && !servers.iter().any(Server::is_busy)
}

/// The checks once the run is quiet (see the module docs). Returns the
/// txns of the ensemble's history — the whole log of a server that
/// replays to the final tree — or `None` if no server has one (each
/// took a snapshot from a leader at some point, so no single log holds
/// every txn).
pub fn final_log(servers: &[Server]) -> Result<Option<Recovered>, Violation> {
    let first = &servers[0];
    let node = first.node().expect("every server is up at the end");
    let (zxid, digest) = (node.zxid_applied(), node.tree().digest());
    for server in servers {
        let other = server.node().expect("every server is up at the end");
        if (other.zxid_applied(), other.tree().digest()) != (zxid, digest) {
            return Err(Violation::ServersDisagree {
                zxid,
                first: first.sid,
                second: server.sid,
                what: format!(
                    "at quiescence it stands at 0x{:x} with digest {:x}, s{} at 0x{zxid:x} with {digest:x}",
                    other.zxid_applied(),
                    other.tree().digest(),
                    first.sid
                ),
            });
        }
    }
    let mut candidates = Vec::new();
    for server in servers {
        let (newest, everything) =
            server
                .recover_now_in_ensemble()
                .map_err(|error| Violation::RecoveryFailed {
                    server: server.sid,
                    error,
                })?;
        if newest.tree.last_processed_zxid() != zxid || newest.tree.digest() != digest {
            return Err(Violation::DigestMismatch {
                server: server.sid,
                zxid,
                live: digest,
                what: "recovery from the newest snapshot",
                other: newest.tree.digest(),
            });
        }
        candidates.extend(everything);
    }
    // A whole log starts where the earliest of them starts, has no gap in
    // any epoch (a leader numbers its txns from 1 without a hole; a
    // snapshot from a leader leaves one in a learner's log), and replays
    // to the final tree. A digest alone cannot tell: txns whose effects
    // were all undone later leave none.
    let first = candidates
        .iter()
        .filter_map(|c| c.replayed.first().map(|t| t.zxid))
        .min();
    // The gap check cannot see an epoch's tail missing (a log that took a
    // snapshot at the end of an epoch goes on at the next epoch's first
    // txn), and a digest need not either (txns carry the values they set):
    // of the logs that pass, the longest. The world also holds it to every
    // txn a serving server applied (`Agreement::covers`).
    let whole = candidates
        .into_iter()
        .filter(|c| {
            c.replayed.first().map(|t| t.zxid) == first
                && has_no_gap(&c.replayed)
                && c.tree.last_processed_zxid() == zxid
                && c.tree.digest() == digest
        })
        .max_by_key(|c| c.replayed.len());
    Ok(whole)
}

/// Whether the txns' zxids run without a hole: within an epoch each
/// counter follows the last, and each epoch starts at counter 1.
fn has_no_gap(replayed: &[crate::recovery::Logged]) -> bool {
    let counter = |zxid: i64| zxid & 0xffff_ffff;
    let epoch = |zxid: i64| zxid >> 32;
    replayed.windows(2).all(|w| {
        let (a, b) = (w[0].zxid, w[1].zxid);
        if epoch(a) == epoch(b) {
            counter(b) == counter(a) + 1
        } else {
            epoch(b) > epoch(a) && counter(b) == 1
        }
    }) && replayed.first().is_none_or(|t| counter(t.zxid) == 1)
}
