#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and property tests, then real
# ZooKeeper clients (the zookeeper-client crate, kazoo, zkCli.sh) against the
# real ferrokeeper binary. `.ci/run` installs the prerequisites first.
set -euo pipefail
cd "$(dirname "$0")"

step() { printf '\n==> %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings

step "cargo test (unit, property and Rust-client tests)"
cargo test --workspace

step "build the release server"
cargo build --release -p engine --bin ferrokeeper

if [ -d tests ]; then
    step "python real-client tests (kazoo, raw protocol, zkCli.sh)"
    FK_BIN="$PWD/target/release/ferrokeeper" python3 -m pytest tests -q
fi
