//! One run: the servers, the clients, the agenda, the faults, and the
//! checks at the end.
//!
//! ```text
//!   steps ── events one at a time (faults among them) ──▶ wind down ──▶ final reads ──▶ checks
//!            every step: node invariants, reply order,     faults stop,  each live client   linearizability,
//!            durability of what replies reveal, watches    sessions of   reads every path   sessions ⇔ tree,
//!                                                          silent clients                   ephemerals, digests
//!                                                          expire
//! ```
//!
//! An ensemble's servers are checked together after every step and at the
//! end (see [`crate::ensemble`]); its history is held to sequential
//! consistency (linearizable writes, each session in order), a standalone
//! server's to linearizability.
//!
//! The run stops at the first violation; the seed replays it.

use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use crate::checks;
use crate::client::{Client, ClientStats};
use crate::context::{Context, Event};
use crate::disk::DiskOp;
use crate::ensemble::{self, Agreement};
use crate::history::OpRecord;
use crate::linearizability::{self, Consistency, Verdict};
use crate::network::{Deliver, Endpoint};
use crate::options::{Bug, Fault, Options};
use crate::recovery::Logged;
use crate::server::{CrashPoint, Member, Server, ServerStats, SESSION_TIMEOUT_MAX_MS};
use crate::violation::{Found, Violation};

/// Search steps the linearizability checker may take per history.
pub const LINEARIZABILITY_BUDGET: u64 = 3_000_000;
/// How long the final reads may take before the run is declared stuck.
const FINAL_READS_DEADLINE: Duration = Duration::from_secs(30);
/// How long an ensemble may take to elect a leader and synchronise
/// everyone once the faults stop, before the run is declared stuck.
const ENSEMBLE_SETTLE_DEADLINE: Duration = Duration::from_secs(120);

/// What a run did and found.
#[derive(Debug)]
pub struct Outcome {
    pub seed: u64,
    pub steps: u64,
    pub simulated: Duration,
    /// Equal for two runs of one seed (see `trace`).
    pub fingerprint: u64,
    pub found: Option<Found>,
    pub summary: Summary,
    pub trace: Vec<String>,
}

/// Counts for the report.
#[derive(Debug, Default, Clone)]
pub struct Summary {
    pub ops_invoked: u64,
    pub ops_completed: u64,
    pub faults: BTreeMap<&'static str, u64>,
    pub servers: ServerStats,
    pub clients: ClientStats,
    pub linearizability_steps: u64,
    pub inconclusive: u64,
    /// Ensembles whose final history could not be checked: no server's
    /// whole log replays to the final tree (each took a snapshot from a
    /// leader at some point).
    pub no_whole_log: u64,
    /// Scripted faults that fired, by rule name (`Options::script`).
    pub scripted: BTreeMap<&'static str, u64>,
}

struct World {
    options: Options,
    cx: Context,
    servers: Vec<Server>,
    clients: Vec<Client>,
    /// Per database: the cross-server checks (ensembles only).
    agreements: Vec<Option<Agreement>>,
    faults: BTreeMap<&'static str, u64>,
    winding_down: bool,
    linearizability_steps: u64,
    inconclusive: u64,
    no_whole_log: u64,
    /// An aimed bit flip waits for its moment in this database (see
    /// [`World::bit_flip`]).
    bit_flip_armed: Option<usize>,
}

/// Runs one seed to the end (or to its first violation).
pub fn run(options: &Options) -> Outcome {
    let mut world = World::new(options);
    let result = catch_unwind(AssertUnwindSafe(|| world.run()));
    if let Err(panic) = result {
        let message = panic
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "a panic without a message".into());
        world.cx.found = None;
        world.cx.violation(Violation::Panic { message });
    }
    world.outcome()
}

impl World {
    fn new(options: &Options) -> World {
        assert!(options.servers >= 1, "a database has a voter");
        assert!(
            options.observers == 0 || options.is_ensemble(),
            "observers need an ensemble"
        );
        let mut cx = Context::new(options.seed, options.databases, options.trace);
        cx.scripted = crate::script::Scripted::new(&options.script);
        let per = options.servers_per_database();
        let mut servers = Vec::with_capacity(options.databases * per);
        for database in 0..options.databases {
            let members = members(options, database, &mut cx);
            for (i, member) in members.into_iter().enumerate() {
                let sid = sid_of(database * per + i);
                servers.push(Server::new(sid, database, member, options, &mut cx));
            }
        }
        let clients = (0..options.databases * options.clients)
            .map(|i| {
                let database = i / options.clients;
                let of_database = (0..per).map(|i| sid_of(database * per + i)).collect();
                Client::new(i as u32, of_database, database, options.mix, &mut cx)
            })
            .collect();
        let agreements = (0..options.databases)
            .map(|_| options.is_ensemble().then(Agreement::default))
            .collect();
        World {
            options: options.clone(),
            cx,
            servers,
            clients,
            agreements,
            faults: BTreeMap::new(),
            winding_down: false,
            linearizability_steps: 0,
            inconclusive: 0,
            no_whole_log: 0,
            bit_flip_armed: None,
        }
    }

    /// The servers of one database.
    fn servers_of(&self, database: usize) -> &[Server] {
        let per = self.options.servers_per_database();
        &self.servers[database * per..(database + 1) * per]
    }

    fn run(&mut self) {
        if !self.options.faults.0.is_empty() {
            self.schedule_fault();
        }
        while self.cx.step < self.options.steps && self.is_clean() {
            self.process_next();
        }
        if !self.is_clean() {
            return;
        }
        self.wind_down();
        self.settle();
        for client in &mut self.clients {
            client.start_final_reads();
        }
        let deadline = self.cx.now + FINAL_READS_DEADLINE;
        while self.is_clean()
            && self.cx.now < deadline
            && !self.clients.iter().all(Client::final_reads_done)
        {
            self.process_next();
        }
        if self.is_clean() && !self.clients.iter().all(Client::final_reads_done) {
            return self.cx.violation(Violation::Stuck {
                what: "the final reads were not all answered".into(),
            });
        }
        self.run_until_disks_idle();
        for client in &mut self.clients {
            client.finish(&mut self.cx);
        }
        if self.options.is_ensemble() {
            for database in 0..self.options.databases {
                if self.is_clean() {
                    self.check_ensemble_at_quiescence(database);
                }
            }
            return;
        }
        for index in 0..self.servers.len() {
            if self.is_clean() {
                self.check_at_quiescence(index);
            }
        }
    }

    fn is_clean(&self) -> bool {
        self.cx.found.is_none()
    }

    /// Runs until every server has been up long enough for every session
    /// no live client holds to expire (a restart gives recovered sessions a
    /// full timeout again), within a deadline.
    ///
    /// An ensemble must also have one leader serving for that long (a new
    /// leader gives every session a full timeout) and every server serving.
    fn settle(&mut self) {
        let quiet = Duration::from_millis(2 * u64::from(SESSION_TIMEOUT_MAX_MS) + 1_000);
        let limit = if self.options.is_ensemble() {
            ENSEMBLE_SETTLE_DEADLINE
        } else {
            Duration::from_secs(60)
        };
        let (start, deadline) = (self.cx.now, self.cx.now + limit);
        while self.is_clean() && self.cx.now < deadline {
            let since = |t: Duration| self.cx.now >= t + quiet;
            let servers_settled = self
                .servers
                .iter()
                .all(|s| s.is_up() && since(s.booted_at()));
            let ensembles_settled = self.agreements.iter().enumerate().all(|(db, a)| {
                a.as_ref().is_none_or(|a| {
                    a.leader().is_some_and(|(_, _, at)| since(at))
                        && self
                            .servers_of(db)
                            .iter()
                            .all(|s| s.node().is_some_and(|n| n.serving()))
                })
            });
            if since(start) && servers_settled && ensembles_settled {
                return;
            }
            self.process_next();
        }
        if self.is_clean() {
            let what = if self.options.is_ensemble() {
                "an ensemble did not settle (every server up and serving under one leader) within two minutes after the faults stopped"
            } else {
                "a server did not stay up for a minute after the faults stopped"
            };
            self.cx.violation(Violation::Stuck { what: what.into() });
        }
    }

    /// Runs until no disk has work in flight (and, in an ensemble, every
    /// server has applied what its leader committed).
    fn run_until_disks_idle(&mut self) {
        let deadline = self.cx.now + Duration::from_secs(10);
        let ensemble = self.options.is_ensemble();
        let idle = |w: &World| {
            !w.servers.iter().any(Server::is_busy)
                && (!ensemble
                    || (0..w.options.databases).all(|db| ensemble::is_caught_up(w.servers_of(db))))
        };
        while self.is_clean() && self.cx.now < deadline && !idle(self) {
            self.process_next();
        }
        if self.is_clean() && !idle(self) && ensemble {
            self.cx.violation(Violation::Stuck {
                what: "an ensemble's servers did not all catch up with their leader".into(),
            });
        }
    }

    /// Processes the next event on the agenda.
    fn process_next(&mut self) {
        let (at, event) = self.cx.agenda.pop().expect("ticks keep the agenda busy");
        self.cx.now = at;
        self.cx.step += 1;
        self.cx.trace.mix(at.as_nanos() as u64);
        let step = self.cx.step;
        self.cx.trace.line(at, || format!("#{step} {event:?}"));
        self.dispatch(event);
        self.maybe_aimed_bit_flip();
        self.check_ensembles();
    }

    /// The cross-server checks of every ensemble, after each step.
    fn check_ensembles(&mut self) {
        if !self.options.is_ensemble() || !self.is_clean() {
            return;
        }
        let per = self.options.servers_per_database();
        for (database, agreement) in self.agreements.iter_mut().enumerate() {
            let Some(agreement) = agreement else { continue };
            let servers = &self.servers[database * per..(database + 1) * per];
            let told = &self.cx.told[database];
            if let Err(violation) = agreement.after_step(database, servers, told, self.cx.now) {
                return self.cx.violation(violation);
            }
        }
    }

    fn server(&mut self, sid: u8) -> &mut Server {
        &mut self.servers[usize::from(sid) - 1]
    }

    fn dispatch(&mut self, event: Event) {
        let cx = &mut self.cx;
        match event {
            Event::Deliver { link, from } => match cx.net.deliver(link, from, cx.now) {
                Deliver::Delivered(delivery) => match delivery.to {
                    Endpoint::Server(sid) => {
                        let server = &mut self.servers[usize::from(sid) - 1];
                        server.on_delivery(cx, link, from, delivery.payload);
                    }
                    Endpoint::Client(id) => {
                        let client = &mut self.clients[id as usize];
                        let received = client.on_delivery(cx, link, delivery.payload);
                        cx.told[client.database].record(&received);
                    }
                },
                Deliver::Held(retry) => cx.agenda.push(retry, Event::Deliver { link, from }),
                Deliver::Nothing => {}
            },
            Event::LinkReset { link, to } => match to {
                Endpoint::Server(sid) => self.servers[usize::from(sid) - 1].on_reset(cx, link),
                Endpoint::Client(id) => self.clients[id as usize].on_reset(cx, link),
            },
            Event::Tick {
                server,
                boot,
                generation,
            } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_tick(cx, generation);
                }
            }
            Event::EpochOp { server, boot } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_epoch_op(cx);
                }
            }
            Event::ReloadOp { server, boot } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_reload_op(cx);
                }
            }
            Event::PeerDialed {
                server,
                boot,
                sid,
                link,
            } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_peer_dialed(cx, sid, link);
                }
            }
            Event::PeerClosed { server, boot, link } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_peer_closed(cx, link);
                }
            }
            Event::DiskOp { server, boot } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    match s.crash_armed {
                        // The power fails just before this operation completes.
                        Some((power_cut, CrashPoint::Log(target)))
                            if target.is_none_or(|op| s.disk_waiting() == Some(op)) =>
                        {
                            self.crash(server, power_cut)
                        }
                        _ => s.on_disk_op(cx),
                    }
                }
            }
            Event::SnapshotOp { server, boot } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_snapshot_op(cx);
                }
            }
            Event::ConnClosed { server, boot, conn } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.on_conn_closed(cx, conn);
                }
            }
            Event::Restart { server } => {
                let s = &mut self.servers[usize::from(server) - 1];
                s.restart(cx);
            }
            Event::OperatorRestart { server, boot } => {
                if server_at(&mut self.servers, server, boot).is_some() {
                    self.crash(server, false);
                }
            }
            Event::DiskRecovers { server } => self.server(server).slow_disk = false,
            Event::SpaceFreed { server, boot } => {
                if let Some(s) = server_at(&mut self.servers, server, boot) {
                    s.free_space();
                }
            }
            Event::ClientWake { client, generation } => {
                let c = &mut self.clients[client as usize];
                if c.is_current_wake(generation) {
                    c.wake(cx);
                }
            }
            Event::ClientRevives { client } => {
                if !self.winding_down {
                    self.clients[client as usize].revive(cx);
                }
            }
            Event::Fault => {
                if !self.winding_down {
                    self.inject_fault();
                    self.schedule_fault();
                }
            }
            Event::Heal { a, b } => cx.net.heal(a, b),
            Event::ScriptedCrash {
                server,
                power_cut,
                down_ms: None,
            } => self.crash(server, power_cut),
            Event::ScriptedCrash {
                server,
                power_cut,
                down_ms: Some(ms),
            } => {
                if self.servers[usize::from(server) - 1].crash(&mut self.cx, power_cut) {
                    let restart = Event::Restart { server };
                    self.cx.after(Duration::from_millis(ms), restart);
                }
            }
            Event::ScriptedCrashAll { server, power_cut } => {
                let database = self.servers[usize::from(server) - 1].database;
                let mut sids: Vec<u8> = self.servers_of(database).iter().map(|s| s.sid).collect();
                sids.retain(|s| *s != server);
                sids.push(server);
                for sid in sids {
                    self.crash(sid, power_cut);
                }
            }
            Event::ScriptedIsolate { server, ms } => {
                let database = self.servers[usize::from(server) - 1].database;
                let me = Endpoint::Server(server);
                let peers: Vec<u8> = self.servers_of(database).iter().map(|s| s.sid).collect();
                for peer in peers.into_iter().filter(|p| *p != server) {
                    let other = Endpoint::Server(peer);
                    self.cx.net.partition(me, other);
                    self.cx
                        .after(Duration::from_millis(ms), Event::Heal { a: me, b: other });
                }
            }
        }
    }

    // ----- faults -------------------------------------------------------------------

    fn schedule_fault(&mut self) {
        let delay = Duration::from_millis(self.cx.rng.between(50, 1_500));
        self.cx.after(delay, Event::Fault);
    }

    fn inject_fault(&mut self) {
        let enabled: Vec<Fault> = self.options.faults.0.iter().copied().collect();
        let fault = *self.cx.rng.pick(&enabled);
        *self.faults.entry(fault.name()).or_default() += 1;
        let sid = sid_of(self.cx.rng.below(self.servers.len() as u64) as usize);
        let (now, name) = (self.cx.now, fault.name());
        self.cx.trace.line(now, || format!("FAULT {name}"));
        match fault {
            Fault::Crash => {
                let power_cut = self.cx.rng.chance(7, 10);
                if self.cx.rng.chance(1, 2) {
                    self.crash(sid, power_cut);
                } else {
                    // Between two persistence steps: at the log's next file
                    // operation, or its next one of a kind.
                    // In an ensemble also around an epoch file write or a
                    // snapshot's seal (a standalone run draws as it always
                    // did, so old seeds keep their meaning).
                    let kinds = if self.options.is_ensemble() { 6 } else { 3 };
                    let target = match self.cx.rng.below(kinds) {
                        0 => CrashPoint::Log(None),
                        1 => CrashPoint::Log(Some(DiskOp::SyncData)),
                        2 => CrashPoint::Log(Some(DiskOp::Write)),
                        3 => CrashPoint::Epoch { written: false },
                        4 => CrashPoint::Epoch { written: true },
                        _ => CrashPoint::SnapshotSeal {
                            sealed: self.cx.rng.chance(1, 2),
                        },
                    };
                    self.server(sid).crash_armed = Some((power_cut, target));
                }
            }
            Fault::Fsync => self.server(sid).fail_next_fsync(),
            Fault::DiskFull => {
                let Self { servers, cx, .. } = self;
                servers[usize::from(sid) - 1].fill_disk(cx);
            }
            Fault::SlowDisk => {
                self.server(sid).slow_disk = true;
                let spell = Duration::from_millis(self.cx.rng.between(300, 6_000));
                self.cx.after(spell, Event::DiskRecovers { server: sid });
            }
            Fault::Clock => {
                if self.cx.rng.chance(1, 3) {
                    let max = u64::from(SESSION_TIMEOUT_MAX_MS);
                    let leap = Duration::from_millis(self.cx.rng.between(max / 5, 2 * max));
                    self.server(sid).leap_monotonic(leap);
                } else {
                    let ms = self.cx.rng.between(1_000, 3_600_000) as i64;
                    let ms = if self.cx.rng.chance(1, 2) { ms } else { -ms };
                    self.server(sid).jump_wall_clock(ms);
                }
            }
            Fault::Reset => {
                let links = self.cx.net.open_links();
                if !links.is_empty() {
                    let link = *self.cx.rng.pick(&links);
                    self.cx.reset(link);
                }
            }
            Fault::Silent => {
                let client = self.cx.rng.below(self.clients.len() as u64) as usize;
                let hang = self.cx.rng.chance(1, 2);
                self.clients[client].go_silent(&mut self.cx, hang);
                let max = u64::from(SESSION_TIMEOUT_MAX_MS);
                let revive = Duration::from_millis(self.cx.rng.between(max, 3 * max));
                self.cx.after(
                    revive,
                    Event::ClientRevives {
                        client: client as u32,
                    },
                );
            }
            Fault::Partition if self.options.is_ensemble() && self.cx.rng.chance(2, 3) => {
                self.partition_servers(sid);
            }
            Fault::BitFlip => self.bit_flip(sid),
            Fault::Partition => {
                let client = self.cx.rng.below(self.clients.len() as u64) as usize;
                let (a, b) = (
                    Endpoint::Client(client as u32),
                    Endpoint::Server(self.clients[client].server),
                );
                self.cx.net.partition(a, b);
                let spell = Duration::from_millis(self.cx.rng.between(200, 5_000));
                self.cx.after(spell, Event::Heal { a, b });
            }
        }
    }

    /// Cuts servers of `sid`'s ensemble from each other for a spell: one
    /// pair both ways, one pair one way only, or `sid` from all its peers.
    /// Every cut heals, so a quorum always comes back.
    fn partition_servers(&mut self, sid: u8) {
        let database = self.servers[usize::from(sid) - 1].database;
        let peers: Vec<u8> = self
            .servers_of(database)
            .iter()
            .map(|s| s.sid)
            .filter(|s| *s != sid)
            .collect();
        let spell = Duration::from_millis(self.cx.rng.between(200, 5_000));
        let me = Endpoint::Server(sid);
        let (now, how) = (self.cx.now, self.cx.rng.below(3));
        let cut: Vec<u8> = match how {
            0 | 1 => vec![*self.cx.rng.pick(&peers)],
            _ => peers,
        };
        for peer in cut {
            let other = Endpoint::Server(peer);
            if how == 1 {
                self.cx.net.block(me, other);
            } else {
                self.cx.net.partition(me, other);
            }
            self.cx.trace.line(now, || {
                let arrow = if how == 1 { "->" } else { "<->" };
                format!("partition s{sid} {arrow} s{peer} for {spell:?}")
            });
            self.cx.after(spell, Event::Heal { a: me, b: other });
        }
    }

    /// `Fault::BitFlip` (an ensemble's fault: a standalone server refuses
    /// a damaged log by design): a server is crashed and a bit flips in a
    /// durable record of its log. Half the time the damage is aimed and
    /// waits for its moment ([`World::maybe_aimed_bit_flip`]).
    ///
    /// One damaged server per ensemble at a time, as one power cut at a
    /// time is a minority: two of three servers recovering lost records
    /// elect no leader until an operator helps, by design (safe, not
    /// available).
    fn bit_flip(&mut self, sid: u8) {
        if !self.options.is_ensemble() {
            return;
        }
        let database = self.servers[usize::from(sid) - 1].database;
        if self.bit_flip_armed.is_some() || self.is_recovering(database) {
            return;
        }
        if self.cx.rng.chance(1, 2) {
            self.bit_flip_armed = Some(database);
            return;
        }
        let acked = self.newest_acknowledged(database);
        self.flip_and_crash(sid, None, acked);
    }

    /// An aimed bit flip, once exactly two voters hold the newest write a
    /// client was told about: the follower whose ack completed the quorum
    /// is damaged in that very record and the leader, the other holder,
    /// goes down too — the interleaving in which voting as if the lost
    /// record were held loses it (the damaged server and the one that never
    /// had it elect a leader without it).
    fn maybe_aimed_bit_flip(&mut self) {
        let Some(database) = self.bit_flip_armed else {
            return;
        };
        if self.is_recovering(database) {
            return;
        }
        let acked = self.newest_acknowledged(database);
        let holders: Vec<(u8, bool)> = self
            .servers_of(database)
            .iter()
            .filter(|s| s.is_voter() && s.is_up() && s.zxid_on_disk() >= acked)
            .map(|s| (s.sid, s.node().is_some_and(|n| n.mode() == "leader")))
            .collect();
        let voters = self
            .servers_of(database)
            .iter()
            .filter(|s| s.is_voter())
            .count();
        if acked == 0 || holders.len() != voters / 2 + 1 {
            return;
        }
        self.bit_flip_armed = None;
        let follower = holders
            .iter()
            .find(|(_, leads)| !leads)
            .unwrap_or(&holders[0])
            .0;
        let others: Vec<u8> = holders
            .iter()
            .map(|(sid, _)| *sid)
            .filter(|s| *s != follower)
            .collect();
        self.flip_and_crash(follower, Some(others), acked);
    }

    fn is_recovering(&self, database: usize) -> bool {
        self.servers_of(database)
            .iter()
            .any(Server::is_recovering_lost_records)
    }

    /// The newest write a client of `database` was told about (0: none).
    fn newest_acknowledged(&self, database: usize) -> i64 {
        self.cx.told[database]
            .acknowledged
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
    }

    /// Crashes `target`, flips a bit in its durable record `acked` (or its
    /// newest), then crashes `others`.
    fn flip_and_crash(&mut self, target: u8, others: Option<Vec<u8>>, acked: i64) {
        let power_cut = self.cx.rng.chance(1, 2);
        self.crash(target, power_cut);
        let Self { servers, cx, .. } = self;
        let server = &mut servers[usize::from(target) - 1];
        if server.is_up() {
            return;
        }
        server.flip_bit_in_log(cx, acked);
        for other in others.unwrap_or_default() {
            let now = self.cx.now;
            self.cx.trace.line(now, || {
                format!("bit flip aimed at s{target}; s{other}, another holder of 0x{acked:x}, goes down")
            });
            self.crash(other, true);
        }
    }

    /// Crashes a server and schedules its restart.
    fn crash(&mut self, sid: u8, power_cut: bool) {
        let Self { servers, cx, .. } = self;
        if servers[usize::from(sid) - 1].crash(cx, power_cut) {
            let down = Duration::from_millis(cx.rng.between(10, 2_000));
            cx.after(down, Event::Restart { server: sid });
        }
    }

    fn wind_down(&mut self) {
        self.winding_down = true;
        self.cx.scripted.stopped = true;
        self.cx.net.heal_all();
        for client in &mut self.clients {
            client.winding_down = true;
        }
        for server in &mut self.servers {
            server.slow_disk = false;
            server.crash_armed = None;
            self.bit_flip_armed = None;
            server.free_space();
        }
        let now = self.cx.now;
        self.cx
            .trace
            .line(now, || "winding down: faults stop".into());
    }

    // ----- the end ------------------------------------------------------------------

    fn check_at_quiescence(&mut self, index: usize) {
        let sid = sid_of(index);
        if !self.servers[index].is_up() {
            self.servers[index].restart(&mut self.cx);
        }
        let live: BTreeSet<i64> = self
            .clients
            .iter()
            .filter(|c| c.database == index)
            .filter_map(Client::live_session)
            .collect();
        let server = &self.servers[index];
        let Some(node) = server.node() else { return };
        if let Err(violation) = checks::sessions(sid, node.tree(), &live) {
            return self.cx.violation(violation);
        }
        let (newest, everything) = match server.recover_now() {
            Ok(recovered) => recovered,
            Err(error) => {
                return self
                    .cx
                    .violation(Violation::RecoveryFailed { server: sid, error })
            }
        };
        if !server.is_busy() && node.zxid_applied() == node.zxid_prepared() {
            let (zxid, live) = (node.zxid_applied(), node.tree().digest());
            let mismatch =
                if newest.tree.last_processed_zxid() != zxid || newest.tree.digest() != live {
                    Some(("recovery from the newest snapshot", newest.tree.digest()))
                } else if everything.tree.digest() != live {
                    Some((
                        "replaying the whole log on snapshot 0",
                        everything.tree.digest(),
                    ))
                } else {
                    None
                };
            if let Some((what, other)) = mismatch {
                return self.cx.violation(Violation::DigestMismatch {
                    server: sid,
                    zxid,
                    live,
                    what,
                    other,
                });
            }
        }
        self.check_history(
            server.database,
            sid,
            &everything.replayed,
            Consistency::Linearizable,
        );
    }

    /// An ensemble once quiet: sessions against every server's tree, the
    /// servers against each other and their disks, then the history
    /// against the ensemble's log (see `ensemble::final_log`).
    fn check_ensemble_at_quiescence(&mut self, database: usize) {
        let live: BTreeSet<i64> = self
            .clients
            .iter()
            .filter(|c| c.database == database)
            .filter_map(Client::live_session)
            .collect();
        let servers = self.servers_of(database);
        let reporter = servers[0].sid;
        let mut found = None;
        for server in servers {
            let Some(node) = server.node() else {
                found = Some(Violation::Stuck {
                    what: format!("s{} is down at the end", server.sid),
                });
                break;
            };
            if let Err(violation) = checks::sessions(server.sid, node.tree(), &live) {
                found = Some(violation);
                break;
            }
        }
        if let Some(violation) = found {
            return self.cx.violation(violation);
        }
        let node = servers[0].node().expect("checked up above");
        let (zxid, digest) = (node.zxid_applied(), node.tree().digest());
        // One disk's whole log, else the txns the serving servers applied
        // as the cross-server checks saw them (when every server took a
        // snapshot from a leader at some point), if those are whole.
        let agreement = self.agreements[database].as_ref();
        let whole = match ensemble::final_log(servers) {
            Ok(whole) => whole.filter(|w| agreement.is_none_or(|a| a.covers(&w.replayed))),
            Err(violation) => return self.cx.violation(violation),
        };
        let replayed = match whole {
            Some(whole) => whole.replayed,
            None => match agreement.and_then(|a| a.applied_history(zxid, digest)) {
                Some(history) => history,
                None => {
                    self.no_whole_log += 1;
                    return;
                }
            },
        };
        let told = &self.cx.told[database];
        // A refusal an ensemble logs as an error txn changes nothing.
        let refused = replayed.iter().find_map(|t| {
            let answer = told.refused.get(&(t.session, t.cxid))?;
            (t.kind != crate::recovery::TxnKind::Refused).then_some((t, *answer))
        });
        if let Some((t, answer)) = refused {
            return self.cx.violation(Violation::RefusedWriteApplied {
                server: reporter,
                zxid: t.zxid,
                session: t.session,
                cxid: t.cxid,
                answer,
            });
        }
        self.check_history(database, reporter, &replayed, Consistency::Sequential);
    }

    /// Watches and the history of one database against its log of txns
    /// (`sid` names the server in reports).
    fn check_history(
        &mut self,
        database: usize,
        sid: u8,
        replayed: &[Logged],
        consistency: Consistency,
    ) {
        let logs = &self.cx.watch_logs[database];
        if let Err(violation) = crate::watches::check_delivery(sid, logs, replayed) {
            return self.cx.violation(violation);
        }
        let ops = &self.cx.histories[database].ops;
        let placed = match checks::place_by_log(sid, ops, replayed) {
            Ok(placed) => placed,
            Err(violation) => return self.cx.violation(violation),
        };
        if std::env::var_os("FK_SIM_DUMP_HISTORY").is_some() {
            for (i, op) in placed.iter().enumerate() {
                eprintln!(
                    "{i:5} call {:6} ret {:>6} {:?} any={} {}",
                    op.record.call,
                    op.record
                        .ret
                        .as_ref()
                        .map_or("-".into(), |r| r.at.to_string()),
                    op.pin,
                    op.accept_any,
                    describe(&op.record)
                );
            }
        }
        match linearizability::check_ops_with(&placed, LINEARIZABILITY_BUDGET, consistency) {
            Verdict::Linearizable { steps } => self.linearizability_steps += steps,
            Verdict::Inconclusive { steps } => {
                self.linearizability_steps += steps;
                self.inconclusive += 1;
            }
            Verdict::NotLinearizable(counterexample) => {
                let op = &placed[counterexample.op].record;
                let recent: Vec<String> = counterexample
                    .linearized
                    .iter()
                    .rev()
                    .take(8)
                    .rev()
                    .map(|i| describe(&placed[*i].record))
                    .collect();
                let detail = format!(
                    "no order explains {} (the model answers {:?} after {} ops; the last of them: {})",
                    describe(op),
                    counterexample.model_answer,
                    counterexample.linearized.len(),
                    recent.join("; ")
                );
                self.cx.violation(Violation::NotLinearizable {
                    server: sid,
                    detail,
                });
            }
            Verdict::RealTimeBroken { earlier, later } => {
                let detail = format!(
                    "{} completed before {} was invoked, but their zxids order them the other way",
                    describe(&placed[earlier].record),
                    describe(&placed[later].record)
                );
                self.cx.violation(Violation::NotLinearizable {
                    server: sid,
                    detail,
                });
            }
            Verdict::SessionOrderBroken { earlier, later } => {
                let detail = format!(
                    "{} was issued before {} in one session, but their zxids order them the other way",
                    describe(&placed[earlier].record),
                    describe(&placed[later].record)
                );
                self.cx.violation(Violation::NotLinearizable {
                    server: sid,
                    detail,
                });
            }
            Verdict::ZxidReused {
                zxid,
                first,
                second,
            } => {
                let (first, second) = (
                    describe(&placed[first].record),
                    describe(&placed[second].record),
                );
                self.cx.violation(Violation::ZxidReused {
                    server: sid,
                    zxid,
                    first,
                    second,
                });
            }
        }
    }

    fn outcome(mut self) -> Outcome {
        let mut summary = Summary {
            faults: self.faults.clone(),
            linearizability_steps: self.linearizability_steps,
            inconclusive: self.inconclusive,
            no_whole_log: self.no_whole_log,
            ..Summary::default()
        };
        for history in &self.cx.histories {
            summary.ops_invoked += history.ops.len() as u64;
            summary.ops_completed += history.completed() as u64;
        }
        for s in &self.servers {
            let t = &mut summary.servers;
            t.power_cuts += s.stats.power_cuts;
            t.kills += s.stats.kills;
            t.restarts += s.stats.restarts;
            t.log_failures += s.stats.log_failures;
            t.snapshots += s.stats.snapshots;
            t.replayed_txns += s.stats.replayed_txns;
            t.warnings += s.stats.warnings;
            t.disk_operations += s.stats.disk_operations;
            t.failed_starts += s.stats.failed_starts;
            t.snapshot_chunks += s.stats.snapshot_chunks;
            t.snapshot_chunks_max = t.snapshot_chunks_max.max(s.stats.snapshot_chunks_max);
            t.epoch_writes += s.stats.epoch_writes;
            t.truncations += s.stats.truncations;
            t.reloads += s.stats.reloads;
            t.snapshots_interrupted += s.stats.snapshots_interrupted;
            t.zxid_rollovers += s.stats.zxid_rollovers;
            t.snapshots_scripted += s.stats.snapshots_scripted;
            t.snapshots_truncated += s.stats.snapshots_truncated;
            t.starts_refused += s.stats.starts_refused;
            t.replayed_multis += s.stats.replayed_multis;
            t.snapshot_stream_chunks_max = t
                .snapshot_stream_chunks_max
                .max(s.stats.snapshot_stream_chunks_max);
        }
        summary.scripted = std::mem::take(&mut self.cx.scripted.counts);
        for c in &self.clients {
            let t = &mut summary.clients;
            t.sessions += c.stats.sessions;
            t.expired_sessions_learned += c.stats.expired_sessions_learned;
            t.reconnects += c.stats.reconnects;
            t.watch_events += c.stats.watch_events;
        }
        Outcome {
            seed: self.options.seed,
            steps: self.cx.step,
            simulated: self.cx.now,
            fingerprint: self.cx.trace.fingerprint(),
            found: self.cx.found.take(),
            summary,
            trace: self.cx.trace.take_lines(),
        }
    }
}

/// The members of one database: `None` for a standalone server, else one
/// ensemble of voters then observers, each knowing every server's address.
fn members(options: &Options, database: usize, cx: &mut Context) -> Vec<Option<Member>> {
    if !options.is_ensemble() {
        return vec![None];
    }
    let per = options.servers_per_database();
    let specs = (1..=per as u64).map(|sid| {
        let kind = if sid > options.servers as u64 {
            ":observer"
        } else {
            ""
        };
        let value = format!("10.1.{database}.{sid}:2888:3888{kind}");
        replication::ServerSpec::parse(sid, &value).expect("a valid server line")
    });
    let ensemble = replication::Ensemble::new(specs).expect("a valid ensemble");
    // Small windows of recent txns make a leader send whole snapshots
    // (SNAP) to learners that fell behind, large ones DIFFs.
    let drawn = *cx.rng.pick(&[20usize, 200, 10_000]);
    let history_txns_max = options.history_txns_max.unwrap_or(drawn);
    (1..=per as u64)
        .map(|sid| {
            let mut settings = node::EnsembleSettings::new(sid, ensemble.clone());
            settings.history_txns_max = history_txns_max;
            settings.mutation = options.bug.and_then(Bug::mutation);
            Some(Member {
                my_sid: sid,
                settings,
                base: u8::try_from(database * per).expect("at most 255 servers"),
                observer: sid > options.servers as u64,
            })
        })
        .collect()
}

/// The server, if `boot` is its current boot (events of a crashed process
/// are ignored).
fn server_at(servers: &mut [Server], sid: u8, boot: u64) -> Option<&mut Server> {
    let server = &mut servers[usize::from(sid) - 1];
    (server.boot() == boot && server.is_up()).then_some(server)
}

/// Servers' endpoints are numbered from 1, as ZooKeeper numbers sids (in a
/// run of one ensemble, endpoint and sid agree).
fn sid_of(index: usize) -> u8 {
    u8::try_from(index + 1).expect("at most 255 servers")
}

/// One op for a report: who, what, when, what it got.
fn describe(op: &OpRecord) -> String {
    if op.client == checks::SERVER_CLIENT {
        return format!(
            "the server's {} for session 0x{:x}",
            op.op.describe(),
            op.session
        );
    }
    let ret = match &op.ret {
        Some(ret) => format!(
            "→ {:?} zxid {} at {:.6}s",
            ret.outcome,
            ret.zxid.map_or("-".into(), |z| format!("0x{z:x}")),
            ret.time.as_secs_f64()
        ),
        None => "→ no reply".into(),
    };
    format!(
        "c{} 0x{:x} {} at {:.6}s {ret}",
        op.client,
        op.session,
        op.op.describe(),
        op.call_time.as_secs_f64()
    )
}
