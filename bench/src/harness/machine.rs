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

/// The `/proc/mounts` entry with the longest mount point above `dir`:
/// (device, mount point, file system type).
fn mount_of(dir: &Path) -> Option<(String, String, String)> {
    let dir = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    read("/proc/mounts")
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && dir.starts_with(f[1]))
                .then(|| (f[0].to_owned(), f[1].to_owned(), f[2].to_owned()))
        })
        .max_by_key(|(_, mount, _)| mount.len())
}

fn filesystem_of(dir: &Path) -> String {
    mount_of(dir).map_or_else(
        || "unknown".into(),
        |(device, mount, fs)| format!("{device} on {mount} ({fs})"),
    )
}

/// Block-device counters of the disk under a directory, read from
/// `/sys/class/block/<dev>/stat`. They are device-wide: every process's I/O
/// counts, so they bound a server's own I/O from above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
pub struct DiskCounters {
    pub write_ios: u64,
    /// Cache flushes sent to the device (what fdatasync turns into on a disk
    /// with a volatile write cache, as virtio disks present themselves).
    pub flushes: u64,
}

impl DiskCounters {
    pub fn since(self, before: DiskCounters) -> DiskCounters {
        DiskCounters {
            write_ios: self.write_ios.saturating_sub(before.write_ios),
            flushes: self.flushes.saturating_sub(before.flushes),
        }
    }
}

/// Where the counters of the disk under `dir` are, if it is a block device.
pub fn disk_stat_path(dir: &Path) -> Option<std::path::PathBuf> {
    let (device, _, _) = mount_of(dir)?;
    let name = device.strip_prefix("/dev/")?;
    let path = Path::new("/sys/class/block").join(name).join("stat");
    path.exists().then_some(path)
}

/// Reads the counters (fields 5 and 16 of the kernel's block stat format).
pub fn read_disk_counters(stat_path: &Path) -> Option<DiskCounters> {
    let text = std::fs::read_to_string(stat_path).ok()?;
    let fields: Vec<u64> = text
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    Some(DiskCounters {
        write_ios: *fields.get(4)?,
        flushes: *fields.get(15)?,
    })
}

/// Bytes a process (all its threads) has caused to be sent to storage
/// (`write_bytes` in `/proc/<pid>/io`).
pub fn process_write_bytes(pid: u32) -> Option<u64> {
    read(&format!("/proc/{pid}/io"))
        .lines()
        .find_map(|l| l.strip_prefix("write_bytes:"))
        .and_then(|v| v.trim().parse().ok())
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

/// Bound on the loopback probe's round trips.
pub const LOOPBACK_PROBE_SAMPLES_MAX: usize = 100_000;

/// Round-trip time of a 128-byte message over a TCP connection on
/// 127.0.0.1 (Nagle off, an echo thread on the other end): the network floor
/// under every request and every quorum hop on this machine.
pub fn probe_loopback_rtt(samples: usize) -> io::Result<LatencySummary> {
    use std::io::Read;
    use std::net::{TcpListener, TcpStream};
    assert!(samples > 0 && samples <= LOOPBACK_PROBE_SAMPLES_MAX);
    const MESSAGE: usize = 128;
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    let addr = listener.local_addr()?;
    let echo = std::thread::spawn(move || -> io::Result<()> {
        let (mut stream, _) = listener.accept()?;
        stream.set_nodelay(true)?;
        let mut buf = [0u8; MESSAGE];
        for _ in 0..samples {
            stream.read_exact(&mut buf)?;
            stream.write_all(&buf)?;
        }
        Ok(())
    });
    let mut stream = TcpStream::connect(addr)?;
    stream.set_nodelay(true)?;
    let mut histogram = new_histogram();
    let mut buf = [0x5Au8; MESSAGE];
    for _ in 0..samples {
        let start = Instant::now();
        stream.write_all(&buf)?;
        stream.read_exact(&mut buf)?;
        let ns = start.elapsed().as_nanos() as u64;
        histogram.record(ns.max(1)).expect("within bounds");
    }
    echo.join().expect("echo thread panicked")?;
    Ok(LatencySummary::of(&histogram))
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
        let rtt = probe_loopback_rtt(50).unwrap();
        assert_eq!(rtt.count, 50);
        assert!(rtt.p50_us > 0.0);
        let machine = Machine::probe(Path::new("/"));
        assert!(machine.cores >= 1 && machine.memory_gib > 0.0);
        assert_ne!(machine.filesystem, "unknown");
        assert!(process_write_bytes(std::process::id()).is_some());
        if let Some(path) = disk_stat_path(Path::new("/")) {
            assert!(read_disk_counters(&path).is_some());
        }
    }
}
