#!/usr/bin/env python3
"""How long wchs/wchc/wchp/dump take with many watches, and how long other
clients stall meanwhile (issue 10: 1M watches froze every client for 6.5-8.3 s).

  python3 bench/scripts/watch_words.py --port 2181 --watches 1000000

Sets the watches with pipelined exists(watch) on missing paths from one raw
connection (they all stay registered), then, for each word, times the answer
while a second connection issues getData in a loop and records its slowest
reply.
"""
import argparse
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, __import__("os").path.join(__import__("os").path.dirname(__file__), "..", "..", "tests"))
import zkwire as w  # noqa: E402


def set_watches(port, count, batch=5000):
    client = w.WireClient(port, timeout=120)
    client.connect(timeout_ms=60000)
    sent = 0
    while sent < count:
        n = min(batch, count - sent)
        frames = b"".join(
            w.frame(w.Writer().int(sent + i + 1).int(w.OP_EXISTS).bytes() + w.path_watch_body(f"/w{sent + i}", True))
            for i in range(n))
        client.send(frames)
        for _ in range(n):
            client.read_reply(timeout=120)
        sent += n
    return client


def word_time(port, word):
    started = time.monotonic()
    answer = w.four_letter_word(port, word, timeout=120)
    return time.monotonic() - started, len(answer)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=2181)
    parser.add_argument("--watches", type=int, default=1_000_000)
    args = parser.parse_args()
    started = time.monotonic()
    holder = set_watches(args.port, args.watches)
    print(f"{args.watches} watches set in {time.monotonic() - started:.1f} s")
    probe = w.WireClient(args.port, timeout=60)
    probe.connect(timeout_ms=60000)
    for word in ["mntr", "wchs", "wchc", "wchp", "dump"]:
        worst = [0.0]
        stop = threading.Event()

        def read_loop():
            while not stop.is_set():
                t = time.monotonic()
                probe.request(w.OP_EXISTS, w.path_watch_body("/", False))
                worst[0] = max(worst[0], time.monotonic() - t)

        reader = threading.Thread(target=read_loop)
        reader.start()
        time.sleep(0.2)
        took, size = word_time(args.port, word)
        time.sleep(0.2)
        stop.set()
        reader.join()
        print(f"{word}: answered in {took * 1000:.0f} ms ({size} bytes); "
              f"another client's slowest reply meanwhile {worst[0] * 1000:.1f} ms")
    holder.close()


if __name__ == "__main__":
    main()
