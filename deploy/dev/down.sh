#!/usr/bin/env bash
# Stops what up.sh started: web, worker, scheduler (and their supervisord), the simulated cluster,
# Postgres and Redis.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
RUN_DIR="$repo/.run" deploy/dev/processes.sh stop
if [[ -z "${KEEP_CLUSTER:-}" ]]; then deploy/simcluster/stop.sh || true; fi
deploy/dev/services.sh stop
