//! A server's side of the scripted faults ([`crate::script`]): the hooks
//! its driver calls, and the learner's view of its synchronisation that
//! rules read ([`SyncView`]), followed from the packets on its link to the
//! leader.
//!
//! The view also counts SNAP streams cut before their end — the link
//! reset or closed, or this process dead, between SNAP and its end packet
//! (`ServerStats::snapshots_interrupted`).

use std::time::Duration;

use replication::QuorumPacket;
use wal::WriteFs;

use super::Server;
use crate::context::{Context, Event};
use crate::network::{Endpoint, LinkId};
use crate::script::{Packet, SyncView, Then, When};

impl Server {
    /// Asks the script whether a fault lands at `when` on this server (a
    /// packet hook names the quorum link); injects it. True if this
    /// process died there: the caller stops.
    pub(super) fn scripted(&mut self, cx: &mut Context, when: When, link: Option<LinkId>) -> bool {
        let Some(running) = &self.running else {
            return false;
        };
        let leading = running.node.mode() == "leader" && running.node.serving();
        let sync = running.peers.sync.as_ref().map(|(_, view)| view);
        let Some((name, then)) = cx.scripted.fire(when, sync, leading, cx.step) else {
            return false;
        };
        let (sid, now) = (self.sid, cx.now);
        cx.trace.line(now, || {
            format!("SCRIPTED {name}: {then:?} at s{sid} on {when:?}")
        });
        match then {
            Then::Crash { power_cut } => {
                self.crash_and_restart(cx, power_cut);
                true
            }
            Then::CrashLeader { power_cut } => {
                self.crash_leader(cx, link, power_cut, None);
                false
            }
            Then::CrashWithLeader {
                power_cut,
                leader_down_ms,
            } => {
                self.crash_leader(cx, link, power_cut, Some(leader_down_ms));
                self.crash_and_restart(cx, power_cut);
                true
            }
            Then::CrashAll { power_cut } => {
                cx.after(
                    Duration::ZERO,
                    Event::ScriptedCrashAll {
                        server: self.sid,
                        power_cut,
                    },
                );
                false
            }
            Then::Isolate { ms } => {
                self.isolate(cx, ms);
                false
            }
            Then::IsolateThenCrash {
                ms,
                crash_after_ms,
                power_cut,
            } => {
                self.isolate(cx, ms);
                let crash = Event::ScriptedCrash {
                    server: self.sid,
                    power_cut,
                    down_ms: None,
                };
                cx.after(Duration::from_millis(crash_after_ms), crash);
                false
            }
            Then::Snapshot => {
                self.snapshot_whole_tree_now(cx);
                false
            }
            Then::LoseSnapshots => {
                self.crash(cx, false);
                self.lose_snapshots(cx);
                let down = Duration::from_millis(cx.rng.between(10, 2_000));
                cx.after(down, Event::Restart { server: self.sid });
                true
            }
            Then::ResetLink => {
                let running = self.running.as_ref().expect("checked above");
                let sync_link = running.peers.sync.as_ref().map(|(link, _)| *link);
                if let Some(link) = link.or(sync_link) {
                    cx.reset(link);
                }
                false
            }
            Then::Observe => false,
        }
    }

    /// Resets this server's quorum links and cuts it from every peer for `ms`.
    fn isolate(&mut self, cx: &mut Context, ms: u64) {
        let running = self.running.as_ref().expect("isolate a running server");
        for link in running.peers.links() {
            cx.reset(link);
        }
        cx.after(
            Duration::ZERO,
            Event::ScriptedIsolate {
                server: self.sid,
                ms,
            },
        );
    }

    /// Writes a whole snapshot of the node's tree now, sealed and durable
    /// ([`Then::Snapshot`]). A disk error leaves no snapshot (traced).
    fn snapshot_whole_tree_now(&mut self, cx: &mut Context) {
        let running = self.running.as_mut().expect("snapshot a running server");
        let tree = running.node.tree();
        let zxid = tree.last_processed_zxid();
        let sid = self.sid;
        if let Err(err) = crate::recovery::write_whole_snapshot(self.snapshots.dir(), tree) {
            cx.trace.line(cx.now, || {
                format!("s{sid} cannot write its scripted snapshot: {err}")
            });
            return;
        }
        self.stats.snapshots_scripted += 1;
        self.disk_snapshot_zxid = self.disk_snapshot_zxid.max(zxid);
        running.snapshot_sealed = running.snapshot_sealed.max(zxid);
        cx.trace.line(cx.now, || {
            format!("s{sid} snapshots its whole tree at 0x{zxid:x}")
        });
    }

    /// Removes every snapshot file of this (stopped) server's data
    /// directory ([`Then::LoseSnapshots`]).
    fn lose_snapshots(&mut self, cx: &mut Context) {
        assert!(self.running.is_none(), "snapshots are lost while down");
        let data = self.snapshots.dir();
        let listed = wal::list_snapshots(data).expect("the in-memory disk lists");
        for (_, name) in &listed {
            data.remove_file(name).expect("the in-memory disk removes");
        }
        self.disk_snapshot_zxid = 0;
        let (sid, lost) = (self.sid, listed.len());
        cx.trace
            .line(cx.now, || format!("s{sid} loses its {lost} snapshots"));
    }

    /// Crashes this learner's leader (the other end of `link`, or of the
    /// link its synchronisation runs on) at once: the link is reset
    /// first, so nothing more from the leader arrives. It restarts after
    /// `down_ms`, or as after any crash.
    fn crash_leader(
        &mut self,
        cx: &mut Context,
        link: Option<LinkId>,
        power_cut: bool,
        down_ms: Option<u64>,
    ) {
        let link = link.or_else(|| {
            let running = self.running.as_ref()?;
            running.peers.sync.as_ref().map(|(link, _)| *link)
        });
        let Some(link) = link else { return };
        let me = Endpoint::Server(self.sid);
        let leader = match cx.net.ends(link) {
            Some((a, b)) if a == me => b,
            Some((a, _)) => a,
            None => return,
        };
        if let Endpoint::Server(server) = leader {
            cx.reset(link);
            let crash = Event::ScriptedCrash {
                server,
                power_cut,
                down_ms,
            };
            cx.after(Duration::ZERO, crash);
        }
    }

    /// Follows a packet that arrived on quorum link `link` in the
    /// learner's view of its synchronisation.
    pub(super) fn follow_received(&mut self, link: LinkId, packet: Packet) {
        let Some(running) = &mut self.running else {
            return;
        };
        if let Some(view) = SyncView::opened_by(packet) {
            running.peers.sync = Some((link, view));
            return;
        }
        if let Some((on, view)) = &mut running.peers.sync {
            if *on == link {
                view.received(packet);
                if packet == Packet::SnapEnd {
                    let most = &mut self.stats.snapshot_stream_chunks_max;
                    *most = (*most).max(view.snapshot_chunks);
                }
            }
        }
    }

    /// What a packet this server sends on `link` is, when a rule or the
    /// learner's view needs to know (its NEWLEADER ack); follows it.
    pub(super) fn follow_sent(
        &mut self,
        cx: &Context,
        link: LinkId,
        bytes: &[u8],
    ) -> Option<Packet> {
        let running = self.running.as_mut()?;
        let awaiting_ack = running.peers.sync.as_ref().is_some_and(|(on, view)| {
            *on == link && view.newleader_received && !view.newleader_acked
        });
        if !awaiting_ack && !cx.scripted.watches_packets() {
            return None;
        }
        let packet = QuorumPacket::decode(&bytes::Bytes::copy_from_slice(bytes)).ok()?;
        let packet = Packet::of(&packet);
        if awaiting_ack && packet == Packet::AckNewLeader {
            if let Some((_, view)) = &mut running.peers.sync {
                view.newleader_acked = true;
            }
        }
        Some(packet)
    }

    /// The quorum link `link` is gone: a SNAP still streaming on it was cut.
    pub(super) fn sync_link_gone(&mut self, link: LinkId) {
        let Some(running) = &mut self.running else {
            return;
        };
        if running
            .peers
            .sync
            .as_ref()
            .is_some_and(|(on, _)| *on == link)
        {
            let (_, view) = running.peers.sync.take().expect("checked above");
            if view.snapshot_open {
                self.stats.snapshots_interrupted += 1;
            }
        }
    }
}
