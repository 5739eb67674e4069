#!/usr/bin/env bash
# Stops the simulated cluster started by start.sh.
#   stop.sh           stop every component; etcd data, certificates and the
#                     kubeconfig are kept, so start.sh brings the same cluster back.
#   stop.sh --delete  stop and delete the cluster with all its data (next start is fresh).
# Does nothing (exit 0) when there is no such cluster. Logs go to stderr.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

delete=false
case "${1:-}" in
  "") ;;
  --delete) delete=true ;;
  *) echo "usage: $0 [--delete]" >&2; exit 2 ;;
esac

if [[ ! -d "$cluster_dir" ]]; then
  log "no cluster $SIMCLUSTER_NAME under $KWOK_WORKDIR; nothing to stop"
  exit 0
fi
# The cached tools; build.sh only if they are missing.
bin="$cache_bin"
[[ -x "$bin/kwokctl" && -x "$bin/kubectl" ]] || bin="$("$here/build.sh")"

mkdir -p "$SIMCLUSTER_STATE_DIR"
exec 9>"$SIMCLUSTER_STATE_DIR/start.lock"
flock -w 900 9 || { log "another start.sh/stop.sh has held $SIMCLUSTER_STATE_DIR/start.lock for 15 min"; exit 1; }

# The watchdog first, or it would start again what is stopped here on purpose.
"$here/supervise.sh" stop
if $delete; then
  pv_dirs=()
  if api_ready "$bin/kubectl"; then
    while read -r d; do
      if [[ "$d" == /tmp/hostpath_pv/* ]]; then pv_dirs+=("$d"); fi
    done < <("$bin/kubectl" --kubeconfig "$kwok_kubeconfig" get pv \
               -o jsonpath='{range .items[*]}{.spec.hostPath.path}{"\n"}{end}' 2>/dev/null || true)
  fi
  "$here/realnode.sh" delete 9>&-
  log "deleting cluster $SIMCLUSTER_NAME and its data"
  "$bin/kwokctl" --name "$SIMCLUSTER_NAME" delete cluster --kubeconfig "$SIMCLUSTER_KUBECONFIG" </dev/null >&2 9>&-
  rm -f "$SIMCLUSTER_KUBECONFIG" "$SIMCLUSTER_STATE_DIR/kwokctl.yaml" "$SIMCLUSTER_STATE_DIR/kwokctl.created.yaml"
  # The directories the hostPath provisioner made for this cluster's PVs.
  if [[ ${#pv_dirs[@]} -gt 0 ]]; then rm -rf -- "${pv_dirs[@]}"; fi
else
  "$here/realnode.sh" stop 9>&-
  log "stopping cluster $SIMCLUSTER_NAME (data kept; 'stop.sh --delete' removes it)"
  "$bin/kwokctl" --name "$SIMCLUSTER_NAME" stop cluster </dev/null >&2 9>&-
fi
