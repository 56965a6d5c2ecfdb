//! Starting the standalone server: one glommio executor per configured core,
//! each accepting client connections on the shared client port
//! (SO_REUSEPORT) and serving those placed on it — the fewest live
//! connections, executor 0 on a tie ([`crate::placement`]) — and the node
//! with its driver and the log task on executor 0. Executors are pinned to
//! CPUs only when they take the whole machine (`placement::pinned_cpu`).
//!
//! ```text
//! executor 0: listener, connections ─┐
//!             driver + node, log    ◀┤ ToSequencer (bounded)
//! executor 1: listener, connections ─┘
//! ```

use std::collections::HashMap;
use std::net::IpAddr;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use thiserror::Error;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::connection::{self, ConnectionSettings};
use crate::driver::{Completion, Driver, COMPLETIONS_MAX};
use crate::log_stage::{log_channels, spawn_disk_log, DiskLogSettings, LogEnd, LogHandle};
use crate::messages::{ToSequencer, INBOX_MESSAGES_MAX};
use crate::peers::{Peers, PEER_EVENTS_MAX};
use crate::placement::{pinned_cpu, ExecutorLoads, Handoff, HANDOFFS_MAX};
use crate::storage::{self, Recovered, StorageError};
use crate::tls::{TlsError, TlsServer};
use wal::LogTail;

#[derive(Debug, Error)]
pub enum ServerError {
    #[error("cannot start executor {index}: {reason}")]
    Executor { index: usize, reason: String },
    #[error("cannot listen on {address}: {source}")]
    Listen {
        address: std::net::SocketAddr,
        source: std::io::Error,
    },
    #[error("executor {index} stopped: {reason}")]
    Stopped { index: usize, reason: String },
    #[error("storage: {0}")]
    Storage(#[from] StorageError),
    #[error("configuration: {0}")]
    Config(crate::config::ConfigError),
    #[error("server {sid}: cannot listen for peers: {source}")]
    Peers { sid: u64, source: std::io::Error },
    #[error("secure client port: {0}")]
    Tls(#[from] TlsError),
}

/// Open connections per client IP, shared by every executor's listener.
#[derive(Debug, Default)]
struct ConnectionCounts {
    by_ip: Mutex<HashMap<IpAddr, u32>>,
}

impl ConnectionCounts {
    /// Counts a new connection unless `max` (0 = unlimited) is reached.
    fn admit(&self, ip: IpAddr, max: u32) -> bool {
        let mut by_ip = self.by_ip.lock().expect("connection counts poisoned");
        let count = by_ip.entry(ip).or_insert(0);
        if max != 0 && *count >= max {
            return false;
        }
        *count += 1;
        true
    }

    fn release(&self, ip: IpAddr) {
        let mut by_ip = self.by_ip.lock().expect("connection counts poisoned");
        if let Some(count) = by_ip.get_mut(&ip) {
            *count -= 1;
            if *count == 0 {
                by_ip.remove(&ip);
            }
        }
    }
}

/// Runs the server until it fails. Returns only on error.
pub fn run(config: Config) -> Result<(), ServerError> {
    config
        .writer_config(0)
        .validate()
        .map_err(StorageError::Wal)?;
    let ensemble = config.ensemble_settings().map_err(ServerError::Config)?;
    let recovering = storage::protocol_aware_recovery(
        &config.data_dir,
        &config.data_log_dir,
        ensemble.is_some(),
    )?;
    let Recovered {
        tree,
        tail,
        history,
        ..
    } = storage::recover(&config.data_dir, &config.data_log_dir)?;
    let (accepted_epoch, current_epoch) =
        storage::read_epochs(&config.data_dir, tree.last_processed_zxid())?;
    let recovered = node::Recovered {
        tree,
        history,
        accepted_epoch,
        current_epoch,
        recovering,
    };
    let (completions_sender, completions) = async_channel::bounded::<Completion>(COMPLETIONS_MAX);
    let (log_handle, log_end) = log_channels(completions_sender.clone());
    let mut node_part = Some((
        recovered,
        ensemble,
        log_handle,
        completions_sender,
        completions,
    ));
    let mut log_part = Some((log_end, tail));
    // The log task shares the node's executor: on another core it made
    // writes no faster here (they are bound by the node's turn, not the
    // log) and added two cross-core hops to every write (serial create p50
    // 280 -> 400 µs). The channels work across executors should that change.
    let log_index = 0;
    // Stores are read once, before anything starts: a bad one stops the server.
    let tls = match config.secure_client_address() {
        Some(_) => Some(TlsServer::from_config(&config)?),
        None => None,
    };
    let config = Arc::new(config);
    let (to_sequencer, inbox) = async_channel::bounded::<ToSequencer>(INBOX_MESSAGES_MAX);
    // One count per port, as ZooKeeper's plain and secure factories count apart.
    let counts = Arc::new(ConnectionCounts::default());
    let secure_counts = Arc::new(ConnectionCounts::default());
    let next_conn = Arc::new(AtomicU64::new(1));
    let loads = Arc::new(ExecutorLoads::new(config.cores));
    let (handoffs, mut arrivals): (Vec<_>, Vec<_>) = (0..config.cores)
        .map(|_| async_channel::bounded::<Handoff>(HANDOFFS_MAX))
        .unzip();
    arrivals.reverse();
    // The CPUs this process may run on (its affinity mask) and the machine's.
    let allowed = crate::placement::allowed_cpus()
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let online = glommio::CpuSet::online().map_or(allowed, |cpus| cpus.len());
    // A pinned executor owns its CPU and may poll the disk for completions;
    // floating ones share CPUs (other servers, the kernel worker finishing
    // the write) and must sleep instead (vendor/glommio-patch/PATCH.md).
    let pinned = pinned_cpu(0, config.cores, allowed, online).is_some();
    glommio::allow_io_polling_without_poll_queues(pinned);
    // Whether every listener is bound, reported once by each executor.
    let (bound_sender, bound) = std::sync::mpsc::channel::<Result<usize, ServerError>>();
    let mut handles = Vec::new();
    for index in 0..config.cores {
        let placement = match pinned_cpu(index, config.cores, allowed, online) {
            Some(cpu) => Placement::Fixed(cpu),
            None => Placement::Unbound,
        };
        let config = Arc::clone(&config);
        let to_sequencer = to_sequencer.clone();
        let inbox = inbox.clone();
        let listeners = Listeners {
            config: Arc::clone(&config),
            to_sequencer: to_sequencer.clone(),
            counts: Arc::clone(&counts),
            secure_counts: Arc::clone(&secure_counts),
            next_conn: Arc::clone(&next_conn),
            tls: tls.clone(),
            index,
            loads: Arc::clone(&loads),
            handoffs: handoffs.clone(),
            arrivals: arrivals.pop().expect("one handoff queue per executor"),
        };
        let bound_sender = bound_sender.clone();
        let node_part = if index == 0 { node_part.take() } else { None };
        let log_part = if index == log_index {
            log_part.take()
        } else {
            None
        };
        let handle = LocalExecutorBuilder::new(placement)
            .name(&format!("fk-core-{index}"))
            .io_memory(config.io_memory_bytes)
            .spawn(move || async move {
                if let Some((end, tail)) = log_part {
                    if let Err(err) = start_log(&config, end, tail).await {
                        let _ = bound_sender.send(Err(err));
                        return;
                    }
                }
                match node_part {
                    Some((recovered, ensemble, log, completions_sender, completions)) => {
                        let channels = DriverChannels {
                            inbox,
                            log,
                            completions_sender,
                            completions,
                        };
                        if let Err(err) = start_driver(&config, recovered, ensemble, channels) {
                            let _ = bound_sender.send(Err(err));
                            return;
                        }
                    }
                    None => drop(inbox),
                }
                drop(to_sequencer);
                match listeners.bind() {
                    Ok(bound) => {
                        let _ = bound_sender.send(Ok(index));
                        listeners.serve(bound).await;
                    }
                    Err(err) => {
                        let _ = bound_sender.send(Err(err));
                    }
                }
            })
            .map_err(|err| ServerError::Executor {
                index,
                reason: err.to_string(),
            })?;
        handles.push(handle);
    }
    drop(bound_sender);
    drop(to_sequencer);
    for _ in 0..config.cores {
        match bound.recv() {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => return Err(err),
            Err(_) => break,
        }
    }
    info!(address = %config.client_address(), cores = config.cores, "ferrokeeper serving clients");
    if let Some(address) = config.secure_client_address() {
        info!(%address, client_auth = ?config.tls.client_auth, "ferrokeeper serving TLS clients");
    }
    for (index, handle) in handles.into_iter().enumerate() {
        handle.join().map_err(|err| ServerError::Stopped {
            index,
            reason: err.to_string(),
        })?;
    }
    Err(ServerError::Stopped {
        index: 0,
        reason: "all executors returned".into(),
    })
}

/// Opens the log where recovery left it and starts the log task on this executor.
async fn start_log(config: &Arc<Config>, end: LogEnd, tail: LogTail) -> Result<(), ServerError> {
    let settings = DiskLogSettings {
        // A fresh salt at every start keeps a recycled segment's old records
        // from ever passing for new ones.
        writer: config.writer_config(rand::random()),
        dir: config.data_log_dir.clone(),
        fsync_warning: Duration::from_millis(config.fsync_warning_threshold_ms),
        dsync: config.log_sync_dsync,
        snap_dir: config.data_dir.clone(),
    };
    spawn_disk_log(end, settings, tail)
        .await
        .map_err(|err| ServerError::Storage(StorageError::Wal(err)))
}

/// The channels the driver works with.
struct DriverChannels {
    inbox: async_channel::Receiver<ToSequencer>,
    log: LogHandle,
    completions_sender: async_channel::Sender<Completion>,
    completions: async_channel::Receiver<Completion>,
}

/// Starts the node and its driver on this executor (and, in an ensemble,
/// the peer transport).
fn start_driver(
    config: &Arc<Config>,
    recovered: node::Recovered,
    ensemble: Option<node::EnsembleSettings>,
    channels: DriverChannels,
) -> Result<(), ServerError> {
    let origin = Instant::now();
    let now = node::Now {
        monotonic: origin.elapsed(),
        wall_ms: crate::driver::now_ms(),
    };
    // A fresh seed at every start: which txn counts trigger snapshots.
    let mut settings = config.node_settings(rand::random());
    // Fresh secret bytes at every start: every SASL nonce derives from them.
    settings.sasl = config.sasl.node_settings(rand::random());
    let peers = match &ensemble {
        Some(ensemble) => {
            let (events, received) = async_channel::bounded(PEER_EVENTS_MAX);
            let peers = Peers::new(ensemble.my_sid, ensemble.ensemble.clone(), events);
            peers.listen().map_err(|source| ServerError::Peers {
                sid: ensemble.my_sid,
                source,
            })?;
            info!(
                sid = ensemble.my_sid,
                servers = ensemble.ensemble.members().count(),
                "joining the ensemble"
            );
            settings.server_id = ensemble.my_sid as u8;
            Some((peers, received))
        }
        None => None,
    };
    settings.ensemble = ensemble;
    let node = node::Node::new(settings, recovered, crate::log_stage::append_limits(), now);
    let config = Rc::new(Config::clone(config));
    let driver = Driver::new(
        config,
        node,
        origin,
        channels.log,
        channels.completions_sender,
        peers,
    );
    let (inbox, completions) = (channels.inbox, channels.completions);
    glommio::spawn_local(async move {
        driver.run(inbox, completions).await;
        error!("the driver stopped");
    })
    .detach();
    Ok(())
}

/// What an executor's listeners share: where connections go, how many each
/// address has, and which executor serves each ([`crate::placement`]).
struct Listeners {
    config: Arc<Config>,
    to_sequencer: async_channel::Sender<ToSequencer>,
    counts: Arc<ConnectionCounts>,
    secure_counts: Arc<ConnectionCounts>,
    next_conn: Arc<AtomicU64>,
    tls: Option<TlsServer>,
    /// This executor's index.
    index: usize,
    loads: Arc<ExecutorLoads>,
    /// Every executor's handoff queue, by index.
    handoffs: Vec<async_channel::Sender<Handoff>>,
    /// Connections other executors accepted for this one.
    arrivals: async_channel::Receiver<Handoff>,
}

impl Listeners {
    /// Binds the client port and, if configured, the secure client port.
    fn bind(&self) -> Result<(TcpListener, Option<TcpListener>), ServerError> {
        let bind = |address| {
            TcpListener::bind(address).map_err(|source| ServerError::Listen {
                address,
                source: source.into(),
            })
        };
        let plain = bind(self.config.client_address())?;
        let secure = match self.config.secure_client_address() {
            Some(address) => Some(bind(address)?),
            None => None,
        };
        Ok((plain, secure))
    }

    /// The per-address counts of the port a connection came in on
    /// (ZooKeeper's plain and secure factories count apart).
    fn counts(&self, secure: bool) -> &Arc<ConnectionCounts> {
        if secure {
            &self.secure_counts
        } else {
            &self.counts
        }
    }

    /// Accepts on both ports, and serves the connections placed on this
    /// executor, until the executor stops.
    async fn serve(self, (plain, secure): (TcpListener, Option<TcpListener>)) {
        let settings = ConnectionSettings {
            frame_bytes_max: self.config.jute_max_buffer,
            outstanding_max: self.config.global_outstanding_limit.max(1) as usize,
            unsent_bytes_max: self.config.unsent_reply_bytes_max,
            handshake_timeout: Duration::from_millis(self.config.handshake_timeout_ms),
            stall_timeout_default: Duration::from_millis(u64::from(
                self.config.max_session_timeout_ms,
            )),
            config: Arc::clone(&self.config),
            host: Arc::new(crate::fourlw::HostContext::new(
                &self.config,
                Arc::clone(&self.loads),
            )),
        };
        let this = Rc::new(self);
        {
            let this = Rc::clone(&this);
            let settings = settings.clone();
            glommio::spawn_local(async move {
                while let Ok(handoff) = this.arrivals.recv().await {
                    let stream = handoff.stream.bind_to_executor();
                    this.spawn_connection(
                        stream,
                        handoff.peer,
                        handoff.secure,
                        handoff.conn,
                        &settings,
                    );
                }
            })
            .detach();
        }
        if let (Some(listener), Some(_)) = (secure, &this.tls) {
            let this = Rc::clone(&this);
            let settings = settings.clone();
            glommio::spawn_local(async move {
                this.accept_loop(listener, true, &settings).await;
            })
            .detach();
        }
        this.accept_loop(plain, false, &settings).await;
    }

    async fn accept_loop(
        &self,
        listener: TcpListener,
        secure: bool,
        settings: &ConnectionSettings,
    ) {
        let counts = self.counts(secure);
        loop {
            let accepted = match listener.shared_accept().await {
                Ok(accepted) => accepted,
                Err(err) => {
                    warn!(%err, "accept failed");
                    glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            // An accepted socket owns its descriptor only once bound: bind
            // it here unless it is handed to another executor whole.
            let Ok(peer) = accepted.peer_addr() else {
                drop(accepted.bind_to_executor());
                continue;
            };
            if !counts.admit(peer.ip(), self.config.max_client_cnxns) {
                warn!(%peer, max = self.config.max_client_cnxns, "too many connections from this address: closing");
                drop(accepted.bind_to_executor());
                continue;
            }
            let conn = self.next_conn.fetch_add(1, Ordering::Relaxed);
            let target = self.loads.place();
            if target != self.index {
                let handoff = Handoff {
                    stream: accepted,
                    peer,
                    secure,
                    conn,
                };
                match self.handoffs[target].send(handoff).await {
                    Ok(()) => continue,
                    Err(_) => {
                        // That executor has stopped: serve it here.
                        warn!(%peer, executor = target, "executor not taking connections: serving here");
                        self.loads.moved(target, self.index);
                    }
                }
            }
            self.spawn_connection(accepted.bind_to_executor(), peer, secure, conn, settings);
        }
    }

    /// Serves a connection placed on this executor until it ends, then
    /// releases its counts.
    fn spawn_connection(
        &self,
        stream: glommio::net::TcpStream,
        peer: std::net::SocketAddr,
        secure: bool,
        conn: u64,
        settings: &ConnectionSettings,
    ) {
        let settings = settings.clone();
        let to_sequencer = self.to_sequencer.clone();
        let counts = Arc::clone(self.counts(secure));
        let loads = Arc::clone(&self.loads);
        let index = self.index;
        // Latency matters more than packet count: replies go out as soon as they are queued.
        let _ = stream.set_nodelay(true);
        let tls = if secure { self.tls.clone() } else { None };
        glommio::spawn_local(async move {
            match tls {
                None => {
                    connection::serve(conn, stream, peer, Vec::new(), settings, to_sequencer).await
                }
                Some(tls) => serve_tls(conn, stream, peer, tls, settings, to_sequencer).await,
            }
            counts.release(peer.ip());
            loads.release(index);
        })
        .detach();
    }
}

/// Runs the TLS handshake within the handshake timeout, then serves the
/// connection with the identity its certificate proves.
async fn serve_tls(
    conn: u64,
    stream: glommio::net::TcpStream,
    peer: std::net::SocketAddr,
    tls: TlsServer,
    mut settings: ConnectionSettings,
    to_sequencer: async_channel::Sender<ToSequencer>,
) {
    let started = Instant::now();
    let acceptor = futures_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
    let timeout = settings.handshake_timeout;
    let handshake =
        futures_lite::future::or(async { Some(acceptor.accept(stream).await) }, async {
            glommio::timer::Timer::new(timeout).await;
            None
        })
        .await;
    let stream = match handshake {
        Some(Ok(stream)) => stream,
        Some(Err(err)) => {
            warn!(%peer, %err, "closing connection: TLS handshake failed");
            return;
        }
        None => {
            info!(%peer, timeout_ms = timeout.as_millis() as u64,
                "closing connection: TLS handshake not finished within the handshake timeout");
            return;
        }
    };
    let auth = tls.identities(stream.get_ref().1.peer_certificates());
    for id in &auth {
        info!(%peer, scheme = id.scheme, id = id.id, "authenticated by TLS client certificate");
    }
    settings.handshake_timeout = timeout.saturating_sub(started.elapsed());
    connection::serve(conn, stream, peer, auth, settings, to_sequencer).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_limit_admits_up_to_max_and_frees_on_release() {
        let counts = ConnectionCounts::default();
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(counts.admit(ip, 2));
        assert!(counts.admit(ip, 2));
        assert!(!counts.admit(ip, 2));
        counts.release(ip);
        assert!(counts.admit(ip, 2));
        assert!(counts.admit("10.0.0.1".parse().unwrap(), 2));
        for _ in 0..100 {
            assert!(counts.admit(ip, 0), "0 means unlimited");
        }
    }
}
