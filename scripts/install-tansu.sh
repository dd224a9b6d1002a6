#!/usr/bin/env bash
# Installs the Tansu broker used by the end-to-end tests into a cache outside
# the clone, keyed by version and features, and prints the binary's path.
# The build takes about 10 minutes the first time; later runs reuse the cache.
set -euo pipefail
VERSION="0.6.0"
FEATURES="libsql"
CACHE="${CORRELATOR_CACHE:-$HOME/.cache/correlator}"
ROOT="$CACHE/tansu-$VERSION-$FEATURES"
BIN="$ROOT/bin/tansu"
if [ -x "$BIN" ] && "$BIN" --help 2>&1 | grep -q "Storage engines: libsql"; then
  echo "$BIN"
  exit 0
fi
mkdir -p "$ROOT"
echo "installing tansu $VERSION ($FEATURES) into $ROOT (about 10 minutes)" >&2
TMP="$CACHE/tansu-build-tmp"
mkdir -p "$TMP"
CARGO_TARGET_DIR="$TMP" cargo install --locked tansu --version "$VERSION" \
  --features "$FEATURES" --root "$ROOT" >&2
rm -rf "$TMP"
if ! "$BIN" --help 2>&1 | grep -q "Storage engines: libsql"; then
  echo "tansu at $BIN has no libsql storage engine" >&2
  exit 1
fi
echo "$BIN"
