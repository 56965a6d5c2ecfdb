#!/usr/bin/env bash
# Cross-checks fk-loadgen against independent measurements of the same
# workloads on a fresh standalone Apache ZooKeeper (127.0.0.1 only, same
# settings as fk-sidebyside): kazoo's async API with the same sessions and
# outstanding requests (bench/kazoo_check.py), and ZooKeeper's own `srvr`
# counters around an fk-loadgen run (bench/srvr_count.py).
#
#   bench/crosscheck.sh [path/to/fk-loadgen]
#
# Bounded: ZooKeeper runs under `timeout 900`; it is stopped and its data
# removed on exit, error or Ctrl-C.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
loadgen="${1:-${CARGO_TARGET_DIR:-$here/../target}/release/fk-loadgen}"
port=21830
work="$(mktemp -d /var/tmp/fk-crosscheck-XXXXXX)"
zk_pid=""

cleanup() {
    if [[ -n "$zk_pid" ]]; then
        kill "$zk_pid" 2>/dev/null || true
        wait "$zk_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$work/data" "$work/log"
cat > "$work/zoo.cfg" <<EOF
tickTime=2000
dataDir=$work/data
dataLogDir=$work/log
clientPort=$port
clientPortAddress=127.0.0.1
forceSync=yes
admin.enableServer=false
EOF
timeout --kill-after=10 900 java -Xms2g -Xmx2g -cp /usr/share/java/zookeeper.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$work/zoo.cfg" > "$work/zk.log" 2>&1 &
zk_pid=$!
for _ in $(seq 100); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1).close()" 2>/dev/null && break
    sleep 0.2
done

server="127.0.0.1:$port"
run() {
    echo "\$ $*"
    "$@" 2>&1 | grep -v -E '^server +workload|^-+ |^\[' || true
}
kazoo() { run python3 "$here/kazoo_check.py" --server "$server" "$@"; }
fkl() { run "$loadgen" --server "$server" --quiet "$@"; }

echo "== serial create, 1 session x 1"
kazoo -w create -s 1 -o 1 -d 4
fkl -w create -s 1 -o 1 -d 4
echo "== create, 8 sessions x 32 (kazoo on 1 and 2 processes)"
kazoo -w create -s 8 -o 32 -d 4
kazoo -w create -s 8 -o 32 -d 4 --processes 2
fkl -w create -s 8 -o 32 -d 4
echo "== getData, 8 sessions x 32"
kazoo -w getdata -s 8 -o 32 -d 4
fkl -w getdata -s 8 -o 32 -d 4
echo "== setData of 100 kB values (500 keys), 8 sessions x 32: the server is the bottleneck"
for _ in 1 2; do
    kazoo -w setdata -s 8 -o 32 -d 4 --value-size 100000 --keys 500
    fkl -w setdata -s 8 -o 32 -d 4 --value-size 100000 --keys 500
done
echo "== ZooKeeper's own count of an fk-loadgen run of exactly 100,000 creates"
run python3 "$here/srvr_count.py" "$server" -- "$loadgen" --server "$server" --quiet \
    -w create -s 8 -o 32 --ops 100000
