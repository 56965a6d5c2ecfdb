"""Hostile and unlucky clients: ones that send but never read, and ones that
connect and never say hello.

A client that pipelines requests and never reads its replies must not make
the server's memory grow without bound (ferrokeeper once pinned 3.2 GB for one
such connection; ZooKeeper 3.8 held 223-349 MB on the same workload), must be
closed when it stays stuck for its session timeout, and must not slow other
clients down meanwhile. A connection that never sends its ConnectRequest is
closed after the handshake timeout (ZooKeeper's NIO server:
zookeeper.nio.sessionlessCnxnTimeout, 10 s by default; the zoo.cfg key
`nio.sessionlessCnxnTimeout` sets it for both servers).
"""

import socket
import threading
import time

import pytest

import zkwire as w
from conftest import IS_FK, IS_ZK, wait_until

# The node every slow reader asks for: each reply carries it whole.
BIG_DATA_BYTES = 512 * 1024
# The bound this test states for ferrokeeper: what the slow readers may add to
# the server's resident memory. Each connection may have its credit
# (ferrokeeper.unsentReplyBytesMax, 4 MiB by default) unwritten, one reply
# over it, its requests in flight and its read buffer: about 6 MiB; four of
# them, and the allocator's slack, stay well under 64 MiB. Unbounded, the
# same load grows by gigabytes within seconds.
SLOW_READERS = 4
RSS_GROWTH_MAX_BYTES = 64 * 1024 * 1024
REQUESTS_PER_READER_MAX = 1_000_000


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS line")


class SlowReader:
    """A raw connection that opens a session, then pipelines getData of
    `path` and never reads a reply. Its sender stops when the server stops
    taking requests (a send blocks past `stuck_after`) or after `count`."""

    def __init__(self, port, path, timeout_ms=30_000, count=REQUESTS_PER_READER_MAX):
        self.client = w.WireClient(port)
        # A small send buffer: the sender notices soon when the server stops reading.
        self.client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.client.connect(timeout_ms=timeout_ms)
        self.port = self.client.sock.getsockname()[1]
        self.path = path
        self.count = count
        self.sent = 0
        # Set when the sender stops; `stuck` says a send blocked (the server
        # stopped reading) rather than the count running out.
        self.blocked = threading.Event()
        self.stuck = False
        self.thread = threading.Thread(target=self._pipeline, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def _pipeline(self, stuck_after=1.0):
        body = w.path_watch_body(self.path)
        request = b"".join(w.frame(w.Writer().int(xid).int(w.OP_GET_DATA).bytes() + body)
                           for xid in range(1, 101))
        self.client.sock.settimeout(stuck_after)
        try:
            while self.sent < self.count:
                self.client.sock.sendall(request)
                self.sent += 100
        except (socket.timeout, OSError):
            self.stuck = True
        self.blocked.set()

    def close(self):
        self.client.close()


def big_node(zk, base):
    path = f"{base}/big"
    zk.create(path, b"x" * BIG_DATA_BYTES)
    return path


@pytest.mark.skipif(IS_ZK, reason="states ferrokeeper's memory bound (ZooKeeper's JVM heap is another matter)")
@pytest.mark.deadline(90)
def test_slow_readers_keep_server_memory_bounded_and_other_clients_served(make_server, make_kazoo):
    """Four clients pipeline getData of a 512 KiB node and read nothing: the
    server stops taking their requests at its bound, its RSS grows by less
    than RSS_GROWTH_MAX_BYTES, and a normal client's requests are answered
    promptly all along."""
    srv = make_server()
    zk = make_kazoo(srv)
    zk.create("/slow")
    path = big_node(zk, "/slow")
    zk.get(path)
    baseline = rss_bytes(srv.proc.pid)

    readers = [SlowReader(srv.port, path).start() for _ in range(SLOW_READERS)]
    try:
        peak = baseline
        deadline = time.monotonic() + 30
        latencies = []
        i = 0
        # Until every reader is stuck (the server stopped reading them), and
        # then a little longer, a normal client works and RSS is sampled.
        settle_until = None
        while True:
            peak = max(peak, rss_bytes(srv.proc.pid))
            start = time.monotonic()
            zk.set("/slow", str(i).encode())
            data, _ = zk.get("/slow")
            assert data == str(i).encode()
            latencies.append(time.monotonic() - start)
            i += 1
            if settle_until is None and all(r.blocked.is_set() for r in readers):
                settle_until = time.monotonic() + 3
            if settle_until is not None and time.monotonic() > settle_until:
                break
            assert time.monotonic() < deadline, "the slow readers never blocked"
        peak = max(peak, rss_bytes(srv.proc.pid))
        sent = [r.sent for r in readers]
        assert all(r.stuck for r in readers), f"the server kept reading: {sent}"
        growth = peak - baseline
        assert growth < RSS_GROWTH_MAX_BYTES, f"RSS grew by {growth / 2**20:.1f} MiB (sent {sent})"
        latencies.sort()
        assert latencies[len(latencies) // 2] < 0.5, f"median round trip {latencies[len(latencies) // 2]:.3f}s"
        assert srv.alive()
        # The stuck connections are still served once they read.
        reader = readers[0]
        reader.client.sock.settimeout(10)
        reply = reader.client.read_reply(timeout=10)
        assert reply.xid == 1 and reply.err == w.OK
    finally:
        for r in readers:
            r.close()


@pytest.mark.skipif(IS_ZK, reason="ZooKeeper keeps a client that does not read as long as it sends")
@pytest.mark.deadline(60)
def test_a_client_that_never_reads_is_closed_after_its_session_timeout(make_server, make_kazoo):
    """A connection at its unsent bound for its whole session timeout is
    closed, once, with a log line naming its peer; its session is left to
    expire and a normal client goes on."""
    srv = make_server(**{"ferrokeeper.unsentReplyBytesMax": 1024 * 1024})
    zk = make_kazoo(srv)
    zk.create("/stuck")
    path = big_node(zk, "/stuck")
    mark = srv.log_mark()
    reader = SlowReader(srv.port, path, timeout_ms=2000).start()
    try:
        assert reader.blocked.wait(20), "the server never stopped reading the client"
        assert srv.wait_log(rf"127\.0\.0\.1:{reader.port}\b.*has not read its replies"
                            rf"|has not read its replies.*127\.0\.0\.1:{reader.port}\b",
                            timeout=15, since=mark), srv.log_tail()
        # The server's side is closed: draining what the socket holds ends in EOF.
        assert reader.client.wait_closed(timeout=15)
        text = srv.log_text(mark)
        assert text.count("has not read its replies") == 1, text
        assert zk.exists(path) is not None
    finally:
        reader.close()


@pytest.mark.deadline(60)
def test_connections_that_never_send_a_connect_request_are_closed(make_server, make_kazoo):
    """Sockets that connect and say nothing (or only part of a frame) are
    closed after the handshake timeout, so they cannot use up
    maxClientCnxns: afterwards a real client connects from the same address."""
    srv = make_server(**{"nio.sessionlessCnxnTimeout": 1000, "maxClientCnxns": 10})
    mark = srv.log_mark()
    idle = [socket.create_connection((srv.host, srv.port), timeout=10) for _ in range(5)]
    partial = [socket.create_connection((srv.host, srv.port), timeout=10) for _ in range(5)]
    for s in partial:
        s.sendall(b"\x00\x00\x00\x2c\x00\x00")  # a length prefix and two bytes of 44
    ports = [s.getsockname()[1] for s in idle + partial]
    try:
        start = time.monotonic()
        for s in idle + partial:
            s.settimeout(max(0.1, start + 20 - time.monotonic()))
            try:
                assert s.recv(1) == b"", "the server sent something instead of closing"
            except ConnectionResetError:
                pass
        elapsed = time.monotonic() - start
        assert elapsed < 15, f"closed after {elapsed:.1f}s"
        zk = make_kazoo(srv)
        assert zk.exists("/") is not None
        if IS_FK:
            for port in ports:
                assert srv.wait_peer_logged(port, mark), f"no log line for peer port {port}"
            text = srv.log_text(mark)
            for port in ports:
                lines = [line for line in text.splitlines() if f"127.0.0.1:{port}" in line]
                assert len(lines) == 1, lines
    finally:
        for s in idle + partial:
            s.close()


@pytest.mark.deadline(60)
def test_a_handshake_in_time_is_not_cut(make_server):
    """The handshake timeout is about silence: a client that connects, waits
    a little under it and then says hello gets its session, and keeps it
    past the timeout."""
    srv = make_server(**{"nio.sessionlessCnxnTimeout": 3000})
    client = w.WireClient(srv.port)
    try:
        time.sleep(0.5)
        assert client.connect(timeout_ms=10_000).session_id != 0
        waited = time.monotonic()
        while time.monotonic() - waited < 4:
            assert client.request(w.OP_PING, xid=-2).err == w.OK
            time.sleep(0.5)
    finally:
        client.close()


@pytest.mark.skipif(IS_ZK, reason="ZooKeeper applies globalOutstandingLimit across all connections, checked per read")
@pytest.mark.deadline(60)
def test_global_outstanding_limit_is_enforced_per_request(make_server):
    """With globalOutstandingLimit=100, a client that pipelines thousands of
    writes in one burst never has more than 100 of them outstanding in the
    server (one 64 KiB read holds over a thousand such requests)."""
    srv = make_server(globalOutstandingLimit=100)
    client = w.WireClient(srv.port)
    client.connect()
    try:
        client.request(w.OP_CREATE, w.create_body("/limit"))
        body = w.set_data_body("/limit", b"v")
        burst = b"".join(w.frame(w.Writer().int(xid).int(w.OP_SET_DATA).bytes() + body)
                         for xid in range(10, 3010))
        sender = threading.Thread(target=client.sock.sendall, args=(burst,), daemon=True)
        sender.start()
        seen = []
        while sender.is_alive() or not seen:
            for line in srv.fourlw("mntr").splitlines():
                if line.startswith("zk_outstanding_requests"):
                    seen.append(int(line.split()[1]))
            if len(seen) > 400:
                break
        assert max(seen) <= 100, f"outstanding requests seen: {sorted(seen)[-5:]}"
        for xid in range(10, 3010):
            assert client.wait_reply(xid, timeout=20).err == w.OK
    finally:
        client.close()
