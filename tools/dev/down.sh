#!/usr/bin/env bash
# Stops what up.sh started: web, worker, scheduler (and their supervisord), the simulated cluster,
# Postgres and Redis.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
RUN_DIR="$repo/.run" tools/dev/processes.sh stop
if [[ -z "${KEEP_CLUSTER:-}" ]]; then tools/simcluster/stop.sh || true; fi
tools/dev/services.sh stop
