#!/usr/bin/env bash
# Runs every test: installs what is missing, starts Postgres and Redis, and runs pytest.
# Tests that need a cluster use the one KUBECONFIG names, or start the simulated one, with its real
# node (SIMCLUSTER_REAL_NODE=0 leaves it out; the tests in tests/realnode then error).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
export SIMCLUSTER_REAL_NODE="${SIMCLUSTER_REAL_NODE:-1}"
tools/dev/bootstrap.sh
eval "$(tools/dev/services.sh start)"
# Build the cluster tools up front (cached): a cold build inside pytest would count against the
# per-test timeout of the first test that needs the cluster. The same for the real node's images.
tools/simcluster/build.sh >/dev/null
if [[ "$SIMCLUSTER_REAL_NODE" == 1 ]]; then
  tools/simcluster/images/build.sh >/dev/null
fi
exec .venv/bin/pytest "$@"
