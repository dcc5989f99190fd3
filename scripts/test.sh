#!/usr/bin/env bash
# Runs every test on a fresh machine: prerequisites, then `bun test`
# (unit, in-process API, Ship, and end-to-end tests on the real Docker engine).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
bun run test "$@"
