"""Server fixtures for the real-client suite: ferrokeeper or Apache ZooKeeper.

FK_TARGET=ferrokeeper (default) runs the binary at $FK_BIN (default
target/release/ferrokeeper under the repository root); FK_TARGET=zookeeper
runs Apache ZooKeeper 3.8 from Debian's jars standalone with the equivalent
zoo.cfg. Each server listens on 127.0.0.1 on a free port, keeps its data and
its log (stdout and stderr, `server.log`) in a temporary directory, and is
killed at teardown.

Fixtures:
  server        one server for the whole session; tests use unique paths
  base          a unique persistent znode for the calling test on `server`
  make_server   factory for a fresh server with extra zoo.cfg keys (expiry,
                bad input, limits); killed when the test ends
  zk            a connected kazoo client on `server`
  make_kazoo    factory for more kazoo clients on any server
  wire          a connected zkwire.WireClient on `server`
  make_wire     factory for raw connections (handshake optional)

Every test runs under a deadline (SIGALRM; default 60 s, or
@pytest.mark.deadline(seconds)) so a lost event fails instead of hanging.
pytest-timeout is not needed.
"""

import atexit
import base64
import hashlib
import itertools
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

import zkwire

TARGET = os.environ.get("FK_TARGET", "ferrokeeper")
if TARGET not in ("ferrokeeper", "zookeeper"):
    raise SystemExit(f"FK_TARGET must be ferrokeeper or zookeeper, not {TARGET!r}")
IS_ZK = TARGET == "zookeeper"
IS_FK = TARGET == "ferrokeeper"

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FK_BIN = os.environ.get("FK_BIN", os.path.join(REPO, "target", "release", "ferrokeeper"))
ZK_JARS = "/usr/share/java"
# Debian's zookeeper.jar names its dependencies in its manifest's Class-Path;
# slf4j-simple is the one logging binding, so the server's log goes to stderr
# (server.log) whatever other jars /usr/share/java holds.
# netty-codec is not in that Class-Path, but the secure client port's
# SslHandler needs it (Debian's libnetty-java ships it with the rest).
ZK_CLASSPATH = ":".join(os.path.join(ZK_JARS, j)
                        for j in ("zookeeper.jar", "slf4j-simple.jar", "netty-codec.jar"))
START_TIMEOUT_S = float(os.environ.get("FK_START_TIMEOUT", "20"))
TEST_DEADLINE_S = 60

# The super user every server is started with (ZooKeeper's DigestAuthenticationProvider
# form: "user:" + base64(sha1("user:password"))).
SUPER_USER = "super"
SUPER_PASSWORD = "super-secret"


def digest(user, password):
    """ZooKeeper's digest id for user:password (DigestAuthenticationProvider.generateDigest)."""
    sha = hashlib.sha1(f"{user}:{password}".encode()).digest()
    return f"{user}:{base64.b64encode(sha).decode()}"


SUPER_DIGEST = digest(SUPER_USER, SUPER_PASSWORD)

# Keys that Apache ZooKeeper reads as JVM system properties rather than from
# zoo.cfg (ferrokeeper reads all of them from zoo.cfg).
ZK_SYSTEM_PROPERTIES = {
    "extendedTypesEnabled": "zookeeper.extendedTypesEnabled",
    "znode.container.checkIntervalMs": "znode.container.checkIntervalMs",
    "DigestAuthenticationProvider.superDigest": "zookeeper.DigestAuthenticationProvider.superDigest",
    "jute.maxbuffer": "jute.maxbuffer",
    # SASL (tests/test_sasl.py): the JAAS file is a plain JVM property.
    "java.security.auth.login.config": "java.security.auth.login.config",
    "superUser": "zookeeper.superUser",
}

_live_processes = []
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@atexit.register
def _kill_leftovers():
    for proc in _live_processes:
        if proc.poll() is None:
            proc.kill()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def default_config():
    return {
        "tickTime": "200",
        "minSessionTimeout": "400",
        "maxSessionTimeout": "60000",
        "4lw.commands.whitelist": "*",
        "extendedTypesEnabled": "true",
        "znode.container.checkIntervalMs": "200",
        "DigestAuthenticationProvider.superDigest": SUPER_DIGEST,
        "ferrokeeper.cores": "2",
    }


class Server:
    """One standalone server process (ferrokeeper or ZooKeeper)."""

    def __init__(self, overrides=None):
        self.dir = tempfile.mkdtemp(prefix=f"fk-{TARGET}-")
        self.port = free_port()
        self.host = "127.0.0.1"
        self.hosts = f"{self.host}:{self.port}"
        self.config = default_config()
        self.config.update({"dataDir": os.path.join(self.dir, "data"), "clientPort": str(self.port),
                            "clientPortAddress": self.host})
        for key, value in (overrides or {}).items():
            if value is None:
                self.config.pop(key, None)
            else:
                self.config[key] = str(value)
        self.log_path = os.path.join(self.dir, "server.log")
        self.proc = None

    def _write_config(self):
        os.makedirs(self.config["dataDir"], exist_ok=True)
        path = os.path.join(self.dir, "zoo.cfg")
        with open(path, "w") as f:
            for key, value in self.config.items():
                if IS_ZK and key.startswith("ferrokeeper."):
                    continue
                f.write(f"{key}={value}\n")
        return path

    def _command(self, cfg_path):
        if IS_FK:
            if not os.path.exists(FK_BIN):
                pytest.exit(f"ferrokeeper binary not found at {FK_BIN} (set FK_BIN or build it)", returncode=3)
            return [FK_BIN, "--config", cfg_path]
        for jar in ZK_CLASSPATH.split(":"):
            if not os.path.exists(jar):
                pytest.exit(f"{jar} not found: run tests/prereqs.sh install (as root)", returncode=3)
        props = ["-Xmx256m", "-Dzookeeper.admin.enableServer=false"]
        for key, prop in ZK_SYSTEM_PROPERTIES.items():
            if key in self.config:
                props.append(f"-D{prop}={self.config[key]}")
        return ["java", *props, "-cp", ZK_CLASSPATH,
                "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg_path]

    def start(self):
        cfg_path = self._write_config()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(self._command(cfg_path), stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                                     cwd=self.dir, start_new_session=True)
        log.close()
        _live_processes.append(self.proc)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{TARGET} exited with {self.proc.returncode}; log:\n{self.log_tail()}")
            try:
                # a whitelist without ruok answers "ruok is not executed because it is
                # not in the whitelist." -- the server is up all the same
                answer = zkwire.four_letter_word(self.port, "ruok", timeout=1.0)
                if (answer == "imok" or "whitelist" in answer) and self._session_works():
                    return self
            except (OSError, zkwire.ConnectionClosed, TimeoutError):
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{TARGET} did not answer ruok within {START_TIMEOUT_S}s; log:\n{self.log_tail()}")

    def _session_works(self):
        """ZooKeeper answers ruok before its ZooKeeperServer runs (connections
        are then closed with "ZooKeeperServer not running"), so readiness also
        needs one session to open and close."""
        client = zkwire.WireClient(self.port, timeout=1.0)
        try:
            if client.connect(timeout_ms=4000).session_id == 0:
                return False
            client.close_session()
            return True
        finally:
            client.close()

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    def restart(self):
        """Kills the process (SIGKILL, no clean shutdown) and starts it again on the
        same port and data directory."""
        self.stop()
        return self.start()

    def cleanup(self):
        self.stop()
        if os.environ.get("FK_KEEP_TMP") is None:
            shutil.rmtree(self.dir, ignore_errors=True)

    def log_text(self, since=0):
        """server.log from byte offset `since`, without ANSI colour codes."""
        with open(self.log_path, "rb") as f:
            f.seek(since)
            text = f.read().decode("utf-8", errors="replace")
        return ANSI_ESCAPE.sub("", text)

    def log_mark(self):
        """The current end of server.log, for log_since/wait_peer_logged."""
        return os.path.getsize(self.log_path)

    def wait_peer_logged(self, peer_port, since, timeout=2.0):
        """True when a line naming 127.0.0.1:<peer_port> was logged after `since`."""
        return self.wait_log(rf"127\.0\.0\.1:{peer_port}\b", timeout=timeout, since=since)

    def log_tail(self, n=40):
        return "\n".join(self.log_text().splitlines()[-n:])

    def wait_log(self, pattern, timeout=3.0, since=0):
        """True when server.log (from offset `since`) matches the regex within timeout."""
        deadline = time.monotonic() + timeout
        while True:
            if re.search(pattern, self.log_text(since)):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.05)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def fourlw(self, word):
        return zkwire.four_letter_word(self.port, word)


# --- deadlines ----------------------------------------------------------------


def pytest_configure(config):
    config.addinivalue_line("markers", "deadline(seconds): fail the test if it runs longer")
    config.addinivalue_line("markers", "fresh: the test starts its own server(s)")


class DeadlineExceeded(Exception):
    pass


def _on_alarm(signum, frame):
    raise DeadlineExceeded("test ran past its deadline")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("deadline")
    seconds = marker.args[0] if marker else TEST_DEADLINE_S
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# --- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def server():
    srv = Server().start()
    yield srv
    srv.cleanup()


@pytest.fixture
def make_server():
    started = []

    def make(**overrides):
        srv = Server(overrides).start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.cleanup()


_counter = itertools.count()


def _kazoo(srv, **kw):
    kw.setdefault("timeout", 10.0)
    kw.setdefault("connection_retry", KazooRetry(max_tries=3, delay=0.1, max_delay=0.5))
    kw.setdefault("command_retry", None)
    client = KazooClient(hosts=srv.hosts if hasattr(srv, "hosts") else srv, **kw)
    return client


@pytest.fixture
def make_kazoo(server):
    clients = []

    def make(srv=None, start=True, **kw):
        client = _kazoo(srv or server, **kw)
        clients.append(client)
        if start:
            client.start(timeout=10)
        return client

    yield make
    for client in clients:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


@pytest.fixture
def zk(make_kazoo):
    return make_kazoo()


@pytest.fixture
def base(request, server, zk):
    """A unique persistent znode for this test on the shared server."""
    name = re.sub(r"[^A-Za-z0-9_-]", "_", request.node.name)[:80]
    path = f"/t-{name}-{next(_counter)}-{os.getpid()}"
    zk.create(path)
    return path


@pytest.fixture
def make_wire(server):
    clients = []

    def make(srv=None, handshake=True, **kw):
        port = (srv or server).port
        client = zkwire.connected(port, **kw) if handshake else zkwire.WireClient(port)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def wire(make_wire):
    return make_wire()


def require_files(*paths):
    """Fails (does not skip) when a file the suite needs is missing: in CI a
    skipped client would pass for proof. tests/prereqs.sh installs them."""
    missing = [p for p in paths if not os.path.exists(p)]
    if missing:
        pytest.fail(f"missing {', '.join(missing)}: run tests/prereqs.sh install (as root)", pytrace=False)


def read_line(proc, timeout):
    """The next line of a child process's stdout (opened as text), waiting at most
    timeout seconds; an empty string means it closed its output."""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout=timeout):
            raise AssertionError(f"no line from {proc.args[0]} within {timeout} s")
    return proc.stdout.readline()


def restart_under(proc, srv, timeout=120):
    """Drives a client check that prints "ready" once its watches are set and then
    expects the server to restart: restarts srv (SIGKILL, same port and dataDir)
    then; returns (exit code, the rest of its output)."""
    try:
        ready = read_line(proc, timeout=60.0)
        if ready != "ready\n":
            proc.kill()
            return proc.wait(), ready + proc.stdout.read()
        srv.restart()
        output, _ = proc.communicate(timeout=timeout)
        return proc.returncode, output
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def wait_until(predicate, timeout=5.0, interval=0.05, message="condition"):
    """Polls predicate until it is truthy; fails the test after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)
