"""Client fidelity: jute nulls in every request position, exists without an
ACL check, handshakes with trailing bytes, and digest auth without a colon.

kazoo writes an empty string as a jute null (length -1), so real clients send
nulls wherever a string may be empty: `Id("auth", "")` in CREATOR_ALL_ACL,
`sync("")`, `get_ephemerals("")`. Java's BinaryInputArchive.readString and
readBuffer return null for length -1, and startVector returns null for count
-1 (any other negative count is an empty vector). What the server then does
depends on where the null lands. The table below sends one null per row and
checks Apache ZooKeeper 3.8's answer; every expectation was measured against
it (FK_TARGET=zookeeper) and explained from its source:

- a null path that a read touches first (exists' indexOf, getNode on a
  ConcurrentHashMap, getPathParentIterator for checkWatches) or that create
  and delete split first (lastIndexOf) throws NullPointerException, which
  FinalRequestProcessor / PrepRequestProcessor answer MARSHALLINGERROR;
- setData, setACL and check validate the path first (PathUtils: "Path cannot
  be null"): BADARGUMENTS;
- multi looks at every op's path before preparing any op
  (getPendingChanges): MARSHALLINGERROR for the whole request;
- sync echoes the null; getEphemerals treats it as "all"; addWatch registers
  a watch nothing can fire; removeWatches finds no watch: NOWATCHER;
- fixupACL: a null scheme is INVALIDACL; a null id is fine for `auth` (the id
  is never read), INVALIDACL for a scheme without a provider, and
  MARSHALLINGERROR for world, digest and ip (equals / isValid on null);
- setWatches and setWatches2 walk their lists in order (data, exist, child,
  persistent, recursive) and stop at a null list or a null path in the first
  three with MARSHALLINGERROR -- what came before the null stays registered
  and its events are sent; a negative count other than -1 is an empty list;
- auth: a null scheme or a null digest credential is AUTHFAILED and the
  connection closes; the ip scheme ignores its credential.
"""

import pytest

import zkwire as w
from conftest import IS_FK, digest

W = w.Writer

# A node every row may read; created once per module.
NODE = "/null-strings"


@pytest.fixture(scope="module")
def node(server):
    c = w.connected(server.port)
    try:
        err, _ = c.create(NODE, b"data")
        assert err in (w.OK, w.NODEEXISTS), err
        err, _ = c.create(NODE + "/child", b"child")
        assert err in (w.OK, w.NODEEXISTS), err
    finally:
        c.close()
    return NODE


def still_open(c):
    """The connection still answers a ping (the server did not close it)."""
    return c.ping().err == w.OK


# --- handshake -----------------------------------------------------------------


def test_handshake_with_trailing_bytes_is_accepted(server):
    # Proves a ConnectRequest followed by extra bytes opens a session: ZooKeeper
    # reads the 45th byte as the read-only flag and ignores the rest
    # (ZooKeeperServer.processConnectRequest).
    c = w.WireClient(server.port)
    try:
        c.send_frame(w.connect_request(read_only=False) + b"\x07\x08\x09")
        raw = c.read_frame()
        r = w.Reader(raw)
        protocol, timeout, session_id, passwd = r.int(), r.int(), r.long(), r.buffer()
        assert (protocol, len(passwd)) == (0, 16)
        assert timeout > 0 and session_id != 0, "session refused"
        assert r.remaining() == 1, "answered in the 37-byte form, with the read-only flag"
        assert still_open(c)
        err, stat = c.exists("/")
        assert err == w.OK and stat is not None
    finally:
        c.close()


# --- kazoo ---------------------------------------------------------------------------


def test_kazoo_creator_all_acl(make_kazoo):
    # Proves kazoo's creator-only ACL works: kazoo sends Id("auth", "") with a null
    # id, which ZooKeeper expands to the caller's digest on create (makepath
    # included) and on set_acls.
    from kazoo.security import CREATOR_ALL_ACL

    owner = make_kazoo(auth_data=[("digest", "kazoo-owner:pw")])
    path = "/null-strings-kazoo/creator/node"
    owner.create(path, b"x", acl=CREATOR_ALL_ACL, makepath=True)
    owner.set_acls(path, CREATOR_ALL_ACL)
    acl, _ = owner.get_acls(path)
    assert [(a.perms, a.id.scheme, a.id.id) for a in acl] == [(w.PERM_ALL, "digest", digest("kazoo-owner", "pw"))]
    assert owner.get(path)[0] == b"x"


# --- exists checks no ACL ---------------------------------------------------------


def test_exists_needs_no_read_permission(server, make_wire):
    # Proves exists answers the stat of a node the caller may not read (ZooKeeper
    # 3.8's FinalRequestProcessor checks no ACL for exists) while getData is NOAUTH.
    owner = make_wire()
    assert owner.auth("digest", b"exists-owner:pw") == w.OK
    path = "/null-strings-exists-locked"
    err, _ = owner.create(path, b"x", acl=[(w.PERM_ALL, "auth", "")])
    assert err in (w.OK, w.NODEEXISTS), err
    stranger = make_wire()
    err, stat = stranger.exists(path, watch=True)
    assert err == w.OK and stat is not None and stat.dataLength == 1
    assert stranger.get_data(path)[0] == w.NOAUTH
    # exists(watch) left a data watch (its event would be withheld from a
    # connection without READ: ZOOKEEPER-4799).
    assert stranger.check_watches(path, w.WATCHER_DATA) == w.OK


# --- digest auth without a colon -------------------------------------------------------


def _digest_of(credential):
    """DigestAuthenticationProvider's id for any credential: text before the
    first colon, ':', base64(sha1(credential))."""
    import base64
    import hashlib

    user = credential.split(b":", 1)[0].decode()
    return f"{user}:{base64.b64encode(hashlib.sha1(credential).digest()).decode()}"




@pytest.mark.parametrize("credential", [b"nocolon", b""], ids=["no-colon", "empty"])
def test_digest_auth_without_colon_is_accepted(server, make_wire, credential):
    # Proves ZooKeeper accepts a digest credential with no colon or no text at all:
    # the connection stays, whoAmI shows the derived user, and the id it proves
    # matches an ACL that names exactly that id (and nothing else).
    c = make_wire()
    assert c.auth("digest", credential) == w.OK
    assert still_open(c)
    ident = _digest_of(credential)
    err, who = c.who_am_i()
    assert err == w.OK and ("digest", ident.split(":", 1)[0]) in who
    path = f"/null-strings-digest-{len(credential)}"
    admin = make_wire()
    err, _ = admin.create(path, b"x", acl=[(w.PERM_ALL, "digest", ident), (w.PERM_ADMIN, "world", "anyone")])
    assert err in (w.OK, w.NODEEXISTS), err
    assert c.get_data(path)[0] == w.OK
    assert admin.get_data(path)[0] == w.NOAUTH


@pytest.mark.parametrize(
    "ident,expected",
    [("user:hash", w.OK), ("user:hash:", w.OK), (":hash", w.OK), ("user:", w.INVALIDACL), ("nocolon", w.INVALIDACL)],
    ids=["plain", "trailing-colon", "empty-user", "empty-hash", "no-colon"],
)
def test_digest_acl_ids_are_split_as_java_splits_them(wire, ident, expected):
    # Proves DigestAuthenticationProvider.isValid (`id.split(":").length == 2`,
    # Java dropping trailing empty parts) decides which digest ACL ids are valid.
    path = "/null-strings-digest-acl-" + (ident.replace(":", "_") or "empty")
    err, _ = wire.create(path, b"", acl=[(w.PERM_ALL, "digest", ident)])
    assert err in ((expected, w.NODEEXISTS) if expected == w.OK else (expected,)), err


# --- the null table ---------------------------------------------------------------------


ALICE = b"null-alice:pw"
ALICE_ID = digest("null-alice", "pw")


def acl1(scheme, ident, perms=w.PERM_ALL):
    """A one-entry ACL vector whose scheme or id may be None (jute null)."""
    return W().int(1).int(perms).string(scheme).string(ident).bytes()


def create(path, data=b"", acl=None, flags=w.PERSISTENT, ttl=None):
    """A create body; acl is raw vector bytes (default OPEN_ACL_UNSAFE)."""
    b = W().string(path).buffer(data).raw(W().acl(w.OPEN_ACL_UNSAFE).bytes() if acl is None else acl).int(flags)
    if ttl is not None:
        b.long(ttl)
    return b.bytes()


CREATES = [
    ("create", w.OP_CREATE, {}),
    ("create2", w.OP_CREATE2, {}),
    ("createContainer", w.OP_CREATE_CONTAINER, {"flags": w.CONTAINER}),
    ("createTTL", w.OP_CREATE_TTL, {"flags": w.PERSISTENT_WITH_TTL, "ttl": 60000}),
]
NULL_VECTOR = W().int(-1).bytes()
NEGATIVE_VECTOR = W().int(-2).bytes()


class Row:
    """One null in one request position, and ZooKeeper's answer for it.

    body(base) builds the request body; base is a path unique to the row
    under NODE. check(reply, conn, base), when given, checks more than the
    error code. auth logs the connection in as ALICE first.
    """

    def __init__(self, name, op, body, err, check=None, auth=False, xid=None, closes=False):
        self.name, self.op, self.body, self.err = name, op, body, err
        self.check, self.auth, self.xid, self.closes = check, auth, xid, closes

    def param(self):
        return pytest.param(self, id=self.name)


def created(reply, conn, base):
    """The node was created at base (create answers the path first)."""
    assert w.Reader(reply.body).string() == base


def creator_acl(reply, conn, base):
    """The node holds ALICE's digest in place of auth:(null)."""
    err, (acl, _) = conn.get_acl(base)
    assert (err, acl) == (w.OK, [(w.PERM_ALL, "digest", ALICE_ID)])


def body_is(expected):
    def check(reply, conn, base):
        assert reply.body == expected

    return check


def multi_results(*expected):
    """The multi answered OK with these (type, err) results."""

    def check(reply, conn, base):
        assert [(kind, err) for kind, err, _ in w.parse_multi(reply.body)] == list(expected)

    return check


def create_rows():
    rows = []
    for name, op, kw in CREATES:
        full = name == "create"
        rows += [
            Row(f"{name}.path", op, lambda b, op=op, kw=kw: create(None, **kw), w.MARSHALLINGERROR),
            Row(f"{name}.data", op, lambda b, kw=kw: create(b, data=None, **kw), w.OK, check=created),
            Row(f"{name}.acl", op, lambda b, kw=kw: create(b, acl=NULL_VECTOR, **kw), w.INVALIDACL),
            Row(f"{name}.acl.scheme", op, lambda b, kw=kw: create(b, acl=acl1(None, "x"), **kw), w.INVALIDACL),
            Row(f"{name}.acl.id.world", op, lambda b, kw=kw: create(b, acl=acl1("world", None), **kw),
                w.MARSHALLINGERROR),
            Row(f"{name}.acl.id.auth", op, lambda b, kw=kw: create(b, acl=acl1("auth", None), **kw), w.OK,
                check=creator_acl, auth=True),
        ]
        if full:
            rows += [
                Row(f"{name}.acl.count-2", op, lambda b: create(b, acl=NEGATIVE_VECTOR), w.INVALIDACL),
                Row(f"{name}.acl.id.auth-unauthenticated", op, lambda b: create(b, acl=acl1("auth", None)),
                    w.INVALIDACL),
            ]
            for scheme in ("digest", "ip"):
                rows.append(Row(f"{name}.acl.id.{scheme}", op, lambda b, s=scheme: create(b, acl=acl1(s, None)),
                                w.MARSHALLINGERROR))
            for scheme in ("super", "madeup"):
                rows.append(Row(f"{name}.acl.id.{scheme}", op, lambda b, s=scheme: create(b, acl=acl1(s, None)),
                                w.INVALIDACL))
            rows += [
                Row(f"{name}.path.bad-flags", op, lambda b: create(None, flags=99), w.BADARGUMENTS),
                Row(f"{name}.acl.dup-scheme", op,
                    lambda b: create(b, acl=W().int(2).int(31).string("world").string("anyone")
                                     .int(31).string(None).string("x").bytes()),
                    w.MARSHALLINGERROR),
            ]
    rows.append(Row("createTTL.path.bad-ttl", w.OP_CREATE_TTL,
                    lambda b: create(None, flags=w.PERSISTENT_WITH_TTL, ttl=0), w.BADARGUMENTS))
    return rows


def path_rows():
    def path(p, *tail):
        return lambda b: W().string(p).raw(b"".join(tail)).bytes()

    no_watch = b"\x00"
    version = W().int(-1).bytes()
    return [
        Row("delete.path", w.OP_DELETE, path(None, version), w.MARSHALLINGERROR),
        Row("exists.path", w.OP_EXISTS, path(None, no_watch), w.MARSHALLINGERROR),
        Row("getData.path", w.OP_GET_DATA, path(None, no_watch), w.MARSHALLINGERROR),
        Row("getACL.path", w.OP_GET_ACL, path(None), w.MARSHALLINGERROR),
        Row("getChildren.path", w.OP_GET_CHILDREN, path(None, no_watch), w.MARSHALLINGERROR),
        Row("getChildren2.path", w.OP_GET_CHILDREN2, path(None, no_watch), w.MARSHALLINGERROR),
        Row("getAllChildrenNumber.path", w.OP_GET_ALL_CHILDREN_NUMBER, path(None), w.MARSHALLINGERROR),
        Row("setData.path", w.OP_SET_DATA, lambda b: W().string(None).buffer(b"x").int(-1).bytes(), w.BADARGUMENTS),
        Row("setData.data", w.OP_SET_DATA, lambda b: W().string(NODE).buffer(None).int(-1).bytes(), w.OK),
        Row("check.path", w.OP_CHECK, path(None, version), w.BADARGUMENTS),
        Row("sync.path", w.OP_SYNC, path(None), w.OK, check=body_is(W().string(None).bytes())),
        Row("sync.empty", w.OP_SYNC, path(""), w.OK, check=body_is(W().string("").bytes())),
        Row("getEphemerals.prefixPath", w.OP_GET_EPHEMERALS, path(None), w.OK, check=body_is(W().int(0).bytes())),
        Row("addWatch.path", w.OP_ADD_WATCH, path(None, W().int(w.ADD_WATCH_PERSISTENT).bytes()), w.OK,
            check=body_is(W().int(0).bytes())),
        Row("checkWatches.path", w.OP_CHECK_WATCHES, path(None, W().int(w.WATCHER_ANY).bytes()),
            w.MARSHALLINGERROR),
        Row("removeWatches.path", w.OP_REMOVE_WATCHES, path(None, W().int(w.WATCHER_ANY).bytes()), w.NOWATCHER),
    ]


def set_acl_rows():
    def set_acl(path, acl):
        return W().string(path).raw(acl).int(-1).bytes()

    return [
        Row("setACL.path", w.OP_SET_ACL, lambda b: set_acl(None, W().acl(w.OPEN_ACL_UNSAFE).bytes()),
            w.BADARGUMENTS),
        Row("setACL.acl", w.OP_SET_ACL, lambda b: set_acl(NODE, NULL_VECTOR), w.INVALIDACL),
        Row("setACL.acl.count-2", w.OP_SET_ACL, lambda b: set_acl(NODE, NEGATIVE_VECTOR), w.INVALIDACL),
        Row("setACL.acl.scheme", w.OP_SET_ACL, lambda b: set_acl(NODE, acl1(None, "anyone")), w.INVALIDACL),
        Row("setACL.acl.id.world", w.OP_SET_ACL, lambda b: set_acl(NODE, acl1("world", None)), w.MARSHALLINGERROR),
        Row("setACL.acl.id.auth-unauthenticated", w.OP_SET_ACL, lambda b: set_acl(NODE, acl1("auth", None)),
            w.INVALIDACL),
    ]


def multi_rows():
    def multi(*ops):
        return lambda b: w.multi_body([(op, body(b)) for op, body in ops])

    check_node = (w.OP_CHECK, lambda b: W().string(NODE).int(-1).bytes())
    return [
        Row("multi.create.path", w.OP_MULTI, multi((w.OP_CREATE, lambda b: create(None))), w.MARSHALLINGERROR),
        Row("multi.delete.path", w.OP_MULTI, multi((w.OP_DELETE, lambda b: W().string(None).int(-1).bytes())),
            w.MARSHALLINGERROR),
        Row("multi.setData.path", w.OP_MULTI,
            multi((w.OP_SET_DATA, lambda b: W().string(None).buffer(b"").int(-1).bytes())), w.MARSHALLINGERROR),
        Row("multi.check.path-second", w.OP_MULTI,
            multi(check_node, (w.OP_CHECK, lambda b: W().string(None).int(-1).bytes())), w.MARSHALLINGERROR),
        Row("multi.setData.data", w.OP_MULTI,
            multi((w.OP_SET_DATA, lambda b: W().string(NODE).buffer(None).int(-1).bytes())), w.OK,
            check=multi_results((w.OP_SET_DATA, 0))),
        Row("multi.create.acl", w.OP_MULTI, multi((w.OP_CREATE, lambda b: create(b, acl=NULL_VECTOR))), w.OK,
            check=multi_results((w.OP_ERROR, w.INVALIDACL))),
        Row("multi.create.acl.scheme", w.OP_MULTI, multi((w.OP_CREATE, lambda b: create(b, acl=acl1(None, "x")))),
            w.OK, check=multi_results((w.OP_ERROR, w.INVALIDACL))),
        Row("multi.create.acl.id.world", w.OP_MULTI,
            multi((w.OP_CREATE, lambda b: create(b, acl=acl1("world", None)))), w.MARSHALLINGERROR),
        Row("multi.create.acl.id.auth", w.OP_MULTI,
            multi((w.OP_CREATE, lambda b: create(b, acl=acl1("auth", None)))), w.OK,
            check=multi_results((w.OP_CREATE, 0)), auth=True),
        Row("multi.create.acl.id.world-after-failed-op", w.OP_MULTI,
            multi((w.OP_CHECK, lambda b: W().string(b + "-missing").int(-1).bytes()),
                  (w.OP_CREATE, lambda b: create(b, acl=acl1("world", None)))),
            w.OK, check=multi_results((w.OP_ERROR, w.NONODE), (w.OP_ERROR, w.RUNTIMEINCONSISTENCY))),
        Row("multiRead.getData.path-second", w.OP_MULTI_READ,
            multi((w.OP_GET_DATA, lambda b: W().string(NODE).bool(False).bytes()),
                  (w.OP_GET_DATA, lambda b: W().string(None).bool(False).bytes())), w.MARSHALLINGERROR),
        Row("multiRead.getChildren.path", w.OP_MULTI_READ,
            multi((w.OP_GET_CHILDREN, lambda b: W().string(None).bool(False).bytes())), w.MARSHALLINGERROR),
    ]


def reconfig_rows():
    rows = []
    for field in range(3):
        strings = ["", "", ""]
        strings[field] = None

        def body(b, strings=strings):
            return W().string(strings[0]).string(strings[1]).string(strings[2]).long(-1).bytes()

        rows.append(Row(f"reconfig.string{field}", w.OP_RECONFIG, body, w.RECONFIGDISABLED))
    return rows


def auth_rows():
    def auth(scheme, credential):
        return lambda b: W().int(0).string(scheme).buffer(credential).bytes()

    return [
        Row("auth.scheme", w.OP_AUTH, auth(None, b"a:b"), w.AUTHFAILED, xid=w.XID_AUTH, closes=True),
        Row("auth.digest.credential", w.OP_AUTH, auth("digest", None), w.AUTHFAILED, xid=w.XID_AUTH, closes=True),
        Row("auth.ip.credential", w.OP_AUTH, auth("ip", None), w.OK, xid=w.XID_AUTH),
    ]


def restored(events, watched=(), unwatched=()):
    """The events sent before the reply, as (type, path relative to base), and
    the data watches (checkWatches) the restore left."""

    def check(reply, conn, base):
        assert [(e.type, e.path) for e in reply.events_before] == [(t, p.format(base=base)) for t, p in events]
        for p in watched:
            assert conn.check_watches(p.format(base=base), w.WATCHER_DATA) == w.OK, p
        for p in unwatched:
            assert conn.check_watches(p.format(base=base), w.WATCHER_DATA) == w.NOWATCHER, p

    return check


def set_watches_rows():
    """relative zxid 0: NODE has changed since, so a data or child watch on it
    fires at once; {base}-gone does not exist, so an exist watch registers."""

    def lists(*items):
        def body(b):
            out = W().long(0)
            for item in items:
                if isinstance(item, int):
                    out.int(item)
                else:
                    out.strings(None if item is None else [p if p is None else p.format(base=b) for p in item])
            return out.bytes()

        return body

    gone = "{base}-gone"
    data_changed = (w.EVENT_NODE_DATA_CHANGED, NODE)
    children_changed = (w.EVENT_NODE_CHILDREN_CHANGED, NODE)
    sw, sw2, minus8 = w.OP_SET_WATCHES, w.OP_SET_WATCHES2, w.XID_SET_WATCHES
    return [
        Row("setWatches.data", sw, lists(None, [gone], [NODE]), w.MARSHALLINGERROR, xid=minus8,
            check=restored([], unwatched=[gone])),
        Row("setWatches.data.count-2", sw, lists(-2, [gone], [NODE]), w.OK, xid=minus8,
            check=restored([children_changed], watched=[gone])),
        Row("setWatches.exist", sw, lists([NODE], None, [NODE]), w.MARSHALLINGERROR, xid=minus8,
            check=restored([data_changed])),
        Row("setWatches.child", sw, lists([NODE], [gone], None), w.MARSHALLINGERROR, xid=minus8,
            check=restored([data_changed], watched=[gone])),
        Row("setWatches.data.path", sw, lists([NODE, None, gone], [gone], [NODE]), w.MARSHALLINGERROR, xid=minus8,
            check=restored([data_changed], unwatched=[gone])),
        Row("setWatches.exist.path", sw, lists([], [None], [NODE]), w.MARSHALLINGERROR, xid=minus8,
            check=restored([])),
        Row("setWatches2.persistent", sw2, lists([NODE], [], [NODE], None, []), w.MARSHALLINGERROR, xid=minus8,
            check=restored([data_changed, children_changed])),
        Row("setWatches2.recursive", sw2, lists([], [gone], [], [], None), w.MARSHALLINGERROR, xid=minus8,
            check=restored([], watched=[gone])),
        Row("setWatches2.persistent.path", sw2, lists([], [], [], [None], []), w.OK, xid=minus8,
            check=restored([])),
        Row("setWatches2.count-2", sw2, lists(-2, -2, -2, -2, -2), w.OK, xid=minus8, check=restored([])),
    ]


ROWS = create_rows() + path_rows() + set_acl_rows() + multi_rows() + reconfig_rows() + auth_rows() + set_watches_rows()


@pytest.mark.parametrize("row", [row.param() for row in ROWS])
def test_null_in_request_position(server, node, make_wire, row):
    # Proves the server answers a jute null in this request position as
    # ZooKeeper 3.8 does: the error code, and where it matters the body,
    # the ACL stored, the watches restored and whether the connection stays.
    conn = make_wire()
    if row.auth:
        assert conn.auth("digest", ALICE) == w.OK
    base = f"{node}/{row.name}"
    reply = conn.request(row.op, row.body(base), xid=row.xid)
    assert reply.err == row.err, f"answered {reply.err}, ZooKeeper answers {row.err}"
    if row.check is not None:
        row.check(reply, conn, base)
    if row.closes:
        assert conn.wait_closed(), "ZooKeeper closes the connection"
    else:
        assert still_open(conn)


def test_handshake_with_a_null_password_opens_a_session(server):
    # Proves a ConnectRequest whose password is jute's null opens a new session
    # (ZooKeeperServer.createSession replaces a null password).
    c = w.WireClient(server.port)
    try:
        c.send_frame(W().int(0).long(0).int(10000).long(0).buffer(None).bool(False).bytes())
        r = w.Reader(c.read_frame())
        _, timeout, session_id, passwd = r.int(), r.int(), r.long(), r.buffer()
        assert timeout > 0 and session_id != 0 and len(passwd) == 16
        assert still_open(c)
    finally:
        c.close()
