"""multi (14), check (13) and multiRead (22): result layout, atomicity, and
the exact bytes of a failed multi.

Layout (MultiResponse.serialize): per result a MultiHeader{int type, bool
done=false, int err} and its body, closed by MultiHeader(-1, true, -1).
createTTL and createContainer results are typed create2 (15). A failed multi
answers ReplyHeader err 0 and an ErrorResult for every op: 0 before the
failing op, its own code, RUNTIMEINCONSISTENCY (-2) after
(DataTree.processTxn / PrepRequestProcessor multi rollback).
"""

import struct

import pytest
from kazoo.exceptions import BadVersionError, RolledBackError, RuntimeInconsistency

import zkwire as w
from conftest import IS_ZK


def _error_result(code):
    return struct.pack(">i?i", -1, False, code) + struct.pack(">i", code)


END = struct.pack(">i?i", -1, True, -1)


def test_multi_success_results(wire, base):
    """A successful multi returns one typed result per op, in op order, all
    applied under a single zxid."""
    assert wire.create(f"{base}/old", b"o")[0] == w.OK
    assert wire.create(f"{base}/gone")[0] == w.OK
    ops = [
        (w.OP_CREATE, w.create_body(f"{base}/n1", b"1")),
        (w.OP_CREATE2, w.create_body(f"{base}/n2", b"22")),
        (w.OP_SET_DATA, w.set_data_body(f"{base}/old", b"new", 0)),
        (w.OP_CHECK, w.check_body(f"{base}/old", 1)),
        (w.OP_DELETE, w.delete_body(f"{base}/gone", 0)),
        (w.OP_CREATE, w.create_body(f"{base}/seq-", b"", flags=w.PERSISTENT_SEQUENTIAL)),
    ]
    err, results, rep = wire.multi(ops)
    assert err == w.OK
    types = [r[0] for r in results]
    # ZOOKEEPER-4026 (3.9.0): a create2 op in a multi answers a create2 result
    # with the stat. 3.8 decays it to create and answers the path only.
    create2_type = w.OP_CREATE if IS_ZK else w.OP_CREATE2
    assert types == [w.OP_CREATE, create2_type, w.OP_SET_DATA, w.OP_CHECK, w.OP_DELETE, w.OP_CREATE]
    assert all(r[1] == 0 for r in results)
    assert results[0][2] == f"{base}/n1"
    set_stat = results[2][2]
    if IS_ZK:
        assert results[1][2] == f"{base}/n2"
        stat2 = wire.exists(f"{base}/n2")[1]
    else:
        path2, stat2 = results[1][2]
        assert path2 == f"{base}/n2"
    assert stat2.dataLength == 2
    assert set_stat.version == 1 and set_stat.dataLength == 3
    # the sequential suffix is the parent's stored cversion at that point of
    # the multi, which counts creates only (deletes do not bump it; the
    # client-visible cversion is derived: DataNode.copyStat): old, gone, n1,
    # n2 = 4, the delete of gone does not count
    assert results[5][2] == f"{base}/seq-0000000004"
    # one txn: every change carries the same zxid, which is the reply's zxid
    assert stat2.czxid == set_stat.mzxid == rep.zxid
    err, n1 = wire.exists(f"{base}/n1")
    assert n1.czxid == rep.zxid
    assert wire.exists(f"{base}/gone")[0] == w.NONODE


def test_multi_failure_exact_bytes(wire, base):
    """A multi whose second op fails answers err 0 and, byte for byte:
    ErrorResult(0), ErrorResult(NONODE), ErrorResult(RUNTIMEINCONSISTENCY) x2, end marker;
    and applies nothing."""
    ops = [
        (w.OP_CREATE, w.create_body(f"{base}/a")),
        (w.OP_DELETE, w.delete_body(f"{base}/missing")),
        (w.OP_CREATE, w.create_body(f"{base}/b")),
        (w.OP_SET_DATA, w.set_data_body(base, b"x")),
    ]
    rep = wire.request(w.OP_MULTI, w.multi_body(ops))
    assert rep.err == w.OK
    expected = _error_result(0) + _error_result(w.NONODE) + _error_result(-2) + _error_result(-2) + END
    assert rep.body == expected
    assert wire.exists(f"{base}/a")[0] == w.NONODE
    assert wire.exists(f"{base}/b")[0] == w.NONODE
    err, stat = wire.exists(base)
    assert stat.version == 0 and stat.cversion == 0


@pytest.mark.parametrize(
    "failing, code",
    [
        ("check", w.BADVERSION),
        ("exists", w.NODEEXISTS),
        ("version", w.BADVERSION),
        ("notempty", w.NOTEMPTY),
        ("noparent", w.NONODE),
        ("ephemeral-parent", w.NOCHILDRENFOREPHEMERALS),
        ("badpath", w.BADARGUMENTS),
    ],
)
def test_multi_failure_codes(wire, base, failing, code):
    """The failing op's own code sits at its index, 0 before and -2 after, whatever the failure."""
    assert wire.create(f"{base}/p", b"")[0] == w.OK
    assert wire.create(f"{base}/p/c")[0] == w.OK
    assert wire.create(f"{base}/eph", flags=w.EPHEMERAL)[0] == w.OK
    bad = {
        "check": (w.OP_CHECK, w.check_body(f"{base}/p", 5)),
        "exists": (w.OP_CREATE, w.create_body(f"{base}/p")),
        "version": (w.OP_SET_DATA, w.set_data_body(f"{base}/p", b"", 3)),
        "notempty": (w.OP_DELETE, w.delete_body(f"{base}/p")),
        "noparent": (w.OP_CREATE, w.create_body(f"{base}/q/r")),
        "ephemeral-parent": (w.OP_CREATE, w.create_body(f"{base}/eph/x")),
        # The parent (base/p) exists, so the path check is reached: BADARGUMENTS.
        # (With "base//x" ZooKeeper looks up the parent "base/" first and
        # answers NONODE: PrepRequestProcessor.pRequest2TxnCreate.)
        "badpath": (w.OP_CREATE, w.create_body(f"{base}/p/")),
    }[failing]
    ops = [
        (w.OP_SET_DATA, w.set_data_body(f"{base}/p", b"1")),
        (w.OP_CREATE, w.create_body(f"{base}/new")),
        bad,
        (w.OP_DELETE, w.delete_body(f"{base}/p/c")),
    ]
    rep = wire.request(w.OP_MULTI, w.multi_body(ops))
    assert rep.err == w.OK
    assert rep.body == _error_result(0) + _error_result(0) + _error_result(code) + _error_result(-2) + END
    # nothing applied
    assert wire.get_data(f"{base}/p")[1][1].version == 0
    assert wire.exists(f"{base}/new")[0] == w.NONODE
    assert wire.exists(f"{base}/p/c")[0] == w.OK


def test_multi_failure_first_op(wire, base):
    """When the first op fails there is no 0 before it: [code, -2, -2]."""
    ops = [
        (w.OP_CHECK, w.check_body(f"{base}/none", 0)),
        (w.OP_CREATE, w.create_body(f"{base}/a")),
        (w.OP_CREATE, w.create_body(f"{base}/b")),
    ]
    rep = wire.request(w.OP_MULTI, w.multi_body(ops))
    assert rep.err == w.OK
    assert rep.body == _error_result(w.NONODE) + _error_result(-2) + _error_result(-2) + END


def test_multi_ops_see_earlier_ops(wire, base):
    """Ops in one multi see the effect of earlier ops: create then create a child
    then setData with version 0 then check version 1 then delete both."""
    ops = [
        (w.OP_CREATE, w.create_body(f"{base}/m")),
        (w.OP_CREATE, w.create_body(f"{base}/m/c")),
        (w.OP_SET_DATA, w.set_data_body(f"{base}/m/c", b"v", 0)),
        (w.OP_CHECK, w.check_body(f"{base}/m/c", 1)),
        (w.OP_DELETE, w.delete_body(f"{base}/m/c", 1)),
        (w.OP_DELETE, w.delete_body(f"{base}/m", 0)),
    ]
    err, results, _ = wire.multi(ops)
    assert err == w.OK
    assert [r[0] for r in results] == [1, 1, 5, 13, 2, 2]
    assert wire.exists(f"{base}/m")[0] == w.NONODE


def test_empty_multi(wire):
    """An empty multi succeeds with only the end marker."""
    rep = wire.request(w.OP_MULTI, w.multi_body([]))
    assert rep.err == w.OK and rep.body == END


def test_multi_create_container_and_ttl_are_create2(wire, base):
    """createContainer and createTTL inside a multi answer a create2-typed result with a stat."""
    ops = [
        (w.OP_CREATE_CONTAINER, w.create_body(f"{base}/ctr", flags=w.CONTAINER)),
        (w.OP_CREATE_TTL, w.create_body(f"{base}/ttl", flags=w.PERSISTENT_WITH_TTL, ttl=60000)),
        (w.OP_CREATE, w.create_body(f"{base}/ctr/child")),
    ]
    err, results, _ = wire.multi(ops)
    assert err == w.OK
    assert [r[0] for r in results] == [w.OP_CREATE2, w.OP_CREATE2, w.OP_CREATE]
    # Clients never see the container or TTL marker: DataNode.copyStat
    # reports ephemeralOwner 0 for every non-NORMAL EphemeralType.
    assert results[0][2][1].ephemeralOwner == 0
    assert results[1][2][1].ephemeralOwner == 0


def test_kazoo_transaction_check(zk, base):
    """kazoo's transaction API: check (13) passes on the right version and the multi commits."""
    zk.create(f"{base}/k", b"v")
    t = zk.transaction()
    t.check(f"{base}/k", 0)
    t.set_data(f"{base}/k", b"w")
    t.create(f"{base}/k2", b"")
    results = t.commit()
    assert results[0] is True
    assert results[2] == f"{base}/k2"
    assert zk.get(f"{base}/k")[0] == b"w"


def test_kazoo_transaction_check_fails(zk, base):
    """A failed check rolls the transaction back; kazoo reports each op's error."""
    zk.create(f"{base}/k", b"v")
    t = zk.transaction()
    t.create(f"{base}/k1")
    t.check(f"{base}/k", 3)
    t.delete(f"{base}/k")
    results = t.commit()
    assert isinstance(results[0], RolledBackError)
    assert isinstance(results[1], BadVersionError)
    assert isinstance(results[2], RuntimeInconsistency)
    assert zk.exists(f"{base}/k1") is None and zk.exists(f"{base}/k") is not None


def test_multi_read(wire, base):
    """multiRead (22) answers each getData/getChildren independently: a missing
    node is an ErrorResult at its index and does not poison the others."""
    assert wire.create(f"{base}/r", b"data")[0] == w.OK
    assert wire.create(f"{base}/r/c1")[0] == w.OK
    ops = [
        (w.OP_GET_DATA, w.path_watch_body(f"{base}/r")),
        (w.OP_GET_CHILDREN, w.path_watch_body(f"{base}/missing")),
        (w.OP_GET_CHILDREN, w.path_watch_body(f"{base}/r")),
        (w.OP_GET_DATA, w.path_watch_body(f"{base}/missing")),
    ]
    err, results, _ = wire.multi(ops, opcode=w.OP_MULTI_READ)
    assert err == w.OK
    assert results[0][0] == w.OP_GET_DATA and results[0][2][0] == b"data"
    assert results[0][2][1].numChildren == 1
    assert results[1] == (w.OP_ERROR, w.NONODE, None)
    assert results[2] == (w.OP_GET_CHILDREN, 0, ["c1"])
    assert results[3] == (w.OP_ERROR, w.NONODE, None)


def test_multi_read_empty(wire):
    """An empty multiRead succeeds with only the end marker."""
    rep = wire.request(w.OP_MULTI_READ, w.multi_body([]))
    assert rep.err == w.OK and rep.body == END


def test_multi_read_ignores_watch_flag(wire, base):
    """multiRead drops the watch flag of its getData/getChildren ops
    (MultiOperationRecord.deserialize builds Op.getData(path), whose request
    record has watch=false), so no event follows a change."""
    assert wire.create(f"{base}/r", b"x")[0] == w.OK
    ops = [(w.OP_GET_DATA, w.path_watch_body(f"{base}/r", True)),
           (w.OP_GET_CHILDREN, w.path_watch_body(f"{base}/r", True))]
    err, results, _ = wire.multi(ops, opcode=w.OP_MULTI_READ)
    assert err == w.OK
    assert wire.set_data(f"{base}/r", b"y")[0] == w.OK
    assert wire.create(f"{base}/r/c")[0] == w.OK
    assert wire.events == []
    assert wire.no_event()
