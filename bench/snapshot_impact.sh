#!/usr/bin/env bash
# Writes while a snapshot is being taken vs. without one, side by side.
#
# Builds a tree of $NODES znodes, then drives setData at a fixed rate (open
# loop, so latency counts from the intended send time) twice on the same
# data: once with a snapCount so small that snapshots of the whole tree run
# during the measurement, once with snapshots effectively off. Prints both
# rows (p50 ... p99.9) and how many snapshots ran.
#
#   bench/snapshot_impact.sh            # NODES=1000000 RATE=50000 DURATION=10
#
# Everything listens on 127.0.0.1, runs under `timeout`, and the work
# directory is removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=${NODES:-1000000}
RATE=${RATE:-50000}
SECONDS_MEASURED=${DURATION:-10}
PORT=${PORT:-21812}
WORK=$(mktemp -d /var/tmp/fk-snapimpact-XXXXXX)
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

cargo build --release -q -p engine --bin ferrokeeper -p bench --bin fk-loadgen
BIN=target/release

start() { # snapCount
    cat > "$WORK/zoo.cfg" <<EOF
dataDir=$WORK/data
clientPort=$PORT
clientPortAddress=127.0.0.1
snapCount=$1
4lw.commands.whitelist=*
EOF
    timeout 1200 "$BIN/ferrokeeper" --config "$WORK/zoo.cfg" 2>>"$WORK/server.log" &
    SERVER_PID=$!
    for _ in $(seq 100); do
        if "$BIN/fk-loadgen" --server 127.0.0.1:$PORT -w getdata --ops 1 --keys 1 --quiet >/dev/null 2>&1; then return; fi
        sleep 0.1
    done
    echo "server did not start" >&2; exit 1
}
stop() { kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true; SERVER_PID=""; }

echo "building a tree of $NODES znodes ..." >&2
start 100000000
"$BIN/fk-loadgen" --server 127.0.0.1:$PORT -w create -s 16 -o 32 --ops "$NODES" --quiet >/dev/null
stop

for snap in 2000 100000000; do
    start "$snap"
    before=$(grep -c "snapshot started" "$WORK/server.log" || true)
    "$BIN/fk-loadgen" --server 127.0.0.1:$PORT -w setdata -s 8 -o 64 --keys 10000 \
        --rate "$RATE" -d "$SECONDS_MEASURED" --warmup 2 --json "$WORK/run-$snap.json" 2>&1 | tail -1 |
        sed "s/^/snapCount=$snap: /"
    after=$(grep -c "snapshot started" "$WORK/server.log" || true)
    grep "recovered the data tree" "$WORK/server.log" | tail -1 | sed "s/^.*recovered/recovery: recovered/"
    echo "snapCount=$snap: snapshots during the run: $((after - before))"
    stop
done
