"""Durability across a crash: a server killed with SIGKILL and started again on
the same dataDir has every acknowledged write, the same stats, a zxid that
keeps growing, and the sessions that were open (ZooKeeper logs createSession
txns, so an unexpired session can be resumed with its id and password and its
ephemerals are still there)."""

import zkwire as w


def test_acknowledged_writes_survive_sigkill(make_server):
    """Every write acknowledged before SIGKILL is there after restart, stats identical."""
    srv = make_server()
    c = w.connected(srv.port)
    stats = {}
    try:
        for i in range(50):
            path = f"/n{i}"
            assert c.create(path, f"v{i}".encode())[0] == w.OK
        assert c.set_data("/n7", b"changed")[0] == w.OK
        assert c.delete("/n8") == w.OK
        assert c.set_acl("/n9", [(w.PERM_READ | w.PERM_ADMIN, "world", "anyone")])[0] == w.OK
        err, seq = c.create("/s-", flags=w.PERSISTENT_SEQUENTIAL)
        for i in range(50):
            err, stat = c.exists(f"/n{i}")
            stats[f"/n{i}"] = stat
        last_zxid = c.last_zxid
    finally:
        c.close()
    srv.restart()
    c = w.connected(srv.port)
    try:
        for path, stat in stats.items():
            err, got = c.exists(path)
            assert got == stat, path
        assert c.get_data("/n7")[1][0] == b"changed"
        assert c.get_acl("/n9")[1][0] == [(w.PERM_READ | w.PERM_ADMIN, "world", "anyone")]
        assert c.exists(seq)[0] == w.OK
        # the sequence counter of "/" survived: the next suffix is larger
        err, seq2 = c.create("/s-", flags=w.PERSISTENT_SEQUENTIAL)
        assert seq2 > seq
        err, (_, stat) = c.create("/after", opcode=w.OP_CREATE2)
        assert stat.czxid > last_zxid
    finally:
        c.close()


def test_session_and_ephemerals_survive_restart(make_server):
    """An open session (timeout 30 s) outlives a server crash: after restart it resumes
    with its id and password, and its ephemeral is still there."""
    srv = make_server()
    c = w.connected(srv.port, timeout_ms=30000)
    assert c.create("/eph", flags=w.EPHEMERAL)[0] == w.OK
    session = c.session
    last_zxid = c.last_zxid
    c.close()
    srv.restart()
    again = w.WireClient(srv.port)
    try:
        resp = again.connect(session_id=session.session_id, passwd=session.passwd, timeout_ms=30000,
                             last_zxid=last_zxid)
        assert resp.session_id == session.session_id and resp.timeout == 30000
        err, stat = again.exists("/eph")
        assert err == w.OK and stat.ephemeralOwner == session.session_id
        again.close_session()
    finally:
        again.close()
    probe = w.connected(srv.port)
    try:
        assert probe.exists("/eph")[0] == w.NONODE
    finally:
        probe.close()


def test_closed_session_stays_closed_after_restart(make_server):
    """A session closed before the crash cannot be resumed after it, and its ephemerals stay gone."""
    srv = make_server()
    c = w.connected(srv.port, timeout_ms=30000)
    assert c.create("/eph", flags=w.EPHEMERAL)[0] == w.OK
    assert c.close_session().err == w.OK
    c.close()
    srv.restart()
    again = w.WireClient(srv.port)
    try:
        resp = again.connect(session_id=c.session.session_id, passwd=c.session.passwd)
        assert (resp.timeout, resp.session_id) == (0, 0)
    finally:
        again.close()
    probe = w.connected(srv.port)
    try:
        assert probe.exists("/eph")[0] == w.NONODE
    finally:
        probe.close()
