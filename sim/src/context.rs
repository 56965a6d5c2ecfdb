//! What every actor of a run shares: the simulated time, the one PRNG, the
//! network, the agenda of events, the histories, the trace and the first
//! violation found. Servers and clients get `&mut Context` when they act
//! and leave their effects here; they never call each other.

use std::time::Duration;

use crate::history::History;
use crate::network::Network;
use crate::network::{Endpoint, LinkId, Payload};
use crate::queue::Queue;
use crate::rng::Rng;
use crate::script::Scripted;
use crate::told::Told;
use crate::trace::Trace;
use crate::violation::{Found, Violation};
use crate::watches::ConnectionLog;

/// Every kind of event on the agenda. Events addressed to a server carry
/// the boot they were scheduled in; a crash starts a new boot, so work of
/// the old process is ignored when its event comes due.
#[derive(Debug)]
pub enum Event {
    /// The oldest message from `from` on `link` is due.
    Deliver { link: LinkId, from: Endpoint },
    /// A reset of `link` reaches its end `to`.
    LinkReset { link: LinkId, to: Endpoint },
    /// A server's timer: `Input::Tick` (`generation` drops a tick that an
    /// earlier election deadline replaced).
    Tick {
        server: u8,
        boot: u64,
        generation: u64,
    },
    /// The log's next file operation completes.
    DiskOp { server: u8, boot: u64 },
    /// The snapshot writer's next chunk (or the seal) completes.
    SnapshotOp { server: u8, boot: u64 },
    /// The driver tells the node a connection is gone.
    ConnClosed { server: u8, boot: u64, conn: u64 },
    /// The epoch file write asked for is done (or a crash lands on it).
    EpochOp { server: u8, boot: u64 },
    /// The state reload asked for reads the disk.
    ReloadOp { server: u8, boot: u64 },
    /// A dial to a leader's quorum port completes (`link`), or fails
    /// (`None`: the leader `sid` could not be reached).
    PeerDialed {
        server: u8,
        boot: u64,
        sid: u64,
        link: Option<LinkId>,
    },
    /// The driver tells the node a quorum connection it closed is gone.
    PeerClosed { server: u8, boot: u64, link: LinkId },
    /// A crashed server starts again and recovers.
    Restart { server: u8 },
    /// A server whose log failed is restarted by its operator.
    OperatorRestart { server: u8, boot: u64 },
    /// A slow-disk spell ends.
    DiskRecovers { server: u8 },
    /// The operator frees space on a full disk (of this boot's process).
    SpaceFreed { server: u8, boot: u64 },
    /// A client decides what to do next (`generation` drops stale wakes).
    ClientWake { client: u32, generation: u64 },
    /// A silent client's process comes back (a new session).
    ClientRevives { client: u32 },
    /// The next fault is due.
    Fault,
    /// A partition between two endpoints ends.
    Heal { a: Endpoint, b: Endpoint },
    /// A scripted fault (`crate::script`): this server crashes now, and
    /// restarts after `down_ms` (`None`: as after any crash).
    ScriptedCrash {
        server: u8,
        power_cut: bool,
        down_ms: Option<u64>,
    },
    /// A scripted fault: every server of this server's ensemble crashes,
    /// this one last.
    ScriptedCrashAll { server: u8, power_cut: bool },
    /// A scripted fault: this server is cut from all its peers for `ms`.
    ScriptedIsolate { server: u8, ms: u64 },
}

/// The shared state of one run.
#[derive(Debug)]
pub struct Context {
    pub now: Duration,
    pub rng: Rng,
    pub net: Network,
    pub agenda: Queue<Event>,
    /// The real-time order of history events (see `history`).
    order: u64,
    /// One history per database (per standalone server).
    pub histories: Vec<History>,
    /// What each client connection saw of watches, per database.
    pub watch_logs: Vec<Vec<ConnectionLog>>,
    /// What the clients were told, per database.
    pub told: Vec<Told>,
    pub trace: Trace,
    pub found: Option<Found>,
    /// Scheduler events processed so far.
    pub step: u64,
    /// The run's scripted faults and how often each fired.
    pub scripted: Scripted,
}

impl Context {
    pub fn new(seed: u64, databases: usize, trace: bool) -> Context {
        Context {
            now: Duration::ZERO,
            rng: Rng::new(seed),
            net: Network::default(),
            agenda: Queue::default(),
            order: 0,
            histories: vec![History::default(); databases],
            watch_logs: vec![Vec::new(); databases],
            told: vec![Told::default(); databases],
            trace: Trace::new(trace),
            found: None,
            step: 0,
            scripted: Scripted::default(),
        }
    }

    /// The next number in real-time order.
    pub fn next_order(&mut self) -> u64 {
        self.order += 1;
        self.order
    }

    /// Schedules `event` after `delay`.
    pub fn after(&mut self, delay: Duration, event: Event) {
        self.agenda.push(self.now + delay, event);
    }

    /// Sends on a link and schedules the delivery (dropped if the link is closed).
    pub fn send(&mut self, link: LinkId, from: Endpoint, payload: Payload) {
        if let Some(due) = self.net.send(link, from, payload, self.now, &mut self.rng) {
            self.agenda.push(due, Event::Deliver { link, from });
        }
    }

    /// Resets a link; each end hears of it a latency later.
    pub fn reset(&mut self, link: LinkId) {
        if let Some((a, b)) = self.net.reset(link) {
            for to in [a, b] {
                let delay = Duration::from_micros(self.rng.between(30, 800));
                self.after(delay, Event::LinkReset { link, to });
            }
        }
    }

    /// Records the first violation (later ones are consequences).
    pub fn violation(&mut self, violation: Violation) {
        if self.found.is_none() {
            let (now, step) = (self.now, self.step);
            self.trace.line(now, || format!("VIOLATION {violation}"));
            self.found = Some(Found {
                violation,
                at: now,
                step,
            });
        }
    }
}
