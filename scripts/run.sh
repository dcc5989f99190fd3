#!/usr/bin/env bash
# Runs Bay on a fresh machine: prerequisites, then `bun run start`
# (embedded libSQL under ./data, Docker driver, http://127.0.0.1:${BAY_PORT:-8000}).
set -euo pipefail
cd "$(dirname "$0")/.."
# Only what running Bay needs: the tests' own tools (IPython on the host, Chromium, Prometheus) are scripts/test.sh's.
BAY_PREREQS=run
source scripts/prereqs.sh
exec bun run start
