"""Network namespaces for fault tests: each server in a namespace of its own,
the clients in another, all joined by veth pairs to a bridge in a hub
namespace, with nftables rules in the servers' namespaces to cut links and
drop packets.

    client ns  10.213.0.2  eth0 ─┐
    server 1   10.213.0.11 eth0 ─┼─ veth ─ br0 (hub ns)
    server 2   10.213.0.12 eth0 ─┤
    server 3   10.213.0.13 eth0 ─┘

Nothing is added to the root namespace: the test's own thread enters the
client namespace (setns) while it runs, and sockets it opens there stay
there. Servers are started with `ip netns exec`. Namespace names carry the
test process's pid, and `Net.down` removes them all (their veths go with
them). Needs root, iproute2 and nftables (tests/prereqs.sh installs them).

Rules live in one table per server namespace, `inet fk`, with an input and
an output chain (policy accept); a heal flushes both chains.
"""

import contextlib
import ctypes
import os
import shutil
import subprocess

SUBNET = "10.213.0"
CLIENT_ADDRESS = f"{SUBNET}.2"
CLONE_NEWNET = 0x40000000

_TABLE = """table inet fk {
    chain input { type filter hook input priority 0; policy accept; }
    chain output { type filter hook output priority 0; policy accept; }
}
"""


def unavailable_reason():
    """Why namespaces cannot be made here (not root, no `ip netns`), or None
    when they can. A missing nft is no reason: the caller fails on it."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "ip (iproute2) is not installed, so no ip netns (tests/prereqs.sh install)"
    probe = f"fkprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"ip netns add failed: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _run(*args, stdin=None):
    done = subprocess.run(list(args), input=stdin, capture_output=True, text=True, timeout=20)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({done.returncode}): {done.stderr.strip()}")
    return done.stdout


class Net:
    """The namespaces of one test: a hub, the clients', one per server."""

    def __init__(self, server_ids):
        tag = f"fk{os.getpid()}"
        self.hub = f"{tag}-hub"
        self.client = f"{tag}-cl"
        self.server_ids = list(server_ids)
        self.servers = {sid: f"{tag}-s{sid}" for sid in self.server_ids}
        self._made = []

    @staticmethod
    def address(sid):
        return f"{SUBNET}.{10 + sid}"

    def up(self):
        """Makes the namespaces, links and rule tables."""
        for ns in (self.hub, self.client, *self.servers.values()):
            _run("ip", "netns", "add", ns)
            self._made.append(ns)
            _run("ip", "-n", ns, "link", "set", "lo", "up")
        _run("ip", "-n", self.hub, "link", "add", "br0", "type", "bridge")
        _run("ip", "-n", self.hub, "link", "set", "br0", "up")
        ends = [("cl", self.client, CLIENT_ADDRESS)]
        ends += [(f"s{sid}", self.servers[sid], self.address(sid)) for sid in self.server_ids]
        for port, ns, address in ends:
            _run("ip", "-n", self.hub, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
            _run("ip", "-n", self.hub, "link", "set", port, "master", "br0", "up")
            _run("ip", "-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _run("ip", "-n", ns, "link", "set", "eth0", "up")
        for ns in self.servers.values():
            _run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=_TABLE)
        return self

    def down(self):
        """Removes every namespace this Net made (their links go with them)."""
        for ns in reversed(self._made):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=20)
        self._made.clear()

    def exec_prefix(self, sid):
        """The command prefix that runs a program in server `sid`'s namespace."""
        return ["ip", "netns", "exec", self.servers[sid]]

    def _rules(self, sid, rules):
        text = "".join(f"add rule inet fk {rule}\n" for rule in rules)
        _run("ip", "netns", "exec", self.servers[sid], "nft", "-f", "-", stdin=text)

    def cut(self, sid, peer, inbound=True, outbound=True):
        """Drops what server `sid` receives from and/or sends to server `peer`."""
        rules = []
        if inbound:
            rules.append(f"input ip saddr {self.address(peer)} drop")
        if outbound:
            rules.append(f"output ip daddr {self.address(peer)} drop")
        self._rules(sid, rules)

    def lossy(self, sid, percent):
        """Drops `percent` % of every packet server `sid` receives, at random."""
        self._rules(sid, [f"input numgen random mod 100 < {percent} drop"])

    def heal(self):
        """Flushes every rule in every server namespace."""
        for ns in self.servers.values():
            text = "flush chain inet fk input\nflush chain inet fk output\n"
            _run("ip", "netns", "exec", ns, "nft", "-f", "-", stdin=text)

    def ruleset(self, sid):
        return _run("ip", "netns", "exec", self.servers[sid], "nft", "list", "ruleset")

    @contextlib.contextmanager
    def entered(self):
        """Runs the calling thread (and the threads it starts) in the
        clients' namespace; restores its own namespace on the way out."""
        libc = ctypes.CDLL(None, use_errno=True)

        def setns(fd):
            if libc.setns(fd, CLONE_NEWNET) != 0:
                errno = ctypes.get_errno()
                raise OSError(errno, f"setns: {os.strerror(errno)}")

        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        target = os.open(f"/var/run/netns/{self.client}", os.O_RDONLY)
        try:
            setns(target)
            try:
                yield self
            finally:
                setns(home)
        finally:
            os.close(target)
            os.close(home)
