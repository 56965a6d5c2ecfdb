//! Scenario tests for fast leader election: 3- and 5-server ensembles of
//! [`Election`]s wired through an in-test network that delivers encoded
//! notifications in seeded random order, drops them, and crashes and
//! restarts servers. A small stand-in for the `node` layer gives the
//! election what it reacts to in production: followers that lose their
//! leader look again, a leader without a quorum steps down, an established
//! leader bumps the epoch (discovery), syncs its followers and commits
//! writes. Every failure message names the seed that replays it.
//!
//! Proven here:
//! - all servers agree on one leader in the end, and observers observe it;
//! - with no losses and every message delivered within the finalize wait,
//!   the leader is the server with the highest (epoch, zxid, sid);
//! - every leader is elected by a quorum whose own votes in that round were
//!   no better than the leader's, so an established leader holds every
//!   committed txn;
//! - a server that joins an established ensemble follows its leader, even
//!   when its own log is ahead, and nobody else re-elects.

use std::collections::BTreeMap;

use bytes::Bytes;
use proto::Zxid;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use replication::election_wire::Notification;
use replication::{
    Election, ElectionAction, ElectionConfig, ElectionInput, Ensemble, Role, Sid, Vote,
};

/// How often the stand-in node layer checks leaders and followers.
const ORACLE_INTERVAL_MS: u64 = 500;
/// How long a leader may wait for a quorum of followers (initLimit-like).
const LEADER_GRACE_MS: u64 = 2_000;
/// Give up on a seed after this many steps without a stable ensemble.
const STEPS_MAX: usize = 200_000;

#[derive(Debug)]
struct Node {
    /// Durable state: current epoch and last logged zxid.
    epoch: i64,
    zxid: Zxid,
    election: Option<Election>,
    timer_ms: Option<u64>,
    decided_at_ms: u64,
    /// For a leader: discovery done, the epoch is established.
    established: bool,
}

#[derive(Debug, Clone)]
struct Envelope {
    from: Sid,
    to: Sid,
    bytes: Bytes,
}

#[derive(Debug, Clone, Copy, Default)]
struct Faults {
    drop_per_mille: u32,
    crash_per_mille: u32,
}

struct Sim {
    seed: u64,
    rng: SmallRng,
    now_ms: u64,
    ensemble: Ensemble,
    nodes: BTreeMap<Sid, Node>,
    in_flight: Vec<Envelope>,
    faults: Faults,
    /// Deliver every message before time moves (latency << finalize wait).
    instant_network: bool,
    /// The best (lowest) vote each participant started a round with, over
    /// all its incarnations (a restart begins again at round 1).
    initial_votes: BTreeMap<(Sid, i64), Vote>,
    next_oracle_ms: u64,
    /// Servers to start, and when.
    pending_starts: Vec<(u64, Sid)>,
    committed_zxid: Zxid,
    /// Elections each server started.
    elections_started: BTreeMap<Sid, usize>,
    stats: Stats,
    events: Vec<String>,
}

/// What a run went through, so a test can show it exercised what it claims.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    crashes: usize,
    dropped: usize,
    establishments: usize,
    writes: usize,
}

fn ensemble(participants: u64, observers: u64) -> Ensemble {
    let values: Vec<(Sid, String)> = (1..=participants + observers)
        .map(|sid| {
            let kind = if sid > participants { ":observer" } else { "" };
            (
                sid,
                format!("127.0.0.1:{}:{}{kind}", 2000 + sid, 3000 + sid),
            )
        })
        .collect();
    Ensemble::from_server_values(values.iter().map(|(sid, v)| (*sid, v.as_str()))).unwrap()
}

impl Sim {
    fn new(seed: u64, ensemble: Ensemble) -> Self {
        let rng = SmallRng::seed_from_u64(seed);
        let nodes = ensemble
            .members()
            .map(|spec| {
                let node = Node {
                    epoch: 0,
                    zxid: 0,
                    election: None,
                    timer_ms: None,
                    decided_at_ms: 0,
                    established: false,
                };
                (spec.sid, node)
            })
            .collect();
        Self {
            seed,
            rng,
            now_ms: 0,
            ensemble,
            nodes,
            in_flight: Vec::new(),
            faults: Faults::default(),
            instant_network: false,
            initial_votes: BTreeMap::new(),
            next_oracle_ms: ORACLE_INTERVAL_MS,
            pending_starts: Vec::new(),
            committed_zxid: 0,
            elections_started: BTreeMap::new(),
            stats: Stats::default(),
            events: Vec::new(),
        }
    }

    /// Gives every server a random durable state (epoch 1..=3, zxid in it).
    fn randomize_state(&mut self) {
        for node in self.nodes.values_mut() {
            node.epoch = self.rng.gen_range(1..=3);
            node.zxid = (node.epoch << 32) | self.rng.gen_range(0..4);
        }
    }

    fn note(&mut self, event: String) {
        self.events.push(format!("{:>7} {event}", self.now_ms));
        if self.events.len() > 60 {
            self.events.remove(0);
        }
    }

    fn fail(&self, what: &str) -> ! {
        panic!(
            "seed {}: {what}\nlast events:\n{}\nnodes: {:#?}",
            self.seed,
            self.events.join("\n"),
            self.summary()
        );
    }

    fn summary(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(sid, n)| match &n.election {
                None => format!("{sid}: down"),
                Some(e) => format!(
                    "{sid}: epoch {} zxid {:#x} clock {} {:?} proposal {:?} established {}",
                    n.epoch,
                    n.zxid,
                    e.logical_clock(),
                    e.decision(),
                    e.proposal(),
                    n.established
                ),
            })
            .collect()
    }

    /// Starts (or restarts the process of) a server and its election.
    fn start(&mut self, sid: Sid, fresh_process: bool) {
        let node = self.nodes.get_mut(&sid).unwrap();
        if fresh_process || node.election.is_none() {
            let config = ElectionConfig::new(sid, self.ensemble.clone());
            node.election = Some(Election::new(config));
        }
        node.established = false;
        let input = ElectionInput::Start {
            current_epoch: node.epoch,
            last_logged_zxid: node.zxid,
        };
        *self.elections_started.entry(sid).or_default() += 1;
        self.note(format!("{sid} starts an election"));
        self.step(sid, input);
    }

    fn crash(&mut self, sid: Sid) {
        let node = self.nodes.get_mut(&sid).unwrap();
        node.election = None;
        node.timer_ms = None;
        node.established = false;
        self.note(format!("{sid} crashes"));
        self.stats.crashes += 1;
        // What was on the way to it is lost but for each sender's latest.
        let mut latest: BTreeMap<Sid, Envelope> = BTreeMap::new();
        self.in_flight.retain(|e| {
            if e.to == sid {
                latest.insert(e.from, e.clone());
                false
            } else {
                true
            }
        });
        self.in_flight.extend(latest.into_values());
    }

    fn step(&mut self, sid: Sid, input: ElectionInput) {
        let now_ms = self.now_ms;
        let node = self.nodes.get_mut(&sid).unwrap();
        let Some(election) = node.election.as_mut() else {
            return;
        };
        let actions = election.step(now_ms, input);
        election.check_invariants();
        if election.is_looking() && self.ensemble.is_voter(sid) {
            let initial = Vote {
                leader: sid,
                zxid: node.zxid,
                peer_epoch: node.epoch,
            };
            let best = self
                .initial_votes
                .entry((sid, election.logical_clock()))
                .or_insert(initial);
            *best = (*best).min(initial);
        }
        for action in actions {
            self.apply(sid, action);
        }
    }

    fn apply(&mut self, sid: Sid, action: ElectionAction) {
        match action {
            ElectionAction::Send { to, notification } => self.post(sid, to, &notification),
            ElectionAction::SendToVoters { notification } => {
                let voters: Vec<Sid> = self.ensemble.voters().iter().copied().collect();
                for to in voters.into_iter().filter(|to| *to != sid) {
                    self.post(sid, to, &notification);
                }
            }
            ElectionAction::Decided {
                role,
                vote,
                election_epoch,
            } => {
                self.note(format!(
                    "{sid} decides {role:?} {vote:?} round {election_epoch}"
                ));
                self.nodes.get_mut(&sid).unwrap().decided_at_ms = self.now_ms;
                if role == Role::Leading {
                    self.check_leader_was_elected_by_a_quorum(vote, election_epoch);
                }
            }
            ElectionAction::SetTimer { deadline_ms } => {
                assert!(deadline_ms >= self.now_ms);
                self.nodes.get_mut(&sid).unwrap().timer_ms = Some(deadline_ms);
            }
            ElectionAction::CancelTimer => self.nodes.get_mut(&sid).unwrap().timer_ms = None,
        }
    }

    /// Every participant whose vote in that round could have counted had an
    /// initial vote no better than the leader's: a quorum of them must.
    fn check_leader_was_elected_by_a_quorum(&self, vote: Vote, round: i64) {
        let dominated: Vec<Sid> = self
            .ensemble
            .voters()
            .iter()
            .copied()
            .filter(|v| {
                self.initial_votes
                    .get(&(*v, round))
                    .is_some_and(|i| *i <= vote)
            })
            .collect();
        if !self.ensemble.is_quorum(&dominated) {
            self.fail(&format!("leader {vote:?} of round {round} is behind a quorum: only {dominated:?} are not ahead"));
        }
    }

    fn is_up(&self, sid: Sid) -> bool {
        self.nodes[&sid].election.is_some()
    }

    /// Like ZooKeeper's QuorumCnxManager, the network keeps only the latest
    /// message from each server to one that is down (its send queue holds
    /// one), and delivers it once that server is up.
    fn post(&mut self, from: Sid, to: Sid, notification: &Notification) {
        if !self.is_up(to) {
            self.in_flight.retain(|e| (e.from, e.to) != (from, to));
        }
        self.in_flight.push(Envelope {
            from,
            to,
            bytes: notification.encode(),
        });
    }

    fn deliverable(&self) -> Vec<usize> {
        (0..self.in_flight.len())
            .filter(|i| self.is_up(self.in_flight[*i].to))
            .collect()
    }

    fn deliver_one(&mut self) {
        let deliverable = self.deliverable();
        let index = deliverable[self.rng.gen_range(0..deliverable.len())];
        let envelope = self.in_flight.swap_remove(index);
        if self.faults.drop_per_mille > 0 && self.rng.gen_ratio(self.faults.drop_per_mille, 1000) {
            self.stats.dropped += 1;
            return;
        }
        let notification = Notification::decode(&envelope.bytes).expect("we encoded it");
        let input = ElectionInput::Received {
            from: envelope.from,
            notification,
        };
        self.step(envelope.to, input);
    }

    fn run_step(&mut self) {
        if self.faults.crash_per_mille > 0 && self.rng.gen_ratio(self.faults.crash_per_mille, 1000)
        {
            let sid = self.rng.gen_range(1..=self.nodes.len() as u64);
            if self.nodes[&sid].election.is_some() {
                self.crash(sid);
            } else {
                self.start(sid, true);
            }
        }
        let deliverable = !self.deliverable().is_empty();
        if deliverable && (self.instant_network || self.rng.gen_bool(0.8)) {
            self.deliver_one();
            if !self.instant_network {
                self.now_ms += self.rng.gen_range(0..=3);
            }
        } else if !deliverable {
            let next_timer = self.nodes.values().filter_map(|n| n.timer_ms).min();
            let next_start = self.pending_starts.iter().map(|(t, _)| *t).min();
            let next = [next_timer, next_start, Some(self.next_oracle_ms)]
                .into_iter()
                .flatten()
                .min()
                .unwrap();
            self.now_ms = self.now_ms.max(next);
        } else {
            self.now_ms += self.rng.gen_range(1..=20);
        }
        let now_ms = self.now_ms;
        let (due_starts, later): (Vec<_>, Vec<_>) =
            self.pending_starts.iter().partition(|(t, _)| *t <= now_ms);
        self.pending_starts = later;
        for (_, sid) in due_starts {
            self.start(sid, true);
        }
        let due: Vec<Sid> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.timer_ms.is_some_and(|t| t <= self.now_ms))
            .map(|(sid, _)| *sid)
            .collect();
        for sid in due {
            self.step(sid, ElectionInput::Tick);
        }
        if self.now_ms >= self.next_oracle_ms {
            self.oracle();
            self.next_oracle_ms = self.now_ms + ORACLE_INTERVAL_MS;
        }
    }

    fn role(&self, sid: Sid) -> Option<(Role, Vote)> {
        let (role, vote, _) = self.nodes[&sid].election.as_ref()?.decision()?;
        Some((role, vote))
    }

    /// Live servers decided to follow or observe `leader`.
    fn followers_of(&self, leader: Sid) -> Vec<Sid> {
        self.nodes
            .keys()
            .copied()
            .filter(|sid| *sid != leader)
            .filter(|sid| matches!(self.role(*sid), Some((r, v)) if r != Role::Leading && v.leader == leader))
            .collect()
    }

    /// The node layer, reduced to what the election reacts to.
    fn oracle(&mut self) {
        let sids: Vec<Sid> = self.nodes.keys().copied().collect();
        for sid in sids {
            match self.role(sid) {
                None => {}
                Some((Role::Leading, _)) => self.lead(sid),
                Some((_, vote)) => self.follow(sid, vote.leader),
            }
        }
    }

    fn lead(&mut self, leader: Sid) {
        let (epoch, zxid) = (self.nodes[&leader].epoch, self.nodes[&leader].zxid);
        // Discovery refuses a follower ahead of the leader.
        let mut quorum = vec![leader];
        quorum.extend(
            self.followers_of(leader)
                .into_iter()
                .filter(|f| self.ensemble.is_voter(*f))
                .filter(|f| (self.nodes[f].epoch, self.nodes[f].zxid) <= (epoch, zxid)),
        );
        let has_quorum = self.ensemble.is_quorum(&quorum);
        let node = &self.nodes[&leader];
        if !has_quorum {
            if self.now_ms >= node.decided_at_ms + LEADER_GRACE_MS {
                self.note(format!("{leader} steps down without a quorum"));
                self.start(leader, false);
            }
            return;
        }
        if !node.established {
            if zxid < self.committed_zxid {
                self.fail(&format!(
                    "leader {leader} lacks committed zxid {:#x}",
                    self.committed_zxid
                ));
            }
            let new_epoch = quorum.iter().map(|s| self.nodes[s].epoch).max().unwrap() + 1;
            self.note(format!(
                "{leader} establishes epoch {new_epoch} with {quorum:?}"
            ));
            let node = self.nodes.get_mut(&leader).unwrap();
            node.epoch = new_epoch;
            node.established = true;
            self.stats.establishments += 1;
            self.step(leader, ElectionInput::EpochEstablished { epoch: new_epoch });
        }
        // Sync every follower, then maybe commit a write on all of them.
        for follower in self.followers_of(leader) {
            self.sync(follower, leader);
        }
        if self.rng.gen_bool(0.5) {
            let zxid = self.nodes[&leader].zxid + 1;
            self.nodes.get_mut(&leader).unwrap().zxid = zxid;
            for follower in self.followers_of(leader) {
                self.nodes.get_mut(&follower).unwrap().zxid = zxid;
            }
            self.committed_zxid = self.committed_zxid.max(zxid);
            self.stats.writes += 1;
        }
    }

    fn sync(&mut self, follower: Sid, leader: Sid) {
        let (epoch, zxid) = (self.nodes[&leader].epoch, self.nodes[&leader].zxid);
        let node = self.nodes.get_mut(&follower).unwrap();
        if node.epoch > epoch {
            // ZooKeeper's learner refuses a leader of an older epoch.
            self.note(format!(
                "{follower} refuses leader {leader} of older epoch {epoch}"
            ));
            self.start(follower, false);
            return;
        }
        if (node.epoch, node.zxid) != (epoch, zxid) {
            node.epoch = epoch;
            node.zxid = zxid;
            self.step(follower, ElectionInput::EpochEstablished { epoch });
        }
    }

    fn follow(&mut self, sid: Sid, leader: Sid) {
        let leading = self
            .role(leader)
            .is_some_and(|(r, v)| r == Role::Leading && v.leader == leader);
        if !leading {
            self.note(format!("{sid} lost leader {leader}"));
            self.start(sid, false);
        }
    }

    /// One leader, established, followed by every other server; no message
    /// left in flight.
    fn stable_leader(&self) -> Option<Sid> {
        if !self.in_flight.is_empty() || !self.pending_starts.is_empty() {
            return None;
        }
        let leaders: Vec<Sid> = self
            .nodes
            .keys()
            .copied()
            .filter(|sid| matches!(self.role(*sid), Some((Role::Leading, _))))
            .collect();
        let [leader] = leaders[..] else {
            return None;
        };
        let everyone = self.followers_of(leader).len() + 1 == self.nodes.len();
        (everyone && self.nodes[&leader].established).then_some(leader)
    }

    /// Runs until the ensemble is stable, failing after `STEPS_MAX` steps.
    fn run_until_stable(&mut self) -> Sid {
        for _ in 0..STEPS_MAX {
            if let Some(leader) = self.stable_leader() {
                return leader;
            }
            self.run_step();
        }
        self.fail("no stable leader")
    }

    fn run_steps(&mut self, steps: usize) {
        for _ in 0..steps {
            self.run_step();
        }
    }

    fn elections(&self) -> usize {
        self.elections_started.values().sum()
    }

    /// Schedules every server to start at a random time below `within_ms`.
    fn start_all_within(&mut self, within_ms: u64) {
        let sids: Vec<Sid> = self.nodes.keys().copied().collect();
        for sid in sids {
            let at = self.rng.gen_range(0..within_ms);
            self.pending_starts.push((at, sid));
        }
    }

    /// The participant with the highest (epoch, zxid, sid), ordered here
    /// rather than by `Vote`'s own ordering, which is under test.
    fn best_vote(&self) -> Vote {
        let (peer_epoch, zxid, leader) = self
            .ensemble
            .voters()
            .iter()
            .map(|sid| (self.nodes[sid].epoch, self.nodes[sid].zxid, *sid))
            .max()
            .unwrap();
        Vote {
            leader,
            zxid,
            peer_epoch,
        }
    }

    fn assert_roles(&self, leader: Sid) {
        for (sid, _) in self.nodes.iter() {
            let (role, vote) = self.role(*sid).unwrap();
            assert_eq!(vote.leader, leader, "seed {}", self.seed);
            let expected = if *sid == leader {
                Role::Leading
            } else if self.ensemble.is_voter(*sid) {
                Role::Following
            } else {
                Role::Observing
            };
            assert_eq!(role, expected, "seed {}: server {sid}", self.seed);
        }
    }
}

fn clean_start_elects_the_best_vote(
    participants: u64,
    observers: u64,
    seeds: std::ops::Range<u64>,
) {
    for seed in seeds {
        let mut sim = Sim::new(seed, ensemble(participants, observers));
        sim.instant_network = true;
        sim.randomize_state();
        let best = sim.best_vote();
        // Staggered starts, all within the finalize wait.
        sim.start_all_within(150);
        let leader = sim.run_until_stable();
        if leader != best.leader {
            sim.fail(&format!("leader {leader}, best vote {best:?}"));
        }
        sim.assert_roles(leader);
        // Participants decide in their first election. An observer hears only
        // answers to its own notifications, so it may settle on a stale
        // quorum and look again, as ZooKeeper's observers may.
        for sid in sim.ensemble.voters() {
            assert_eq!(sim.elections_started[sid], 1, "seed {seed}: server {sid}");
        }
    }
}

#[test]
fn three_servers_starting_together_elect_the_best_vote() {
    // Random durable states, random delivery order: the highest (epoch, zxid, sid) leads.
    clean_start_elects_the_best_vote(3, 0, 0..300);
}

#[test]
fn five_servers_starting_together_elect_the_best_vote() {
    // The same with five participants, and with three participants and two observers.
    clean_start_elects_the_best_vote(5, 0, 0..150);
    clean_start_elects_the_best_vote(3, 2, 0..150);
}

fn faults_converge(participants: u64, observers: u64, seeds: std::ops::Range<u64>) {
    let runs = (seeds.end - seeds.start) as usize;
    let mut total = Stats::default();
    let mut elections = 0;
    for seed in seeds {
        let mut sim = Sim::new(seed, ensemble(participants, observers));
        sim.randomize_state();
        sim.faults = Faults {
            drop_per_mille: 200,
            crash_per_mille: 5,
        };
        sim.start_all_within(2_000);
        sim.run_steps(3_000);
        // Calm: every server up, nothing lost any more.
        sim.faults = Faults::default();
        let down: Vec<Sid> = sim
            .nodes
            .iter()
            .filter(|(_, n)| n.election.is_none())
            .map(|(s, _)| *s)
            .collect();
        for sid in down {
            sim.start(sid, true);
        }
        let leader = sim.run_until_stable();
        sim.assert_roles(leader);
        // Stable means stable: time passing changes nothing.
        let started = sim.elections();
        sim.run_steps(200);
        assert_eq!(sim.stable_leader(), Some(leader), "seed {seed}");
        assert_eq!(
            sim.elections(),
            started,
            "seed {seed}: no election while stable"
        );
        total.crashes += sim.stats.crashes;
        total.dropped += sim.stats.dropped;
        total.establishments += sim.stats.establishments;
        total.writes += sim.stats.writes;
        elections += sim.elections();
    }
    // The faults happened: leaders came and went while writes were committed.
    let servers = (participants + observers) as usize;
    println!("{runs} runs: {total:?}, {elections} elections");
    assert!(total.crashes >= runs, "{total:?}");
    assert!(total.dropped >= 10 * runs, "{total:?}");
    assert!(total.establishments >= 2 * runs, "{total:?}");
    assert!(total.writes >= 10 * runs, "{total:?}");
    assert!(elections >= 2 * servers * runs, "{elections} elections");
}

#[test]
fn three_servers_agree_despite_drops_and_restarts() {
    // 20% of notifications lost, servers crashing and restarting: one leader in the end.
    faults_converge(3, 0, 0..150);
}

#[test]
fn five_servers_agree_despite_drops_and_restarts() {
    // The same with five participants, and with observers that end up observing.
    faults_converge(5, 0, 0..80);
    faults_converge(3, 2, 0..80);
}

fn join_established(joiner_ahead: bool, seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let mut sim = Sim::new(seed, ensemble(5, 0));
        sim.randomize_state();
        let joiner = sim.rng.gen_range(1..=5);
        let others: Vec<Sid> = (1..=5).filter(|s| *s != joiner).collect();
        for sid in &others {
            sim.start(*sid, true);
        }
        // Four servers elect and establish a leader and commit writes.
        let leader = loop {
            sim.run_step();
            let leaders: Vec<Sid> = others
                .iter()
                .copied()
                .filter(|s| matches!(sim.role(*s), Some((Role::Leading, _))))
                .collect();
            if let [leader] = leaders[..] {
                if sim.nodes[&leader].established
                    && sim.followers_of(leader).len() == 3
                    && sim.deliverable().is_empty()
                {
                    break leader;
                }
            }
            assert!(sim.now_ms < 600_000, "seed {seed}: no leader among four");
        };
        sim.run_steps(50);
        let joiner_state = if joiner_ahead {
            // A follower of this epoch back from a crash with an uncommitted
            // tail: its vote beats the leader's, whose vote still carries the
            // zxid it was elected with.
            (sim.nodes[&leader].epoch, sim.nodes[&leader].zxid + 7)
        } else {
            (0, 0)
        };
        let node = sim.nodes.get_mut(&joiner).unwrap();
        (node.epoch, node.zxid) = joiner_state;
        let started = sim.elections();
        sim.start(joiner, true);
        let stable = sim.run_until_stable();
        assert_eq!(stable, leader, "seed {seed}: the established leader stays");
        assert_eq!(
            sim.role(joiner).map(|(r, v)| (r, v.leader)),
            Some((Role::Following, leader)),
            "seed {seed}"
        );
        assert_eq!(
            sim.elections(),
            started + 1,
            "seed {seed}: only the joiner looked"
        );
    }
}

#[test]
fn a_server_joining_an_established_ensemble_follows_its_leader() {
    // A fifth server, behind the others, follows the leader of four without an election.
    join_established(false, 0..60);
}

#[test]
fn a_joiner_with_a_longer_log_still_follows_the_established_leader() {
    // Its better vote does not unseat a leader a quorum follows (it will be truncated).
    join_established(true, 0..60);
}
