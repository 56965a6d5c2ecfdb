"""ACLs and authentication: world, auth, digest, ip and super; NOAUTH per
permission; INVALIDACL; what getACL reveals; auth (100) and whoAmI (107).

Permission each operation needs (PrepRequestProcessor / FinalRequestProcessor):
create CREATE on the parent, delete DELETE on the parent, setData WRITE,
getData/getChildren/getChildren2/getAllChildrenNumber READ, check READ,
setACL ADMIN, getACL READ or ADMIN (CVE-2019-0201: without ADMIN the digest
hashes are masked as "user:x"), exists READ since ZOOKEEPER-2590 (3.9.2; 3.8
checks nothing). Since ZOOKEEPER-4799 / CVE-2024-23944 (3.9.2) a watch event
is only delivered if the watcher may READ the node (for NodeChildrenChanged:
the parent).
"""

import pytest
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.security import make_digest_acl

import zkwire as w
from conftest import IS_ZK, SUPER_PASSWORD, SUPER_USER, digest


def _auth_wire(make_wire, user, password):
    c = make_wire()
    assert c.auth("digest", f"{user}:{password}".encode()) == w.OK
    return c


# --- auth (100) ----------------------------------------------------------------


def test_auth_digest_success_reply(wire):
    """A digest AuthPacket answers ReplyHeader(xid -4, zxid 0, err 0) with no body."""
    rep = wire.request(w.OP_AUTH, w.auth_body("digest", b"alice:secret"), xid=w.XID_AUTH)
    assert (rep.xid, rep.zxid, rep.err, rep.body) == (-4, 0, 0, b"")
    assert wire.exists("/")[0] == w.OK


def test_auth_bogus_scheme_fails_and_closes(make_wire, wire):
    """An unknown scheme answers AUTHFAILED (-115) and the server closes the
    connection (ZooKeeperServer.processPacket: sendResponse, then closeConn);
    other sessions are unaffected."""
    bad = make_wire()
    rep = bad.request(w.OP_AUTH, w.auth_body("bogus", b"whatever"), xid=w.XID_AUTH)
    assert (rep.xid, rep.err) == (-4, w.AUTHFAILED)
    assert bad.wait_closed(5.0)
    assert wire.exists("/")[0] == w.OK


def test_kazoo_auth_failed(make_kazoo):
    """kazoo sees the bogus scheme as AuthFailedError."""
    client = make_kazoo()
    with pytest.raises(AuthFailedError):
        client.add_auth("bogus", "x")


def test_who_am_i(make_wire):
    """whoAmI (107) lists the connection's identities: its ip and each digest user."""
    c = make_wire()
    err, infos = c.who_am_i()
    assert err == w.OK and infos == [("ip", "127.0.0.1")]
    assert c.auth("digest", b"alice:secret") == w.OK
    assert c.auth("digest", b"bob:pw") == w.OK
    err, infos = c.who_am_i()
    # ZooKeeper keeps a connection's ids in a hash set: the order means nothing
    assert sorted(infos) == [("digest", "alice"), ("digest", "bob"), ("ip", "127.0.0.1")]


def test_who_am_i_super(make_wire):
    """The super digest adds a ("super", "") identity beside the digest one."""
    c = make_wire()
    assert c.auth("digest", f"{SUPER_USER}:{SUPER_PASSWORD}".encode()) == w.OK
    err, infos = c.who_am_i()
    assert err == w.OK
    assert sorted(infos) == [("digest", SUPER_USER), ("ip", "127.0.0.1"), ("super", "")]


# --- permissions ----------------------------------------------------------------


OPS_BY_PERM = {
    w.PERM_READ: ["getData", "getChildren", "getChildren2", "getAllChildrenNumber", "check"],
    w.PERM_WRITE: ["setData"],
    w.PERM_CREATE: ["create"],
    w.PERM_DELETE: ["delete"],
    w.PERM_ADMIN: ["setACL"],
}


def _try(c, op, node):
    if op == "getData":
        return c.get_data(node)[0]
    if op == "getChildren":
        return c.get_children(node)[0]
    if op == "getChildren2":
        return c.get_children2(node)[0]
    if op == "getAllChildrenNumber":
        return c.get_all_children_number(node)[0]
    if op == "check":
        err, results, _ = c.multi([(w.OP_CHECK, w.check_body(node, -1))])
        return err if err else results[0][1]
    if op == "setData":
        return c.set_data(node, b"x")[0]
    if op == "create":
        return c.create(f"{node}/new")[0]
    if op == "delete":
        return c.delete(f"{node}/victim")
    if op == "setACL":
        # keep the same ACL so the node stays usable
        return c.set_acl(node, c.get_acl(node)[1][0])[0]
    raise AssertionError(op)


@pytest.mark.parametrize("perm", [w.PERM_READ, w.PERM_WRITE, w.PERM_CREATE, w.PERM_DELETE, w.PERM_ADMIN])
def test_noauth_per_permission(make_wire, base, perm):
    """With world:anyone granted exactly one permission, exactly the operations needing
    it succeed and every other one answers NOAUTH."""
    owner = make_wire()
    node = f"{base}/n"
    assert owner.create(node)[0] == w.OK
    assert owner.create(f"{node}/victim")[0] == w.OK
    # the ACL is set last; ADMIN stays with world when perm is ADMIN only
    assert owner.set_acl(node, [(perm, "world", "anyone")])[0] == w.OK
    c = make_wire()
    for p, ops in OPS_BY_PERM.items():
        for op in ops:
            if op == "setACL" and p != perm:
                continue  # losing ADMIN is tried last, below
            got = _try(c, op, node)
            expected = w.OK if p == perm else w.NOAUTH
            assert got == expected, f"{op} with only perm {perm}: {got}"
    if perm != w.PERM_ADMIN:
        assert c.set_acl(node, w.OPEN_ACL_UNSAFE)[0] == w.NOAUTH


def test_exists_needs_no_read(make_wire, base):
    """exists on a node without READ for the caller answers the stat, as ZooKeeper 3.8
    does (3.9.2 added a READ check, ZOOKEEPER-2590; lock recipes rely on 3.8's answer)."""
    owner = make_wire()
    assert owner.create(f"{base}/n", acl=[(w.PERM_WRITE, "world", "anyone")])[0] == w.OK
    err, stat = make_wire().exists(f"{base}/n")
    assert err == w.OK and stat is not None
    # a missing node is NONODE for everyone
    assert make_wire().exists(f"{base}/none")[0] == w.NONODE


def test_get_ephemerals_and_sync_need_no_permission(make_wire, base):
    """sync and getEphemerals check no ACL."""
    owner = make_wire()
    assert owner.create(f"{base}/n", acl=[(w.PERM_WRITE, "world", "anyone")])[0] == w.OK
    c = make_wire()
    assert c.request(w.OP_SYNC, w.path_body(f"{base}/n")).err == w.OK
    assert c.get_ephemerals(f"{base}/n")[0] == w.OK


# --- schemes ------------------------------------------------------------------------


def test_digest_acl(make_wire, base):
    """A digest ACL admits exactly the user whose user:password hashes to it."""
    acl = [(w.PERM_ALL, "digest", digest("alice", "secret"))]
    alice = _auth_wire(make_wire, "alice", "secret")
    assert alice.create(f"{base}/d", b"x", acl=acl)[0] == w.OK
    assert alice.get_data(f"{base}/d")[0] == w.OK
    assert make_wire().get_data(f"{base}/d")[0] == w.NOAUTH
    assert _auth_wire(make_wire, "alice", "wrong").get_data(f"{base}/d")[0] == w.NOAUTH
    assert _auth_wire(make_wire, "bob", "secret").get_data(f"{base}/d")[0] == w.NOAUTH
    # auth after connecting works too, and several identities may be added
    late = make_wire()
    assert late.auth("digest", b"bob:x") == w.OK
    assert late.auth("digest", b"alice:secret") == w.OK
    assert late.get_data(f"{base}/d")[0] == w.OK


def test_digest_acl_kazoo(make_kazoo, base):
    """kazoo's make_digest_acl produces the same hash the server checks."""
    owner = make_kazoo(auth_data=[("digest", "carol:pw")])
    owner.create(f"{base}/k", b"v", acl=[make_digest_acl("carol", "pw", all=True)])
    assert owner.get(f"{base}/k")[0] == b"v"
    stranger = make_kazoo()
    with pytest.raises(NoAuthError):
        stranger.get(f"{base}/k")


def test_auth_scheme_acl(make_wire, base):
    """The "auth" scheme stands for every identity the creator authenticated with; the
    stored ACL shows them as digest ids."""
    c = make_wire()
    assert c.auth("digest", b"dave:pw") == w.OK
    assert c.create(f"{base}/a", acl=[(w.PERM_ALL, "auth", "")])[0] == w.OK
    err, (acl, _) = c.get_acl(f"{base}/a")
    assert acl == [(w.PERM_ALL, "digest", digest("dave", "pw"))]
    assert make_wire().get_data(f"{base}/a")[0] == w.NOAUTH
    assert _auth_wire(make_wire, "dave", "pw").get_data(f"{base}/a")[0] == w.OK


def test_auth_scheme_acl_without_auth_is_invalid(wire, base):
    """The "auth" scheme with no authenticated identity is INVALIDACL (the ip identity does not count)."""
    assert wire.create(f"{base}/a", acl=[(w.PERM_ALL, "auth", "")])[0] == w.INVALIDACL


def test_ip_acl(make_wire, base):
    """ip ACLs match the client address, with CIDR masks."""
    owner = make_wire()
    assert owner.create(f"{base}/ip", acl=[(w.PERM_ALL, "ip", "127.0.0.1")])[0] == w.OK
    assert owner.create(f"{base}/cidr", acl=[(w.PERM_ALL, "ip", "127.0.0.0/8")])[0] == w.OK
    assert owner.create(f"{base}/other", acl=[(w.PERM_ALL, "ip", "10.1.2.3")])[0] == w.OK
    assert owner.create(f"{base}/other-net", acl=[(w.PERM_ALL, "ip", "10.0.0.0/8")])[0] == w.OK
    c = make_wire()
    assert c.get_data(f"{base}/ip")[0] == w.OK
    assert c.get_data(f"{base}/cidr")[0] == w.OK
    assert c.get_data(f"{base}/other")[0] == w.NOAUTH
    assert c.get_data(f"{base}/other-net")[0] == w.NOAUTH


def test_super_digest_bypasses_acls(make_wire, base):
    """The super user (DigestAuthenticationProvider.superDigest) passes every ACL check and sees unmasked ACLs."""
    owner = _auth_wire(make_wire, "erin", "pw")
    acl = [(w.PERM_ALL, "digest", digest("erin", "pw"))]
    assert owner.create(f"{base}/s", b"top", acl=acl)[0] == w.OK
    assert owner.create(f"{base}/s/c", acl=acl)[0] == w.OK
    root = _auth_wire(make_wire, SUPER_USER, SUPER_PASSWORD)
    assert root.get_data(f"{base}/s")[1][0] == b"top"
    assert root.set_data(f"{base}/s", b"mine")[0] == w.OK
    err, (got_acl, _) = root.get_acl(f"{base}/s")
    assert got_acl == acl
    assert root.delete(f"{base}/s/c") == w.OK
    assert root.set_acl(f"{base}/s", [(w.PERM_READ, "world", "anyone")])[0] == w.OK
    # a wrong super password is an ordinary digest identity
    assert _auth_wire(make_wire, SUPER_USER, "nope").set_data(f"{base}/s", b"x")[0] == w.NOAUTH


# --- INVALIDACL ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "acl",
    [
        [],
        w.NULL_ACL,
        [(w.PERM_ALL, "nosuchscheme", "x")],
        [(w.PERM_ALL, "world", "somebody")],
        [(w.PERM_ALL, "digest", "no-colon-here")],
        [(w.PERM_ALL, "ip", "300.1.2.3")],
        [(w.PERM_ALL, "ip", "127.0.0.1/99")],
    ],
    ids=["empty", "null", "unknown-scheme", "world-not-anyone", "digest-no-colon", "bad-ip", "bad-mask"],
)
def test_invalid_acl(wire, base, acl):
    """create and setACL refuse malformed ACLs with INVALIDACL and change nothing."""
    assert wire.create(f"{base}/x", acl=acl)[0] == w.INVALIDACL
    assert wire.exists(f"{base}/x")[0] == w.NONODE
    assert wire.create(f"{base}/y")[0] == w.OK
    assert wire.set_acl(f"{base}/y", acl)[0] == w.INVALIDACL
    assert wire.get_acl(f"{base}/y")[1][0] == w.OPEN_ACL_UNSAFE


def test_invalid_acl_checked_before_parent(wire, base):
    """fixupACL runs before the parent lookup: a bad ACL under a missing parent is INVALIDACL, not NONODE."""
    assert wire.create(f"{base}/missing/x", acl=[])[0] == w.INVALIDACL


def test_duplicate_acl_entries_are_collapsed(wire, base):
    """Identical ACL entries are stored once (PrepRequestProcessor.removeDuplicates)."""
    acl = [(w.PERM_ALL, "world", "anyone"), (w.PERM_ALL, "world", "anyone")]
    assert wire.create(f"{base}/dup", acl=acl)[0] == w.OK
    assert wire.get_acl(f"{base}/dup")[1][0] == [(w.PERM_ALL, "world", "anyone")]


# --- getACL disclosure (CVE-2019-0201) ----------------------------------------------


def test_get_acl_needs_read_or_admin(make_wire, base):
    """getACL without READ and without ADMIN is NOAUTH."""
    owner = make_wire()
    assert owner.create(f"{base}/g", acl=[(w.PERM_WRITE | w.PERM_CREATE, "world", "anyone")])[0] == w.OK
    assert make_wire().get_acl(f"{base}/g")[0] == w.NOAUTH


def test_get_acl_masks_digests_without_admin(make_wire, base):
    """A caller with READ but not ADMIN sees digest ids as "user:x"; one with ADMIN sees the hash."""
    owner = _auth_wire(make_wire, "frank", "pw")
    acl = [(w.PERM_READ, "world", "anyone"), (w.PERM_ALL, "digest", digest("frank", "pw")),
           (w.PERM_READ, "ip", "127.0.0.1")]
    assert owner.create(f"{base}/m", acl=acl)[0] == w.OK
    err, (seen, stat) = make_wire().get_acl(f"{base}/m")
    assert err == w.OK
    assert seen == [(w.PERM_READ, "world", "anyone"), (w.PERM_ALL, "digest", "frank:x"),
                    (w.PERM_READ, "ip", "127.0.0.1")]
    assert stat.aversion == 0
    err, (seen, _) = owner.get_acl(f"{base}/m")
    assert seen == acl


def test_get_acl_with_admin_only(make_wire, base):
    """ADMIN alone is enough for getACL, and shows the hashes."""
    admin = _auth_wire(make_wire, "gina", "pw")
    acl = [(w.PERM_ADMIN, "digest", digest("gina", "pw")), (w.PERM_ALL, "digest", digest("hank", "pw"))]
    assert admin.create(f"{base}/a", acl=acl)[0] == w.OK
    err, (seen, _) = admin.get_acl(f"{base}/a")
    assert err == w.OK and seen == acl


# --- event delivery filtered by READ (CVE-2024-23944) --------------------------------


def test_events_filtered_by_read_permission(make_wire, base):
    """A watcher without READ on a node gets no event for it: a persistent-recursive
    watch on the parent and an exists watch on the node both stay silent when the node
    is created with a digest-only ACL (ZOOKEEPER-4799 / CVE-2024-23944, 3.9.2; Debian's
    3.8.0-11+deb12u2 backports the fix, so both targets agree)."""
    watcher = make_wire()
    writer = _auth_wire(make_wire, "ivy", "pw")
    assert watcher.add_watch(base, w.ADD_WATCH_PERSISTENT_RECURSIVE) == w.OK
    assert watcher.exists(f"{base}/secret", watch=True)[0] == w.NONODE
    secret_acl = [(w.PERM_ALL, "digest", digest("ivy", "pw"))]
    assert writer.create(f"{base}/secret", acl=secret_acl)[0] == w.OK
    assert writer.create(f"{base}/public")[0] == w.OK
    # events come in zxid order, so the secret's would come first; the barrier
    # then shows nothing else was sent for either write
    ev = watcher.wait_event()
    assert (ev.type, ev.path) == (w.EVENT_NODE_CREATED, f"{base}/public")
    assert watcher.no_event()
    assert [(e.type, e.path) for e in watcher.events] == [(w.EVENT_NODE_CREATED, f"{base}/public")]
