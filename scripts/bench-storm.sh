#!/usr/bin/env bash
# Alert storm benchmark: 100,000 new alerts in 10 s across 10 services (3 in
# 10 sharing a template) into a fresh daemon on the in-process mock cluster;
# reports store bytes and peak RSS per alert, record->commit p99 and drain
# time. What it measures and its knobs: benches/e2e_throughput.rs (storm mode).
#   scripts/bench-storm.sh
#   E2E_STORM_ALERTS=20000 E2E_STORM_SECS=2 scripts/bench-storm.sh
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== machine: $(nproc) cores; $(uptime)"
E2E_MODE=storm cargo bench --locked --bench e2e_throughput "$@"
echo "== after: $(uptime)"
