#!/usr/bin/env bash
# Installs what the test suite needs on a fresh Debian/Ubuntu machine:
#   - the package with its test extra (PyPI),
#   - the real Prometheus (promtool), Alertmanager (amtool), Pushgateway, Redis and
#     docker-compose binaries (Debian packages), which the tests start on loopback,
#   - Chromium (Debian package), in which the tests open `modelmon check`'s HTML report.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

"$PYTHON" -m pip install -q -e '.[test]'
# The training adapters' frameworks, so that their tests run against the real packages
# (under CI=true a missing one fails). torch first, pinned to the CPU build this kind of
# machine keeps on local disk; then the rest of the frameworks extra. About a minute.
# MODELMON_NO_FRAMEWORKS=1 skips them (their tests then skip outside CI).
if [ "${MODELMON_NO_FRAMEWORKS:-0}" != 1 ]; then
  "$PYTHON" -m pip install -q 'torch==2.13.0'
  "$PYTHON" -m pip install -q -e '.[frameworks]'
fi

missing=()
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v prometheus-pushgateway >/dev/null 2>&1 || missing+=(prometheus-pushgateway)
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -eq 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  elif command -v sudo >/dev/null 2>&1; then
    sudo apt-get update -qq
    sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
  else
    echo "install these Debian packages first: ${missing[*]}" >&2
    exit 1
  fi
fi
# The Debian packages start their services; the tests start their own on free ports.
for svc in prometheus prometheus-alertmanager prometheus-pushgateway prometheus-node-exporter \
  redis-server; do
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet "$svc" 2>/dev/null; then
    systemctl stop "$svc" || true
  fi
done
