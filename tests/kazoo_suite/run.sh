#!/usr/bin/env bash
# kazoo's own test suite (kazoo/tests from the installed kazoo, through its own
# harness kazoo.testing) against ferrokeeper or Apache ZooKeeper 3.8.
#
#   tests/kazoo_suite/run.sh [ferrokeeper|zookeeper] [cluster-size] [pytest args...]
#   tests/kazoo_suite/run.sh check       what is missing (exit 1 if anything)
#   tests/kazoo_suite/run.sh prereqs     pip-install kazoo's test dependencies
#
# The harness writes one zoo.cfg per server (cluster-size servers, default 1)
# and starts each with `java ... QuorumPeerMain zoo.cfg`; bin/java, first on
# PATH, turns that into the target server (see its header). Everything the
# run creates lives in one temporary directory (TMPDIR points there, so the
# harness's server directories do too), removed at the end together with any
# server process still alive. What is kept goes to $KAZOO_SUITE_OUT (default
# target/kazoo-suite/<target>-<size> in the repository):
#
#   pytest.log   pytest's -v output      junit.xml    pytest's JUnit XML
#   summary.txt  counts and failures     servers/     each server's log
#
# Environment:
#   FK_BIN               ferrokeeper binary (default target/release/ferrokeeper)
#   FK_CORES             ferrokeeper.cores per server (default 1: three servers share 2 cores)
#   ZOOKEEPER_VERSION    the version the harness is told it runs (default: the
#                        Debian jar's for zookeeper, 3.9.0 for ferrokeeper, which
#                        is what ferrokeeper reports in `envi`); test_build checks it
#   KAZOO_SUITE_TIMEOUT  seconds for the whole pytest run (default 3600)
#   KAZOO_TEST_TIMEOUT   seconds per test (default 180, kazoo's own setting)
#   KAZOO_SUITE_OUT      where results go
#   KAZOO_SUITE_KEEP=1   keep the temporary directory
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ZK_JARS=/usr/share/java
# zookeeper.jar names its dependencies in its manifest's Class-Path;
# slf4j-simple is the logging binding (as tests/conftest.py starts it). The
# harness asks for NettyServerCnxnFactory, whose pipeline needs netty-codec
# (netty-transport in turn netty-resolver, epoll netty-transport-native-unix-common),
# which the manifest leaves out.
ZK_CLASSPATH=$(printf "$ZK_JARS/%s.jar:" zookeeper slf4j-simple netty-codec netty-resolver netty-transport-native-unix-common)
ZK_CLASSPATH=${ZK_CLASSPATH%:}

# kazoo's test dependencies (its pyproject's test groups and extras); pyOpenSSL
# below 26.2 because kazoo's harness still uses X509Extension.
PIP_PACKAGES=("kazoo==2.11.0" "pytest>=7" "pytest-timeout" "pyjks" "pyOpenSSL<26.2.0" "pure-sasl" "gevent" "eventlet" "objgraph")
PY_CHECKS=(
    "import kazoo, pytest, pytest_timeout, jks, puresasl, gevent, eventlet, objgraph"
    "import OpenSSL.crypto; OpenSSL.crypto.X509Extension"
)

missing() {
    local check status=0
    for check in "${PY_CHECKS[@]}"; do
        if ! python3 -W ignore -c "$check" 2>/dev/null; then
            echo "python: '$check' fails (run.sh prereqs installs ${PIP_PACKAGES[*]})"
            status=1
        fi
    done
    local f
    for f in ${ZK_CLASSPATH//:/ }; do
        [[ -e $f ]] || { echo "$f missing (tests/prereqs.sh install)"; status=1; }
    done
    command -v java >/dev/null || { echo "java missing (tests/prereqs.sh install)"; status=1; }
    return $status
}

case ${1:-} in
check)
    missing && echo "all present"
    exit
    ;;
prereqs)
    python3 -m pip install "${PIP_PACKAGES[@]}"
    exit
    ;;
esac

TARGET=${1:-ferrokeeper}
SIZE=${2:-1}
shift $(($# < 2 ? $# : 2))
case $TARGET in ferrokeeper | zookeeper) ;; *)
    echo "target must be ferrokeeper or zookeeper, not '$TARGET'" >&2
    exit 2
    ;;
esac
[[ $SIZE =~ ^[1-9]$ ]] || { echo "cluster size must be 1-9, not '$SIZE'" >&2; exit 2; }
missing >&2 || exit 3

FK_BIN=${FK_BIN:-$REPO/target/release/ferrokeeper}
if [[ $TARGET == ferrokeeper && ! -x $FK_BIN ]]; then
    echo "no ferrokeeper binary at $FK_BIN: cargo build --release -p engine --bin ferrokeeper, or set FK_BIN" >&2
    exit 3
fi
if [[ $TARGET == zookeeper ]]; then
    default_version=$(python3 -c '
import sys, zipfile
props = zipfile.ZipFile(sys.argv[1]).read("META-INF/maven/org.apache.zookeeper/zookeeper/pom.properties")
print(next(l.split("=", 1)[1].strip() for l in props.decode().splitlines() if l.startswith("version=")))
' "$ZK_JARS/zookeeper.jar")
else
    default_version=3.9.0
fi

OUT=${KAZOO_SUITE_OUT:-$REPO/target/kazoo-suite/$TARGET-$SIZE}
RUN_DIR=$(mktemp -d /tmp/kazoo-suite-XXXXXX)
# only what a run writes: OUT may be any directory
rm -rf "$OUT/servers" "$OUT/pytest.log" "$OUT/junit.xml" "$OUT/summary.txt"
mkdir -p "$OUT/servers" "$RUN_DIR/tmp"
OUT=$(cd "$OUT" && pwd) # pytest and the shim run elsewhere
PIDS="$RUN_DIR/pids"
touch "$PIDS"

cleanup() {
    local pid dir
    # the servers the shim started (a recorded pid counts only while its
    # command line still names this run's directory: pids get reused)
    while read -r pid dir; do
        if { tr "\\0" " " <"/proc/$pid/cmdline"; } 2>/dev/null | grep -qF "$RUN_DIR"; then
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done <"$PIDS"
    if [[ -z ${KAZOO_SUITE_KEEP:-} ]]; then
        rm -rf "$RUN_DIR"
    else
        echo "kept $RUN_DIR"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The harness puts server N's ports at offset + 10*(N-1) + 0..4; take the first
# offset whose ports are all free (another run may hold 20000).
port_offset() {
    python3 - "$SIZE" <<'EOF'
import socket, sys
size = int(sys.argv[1])
for offset in range(20000, 30000, 500):
    try:
        for port in range(offset, offset + 10 * size):
            with socket.socket() as s:
                # as the servers bind: a port whose old connections linger
                # in TIME_WAIT is free to them
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("0.0.0.0", port))
    except OSError:
        continue
    print(offset)
    break
else:
    sys.exit("no free port range between 20000 and 30000")
EOF
}

KAZOO_TESTS=$(python3 -W ignore -c 'import kazoo, os; print(os.path.join(os.path.dirname(kazoo.__file__), "tests"))')
export KAZOO_SUITE_TARGET=$TARGET
export KAZOO_SUITE_REAL_JAVA
KAZOO_SUITE_REAL_JAVA=$(command -v java)
export KAZOO_SUITE_LOGS="$OUT/servers"
export KAZOO_SUITE_PIDS=$PIDS
export FK_BIN FK_CORES=${FK_CORES:-1}
export PATH="$HERE/bin:$PATH"
export TMPDIR="$RUN_DIR/tmp"
# as kazoo's CI runs it (GitHub Actions sets CI=true; some tests only run, or
# wait longer, under CI)
export CI=true
export ZOOKEEPER_VERSION=${ZOOKEEPER_VERSION:-$default_version}
export ZOOKEEPER_CLASSPATH=$ZK_CLASSPATH
export ZOOKEEPER_CLUSTER_SIZE=$SIZE
export ZOOKEEPER_PORT_OFFSET
ZOOKEEPER_PORT_OFFSET=$(port_offset)
unset ZOOKEEPER_PATH ZOOKEEPER_OBSERVER_START_ID ZOOKEEPER_JAAS_AUTH ZOOKEEPER_LOCAL_SESSION_RO

{
    echo "kazoo suite: target=$TARGET cluster-size=$SIZE kazoo=$(python3 -W ignore -c 'import kazoo; print(kazoo.__version__)')"
    echo "date: $(date -u +%FT%TZ)  repository commit: $(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo unknown)"
    [[ $TARGET == ferrokeeper ]] && echo "ferrokeeper: $FK_BIN ($("$FK_BIN" --version 2>&1))"
    echo "ZOOKEEPER_VERSION=$ZOOKEEPER_VERSION ZOOKEEPER_PORT_OFFSET=$ZOOKEEPER_PORT_OFFSET"
} | tee "$OUT/summary.txt"

status=0
(cd "$RUN_DIR" && timeout --kill-after=30 "${KAZOO_SUITE_TIMEOUT:-3600}" \
    python3 -m pytest "$KAZOO_TESTS" --rootdir="$RUN_DIR" -p no:cacheprovider -ra -v \
    --timeout="${KAZOO_TEST_TIMEOUT:-180}" --junitxml="$OUT/junit.xml" "$@") >"$OUT/pytest.log" 2>&1 || status=$?
tail -n 3 "$OUT/pytest.log"
if [[ $status == 124 || $status == 137 ]]; then
    echo "pytest did not finish within ${KAZOO_SUITE_TIMEOUT:-3600}s" | tee -a "$OUT/summary.txt"
fi
if [[ -s $OUT/junit.xml ]]; then
    python3 "$HERE/summarize.py" "$OUT/junit.xml" | tee -a "$OUT/summary.txt"
fi
echo "results in $OUT"
exit $status
