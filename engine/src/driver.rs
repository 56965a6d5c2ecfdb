//! The driver: runs the [`node::Node`] state machine on executor 0 and
//! carries out its actions with glommio — replies to connections' outboxes,
//! appends to the log task, snapshot chunks to the snapshot thread, purges
//! to a thread of their own — and feeds back what happened.
//!
//! ```text
//!  connections ── ToSequencer (bounded) ──┐
//!  log task, snapshot thread, purge ──────┼─ Completion (bounded) ─▶ node.step(now, input)
//!  tick timer ────────────────────────────┘                         node.ready() ─▶ actions
//! ```
//!
//! One clock read per turn. Completions are taken before new requests: they
//! release replies and free the log for the next append. While the node's
//! pipeline is full the inbox is not read, so connections stop reading their
//! sockets (backpressure all the way to the clients).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use node::{Action, ConnId, EpochKind, Input, Level, Node, Now, Peer, PurgeReport, StorageFailure};
use tracing::{debug, error, info, warn};

use crate::config::Config;
use crate::log_stage::{LogBatch, LogCommand, LogHandle, LogReport};
use crate::messages::{OutFrame, ToSequencer};
use crate::peers::{PeerEvent, Peers};
use crate::storage::{SnapshotEvent, SnapshotThread};

/// Messages handled per wake-up before the node's actions are carried out,
/// so one busy inbox cannot starve the log of work.
const INBOX_DRAIN_MAX: usize = 4096;

/// Completions (log, snapshot, purge) that may wait for the driver: at most
/// one append, the snapshot's chunks and its end, and one purge are ever
/// outstanding, so this never fills.
pub const COMPLETIONS_MAX: usize = 64;
// Chunks in flight, the snapshot's end and outcome, one log report, one purge.
const _: () = assert!(COMPLETIONS_MAX > node::SNAPSHOT_CHUNKS_IN_FLIGHT_MAX + 4);

/// Something a task or thread the driver started has finished.
#[derive(Debug)]
pub enum Completion {
    Log(LogReport),
    Snapshot(SnapshotEvent),
    Purge(Result<PurgeReport, StorageFailure>),
    /// An epoch file asked for is durable.
    EpochPersisted,
    /// The state reloaded from disk.
    Reloaded(Box<node::Recovered>),
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

pub struct Driver {
    config: Rc<Config>,
    node: Node,
    origin: Instant,
    outboxes: HashMap<ConnId, async_channel::Sender<OutFrame>>,
    log: LogHandle,
    completions: async_channel::Sender<Completion>,
    snapshot: Option<SnapshotThread>,
    four_letter_words: HashMap<u64, async_channel::Sender<Box<node::fourlw::NodeReport>>>,
    next_request: u64,
    actions: Vec<Action>,
    /// The peer transport, in an ensemble.
    peers: Option<Rc<Peers>>,
    peer_events: Option<async_channel::Receiver<PeerEvent>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("zxid_applied", &self.node.zxid_applied())
            .field("connections", &self.outboxes.len())
            .finish_non_exhaustive()
    }
}

impl Driver {
    /// `origin` is the instant the node's monotonic time counts from (the
    /// node was created at it).
    pub fn new(
        config: Rc<Config>,
        node: Node,
        origin: Instant,
        log: LogHandle,
        completions: async_channel::Sender<Completion>,
        peers: Option<(Rc<Peers>, async_channel::Receiver<PeerEvent>)>,
    ) -> Driver {
        let (peers, peer_events) = match peers {
            Some((peers, events)) => (Some(peers), Some(events)),
            None => (None, None),
        };
        Driver {
            peers,
            peer_events,
            config,
            node,
            origin,
            outboxes: HashMap::new(),
            log,
            completions,
            snapshot: None,
            four_letter_words: HashMap::new(),
            next_request: 0,
            actions: Vec::new(),
        }
    }

    fn now(&self) -> Now {
        Now {
            monotonic: self.origin.elapsed(),
            wall_ms: now_ms(),
        }
    }

    /// Runs until the inbox closes.
    pub async fn run(
        mut self,
        inbox: async_channel::Receiver<ToSequencer>,
        completions: async_channel::Receiver<Completion>,
    ) {
        let tick = self.node.tick_interval();
        // Ticks are due by the clock, not by idleness: a busy inbox must not
        // starve session expiry and the reaper.
        let mut next_tick = self.origin.elapsed() + tick;
        let peer_events = self.peer_events.clone();
        loop {
            let mut now = self.now();
            let election_due = self
                .node
                .next_deadline()
                .is_some_and(|deadline| now.monotonic >= deadline);
            if now.monotonic >= next_tick || election_due {
                self.node.step(now, Input::Tick);
                if now.monotonic >= next_tick {
                    next_tick = now.monotonic + tick;
                }
                self.carry_out();
            }
            let wake_at = self
                .node
                .next_deadline()
                .map_or(next_tick, |deadline| deadline.min(next_tick));
            let mut until_tick = wake_at.saturating_sub(now.monotonic);
            if self.node.has_ready_work() {
                until_tick = until_tick.min(std::time::Duration::from_millis(1));
            }
            let accepting = self.node.accepts_requests();
            enum Wake {
                Done(Completion),
                Peer(PeerEvent),
                Inbox(ToSequencer),
                Tick,
                Stop,
            }
            let wake = futures_lite::future::or(
                async {
                    match completions.recv().await {
                        Ok(completion) => Wake::Done(completion),
                        Err(_) => futures_lite::future::pending().await,
                    }
                },
                futures_lite::future::or(
                    async {
                        match &peer_events {
                            Some(events) => match events.recv().await {
                                Ok(event) => Wake::Peer(event),
                                Err(_) => futures_lite::future::pending().await,
                            },
                            None => futures_lite::future::pending().await,
                        }
                    },
                    futures_lite::future::or(
                        async {
                            if !accepting {
                                // Backpressure: a completion wakes the loop.
                                return futures_lite::future::pending().await;
                            }
                            inbox.recv().await.map_or(Wake::Stop, Wake::Inbox)
                        },
                        async {
                            glommio::timer::sleep(until_tick).await;
                            Wake::Tick
                        },
                    ),
                ),
            )
            .await;
            now = self.now();
            match wake {
                Wake::Done(completion) => {
                    self.on_completion(now, completion);
                    while let Ok(completion) = completions.try_recv() {
                        self.on_completion(now, completion);
                    }
                }
                Wake::Inbox(message) => self.on_message(now, message),
                Wake::Peer(event) => {
                    self.on_peer_event(now, event);
                    if let Some(events) = &peer_events {
                        for _ in 0..INBOX_DRAIN_MAX {
                            let Ok(event) = events.try_recv() else { break };
                            self.on_peer_event(now, event);
                        }
                    }
                }
                Wake::Tick => {}
                Wake::Stop => return,
            }
            // Every turn takes what clients sent meanwhile, whatever woke it:
            // the race above polls completions first, and while a snapshot is
            // written its chunk acknowledgements are ready back to back — one
            // chunk per turn must not mean no requests per turn.
            for _ in 0..INBOX_DRAIN_MAX {
                if !self.node.accepts_requests() {
                    break;
                }
                let Ok(message) = inbox.try_recv() else { break };
                self.on_message(now, message);
            }
            self.carry_out();
        }
    }

    fn on_message(&mut self, now: Now, message: ToSequencer) {
        let input = match message {
            ToSequencer::Connect {
                conn,
                peer,
                request,
                auth,
                outbox,
            } => {
                self.outboxes.insert(conn, outbox);
                let peer = Peer {
                    ip: peer.ip().to_string(),
                    port: peer.port(),
                };
                Input::Connect {
                    conn,
                    peer,
                    request,
                    auth,
                }
            }
            ToSequencer::Requests { conn, requests } => Input::Requests { conn, requests },
            ToSequencer::Written { conn, bytes } => Input::Written { conn, bytes },
            ToSequencer::Closed { conn } => {
                self.outboxes.remove(&conn);
                Input::Closed { conn }
            }
            ToSequencer::FourLetterWord { word, reply, .. } => {
                let request = self.next_request;
                self.next_request += 1;
                self.four_letter_words.insert(request, reply);
                Input::FourLetterWord { request, word }
            }
        };
        self.node.step(now, input);
    }

    fn on_completion(&mut self, now: Now, completion: Completion) {
        let input = match completion {
            Completion::Log(LogReport::Durable {
                zxid,
                records,
                record_bytes,
                sync_time,
            }) => Input::LogDurable {
                zxid,
                records,
                record_bytes,
                sync_time,
            },
            Completion::Log(LogReport::Failed(failure)) => Input::LogFailed(failure),
            Completion::Log(LogReport::Truncated { zxid }) => Input::LogTruncated { zxid },
            Completion::Log(LogReport::Space { available }) => Input::LogSpace { available },
            Completion::Snapshot(SnapshotEvent::ChunkWritten) => Input::SnapshotChunkWritten,
            Completion::Snapshot(SnapshotEvent::Done(result)) => {
                self.snapshot = None;
                Input::SnapshotDone { result }
            }
            Completion::Purge(result) => Input::PurgeDone { result },
            Completion::EpochPersisted => Input::EpochPersisted,
            Completion::Reloaded(recovered) => Input::Reloaded(recovered),
        };
        self.node.step(now, input);
    }

    fn on_peer_event(&mut self, now: Now, event: PeerEvent) {
        let input = match event {
            PeerEvent::Election { from, notification } => {
                Input::ElectionReceived { from, notification }
            }
            PeerEvent::Connected { link, outbound } => Input::PeerConnected { link, outbound },
            PeerEvent::ConnectFailed { sid } => Input::PeerConnectFailed { sid },
            PeerEvent::Received { link, packet } => Input::PeerReceived { link, packet },
            PeerEvent::Closed { link } => Input::PeerClosed { link },
            PeerEvent::Written { link, bytes } => Input::PeerWritten { link, bytes },
        };
        self.node.step(now, input);
    }

    /// Carries out everything the node has decided, in order.
    fn carry_out(&mut self) {
        let mut actions = std::mem::take(&mut self.actions);
        self.node.ready(&mut actions);
        for action in actions.drain(..) {
            self.carry_out_one(action);
        }
        self.actions = actions;
    }

    fn carry_out_one(&mut self, action: Action) {
        match action {
            Action::Send {
                conn,
                bytes,
                replies,
            } => self.send(conn, OutFrame::Frames { bytes, replies }),
            Action::Close { conn } => self.send(conn, OutFrame::Close),
            Action::Append {
                records,
                roll_first,
            } => {
                let batch = LogBatch {
                    records,
                    roll_first,
                };
                if self.log.to_log.try_send(LogCommand::Append(batch)).is_err() {
                    // The node has at most one append in flight and the log
                    // takes one at a time: a refusal means the log task is gone.
                    error!("the log task is gone: refusing all writes from now on");
                    let now = self.now();
                    self.node.step(now, Input::LogFailed(StorageFailure::Gone));
                }
            }
            Action::SnapshotBegin { zxid } => self.begin_snapshot(zxid),
            Action::SnapshotChunk { bytes } => {
                if let Some(thread) = &self.snapshot {
                    thread.push(bytes);
                }
            }
            Action::SnapshotEnd => {
                if let Some(thread) = &self.snapshot {
                    thread.end();
                }
            }
            Action::Purge { retain } => self.purge(retain),
            Action::FourLetterWord { request, report } => {
                if let Some(reply) = self.four_letter_words.remove(&request) {
                    let _ = reply.try_send(report);
                }
            }
            Action::Log { level, line } => match level {
                Level::Debug => debug!("{line}"),
                Level::Info => info!("{line}"),
                Level::Warn => warn!("{line}"),
                Level::Error => error!("{line}"),
            },
            action if action.is_ensemble_only() => self.carry_out_peer(action),
            other => unreachable!("a standalone action without its arm above: {other:?}"),
        }
    }

    /// Ensemble actions ([`Action::is_ensemble_only`]).
    fn carry_out_peer(&mut self, action: Action) {
        let Some(peers) = self.peers.clone() else {
            error!(
                ?action,
                "a standalone server was asked for an ensemble action; ignored"
            );
            return;
        };
        match action {
            Action::ElectionSend { to, notification } => peers.send_notification(to, notification),
            Action::ConnectToLeader { sid } => peers.connect_to_leader(sid),
            Action::PeerSend { link, packet } => peers.send(link, packet),
            Action::PeerClose { link } => peers.close(link),
            Action::PersistEpoch { kind, epoch } => self.persist_epoch(kind, epoch),
            Action::TruncateLog { zxid } => self.truncate_log(zxid),
            Action::Reload => self.reload(),
            Action::ClearRecovering => self.clear_recovering(),
            other => unreachable!("not an ensemble action: {other:?}"),
        }
    }

    /// Writes an epoch file (temp, fsync, rename, fsync the directory) on a
    /// blocking thread; a failure stops the server, as a failed fsync does.
    fn persist_epoch(&mut self, kind: EpochKind, epoch: i64) {
        let dir = self.config.data_dir.clone();
        let completions = self.completions.clone();
        let which = match kind {
            EpochKind::Accepted => wal::EpochFile::Accepted,
            EpochKind::Current => wal::EpochFile::Current,
        };
        glommio::spawn_local(async move {
            let written = glommio::executor()
                .spawn_blocking(move || wal::write_epoch(&dir, which, epoch))
                .await;
            match written {
                Ok(()) => {
                    let _ = completions.send(Completion::EpochPersisted).await;
                }
                Err(err) => {
                    error!(%err, ?kind, epoch, "cannot write the epoch file: stopping");
                    std::process::exit(1);
                }
            }
        })
        .detach();
    }

    /// Removes the "recovering" marker on a blocking thread. Nothing waits
    /// for it; if it fails, the marker stays and the next start abstains
    /// once more (safe), so the server goes on.
    fn clear_recovering(&mut self) {
        let dir = self.config.data_dir.clone();
        glommio::spawn_local(async move {
            let cleared = glommio::executor()
                .spawn_blocking(move || wal::clear_recovering(&dir))
                .await;
            match cleared {
                Ok(()) => info!("the recovering marker is removed: this server votes again"),
                Err(err) => error!(%err, "cannot remove the recovering marker; it abstains again after a restart"),
            }
        })
        .detach();
    }

    /// Loads the state from disk again on a blocking thread.
    fn reload(&mut self) {
        let (data_dir, log_dir) = (
            self.config.data_dir.clone(),
            self.config.data_log_dir.clone(),
        );
        let completions = self.completions.clone();
        glommio::spawn_local(async move {
            let loaded = glommio::executor()
                .spawn_blocking(move || {
                    let recovered = crate::storage::recover(&data_dir, &log_dir)?;
                    let zxid = recovered.tree.last_processed_zxid();
                    let (accepted_epoch, current_epoch) =
                        crate::storage::read_epochs(&data_dir, zxid)?;
                    Ok::<_, crate::storage::StorageError>(node::Recovered {
                        tree: recovered.tree,
                        history: recovered.history,
                        accepted_epoch,
                        current_epoch,
                        // The node keeps its own (it may have cleared it).
                        recovering: wal::read_recovering(&data_dir)?,
                    })
                })
                .await;
            match loaded {
                Ok(recovered) => {
                    let reloaded = Completion::Reloaded(Box::new(recovered));
                    let _ = completions.send(reloaded).await;
                }
                Err(err) => {
                    error!(%err, "cannot reload the state from disk: stopping");
                    std::process::exit(1);
                }
            }
        })
        .detach();
    }

    /// TRUNC: the log task cuts the log (in order with the appends).
    fn truncate_log(&mut self, zxid: i64) {
        if self
            .log
            .to_log
            .try_send(crate::log_stage::LogCommand::Truncate(zxid))
            .is_err()
        {
            error!("the log task is gone: refusing all writes from now on");
            let now = self.now();
            self.node.step(now, Input::LogFailed(StorageFailure::Gone));
        }
    }

    /// Hands frames to a connection. A connection whose outbox is full is not
    /// reading its replies and is closed; it reports `Closed` when it ends.
    fn send(&mut self, conn: ConnId, frame: OutFrame) {
        let Some(outbox) = self.outboxes.get(&conn) else {
            return;
        };
        match outbox.try_send(frame) {
            Ok(()) => {}
            Err(async_channel::TrySendError::Full(_)) => {
                warn!(
                    conn,
                    "closing connection: client is not reading its replies"
                );
                outbox.close();
            }
            Err(async_channel::TrySendError::Closed(_)) => {}
        }
    }

    fn begin_snapshot(&mut self, zxid: i64) {
        assert!(self.snapshot.is_none(), "one snapshot at a time");
        match SnapshotThread::start(self.config.data_dir.clone(), zxid, self.completions.clone()) {
            Ok(thread) => self.snapshot = Some(thread),
            Err(err) => {
                error!(%err, "cannot start the snapshot thread");
                let failure = StorageFailure::Io(err.kind());
                // Reported like any other outcome, through the completions.
                let _ = self
                    .completions
                    .try_send(Completion::Snapshot(SnapshotEvent::Done(Err(failure))));
            }
        }
    }

    /// Purges on a thread of its own (blocking file I/O, off every executor).
    fn purge(&mut self, retain: usize) {
        let (data_dir, log_dir) = (
            self.config.data_dir.clone(),
            self.config.data_log_dir.clone(),
        );
        let retain = retain.max(wal::RETAIN_COUNT_MIN);
        let completions = self.completions.clone();
        let spawned = std::thread::Builder::new()
            .name("fk-purge".into())
            .spawn(move || {
                let result = wal::purge(&data_dir, &log_dir, retain)
                    .map(|report| PurgeReport {
                        snapshots_removed: report.snapshots_removed.len(),
                        segments_removed: report.segments_removed.len(),
                        segments_recycled: report.segments_recycled.len(),
                    })
                    .map_err(|err| crate::storage::storage_failure(&err));
                let _ = completions.send_blocking(Completion::Purge(result));
            });
        if let Err(err) = spawned {
            let failure = StorageFailure::Io(err.kind());
            let _ = self.completions.try_send(Completion::Purge(Err(failure)));
        }
    }
}
