"""Watches: one-shot data/exist/child watches, persistent and
persistent-recursive watches (addWatch, 106), checkWatches (17),
removeWatches (18), setWatches (101) and setWatches2 (105) after reconnect,
event types and paths, notification zxids, and ordering of events against
replies.

ZooKeeper 3.9 behaviour followed where 3.8 differs (each branch names the
change):
- ZOOKEEPER-4655 (3.9.0): a notification's ReplyHeader carries the zxid of
  the txn that fired it; 3.8 sends -1. Events fired by setWatches
  re-registration carry -1 in both (WatchedEvent without a zxid).
- ZOOKEEPER-4466 (3.9.0): a standard and a persistent watch on the same path
  coexist; in 3.8 the later registration replaces the earlier's mode.
- ZOOKEEPER-4471/4472 (3.9.0): removeWatches/checkWatches types Data and
  Children match standard watches only; Persistent (4) and
  PersistentRecursive (5) address persistent watches. 3.8 knows only 1-3.
"""

import pytest

import zkwire as w
from conftest import IS_ZK


def _expect(client, kind, path, timeout=5.0):
    ev = client.wait_event(timeout)
    assert (ev.type, ev.state, ev.path) == (kind, w.STATE_SYNC_CONNECTED, path), ev
    return ev


def _notification_zxid_ok(ev, txn_zxid):
    # ZOOKEEPER-4655: 3.9 sends the triggering zxid, 3.8 sends -1.
    return ev.zxid == (-1 if IS_ZK else txn_zxid)


# --- one-shot watches -------------------------------------------------------------


def test_data_watch_fires_once_on_set_data(make_wire, base):
    """A getData watch fires NodeDataChanged once, with the txn's zxid (3.9), then is gone."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/n", b"0")[0] == w.OK
    assert watcher.get_data(f"{base}/n", watch=True)[0] == w.OK
    rep = writer.request(w.OP_SET_DATA, w.set_data_body(f"{base}/n", b"1"))
    ev = _expect(watcher, w.EVENT_NODE_DATA_CHANGED, f"{base}/n")
    assert _notification_zxid_ok(ev, rep.zxid)
    assert writer.set_data(f"{base}/n", b"2")[0] == w.OK
    assert watcher.no_event()


def test_data_watch_fires_node_deleted(make_wire, base):
    """A getData watch fires NodeDeleted when the node goes."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/n")[0] == w.OK
    assert watcher.get_data(f"{base}/n", watch=True)[0] == w.OK
    assert writer.delete(f"{base}/n") == w.OK
    _expect(watcher, w.EVENT_NODE_DELETED, f"{base}/n")


def test_exists_watch_on_missing_node_fires_created(make_wire, base):
    """exists with watch on a missing node answers NONODE and registers a watch that fires NodeCreated."""
    watcher, writer = make_wire(), make_wire()
    assert watcher.exists(f"{base}/later", watch=True)[0] == w.NONODE
    rep = writer.request(w.OP_CREATE, w.create_body(f"{base}/later"))
    ev = _expect(watcher, w.EVENT_NODE_CREATED, f"{base}/later")
    assert _notification_zxid_ok(ev, rep.zxid)
    # one-shot: the delete fires nothing
    assert writer.delete(f"{base}/later") == w.OK
    assert watcher.no_event()


def test_exists_watch_on_present_node(make_wire, base):
    """exists with watch on a present node fires NodeDataChanged on setData."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/n")[0] == w.OK
    assert watcher.exists(f"{base}/n", watch=True)[0] == w.OK
    assert writer.set_data(f"{base}/n", b"x")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, f"{base}/n")


def test_get_data_on_missing_node_sets_no_watch(make_wire, base):
    """getData with watch on a missing node fails NONODE and leaves no watch behind."""
    watcher, writer = make_wire(), make_wire()
    assert watcher.get_data(f"{base}/none", watch=True)[0] == w.NONODE
    assert writer.create(f"{base}/none")[0] == w.OK
    assert watcher.no_event()


def test_child_watch(make_wire, base):
    """getChildren watch fires NodeChildrenChanged on the parent's path for a child create, once."""
    watcher, writer = make_wire(), make_wire()
    assert watcher.get_children(base, watch=True)[0] == w.OK
    rep = writer.request(w.OP_CREATE, w.create_body(f"{base}/c"))
    ev = _expect(watcher, w.EVENT_NODE_CHILDREN_CHANGED, base)
    assert _notification_zxid_ok(ev, rep.zxid)
    assert writer.create(f"{base}/d")[0] == w.OK
    assert watcher.no_event()
    # re-arm with getChildren2; a child delete fires too
    assert watcher.get_children2(base, watch=True)[0] == w.OK
    assert writer.delete(f"{base}/c") == w.OK
    _expect(watcher, w.EVENT_NODE_CHILDREN_CHANGED, base)


def test_child_watch_ignores_data_and_grandchildren(make_wire, base):
    """A child watch does not fire for the node's own data, a child's data, or grandchildren."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/c")[0] == w.OK
    assert watcher.get_children(base, watch=True)[0] == w.OK
    assert writer.set_data(base, b"x")[0] == w.OK
    assert writer.set_data(f"{base}/c", b"x")[0] == w.OK
    assert writer.create(f"{base}/c/g")[0] == w.OK
    assert watcher.no_event()


def test_child_watch_fires_node_deleted_for_its_node(make_wire, base):
    """A child watch on a node that is deleted fires NodeDeleted (not NodeChildrenChanged)."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/p")[0] == w.OK
    assert watcher.get_children(f"{base}/p", watch=True)[0] == w.OK
    assert writer.delete(f"{base}/p") == w.OK
    _expect(watcher, w.EVENT_NODE_DELETED, f"{base}/p")


def test_data_and_child_watch_same_node_delete_fires_once(make_wire, base):
    """With both a data and a child watch on a deleted node, the connection gets one NodeDeleted
    (the child trigger is suppressed for watchers the data trigger already hit: DataTree.deleteNode)."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/p")[0] == w.OK
    assert watcher.get_data(f"{base}/p", watch=True)[0] == w.OK
    assert watcher.get_children(f"{base}/p", watch=True)[0] == w.OK
    assert writer.delete(f"{base}/p") == w.OK
    _expect(watcher, w.EVENT_NODE_DELETED, f"{base}/p")
    assert watcher.no_event()


def test_same_watch_twice_fires_once(make_wire, base):
    """Registering the same data watch twice on one connection yields one event."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/n")[0] == w.OK
    assert watcher.get_data(f"{base}/n", watch=True)[0] == w.OK
    assert watcher.exists(f"{base}/n", watch=True)[0] == w.OK
    assert writer.set_data(f"{base}/n", b"1")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, f"{base}/n")
    assert watcher.no_event()


def test_watch_fires_for_every_watching_session(make_wire, base):
    """Every connection holding a watch is notified."""
    watchers = [make_wire() for _ in range(3)]
    writer = make_wire()
    assert writer.create(f"{base}/n")[0] == w.OK
    for c in watchers:
        assert c.get_data(f"{base}/n", watch=True)[0] == w.OK
    assert writer.set_data(f"{base}/n", b"x")[0] == w.OK
    for c in watchers:
        _expect(c, w.EVENT_NODE_DATA_CHANGED, f"{base}/n")


def test_kazoo_watch_callbacks(zk, make_kazoo, base):
    """kazoo's DataWatch-style callbacks see the same event types and paths."""
    import threading

    other = make_kazoo()
    got = []
    done = threading.Event()

    def on_event(event):
        got.append((event.type, event.path))
        done.set()

    zk.create(f"{base}/k", b"")
    zk.get(f"{base}/k", watch=on_event)
    other.set(f"{base}/k", b"v")
    assert done.wait(5)
    assert got == [("CHANGED", f"{base}/k")]
    done.clear()
    zk.get_children(base, watch=on_event)
    other.create(f"{base}/k2")
    assert done.wait(5)
    assert got[-1] == ("CHILD", base)
    done.clear()
    zk.exists(f"{base}/k3", watch=on_event)
    other.create(f"{base}/k3")
    assert done.wait(5)
    assert got[-1] == ("CREATED", f"{base}/k3")
    done.clear()
    zk.exists(f"{base}/k3", watch=on_event)
    other.delete(f"{base}/k3")
    assert done.wait(5)
    assert got[-1] == ("DELETED", f"{base}/k3")


# --- ordering ---------------------------------------------------------------------


def test_event_before_reply_of_later_read(make_wire, base):
    """A watch event reaches the client before the reply of any later request that
    observes the change (ZooKeeper's ordering guarantee)."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/n", b"old")[0] == w.OK
    for i in range(20):
        assert watcher.get_data(f"{base}/n", watch=True)[0] == w.OK
        assert writer.set_data(f"{base}/n", f"v{i}".encode())[0] == w.OK
        rep = watcher.request(w.OP_GET_DATA, w.path_watch_body(f"{base}/n"))
        assert rep.reader().buffer() == f"v{i}".encode()
        assert [(e.type, e.path) for e in rep.events_before] == [(w.EVENT_NODE_DATA_CHANGED, f"{base}/n")]
        watcher.unread.clear()


def test_event_before_reply_of_own_write(wire, base):
    """A session's own write fires its own watch before the write's reply arrives."""
    assert wire.create(f"{base}/n")[0] == w.OK
    assert wire.get_data(f"{base}/n", watch=True)[0] == w.OK
    rep = wire.request(w.OP_SET_DATA, w.set_data_body(f"{base}/n", b"x"))
    assert rep.err == w.OK
    assert [(e.type, e.path) for e in rep.events_before] == [(w.EVENT_NODE_DATA_CHANGED, f"{base}/n")]
    assert rep.events_before[0].zxid == (-1 if IS_ZK else rep.zxid)


def test_event_before_reply_of_later_sync(make_wire, base):
    """A sync sent after another session's write was acknowledged is answered after
    the event that write fired: the round trip the suite's no_event() relies on."""
    watcher, writer = make_wire(), make_wire()
    assert writer.create(f"{base}/n")[0] == w.OK
    for i in range(20):
        assert watcher.exists(f"{base}/n", watch=True)[0] == w.OK
        assert writer.set_data(f"{base}/n", str(i).encode())[0] == w.OK
        assert [(e.type, e.path) for e in watcher.barrier()] == [(w.EVENT_NODE_DATA_CHANGED, f"{base}/n")]
    assert watcher.no_event()


def test_events_in_zxid_order(make_wire, base):
    """Events from a sequence of writes arrive in the order of the writes."""
    watcher, writer = make_wire(), make_wire()
    paths = [f"{base}/n{i}" for i in range(10)]
    for p in paths:
        assert watcher.exists(p, watch=True)[0] == w.NONODE
    xids = [writer.send_request(w.OP_CREATE, w.create_body(p)) for p in paths]
    zxids = [writer.wait_reply(x).zxid for x in xids]
    events = [watcher.wait_event() for _ in paths]
    assert [e.path for e in events] == paths
    if not IS_ZK:
        assert [e.zxid for e in events] == zxids


# --- persistent watches (addWatch) -------------------------------------------------


def test_add_watch_reply_body(wire, base):
    """addWatch answers err 0 with an ErrorResponse(0) body: four zero bytes."""
    rep = wire.request(w.OP_ADD_WATCH, w.path_type_body(base, w.ADD_WATCH_PERSISTENT))
    assert rep.err == w.OK and rep.body == b"\x00\x00\x00\x00"


def test_persistent_watch(make_wire, base):
    """A persistent watch fires for every data change, child change, create and
    delete of its own path, and never for grandchildren; it survives firing."""
    watcher, writer = make_wire(), make_wire()
    n = f"{base}/n"
    assert watcher.add_watch(n, w.ADD_WATCH_PERSISTENT) == w.OK
    assert writer.create(n)[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, n)
    assert writer.set_data(n, b"1")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, n)
    assert writer.set_data(n, b"2")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, n)
    assert writer.create(f"{n}/c")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CHILDREN_CHANGED, n)
    assert writer.create(f"{n}/c/g")[0] == w.OK
    assert writer.set_data(f"{n}/c", b"x")[0] == w.OK
    assert writer.delete(f"{n}/c/g") == w.OK
    assert watcher.no_event()
    assert writer.delete(f"{n}/c") == w.OK
    _expect(watcher, w.EVENT_NODE_CHILDREN_CHANGED, n)
    assert writer.delete(n) == w.OK
    _expect(watcher, w.EVENT_NODE_DELETED, n)
    assert watcher.no_event()
    assert writer.create(n)[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, n)


def test_persistent_recursive_watch(make_wire, base):
    """A persistent-recursive watch fires NodeCreated/NodeDataChanged/NodeDeleted
    for the node and every descendant, with the descendant's path, and never
    NodeChildrenChanged."""
    watcher, writer = make_wire(), make_wire()
    r = f"{base}/r"
    assert watcher.add_watch(r, w.ADD_WATCH_PERSISTENT_RECURSIVE) == w.OK
    assert writer.create(r)[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, r)
    assert writer.create(f"{r}/a")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, f"{r}/a")
    assert writer.create(f"{r}/a/b")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, f"{r}/a/b")
    assert writer.set_data(f"{r}/a/b", b"x")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, f"{r}/a/b")
    assert writer.delete(f"{r}/a/b") == w.OK
    _expect(watcher, w.EVENT_NODE_DELETED, f"{r}/a/b")
    assert writer.set_data(r, b"y")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, r)
    # siblings with a common string prefix are not descendants
    assert writer.create(f"{base}/rr")[0] == w.OK
    assert writer.set_data(base, b"z")[0] == w.OK
    assert watcher.no_event()


def test_persistent_recursive_on_root(make_wire, base):
    """A recursive watch on "/" sees changes anywhere (paths are absolute)."""
    watcher, writer = make_wire(), make_wire()
    assert watcher.add_watch("/", w.ADD_WATCH_PERSISTENT_RECURSIVE) == w.OK
    assert writer.create(f"{base}/deep")[0] == w.OK
    # other tests may be writing too; find ours
    for _ in range(100):
        ev = watcher.wait_event()
        if ev.path == f"{base}/deep":
            assert ev.type == w.EVENT_NODE_CREATED
            break
    else:
        pytest.fail("no event for our create")


def test_persistent_and_standard_watch_same_path(make_wire, base):
    """A one-shot data watch next to a persistent watch on the same path: one event
    per change on the connection; the one-shot is consumed, the persistent one stays
    (ZOOKEEPER-4466, 3.9.0; in 3.8 the one-shot registration turns the persistent
    watch into a one-shot)."""
    watcher, writer = make_wire(), make_wire()
    n = f"{base}/n"
    assert writer.create(n)[0] == w.OK
    assert watcher.add_watch(n, w.ADD_WATCH_PERSISTENT) == w.OK
    assert watcher.get_data(n, watch=True)[0] == w.OK
    assert writer.set_data(n, b"1")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, n)
    assert watcher.no_event()
    assert writer.set_data(n, b"2")[0] == w.OK
    if IS_ZK:
        assert watcher.no_event()
    else:
        _expect(watcher, w.EVENT_NODE_DATA_CHANGED, n)


def test_add_watch_on_missing_path_is_ok(wire, base):
    """addWatch needs no node: it succeeds on a missing path."""
    assert wire.add_watch(f"{base}/none/deeper", w.ADD_WATCH_PERSISTENT_RECURSIVE) == w.OK


# --- checkWatches / removeWatches ----------------------------------------------------


def test_check_watches(wire, base):
    """checkWatches (17) answers OK for a registered watch of that type and NOWATCHER otherwise."""
    n = f"{base}/n"
    assert wire.create(n)[0] == w.OK
    assert wire.check_watches(n, w.WATCHER_DATA) == w.NOWATCHER
    assert wire.check_watches(n, w.WATCHER_ANY) == w.NOWATCHER
    assert wire.get_data(n, watch=True)[0] == w.OK
    assert wire.check_watches(n, w.WATCHER_DATA) == w.OK
    assert wire.check_watches(n, w.WATCHER_CHILDREN) == w.NOWATCHER
    assert wire.check_watches(n, w.WATCHER_ANY) == w.OK
    assert wire.get_children(n, watch=True)[0] == w.OK
    assert wire.check_watches(n, w.WATCHER_CHILDREN) == w.OK
    # another session does not see this session's watches (ZOOKEEPER-4466,
    # 3.9.0; 3.8's WatchManager.containsWatcher answers true when any
    # connection watches the path)
    other = w.connected(wire.sock.getpeername()[1])
    try:
        assert other.check_watches(n, w.WATCHER_ANY) == (w.OK if IS_ZK else w.NOWATCHER)
    finally:
        other.close()
    # a fired watch is gone
    assert wire.set_data(n, b"x")[0] == w.OK
    wire.wait_event()
    assert wire.check_watches(n, w.WATCHER_DATA) == w.NOWATCHER
    assert wire.check_watches(n, w.WATCHER_CHILDREN) == w.OK


def test_check_watches_reply_has_no_body(wire, base):
    """checkWatches success is a bare ReplyHeader."""
    assert wire.exists(base, watch=True)[0] == w.OK
    rep = wire.request(w.OP_CHECK_WATCHES, w.path_type_body(base, w.WATCHER_DATA))
    assert rep.err == w.OK and rep.body == b""


def test_remove_watches(make_wire, base):
    """removeWatches (18) removes this session's watches of the type, answers NOWATCHER when
    there is none, and the server sends no event for the removal (the client library makes
    DataWatchRemoved/ChildWatchRemoved itself)."""
    watcher, writer = make_wire(), make_wire()
    n = f"{base}/n"
    assert writer.create(n)[0] == w.OK
    assert watcher.get_data(n, watch=True)[0] == w.OK
    assert watcher.get_children(n, watch=True)[0] == w.OK
    assert watcher.remove_watches(n, w.WATCHER_DATA) == w.OK
    assert watcher.remove_watches(n, w.WATCHER_DATA) == w.NOWATCHER
    assert writer.set_data(n, b"x")[0] == w.OK
    assert watcher.no_event()
    assert watcher.remove_watches(n, w.WATCHER_ANY) == w.OK
    assert writer.create(f"{n}/c")[0] == w.OK
    assert watcher.no_event()
    assert watcher.remove_watches(n, w.WATCHER_ANY) == w.NOWATCHER


def test_remove_persistent_watches(make_wire, base):
    """Persistent (4) and PersistentRecursive (5) address persistent watches, and Data (2)
    does not remove a persistent watch (ZOOKEEPER-4471/4472, 3.9.0). 3.8 has no types 4 and 5
    (WatcherType.fromInt throws; the server answers MARSHALLINGERROR)."""
    watcher, writer = make_wire(), make_wire()
    n = f"{base}/n"
    assert writer.create(n)[0] == w.OK
    assert watcher.add_watch(n, w.ADD_WATCH_PERSISTENT) == w.OK
    assert watcher.add_watch(f"{base}", w.ADD_WATCH_PERSISTENT_RECURSIVE) == w.OK
    if IS_ZK:
        assert watcher.check_watches(n, w.WATCHER_PERSISTENT) == w.MARSHALLINGERROR
        return
    assert watcher.check_watches(n, w.WATCHER_DATA) == w.NOWATCHER
    assert watcher.remove_watches(n, w.WATCHER_DATA) == w.NOWATCHER
    assert watcher.check_watches(n, w.WATCHER_PERSISTENT) == w.OK
    assert watcher.check_watches(n, w.WATCHER_ANY) == w.OK
    assert watcher.check_watches(base, w.WATCHER_PERSISTENT_RECURSIVE) == w.OK
    assert watcher.check_watches(base, w.WATCHER_PERSISTENT) == w.NOWATCHER
    assert watcher.remove_watches(n, w.WATCHER_PERSISTENT) == w.OK
    assert watcher.check_watches(n, w.WATCHER_PERSISTENT) == w.NOWATCHER
    assert watcher.remove_watches(base, w.WATCHER_PERSISTENT_RECURSIVE) == w.OK
    assert writer.set_data(n, b"x")[0] == w.OK
    assert watcher.no_event()


# --- setWatches / setWatches2 ------------------------------------------------------------


def _reconnect(port, old):
    """A new TCP connection that resumes old's session with its last zxid seen."""
    c = w.WireClient(port)
    resp = c.connect(session_id=old.session.session_id, passwd=old.session.passwd,
                     timeout_ms=old.session.timeout, last_zxid=old.last_zxid)
    assert resp.session_id == old.session.session_id, resp
    c.last_zxid = old.last_zxid
    return c


def test_set_watches_after_reconnect(make_wire, server, base):
    """setWatches (101, xid -8) after a reconnect: a watch whose node changed while the
    client was away fires at once (mzxid/pzxid > relativeZxid, or the node is gone/was
    created); the rest are re-registered and fire on the next change
    (DataTree.setWatches). Immediate events carry zxid -1 (no triggering txn)."""
    writer = make_wire()
    for name in ("changed", "same", "deleted", "kids", "quiet-kids"):
        assert writer.create(f"{base}/{name}")[0] == w.OK
    client = make_wire()
    assert client.exists(base)[0] == w.OK  # learn the current zxid
    relative = client.last_zxid
    client.close()  # TCP gone, session alive

    assert writer.set_data(f"{base}/changed", b"x")[0] == w.OK
    assert writer.delete(f"{base}/deleted") == w.OK
    assert writer.create(f"{base}/appeared")[0] == w.OK
    assert writer.create(f"{base}/kids/c")[0] == w.OK

    again = _reconnect(server.port, client)
    try:
        body = w.set_watches_body(
            relative,
            data=[f"{base}/changed", f"{base}/same", f"{base}/deleted"],
            exist=[f"{base}/appeared", f"{base}/still-missing"],
            child=[f"{base}/kids", f"{base}/quiet-kids"],
        )
        rep = again.request(w.OP_SET_WATCHES, body, xid=w.XID_SET_WATCHES)
        assert rep.err == w.OK and rep.body == b""
        # the immediate events come before setWatches' own reply
        # (FinalRequestProcessor runs DataTree.setWatches, which triggers
        # them, before it answers), and nothing else follows
        fired = {(e.type, e.path, e.zxid) for e in rep.events_before}
        again.unread.clear()  # taken through events_before
        assert again.no_event()
        assert fired == {
            (w.EVENT_NODE_DATA_CHANGED, f"{base}/changed", -1),
            (w.EVENT_NODE_DELETED, f"{base}/deleted", -1),
            (w.EVENT_NODE_CREATED, f"{base}/appeared", -1),
            (w.EVENT_NODE_CHILDREN_CHANGED, f"{base}/kids", -1),
        }
        # the others were registered
        assert writer.set_data(f"{base}/same", b"y")[0] == w.OK
        _expect(again, w.EVENT_NODE_DATA_CHANGED, f"{base}/same")
        assert writer.create(f"{base}/still-missing")[0] == w.OK
        _expect(again, w.EVENT_NODE_CREATED, f"{base}/still-missing")
        assert writer.create(f"{base}/quiet-kids/c")[0] == w.OK
        _expect(again, w.EVENT_NODE_CHILDREN_CHANGED, f"{base}/quiet-kids")
    finally:
        again.close()


def test_set_watches_zero_relative_zxid_fires_everything_existing(wire, base):
    """With relativeZxid 0 every existing node counts as changed: data watches fire
    NodeDataChanged and child watches NodeChildrenChanged at once."""
    assert wire.create(f"{base}/a")[0] == w.OK
    rep = wire.request(w.OP_SET_WATCHES, w.set_watches_body(0, data=[f"{base}/a"], child=[f"{base}/a"]),
                       xid=w.XID_SET_WATCHES)
    assert rep.err == w.OK
    got = sorted((ev.type, ev.path) for ev in rep.events_before)
    wire.unread.clear()  # taken through events_before
    assert got == [(w.EVENT_NODE_DATA_CHANGED, f"{base}/a"), (w.EVENT_NODE_CHILDREN_CHANGED, f"{base}/a")]
    assert wire.no_event()


def test_set_watches2_persistent(make_wire, base):
    """setWatches2 (105) re-registers persistent and persistent-recursive watches
    without firing them, whatever the relativeZxid."""
    writer = make_wire()
    watcher = make_wire()
    assert writer.create(f"{base}/p")[0] == w.OK
    assert writer.create(f"{base}/r")[0] == w.OK
    body = w.set_watches_body(0, persistent=[f"{base}/p"], recursive=[f"{base}/r"])
    rep = watcher.request(w.OP_SET_WATCHES2, body, xid=w.XID_SET_WATCHES)
    assert rep.err == w.OK and rep.body == b"" and rep.events_before == []
    assert watcher.no_event()
    assert writer.set_data(f"{base}/p", b"1")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, f"{base}/p")
    assert writer.set_data(f"{base}/p", b"2")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_DATA_CHANGED, f"{base}/p")
    assert writer.create(f"{base}/r/x")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, f"{base}/r/x")
    assert writer.create(f"{base}/r/x/y")[0] == w.OK
    _expect(watcher, w.EVENT_NODE_CREATED, f"{base}/r/x/y")


def test_set_watches2_standard_lists(make_wire, base):
    """setWatches2 applies the same relative-zxid rules as setWatches to its standard lists."""
    writer = make_wire()
    watcher = make_wire()
    assert writer.create(f"{base}/n")[0] == w.OK
    assert watcher.exists(f"{base}/n")[0] == w.OK
    relative = watcher.last_zxid
    assert writer.set_data(f"{base}/n", b"1")[0] == w.OK
    body = w.set_watches_body(relative, data=[f"{base}/n"], persistent=[], recursive=[])
    rep = watcher.request(w.OP_SET_WATCHES2, body, xid=w.XID_SET_WATCHES)
    assert rep.err == w.OK
    assert [(e.type, e.path, e.zxid) for e in rep.events_before] == [(w.EVENT_NODE_DATA_CHANGED, f"{base}/n", -1)]
    watcher.unread.clear()  # taken through events_before
    assert watcher.no_event()
