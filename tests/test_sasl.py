"""SASL DIGEST-MD5 authentication (opcode 102), configured as ZooKeeper is:
a JAAS file (`-Djava.security.auth.login.config`, a zoo.cfg key for
ferrokeeper) whose `Server` section lists `user_<name>="<password>"`, and
`authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider`
for `sasl` ACLs. kazoo (with pure-sasl) negotiates DIGEST-MD5 right after
the handshake; kazoo's own test_sasl.py is reproduced first, then the wire
form of the exchange and what ZooKeeper does around it.
"""

import os
import re
import time

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import AuthFailedError, NoAuthError
from kazoo.protocol.states import KeeperState
from kazoo.retry import KazooRetry
from kazoo.security import make_acl

import zkwire as w
from conftest import IS_FK, Server

try:
    import puresasl  # noqa: F401  kazoo's SASL client; without it kazoo cannot try
except ImportError:
    # Fail, not skip: a skipped SASL test would pass for proof.
    pytest.fail("pure-sasl is missing: run tests/prereqs.sh install", pytrace=False)

USER = "jaasuser"
PASSWORD = "jaas_password"
ADMIN = "admin"
ADMIN_PASSWORD = "admin_secret"
# kazoo's harness's JAAS section, plus a user that is zookeeper.superUser.
JAAS = f"""
Server {{
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="super_secret"
    user_{USER}="{PASSWORD}"
    user_{ADMIN}="{ADMIN_PASSWORD}";
}};
"""
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


@pytest.fixture(scope="module")
def sasl_server(tmp_path_factory):
    jaas = tmp_path_factory.mktemp("jaas") / "jaas.conf"
    jaas.write_text(JAAS)
    srv = Server({
        "authProvider.1": SASL_PROVIDER,
        "java.security.auth.login.config": str(jaas),
        "superUser": ADMIN,
    }).start()
    yield srv
    srv.cleanup()


@pytest.fixture
def clients():
    made = []

    def make(srv, chroot="", **kw):
        client = KazooClient(hosts=srv.hosts + chroot, timeout=10.0,
                             connection_retry=KazooRetry(max_tries=2, delay=0.1, max_delay=0.2),
                             command_retry=None, **kw)
        made.append(client)
        return client

    yield make
    for client in made:
        try:
            client.stop()
            client.close()
        except Exception:
            pass


def sasl_options(user, password):
    return {"mechanism": "DIGEST-MD5", "username": user, "password": password}


def unique(request):
    return f"/sasl-{request.node.name}-{os.getpid()}"


# --- kazoo, as its own test_sasl.py ----------------------------------------------


@pytest.mark.parametrize("legacy", [False, True], ids=["sasl_options", "auth_data"])
def test_kazoo_connects_and_a_sasl_acl_keeps_others_out(sasl_server, clients, request, legacy):
    """kazoo authenticates with sasl_options (or the deprecated auth_data
    ("sasl", "user:password"), which kazoo turns into the same DIGEST-MD5
    exchange), creates a node only sasl:jaasuser may touch; a session without
    SASL gets NOAUTH, the owner reads it."""
    if legacy:
        owner = clients(sasl_server, auth_data=[("sasl", f"{USER}:{PASSWORD}")])
    else:
        owner = clients(sasl_server, sasl_options=sasl_options(USER, PASSWORD))
    owner.start(timeout=10)
    path = unique(request)
    owner.create(path, b"secret", acl=[make_acl("sasl", USER, all=True)])
    assert owner.get(path)[0] == b"secret"
    assert owner.get_acls(path)[0][0].id.scheme == "sasl"

    anonymous = clients(sasl_server)
    anonymous.start(timeout=10)
    with pytest.raises(NoAuthError):
        anonymous.get(path)
    with pytest.raises(NoAuthError):
        anonymous.set(path, b"mine")
    owner.delete(path)


@pytest.mark.parametrize("user,password", [(USER, "wrong_password"), ("baduser", "badpassword")],
                         ids=["wrong_password", "unknown_user"])
def test_failed_sasl_is_auth_failed(sasl_server, clients, user, password):
    """A wrong password or an unknown user: the server answers AUTHFAILED and
    closes the connection; kazoo's connection reaches AUTH_FAILED and stops
    (no reconnect: only CLOSED follows).

    kazoo's own test calls start() and expects AuthFailedError from its chroot
    check, but kazoo reports CONNECTED before it starts SASL, so whether
    start() gets that far or reports a time-out (the failure has already
    cleared the connected flag when start()'s thread wakes) depends on which
    of kazoo's threads runs first; it failed here the second way. AUTH_FAILED
    itself lasts an instant (CLOSED follows), so the states kazoo's
    connection reports are recorded as they happen."""
    client = clients(sasl_server, sasl_options=sasl_options(user, password))
    seen = []
    report = client._session_callback

    def record(state):
        seen.append(state)
        return report(state)

    client._session_callback = record  # kazoo's connection reports states through it
    client.start_async()
    deadline = time.monotonic() + 10
    while KeeperState.CLOSED not in seen:
        assert time.monotonic() < deadline, f"kazoo's connection reported {seen}, never AUTH_FAILED then CLOSED"
        time.sleep(0.01)
    assert KeeperState.AUTH_FAILED in seen, seen
    assert seen[seen.index(KeeperState.AUTH_FAILED):] == [KeeperState.AUTH_FAILED, KeeperState.CLOSED], seen


def test_super_user_passes_every_acl(sasl_server, clients, request):
    """zookeeper.superUser (superUser in zoo.cfg): that SASL user is also super."""
    owner = clients(sasl_server, sasl_options=sasl_options(USER, PASSWORD))
    owner.start(timeout=10)
    path = unique(request)
    owner.create(path, b"x", acl=[make_acl("sasl", USER, all=True)])
    admin = clients(sasl_server, sasl_options=sasl_options(ADMIN, ADMIN_PASSWORD))
    admin.start(timeout=10)
    assert admin.get(path)[0] == b"x"
    admin.delete(path)


def test_auth_acl_expands_to_the_sasl_identity(sasl_server, clients, request):
    """The `auth` scheme becomes sasl:<user> (SASLAuthenticationProvider.isAuthenticated)."""
    owner = clients(sasl_server, sasl_options=sasl_options(USER, PASSWORD))
    owner.start(timeout=10)
    path = unique(request)
    owner.create(path, b"x", acl=[make_acl("auth", "", all=True)])
    acl = owner.get_acls(path)[0]
    assert [(a.id.scheme, a.id.id) for a in acl] == [("sasl", USER)]
    owner.delete(path)


# --- the wire --------------------------------------------------------------------


def test_wire_challenge_then_garbage_is_authfailed_and_close(sasl_server):
    """The first (empty) token gets ReplyHeader(xid, zxid 0, OK) and a
    SetSASLResponse holding the DIGEST-MD5 challenge in the zk-sasl-md5
    realm; a response that does not parse gets AUTHFAILED with a null token,
    then the connection closes."""
    c = w.connected(sasl_server.port)
    try:
        rep = c.request(w.OP_SASL, w.Writer().buffer(b"").bytes(), xid=1)
        assert (rep.xid, rep.zxid, rep.err) == (1, 0, w.OK)
        challenge = rep.reader().buffer().decode()
        # The JDK's wording: no qop directive (auth, the RFC's default).
        assert re.fullmatch(r'realm="zk-sasl-md5",nonce="[^"\\]{16,}",charset=utf-8,algorithm=md5-sess',
                            challenge), challenge
        rep = c.request(w.OP_SASL, w.Writer().buffer(b"not a digest response").bytes(), xid=2)
        assert (rep.xid, rep.zxid, rep.err) == (2, 0, w.AUTHFAILED)
        assert rep.body == (-1).to_bytes(4, "big", signed=True), "a null token follows the error"
        assert c.wait_closed()
    finally:
        c.close()


def test_wire_without_jaas_answers_ok_with_a_null_token(server):
    """With no JAAS Server section there is no SASL server on the connection:
    ZooKeeper answers OK with a null token (and keeps the connection)."""
    c = w.connected(server.port)
    try:
        rep = c.request(w.OP_SASL, w.Writer().buffer(b"").bytes(), xid=5)
        assert (rep.xid, rep.zxid, rep.err) == (5, 0, w.OK)
        assert rep.reader().buffer() is None
        assert c.exists("/")[0] == w.OK
    finally:
        c.close()


def test_a_jaas_file_that_does_not_parse_stops_the_start(tmp_path):
    """An unreadable JAAS file: ZooKeeper refuses to start (configureSaslLogin),
    and so does ferrokeeper, naming the file."""
    jaas = tmp_path / "jaas.conf"
    jaas.write_text('Server {\n    org.apache.zookeeper.server.auth.DigestLoginModule required\n'
                    '    user_a="x"\n}\n')
    srv = Server({"authProvider.1": SASL_PROVIDER, "java.security.auth.login.config": str(jaas)})
    try:
        with pytest.raises(RuntimeError):
            srv.start()
        if IS_FK:
            assert "JAAS login configuration" in srv.log_text()
            assert str(jaas) in srv.log_text()
    finally:
        srv.cleanup()
