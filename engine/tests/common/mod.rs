//! Starts a real `ferrokeeper` process for tests: a free 127.0.0.1 port, a
//! temporary data directory, a generated zoo.cfg; killed when dropped.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub port: u16,
    pub dir: tempfile::TempDir,
    config_path: PathBuf,
    child: Child,
}

impl Server {
    /// Starts a server with the default test settings plus `extra` zoo.cfg lines.
    pub fn start(extra: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let config = format!(
            "tickTime=200\nminSessionTimeout=400\nmaxSessionTimeout=60000\n\
             dataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\n\
             4lw.commands.whitelist=*\nextendedTypesEnabled=true\n\
             znode.container.checkIntervalMs=200\nferrokeeper.cores=2\n{extra}\n",
            dir.path().join("data").display()
        );
        Self::start_with_config(dir, port, &config)
    }

    /// Starts a server on the zoo.cfg text `config`, written into `dir`, that
    /// names `port` as its clientPort (an ensemble member: its `myid` is
    /// already in its dataDir).
    pub fn start_with_config(dir: tempfile::TempDir, port: u16, config: &str) -> Server {
        let config_path = dir.path().join("zoo.cfg");
        std::fs::write(&config_path, config).expect("write zoo.cfg");
        Self::spawn(dir, config_path, port)
    }

    fn spawn(dir: tempfile::TempDir, config_path: PathBuf, port: u16) -> Server {
        let child = Self::spawn_child(&dir, &config_path);
        let server = Server {
            port,
            dir,
            config_path,
            child,
        };
        server.wait_ready();
        server
    }

    fn spawn_child(dir: &tempfile::TempDir, config_path: &PathBuf) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.path().join("server.log"))
            .expect("log file");
        Command::new(env!("CARGO_BIN_EXE_ferrokeeper"))
            .env("RUST_LOG", "debug")
            .arg("--config")
            .arg(config_path)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ferrokeeper")
    }

    /// The data directory (dataDir and dataLogDir both).
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// SIGKILL: no chance to flush or clean up, like a crash.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same data and port.
    pub fn restart(&mut self) {
        self.kill();
        self.child = Self::spawn_child(&self.dir, &self.config_path);
        self.wait_ready();
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if four_letter_word(self.port, "ruok").as_deref() == Some("imok") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "ferrokeeper did not answer ruok within 20 s; log:\n{}",
            self.log()
        );
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("---- ferrokeeper log ----\n{}", self.log());
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Sends a four-letter word and returns the whole answer.
pub fn four_letter_word(port: u16, word: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    stream.write_all(word.as_bytes()).ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

/// A zookeeper-client session on `server` with a 10 s session timeout.
pub async fn connect(server: &Server) -> zookeeper_client::Client {
    zookeeper_client::Client::connector()
        .with_session_timeout(Duration::from_secs(10))
        .connect(&server.address())
        .await
        .expect("connect")
}

/// Bounds a wait on a server so that a hang fails the test instead of CI.
pub async fn within<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("timed out")
}
