#!/usr/bin/env bash
# Runs every test on a fresh machine: prerequisites, then `bun run test` (unit,
# in-process API, Ship, and end-to-end tests on the real Docker engine), then —
# last, with nothing else running — the one test that restarts the Docker daemon
# (`bun run test:disruptive`). Arguments, if any, select files for `bun run test`
# and skip the disruptive test. Ends with one line: "tests: N passed, N failed".
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh

log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
bun run test "$@" 2>&1 | tee -a "$log" || status=1
if [ "$#" -eq 0 ]; then
  bun run test:disruptive 2>&1 | tee -a "$log" || status=1
fi
passed=$(grep -E '^ *[0-9]+ pass$' "$log" | awk '{s += $1} END {print s + 0}')
failed=$(grep -E '^ *[0-9]+ fail$' "$log" | awk '{s += $1} END {print s + 0}')
echo "tests: ${passed} passed, ${failed} failed"
exit "$status"
