#!/usr/bin/env bash
# The project's test command: everything CI runs.
#   scripts/test.sh
# Installs what the tests need (cached outside the clone), checks formatting
# and lints, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== tools"
# The real Kafka-protocol broker for the end-to-end tests, cached outside the
# clone (about 10 minutes the first time).
CORRELATOR_TANSU_BIN="$(scripts/install-tansu.sh)"
export CORRELATOR_TANSU_BIN
# Prometheus, promtool and Alertmanager for the observability tests (Debian
# packages, installed once).
scripts/install-test-tools.sh

echo "== format"
cargo fmt --all -- --check

echo "== clippy"
cargo clippy --all-targets --locked -- -D warnings

echo "== tests"
cargo test --locked

echo "== benches compile"
cargo build --locked --benches
