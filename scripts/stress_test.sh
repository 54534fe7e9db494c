#!/usr/bin/env bash
# Run the whole test suite while busy loops keep every core loaded, RUNS times in a row (default
# 3): a test that passes only on a quiet machine (a read that races an update, a timing
# assumption) fails here. The busy loops are this script's own children and end with it.
#
#   bash scripts/stress_test.sh              # 3 runs of scripts/test_all.sh under load
#   RUNS=1 bash scripts/stress_test.sh       # one run
#   BUSY=4 bash scripts/stress_test.sh       # 4 busy loops instead of one per core
#
# Exits non-zero at the first failing run (its log is test-artifacts/stress-run-<k>.log).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
RUNS="${RUNS:-3}"
BUSY="${BUSY:-$(nproc)}"
mkdir -p test-artifacts

busy_pids=()
stop_busy() { for pid in "${busy_pids[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap stop_busy EXIT
for _ in $(seq "$BUSY"); do
  # A pure-shell busy loop: one core each, no memory, no I/O (like stress --cpu).
  bash -c 'while :; do :; done' &
  busy_pids+=("$!")
done
echo "started $BUSY busy loops: ${busy_pids[*]}"

for run in $(seq "$RUNS"); do
  log="test-artifacts/stress-run-$run.log"
  echo "run $run of $RUNS (log: $log, load: $(cut -d' ' -f1-3 /proc/loadavg))"
  if ! bash scripts/test_all.sh >"$log" 2>&1; then
    echo "run $run FAILED under load; see $log" >&2
    tail -40 "$log" >&2
    exit 1
  fi
  echo "run $run passed"
done
echo "all $RUNS runs passed under $BUSY busy loops"
