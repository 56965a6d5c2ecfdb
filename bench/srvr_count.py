#!/usr/bin/env python3
"""Runs a command between two readings of a ZooKeeper server's own counters
(the `srvr` four-letter word, whitelisted by default): packets received and
sent, and the last zxid. Their deltas are the server's count of what the
command did, independent of the client's own accounting.

    python3 bench/srvr_count.py 127.0.0.1:21820 -- \
        target/release/fk-loadgen --server 127.0.0.1:21820 -w create -s 8 -o 32 --ops 100000
"""

import re
import socket
import subprocess
import sys
import time


def srvr(address):
    host, port = address.rsplit(":", 1)
    if host not in ("127.0.0.1", "localhost"):
        sys.exit("srvr_count: loopback servers only")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"srvr")
        chunks = []
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    text = b"".join(chunks).decode()
    field = lambda name: re.search(r"^%s: (\S+)" % name, text, re.M).group(1)
    return {
        "received": int(field("Received")),
        "sent": int(field("Sent")),
        "zxid": int(field("Zxid"), 16),
    }


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    address, command = sys.argv[1], sys.argv[3:]
    before = srvr(address)
    start = time.monotonic()
    status = subprocess.call(command)
    elapsed = time.monotonic() - start
    after = srvr(address)
    # Each srvr connection itself counts as one received packet.
    received = after["received"] - before["received"] - 1
    print(
        "server counted: %d packets received, %d sent, %d zxids in %.2fs of command time"
        % (received, after["sent"] - before["sent"], after["zxid"] - before["zxid"], elapsed)
    )
    sys.exit(status)


if __name__ == "__main__":
    main()
