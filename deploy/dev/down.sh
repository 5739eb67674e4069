#!/usr/bin/env bash
# Stops what up.sh started: web, worker, scheduler, the simulated cluster, Postgres and Redis.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
for name in web worker beat; do
  if [[ -f ".run/$name.pid" ]]; then
    kill "$(cat ".run/$name.pid")" 2>/dev/null || true
    rm -f ".run/$name.pid"
  fi
done
if [[ -z "${KEEP_CLUSTER:-}" ]]; then deploy/simcluster/stop.sh || true; fi
deploy/dev/services.sh stop
