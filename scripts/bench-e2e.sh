#!/usr/bin/env bash
# End-to-end daemon benchmark: throughput vs a raw rdkafka floor on
# the mock cluster and on Tansu, produce->event latency at a steady rate, RSS.
# What it measures and its knobs: benches/e2e_throughput.rs.
#   scripts/bench-e2e.sh                        # 1M records, 10k/s latency, Tansu 100k
#   E2E_RECORDS=200000 E2E_TANSU=0 scripts/bench-e2e.sh
# `cargo bench` builds the correlator binary the bench runs as a child.
set -euo pipefail
cd "$(dirname "$0")/.."
# Tansu only if already installed: scripts/install-tansu.sh builds it (~10 min).
if [ -z "${CORRELATOR_TANSU_BIN:-}" ]; then
  t="${CORRELATOR_CACHE:-$HOME/.cache/correlator}/tansu-0.6.0-libsql/bin/tansu"
  if [ -x "$t" ]; then
    export CORRELATOR_TANSU_BIN="$t"
  fi
fi
echo "== machine: $(nproc) cores; $(uptime)"
cargo bench --locked --bench e2e_throughput "$@"
echo "== after: $(uptime)"
