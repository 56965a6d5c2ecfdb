//! Which executor serves a new client connection.
//!
//! Every executor listens on the client port (SO_REUSEPORT), so the kernel
//! picks the executor that *accepts* a connection — by a hash of its address
//! and port, which is a coin flip per connection. Where a connection is
//! *served* matters: executor 0 runs the node and the log, so a request from
//! a connection there reaches the node and its reply comes back without
//! crossing cores, while a connection on another executor pays two
//! cross-core wake-ups per request. On the 2-core bench machine a lone
//! client's serial create took p50 ≈ 235 µs on executor 0 and ≈ 310 µs on
//! executor 1, and which one a benchmark run got was the kernel's hash.
//!
//! So the accepting executor only decides where the connection goes: to the
//! executor serving the fewest live connections, the lowest index on a tie
//! (executor 0 first). A lone client is always served beside the node, and
//! many clients spread evenly instead of by hash. A connection bound for
//! another executor travels there as an accepted socket ([`Handoff`]) before
//! anything is read from it; the per-address limit (`maxClientCnxns`) is
//! applied by the acceptor first.
//!
//! Executors themselves are pinned one per CPU ([`pinned_cpu`]) only when
//! the server has the machine: as many executors as online CPUs, none of
//! them outside the process's affinity mask. Fewer executors float. An
//! ensemble of three servers with one executor each on a 2-CPU host had
//! every executor pinned to CPU 0 while CPU 1 idled: each hop of a write
//! waited for the CPU (scheduling delays of 0.15–0.4 ms in `perf sched
//! timehist`); `fk-sidebyside --ensemble 3` measured serial create through
//! the leader at p50 940–963 µs then, 580–668 µs after both fixes. Floating
//! executors also sleep through their disk writes instead of polling for
//! them (`server.rs`, vendor/glommio-patch/PATCH.md): a poller on a shared
//! CPU spins for the whole write.

use std::net::SocketAddr;
use std::sync::Mutex;

use glommio::net::AcceptedTcpStream;

/// Handed-off connections one executor may have waiting for it. An
/// acceptor that finds the queue full waits; the receiving task drains it
/// independently of that executor's own accepts.
pub const HANDOFFS_MAX: usize = 64;

/// Live client connections per executor, shared by every executor's
/// listeners (`mntr` shows them as `zk_fk_connections_executor_N`).
#[derive(Debug)]
pub struct ExecutorLoads {
    live: Mutex<Vec<usize>>,
}

impl ExecutorLoads {
    pub fn new(executors: usize) -> ExecutorLoads {
        ExecutorLoads {
            live: Mutex::new(vec![0; executors.max(1)]),
        }
    }

    /// Chooses the executor for a new connection and counts the connection
    /// there: the fewest live connections, the lowest index on a tie.
    pub fn place(&self) -> usize {
        let mut live = self.live.lock().expect("executor loads poisoned");
        let (index, _) = live
            .iter()
            .enumerate()
            .min_by_key(|&(index, &count)| (count, index))
            .expect("at least one executor");
        live[index] += 1;
        index
    }

    /// Counts a connection on `index` that was placed elsewhere (its
    /// executor could not take it).
    pub fn moved(&self, from: usize, to: usize) {
        let mut live = self.live.lock().expect("executor loads poisoned");
        live[from] = live[from].saturating_sub(1);
        live[to] += 1;
    }

    /// A connection served by `index` has ended.
    pub fn release(&self, index: usize) {
        let mut live = self.live.lock().expect("executor loads poisoned");
        live[index] = live[index].saturating_sub(1);
    }

    /// Live connections per executor, by index.
    pub fn live(&self) -> Vec<usize> {
        self.live.lock().expect("executor loads poisoned").clone()
    }
}

/// The CPU executor `index` is pinned to, or `None` to let it float.
/// Pinned only when the executors take the whole machine: `executors` equal
/// to the online CPUs and the process allowed on every one of them
/// (`allowed`: the affinity mask's size), so that pinning cannot stack
/// several servers' executors on the same CPU or step outside `taskset`.
pub fn pinned_cpu(index: usize, executors: usize, allowed: usize, online: usize) -> Option<usize> {
    (executors == online && allowed == online).then_some(index)
}

/// How many CPUs this process's affinity mask allows, from
/// /proc/self/status (`Cpus_allowed_list`). Not `available_parallelism`,
/// which also counts a cgroup CPU quota: a quota limits time, not which
/// CPUs a pinned executor may use.
pub fn allowed_cpus() -> Option<usize> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let list = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))?;
    count_cpu_list(list.trim())
}

/// The CPUs in a kernel CPU list ("0-3,8,10-11"), or `None` if it is not one.
fn count_cpu_list(list: &str) -> Option<usize> {
    let mut count = 0;
    for part in list.split(',') {
        count += match part.split_once('-') {
            Some((first, last)) => {
                let (first, last): (usize, usize) = (first.parse().ok()?, last.parse().ok()?);
                last.checked_sub(first)? + 1
            }
            None => {
                part.parse::<usize>().ok()?;
                1
            }
        };
    }
    Some(count)
}

/// An accepted connection on its way to the executor that will serve it.
#[derive(Debug)]
pub struct Handoff {
    /// The socket, not yet bound to any executor's ring. Dropping it
    /// without [`AcceptedTcpStream::bind_to_executor`] would leak the file
    /// descriptor, so a receiver always binds it.
    pub stream: AcceptedTcpStream,
    pub peer: SocketAddr,
    /// Whether it came in on the secure client port.
    pub secure: bool,
    pub conn: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lone_connection_goes_to_executor_0_and_many_spread_evenly() {
        let loads = ExecutorLoads::new(2);
        assert_eq!(loads.place(), 0, "a lone client is served beside the node");
        assert_eq!(loads.place(), 1);
        assert_eq!(loads.place(), 0);
        assert_eq!(loads.place(), 1);
        assert_eq!(loads.live(), vec![2, 2]);
        loads.release(0);
        assert_eq!(loads.place(), 0, "the executor with a free place");
        loads.release(1);
        loads.release(1);
        assert_eq!(loads.live(), vec![2, 0]);
        assert_eq!(loads.place(), 1);
        assert_eq!(loads.place(), 1);
        assert_eq!(loads.place(), 0, "ties go to executor 0");
    }

    #[test]
    fn a_moved_connection_is_counted_where_it_is_served() {
        let loads = ExecutorLoads::new(3);
        assert_eq!(loads.place(), 0);
        assert_eq!(loads.place(), 1);
        loads.moved(1, 0);
        assert_eq!(loads.live(), vec![2, 0, 0]);
        assert_eq!(loads.place(), 1);
        assert_eq!(loads.place(), 2);
        loads.release(2);
        loads.release(2);
        assert_eq!(loads.live(), vec![2, 1, 0], "never below zero");
    }

    #[test]
    fn executors_are_pinned_only_when_they_take_the_whole_machine() {
        // cores = CPUs, no affinity mask: one executor per CPU.
        assert_eq!(pinned_cpu(0, 2, 2, 2), Some(0));
        assert_eq!(pinned_cpu(1, 2, 2, 2), Some(1));
        // Fewer executors than CPUs (several servers on one host): float.
        assert_eq!(pinned_cpu(0, 1, 2, 2), None);
        // More executors than CPUs: float.
        assert_eq!(pinned_cpu(2, 3, 2, 2), None);
        // taskset narrowed the process: CPU 0 may be outside the mask.
        assert_eq!(pinned_cpu(0, 1, 1, 2), None);
        assert_eq!(pinned_cpu(0, 2, 2, 4), None);
    }

    #[test]
    fn cpu_lists_are_counted_as_the_kernel_writes_them() {
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list("0-1"), Some(2));
        assert_eq!(count_cpu_list("0-3,8,10-11"), Some(7));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("3-1"), None);
        assert_eq!(count_cpu_list("x"), None);
        assert!(
            allowed_cpus().is_some_and(|n| n >= 1),
            "this process's own mask"
        );
    }

    #[test]
    fn one_executor_takes_every_connection() {
        let loads = ExecutorLoads::new(1);
        for n in 1..=5 {
            assert_eq!(loads.place(), 0);
            assert_eq!(loads.live(), vec![n]);
        }
    }
}
