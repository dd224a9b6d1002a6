#!/usr/bin/env bash
# Soak and fault-injection run (see scripts/soak.py): the webhook under valid,
# poison, slow and stalled clients, with kill -9 restarts; checks that every
# acknowledged alert is in an incident and that health reports the truth.
#   scripts/soak.sh [--minutes N] [--kill-every S] [--seed N]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --bin correlator
exec python3 scripts/soak.py --binary target/release/correlator "$@"
