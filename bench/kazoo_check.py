#!/usr/bin/env python3
"""An independent client for cross-checking fk-loadgen: the same workload,
sessions and outstanding requests per session, driven by kazoo's async API.

Each session is its own KazooClient (its own connection); each keeps
--outstanding requests in flight: a completion callback records the latency
and issues the next request. Python's GIL caps one process at a few thousand
requests a second, so --processes spreads the sessions over several
processes (forked, all starting at the same monotonic instant). Throughput counts completions inside the
measurement window (after --warmup); latency is from the actual send time
(closed loop, like fk-loadgen without --rate).

The namespace matches fk-loadgen's: keys /fkbench/keys/k%08d (created here
if missing) for setdata/getdata; unique creates under /fkbench/kazoo-<tag>.

Example (against a server on 127.0.0.1:21810):
    python3 bench/kazoo_check.py --server 127.0.0.1:21810 -w create -s 8 -o 32 -d 5
"""

import argparse
import json
import multiprocessing
import os
import random
import sys
import threading
import time

from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError


def percentile(sorted_samples, q):
    """Nearest rank, as fk-loadgen's tests compute it by hand."""
    if not sorted_samples:
        return 0.0
    rank = max(1, min(len(sorted_samples), int(-(-q * len(sorted_samples) // 1))))
    return sorted_samples[rank - 1]


def ensure_keys(zk, keys, value):
    zk.ensure_path("/fkbench/keys")
    marker = ("%d:%d" % (keys, len(value))).encode()
    data, _ = zk.get("/fkbench/keys")
    if data == marker:
        return
    pending = []
    for i in range(keys):
        pending.append(zk.create_async("/fkbench/keys/k%08d" % i, value))
        if len(pending) >= 256:
            for p in pending:
                try:
                    p.get()
                except NodeExistsError:
                    pass
            pending = []
    for p in pending:
        try:
            p.get()
        except NodeExistsError:
            pass
    for i in range(keys):
        zk.set_async("/fkbench/keys/k%08d" % i, value)
    zk.set("/fkbench/keys", marker)


class Session:
    def __init__(self, args, index, zk, tag, value, window, stats):
        self.args = args
        self.index = index
        self.zk = zk
        self.tag = tag
        self.value = value
        self.window = window  # [start, end] in perf_counter seconds
        self.stats = stats
        self.seq = 0
        self.rng = random.Random(args.seed * 7919 + index)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.done = threading.Event()

    def issue(self):
        now = time.monotonic()
        if now >= self.window[1]:
            with self.lock:
                self.in_flight -= 1
                if self.in_flight == 0:
                    self.done.set()
            return
        w = self.args.workload
        if w == "create":
            self.seq += 1
            path = "/fkbench/kazoo-%s/s%d-%d" % (self.tag, self.index, self.seq)
            result = self.zk.create_async(path, self.value)
        elif w == "setdata":
            path = "/fkbench/keys/k%08d" % self.rng.randrange(self.args.keys)
            result = self.zk.set_async(path, self.value)
        else:
            path = "/fkbench/keys/k%08d" % self.rng.randrange(self.args.keys)
            result = self.zk.get_async(path)
        result.rawlink(lambda r, sent=now: self.completed(r, sent))

    def completed(self, result, sent):
        now = time.monotonic()
        ok = result.successful()
        if self.window[0] <= now < self.window[1]:
            self.stats.record(now - sent, ok)
        self.issue()

    def start(self):
        with self.lock:
            self.in_flight = self.args.outstanding
        for _ in range(self.args.outstanding):
            self.issue()


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.samples = []
        self.errors = 0

    def record(self, seconds, ok):
        with self.lock:
            self.samples.append(seconds)
            if not ok:
                self.errors += 1


def run_sessions(args, indexes, tag, value, start, window, queue):
    """One process's share of the sessions; sends back samples, errors, CPU."""
    clients = []
    for _ in indexes:
        zk = KazooClient(hosts=args.server, timeout=30.0)
        zk.start(timeout=15)
        clients.append(zk)
    stats = Stats()
    time.sleep(max(0.0, start - time.monotonic()))
    cpu0 = time.process_time()
    sessions = [Session(args, i, zk, tag, value, window, stats) for i, zk in zip(indexes, clients)]
    for s in sessions:
        s.start()
    deadline = window[1] + 30
    for s in sessions:
        s.done.wait(max(0.0, deadline - time.monotonic()))
    cpu = time.process_time() - cpu0
    for zk in clients:
        zk.stop()
        zk.close()
    with stats.lock:
        queue.put((list(stats.samples), stats.errors, cpu))


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--server", default="127.0.0.1:2181")
    p.add_argument("-w", "--workload", default="create", choices=["create", "setdata", "getdata"])
    p.add_argument("-s", "--sessions", type=int, default=8)
    p.add_argument("-o", "--outstanding", type=int, default=32)
    p.add_argument("-d", "--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--value-size", type=int, default=100)
    p.add_argument("--keys", type=int, default=10000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--processes", type=int, default=1, help="spread sessions over this many processes")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    args = p.parse_args()
    host = args.server.rsplit(":", 1)[0]
    if host not in ("127.0.0.1", "localhost", "::1", "[::1]"):
        sys.exit("kazoo_check: loopback servers only")

    value = bytes(ord("a") + i % 26 for i in range(args.value_size))
    tag = "%x%x" % (os.getpid(), time.time_ns())
    setup = KazooClient(hosts=args.server, timeout=30.0)
    setup.start(timeout=15)
    setup.ensure_path("/fkbench/kazoo-%s" % tag)
    if args.workload != "create":
        ensure_keys(setup, args.keys, value)
    setup.stop()
    setup.close()

    processes = max(1, min(args.processes, args.sessions))
    start = time.monotonic() + 2.0 + 0.05 * args.sessions  # time to connect
    window = [start + args.warmup, start + args.warmup + args.duration]
    queue = multiprocessing.Queue()
    children = []
    for p_index in range(processes):
        indexes = list(range(p_index, args.sessions, processes))
        child = multiprocessing.Process(
            target=run_sessions, args=(args, indexes, tag, value, start, window, queue)
        )
        child.start()
        children.append(child)
    stats = Stats()
    cpu = 0.0
    for _ in children:
        samples, errors, child_cpu = queue.get(timeout=window[1] - time.monotonic() + 60)
        stats.samples.extend(samples)
        stats.errors += errors
        cpu += child_cpu
    for child in children:
        child.join()
    elapsed = time.monotonic() - start

    samples = sorted(stats.samples)
    us = lambda s: s * 1e6
    result = {
        "client": "kazoo",
        "processes": processes,
        "server": args.server,
        "workload": args.workload,
        "sessions": args.sessions,
        "outstanding": args.outstanding,
        "window_s": args.duration,
        "ops": len(samples),
        "throughput": len(samples) / args.duration,
        "p50_us": us(percentile(samples, 0.5)),
        "p90_us": us(percentile(samples, 0.9)),
        "p99_us": us(percentile(samples, 0.99)),
        "max_us": us(samples[-1]) if samples else 0.0,
        "errors": stats.errors,
        "client_cpu_percent": cpu / elapsed * 100,
    }
    if args.json:
        print(json.dumps(result))
    else:
        print(
            "kazoo %(workload)s %(sessions)d×%(outstanding)d: %(throughput).0f ops/s, "
            "p50 %(p50_us).0fµs, p90 %(p90_us).0fµs, p99 %(p99_us).0fµs, max %(max_us).0fµs, "
            "errors %(errors)d, client cpu %(client_cpu_percent).0f%% (%(processes)d processes)" % result
        )


if __name__ == "__main__":
    main()
