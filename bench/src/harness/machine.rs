//! What the figures were measured on: cores, memory, kernel, the file system
//! under the data directories, and the disk's own fdatasync latency (the
//! floor under any durable write).

use std::fs::{File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use serde::Serialize;

use crate::stats::{new_histogram, LatencySummary};

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub memory_gib: f64,
    pub kernel: String,
    pub cpu: String,
    /// Device, mount point and file system type under the work directory.
    pub filesystem: String,
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

impl Machine {
    pub fn probe(dir: &Path) -> Machine {
        let meminfo = read("/proc/meminfo");
        let mem_kib: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let cpu = read("/proc/cpuinfo")
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
            .unwrap_or_default();
        Machine {
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: mem_kib / (1024.0 * 1024.0),
            kernel: read("/proc/sys/kernel/osrelease").trim().to_owned(),
            cpu,
            filesystem: filesystem_of(dir),
        }
    }
}

/// The `/proc/mounts` entry with the longest mount point above `dir`.
fn filesystem_of(dir: &Path) -> String {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    read("/proc/mounts")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && dir.starts_with(f[1]))
                .then(|| (f[1].len(), format!("{} on {} ({})", f[0], f[1], f[2])))
        })
        .max_by_key(|(len, _)| *len)
        .map(|(_, s)| s)
        .unwrap_or_else(|| "unknown".into())
}

/// Latency of `write(4 KiB) + fdatasync` appended to a preallocated file in
/// `dir`, the way a transaction log writes (ZooKeeper's FileTxnLog forces the
/// channel after each batch; fdatasync is what both servers wait for).
#[derive(Debug, Clone, Serialize)]
pub struct DiskProbe {
    pub samples: u64,
    pub block_bytes: usize,
    pub fdatasync: LatencySummary,
}

/// Bound on the probe's writes.
pub const DISK_PROBE_SAMPLES_MAX: usize = 100_000;

pub fn probe_fdatasync(dir: &Path, samples: usize) -> io::Result<DiskProbe> {
    assert!(samples > 0 && samples <= DISK_PROBE_SAMPLES_MAX);
    const BLOCK: usize = 4096;
    let path = dir.join("fdatasync-probe");
    let mut file: File = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(&path)?;
    // Preallocate with real zeros so the probe, like a preallocated log,
    // does not measure block allocation.
    let zeros = vec![0u8; 1 << 20];
    let total = samples * BLOCK;
    let mut written = 0;
    while written < total {
        let n = zeros.len().min(total - written);
        file.write_all(&zeros[..n])?;
        written += n;
    }
    file.sync_all()?;
    file.seek(SeekFrom::Start(0))?;
    let block = vec![0x5Au8; BLOCK];
    let mut histogram = new_histogram();
    for _ in 0..samples {
        let start = Instant::now();
        file.write_all(&block)?;
        file.sync_data()?;
        let ns = start.elapsed().as_nanos() as u64;
        histogram.record(ns.max(1)).expect("within bounds");
    }
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(DiskProbe {
        samples: samples as u64,
        block_bytes: BLOCK,
        fdatasync: LatencySummary::of(&histogram),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_something_plausible() {
        let dir = std::env::temp_dir().join(format!("fk-probe-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let probe = probe_fdatasync(&dir, 20).unwrap();
        assert_eq!(probe.fdatasync.count, 20);
        assert!(probe.fdatasync.p50_us > 0.0);
        assert!(!dir.join("fdatasync-probe").exists());
        std::fs::remove_dir_all(&dir).unwrap();
        let machine = Machine::probe(Path::new("/"));
        assert!(machine.cores >= 1 && machine.memory_gib > 0.0);
        assert_ne!(machine.filesystem, "unknown");
    }
}
