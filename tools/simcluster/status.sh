#!/usr/bin/env bash
# Exit 0 and print the kubeconfig path when the simulated cluster answers;
# exit 1 otherwise. Never builds or starts anything.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"
kubectl="$cache_bin/kubectl"
if [[ -x "$kubectl" ]] && api_ready "$kubectl" && [[ -f "$SIMCLUSTER_KUBECONFIG" ]]; then
  echo "$SIMCLUSTER_KUBECONFIG"
  exit 0
fi
log "cluster $SIMCLUSTER_NAME is not running"
exit 1
