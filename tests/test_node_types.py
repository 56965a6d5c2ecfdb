"""Node types: persistent, ephemeral, sequential, ephemeral-sequential,
container (createContainer, 19) and TTL (createTTL, 21), as ZooKeeper creates
and removes them.

Rules checked against ZooKeeper's source:
- the sequential suffix is "%010d" of the parent's *stored* cversion, which
  counts creates only; the client-visible cversion is derived from it
  (DataNode.copyStat: stored * 2 - numChildren), so deletes move the visible
  cversion but not the next suffix (PrepRequestProcessor.pRequest2TxnCreate);
- a container is a removal candidate once it is empty *and* its cversion is
  > 0, i.e. it once had a child; a never-used container stays (the
  maxNeverUsedIntervalMs escape hatch is off by default) (ContainerManager.getCandidates);
- a TTL node is a candidate when it has no children and now - mtime > ttl
  (so setData restarts its clock); clients see ephemeralOwner 0 for both
  (DataNode.getClientEphemeralOwner).
"""

import itertools
import time

import pytest
from kazoo.exceptions import NoChildrenForEphemeralsError

import zkwire as w
from conftest import wait_until


def test_persistent_survives_session_close(make_kazoo, zk, base):
    """A persistent node outlives the session that created it and has ephemeralOwner 0."""
    other = make_kazoo()
    other.create(f"{base}/p", b"v")
    other.stop()
    stat = zk.exists(f"{base}/p")
    assert stat is not None and stat.ephemeralOwner == 0


def test_ephemeral_owner_and_removal_on_close(make_kazoo, zk, base):
    """An ephemeral node carries its session id in ephemeralOwner and goes when the session closes."""
    owner = make_kazoo()
    owner.create(f"{base}/e", ephemeral=True)
    session_id, _ = owner.client_id
    assert zk.exists(f"{base}/e").ephemeralOwner == session_id
    owner.stop()
    assert zk.exists(f"{base}/e") is None


def test_ephemeral_cannot_have_children(zk, base):
    """Creating under an ephemeral node fails with NOCHILDRENFOREPHEMERALS."""
    zk.create(f"{base}/e", ephemeral=True)
    with pytest.raises(NoChildrenForEphemeralsError):
        zk.create(f"{base}/e/child")


def test_sequential_suffix_follows_stored_cversion(zk, base):
    """Sequential suffixes are 10 digits and count the parent's creates, not its deletes."""
    parent = f"{base}/q"
    zk.create(parent)
    assert zk.create(f"{parent}/s-", sequence=True) == f"{parent}/s-0000000000"
    zk.create(f"{parent}/plain1")
    zk.create(f"{parent}/plain2")
    zk.delete(f"{parent}/plain1")
    zk.delete(f"{parent}/plain2")
    # 3 creates so far, 2 deletes: visible cversion 5, next suffix 3
    assert zk.exists(parent).cversion == 5
    assert zk.create(f"{parent}/s-", sequence=True) == f"{parent}/s-0000000003"
    assert zk.create(f"{parent}/other-", sequence=True) == f"{parent}/other-0000000004"
    assert zk.exists(parent).cversion == 7


def test_sequential_with_empty_name(wire, base):
    """A sequential create of "parent/" names the child by the number alone
    (the trailing slash is valid only because the suffix is appended before
    the path check)."""
    err, path = wire.create(f"{base}/", flags=w.PERSISTENT_SEQUENTIAL)
    assert err == w.OK and path == f"{base}/0000000000"
    # without the sequential flag the same path is invalid
    assert wire.create(f"{base}/")[0] == w.BADARGUMENTS


def test_ephemeral_sequential(make_kazoo, zk, base):
    """Ephemeral-sequential nodes share the parent's counter with persistent ones and die with the session."""
    owner = make_kazoo()
    a = owner.create(f"{base}/lock-", ephemeral=True, sequence=True)
    b = zk.create(f"{base}/lock-", sequence=True)
    c = owner.create(f"{base}/lock-", ephemeral=True, sequence=True)
    assert [a, b, c] == [f"{base}/lock-{i:010d}" for i in range(3)]
    assert zk.exists(a).ephemeralOwner == owner.client_id[0]
    assert zk.exists(b).ephemeralOwner == 0
    owner.stop()
    assert sorted(zk.get_children(base)) == ["lock-0000000001"]


def test_sequential_counter_is_per_parent(zk, base):
    """Each parent has its own counter."""
    zk.create(f"{base}/x")
    zk.create(f"{base}/y")
    zk.create(f"{base}/x/a")
    assert zk.create(f"{base}/x/n", sequence=True) == f"{base}/x/n0000000001"
    assert zk.create(f"{base}/y/n", sequence=True) == f"{base}/y/n0000000000"


def test_sequential_suffix_many_pipelined(wire, base):
    """300 pipelined sequential creates get consecutive suffixes in request order."""
    parent = f"{base}/many"
    assert wire.create(parent)[0] == w.OK
    xids = [wire.send_request(w.OP_CREATE, w.create_body(f"{parent}/n", flags=w.PERSISTENT_SEQUENTIAL))
            for _ in range(300)]
    names = [wire.wait_reply(x).reader().string() for x in xids]
    assert names == [f"{parent}/n{i:010d}" for i in range(300)]


# --- the container/TTL reaper ------------------------------------------------------
#
# Instead of sleeping for "enough" sweeps, the tests below watch the reaper work:
# a control node that is already eligible is made, and its removal shows that a
# pass ran after it existed. ZooKeeper's ContainerManager.checkContainers (and
# ferrokeeper's reaper) takes its candidates from one scan of every container and
# TTL node, so the pass that removed the control judged every node that existed
# before the control; a second control, made after the first is gone, shows that
# the deletes of that first pass have been carried out too.


def _gone(wire, path, message):
    wait_until(lambda: wire.exists(path)[0] == w.NONODE, timeout=10.0, interval=0.05, message=message)


def _eligible_container(wire, path):
    """A container that once had a child and has none now: the next pass removes it."""
    assert wire.create(path, flags=w.CONTAINER, opcode=w.OP_CREATE_CONTAINER)[0] == w.OK
    assert wire.create(f"{path}/x")[0] == w.OK
    assert wire.delete(f"{path}/x") == w.OK


def _reaper_passes(wire, base, first_control=None):
    """Waits for two reaper passes that started after this call. first_control, if
    given, is a path already made eligible to serve as the first control."""
    if first_control is None:
        first_control = f"{base}/control-{next(_controls)}"
        _eligible_container(wire, first_control)
    _gone(wire, first_control, f"reaper removal of {first_control}")
    second = f"{base}/control-{next(_controls)}"
    _eligible_container(wire, second)
    _gone(wire, second, f"reaper removal of {second}")


_controls = itertools.count()


# --- containers ------------------------------------------------------------------


def test_container_stat_and_type(wire, base):
    """createContainer (19) answers path + stat; the stat shows ephemeralOwner 0."""
    err, (path, stat) = wire.create(f"{base}/c", b"d", flags=w.CONTAINER, opcode=w.OP_CREATE_CONTAINER)
    assert err == w.OK and path == f"{base}/c"
    assert stat.ephemeralOwner == 0 and stat.dataLength == 1 and stat.cversion == 0
    assert wire.exists(f"{base}/c")[1] == stat


def test_container_never_used_is_kept(wire, base):
    """A container that never had a child is not removed by the container sweeper."""
    assert wire.create(f"{base}/c", flags=w.CONTAINER, opcode=w.OP_CREATE_CONTAINER)[0] == w.OK
    _reaper_passes(wire, base)
    assert wire.exists(f"{base}/c")[0] == w.OK


def test_container_removed_after_last_child(wire, base):
    """A container is kept while it has children and removed once its last child
    goes, and watchers see NodeDeleted."""
    c = f"{base}/c"
    assert wire.create(c, flags=w.CONTAINER, opcode=w.OP_CREATE_CONTAINER)[0] == w.OK
    assert wire.create(f"{c}/a")[0] == w.OK
    assert wire.create(f"{c}/b")[0] == w.OK
    _reaper_passes(wire, base)
    assert wire.exists(c)[0] == w.OK  # has children: kept
    assert wire.delete(f"{c}/a") == w.OK
    _reaper_passes(wire, base)
    assert wire.exists(c)[0] == w.OK  # still one child
    assert wire.exists(c, watch=True)[0] == w.OK
    assert wire.delete(f"{c}/b") == w.OK
    ev = wire.wait_event(timeout=10.0)
    assert (ev.type, ev.path) == (w.EVENT_NODE_DELETED, c)
    assert wire.exists(c)[0] == w.NONODE


def test_container_with_ephemeral_child(make_wire, wire, base):
    """A container emptied by its child's session closing is removed too."""
    c = f"{base}/c"
    assert wire.create(c, flags=w.CONTAINER, opcode=w.OP_CREATE_CONTAINER)[0] == w.OK
    owner = make_wire()
    assert owner.create(f"{c}/e", flags=w.EPHEMERAL)[0] == w.OK
    owner.close_session()
    wait_until(lambda: wire.exists(c)[0] == w.NONODE, timeout=5.0, message="container removal")


def test_create_flag_container_via_create2(wire, base):
    """create2 (15) with the CONTAINER flag succeeds but makes a plain
    persistent node: only opcode createContainer (19) produces a
    CreateContainerTxn (PrepRequestProcessor.pRequest2TxnCreate, same in 3.9).
    The Java client always sends 19 for CreateMode.CONTAINER."""
    rep = wire.request(w.OP_CREATE2, w.create_body(f"{base}/c", flags=w.CONTAINER))
    assert rep.err == w.OK
    assert wire.create(f"{base}/c/x")[0] == w.OK
    assert wire.delete(f"{base}/c/x") == w.OK
    # created through create2, the node is a plain persistent node in
    # ZooKeeper (the txn is a CreateTxn, not a CreateContainerTxn), so the
    # sweeper never removes it
    _reaper_passes(wire, base)
    assert wire.exists(f"{base}/c")[0] == w.OK


# --- TTL -------------------------------------------------------------------------------


def test_ttl_node_expires_when_childless(wire, base):
    """A TTL node with no children is removed after its TTL (plus a sweep)."""
    t = f"{base}/ttl"
    err, (path, stat) = wire.create(t, b"x", flags=w.PERSISTENT_WITH_TTL, opcode=w.OP_CREATE_TTL, ttl=500)
    assert err == w.OK and path == t and stat.ephemeralOwner == 0
    assert wire.exists(t, watch=True)[0] == w.OK
    ev = wire.wait_event(timeout=5.0)
    assert (ev.type, ev.path) == (w.EVENT_NODE_DELETED, t)


def test_ttl_node_kept_while_it_has_children(wire, base):
    """A TTL node with a child is not removed after its TTL; once the child goes, it is
    (its TTL is long past). The first control is a childless TTL node with the same
    TTL made after it, so the pass that removes the control found the TTL expired."""
    t = f"{base}/ttl"
    assert wire.create(t, flags=w.PERSISTENT_WITH_TTL, opcode=w.OP_CREATE_TTL, ttl=300)[0] == w.OK
    assert wire.create(f"{t}/child")[0] == w.OK
    control = f"{base}/ttl-control"
    assert wire.create(control, flags=w.PERSISTENT_WITH_TTL, opcode=w.OP_CREATE_TTL, ttl=300)[0] == w.OK
    _reaper_passes(wire, base, first_control=control)
    assert wire.exists(t)[0] == w.OK
    assert wire.delete(f"{t}/child") == w.OK
    _gone(wire, t, "TTL node removal")


@pytest.mark.deadline(60)
def test_ttl_set_data_restarts_clock(wire, base):
    """The TTL counts from mtime: a node whose data keeps changing outlives an
    untouched twin with the same TTL, made after it, which the reaper removes; left
    alone, it goes too."""
    t = f"{base}/ttl"
    twin = f"{base}/ttl-twin"
    assert wire.create(t, flags=w.PERSISTENT_WITH_TTL, opcode=w.OP_CREATE_TTL, ttl=1000)[0] == w.OK
    assert wire.create(twin, flags=w.PERSISTENT_WITH_TTL, opcode=w.OP_CREATE_TTL, ttl=1000)[0] == w.OK
    created = time.monotonic()
    touches = 0
    # touch t back to back (each setData waits for its reply) until the twin is gone
    while wire.exists(twin)[0] == w.OK:
        assert wire.set_data(t, str(touches).encode())[0] == w.OK, "TTL node removed while being changed"
        touches += 1
        assert time.monotonic() - created < 30.0, "the untouched twin was never removed"
    assert time.monotonic() - created > 1.0  # the twin's TTL, so t's too, is past
    assert wire.exists(t)[0] == w.OK
    _gone(wire, t, "TTL node removal once left alone")


def test_ttl_sequential(wire, base):
    """PERSISTENT_SEQUENTIAL_WITH_TTL gets a suffix and expires like a TTL node."""
    err, (path, _) = wire.create(f"{base}/s-", flags=w.PERSISTENT_SEQUENTIAL_WITH_TTL, opcode=w.OP_CREATE_TTL,
                                 ttl=300)
    assert err == w.OK and path == f"{base}/s-0000000000"
    wait_until(lambda: wire.exists(path)[0] == w.NONODE, timeout=5.0, message="TTL node removal")


@pytest.mark.parametrize(
    "flags, ttl",
    [
        (w.PERSISTENT_WITH_TTL, 0),                 # ttl must be positive
        (w.PERSISTENT_WITH_TTL, -5),
        (w.PERSISTENT_WITH_TTL, 0x00FFFFFFFFFF + 1),  # over EphemeralType.TTL.maxValue()
        (w.PERSISTENT, 1000),                       # createTTL with a non-TTL mode
        (w.EPHEMERAL, 1000),
    ],
)
def test_create_ttl_bad_arguments(wire, base, flags, ttl):
    """createTTL with an invalid ttl or a non-TTL mode is BADARGUMENTS (EphemeralType.validateTTL)."""
    err, _ = wire.create(f"{base}/bad", flags=flags, opcode=w.OP_CREATE_TTL, ttl=ttl)
    assert err == w.BADARGUMENTS
    assert wire.exists(f"{base}/bad")[0] == w.NONODE


def test_create_with_ttl_mode_but_no_ttl(wire, base):
    """create (1) with a TTL mode carries no ttl (ttl = -1): BADARGUMENTS."""
    assert wire.create(f"{base}/bad", flags=w.PERSISTENT_WITH_TTL)[0] == w.BADARGUMENTS


def test_ttl_needs_extended_types(make_server):
    """Without extendedTypesEnabled, createTTL is UNIMPLEMENTED
    (PrepRequestProcessor.validateCreateRequest) and the connection stays usable;
    containers still work (they need no extended types)."""
    srv = make_server(extendedTypesEnabled=None)
    c = w.connected(srv.port)
    try:
        err, _ = c.create("/ttl", flags=w.PERSISTENT_WITH_TTL, opcode=w.OP_CREATE_TTL, ttl=1000)
        assert err == w.UNIMPLEMENTED
        assert c.exists("/ttl")[0] == w.NONODE
        assert c.create("/ctr", flags=w.CONTAINER, opcode=w.OP_CREATE_CONTAINER)[0] == w.OK
    finally:
        c.close()
