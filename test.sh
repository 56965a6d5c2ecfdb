#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and property tests, then real
# ZooKeeper clients (the zookeeper-client crate, kazoo, zkCli.sh, Apache
# Curator, the C client, raw protocol) against the real ferrokeeper binary and
# the same real-client suite against Apache ZooKeeper 3.8, the reference its
# expectations were written against. Fails when either target fails.
#
# The real-client suite needs Debian and Python packages (tests/prereqs.sh
# lists them); this script installs what is missing when it runs as root,
# and otherwise asks for `sudo tests/prereqs.sh install` first.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "real-client suite prerequisites (tests/prereqs.sh)"
tests/prereqs.sh ensure

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, property and Rust-client tests)"
cargo test --workspace

step "build the release server"
cargo build --release -p engine --bin ferrokeeper

failed=()
step "real-client suite against ferrokeeper"
FK_TARGET=ferrokeeper FK_BIN="$PWD/target/release/ferrokeeper" python3 -m pytest tests -q || failed+=(ferrokeeper)

step "real-client suite against Apache ZooKeeper 3.8 (the reference)"
FK_TARGET=zookeeper python3 -m pytest tests -q || failed+=(zookeeper)

if [ ${#failed[@]} -gt 0 ]; then
    printf '\nreal-client suite failed against: %s\n' "${failed[*]}" >&2
    exit 1
fi
