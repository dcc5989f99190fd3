#!/usr/bin/env bash
# Runs Bay on a fresh machine: prerequisites, then `bun run start`
# (embedded libSQL under ./data, Docker driver, http://127.0.0.1:${BAY_PORT:-8000}).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/prereqs.sh
exec bun run start
