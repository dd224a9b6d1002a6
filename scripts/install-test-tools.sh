#!/usr/bin/env bash
# Installs the Debian packages the observability tests run for real:
#   prometheus               -> /usr/bin/prometheus, /usr/bin/promtool
#   prometheus-alertmanager  -> /usr/bin/prometheus-alertmanager
# Only what is missing is installed; running it again does nothing. Needs
# root (or sudo) and apt-get. The packages' services are not started: the
# tests run the binaries themselves, on their own ports and data directories.
set -euo pipefail

want=()
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
  want+=(prometheus)
fi
if ! command -v prometheus-alertmanager >/dev/null 2>&1; then
  want+=(prometheus-alertmanager)
fi
[ "${#want[@]}" -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "install-test-tools: missing ${want[*]} and no apt-get: install them by hand" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo)
  else
    echo "install-test-tools: missing ${want[*]}; run as root (or install sudo)" >&2
    exit 1
  fi
fi

# Keep the packages' services from starting (ports 9090/9093 on the host):
# the standard policy-rc.d "deny" for the duration of the install, unless the
# machine already has a policy of its own.
POLICY=/usr/sbin/policy-rc.d
ours=0
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
  "${SUDO[@]}" chmod 755 "$POLICY"
  ours=1
fi
cleanup() { if [ "$ours" -eq 1 ]; then "${SUDO[@]}" rm -f "$POLICY"; fi; }
trap cleanup EXIT

echo "installing ${want[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
if ! { "${SUDO[@]}" apt-get update -qq &&
  "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${want[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  rm -f "$log"
  echo "install-test-tools: apt-get failed (above)" >&2
  exit 1
fi
rm -f "$log"

for b in promtool prometheus prometheus-alertmanager; do
  if ! command -v "$b" >/dev/null 2>&1; then
    echo "install-test-tools: $b still missing after installing ${want[*]}" >&2
    exit 1
  fi
done
