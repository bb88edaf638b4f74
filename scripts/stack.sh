#!/usr/bin/env bash
# The demo exporter with a local Prometheus and Alertmanager, all on 127.0.0.1, no Docker.
#
# Prometheus and Alertmanager run the shipped configs (prometheus/prometheus.yml, the rules
# in prometheus/rules/, alertmanager/alertmanager.yml), derived for localhost by
# scripts/bundle_config.py, the same code the end-to-end test uses. Data and logs live in
# a temporary directory that is removed at exit. Ctrl-C stops everything.
#
#   scripts/stack.sh
#   MODELMON_PORT=19847 PROMETHEUS_PORT=19090 ALERTMANAGER_PORT=19093 scripts/stack.sh
#
# Environment:
#   MODELMON_PORT, PROMETHEUS_PORT, ALERTMANAGER_PORT   ports (9847, 9090, 9093)
#   STACK_WEBHOOK    base URL; every receiver posts to $STACK_WEBHOOK/<receiver name>
#                    (webhook, pager, chat). Unset: receivers notify nobody.
#   STACK_FOR        replace every alert's `for` (e.g. 30s) to see the demo's drift fire
#                    within minutes; unset: the shipped durations.
#   STACK_DURATION   stop after this many seconds (the demo's --duration); unset: run
#                    until Ctrl-C.
#   PYTHON           the Python with modelmon installed (python3).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
MODELMON_PORT=${MODELMON_PORT:-9847}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
ALERTMANAGER_PORT=${ALERTMANAGER_PORT:-9093}

# The first of the given programs on PATH (Debian calls Alertmanager
# prometheus-alertmanager).
find_program() {
  local name
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  echo "stack.sh: none of '$*' is on PATH; install Prometheus and Alertmanager" >&2
  return 1
}
prometheus_bin=$(find_program prometheus)
alertmanager_bin=$(find_program alertmanager prometheus-alertmanager)

work=$(mktemp -d "${TMPDIR:-/tmp}/modelmon-stack.XXXXXX")
pids=()

# Stop every started process (SIGTERM, then wait), show the logs' tails if one failed,
# remove the temporary directory. Runs once, at any exit.
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  local pid
  for pid in "${pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
  for pid in "${pids[@]}"; do
    wait "$pid" 2>/dev/null || true
  done
  if [[ $status -ne 0 && $status -ne 130 ]]; then
    local log
    for log in "$work"/*.log; do
      [[ -f $log ]] && { echo "--- $log"; tail -n 20 "$log"; }
    done
  fi
  rm -rf "$work"
  echo "stack.sh: stopped"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

args=(--out "$work/config"
  --exporter "127.0.0.1:$MODELMON_PORT"
  --prometheus "127.0.0.1:$PROMETHEUS_PORT"
  --alertmanager "127.0.0.1:$ALERTMANAGER_PORT"
  --scrape-interval 5s --evaluation-interval 5s
  --timings 10s,1m,4h)
[[ -n ${STACK_WEBHOOK:-} ]] && args+=(--webhook "$STACK_WEBHOOK")
[[ -n ${STACK_FOR:-} ]] && args+=(--for "$STACK_FOR")
"$PYTHON" scripts/bundle_config.py "${args[@]}" >/dev/null

demo=("$PYTHON" -m modelmon demo --listen "127.0.0.1:$MODELMON_PORT")
[[ -n ${STACK_DURATION:-} ]] && demo+=(--duration "$STACK_DURATION")
"${demo[@]}" >"$work/modelmon.log" 2>&1 &
pids+=($!)

"$alertmanager_bin" --config.file="$work/config/alertmanager.yml" \
  --storage.path="$work/alertmanager" \
  --web.listen-address="127.0.0.1:$ALERTMANAGER_PORT" \
  --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
pids+=($!)

"$prometheus_bin" --config.file="$work/config/prometheus.yml" \
  --storage.tsdb.path="$work/prometheus" \
  --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$work/prometheus.log" 2>&1 &
pids+=($!)

cat <<EOF
modelmon demo   http://127.0.0.1:$MODELMON_PORT/metrics
Prometheus      http://127.0.0.1:$PROMETHEUS_PORT   (alerts: /alerts, rules: /rules)
Alertmanager    http://127.0.0.1:$ALERTMANAGER_PORT
data and logs   $work (removed at exit)
Ctrl-C stops everything.
EOF

# Return when the first process exits (the demo after STACK_DURATION, or a crash).
status=0
wait -n || status=$?
if [[ -n ${STACK_DURATION:-} && $status -eq 0 ]]; then
  exit 0
fi
echo "stack.sh: a process exited (status $status)" >&2
exit 1
