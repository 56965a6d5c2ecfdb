"""zkCli.sh from Debian's zookeeper package (3.8) against the server.

zkCli runs one command when given one on its command line, or reads commands
from standard input when it has none (JLine is disabled without a terminal),
which lets a test keep one session across addauth, create -e and
getEphemerals. zkCli prints results on stdout and some confirmations
("Created /x") and errors ("Node does not exist: /x") on stderr, so both are
checked, with the SLF4J start-up noise removed. The same commands run
through a follower and an observer of an ensemble (test_ensemble.Ensemble).
"""

import re
import subprocess

import pytest

from conftest import digest, require_files, wait_until
from test_ensemble import Ensemble, kazoo

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"


@pytest.fixture(autouse=True)
def _zkcli_installed():
    require_files(ZKCLI)


def zkcli(server, *args, script=None):
    """Runs zkCli.sh against the server; returns (exit code, output without SLF4J noise)."""
    cmd = [ZKCLI, "-server", server.hosts, *args]
    result = subprocess.run(cmd, input=script if script is not None else "", capture_output=True, text=True,
                            timeout=60)
    lines = [l for l in (result.stdout + "\n" + result.stderr).splitlines() if not l.startswith("SLF4J")]
    return result.returncode, "\n".join(lines)


def _stat(text):
    return dict(re.findall(r"^(\w+) = (.*)$", text, re.M))


def test_create_get_set_stat(server, base):
    """create, get, set, stat and get -s show data and the stat fields by ZooKeeper's names."""
    rc, out = zkcli(server, "create", f"{base}/n", "hello")
    assert rc == 0 and f"Created {base}/n" in out
    rc, out = zkcli(server, "get", f"{base}/n")
    assert rc == 0 and "\nhello" in out
    rc, out = zkcli(server, "set", f"{base}/n", "world")
    assert rc == 0
    rc, out = zkcli(server, "get", "-s", f"{base}/n")
    assert "\nworld" in out
    stat = _stat(out)
    assert stat["dataVersion"] == "1" and stat["dataLength"] == "5"
    assert stat["ephemeralOwner"] == "0x0" and stat["numChildren"] == "0"
    assert int(stat["mZxid"], 16) > int(stat["cZxid"], 16) == int(stat["pZxid"], 16)
    rc, out = zkcli(server, "stat", f"{base}/n")
    assert _stat(out) == stat


def test_ls(server, zk, base):
    """ls lists children, ls -s adds the stat, ls -R walks the subtree."""
    for p in ("a", "b", "a/c"):
        zk.create(f"{base}/{p}")
    rc, out = zkcli(server, "ls", base)
    listed = re.search(r"^\[(.*)\]$", out, re.M).group(1)
    assert sorted(listed.split(", ")) == ["a", "b"]
    rc, out = zkcli(server, "ls", "-s", base)
    assert _stat(out)["numChildren"] == "2"
    rc, out = zkcli(server, "ls", "-R", base)
    assert {base, f"{base}/a", f"{base}/b", f"{base}/a/c"} <= set(out.splitlines())


def test_errors(server, zk, base):
    """Missing and existing nodes are reported with ZooKeeper's messages."""
    rc, out = zkcli(server, "get", f"{base}/missing")
    assert f"Node does not exist: {base}/missing" in out
    zk.create(f"{base}/here")
    rc, out = zkcli(server, "create", f"{base}/here")
    assert f"Node already exists: {base}/here" in out
    rc, out = zkcli(server, "delete", "-v", "5", f"{base}/here")
    assert "version No is not valid" in out
    zk.create(f"{base}/here/kid")
    rc, out = zkcli(server, "delete", f"{base}/here")
    assert f"Node not empty: {base}/here" in out


def test_delete_and_deleteall(server, zk, base):
    """delete removes a leaf; deleteall removes a subtree."""
    zk.create(f"{base}/leaf")
    zk.create(f"{base}/tree/x/y", makepath=True)
    zkcli(server, "delete", f"{base}/leaf")
    assert zk.exists(f"{base}/leaf") is None
    zkcli(server, "deleteall", f"{base}/tree")
    assert zk.exists(f"{base}/tree") is None


def test_create_modes(server, zk, base):
    """create -s, -e, -c and -t make sequential, ephemeral, container and TTL nodes."""
    rc, out = zkcli(server, "create", "-s", f"{base}/seq-", "d")
    assert f"Created {base}/seq-0000000000" in out
    rc, out = zkcli(server, "create", "-e", f"{base}/eph", "d")
    assert f"Created {base}/eph" in out
    # one-command zkCli exits without closing its session, so the ephemeral
    # stays until that session expires; it is owned by a session all the same
    assert zk.exists(f"{base}/eph").ephemeralOwner != 0
    rc, out = zkcli(server, "create", "-c", f"{base}/ctr")
    assert f"Created {base}/ctr" in out
    rc, out = zkcli(server, "create", "-t", "100000", f"{base}/ttl")
    assert f"Created {base}/ttl" in out
    # neither kind shows an owner to clients
    assert zk.exists(f"{base}/ctr").ephemeralOwner == 0
    assert zk.exists(f"{base}/ttl").ephemeralOwner == 0
    rc, out = zkcli(server, "create", "-e", "-s", f"{base}/es-")
    assert f"Created {base}/es-0000000004" in out


def test_get_and_set_acl(server, zk, base):
    """getAcl prints 'scheme,'id and : perms; setAcl changes it."""
    zk.create(f"{base}/acl")
    rc, out = zkcli(server, "getAcl", f"{base}/acl")
    assert "'world,'anyone\n: cdrwa" in out
    zkcli(server, "setAcl", f"{base}/acl", "world:anyone:rw")
    rc, out = zkcli(server, "getAcl", f"{base}/acl")
    assert "'world,'anyone\n: rw" in out
    rc, out = zkcli(server, "getAcl", "-s", f"{base}/acl")
    assert _stat(out)["aclVersion"] == "1"


def test_addauth_and_auth_acl(server, base):
    """addauth digest, then create with the auth scheme: getAcl shows the digest id,
    whoami shows the user, and a session without the auth is refused."""
    script = (f"addauth digest zoe:pw\ncreate {base}/mine d auth::cdrwa\ngetAcl {base}/mine\n"
              f"whoami\nget {base}/mine\nquit\n")
    rc, out = zkcli(server, script=script)
    assert f"'digest,'{digest('zoe', 'pw')}\n: cdrwa" in out
    assert re.search(r"^digest: zoe$", out, re.M)
    assert re.search(r"^d$", out, re.M)
    rc, out = zkcli(server, "get", f"{base}/mine")
    assert f"Insufficient permission : {base}/mine" in out


def test_whoami(server):
    """whoami without auth lists the ip identity."""
    rc, out = zkcli(server, "whoami")
    assert "Auth scheme: User" in out and re.search(r"^ip: 127\.0\.0\.1$", out, re.M)


def test_get_ephemerals_and_all_children_number(server, zk, base):
    """getEphemerals lists the session's own ephemerals; getAllChildrenNumber counts descendants."""
    script = (f"create -e {base}/e1\ncreate {base}/p\ncreate -e {base}/p/e2\ngetEphemerals {base}\n"
              f"getAllChildrenNumber {base}\nquit\n")
    rc, out = zkcli(server, script=script)
    listed = re.search(r"^\[(/.*)\]$", out, re.M).group(1)
    assert sorted(listed.split(", ")) == [f"{base}/e1", f"{base}/p/e2"]
    assert re.search(r"^3$", out, re.M)


def test_add_watch_prints_events(server, base):
    """addWatch (persistent recursive by default) prints WATCHER events for descendants."""
    script = f"addWatch {base}\ncreate {base}/w1 x\nset {base}/w1 y\nsync {base}\nquit\n"
    rc, out = zkcli(server, script=script)
    assert f"WatchedEvent state:SyncConnected type:NodeCreated path:{base}/w1" in out
    assert f"WatchedEvent state:SyncConnected type:NodeDataChanged path:{base}/w1" in out


def test_get_with_watch(server, base):
    """get -w leaves a one-shot watch that fires on the session's own set."""
    script = f"create {base}/g a\nget -w {base}/g\nset {base}/g b\nsync {base}\nquit\n"
    rc, out = zkcli(server, script=script)
    assert f"type:NodeDataChanged path:{base}/g" in out


def _gone_after_sync(client, path):
    client.sync(path)
    return client.exists(path) is None


@pytest.mark.fresh
@pytest.mark.deadline(120)
def test_on_a_follower_and_an_observer():
    """zkCli.sh through a follower and through an observer of an ensemble
    (two participants and an observer): create, set, get, ls and create -e in
    one session; the writes are read back from every server, and the
    ephemeral, owned by that session, goes everywhere once zkCli quits."""
    ens = Ensemble(participants=2, observers=1).start()
    clients = []
    try:
        follower = next(m for m in ens.members.values() if m.mode() == "follower")
        observer = ens.members[3]
        assert observer.mode() == "observer"
        clients = [kazoo(m.hosts) for m in ens.members.values()]
        for member in (follower, observer):
            node = f"/cli-{member.mode()}"
            script = (f"create {node} one\nset {node} two\nget {node}\nls /\ncreate -e {node}/eph e\n"
                      f"stat {node}/eph\nquit\n")
            rc, out = zkcli(member, script=script)
            assert re.search(rf"^Created {node}$", out, re.M) and f"Created {node}/eph" in out, out
            assert re.search(r"^two$", out, re.M), out
            listed = re.search(r"^\[(.*)\]$", out, re.M).group(1).split(", ")
            assert node[1:] in listed and "zookeeper" in listed, out
            owner = int(_stat(out)["ephemeralOwner"], 16)
            assert owner != 0, out
            for client in clients:
                client.sync("/")
                assert client.get(node)[0] == b"two"
                wait_until(lambda c=client, path=f"{node}/eph": _gone_after_sync(c, path), timeout=10,
                           message=f"{node}/eph to go with the zkCli session")
    finally:
        for client in clients:
            client.stop()
        ens.stop()
