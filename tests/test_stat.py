"""Stat fields exactly as ZooKeeper sets them, compared by shape (relations
between fields and with reply zxids) rather than absolute zxids.

ZooKeeper's rules (DataTree.createNode/deleteNode/setData/setACL and
DataNode.copyStat):
- create: czxid = mzxid = pzxid = the txn zxid, ctime = mtime, all versions 0;
  the parent gets cversion + 1, numChildren + 1, pzxid = the txn zxid; its
  mzxid, mtime and version do not move;
- setData: mzxid, mtime, version + 1 and dataLength change; nothing else;
- setACL: aversion + 1 only (not mzxid, not mtime);
- child delete: parent cversion + 1 (visible), numChildren - 1, pzxid = the
  delete's zxid;
- visible cversion = stored creates * 2 - numChildren, which is why the root
  of a fresh tree shows cversion -1 (its /zookeeper child was attached
  without a create txn).
"""

import time

import zkwire as w
from conftest import wait_until


def _create2(wire, path, data=b"", flags=w.PERSISTENT):
    rep = wire.request(w.OP_CREATE2, w.create_body(path, data, flags=flags))
    assert rep.err == w.OK
    r = rep.reader()
    r.string()
    return rep.zxid, r.stat()


def _stat(wire, path):
    err, stat = wire.exists(path)
    assert err == w.OK
    return stat


def test_stat_after_create(wire, base):
    """A new node: czxid = mzxid = pzxid = the create's zxid; ctime = mtime near now; zero versions."""
    before_ms = int(time.time() * 1000)
    zxid, stat = _create2(wire, f"{base}/n", b"abcd")
    after_ms = int(time.time() * 1000)
    assert stat.czxid == stat.mzxid == stat.pzxid == zxid
    assert stat.ctime == stat.mtime
    assert before_ms - 1000 <= stat.ctime <= after_ms + 1000
    assert (stat.version, stat.cversion, stat.aversion) == (0, 0, 0)
    assert (stat.ephemeralOwner, stat.dataLength, stat.numChildren) == (0, 4, 0)


def test_stat_after_set_data(wire, base):
    """setData moves mzxid, mtime, version and dataLength only."""
    _, created = _create2(wire, f"{base}/n", b"abcd")
    # the server stamps mtime from the same wall clock: once it has moved past
    # the create's millisecond, the setData's mtime must be later
    wait_until(lambda: int(time.time() * 1000) > created.mtime + 1, timeout=5.0, interval=0.002,
               message="the wall clock to pass ctime")
    rep = wire.request(w.OP_SET_DATA, w.set_data_body(f"{base}/n", b"xy"))
    s = rep.reader().stat()
    assert s.mzxid == rep.zxid > created.czxid
    assert s.czxid == created.czxid and s.pzxid == created.pzxid and s.ctime == created.ctime
    assert s.mtime > created.mtime
    assert (s.version, s.cversion, s.aversion, s.dataLength, s.numChildren) == (1, 0, 0, 2, 0)
    assert _stat(wire, f"{base}/n") == s


def test_stat_after_set_data_same_bytes(wire, base):
    """setData with identical bytes still bumps version and mzxid."""
    _, created = _create2(wire, f"{base}/n", b"same")
    err, s = wire.set_data(f"{base}/n", b"same")
    assert err == w.OK and s.version == 1 and s.mzxid > created.mzxid


def test_stat_after_set_acl(wire, base):
    """setACL moves aversion only: not mzxid, mtime, version or pzxid."""
    _, created = _create2(wire, f"{base}/n", b"abcd")
    err, s = wire.set_acl(f"{base}/n", [(w.PERM_ALL, "world", "anyone")])
    assert err == w.OK
    assert s.aversion == 1
    assert (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime, s.version, s.cversion) == (
        created.czxid, created.mzxid, created.pzxid, created.ctime, created.mtime, 0, 0)
    assert _stat(wire, f"{base}/n") == s


def test_parent_stat_after_child_create_and_delete(wire, base):
    """Child create and delete move the parent's cversion, numChildren and pzxid, never its mzxid or version."""
    parent = f"{base}/p"
    _, p0 = _create2(wire, parent, b"pd")
    child_zxid, child = _create2(wire, f"{parent}/c1")
    p1 = _stat(wire, parent)
    assert p1.pzxid == child_zxid == child.czxid
    assert (p1.cversion, p1.numChildren) == (1, 1)
    assert (p1.mzxid, p1.mtime, p1.version, p1.czxid, p1.dataLength) == (p0.mzxid, p0.mtime, 0, p0.czxid, 2)

    c2_zxid, _ = _create2(wire, f"{parent}/c2")
    rep = wire.request(w.OP_DELETE, w.delete_body(f"{parent}/c1"))
    assert rep.err == w.OK and rep.zxid > c2_zxid
    p2 = _stat(wire, parent)
    assert p2.pzxid == rep.zxid
    assert (p2.cversion, p2.numChildren) == (3, 1)
    assert p2.mzxid == p0.mzxid and p2.version == 0


def test_parent_stat_unaffected_by_grandchild(wire, base):
    """Only direct children move a node's cversion and pzxid."""
    _create2(wire, f"{base}/p")
    _create2(wire, f"{base}/p/c")
    before = _stat(wire, f"{base}/p")
    _create2(wire, f"{base}/p/c/g")
    wire.set_data(f"{base}/p/c", b"x")
    assert _stat(wire, f"{base}/p") == before


def test_parent_stat_after_sequential_create(wire, base):
    """A sequential create moves the parent like any create."""
    _create2(wire, f"{base}/p")
    zxid, child = _create2(wire, f"{base}/p/s-", flags=w.PERSISTENT_SEQUENTIAL)
    p = _stat(wire, f"{base}/p")
    assert (p.cversion, p.numChildren, p.pzxid) == (1, 1, zxid)


def test_parent_stat_after_ephemeral_child_goes_with_session(make_wire, wire, base):
    """When a session closes, the parent of its ephemeral sees a delete: cversion + 1, pzxid moves."""
    _create2(wire, f"{base}/p")
    owner = make_wire()
    eph_zxid, eph = _create2(owner, f"{base}/p/e", flags=w.EPHEMERAL)
    assert eph.ephemeralOwner == owner.session.session_id
    close = owner.close_session()
    assert close.err == w.OK
    p = _stat(wire, f"{base}/p")
    assert (p.cversion, p.numChildren) == (2, 0)
    assert p.pzxid == close.zxid > eph_zxid


def test_get_data_and_get_children2_stats_agree(wire, base):
    """exists, getData and getChildren2 return the same stat for the same node."""
    _create2(wire, f"{base}/n", b"123")
    _create2(wire, f"{base}/n/c")
    s1 = _stat(wire, f"{base}/n")
    s2 = wire.get_data(f"{base}/n")[1][1]
    s3 = wire.get_children2(f"{base}/n")[1][1]
    s4 = wire.get_acl(f"{base}/n")[1][1]
    assert s1 == s2 == s3 == s4


def test_root_and_zookeeper_node_stats(make_server):
    """On a fresh server: "/" has all-zero zxids and times, cversion -1 and one
    child; /zookeeper holds config and quota with zero stats; after a first
    create under "/", the root's cversion is 0 and pzxid is that create's zxid."""
    srv = make_server()
    c = w.connected(srv.port)
    try:
        err, (children, root) = c.get_children2("/")
        assert err == w.OK and children == ["zookeeper"]
        assert (root.czxid, root.mzxid, root.pzxid, root.ctime, root.mtime) == (0, 0, 0, 0, 0)
        assert (root.version, root.cversion, root.aversion) == (0, -1, 0)
        assert (root.ephemeralOwner, root.dataLength, root.numChildren) == (0, 0, 1)
        err, (data, _) = c.get_data("/")
        assert data == b""

        err, (zk_children, zk_stat) = c.get_children2("/zookeeper")
        assert sorted(zk_children) == ["config", "quota"]
        assert (zk_stat.czxid, zk_stat.mzxid, zk_stat.pzxid, zk_stat.ctime, zk_stat.mtime) == (0, 0, 0, 0, 0)
        assert (zk_stat.version, zk_stat.cversion, zk_stat.numChildren) == (0, -2, 2)
        err, (acl, _) = c.get_acl("/zookeeper")
        assert acl == [(w.PERM_ALL, "world", "anyone")]
        # /zookeeper/config is readable by anyone and read-only in standalone
        err, (config_acl, config_stat) = c.get_acl("/zookeeper/config")
        assert config_acl == [(w.PERM_READ, "world", "anyone")]
        assert c.get_children("/zookeeper/quota") == (w.OK, [])

        zxid, _ = _create2(c, "/first")
        err, (_, root) = c.get_children2("/")
        assert (root.cversion, root.numChildren, root.pzxid) == (0, 2, zxid)
        assert root.mzxid == 0
    finally:
        c.close()


def test_ephemeral_owner_is_session_id(wire, base):
    """An ephemeral's ephemeralOwner is exactly the session id from the handshake."""
    _, stat = _create2(wire, f"{base}/e", flags=w.EPHEMERAL)
    assert stat.ephemeralOwner == wire.session.session_id != 0


def test_zxids_increase_per_write(wire, base):
    """Every write gets a fresh, larger zxid, and so does a write that fails in
    prep: ZooKeeper logs it as an error txn (PrepRequestProcessor sets
    OpCode.error + ErrorTxn) and the reply carries that txn's zxid."""
    z1, _ = _create2(wire, f"{base}/a")
    failed = wire.request(w.OP_CREATE, w.create_body(f"{base}/a"))
    assert failed.err == w.NODEEXISTS
    z2, _ = _create2(wire, f"{base}/b")
    assert z1 < failed.zxid < z2
