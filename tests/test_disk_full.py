"""A full disk, on a small tmpfs the test mounts (and unmounts) itself.

ferrokeeper does better than Apache ZooKeeper here (which stops serving): log
space is preallocated, so a full disk is noticed when the next segment cannot
be prepared; writes are then refused with SYSTEMERROR and a log line, reads go
on, no temporary file is left behind, writes resume by themselves once space
is freed, and no acknowledged write is lost. Needs root (mount); ferrokeeper
only.
"""

import os
import subprocess
import tempfile
import time

import pytest
from kazoo.exceptions import ConnectionLoss, SystemZookeeperError, ZookeeperError

from conftest import IS_ZK, Server
from test_ensemble import kazoo

pytestmark = [
    pytest.mark.fresh,
    pytest.mark.skipif(IS_ZK, reason="ZooKeeper stops serving on a full disk; the behaviour is ferrokeeper's own"),
    pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root"),
]

TMPFS_BYTES = 6 << 20
FILLER_BYTES = 2 << 20


@pytest.fixture
def small_disk():
    mount = tempfile.mkdtemp(prefix="fk-full-")
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TMPFS_BYTES}", "tmpfs", mount], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", mount], check=False)
        os.rmdir(mount)


def temp_files(directory):
    return [name for name in os.listdir(directory) if name.endswith(".tmp")]


@pytest.mark.deadline(120)
def test_full_disk_refuses_writes_serves_reads_and_resumes(small_disk):
    filler = os.path.join(small_disk, "filler")
    with open(filler, "wb") as f:
        f.write(b"\0" * FILLER_BYTES)
    data = os.path.join(small_disk, "data")
    server = Server({"dataDir": data, "preAllocSize": "256", "snapCount": "1000000"}).start()
    client = kazoo(server.hosts)
    acked = []
    try:
        client.create("/kept", b"before")
        value = b"v" * 8000
        refused = None
        for i in range(2000):
            try:
                client.create(f"/fill{i}", value)
                acked.append(f"/fill{i}")
            except SystemZookeeperError as err:
                # Refused at once: the server knew the disk was full.
                refused = err
                break
            except ConnectionLoss as err:
                # The write in flight when the disk filled waits, unwritten,
                # for space; the client gives up on it (outcome unknown).
                refused = err
                break
        assert refused is not None, "writes stopped once the disk filled"
        assert server.wait_log(r"disk is full", timeout=5)
        # Reads go on, on the client's own session (kazoo reconnects it
        # after a connection loss; a new session would need a txn, which
        # cannot be logged, and is refused).
        deadline = time.monotonic() + 20
        while True:
            try:
                assert client.get("/kept")[0] == b"before"
                break
            except ConnectionLoss:
                assert time.monotonic() < deadline, "reads are served while the disk is full"
                time.sleep(0.1)
        with pytest.raises(SystemZookeeperError):
            client.create("/refused-while-full", b"")
        assert temp_files(data) == [], "no temporary file left behind"
        # Space returns: writes resume by themselves.
        os.remove(filler)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.create("/after-space", b"")
                break
            except (ZookeeperError, ConnectionLoss):
                assert time.monotonic() < deadline, "writes resumed after space was freed"
                time.sleep(0.1)
        assert temp_files(data) == []
    finally:
        client.stop()
    # Nothing acknowledged was lost.
    server.restart()
    check = kazoo(server.hosts)
    try:
        for path in acked + ["/kept", "/after-space"]:
            assert check.exists(path) is not None, f"{path} survived"
    finally:
        check.stop()
        server.cleanup()
