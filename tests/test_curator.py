"""Apache Curator 5.4 (Debian's libcurator-*-java) recipes against the server:
InterProcessMutex, LeaderLatch, CuratorCache, TreeCache,
DistributedAtomicLong, SharedCount, PersistentNode and service discovery; and
the plain Java client riding through a server restart.

clients/CuratorChecks.java is compiled once per run with javac against the
jars in /usr/share/java (no Maven, no network) and each test runs one of its
checks in its own JVM with its own base path. A check prints "ok: ..." lines
and exits 0 only when every outcome it asserts held (mutual exclusion, a
leader elected and handed over, cache events seen in order, exact counter
values); the test also requires its final "ok: <check>" line, so a check that
stopped early cannot pass.
"""

import itertools
import os
import subprocess

import pytest

from conftest import require_files, restart_under

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "clients", "CuratorChecks.java")
JARS = [f"/usr/share/java/{j}.jar" for j in
        ("curator-client", "curator-framework", "curator-recipes", "curator-x-discovery", "slf4j-simple")]
# curator-recipes.jar and curator-x-discovery.jar name the rest (framework,
# client, zookeeper, guava, jackson, slf4j-api) in their manifests' Class-Path.
CLASSPATH = ":".join(JARS[2:])

_bases = itertools.count()

# a JVM per check: leave room for a loaded machine
pytestmark = pytest.mark.deadline(120)


@pytest.fixture(scope="session")
def curator_classes(tmp_path_factory):
    require_files(*JARS, "/usr/bin/javac")
    out = tmp_path_factory.mktemp("curator-classes")
    result = subprocess.run(["javac", "-Xlint:all,-path", "-Werror", "-d", str(out), "-cp", CLASSPATH, SOURCE],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"javac failed:\n{result.stdout}\n{result.stderr}"
    return str(out)


def _command(classes, server, check):
    base = f"/curator-{check}-{next(_bases)}-{os.getpid()}"
    return ["java", "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
           # the ZooKeeper client's own logging of every connection is noise here
           "-Dorg.slf4j.simpleLogger.log.org.apache.zookeeper=error",
           "-cp", f"{classes}:{CLASSPATH}", "CuratorChecks", check, server.hosts, base]


def run_check(classes, server, check, timeout=180):
    """Runs one check in its own JVM; returns its output."""
    result = subprocess.run(_command(classes, server, check), capture_output=True, text=True, timeout=timeout)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{check} failed (exit {result.returncode}):\n{output}"
    assert f"ok: {check}\n" in result.stdout, output
    return result.stdout


def test_inter_process_mutex(curator_classes, server):
    """InterProcessMutex: 8 threads in 4 sessions never hold the lock together and no
    read-modify-write under it is lost; re-entrancy, timed refusal while held, release."""
    out = run_check(curator_classes, server, "mutex")
    assert "ok: mutual exclusion held over 120 acquisitions" in out


def test_leader_latch(curator_classes, server):
    """LeaderLatch: one of three leads and all agree; leadership passes on when the
    leader closes its latch, and again when the next leader's session ends."""
    out = run_check(curator_classes, server, "leader-latch")
    assert out.count("ok: handed over to ") == 2


def test_curator_cache(curator_classes, server):
    """CuratorCache (on a persistent recursive watch): initial tree, then creates, a
    change and deletes by another session, in order, and a matching final view."""
    out = run_check(curator_classes, server, "curator-cache")
    assert "ok: CuratorCache saw 5 changes in order" in out


def test_tree_cache(curator_classes, server):
    """TreeCache (one-shot watches re-armed): adds, an update and a subtree removal."""
    run_check(curator_classes, server, "tree-cache")


def test_distributed_atomic_long(curator_classes, server):
    """DistributedAtomicLong: 75 concurrent increments from 3 sessions count exactly;
    compareAndSet refuses a stale expected value."""
    out = run_check(curator_classes, server, "atomic-long")
    assert "ok: DistributedAtomicLong counted 75 increments exactly" in out


def test_shared_count(curator_classes, server):
    """SharedCount: a change reaches the other session's listener; a stale trySetCount fails."""
    run_check(curator_classes, server, "shared-count")


def test_persistent_node(curator_classes, server):
    """PersistentNode (ephemeral): created, recreated after another session deletes it,
    updated, removed on close."""
    run_check(curator_classes, server, "persistent-node")


def test_service_discovery(curator_classes, server):
    """curator-x-discovery: three registered instances found with address, port and
    payload; the ServiceCache drops an unregistered one and one whose session ended."""
    run_check(curator_classes, server, "service-discovery")


@pytest.mark.deadline(150)
def test_java_client_rides_through_restart(curator_classes, make_server):
    """The plain Java client (ZooKeeper 3.8's) rides through a server crash and restart:
    same session, ephemeral kept, and its persistent, persistent-recursive and one-shot
    watches -- re-sent in setWatches2 -- fire nothing for unchanged nodes, then fire
    for changes made after the restart."""
    srv = make_server()
    proc = subprocess.Popen(_command(curator_classes, srv, "zookeeper-restart"), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    code, output = restart_under(proc, srv)
    assert code == 0, f"zookeeper-restart failed (exit {code}):\n{output}"
    assert "reconnected\n" in output and output.endswith("ok: zookeeper-restart\n"), output
