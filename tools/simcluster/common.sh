# Shared settings of start.sh, stop.sh and status.sh (sourced, not run).
# shellcheck shell=bash
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
SIMCLUSTER_NAME="${SIMCLUSTER_NAME:-store-orchestrator}"
SIMCLUSTER_STATE_DIR="${SIMCLUSTER_STATE_DIR:-${XDG_STATE_HOME:-$HOME/.local/state}/store-orchestrator/simcluster}"
# kwokctl keeps each cluster (config, pki, etcd data, logs, pids) under $KWOK_WORKDIR/clusters/<name>.
export KWOK_WORKDIR="$SIMCLUSTER_STATE_DIR/kwok"
cluster_dir="$KWOK_WORKDIR/clusters/$SIMCLUSTER_NAME"
kwok_kubeconfig="$cluster_dir/kubeconfig.yaml"
# The kubeconfig handed to users and tests: certificates embedded, stable path.
SIMCLUSTER_KUBECONFIG="$SIMCLUSTER_STATE_DIR/kubeconfig"

# build.sh's bin directory (helm, kubectl, kwokctl): used as is by stop.sh and
# status.sh, which never build.
cache_bin="${SIMCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-orchestrator/simcluster}/bin"

log() { echo "simcluster: $*" >&2; }

# api_ready KUBECTL: true when the API server of this cluster answers /readyz.
api_ready() {
  [[ -f "$kwok_kubeconfig" ]] && "$1" --kubeconfig "$kwok_kubeconfig" --request-timeout=5s get --raw /readyz >/dev/null 2>&1
}

# The real node (SIMCLUSTER_REAL_NODE=1; realnode.sh). Tests select it with this label and
# tolerate this taint; the images named here are built on this machine, never pulled.
REAL_NODE_NAME=real-node
REAL_NODE_LABEL=simcluster/real-node
REAL_NODE_TAINT_KEY=simcluster/real-node
CLUSTER_DNS_IP=10.0.0.10
PAUSE_IMAGE=localhost/simcluster/pause:catatonit
TOOLBOX_IMAGE=localhost/simcluster/toolbox:busybox
