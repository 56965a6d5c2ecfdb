"""Real processes, real faults: a 3-server ensemble of the real binary
(ferrokeeper, or Apache ZooKeeper 3.8 with FK_TARGET=zookeeper), each
server in a network namespace of its own (tests/netns.py), while kazoo
clients write and read concurrently and a seeded nemesis kills servers
with SIGKILL (one, the leader, or all three at once) and restarts them,
isolates the leader, splits one server from the other two, drops one
direction of a link, and drops a share of a server's packets at random
(nftables `numgen random`). Every op is recorded (tests/kazoo_history.py)
and the history is judged by the simulator's own checkers, `fk-sim
check-history` (sim/src/history_file.rs): replies in request order per
session, writes linearizable in zxid order, each session's reads in its
own order and each answer the model's, and the final tree (read from every
server once all is healed; all three must agree) equal to what the writes
leave — no acknowledged write lost, none told it failed applied.

The workload: plain creates of unique nodes, and multis that create
sequential nodes, create, setData (with versions, often stale), delete and
check six shared keys, each multi also creating a receipt node; plain
create, setData and delete of a node each client owns (see
`Client.owned`); getData, exists, getChildren and sync; and bursts, a
write and reads of its key pipelined on one session. A write whose reply
never came is placed (or found never to have happened) by its receipt or
by what the final tree shows of its owned node.

ZooKeeper passing the same checker shows the checker expects what
ZooKeeper does.

The seed is printed (FK_NETNS_SEED=... replays the same fault schedule and
workload choices; timing is real, so a replay is close, not bit for bit).
FK_NETNS_SECONDS sets how long the nemesis runs (default 30). The history,
the fault log and every server's log stay in the test's directory when the
test fails (or with FK_KEEP_TMP).
"""

import os
import random
import shutil
import subprocess
import tempfile
import threading
import time

import pytest
from kazoo.client import KazooClient
from kazoo.retry import KazooRetry

import netns
import zkwire
from conftest import IS_FK, IS_ZK, REPO, TARGET, Server, _live_processes
from kazoo_history import History

pytestmark = pytest.mark.fresh

ROOT = "/netns"
KEYS = [f"{ROOT}/k/k{i}" for i in range(6)]
CLIENTS = 4
NEMESIS_S = float(os.environ.get("FK_NETNS_SECONDS", "30"))
# Each client's mean pause between ops: the history stays a few thousand
# ops, which the checker (replaying the model once per op) judges in seconds.
OPS_PER_CLIENT_PER_S = 40
OP_TIMEOUT_S = 15
SESSION_TIMEOUT_S = 6
FK_SIM = os.environ.get("FK_SIM_BIN")


@pytest.fixture(scope="module")
def fk_sim():
    """The fk-sim binary: $FK_SIM_BIN, or built here (a debug build, as
    `cargo test` leaves it; quick when it is up to date)."""
    if FK_SIM:
        return FK_SIM
    done = subprocess.run(["cargo", "build", "-q", "-p", "sim", "--bin", "fk-sim"], cwd=REPO,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, f"cargo build -p sim failed:\n{done.stderr[-3000:]}"
    return os.path.join(REPO, "target", "debug", "fk-sim")


@pytest.fixture
def net():
    reason = netns.unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    if shutil.which("nft") is None:
        pytest.fail("nft (nftables) is not installed: run tests/prereqs.sh install (as root)", pytrace=False)
    network = netns.Net(server_ids=(1, 2, 3))
    try:
        yield network.up()
    finally:
        network.down()


class NsMember(Server):
    """One server of the ensemble, in its own namespace, on port 2181 of its
    own address."""

    def __init__(self, sid, net, servers):
        super().__init__()
        self.sid = sid
        self.net = net
        self.host = net.address(sid)
        self.port = 2181
        self.hosts = f"{self.host}:{self.port}"
        self.config.update(servers)
        self.config.update({"clientPort": "2181", "clientPortAddress": self.host, "initLimit": "10",
                            "syncLimit": "5", "ferrokeeper.cores": "1"})
        os.makedirs(self.config["dataDir"], exist_ok=True)
        with open(os.path.join(self.config["dataDir"], "myid"), "w") as f:
            f.write(f"{sid}\n")

    def launch(self):
        cfg_path = self._write_config()
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== launch at {time.strftime('%H:%M:%S')}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(self.net.exec_prefix(self.sid) + self._command(cfg_path),
                                         stdout=log, stderr=log, stdin=subprocess.DEVNULL, cwd=self.dir,
                                         start_new_session=True)
        _live_processes.append(self.proc)

    def mode(self):
        """srvr's Mode at the member's namespace address (None while not
        serving or not answering)."""
        return zkwire.mode(self.port, host=self.host)


class Ensemble:
    def __init__(self, net):
        servers = {f"server.{sid}": f"{net.address(sid)}:2888:3888" for sid in net.server_ids}
        self.members = {sid: NsMember(sid, net, servers) for sid in net.server_ids}

    def hosts(self):
        return ",".join(m.hosts for m in self.members.values())

    def up(self):
        return [m for m in self.members.values() if m.alive()]

    def modes(self):
        return {m.sid: m.mode() for m in self.up()}

    def leader(self):
        return next((sid for sid, mode in self.modes().items() if mode == "leader"), None)

    def wait_settled(self, timeout):
        """Every server up, serving, and exactly one leading."""
        deadline = time.monotonic() + timeout
        modes = {}
        while time.monotonic() < deadline:
            modes = self.modes()
            if len(modes) == len(self.members) and sorted(map(str, modes.values())) == ["follower", "follower", "leader"]:
                return
            time.sleep(0.1)
        raise AssertionError(f"the ensemble did not settle within {timeout}s: {modes}\n{self.log_tails()}")

    def log_tails(self, lines=25):
        return "\n".join(f"--- server {m.sid}\n{m.log_tail(lines)}" for m in self.members.values())

    def stop(self, keep):
        for member in self.members.values():
            member.stop()
            if not keep:
                shutil.rmtree(member.dir, ignore_errors=True)


def kazoo(hosts):
    return KazooClient(hosts=hosts, timeout=SESSION_TIMEOUT_S,
                       connection_retry=KazooRetry(max_tries=-1, delay=0.05, max_delay=0.5), command_retry=None)


class Nemesis:
    """Seeded faults, one or two at a time, each held for a while and then
    healed; every fault is logged with its time."""

    def __init__(self, net, ensemble, rng, started):
        self.net = net
        self.ensemble = ensemble
        self.rng = rng
        self.started = started
        self.log = []
        self.killed = set()
        self.active = 0

    def note(self, what):
        self.log.append(f"{time.monotonic() - self.started:6.2f}s {what}")

    def others(self, sid):
        return [s for s in self.ensemble.members if s != sid]

    def isolate(self, sid, why):
        for peer in self.others(sid):
            self.net.cut(sid, peer)
        self.note(f"isolate s{sid} from its peers ({why})")

    def inject(self):
        members = sorted(self.ensemble.members)
        kind = self.rng.choices(["isolate-leader", "split", "one-way", "lossy", "kill", "kill-leader", "kill-all"],
                                weights=[20, 15, 15, 15, 20, 15, 5])[0]
        if kind.startswith("kill") and self.killed:
            kind = "split"
        if kind == "kill-all":
            # Every disk recovers at once: nothing acknowledged may be missing.
            for sid in members:
                self.ensemble.members[sid].stop()
                self.killed.add(sid)
            self.note("SIGKILL every server")
            self.active += 1
            return
        if kind in ("isolate-leader", "kill-leader"):
            sid = self.ensemble.leader()
            if sid is None:
                self.note(f"{kind}: no leader right now")
                return
        else:
            sid = self.rng.choice(members)
        if kind == "isolate-leader":
            self.isolate(sid, "the leader")
        elif kind == "split":
            self.isolate(sid, "1|2 split")
        elif kind == "one-way":
            peer = self.rng.choice(self.others(sid))
            self.net.cut(sid, peer, inbound=False)
            self.note(f"drop s{sid} -> s{peer} (one way)")
        elif kind == "lossy":
            percent = self.rng.choice([10, 20, 30, 50])
            self.net.lossy(sid, percent)
            self.note(f"drop {percent}% of what s{sid} receives, at random")
        else:
            self.ensemble.members[sid].stop()
            self.killed.add(sid)
            self.note(f"SIGKILL s{sid}" + (" (the leader)" if kind == "kill-leader" else ""))
        self.active += 1

    def heal(self):
        self.net.heal()
        for sid in sorted(self.killed):
            self.ensemble.members[sid].launch()
        self.note("heal: flush rules" + "".join(f", restart s{sid}" for sid in sorted(self.killed)))
        self.killed.clear()
        self.active = 0

    def run(self, seconds, stop):
        """Injects faults until `seconds` have passed. The hold times are
        the schedule itself (how long a fault lasts), not waits for a
        condition."""
        deadline = self.started + seconds
        while time.monotonic() < deadline and not stop.is_set():
            if self.active and (self.active >= 2 or self.rng.random() < 0.6):
                self.heal()
                stop.wait(self.rng.uniform(0.3, 1.5))
            self.inject()
            stop.wait(self.rng.uniform(1.0, 4.0))
        self.heal()


class Client:
    """One kazoo client running a seeded mix of writes and reads, each
    recorded; every write leaves a receipt (a znode only it creates) or
    names evidence (see `owned`)."""

    def __init__(self, index, hosts, history, seed, stop):
        self.index = index
        self.history = history
        self.rng = random.Random(seed)
        self.stop = stop
        self.zk = kazoo(hosts)
        history.attach(self.zk)
        self.versions = {}
        self.created = []
        self.n = 0
        self.generation = 0
        self.clients = [self]
        self.parent_made = False
        self.owned_version = None
        self.thread = threading.Thread(target=self.loop, daemon=True, name=f"client-{index}")
        self.error = None

    def token(self):
        self.n += 1
        return f"{self.index}-{self.n}"

    def op(self, op, receipt, issue, evidence=None):
        return self.history.run(self.zk, self.index, op, receipt, issue, OP_TIMEOUT_S, evidence)

    def owned(self, token):
        """Plain create, setData and delete of a node only this client
        touches, `<ROOT>/p/<client>-<generation>/x`. A write without a reply
        ends the generation (the node is touched no more), so the final
        tree shows whether it took effect: the evidence it names."""
        zk, parent = self.zk, f"{ROOT}/p/{self.index}-{self.generation}"
        x = f"{parent}/x"
        if self.owned_version is None and not self.parent_made:
            record, value = self.op({"kind": "create", "path": parent, "data": "", "mode": 0}, parent,
                                    lambda: zk.create_async(parent, b""))
            self.parent_made = value is not None
        elif self.owned_version is None:
            record, value = self.op({"kind": "create", "path": x, "data": token, "mode": 0}, None,
                                    lambda: zk.create_async(x, token.encode()), {"kind": "created", "path": x})
            if value is not None:
                self.owned_version = 0
        elif self.rng.random() < 0.75:
            version = self.rng.choice([self.owned_version] * 6 + [-1, self.owned_version + 1])
            record, value = self.op({"kind": "set_data", "path": x, "data": token, "version": version}, None,
                                    lambda: zk.set_async(x, token.encode(), version), {"kind": "data", "path": x})
            if value is not None:
                self.owned_version = value.version
        else:
            version = self.rng.choice([self.owned_version] * 4 + [-1, self.owned_version + 1])
            record, value = self.op({"kind": "delete", "path": x, "version": version}, None,
                                    lambda: zk.delete_async(x, version), {"kind": "deleted", "path": x})
            if value is not None:
                self.next_generation()
        if record.outcome is None:
            self.next_generation()

    def next_generation(self):
        self.generation += 1
        self.parent_made = False
        self.owned_version = None

    def multi(self, ops, token):
        """`ops` plus the receipt's create, as one multi."""
        record, value = self.history.finish(self.start_multi(ops, token), OP_TIMEOUT_S)
        self.learn(record.op["ops"], value)
        return record

    def start_multi(self, ops, token):
        receipt = f"{ROOT}/r/{token}"
        ops = ops + [{"kind": "create", "path": receipt, "data": "", "mode": 0}]

        def issue():
            tx = self.zk.transaction()
            for op in ops:
                if op["kind"] == "create":
                    tx.create(op["path"], op["data"].encode(), sequence=op["mode"] == 2)
                elif op["kind"] == "delete":
                    tx.delete(op["path"], version=op["version"])
                elif op["kind"] == "set_data":
                    tx.set_data(op["path"], op["data"].encode(), version=op["version"])
                else:
                    tx.check(op["path"], op["version"])
            return tx.commit_async()

        return self.history.start(self.zk, self.index, {"kind": "multi", "ops": ops}, receipt, issue)

    def learn(self, ops, value):
        """The versions of the shared keys a successful multi tells."""
        if value is not None and all(not isinstance(r, Exception) for r in value):
            for sub, result in zip(ops, value):
                if sub["kind"] == "set_data":
                    self.versions[sub["path"]] = result.version
                elif sub["kind"] == "delete":
                    self.versions.pop(sub["path"], None)
                elif sub["kind"] == "create" and sub["path"] in KEYS:
                    self.versions[sub["path"]] = 0

    def burst(self, token, key):
        """A write and reads of its key sent back to back on the session
        (pipelined): the reads must see the write (FIFO client order) and
        the replies come back in request order."""
        zk = self.zk
        started = [self.start_multi([{"kind": "set_data", "path": key, "data": token, "version": -1}], token)]
        for _ in range(self.rng.randint(1, 3)):
            if self.rng.random() < 0.7:
                started.append(self.history.start(zk, self.index, {"kind": "get_data", "path": key}, None,
                                                  lambda: zk.get_async(key)))
            else:
                started.append(self.history.start(zk, self.index, {"kind": "exists", "path": key}, None,
                                                  lambda: zk.exists_async(key)))
        for started_op in started:
            self.history.finish(started_op, OP_TIMEOUT_S)

    def version(self, key):
        known = self.versions.get(key)
        return -1 if known is None or self.rng.random() < 0.25 else known

    def step(self):
        zk, rng = self.zk, self.rng
        token = self.token()
        key = rng.choice(KEYS)
        roll = rng.random()
        if roll < 0.20:
            self.owned(token)
        elif roll < 0.32:
            path = f"{ROOT}/c/{token}"
            _, value = self.op({"kind": "create", "path": path, "data": token, "mode": 0}, path,
                               lambda: zk.create_async(path, token.encode()))
            if value is not None:
                self.created.append(path)
        elif roll < 0.38:
            seq = {"kind": "create", "path": f"{ROOT}/s/n-", "data": token, "mode": 2}
            self.multi([seq], token)
        elif roll < 0.50:
            self.multi([{"kind": "set_data", "path": key, "data": token, "version": self.version(key)}], token)
        elif roll < 0.55:
            self.multi([{"kind": "create", "path": key, "data": token, "mode": 0}], token)
        elif roll < 0.60:
            self.multi([{"kind": "delete", "path": key, "version": self.version(key)}], token)
        elif roll < 0.65:
            self.burst(token, key)
        elif roll < 0.68:
            check = {"kind": "check", "path": key, "version": self.version(key)}
            self.multi([check, {"kind": "set_data", "path": key, "data": token, "version": -1}], token)
        elif roll < 0.78:
            _, value = self.op({"kind": "get_data", "path": key}, None, lambda: zk.get_async(key))
            if value is not None:
                self.versions[key] = value[1].version
        elif roll < 0.83:
            self.op({"kind": "exists", "path": key}, None, lambda: zk.exists_async(key))
        elif roll < 0.88:
            parent = rng.choice([f"{ROOT}/k", f"{ROOT}/s"])
            self.op({"kind": "get_children", "path": parent}, None, lambda: zk.get_children_async(parent))
        elif roll < 0.92 and self.created:
            path = rng.choice(self.created)
            self.op({"kind": "get_data", "path": path}, None, lambda: zk.get_async(path))
        elif roll < 0.97:
            # An owned node, another client's or this one's.
            other = rng.choice(self.clients)
            path = f"{ROOT}/p/{other.index}-{other.generation}/x"
            self.op({"kind": "get_data", "path": path}, None, lambda: zk.get_async(path))
        else:
            self.op({"kind": "sync"}, None, lambda: zk.sync_async(ROOT))

    def loop(self):
        try:
            while not self.stop.is_set():
                self.step()
                # Think time: keeps the history checkable (see OPS_PER_CLIENT_PER_S).
                self.stop.wait(self.rng.expovariate(OPS_PER_CLIENT_PER_S))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            self.error = exc

    def close(self):
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:  # noqa: BLE001 - best effort at teardown
            pass


def setup_tree(hosts, history):
    """The test's root and its parents, created by a recorded client."""
    zk = kazoo(hosts)
    history.attach(zk)
    zk.start(timeout=30)
    try:
        for path in (ROOT, f"{ROOT}/c", f"{ROOT}/s", f"{ROOT}/r", f"{ROOT}/k", f"{ROOT}/p"):
            record, value = history.run(zk, CLIENTS, {"kind": "create", "path": path, "data": "", "mode": 0},
                                        path, lambda p=path: zk.create_async(p, b""), OP_TIMEOUT_S)
            assert value == path, f"setup create {path} failed: {record.outcome}"
    finally:
        zk.stop()
        zk.close()


def read_tree(member):
    """Every node under ROOT as `member` holds it (after a sync), as the
    history's final tree (mzxid and pzxid for the evidence of owned nodes)."""
    zk = kazoo(member.hosts)
    zk.start(timeout=30)
    try:
        zk.sync(ROOT)
        nodes, level = [], [ROOT]
        while level:
            asked = [(path, zk.get_async(path), zk.get_children_async(path)) for path in level]
            level = []
            for path, data, children in asked:
                value, stat = data.get(timeout=30)
                nodes.append({"path": path, "data": value.decode(), "version": stat.version, "czxid": stat.czxid,
                              "num_children": stat.numChildren, "ephemeral_owner": stat.ephemeralOwner,
                              "mzxid": stat.mzxid, "pzxid": stat.pzxid})
                level += [f"{path}/{child}" for child in children.get(timeout=30)]
        return sorted(nodes, key=lambda n: n["path"])
    finally:
        zk.stop()
        zk.close()


def agreed_tree(ensemble, timeout):
    """The final tree, once every server returns the same one."""
    deadline = time.monotonic() + timeout
    while True:
        trees = {m.sid: read_tree(m) for m in ensemble.members.values()}
        first = next(iter(trees.values()))
        if all(tree == first for tree in trees.values()):
            return first
        if time.monotonic() > deadline:
            differ = {sid: len(tree) for sid, tree in trees.items()}
            raise AssertionError(f"the servers hold different final trees (node counts {differ})")
        time.sleep(0.2)


def assert_equal_digests(ensemble, timeout):
    """ferrokeeper's `hash` word (the whole tree's digest at a zxid) agrees
    on every server, once the last closeSession has reached them all."""
    deadline = time.monotonic() + timeout
    while True:
        hashes = {}
        for m in ensemble.members.values():
            try:
                hashes[m.sid] = zkwire.four_letter_word(m.port, "hash", timeout=1.0, host=m.host).strip()
            except (OSError, zkwire.ConnectionClosed, TimeoutError):
                hashes[m.sid] = None
        if None not in hashes.values() and len(set(hashes.values())) == 1:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"the servers' tree digests differ: {hashes}")
        time.sleep(0.1)


# Start, nemesis, settle, final reads and the check: typically 40-55 s in all.
@pytest.mark.deadline(NEMESIS_S + (140 if IS_ZK else 110))
def test_ensemble_under_partitions_kills_and_drops_keeps_its_history_consistent(net, fk_sim):
    """Kills, partitions, one-way and random drops under concurrent kazoo
    writers and readers: the recorded history passes fk-sim check-history
    and all three servers end with the same tree."""
    seed = int(os.environ.get("FK_NETNS_SEED") or random.SystemRandom().randrange(2**32))
    print(f"\nFK_NETNS_SEED={seed} FK_TARGET={TARGET}")
    rng = random.Random(seed)
    workdir = tempfile.mkdtemp(prefix=f"fk-netns-{TARGET}-")
    ensemble = Ensemble(net)
    stop = threading.Event()
    clients = []
    passed = False
    nemesis = None
    try:
        with net.entered():
            for member in ensemble.members.values():
                member.launch()
            ensemble.wait_settled(timeout=60)
            history = History(ROOT)
            setup_tree(ensemble.hosts(), history)
            clients = [Client(i, ensemble.hosts(), history, rng.randrange(2**32), stop) for i in range(CLIENTS)]
            for client in clients:
                client.clients = clients
            for client in clients:
                client.zk.start(timeout=30)
                client.thread.start()
            nemesis = Nemesis(net, ensemble, random.Random(rng.randrange(2**32)), time.monotonic())
            nemesis.run(NEMESIS_S, threading.Event())
            ensemble.wait_settled(timeout=45)
            stop.set()
            for client in clients:
                client.thread.join(OP_TIMEOUT_S + 10)
                assert not client.thread.is_alive(), f"client {client.index} did not stop"
                assert client.error is None, f"client {client.index}: {client.error!r}"
            for client in clients:
                client.close()
            final = agreed_tree(ensemble, timeout=20)
            if IS_FK:
                assert_equal_digests(ensemble, timeout=15)
        counts = history.counts()
        path = os.path.join(workdir, "history.json")
        history.dump(path, final)
        with open(os.path.join(workdir, "faults.log"), "w") as f:
            f.write("\n".join(nemesis.log) + "\n")
        checked = subprocess.run([fk_sim, "check-history", path], capture_output=True, text=True, timeout=300)
        print("faults:\n  " + "\n  ".join(nemesis.log))
        print(f"ops {counts}; final tree {len(final)} nodes; {checked.stdout.strip()}")
        assert checked.returncode == 0, (
            f"FK_NETNS_SEED={seed}: fk-sim check-history failed ({checked.returncode}):\n"
            f"{checked.stdout}{checked.stderr}\nhistory and logs kept in {workdir}")
        assert len(nemesis.log) >= 4, f"too few faults were injected: {nemesis.log}"
        assert counts["answered"] > 100, f"too few ops were answered: {counts}"
        passed = True
    finally:
        stop.set()
        for client in clients:
            client.close()
        keep = not passed or os.environ.get("FK_KEEP_TMP") is not None
        if keep:
            for member in ensemble.members.values():
                if os.path.exists(member.log_path):
                    shutil.copy(member.log_path, os.path.join(workdir, f"server{member.sid}.log"))
            if nemesis is not None:
                with open(os.path.join(workdir, "faults.log"), "w") as f:
                    f.write("\n".join(nemesis.log) + "\n")
            print(f"kept in {workdir}")
        ensemble.stop(keep)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
