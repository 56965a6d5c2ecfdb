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

Rows whose ferrokeeper answer needs the engine to use proto's
`Request::decode_with_nulls` and tree's `*_with_nulls` functions are marked
xfail(strict) for ferrokeeper with the reason.
"""

import pytest

import zkwire as w
from conftest import IS_FK, digest

W = w.Writer

# A node every row may read; created once per module.
NODE = "/null-strings"


def fk_xfail(reason):
    """Expected to fail against ferrokeeper until the engine change named in reason."""
    return pytest.mark.xfail(IS_FK, reason=reason, strict=True)


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


ENGINE_AUTH = "engine on_auth must ask tree::acl::authenticate (any digest credential is accepted)"


@fk_xfail(ENGINE_AUTH)
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
