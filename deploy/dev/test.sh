#!/usr/bin/env bash
# Runs every test: installs what is missing, starts Postgres and Redis, and runs pytest.
# Tests that need a cluster use the one KUBECONFIG names, or start the simulated one.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
deploy/dev/bootstrap.sh
eval "$(deploy/dev/services.sh start)"
# Build the cluster tools up front (cached): a cold build inside pytest would count against the
# per-test timeout of the first test that needs the cluster.
deploy/simcluster/build.sh >/dev/null
exec .venv/bin/pytest "$@"
