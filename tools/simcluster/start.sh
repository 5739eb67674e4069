#!/usr/bin/env bash
# Starts the simulated cluster (or reuses it when it already runs) and prints,
# on stdout, lines for eval:
#   export KUBECONFIG=<state dir>/kubeconfig
#   export PATH=<bin dir>:$PATH        (helm, kubectl, kwokctl, ...)
# Progress goes to stderr. Usage: eval "$(tools/simcluster/start.sh)"
#
# A real kube-apiserver, kube-controller-manager, kube-scheduler and etcd built
# by build.sh, run by kwokctl's binary runtime on 127.0.0.1; kwok simulates the
# kubelets of SIMCLUSTER_NODES nodes. Environment (all optional):
#   SIMCLUSTER_NODES=3            number of simulated nodes
#   SIMCLUSTER_NODE_CPU=8         allocatable CPU per node
#   SIMCLUSTER_NODE_MEMORY=32Gi   allocatable memory per node
#   SIMCLUSTER_NODE_PODS=110      pods per node
#   SIMCLUSTER_NODE_STORAGE=100Gi allocatable ephemeral storage per node
#   SIMCLUSTER_APISERVER_PORT=0   API server port on 127.0.0.1 (0: a free one, chosen at creation)
#   SIMCLUSTER_STATE_DIR          state (kubeconfig, etcd data, logs);
#                                 default ${XDG_STATE_HOME:-~/.local/state}/store-orchestrator/simcluster
#   SIMCLUSTER_NAME=store-orchestrator
#   SIMCLUSTER_CACHE              build cache of build.sh
#   SIMCLUSTER_REAL_NODE=0        1: also a real node (kubelet, containerd, kube-proxy, CoreDNS;
#                                 realnode.sh), for tests that need real containers
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

nodes="${SIMCLUSTER_NODES:-3}"
node_cpu="${SIMCLUSTER_NODE_CPU:-8}"
node_memory="${SIMCLUSTER_NODE_MEMORY:-32Gi}"
node_pods="${SIMCLUSTER_NODE_PODS:-110}"
node_storage="${SIMCLUSTER_NODE_STORAGE:-100Gi}"
apiserver_port="${SIMCLUSTER_APISERVER_PORT:-0}"
real_node="${SIMCLUSTER_REAL_NODE:-0}"
[[ "$nodes" =~ ^[1-9][0-9]*$ ]] || { log "SIMCLUSTER_NODES must be a positive integer, got '$nodes'"; exit 2; }
[[ "$real_node" =~ ^[01]$ ]] || { log "SIMCLUSTER_REAL_NODE must be 0 or 1, got '$real_node'"; exit 2; }

bin="$("$here/build.sh")"
kubectl="$bin/kubectl"
mkdir -p "$SIMCLUSTER_STATE_DIR"

# One start at a time (parallel test runners, a Makefile and a shell). The lock's
# descriptor must not leak into the cluster's processes (they would hold it for ever):
# every command that starts them runs with 9>&-.
exec 9>"$SIMCLUSTER_STATE_DIR/start.lock"
flock -w 900 9 || { log "another start.sh/stop.sh has held $SIMCLUSTER_STATE_DIR/start.lock for 15 min"; exit 1; }

if api_ready "$kubectl"; then
  state="reused"
  log "cluster $SIMCLUSTER_NAME is already running; reusing it"
else
  state="started"
  # The kwokctl configuration: binaries from build.sh, loopback only, the
  # stages kept in stages/ (they replace kwok's defaults), and the controller
  # manager's hostPath provisioner for the default StorageClass.
  config="$SIMCLUSTER_STATE_DIR/kwokctl.yaml"
  {
    cat <<YAML
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeVersion: $KUBERNETES_VERSION
  kubeApiserverPort: $apiserver_port
  kubeApiserverBinary: $bin/kube-apiserver
  kubeControllerManagerBinary: $bin/kube-controller-manager
  kubeSchedulerBinary: $bin/kube-scheduler
  kubectlBinary: $bin/kubectl
  etcdBinary: $bin/etcd
  kwokControllerBinary: $bin/kwok
  securePort: true
  kubeAuthorization: true
  kubeAdmission: true
  quietPull: true
  kubeApiserverCertSANs: ["10.0.0.1"]
componentsPatches:
- name: kube-controller-manager
  extraArgs:
  - key: enable-hostpath-provisioner
    value: "true"
  # One instance: leader election only adds a way to exit (a paused API server makes it lose
  # the lease, and the process ends); supervise.sh restarts whatever exits all the same.
  - key: leader-elect
    value: "false"
  # The client's default 20 requests/s (burst 30) is a cluster of a few hundred pods: with 470
  # stores up, their WP-Cron Jobs (every 5 minutes, all in the same minute) queued the new stores'
  # setup Jobs behind them for 40 s and more, and a fleet benchmark fell from 65 to 10 stores a
  # minute at every fifth minute. Large clusters raise these; so does this one.
  - key: kube-api-qps
    value: "100"
  - key: kube-api-burst
    value: "200"
- name: kube-scheduler
  extraArgs:
  - key: leader-elect
    value: "false"
- name: kwok-controller
  extraArgs:
  # Only the simulated nodes (start.sh annotates them); never the real node and its pods.
  - key: manage-all-nodes
    value: "false"
    override: true
  - key: manage-nodes-with-annotation-selector
    value: kwok.x-k8s.io/node=fake
YAML
    if [[ "$real_node" == 1 ]]; then
      # Pods reach the API server as in production: the kubernetes Service (10.0.0.1:443,
      # through kube-proxy) whose endpoint is this machine's address, with a serving
      # certificate valid for it; and the API server reaches kubelet for logs and exec.
      ip="$(ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')"
      ip="$(ip -4 -o addr show dev "${ip:-lo}" | awk '{split($4,a,"/"); print a[1]; exit}')"
      cat <<YAML
- name: kube-apiserver
  extraArgs:
  - key: bind-address
    value: 0.0.0.0
    override: true
  - key: advertise-address
    value: "$ip"
  - key: kubelet-preferred-address-types
    value: InternalIP,Hostname
  - key: kubelet-client-certificate
    value: "$cluster_dir/pki/admin.crt"
  - key: kubelet-client-key
    value: "$cluster_dir/pki/admin.key"
YAML
    fi
    for f in "$here"/stages/*.yaml; do echo "---"; cat "$f"; done
  } > "$config.tmp"
  mv "$config.tmp" "$config"
  if [[ -d "$cluster_dir" ]]; then
    log "starting existing cluster $SIMCLUSTER_NAME (state in $cluster_dir)"
    # kwokctl keeps the configuration a cluster was created with (stages included).
    if ! cmp -s "$config" "$SIMCLUSTER_STATE_DIR/kwokctl.created.yaml"; then
      log "WARNING: the cluster was created with another configuration (stages, binaries or"
      log "  options changed since); 'stop.sh --delete' and start.sh again to apply it"
    fi
  else
    cp "$config" "$SIMCLUSTER_STATE_DIR/kwokctl.created.yaml"
    log "creating cluster $SIMCLUSTER_NAME (state in $cluster_dir)"
  fi
  # create is idempotent: an existing but stopped cluster is started again with
  # its saved configuration and data. --kubeconfig "" leaves ~/.kube/config alone.
  "$bin/kwokctl" --name "$SIMCLUSTER_NAME" --config "$config" create cluster \
    --kubeconfig "" --timeout 5m </dev/null >&2 9>&- || {
      log "kwokctl failed; component logs are in $cluster_dir/logs"; exit 1; }
  for _ in $(seq 1 120); do api_ready "$kubectl" && break; sleep 1; done
  api_ready "$kubectl" || { log "API server not ready after 120s; see $cluster_dir/logs"; exit 1; }
fi

k() { "$kubectl" --kubeconfig "$kwok_kubeconfig" "$@"; }

# Nodes sim-node-1..N with the requested size (created or resized), extra ones removed.
{
  for i in $(seq 1 "$nodes"); do
    cat <<YAML
---
apiVersion: v1
kind: Node
metadata:
  name: sim-node-$i
  annotations:
    kwok.x-k8s.io/node: fake
    node.alpha.kubernetes.io/ttl: "0"
  labels:
    kubernetes.io/arch: amd64
    kubernetes.io/hostname: sim-node-$i
    kubernetes.io/os: linux
    node-role.kubernetes.io/worker: ""
    topology.kubernetes.io/zone: sim-zone-$(( (i - 1) % 3 + 1 ))
    type: kwok
spec:
  podCIDR: 10.244.$i.0/24
status:
  addresses:
  - address: 10.89.0.$(( i + 10 ))
    type: InternalIP
  - address: sim-node-$i
    type: Hostname
  allocatable: {cpu: "$node_cpu", memory: "$node_memory", pods: "$node_pods", ephemeral-storage: "$node_storage"}
  capacity: {cpu: "$node_cpu", memory: "$node_memory", pods: "$node_pods", ephemeral-storage: "$node_storage"}
YAML
  done
} | k apply -f - >&2
# A resize of an existing node: status is not applied by apply, so patch it.
for i in $(seq 1 "$nodes"); do
  k patch node "sim-node-$i" --subresource=status --type=merge -p "{\"status\":{
    \"allocatable\":{\"cpu\":\"$node_cpu\",\"memory\":\"$node_memory\",\"pods\":\"$node_pods\",\"ephemeral-storage\":\"$node_storage\"},
    \"capacity\":{\"cpu\":\"$node_cpu\",\"memory\":\"$node_memory\",\"pods\":\"$node_pods\",\"ephemeral-storage\":\"$node_storage\"}}}" >/dev/null
done
for n in $(k get nodes -l type=kwok -o name); do
  idx="${n#node/sim-node-}"
  if [[ ! "$idx" =~ ^[0-9]+$ ]] || (( idx > nodes )); then k delete "$n" --wait=false >&2; fi
done

k apply -f "$here/manifests/cluster-setup.yaml" >&2

# Ready means: nodes Ready, and the default ServiceAccount exists (pods can be created).
k wait --for=condition=Ready node -l type=kwok --timeout=120s >/dev/null
for _ in $(seq 1 60); do k -n default get serviceaccount default >/dev/null 2>&1 && break; sleep 1; done
k -n default get serviceaccount default >/dev/null

if [[ "$real_node" == 1 ]]; then
  "$here/realnode.sh" start 9>&-
fi
# Restart any component that exits (the real node's too), until stop.sh.
"$here/supervise.sh" start 9>&-

# The kubeconfig for users and tests: self-contained (certificates embedded).
umask 077
k config view --raw --flatten > "$SIMCLUSTER_KUBECONFIG.tmp"
mv "$SIMCLUSTER_KUBECONFIG.tmp" "$SIMCLUSTER_KUBECONFIG"

log "cluster $SIMCLUSTER_NAME ready ($state): $(k get --raw /version | sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'), $nodes nodes x ${node_cpu} CPU/${node_memory}$( [[ "$real_node" == 1 ]] && echo " + real node $REAL_NODE_NAME"); kubeconfig $SIMCLUSTER_KUBECONFIG"
echo "# simcluster: $state"
printf 'export KUBECONFIG=%q\n' "$SIMCLUSTER_KUBECONFIG"
printf 'export PATH=%q:"$PATH"\n' "$bin"
