"""The Apache ZooKeeper C client (Debian's libzookeeper-mt, 3.8) against the
server: create/get/set/exists/getChildren/delete with versions and errors,
sequential names and null data; one-shot data, exist and child watches;
ephemerals and their removal at session close; multi, committed and failed;
pipelined asynchronous calls and their completion order.

clients/zk_c_checks.c is compiled once per run with gcc against the installed
headers and library, and each test runs one of its checks in its own process
with its own base path. A check prints "ok: <check>" and exits 0 only when
every outcome it asserts held.
"""

import itertools
import os
import subprocess

import pytest

from conftest import require_files, restart_under

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "clients", "zk_c_checks.c")
HEADER = "/usr/include/zookeeper/zookeeper.h"

_bases = itertools.count()


@pytest.fixture(scope="session")
def c_checks(tmp_path_factory):
    require_files(HEADER, "/usr/bin/gcc")
    binary = str(tmp_path_factory.mktemp("c-client") / "zk_c_checks")
    result = subprocess.run(["gcc", "-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-O1",
                             "-o", binary, SOURCE, "-lzookeeper_mt", "-lpthread"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"gcc failed:\n{result.stdout}\n{result.stderr}"
    return binary


def run_check(binary, server, check):
    base = f"/c-client-{check}-{next(_bases)}-{os.getpid()}"
    result = subprocess.run([binary, check, server.hosts, base], capture_output=True, text=True, timeout=120)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{check} failed (exit {result.returncode}):\n{output}"
    assert result.stdout.endswith(f"ok: {check}\n"), output
    return result.stdout


def test_crud(c_checks, server):
    """zoo_create/get/set/set2/exists/get_children/delete: data, stats, versions,
    NODEEXISTS, BADVERSION, NOTEMPTY, NONODE, sequential suffixes, null data."""
    run_check(c_checks, server, "crud")


def test_watches(c_checks, server):
    """zoo_wget, zoo_wexists and zoo_wget_children watches fire once each with the
    right type and path; nothing else arrives before a later sync's completion."""
    run_check(c_checks, server, "watch")


def test_ephemerals(c_checks, server):
    """Ephemerals carry their session's id, refuse children, and vanish with a
    NodeDeleted event when zookeeper_close ends the session."""
    run_check(c_checks, server, "ephemeral")


def test_multi(c_checks, server):
    """zoo_multi commits create/create/set/check/delete together; a failed check
    changes nothing and reports OK, BADVERSION, RUNTIMEINCONSISTENCY per op."""
    run_check(c_checks, server, "multi")


def test_async_completions(c_checks, server):
    """52 pipelined async calls complete in submission order with their results."""
    run_check(c_checks, server, "async")


@pytest.mark.deadline(150)
def test_rides_through_restart(c_checks, make_server):
    """The C client rides through a server crash and restart (SIGKILL, same port and
    dataDir): the session reconnects with the same id, nothing fires for the unchanged
    nodes, the data, child and exist watches set before the crash (re-sent by the
    client in setWatches) fire once each for changes made after it, and the ephemeral
    survived."""
    srv = make_server()
    base = f"/c-client-restart-{os.getpid()}"
    proc = subprocess.Popen([c_checks, "restart", srv.hosts, base], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    code, output = restart_under(proc, srv)
    assert code == 0, f"restart check failed (exit {code}):\n{output}"
    assert output.endswith("reconnected\nok: restart\n"), output
