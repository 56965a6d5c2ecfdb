"""Sessions: handshake forms, timeout negotiation, expiry, reconnect with id
and password, refusal answers, closeSession (-11).

Rules (ZooKeeperServer.processConnectRequest / finishSessionInit /
reopenSession):
- the timeout is clamped into [minSessionTimeout, maxSessionTimeout]
  (400 and 60000 in this suite's zoo.cfg);
- the ConnectResponse has the readOnly byte only when the request had it
  (36 or 37 bytes; ZOOKEEPER-4814 fixed 3.9.0-3.9.1 always sending 37);
- a wrong password or an unknown/expired session gets timeout 0, session id
  0 and 16 zero bytes, then the connection is closed;
- lastZxidSeen ahead of the server's last zxid: the connection is closed with
  no ConnectResponse ("client must try another server");
- renewing a session from a new connection closes the old connection
  (CLIENT_RECONNECT).
"""

import logging
import re
import struct
import threading
import time

import pytest
from kazoo.protocol.states import KazooState

import zkwire as w
from conftest import wait_until

REFUSED = (0, 0, b"\x00" * 16)


def _refused(resp):
    return (resp.timeout, resp.session_id, resp.passwd) == REFUSED


@pytest.mark.parametrize("asked, granted", [(1, 400), (399, 400), (400, 400), (5000, 5000), (60000, 60000),
                                            (60001, 60000), (10**9, 60000)])
def test_timeout_negotiation(server, asked, granted):
    """The granted timeout is the asked one clamped into [min, max]."""
    c = w.WireClient(server.port)
    try:
        resp = c.connect(timeout_ms=asked)
        assert resp.timeout == granted and resp.session_id != 0
        c.close_session()
    finally:
        c.close()


def _cons_line(srv, session_id):
    """The `cons` line of the connection that carries session_id, or None."""
    sid = f"sid=0x{session_id:x},"
    return next((line for line in srv.fourlw("cons").splitlines() if sid in line), None)


def _cons_field(line, name):
    return re.search(rf"\b{name}=(\w+)", line).group(1)


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__(level=1)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


@pytest.mark.deadline(40)
def test_kazoo_negotiated_timeout(make_server, make_kazoo):
    """kazoo asking for a 0.1 s session is granted minSessionTimeout (1000 ms here):
    kazoo's handshake log and the server's `cons` both say so. The session then
    outlives three of those timeouts on kazoo's pings alone: the server counts at
    least eight more requests on the connection, kazoo never leaves CONNECTED,
    and the session id stays the same."""
    srv = make_server(minSessionTimeout=1000)
    capture = _Capture()
    logger = logging.getLogger("fk-tests.kazoo-negotiated-timeout")
    logger.setLevel(1)  # kazoo logs the negotiated timeout at its BLATHER level (5)
    logger.propagate = False
    logger.addHandler(capture)
    client = make_kazoo(srv, timeout=0.1, logger=logger)
    granted = [m for m in capture.messages if "negotiated session timeout" in m]
    assert len(granted) == 1 and re.search(r"negotiated session timeout: 1000\b", granted[0]), capture.messages
    states = []
    client.add_listener(states.append)
    session_id = client.client_id[0]
    line = _cons_line(srv, session_id)
    assert line is not None and _cons_field(line, "to") == "1000", line
    recved = int(_cons_field(line, "recved"))
    started = time.monotonic()
    wait_until(lambda: time.monotonic() - started >= 3.0
               and int(_cons_field(_cons_line(srv, session_id), "recved")) >= recved + 8,
               timeout=30.0, interval=0.1, message="three session timeouts and eight more requests")
    assert states == [] and client.state == KazooState.CONNECTED
    assert client.client_id[0] == session_id
    assert client.exists("/") is not None


@pytest.mark.parametrize("read_only_byte", [False, True])
def test_connect_response_form_follows_request(server, read_only_byte):
    """A 44-byte ConnectRequest (no readOnly) gets a 36-byte answer; 45 bytes get 37
    (ZOOKEEPER-4814)."""
    c = w.WireClient(server.port)
    try:
        resp = c.connect(read_only=(False if read_only_byte else None))
        assert len(resp.raw) == (37 if read_only_byte else 36)
        assert resp.protocol_version == 0 and len(resp.passwd) == 16 and resp.session_id != 0
        if read_only_byte:
            assert resp.read_only is False
        # the session works
        assert c.exists("/")[0] == w.OK
        c.close_session()
    finally:
        c.close()


def test_reconnect_keeps_session(server, make_wire, base):
    """Reconnecting with the session id and password resumes the session: same id and
    password, ephemerals kept, and the old TCP connection is closed by the server."""
    first = make_wire(timeout_ms=6000)
    assert first.create(f"{base}/e", flags=w.EPHEMERAL)[0] == w.OK
    again = w.WireClient(server.port)
    try:
        resp = again.connect(session_id=first.session.session_id, passwd=first.session.passwd, timeout_ms=8000,
                             last_zxid=first.last_zxid)
        assert resp.session_id == first.session.session_id
        assert resp.passwd == first.session.passwd
        assert resp.timeout == 8000  # renegotiated
        err, stat = again.exists(f"{base}/e")
        assert err == w.OK and stat.ephemeralOwner == first.session.session_id
        assert first.wait_closed(5.0)
        # the session is usable from the new connection
        assert again.create(f"{base}/e2", flags=w.EPHEMERAL)[0] == w.OK
        again.close_session()
    finally:
        again.close()


def test_reconnect_wrong_password_refused(server, make_wire, base):
    """A wrong password gets (timeout 0, session 0, zero password) and a closed connection.
    ZooKeeper closes the owner's current connection too, before it checks the password
    (processConnectRequest calls serverCnxnFactory.closeSession(CLIENT_RECONNECT) ahead
    of reopenSession), but the session itself survives: the owner resumes it with the
    right password and its ephemeral is still there."""
    owner = make_wire()
    assert owner.create(f"{base}/e", flags=w.EPHEMERAL)[0] == w.OK
    bad = w.WireClient(server.port)
    try:
        wrong = bytes(b ^ 0xFF for b in owner.session.passwd)
        resp = bad.connect(session_id=owner.session.session_id, passwd=wrong)
        assert _refused(resp), resp
        assert bad.wait_closed(5.0)
    finally:
        bad.close()
    assert owner.wait_closed(5.0)
    again = w.WireClient(server.port)
    try:
        resp = again.connect(session_id=owner.session.session_id, passwd=owner.session.passwd,
                             last_zxid=owner.last_zxid)
        assert resp.session_id == owner.session.session_id
        err, stat = again.exists(f"{base}/e")
        assert err == w.OK and stat.ephemeralOwner == owner.session.session_id
        again.close_session()
    finally:
        again.close()


def test_unknown_session_refused(server):
    """A session id the server never issued is refused like an expired one."""
    c = w.WireClient(server.port)
    try:
        resp = c.connect(session_id=0x0123456789AB, passwd=b"\x01" * 16)
        assert _refused(resp)
        assert c.wait_closed(5.0)
    finally:
        c.close()


def test_last_zxid_ahead_refused(server, make_wire):
    """A client that has seen a zxid beyond the server's is refused: the connection closes
    without a ConnectResponse."""
    probe = make_wire()
    probe.exists("/")
    c = w.WireClient(server.port)
    try:
        c.send_frame(w.connect_request(last_zxid=probe.last_zxid + 1_000_000))
        with pytest.raises(w.ConnectionClosed):
            c.read_frame(timeout=5.0)
    finally:
        c.close()
    # a client that has seen exactly the last zxid is fine
    ok = w.WireClient(server.port)
    try:
        resp = ok.connect(last_zxid=probe.last_zxid)
        assert resp.session_id != 0
        ok.close_session()
    finally:
        ok.close()


def test_close_session(server, make_wire, base):
    """closeSession (-11) answers OK, removes the ephemerals at once, then the server closes
    the connection; the session cannot be resumed."""
    watcher = make_wire()
    c = make_wire()
    assert c.create(f"{base}/e", flags=w.EPHEMERAL)[0] == w.OK
    assert watcher.exists(f"{base}/e", watch=True)[0] == w.OK
    rep = c.close_session()
    assert rep.err == w.OK and rep.body == b""
    assert c.wait_closed(5.0)
    ev = watcher.wait_event()
    assert (ev.type, ev.path) == (w.EVENT_NODE_DELETED, f"{base}/e")
    assert watcher.exists(f"{base}/e")[0] == w.NONODE
    again = w.WireClient(server.port)
    try:
        assert _refused(again.connect(session_id=c.session.session_id, passwd=c.session.passwd))
    finally:
        again.close()


def test_kazoo_stop_closes_session(make_kazoo, zk, base):
    """kazoo's stop() sends closeSession: its ephemerals go immediately."""
    owner = make_kazoo()
    owner.create(f"{base}/e", ephemeral=True)
    owner.stop()
    assert zk.exists(f"{base}/e") is None


def test_expiry_removes_ephemerals_and_fires_watches(make_server, make_kazoo):
    """A session that stops pinging expires after its timeout: its ephemerals are deleted,
    watchers get NodeDeleted, and a reconnect attempt is refused."""
    srv = make_server()
    watcher = make_kazoo(srv)
    deleted = threading.Event()
    victim = w.connected(srv.port, timeout_ms=400)
    try:
        assert victim.create("/victim", flags=w.EPHEMERAL)[0] == w.OK
        assert victim.create("/victim-seq-", flags=w.EPHEMERAL_SEQUENTIAL)[0] == w.OK
        watcher.exists("/victim", watch=lambda event: deleted.set() if event.type == "DELETED" else None)
        started = time.monotonic()
        # go silent: no pings, no close
        assert deleted.wait(10.0), "ephemeral not removed after expiry"
        elapsed = time.monotonic() - started
        assert elapsed >= 0.3, f"expired after {elapsed:.2f}s, before its 400 ms timeout"
        assert watcher.get_children("/") == ["zookeeper"]
        assert victim.wait_closed(5.0)
    finally:
        victim.close()
    again = w.WireClient(srv.port)
    try:
        assert _refused(again.connect(session_id=victim.session.session_id, passwd=victim.session.passwd))
        assert again.wait_closed(5.0)
    finally:
        again.close()


def test_pings_keep_session_alive(make_server):
    """A session that pings about four times per timeout outlives three timeouts:
    the server never closes its connection and its ephemeral stays. (The client
    paces its pings by checking that the connection is still open.)"""
    srv = make_server()
    c = w.connected(srv.port, timeout_ms=1000)
    try:
        assert c.session.timeout == 1000
        assert c.create("/alive", flags=w.EPHEMERAL)[0] == w.OK
        started = time.monotonic()
        pings = 0
        while time.monotonic() - started < 3.0:
            assert c.ping().err == w.OK
            pings += 1
            assert not c.wait_closed(0.25), "the server closed a pinging session's connection"
        assert pings >= 8
        assert c.exists("/alive")[0] == w.OK
    finally:
        c.close()
    probe = w.connected(srv.port)
    try:
        err, stat = probe.exists("/alive")
        assert err == w.OK and stat.ephemeralOwner == c.session.session_id
    finally:
        probe.close()


def test_kazoo_sees_expiry(make_server, make_kazoo):
    """kazoo reports LOST when its session is expired behind its back, and can start a new one."""
    srv = make_server()
    # a 10 s session: nothing here waits for a timeout (the thief closes the
    # session), and a short one could expire on a loaded machine before the theft
    client = make_kazoo(srv, timeout=10.0)
    states = []
    lost = threading.Event()

    def listener(state):
        states.append(state)
        if state == KazooState.LOST:
            lost.set()

    client.add_listener(listener)
    session_id, passwd = client.client_id
    client.create("/k", ephemeral=True)
    # steal the session: a reconnect from elsewhere closes kazoo's connection,
    # then the thief closes the session
    thief = w.WireClient(srv.port)
    try:
        resp = thief.connect(session_id=session_id, passwd=passwd, timeout_ms=10000)
        assert resp.session_id == session_id
        thief.close_session()
    finally:
        thief.close()
    assert lost.wait(10.0), f"kazoo states: {states}"
    wait_until(lambda: client.state == KazooState.CONNECTED, timeout=10.0, message="kazoo reconnect")
    assert client.client_id[0] != session_id
    assert client.exists("/k") is None


def test_session_ids_distinct_and_passwords_16_bytes(server):
    """Every new session gets a distinct non-zero id and a 16-byte password."""
    ids = set()
    for _ in range(5):
        c = w.WireClient(server.port)
        try:
            resp = c.connect()
            assert len(resp.passwd) == 16
            ids.add(resp.session_id)
            c.close_session()
        finally:
            c.close()
    assert len(ids) == 5 and 0 not in ids


def test_ephemeral_owner_after_reconnect_creates(server, make_wire, base):
    """Ephemerals created on a resumed connection belong to the same session and are
    deleted together at closeSession."""
    first = make_wire()
    assert first.create(f"{base}/a", flags=w.EPHEMERAL)[0] == w.OK
    first.close()
    again = w.WireClient(server.port)
    try:
        again.connect(session_id=first.session.session_id, passwd=first.session.passwd, last_zxid=first.last_zxid)
        assert again.create(f"{base}/b", flags=w.EPHEMERAL)[0] == w.OK
        err, paths = again.get_ephemerals(base)
        assert sorted(paths) == [f"{base}/a", f"{base}/b"]
        again.close_session()
    finally:
        again.close()
    probe = make_wire()
    assert probe.get_children(base) == (w.OK, [])


def test_requests_after_close_session_are_not_executed(server, base):
    """A request pipelined behind closeSession is never executed: it is either not
    answered or answered SESSIONEXPIRED, and the connection closes. (ZooKeeper does
    either, depending on whether the NIO thread reads the request before the close
    lands: FinalRequestProcessor.sendCloseSession vs PrepRequestProcessor's
    checkSession on a closing session.)"""
    c = w.connected(server.port)
    try:
        xid = c.send_request(w.OP_CLOSE_SESSION)
        late = c.send_request(w.OP_CREATE, w.create_body(f"{base}/late"))
        rep = c.wait_reply(xid)
        assert rep.err == w.OK
        with pytest.raises(w.ConnectionClosed):
            while True:
                extra = c.read_reply(timeout=5.0)
                assert (extra.xid, extra.err) == (late, w.SESSIONEXPIRED), f"reply after closeSession: {extra}"
    finally:
        c.close()
    probe = w.connected(server.port)
    try:
        assert probe.exists(f"{base}/late")[0] == w.NONODE
    finally:
        probe.close()


def test_connect_request_raw_bytes(server):
    """The 45-byte ConnectRequest built by hand matches the notes' layout and is accepted."""
    payload = struct.pack(">iqiq", 0, 0, 5000, 0) + struct.pack(">i", 16) + b"\x00" * 16 + b"\x00"
    assert len(payload) == 45
    c = w.WireClient(server.port)
    try:
        c.send_frame(payload)
        raw = c.read_frame()
        assert len(raw) == 37
        version, timeout, session_id, n = struct.unpack(">iiqi", raw[:20])
        assert (version, timeout, n) == (0, 5000, 16) and session_id != 0
        assert raw[36:] == b"\x00"
        c.session = w.ConnectResponse(version, timeout, session_id, raw[20:36], False, raw)
        c.close_session()
    finally:
        c.close()
