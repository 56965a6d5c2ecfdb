//! Starting and stopping the two servers in the same shape: standalone or
//! as members of an ensemble (see [`super::ensemble`]), listening on
//! 127.0.0.1 only, data and log directories side by side under one work
//! directory (so on one disk), forceSync on.
//!
//! Every server runs under coreutils `timeout`, so that even if the harness
//! itself is killed with SIGKILL the server stops by itself when the
//! harness's deadline has passed. A [`ServerProcess`] stops its server when
//! dropped: SIGTERM, then SIGKILL after [`STOP_GRACE`].

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::sync_client::SyncClient;

/// How long a server gets to exit after SIGTERM.
pub const STOP_GRACE: Duration = Duration::from_secs(10);
/// How long a server gets to accept a session after starting.
pub const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ZooKeeper,
    Ferrokeeper,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::ZooKeeper => "zookeeper",
            Kind::Ferrokeeper => "ferrokeeper",
        }
    }
}

/// How to start one server: its config file's text and its command line.
#[derive(Debug, Clone)]
pub struct ServerSpec {
    pub kind: Kind,
    pub port: u16,
    pub dir: PathBuf,
    pub config_text: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Its place in an ensemble; `None` when standalone.
    pub member: Option<Member>,
}

/// One `server.N` line of an ensemble.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Member {
    /// N: the server's id, written to `dataDir/myid`.
    pub sid: u32,
    pub quorum_port: u16,
    pub election_port: u16,
}

impl ServerSpec {
    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("zoo.cfg")
    }

    /// The command line as a person would type it.
    pub fn command_line(&self) -> String {
        let mut parts = vec![self.program.display().to_string()];
        parts.extend(self.args.iter().cloned());
        parts.join(" ")
    }
}

/// The zoo.cfg both servers share in shape: only paths and port differ.
pub(crate) fn zoo_cfg(dir: &Path, port: u16, extra: &str) -> String {
    format!(
        "tickTime=2000\n\
         dataDir={}\n\
         dataLogDir={}\n\
         clientPort={port}\n\
         clientPortAddress=127.0.0.1\n\
         forceSync=yes\n\
         {extra}",
        dir.join("data").display(),
        dir.join("log").display(),
    )
}

/// Apache ZooKeeper as Debian installs it, started the way Debian's
/// zkServer.sh does (QuorumPeerMain, which runs standalone when the config
/// has no server.N lines), with default settings except the heap and the
/// AdminServer (off: it would listen on 0.0.0.0:8080; it serves no client).
pub fn zookeeper(dir: &Path, port: u16, heap: &str) -> ServerSpec {
    ServerSpec {
        kind: Kind::ZooKeeper,
        port,
        dir: dir.to_path_buf(),
        config_text: zoo_cfg(dir, port, "admin.enableServer=false\n"),
        program: PathBuf::from("java"),
        args: vec![
            format!("-Xms{heap}"),
            format!("-Xmx{heap}"),
            "-cp".into(),
            ZOOKEEPER_JAR.into(),
            "org.apache.zookeeper.server.quorum.QuorumPeerMain".into(),
            dir.join("zoo.cfg").display().to_string(),
        ],
        member: None,
    }
}

/// Debian's ZooKeeper jar; its manifest's Class-Path brings the rest.
pub const ZOOKEEPER_JAR: &str = "/usr/share/java/zookeeper.jar";

/// ferrokeeper with the same zoo.cfg shape and its own defaults otherwise.
pub fn ferrokeeper(dir: &Path, port: u16, binary: &Path) -> ServerSpec {
    ServerSpec {
        kind: Kind::Ferrokeeper,
        port,
        dir: dir.to_path_buf(),
        config_text: zoo_cfg(dir, port, ""),
        program: binary.to_path_buf(),
        args: vec!["--config".into(), dir.join("zoo.cfg").display().to_string()],
        member: None,
    }
}

/// Installs Debian's zookeeper package when its jar is missing.
pub fn ensure_zookeeper_installed() -> io::Result<()> {
    if Path::new(ZOOKEEPER_JAR).exists() {
        return Ok(());
    }
    eprintln!("fk-sidebyside: {ZOOKEEPER_JAR} missing; installing Debian's zookeeper package");
    for args in [&["update"][..], &["install", "-y", "zookeeper"][..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()?;
        if !status.success() {
            return Err(io::Error::other(format!(
                "apt-get {} failed: {status}",
                args.join(" ")
            )));
        }
    }
    if Path::new(ZOOKEEPER_JAR).exists() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{ZOOKEEPER_JAR} still missing after install"
        )))
    }
}

/// A running server; stopped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    pub spec: ServerSpec,
    child: Option<Child>,
    pub log_path: PathBuf,
}

impl ServerProcess {
    /// Writes the config, creates the directories, starts the server under
    /// `timeout <lifetime>` and waits until it accepts a session.
    pub fn start(spec: ServerSpec, lifetime: Duration) -> io::Result<ServerProcess> {
        let mut server = ServerProcess::launch(spec, lifetime)?;
        server.await_ready()?;
        Ok(server)
    }

    /// Writes the config (and `myid` for an ensemble member), creates the
    /// directories and starts the server under `timeout <lifetime>`, without
    /// waiting: an ensemble member cannot serve before a quorum is up.
    pub fn launch(spec: ServerSpec, lifetime: Duration) -> io::Result<ServerProcess> {
        std::fs::create_dir_all(spec.dir.join("data"))?;
        std::fs::create_dir_all(spec.dir.join("log"))?;
        std::fs::write(spec.config_path(), &spec.config_text)?;
        if let Some(member) = spec.member {
            std::fs::write(
                spec.dir.join("data").join("myid"),
                format!("{}\n", member.sid),
            )?;
        }
        let log_path = spec.dir.join("server.log");
        let mut server = ServerProcess {
            spec,
            child: None,
            log_path,
        };
        server.spawn(lifetime)?;
        Ok(server)
    }

    /// Starts the server process, appending to its log.
    fn spawn(&mut self, lifetime: Duration) -> io::Result<()> {
        assert!(self.child.is_none(), "the server is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)?;
        let child = Command::new("timeout")
            .arg("--kill-after=10")
            .arg(format!("{}", lifetime.as_secs().max(1)))
            .arg(&self.spec.program)
            .args(&self.spec.args)
            .current_dir(&self.spec.dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        self.child = Some(child);
        Ok(())
    }

    /// SIGKILL of the server process itself (not its `timeout` wrapper,
    /// which then exits with it): a crash, with nothing flushed or closed.
    /// Returns once the process is gone.
    pub fn kill_hard(&mut self) -> io::Result<()> {
        let pid = self
            .server_pid()
            .ok_or_else(|| io::Error::other("no server process to kill"))?;
        let pid = Pid::from_raw(i32::try_from(pid).expect("pid fits i32"))
            .ok_or_else(|| io::Error::other("pid 0"))?;
        kill_process(pid, Signal::KILL)?;
        if let Some(mut child) = self.child.take() {
            child.wait()?;
        }
        Ok(())
    }

    /// Starts the server again after [`ServerProcess::kill_hard`], with the
    /// same config and data, without waiting for it to serve.
    pub fn restart(&mut self, lifetime: Duration) -> io::Result<()> {
        self.spawn(lifetime)
    }

    /// Waits until the server accepts a session.
    pub fn await_ready(&mut self) -> io::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.child.as_mut().expect("running").try_wait()? {
                return Err(io::Error::other(format!(
                    "{} exited during start-up ({status}); last log lines:\n{}",
                    self.spec.kind.name(),
                    self.log_tail(20)
                )));
            }
            if let Ok(client) = SyncClient::connect(self.spec.addr(), Duration::from_secs(2)) {
                client.close();
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{} did not accept a session within {START_TIMEOUT:?}; last log lines:\n{}",
                    self.spec.kind.name(),
                    self.log_tail(20)
                )));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The last `lines` lines of the server's output.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The server's own pid: the child of the `timeout` wrapper.
    pub fn server_pid(&self) -> Option<u32> {
        let wrapper = self.child.as_ref()?.id();
        let children =
            std::fs::read_to_string(format!("/proc/{wrapper}/task/{wrapper}/children")).ok()?;
        children.split_whitespace().next()?.parse().ok()
    }

    /// Whether the server process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(Child::try_wait), Some(Ok(None)))
    }

    /// SIGTERM, then SIGKILL after the grace period. Idempotent.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            // `timeout` passes SIGTERM on to the server.
            let _ = kill_process(Pid::from_child(&child), Signal::TERM);
            let deadline = Instant::now() + STOP_GRACE;
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A directory removed (with everything in it) when dropped, unless kept.
#[derive(Debug)]
pub struct WorkDir {
    pub path: PathBuf,
    pub keep: bool,
}

impl WorkDir {
    pub fn create(path: PathBuf, keep: bool) -> io::Result<WorkDir> {
        if path.exists() {
            return Err(io::Error::other(format!(
                "{} exists; refusing to reuse (and later delete) it",
                path.display()
            )));
        }
        std::fs::create_dir_all(&path)?;
        Ok(WorkDir { path, keep })
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if self.keep {
            eprintln!("fk-sidebyside: kept {}", self.path.display());
        } else if let Err(e) = std::fs::remove_dir_all(&self.path) {
            eprintln!("fk-sidebyside: removing {}: {e}", self.path.display());
        }
    }
}
