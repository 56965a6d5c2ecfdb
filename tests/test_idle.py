"""An idle server looks idle to its host: none of its threads in I/O wait.

ferrokeeper's glommio executors park in io_uring's completion wait with
requests in flight (their eventfd read, timers), and since Linux 6.5 such a
waiter is counted as blocked on I/O: each idle executor added one to
/proc/stat's `procs_blocked`, and `top` showed `0.0 id, 99.5 wa` on an idle
host, which monitoring reads as a saturated disk (issue 10). Linux 6.15 lets
a waiter opt out (IORING_ENTER_NO_IOWAIT); the patched glommio in
vendor/glommio-patch does so where the kernel offers it. Apache ZooKeeper
idles in epoll and futex waits, never counted as I/O wait.
"""

import os
import statistics
import time

import pytest
from kazoo.client import KazooClient


def _kernel_at_least(major, minor):
    release = os.uname().release.split("-")[0].split(".")
    return (int(release[0]), int(release[1])) >= (major, minor)


def _procs_blocked():
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("procs_blocked "):
                return int(line.split()[1])
    raise AssertionError("no procs_blocked in /proc/stat")


def _sample_procs_blocked(seconds=2.0, interval=0.05):
    samples = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        samples.append(_procs_blocked())
        time.sleep(interval)
    return samples


@pytest.mark.skipif(not _kernel_at_least(6, 15),
                    reason="kernels before 6.15 count every io_uring waiter as in I/O wait")
def test_an_idle_server_puts_no_thread_in_io_wait(make_server):
    """A server (two executors, the suite's default) that has started,
    served one client and gone idle adds no task to the host's I/O-wait
    count: `procs_blocked` (machine-wide, so every idle server of this test
    session counts too) is 0 for most of two seconds. Before the fix it
    never dropped below the executor count."""
    srv = make_server()
    client = KazooClient(hosts=srv.hosts, timeout=10.0)
    client.start(timeout=15)
    client.create("/idle-check", b"x")
    client.stop()
    client.close()
    samples = _sample_procs_blocked()
    assert statistics.median(samples) == 0, f"procs_blocked over 2 s: {samples}"
