"""Which executor serves a client connection (engine/src/placement.rs).

The kernel hands each connection to one executor's listener by a hash of its
address and port; ferrokeeper then serves it on the executor with the fewest
live connections, executor 0 (the node's own) on a tie, so a lone client's
requests never cross cores and many clients spread evenly. mntr reports the
live connections per executor as zk_fk_connections_executor_N, counting the
connection that asks. ferrokeeper's own behaviour: skipped against ZooKeeper.
"""

import os
import time

import pytest

import zkwire as w
from conftest import IS_ZK

pytestmark = pytest.mark.skipif(IS_ZK, reason="connection placement is ferrokeeper's own")


def executors(srv):
    """Live connections per executor, as mntr reports them (the asking
    connection included)."""
    rows = dict(line.split("\t", 1) for line in w.four_letter_word(srv.port, "mntr").splitlines())
    counts = []
    while f"zk_fk_connections_executor_{len(counts)}" in rows:
        counts.append(int(rows[f"zk_fk_connections_executor_{len(counts)}"]))
    return counts


def wait_for_executors(srv, expected, deadline_s=10.0):
    """Waits until mntr shows `expected` (a closed connection is released
    when its task ends, just after the client sees it closed)."""
    deadline = time.monotonic() + deadline_s
    seen = None
    while time.monotonic() < deadline:
        seen = executors(srv)
        if seen == expected:
            return
        time.sleep(0.02)
    raise AssertionError(f"mntr shows {seen} connections per executor, expected {expected}")


def test_a_lone_client_is_served_beside_the_node_and_clients_spread_evenly(make_server, make_kazoo):
    """With two executors: a lone kazoo session lands on executor 0; each next
    connection goes where fewer are served (ties to executor 0), whichever
    executor the kernel had accept it; a closed connection frees its place; and
    every session works wherever it landed, including handed-off ones."""
    srv = make_server(**{"ferrokeeper.cores": "2"})
    wait_for_executors(srv, [1, 0])  # the asking connection alone
    clients = []
    try:
        clients.append(make_kazoo(srv))
        wait_for_executors(srv, [1, 1])  # the session on 0, mntr's on 1
        clients.append(make_kazoo(srv))
        wait_for_executors(srv, [2, 1])  # sessions on 0 and 1, mntr's on 0
        for _ in range(4):
            clients.append(make_kazoo(srv))
        wait_for_executors(srv, [4, 3])  # 3 + 3 sessions, mntr's on 0 (a tie)
        for i, c in enumerate(clients):
            c.create(f"/placed-{i}", b"v%d" % i)
        for i, c in enumerate(clients):
            for j in range(len(clients)):
                assert c.get(f"/placed-{j}")[0] == b"v%d" % j, (i, j)
        # The second session was placed on executor 1; closing it frees a place there.
        closed = clients.pop(1)
        closed.stop()
        closed.close()
        wait_for_executors(srv, [3, 3])  # 3 + 2 sessions, mntr's on 1
        clients.append(make_kazoo(srv))
        wait_for_executors(srv, [4, 3])  # the new one on 1, mntr's on 0
        clients[-1].create("/placed-last")
    finally:
        for c in clients:
            c.stop()
            c.close()
    wait_for_executors(srv, [1, 0])


def executor_cpus(pid):
    """The CPUs each fk-core-N thread of the process may run on, by N."""
    cpus = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/comm") as f:
            name = f.read().strip()
        if not name.startswith("fk-core-"):
            continue
        with open(f"/proc/{pid}/task/{task}/status") as f:
            allowed = next(line.split(":", 1)[1].strip() for line in f if line.startswith("Cpus_allowed_list"))
        cpus[int(name.split("-")[2])] = allowed
    return cpus


def cpu_list(cpus):
    """/proc's Cpus_allowed_list form of a set of CPUs ("0-1", "0,2")."""
    ranges, cpus = [], sorted(cpus)
    start = prev = cpus[0]
    for cpu in cpus[1:] + [None]:
        if cpu is not None and cpu == prev + 1:
            prev = cpu
            continue
        ranges.append(f"{start}" if start == prev else f"{start}-{prev}")
        if cpu is not None:
            start = prev = cpu
    return ",".join(ranges)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2 or len(os.sched_getaffinity(0)) != os.cpu_count(),
                    reason="needs two or more CPUs, all of them allowed to this process")
def test_executors_are_pinned_only_when_they_take_the_whole_machine(make_server):
    """One executor per CPU (cores = CPUs): executor N is pinned to CPU N.
    Fewer executors (several servers on one host, cores=1 each): they float on
    every CPU — pinned, three such servers once all ran on CPU 0 while CPU 1
    idled."""
    machine = sorted(os.sched_getaffinity(0))
    whole = make_server(**{"ferrokeeper.cores": str(len(machine))})
    assert executor_cpus(whole.proc.pid) == {i: str(cpu) for i, cpu in enumerate(machine)}
    small = make_server(**{"ferrokeeper.cores": "1"})
    assert executor_cpus(small.proc.pid) == {0: cpu_list(machine)}
