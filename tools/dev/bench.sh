#!/usr/bin/env bash
# `make bench`: the provisioning/teardown/API benchmark on the simulated cluster (or the cluster
# KUBECONFIG names). Arguments go to python -m tools.bench, e.g. `tools/dev/bench.sh --n 50`
# (`make bench BENCH_ARGS="--n 50"`); `tools/dev/bench.sh --help` lists them.
#
# The simulated cluster is started (or reused) with the SIMCLUSTER_* sizes you export; a
# reused cluster is resized to them, so set them only when nobody else is using it. 20 and 50
# stores fit the default 3 nodes; for more (--n 200, 1000) the harness adds simulated nodes until
# every store fits (each column's stores all stay up until its teardown). With a KUBECONFIG of
# your own it only checks, and says how many nodes it needs.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
if [[ " $* " == *" --help "* || " $* " == *" -h "* ]]; then
  exec .venv/bin/python -m tools.bench --help
fi
tools/dev/bootstrap.sh
eval "$(tools/dev/services.sh start)"
resize=()
if [[ -z "${KUBECONFIG:-}" ]]; then
  eval "$(tools/simcluster/start.sh)"
  # The simulated cluster is ours to size: nodes are added when the fleet does not fit.
  resize=(--resize-cluster)
else
  echo "bench: using the cluster of KUBECONFIG=$KUBECONFIG" >&2
  PATH="$(tools/simcluster/build.sh):$PATH"
fi
export HELM_BIN="${HELM_BIN:-$(command -v helm)}"
exec .venv/bin/python -m tools.bench "${resize[@]}" "$@"
