#!/usr/bin/env python3
"""How long three servers started together take until all three serve.

kazoo's harness starts (and after a failed health check restarts) its
three-server ensembles all at once with tickTime=2000, initLimit=4; this does
the same, round after round, and reports per round how long it took until
two, then all three servers answered `srvr` with Mode leader or follower,
and how many leaders there were then. It isolates the election/learner-connect race seen
in the kazoo suite (see README.md) from kazoo itself.

    ensemble_start.py ferrokeeper [--rounds 10] [--deadline 30]
    ensemble_start.py zookeeper   [--rounds 10] [--deadline 30]

FK_BIN names the ferrokeeper binary (default target/release/ferrokeeper).
Each server logs to <round dir>/<sid>.log; --keep leaves the directories.
Exit status 1 when some round did not form an ensemble within --deadline.
"""

import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests"))
import zkwire  # noqa: E402

ZK_CLASSPATH = ":".join(f"/usr/share/java/{j}.jar" for j in ("zookeeper", "slf4j-simple"))
POLL_S = 0.05


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def write_configs(root, ports):
    """One directory per server, zoo.cfg as kazoo's harness writes it (less TLS and SASL)."""
    servers = [f"server.{sid}=localhost:{p[1]}:{p[2]}:participant" for sid, p in enumerate(ports, 1)]
    paths = []
    for sid, (client, _, _) in enumerate(ports, 1):
        d = os.path.join(root, str(sid))
        os.makedirs(os.path.join(d, "data"))
        with open(os.path.join(d, "data", "myid"), "w") as f:
            f.write(str(sid))
        cfg = os.path.join(d, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join([
                "tickTime=2000", f"dataDir={d}/data", f"clientPort={client}", "maxClientCnxns=0",
                "4lw.commands.whitelist=*", "initLimit=4", "syncLimit=2", *servers,
                "peerType=participant", "ferrokeeper.cores=1", ""]))
        paths.append(cfg)
    return paths


def command(target, cfg):
    if target == "ferrokeeper":
        return [os.environ.get("FK_BIN", os.path.join(REPO, "target", "release", "ferrokeeper")), "--config", cfg]
    return ["java", "-Dzookeeper.admin.enableServer=false", "-cp", ZK_CLASSPATH,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg]


def mode(port):
    """'leader', 'follower', or None while the server does not serve."""
    try:
        answer = zkwire.four_letter_word(port, "srvr", timeout=1.0)
    except OSError:
        return None
    for line in answer.splitlines():
        if line.startswith("Mode: "):
            found = line[len("Mode: "):].strip()
            return found if found in ("leader", "follower") else None
    return None


def one_round(target, root, deadline_s):
    ports = [free_ports(3) for _ in range(3)]
    configs = write_configs(root, ports)
    procs = []
    try:
        start = time.monotonic()
        for sid, cfg in enumerate(configs, 1):
            log = open(os.path.join(root, f"{sid}.log"), "wb")
            # a ferrokeeper config line other servers do not know is harmless:
            # ZooKeeper ignores unknown keys too
            procs.append(subprocess.Popen(command(target, cfg), stdout=log, stderr=log,
                                          stdin=subprocess.DEVNULL, start_new_session=True))
            log.close()
        majority = None
        while time.monotonic() - start < deadline_s:
            modes = [mode(p[0]) for p in ports]
            if majority is None and sum(map(bool, modes)) >= 2:
                majority = time.monotonic() - start
            if all(modes):
                return majority, time.monotonic() - start, modes.count("leader")
            if any(p.poll() is not None for p in procs):
                raise RuntimeError(f"a server exited; logs in {root}")
            time.sleep(POLL_S)
        return majority, None, None
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=("ferrokeeper", "zookeeper"))
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--deadline", type=float, default=30.0)
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    times, failed = [], 0
    for n in range(1, args.rounds + 1):
        root = tempfile.mkdtemp(prefix=f"ensemble-start-{args.target}-")
        majority, took, leaders = one_round(args.target, root, args.deadline)
        if took is None:
            failed += 1
            print(f"round {n}: no ensemble within {args.deadline:.0f} s (logs: {root})", flush=True)
            continue
        times.append(took)
        print(f"round {n}: two serving after {majority:.2f} s, all three after {took:.2f} s, {leaders} leader(s)",
              flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    if times:
        print(f"{args.target}: {len(times)}/{args.rounds} rounds formed; median {statistics.median(times):.2f} s, "
              f"max {max(times):.2f} s, over 5 s: {sum(t > 5 for t in times)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
