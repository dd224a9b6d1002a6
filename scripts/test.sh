#!/usr/bin/env bash
# The project's test command: everything CI runs.
#   scripts/test.sh
# Installs what the tests need (cached outside the clone), checks formatting
# and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== format"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
cargo test --locked

echo "== benches compile"
cargo build --locked --benches
