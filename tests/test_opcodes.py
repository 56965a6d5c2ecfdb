"""Every client opcode answers as ZooKeeper answers, through kazoo where it has
an API and through zkwire where it does not.

Opcodes covered elsewhere: multi/check/multiRead (test_multi.py),
createContainer/createTTL (test_node_types.py), addWatch/checkWatches/
removeWatches/setWatches/setWatches2 (test_watches.py), auth/whoAmI
(test_acl.py), closeSession (test_sessions.py).
"""

import pytest
from kazoo.exceptions import BadVersionError, NoNodeError, NodeExistsError, NotEmptyError

import zkwire as w
from conftest import IS_ZK


def test_create_and_get_data(zk, base):
    """create (1) stores data; getData (4) returns it with a stat whose dataLength matches."""
    path = zk.create(f"{base}/a", b"hello")
    assert path == f"{base}/a"
    data, stat = zk.get(path)
    assert data == b"hello"
    assert stat.dataLength == 5 and stat.version == 0
    with pytest.raises(NodeExistsError):
        zk.create(path)
    with pytest.raises(NoNodeError):
        zk.create(f"{base}/missing/child")


def test_create_empty_and_null_data(wire, base):
    """create with empty data reads back as a zero-length buffer; create with null
    data (a -1 length) reads back as null (-1 length) -- DataTree keeps the null
    it was given and getData serialises it as such -- and both stats say
    dataLength 0."""
    assert wire.create(f"{base}/empty", b"")[0] == w.OK
    rep = wire.request(w.OP_GET_DATA, w.path_watch_body(f"{base}/empty"))
    assert rep.err == w.OK and rep.body[:4] == b"\x00\x00\x00\x00"
    r = rep.reader()
    data, stat = r.buffer(), r.stat()
    assert data == b"" and stat.dataLength == 0
    rep = wire.request(w.OP_CREATE, w.Writer().string(f"{base}/null").buffer(None).acl(w.OPEN_ACL_UNSAFE)
                       .int(0).bytes())
    assert rep.err == w.OK
    rep = wire.request(w.OP_GET_DATA, w.path_watch_body(f"{base}/null"))
    assert rep.err == w.OK and rep.body[:4] == b"\xff\xff\xff\xff"
    r = rep.reader()
    data, stat = r.buffer(), r.stat()
    assert data is None and stat.dataLength == 0
    assert r.remaining() == 0


def test_create2_returns_path_and_stat(zk, base):
    """create2 (15) answers the created path and the new node's stat."""
    path, stat = zk.create(f"{base}/c2", b"xyz", include_data=True)
    assert path == f"{base}/c2"
    assert stat.dataLength == 3 and stat.version == 0 and stat.czxid == stat.mzxid == stat.pzxid
    assert stat == zk.exists(path)


def test_delete(zk, base):
    """delete (2) honours the version, refuses a node with children and answers NONODE after."""
    zk.create(f"{base}/d/child", makepath=True)
    with pytest.raises(NotEmptyError):
        zk.delete(f"{base}/d")
    zk.delete(f"{base}/d/child")
    with pytest.raises(BadVersionError):
        zk.delete(f"{base}/d", version=7)
    zk.delete(f"{base}/d", version=0)
    assert zk.exists(f"{base}/d") is None
    with pytest.raises(NoNodeError):
        zk.delete(f"{base}/d")


def test_exists(zk, base):
    """exists (3) returns None for a missing node and the same stat as getData for a present one."""
    assert zk.exists(f"{base}/nope") is None
    zk.create(f"{base}/yes", b"12")
    assert zk.exists(f"{base}/yes") == zk.get(f"{base}/yes")[1]


def test_exists_wire_nonode(wire, base):
    """exists on a missing node is err NONODE with no body (the reply is exactly 16 bytes)."""
    rep = wire.request(w.OP_EXISTS, w.path_watch_body(f"{base}/nope"))
    assert rep.err == w.NONODE and rep.body == b""


def test_set_data(zk, base):
    """setData (5) bumps version, keeps czxid, and refuses a stale version with BADVERSION."""
    zk.create(f"{base}/s", b"1")
    stat = zk.set(f"{base}/s", b"22")
    assert stat.version == 1 and stat.dataLength == 2
    stat = zk.set(f"{base}/s", b"333", version=1)
    assert stat.version == 2
    with pytest.raises(BadVersionError):
        zk.set(f"{base}/s", b"x", version=1)
    with pytest.raises(NoNodeError):
        zk.set(f"{base}/none", b"x")
    assert zk.get(f"{base}/s")[0] == b"333"


def test_get_and_set_acl(wire, base):
    """getACL (6) and setACL (7): setACL bumps aversion only, and a stale version is BADVERSION."""
    path = f"{base}/acl"
    assert wire.create(path)[0] == w.OK
    err, (acl, stat) = wire.get_acl(path)
    assert err == w.OK and acl == [(31, "world", "anyone")] and stat.aversion == 0
    err, stat = wire.set_acl(path, [(w.PERM_READ | w.PERM_ADMIN, "world", "anyone")], version=0)
    assert err == w.OK and stat.aversion == 1 and stat.version == 0 and stat.cversion == 0
    err, (acl, _) = wire.get_acl(path)
    assert acl == [(17, "world", "anyone")]
    assert wire.set_acl(path, w.OPEN_ACL_UNSAFE, version=0)[0] == w.BADVERSION
    assert wire.get_acl(f"{base}/none")[0] == w.NONODE


def test_get_children(zk, base):
    """getChildren (8) lists names (not paths) of direct children only."""
    for name in ("x", "y", "z"):
        zk.create(f"{base}/{name}")
    zk.create(f"{base}/x/deeper")
    assert sorted(zk.get_children(base)) == ["x", "y", "z"]
    assert zk.get_children(f"{base}/y") == []
    with pytest.raises(NoNodeError):
        zk.get_children(f"{base}/none")


def test_get_children2(wire, base):
    """getChildren2 (12) returns the children and the parent's stat."""
    for name in ("b", "a"):
        assert wire.create(f"{base}/{name}")[0] == w.OK
    err, (children, stat) = wire.get_children2(base)
    assert err == w.OK
    assert sorted(children) == ["a", "b"]
    assert stat.numChildren == 2 and stat.cversion == 2
    err, stat_exists = wire.exists(base)
    assert stat == stat_exists
    assert wire.get_children2(f"{base}/none")[0] == w.NONODE


def test_sync(zk, wire, base):
    """sync (9) answers with the path it was given (SyncResponse)."""
    assert zk.sync(base) == base
    rep = wire.request(w.OP_SYNC, w.path_body(base))
    assert rep.err == w.OK and rep.reader().string() == base


def test_ping_answers_last_zxid(make_server):
    """ping (11, xid -2) answers ReplyHeader(-2, lastZxid, 0) with no body; the
    zxid is the server's last processed zxid (FinalRequestProcessor, OpCode.ping),
    also when that txn came from another session. A server of its own, so no
    other session's txn (an expiry, say) moves the last zxid under the test."""
    srv = make_server()
    pinger, writer = w.connected(srv.port), w.connected(srv.port)
    try:
        err, (path, stat) = pinger.create("/p", opcode=w.OP_CREATE2)
        assert err == w.OK
        rep = pinger.ping()
        assert rep.xid == -2 and rep.err == 0 and rep.body == b""
        assert rep.zxid == stat.czxid
        other = writer.request(w.OP_SET_DATA, w.set_data_body("/p", b"x"))
        assert other.err == w.OK and other.zxid > stat.czxid
        assert pinger.ping().zxid == other.zxid
    finally:
        pinger.close()
        writer.close()


def test_ping_reply_xid_is_minus_two_whatever_the_request_xid(wire):
    """A ping sent with an ordinary xid is still answered with xid -2: the
    server writes its ping reply with the constant, it does not echo the
    request's xid (ZooKeeper's FinalRequestProcessor, OpCode.ping). A sync
    round trip after it shows nothing else was answered in between."""
    wire.send_request(w.OP_PING, b"", xid=7)
    rep = wire.read_reply(timeout=5.0)
    assert (rep.xid, rep.err, rep.body) == (-2, 0, b"")
    assert wire.request(w.OP_SYNC, w.path_body("/")).err == w.OK


def test_reply_header_zxid(make_server):
    """A write's reply carries the zxid of its own txn (czxid of the new node);
    a read's reply carries the server's last processed zxid, also when that txn
    came from another session. A server of its own, so nothing else writes."""
    srv = make_server()
    wire, writer = w.connected(srv.port), w.connected(srv.port)
    try:
        rep = wire.request(w.OP_CREATE2, w.create_body("/z"))
        r = rep.reader()
        r.string()
        stat = r.stat()
        assert rep.zxid == stat.czxid
        rep2 = wire.request(w.OP_EXISTS, w.path_watch_body("/z"))
        assert rep2.err == w.OK and rep2.zxid == rep.zxid
        rep3 = writer.request(w.OP_SET_DATA, w.set_data_body("/z", b"x"))
        assert rep3.zxid > rep.zxid
        rep4 = wire.request(w.OP_GET_DATA, w.path_watch_body("/z"))
        assert rep4.zxid == rep3.zxid
        # a failed read is stamped the same way
        rep5 = wire.request(w.OP_EXISTS, w.path_watch_body("/none"))
        assert rep5.err == w.NONODE and rep5.zxid == rep3.zxid
    finally:
        wire.close()
        writer.close()


def test_reconfig_standalone(wire):
    """reconfig (16) is refused as Apache ZooKeeper 3.8 without reconfigEnabled
    refuses it: RECONFIGDISABLED (-123, PrepRequestProcessor checks
    isReconfigEnabled first). ferrokeeper has no dynamic reconfiguration."""
    rep = wire.request(w.OP_RECONFIG, w.reconfig_body(joining="server.2=127.0.0.1:2888:3888;2182"))
    assert rep.err == w.RECONFIGDISABLED
    assert rep.body == b""
    # the connection stays usable
    assert wire.exists("/")[0] == w.OK


def test_get_ephemerals(make_wire, base):
    """getEphemerals (103) lists the session's own ephemerals whose path starts with the prefix."""
    owner = make_wire()
    other = make_wire()
    assert owner.create(f"{base}/e1", flags=w.EPHEMERAL)[0] == w.OK
    assert owner.create(f"{base}/sub", flags=w.PERSISTENT)[0] == w.OK
    assert owner.create(f"{base}/sub/e2", flags=w.EPHEMERAL)[0] == w.OK
    assert other.create(f"{base}/other", flags=w.EPHEMERAL)[0] == w.OK
    err, paths = owner.get_ephemerals(base)
    assert err == w.OK and sorted(paths) == [f"{base}/e1", f"{base}/sub/e2"]
    err, paths = owner.get_ephemerals(f"{base}/sub")
    assert sorted(paths) == [f"{base}/sub/e2"]
    # "/" means all of this session's ephemerals
    err, paths = owner.get_ephemerals("/")
    assert sorted(paths) == [f"{base}/e1", f"{base}/sub/e2"]
    # the prefix is a string prefix, not a path: "/e" matches "/e1"
    err, paths = owner.get_ephemerals(f"{base}/e")
    assert paths == [f"{base}/e1"]
    err, paths = other.get_ephemerals(base)
    assert paths == [f"{base}/other"]


def test_get_all_children_number(wire, base):
    """getAllChildrenNumber (104) counts all descendants, not the node itself."""
    for p in ("a", "a/b", "a/b/c", "d"):
        assert wire.create(f"{base}/{p}")[0] == w.OK
    assert wire.get_all_children_number(base) == (w.OK, 4)
    assert wire.get_all_children_number(f"{base}/a") == (w.OK, 2)
    assert wire.get_all_children_number(f"{base}/d") == (w.OK, 0)
    assert wire.get_all_children_number(f"{base}/none")[0] == w.NONODE


def test_replies_in_request_order(wire, base):
    """Pipelined requests (reads and writes mixed) are answered in request order, and
    each read sees exactly the writes sent before it (FIFO client order)."""
    sent = []
    for i in range(50):
        sent.append(("create", i, wire.send_request(w.OP_CREATE, w.create_body(f"{base}/n{i}"))))
        sent.append(("children", i, wire.send_request(w.OP_GET_CHILDREN, w.path_watch_body(base))))
        sent.append(("exists", i, wire.send_request(w.OP_EXISTS, w.path_watch_body(f"{base}/n{i}"))))
    create_zxid = {}
    for kind, i, xid in sent:
        rep = wire.wait_reply(xid)
        assert rep.err == w.OK, (kind, i, rep.err)
        r = rep.reader()
        if kind == "create":
            assert r.string() == f"{base}/n{i}"
            create_zxid[i] = rep.zxid
        elif kind == "children":
            assert sorted(r.strings()) == sorted(f"n{j}" for j in range(i + 1))
        else:
            assert r.stat().czxid == create_zxid[i]
        assert r.remaining() == 0
    assert sorted(create_zxid.values()) == [create_zxid[i] for i in range(50)]


def test_read_your_writes_across_pipelined_requests(wire, base):
    """A read pipelined right behind a write on the same session sees that write."""
    for i in range(20):
        x1 = wire.send_request(w.OP_SET_DATA if i else w.OP_CREATE,
                               w.set_data_body(f"{base}", str(i).encode()) if i else
                               w.create_body(f"{base}/r", b"0"))
        x2 = wire.send_request(w.OP_GET_DATA, w.path_watch_body(base))
        assert wire.wait_reply(x1).err == w.OK
        rep = wire.wait_reply(x2)
        data = rep.reader().buffer()
        assert data == (str(i).encode() if i else b"")
