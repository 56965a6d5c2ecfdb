//! `ferrokeeper`: a ZooKeeper-compatible coordination server.
//!
//! `ferrokeeper` with no arguments serves standalone on 127.0.0.1:2181 with
//! its data in ./ferrokeeper-data; `ferrokeeper --config zoo.cfg` reads an
//! Apache ZooKeeper configuration file as it is.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use engine::config::Config;
use tracing::{error, info, warn};

#[derive(Debug, Parser)]
#[command(version, about = "A ZooKeeper-compatible coordination server")]
struct Args {
    /// An Apache ZooKeeper zoo.cfg; without one, a standalone server on 127.0.0.1:2181.
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Overrides clientPort.
    #[arg(long)]
    port: Option<u16>,
    /// Overrides the number of executors (ferrokeeper.cores).
    #[arg(long)]
    cores: Option<usize>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colour only for a terminal: log files and pipes get plain text.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => match Config::load(path) {
            Ok(config) => config,
            Err(err) => {
                error!("{err}");
                return ExitCode::FAILURE;
            }
        },
        None => Config::default(),
    };
    if let Some(port) = args.port {
        config.client_port = port;
    }
    if let Some(cores) = args.cores {
        config.cores = cores.max(1);
    }
    for (key, value) in &config.unknown {
        warn!(key, value, "configuration key not used by ferrokeeper");
    }
    log_sasl(&config);
    if config.servers.len() == 1 && config.standalone_enabled {
        warn!("one server.N line and standaloneEnabled: running standalone");
    }
    match engine::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err}");
            ExitCode::FAILURE
        }
    }
}

/// Says at start-up whether clients can authenticate with SASL, and as whom.
fn log_sasl(config: &Config) {
    let sasl = &config.sasl;
    let Some(jaas) = &sasl.jaas_file else {
        return;
    };
    match &sasl.users {
        Some(users) => info!(
            jaas = %jaas.display(),
            section = sasl.section(),
            users = ?users,
            sasl_acls = sasl.provider_enabled,
            "SASL DIGEST-MD5 authentication on"
        ),
        None => info!(
            jaas = %jaas.display(),
            section = sasl.section(),
            "no such JAAS section: SASL authentication off"
        ),
    }
}
