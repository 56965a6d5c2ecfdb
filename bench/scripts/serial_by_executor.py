#!/usr/bin/env python3
"""Serial create, one fresh connection per run, and which executor served it.

    python3 bench/scripts/serial_by_executor.py [--runs 8] [--seconds 3] BINARY...

Starts each ferrokeeper BINARY as a standalone server with two executors
(`ferrokeeper.cores=2`, forceSync on, a temporary dataDir), then runs
`fk-loadgen -s 1 -o 1 -w create` RUNS times against it, each run on a new
connection, interleaving the binaries run by run. For every run it prints the
throughput, the p50, and the executor that served the connection: the
`fk-core-N` thread that used the CPU beyond executor 0's own work, read from
/proc/<pid>/task/*/stat before and after the run, so it works for any build,
old or new. With ferrokeeper before connection placement (engine/src/placement.rs)
the executor was the kernel's SO_REUSEPORT pick and a lone client's p50 was
~235 µs on executor 0 (beside the node) or ~310 µs on executor 1 (two
cross-core wake-ups per request), a coin flip per run on the 2-core bench
machine; with placement every run is served on executor 0.

Needs target/release/fk-loadgen (cargo build --release -p bench).
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADGEN = os.path.join(ROOT, "target", "release", "fk-loadgen")
# CPU ticks an executor must gain during a run to count as serving it (the
# idle executor gains ~0; the serving one ~100 per 3 s).
SERVING_TICKS_MIN = 20


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ruok(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"ruok")
            return s.recv(16) == b"imok"
    except OSError:
        return False


def executor_ticks(pid):
    """CPU ticks (user + system) per fk-core-N thread of the process."""
    ticks = {}
    for task in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{task}/comm") as f:
                name = f.read().strip()
            with open(f"/proc/{pid}/task/{task}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if name.startswith("fk-core-"):
            index = int(name.split("-")[2])
            ticks[index] = ticks.get(index, 0) + int(fields[11]) + int(fields[12])
    return ticks


class Server:
    def __init__(self, binary):
        self.binary = binary
        self.dir = tempfile.mkdtemp(prefix="fk-serial-")
        self.port = free_port()
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(f"dataDir={self.dir}/data\nclientPort={self.port}\nclientPortAddress=127.0.0.1\n"
                    "ferrokeeper.cores=2\n4lw.commands.whitelist=*\n")
        self.proc = subprocess.Popen([binary, "-c", cfg], stdout=subprocess.DEVNULL,
                                     stderr=open(os.path.join(self.dir, "log"), "w"))
        deadline = time.monotonic() + 30
        while not ruok(self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{binary} did not start: see {self.dir}/log")
            time.sleep(0.05)

    def run(self, seconds):
        before = executor_ticks(self.proc.pid)
        report = os.path.join(self.dir, "run.json")
        subprocess.run([LOADGEN, "--server", f"127.0.0.1:{self.port}", "-s", "1", "-o", "1",
                        "-w", "create", "-d", str(seconds), "--json", report],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        after = executor_ticks(self.proc.pid)
        gained = {i: after.get(i, 0) - before.get(i, 0) for i in after}
        others = [i for i in sorted(gained) if i != 0 and gained[i] >= SERVING_TICKS_MIN]
        served_on = others[0] if others else 0
        with open(report) as f:
            r = json.load(f)
        r = r[0] if isinstance(r, list) else r
        return r["throughput"], r["latency"]["p50_us"], served_on

    def stop(self):
        self.proc.kill()
        self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=3)
    ap.add_argument("binaries", nargs="+")
    args = ap.parse_args()
    if not os.path.exists(LOADGEN):
        raise SystemExit(f"{LOADGEN} is missing: cargo build --release -p bench")
    servers = [Server(b) for b in args.binaries]
    results = {b: [] for b in args.binaries}
    try:
        for run in range(args.runs):
            for s in servers:
                ops, p50, on = s.run(args.seconds)
                results[s.binary].append((ops, p50, on))
                print(f"run {run + 1} {s.binary}: {ops:,.0f} ops/s p50 {p50:.0f} µs executor {on}", flush=True)
    finally:
        for s in servers:
            s.stop()
    for binary, runs in results.items():
        for executor in sorted({on for _, _, on in runs}):
            p50s = sorted(p50 for _, p50, on in runs if on == executor)
            print(f"{binary}: executor {executor}: {len(p50s)} runs, median p50 {p50s[len(p50s) // 2]:.0f} µs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
