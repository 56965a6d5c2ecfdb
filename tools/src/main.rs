//! `fk-tools`: inspect, verify, purge and truncate ferrokeeper data directories.
//!
//! Exit status: 0 when everything checked is sound, 1 when damage was found,
//! 2 when the tool could not run (bad arguments, unreadable paths).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde::Serialize;

#[derive(Debug, Parser)]
#[command(
    name = "fk-tools",
    about = "Inspect, verify and purge ferrokeeper data directories"
)]
struct Cli {
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Transaction log segments (a dataLogDir, or one log.<hex> file).
    Log {
        #[command(subcommand)]
        action: LogAction,
    },
    /// Snapshot files.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// Keep the newest --count snapshots (at least 3) and the log they need.
    Purge {
        #[arg(long)]
        snap_dir: PathBuf,
        #[arg(long)]
        log_dir: PathBuf,
        #[arg(long)]
        count: usize,
    },
}

#[derive(Debug, Subcommand)]
enum LogAction {
    /// Every record: offset, zxid, length, crc status, decoded txn.
    Dump { path: PathBuf },
    /// Check framing, crcs, zxid order and the segment chain.
    Verify { path: PathBuf },
    /// With the server stopped: drop every record above --after-zxid (and the
    /// snapshots above it), durably. This is how to accept the loss recovery
    /// refuses to take on its own (a damaged record: the error names the
    /// command), or to carry out a TRUNC by hand.
    Truncate {
        #[arg(long)]
        snap_dir: PathBuf,
        #[arg(long)]
        log_dir: PathBuf,
        /// The last zxid to keep (decimal, or hex with 0x).
        #[arg(long, value_parser = tools::parse_zxid)]
        after_zxid: i64,
    },
}

#[derive(Debug, Subcommand)]
enum SnapshotAction {
    /// Header, size, crc status and the first bytes of the body.
    Dump { file: PathBuf },
    /// Check the snapshot's crc.
    Verify { file: PathBuf },
}

fn print<T: Serialize>(json: bool, value: &T, text: impl FnOnce(&T) -> String) {
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).expect("reports serialise")
        );
    } else {
        print!("{}", text(value));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let sound = match cli.command {
        Command::Log {
            action:
                LogAction::Truncate {
                    snap_dir,
                    log_dir,
                    after_zxid,
                },
        } => match wal::truncate_log(&snap_dir, &log_dir, after_zxid) {
            Ok(report) => {
                print(cli.json, &tools::truncate_json(&report), |_| {
                    tools::render_truncate(&report)
                });
                true
            }
            Err(error) => {
                eprintln!("fk-tools: {error}");
                return ExitCode::from(2);
            }
        },
        Command::Log { action } => {
            let (path, dump) = match action {
                LogAction::Dump { path } => (path, true),
                LogAction::Verify { path } => (path, false),
                LogAction::Truncate { .. } => unreachable!("handled above"),
            };
            match tools::inspect_log(&path, dump) {
                Ok(report) => {
                    print(cli.json, &report, tools::render_log);
                    report.problems.is_empty()
                }
                Err(error) => {
                    eprintln!("fk-tools: {error}");
                    return ExitCode::from(2);
                }
            }
        }
        Command::Snapshot { action } => {
            let (file, dump) = match action {
                SnapshotAction::Dump { file } => (file, true),
                SnapshotAction::Verify { file } => (file, false),
            };
            let report = tools::inspect_snapshot(&file, dump);
            print(cli.json, &report, tools::render_snapshot);
            report.status == "ok"
        }
        Command::Purge {
            snap_dir,
            log_dir,
            count,
        } => match wal::purge(&snap_dir, &log_dir, count) {
            Ok(report) => {
                print(cli.json, &tools::purge_json(&report), |_| {
                    tools::render_purge(&report)
                });
                true
            }
            Err(error) => {
                eprintln!("fk-tools: {error}");
                return ExitCode::from(2);
            }
        },
    };
    if sound {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
