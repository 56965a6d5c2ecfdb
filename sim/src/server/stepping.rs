//! Stepping the node and carrying out its actions, in the order given.

use std::time::Duration;

use node::{Action, Input, Level};

use crate::context::{Context, Event};
use crate::disk::Batch;
use crate::network::{Endpoint, Payload};
use crate::violation::Violation;

use super::{Server, SnapshotWork};

impl Server {
    /// Feeds one input, then carries out every action. An input that comes
    /// up while actions are being carried out (a failure the driver hits)
    /// is fed at once but its actions wait for the next `ready`, so the
    /// actions of one turn are carried out in the order they were given.
    pub fn step(&mut self, cx: &mut Context, input: Input) {
        let now = self.now(cx);
        let Some(running) = &mut self.running else {
            return;
        };
        running.node.step(now, input);
        if !self.carrying_out {
            self.carry_out(cx);
        }
    }

    pub(super) fn carry_out(&mut self, cx: &mut Context) {
        self.carrying_out = true;
        loop {
            let mut actions = Vec::new();
            let Some(running) = &mut self.running else {
                break;
            };
            running.node.ready(&mut actions);
            running.node.check_invariants();
            if actions.is_empty() && !self.release_held(cx) {
                break;
            }
            for action in actions {
                if self.running.is_none() || cx.found.is_some() {
                    break;
                }
                self.carry_out_one(cx, action);
            }
        }
        self.carrying_out = false;
        self.tick_for_deadline(cx);
    }

    /// Feeds requests held back by backpressure; true if it fed any.
    pub(super) fn release_held(&mut self, cx: &mut Context) -> bool {
        let now = self.now(cx);
        let Some(running) = &mut self.running else {
            return false;
        };
        let mut fed = false;
        while running.node.accepts_requests() {
            let Some((conn, requests)) = running.held.pop_front() else {
                break;
            };
            running.node.step(now, Input::Requests { conn, requests });
            fed = true;
        }
        fed
    }

    pub(super) fn carry_out_one(&mut self, cx: &mut Context, action: Action) {
        let sid = self.sid;
        match action {
            Action::Send { conn, bytes, .. } => self.send(cx, conn, bytes),
            Action::Close { conn } => {
                let running = self.running.as_mut().expect("acting while up");
                // Already gone if the node heard of it first (a reset or
                // the client's own close); else the connection task reports
                // it gone once the Fin is out.
                if let Some(state) = running.conns.remove(&conn) {
                    running.by_link.remove(&state.link);
                    running.closed_links.insert(state.link);
                    cx.send(state.link, Endpoint::Server(sid), Payload::Fin);
                    let boot = self.boot;
                    cx.after(
                        Duration::ZERO,
                        Event::ConnClosed {
                            server: sid,
                            boot,
                            conn,
                        },
                    );
                }
            }
            Action::Append {
                records,
                roll_first,
            } => self.append(
                cx,
                Batch {
                    records,
                    roll_first,
                },
            ),
            Action::SnapshotBegin { zxid } => self.snapshot_begin(cx, zxid),
            Action::SnapshotChunk { bytes } => self.snapshot_queue(cx, SnapshotWork::Chunk(bytes)),
            Action::SnapshotEnd => self.snapshot_queue(cx, SnapshotWork::End),
            Action::Purge { .. } => cx.violation(Violation::ActionContract {
                server: sid,
                rule: "Purge asked for with autopurge off".into(),
            }),
            Action::FourLetterWord { .. } => cx.violation(Violation::ActionContract {
                server: sid,
                rule: "a four-letter word answered that nobody asked".into(),
            }),
            Action::Log { level, line } => {
                if level >= Level::Warn {
                    self.stats.warnings += 1;
                }
                // The leader names ZOOKEEPER-1277 when its zxid counter
                // runs out and it steps down for a new epoch.
                if line.contains("ZOOKEEPER-1277") {
                    self.stats.zxid_rollovers += 1;
                }
                cx.trace
                    .line(cx.now, || format!("s{sid} log {level:?}: {line}"));
            }
            // A standalone node has no peers: the engine logs and ignores
            // these, the simulator holds the node to its contract.
            action if action.is_ensemble_only() && self.member.is_none() => {
                cx.violation(Violation::ActionContract {
                    server: sid,
                    rule: format!(
                        "a standalone server was asked for an ensemble action: {action:?}"
                    ),
                })
            }
            action => self.carry_out_peer(cx, action),
        }
    }
}
