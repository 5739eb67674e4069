#!/usr/bin/env bash
# The simulated cluster's real node: a kubelet with containerd, runc and the CNI bridge on this
# machine, kube-proxy (iptables) so Service IPs route, and CoreDNS serving *.svc.cluster.local.
# Called by start.sh (SIMCLUSTER_REAL_NODE=1) and stop.sh; not meant to be run alone.
#   realnode.sh start           start (or keep) every node component; idempotent
#   realnode.sh stop            stop them and undo everything they did to this machine
#                               (mounts, cgroups, bridge, iptables chains); images are kept
#   realnode.sh delete          stop, then remove the node's state (images included)
#   realnode.sh import FILE...  import image archives (docker or OCI) into the node's containerd
#   realnode.sh ensure-image REF FILE   import FILE unless the image REF is there already
#   realnode.sh relaunch NAME   start one component again with its saved command (supervise.sh)
#   realnode.sh volume-permissions   (a node component: opens new hostPath PV directories)
# Everything lives under <state dir>/realnode (private containerd root, state and socket);
# what a kubelet insists on putting elsewhere is listed in a manifest and removed on stop.
set -euo pipefail
# shellcheck source=common.sh
source "$(cd "$(dirname "$0")" && pwd)/common.sh"

rn="$SIMCLUSTER_STATE_DIR/realnode"
node="$REAL_NODE_NAME"
pod_cidr="10.244.0.0/24"
pod_gateway="10.244.0.1"
cluster_cidr="10.244.0.0/16"
bridge="simcluster0"
sock="$rn/containerd/containerd.sock"
pki="$cluster_dir/pki"
bin="$cache_bin"
images_cache="${SIMCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-orchestrator/simcluster}/images"
# One real node per machine: the pod range, the bridge and kubelet's fixed paths are global.
owner_file=/run/store-orchestrator-real-node.owner
# Paths outside <state dir> that kubelet, containerd and the CNI plugins write to.
global_paths=(/var/lib/kubelet /var/log/containers /var/log/pods /var/lib/cni /run/containerd /etc/cni/net.d)

rlog() { echo "simcluster: real node: $*" >&2; }

node_ip() {
  local dev
  dev="$(ip -4 route show default | awk '{for (i=1;i<NF;i++) if ($i=="dev") {print $(i+1); exit}}')"
  ip -4 -o addr show dev "${dev:-lo}" | awk '{split($4,a,"/"); print a[1]; exit}'
}

need_packages() {
  local missing=() cmd
  for cmd in containerd containerd-shim-runc-v2 runc ctr iptables conntrack catatonit busybox openssl inotifywait; do
    command -v "$cmd" >/dev/null || missing+=("$cmd")
  done
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/portmap ]] || missing+=(cni-plugins)
  if ((${#missing[@]})); then
    rlog "missing ${missing[*]}: run 'SIMCLUSTER_REAL_NODE=1 tools/dev/bootstrap.sh' (Debian packages"
    rlog "  containerd runc containernetworking-plugins iptables conntrack catatonit busybox-static openssl"
    rlog "  inotify-tools)"
    exit 1
  fi
}

# --- processes: each component's command line is saved, so supervise.sh can start it again ---

pid_of() { local f="$rn/run/$1.pid"; [[ -f "$f" ]] && cat "$f"; }
running() { local pid; pid="$(pid_of "$1")" && [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }

# launch NAME ARGV...: start ARGV in its own session, logging to logs/NAME.log, unless running.
launch() {
  local name="$1"; shift
  running "$name" && return 0
  mkdir -p "$rn/run" "$rn/logs"
  printf '%s\0' "$@" > "$rn/run/$name.cmd"
  relaunch "$name"
}
relaunch() {
  local name="$1" argv=()
  running "$name" && return 0
  mapfile -d '' argv < "$rn/run/$name.cmd"
  echo "--- $(date -Is) starting:$(printf ' %q' "${argv[@]}")" >> "$rn/logs/$name.log"
  # Its own session and process group (setsid), no inherited descriptors (start.sh's lock
  # is fd 9); $! is then the component itself.
  setsid "${argv[@]}" </dev/null >>"$rn/logs/$name.log" 2>&1 8>&- 9>&- &
  echo $! > "$rn/run/$name.pid"
}
stop_process() {
  local name="$1" pid i
  pid="$(pid_of "$name")" || return 0
  if [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$rn/run/$name.pid"
}
wait_for() { # wait_for SECONDS WHAT CMD...
  local secs="$1" what="$2" i; shift 2
  for i in $(seq 1 $((secs * 2))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.5; done
  rlog "$what not ready after ${secs}s; logs in $rn/logs"; return 1
}

# --- identities: client certificates signed by the cluster's CA, as kubeadm would issue ---

issue_cert() { # issue_cert NAME CN [O]
  local name="$1" cn="$2" org="${3:-}" subj
  [[ -f "$rn/pki/$name.crt" ]] && return 0
  subj="/CN=$cn"; [[ -n "$org" ]] && subj="/O=$org$subj"
  openssl req -new -newkey rsa:2048 -nodes -keyout "$rn/pki/$name.key" -subj "$subj" \
    -out "$rn/pki/$name.csr" 2>/dev/null
  openssl x509 -req -in "$rn/pki/$name.csr" -CA "$pki/ca.crt" -CAkey "$pki/ca.key" -CAcreateserial \
    -days 3650 -out "$rn/pki/$name.crt" 2>/dev/null
  rm -f "$rn/pki/$name.csr"
}
write_kubeconfig() { # write_kubeconfig NAME: kubeconfig for the certificate NAME
  local server
  server="$(sed -n 's/^ *server: *//p' "$kwok_kubeconfig" | head -1)"
  put "$rn/$1.kubeconfig" <<YAML
apiVersion: v1
kind: Config
clusters:
- name: simcluster
  cluster: {server: "$server", certificate-authority: "$pki/ca.crt"}
users:
- name: $1
  user: {client-certificate: "$rn/pki/$1.crt", client-key: "$rn/pki/$1.key"}
contexts:
- name: default
  context: {cluster: simcluster, user: $1}
current-context: default
YAML
}

# --- configuration files ---

# put FILE < content: replace FILE only when the content differs (kube-proxy exits when its
# configuration file changes under it, even to the same content).
put() {
  cat > "$1.new"
  if cmp -s "$1.new" "$1"; then rm -f "$1.new"; else mv "$1.new" "$1"; fi
}

write_configs() {
  local ip="$1"
  mkdir -p "$rn/pki" "$rn/cni/net.d" "$rn/cni/ipam" "$rn/containerd" "$rn/kubelet" "$rn/pod-logs" "$rn/volume-plugins"
  issue_cert kubelet "system:node:$node" system:nodes
  issue_cert kube-proxy system:kube-proxy
  issue_cert coredns system:coredns
  local c; for c in kubelet kube-proxy coredns; do write_kubeconfig "$c"; done

  put "$rn/containerd/config.toml" <<TOML
# Private containerd of the real node (see tools/simcluster/realnode.sh).
version = 2
root = "$rn/containerd/root"
state = "$rn/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs",
  "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.tracing.processor.v1.otlp"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # No CAP_SYS_RESOURCE here: never lower a container's oom_score_adj below ours.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$rn/cni/net.d"
TOML

  put "$rn/cni/net.d/10-simcluster.conflist" <<JSON
{
  "cniVersion": "1.0.0",
  "name": "simcluster",
  "plugins": [
    {"type": "bridge", "bridge": "$bridge", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "dataDir": "$rn/cni/ipam",
              "ranges": [[{"subnet": "$pod_cidr", "gateway": "$pod_gateway"}]],
              "routes": [{"dst": "0.0.0.0/0"}]}},
    {"type": "portmap", "capabilities": {"portMappings": true}, "snat": true}
  ]
}
JSON

  put "$rn/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine mounts cgroup v1 hierarchies; kubelet v1.35+ refuses them unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
failSwapOn: false
oomScoreAdj: 0
containerRuntimeEndpoint: unix://$sock
# Imported images cannot be pulled again: never garbage-collect them, and keep the disk
# eviction thresholds low so that eviction never triggers an image clean-up either.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%", imagefs.inodesFree: "1%"}
podLogsDir: $rn/pod-logs
volumePluginDir: $rn/volume-plugins
address: $ip
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
clusterDNS: [$CLUSTER_DNS_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
maxPods: 60
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $pki/ca.crt}
authorization: {mode: Webhook}
registerWithTaints:
- {key: $REAL_NODE_TAINT_KEY, value: "true", effect: NoSchedule}
YAML

  put "$rn/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $rn/kube-proxy.kubeconfig}
hostnameOverride: $node
bindAddress: $ip
clusterCIDR: $cluster_cidr
metricsBindAddress: 127.0.0.1:10249
healthzBindAddress: 127.0.0.1:10256
nodePortAddresses: [$ip/32]
# Leave the machine's conntrack sysctls as they are (no CAP_SYS_RESOURCE, shared machine).
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML

  put "$rn/Corefile" <<COREFILE
.:53 {
    bind $ip
    errors
    health 127.0.0.1:10254
    ready 127.0.0.1:10253
    kubernetes cluster.local in-addr.arpa ip6.arpa {
        kubeconfig $rn/coredns.kubeconfig default
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 5
    }
    forward . /etc/resolv.conf
    cache 5
    loadbalance
    reload
}
COREFILE
}

# --- images ---

# The pause image: catatonit (Debian, static) alone in a scratch root filesystem.
pause_archive() {
  local key out
  key="$(cat /usr/bin/catatonit "$here/image_archive.py" | sha256sum | cut -c1-16)"
  out="$images_cache/pause-$key.tar"
  if [[ ! -f "$out" ]]; then
    mkdir -p "$images_cache"
    python3 "$here/image_archive.py" "$out" "$PAUSE_IMAGE" --add /usr/bin/catatonit:/catatonit \
      --entrypoint '["/catatonit", "-P"]' --user 65535
  fi
  echo "$out"
}
# A toolbox for tests and debugging: busybox (Debian, static): sh, wget, nslookup, nc, httpd (its
# wget crashes with -T: use `timeout N wget`); and Debian's openssl with the libraries it links,
# for what busybox's TLS cannot do (verify a certificate, talk to Go's TLS servers).
toolbox_applets="sh ash awk cat echo env grep hostname httpd id kill ls mkdir nc nslookup ping printf ps sed sleep test timeout touch true false wget"
toolbox_archive() {
  local key out args=() applet lib libs
  libs="$(ldd /usr/bin/openssl | awk '/=>/ {print $3} /ld-linux/ {print $1}')"
  # shellcheck disable=SC2086
  key="$( (cat /bin/busybox /usr/bin/openssl $libs "$here/image_archive.py"; echo "$toolbox_applets") | sha256sum | cut -c1-16)"
  out="$images_cache/toolbox-$key.tar"
  if [[ ! -f "$out" ]]; then
    mkdir -p "$images_cache"
    for applet in $toolbox_applets; do
      args+=(--link "/bin/$applet=busybox")
    done
    for lib in $libs; do args+=(--add "$lib:$lib"); done
    python3 "$here/image_archive.py" "$out" "$TOOLBOX_IMAGE" --add /bin/busybox:/bin/busybox \
      --add /usr/bin/openssl:/bin/openssl "${args[@]}" --cmd '["/bin/sh"]'
  fi
  echo "$out"
}
ctr_() { ctr --address "$sock" --namespace k8s.io "$@"; }
import_images() {
  local f
  for f in "$@"; do
    rlog "importing $(basename "$f")"
    ctr_ images import "$f" >/dev/null
  done
}

# ensure_image REF ARCHIVE: import ARCHIVE unless REF is there already. The images of
# tools/simcluster/images are tagged by the hash of their inputs, so a present REF is current.
ensure_image() {
  [[ -S "$sock" ]] || { rlog "not running (no $sock): start the cluster with SIMCLUSTER_REAL_NODE=1"; exit 1; }
  if ! ctr_ images list -q "name==$1" | grep -qx "$1"; then
    import_images "$2"
  fi
}

# --- start ---

start() {
  need_packages
  if [[ -f "$owner_file" && "$(cat "$owner_file")" != "$rn" && -d "$(cat "$owner_file")" ]] \
     && ip link show "$bridge" >/dev/null 2>&1; then
    rlog "another simulated cluster runs the real node on this machine ($(cat "$owner_file"));"
    rlog "  stop it first, or start this one without SIMCLUSTER_REAL_NODE=1"
    exit 1
  fi
  echo "$rn" > "$owner_file"
  local ip t0; ip="$(node_ip)"; t0=$(date +%s)
  [[ -n "$ip" ]] || { rlog "cannot find this machine's address (no default route)"; exit 1; }
  mkdir -p "$rn"
  [[ -f "$rn/ip_forward.saved" ]] || cat /proc/sys/net/ipv4/ip_forward > "$rn/ip_forward.saved"
  local p; for p in "${global_paths[@]}"; do
    [[ -e "$p" || -f "$rn/created-paths" ]] || echo "$p" >> "$rn/created-paths.new"
  done
  [[ -f "$rn/created-paths.new" ]] && mv "$rn/created-paths.new" "$rn/created-paths"
  touch "$rn/created-paths"
  write_configs "$ip"

  launch containerd containerd --config "$rn/containerd/config.toml"
  wait_for 30 containerd ctr --address "$sock" version
  import_images "$(pause_archive)" "$(toolbox_archive)"

  launch kubelet "$bin/kubelet" --config "$rn/kubelet.yaml" --kubeconfig "$rn/kubelet.kubeconfig" \
    --root-dir "$rn/kubelet" --cert-dir "$rn/kubelet/pki" --hostname-override "$node" --node-ip "$ip" \
    --node-labels "$REAL_NODE_LABEL=true,type=real" --v=1
  launch kube-proxy "$bin/kube-proxy" --config "$rn/kube-proxy.yaml" --v=1
  launch coredns "$bin/coredns" -conf "$rn/Corefile"
  launch volume-permissions "$here/realnode.sh" volume-permissions

  local k=("$bin/kubectl" --kubeconfig "$kwok_kubeconfig")
  wait_for 60 "node $node" "${k[@]}" get node "$node"
  # The pod range of the bridge, as a node IPAM controller would record it (settable once).
  "${k[@]}" patch node "$node" --type=merge -p "{\"spec\":{\"podCIDR\":\"$pod_cidr\",\"podCIDRs\":[\"$pod_cidr\"]}}" \
    >/dev/null 2>&1 || true
  sed -e "s/@NODE_IP@/$ip/g" -e "s/@NODE@/$node/g" -e "s/@DNS_IP@/$CLUSTER_DNS_IP/g" \
    "$here/manifests/real-node.yaml" | "${k[@]}" apply -f - >/dev/null
  "${k[@]}" wait --for=condition=Ready "node/$node" --timeout=120s >/dev/null
  wait_for 30 "CoreDNS" wget -q -O /dev/null http://127.0.0.1:10253/ready
  wait_for 30 "kube-proxy" wget -q -O /dev/null http://127.0.0.1:10256/healthz
  rlog "node $node Ready at $ip (pods $pod_cidr, DNS $CLUSTER_DNS_IP) in $(( $(date +%s) - t0 ))s"
}

# The controller manager's hostPath provisioner makes each PV directory root-owned, mode 0750, so
# a container running as its own uid (postgres, redis, node) could not write its volume. Open each
# one as it appears, as kind's local-path provisioner does (0777). Runs as a node component.
volume_permissions() {
  local base=/tmp/hostpath_pv d
  mkdir -p "$base"
  find "$base" -mindepth 1 -maxdepth 1 -type d -perm 0750 -exec chmod 0777 {} +
  inotifywait -m -q -e create -e moved_to --format '%w%f' "$base" | while read -r d; do
    [[ -d "$d" ]] && chmod 0777 "$d"
  done
}

# --- stop: undo everything, in the reverse order ---

unmount_under() {
  local dir="$1" m
  [[ -d "$dir" ]] || return 0
  # Deepest first; lazily, so a mount still in use cannot block the stop.
  while read -r m; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; done \
    < <(awk -v d="$dir" '$5 == d || index($5, d "/") == 1 {print $5}' /proc/self/mountinfo | sort -r)
}
remove_cgroups() {
  local h
  for h in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
    [[ -d "$h/kubepods" ]] || continue
    find "$h/kubepods" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done
}
remove_chains() { # remove_chains IPTABLES TABLE PATTERN: rules referring to, then the chains matching
  local ipt="$1" table="$2" pattern="$3" rule chain
  while read -r rule; do
    eval "$ipt -t $table ${rule/-A /-D }" 2>/dev/null || true
  done < <($ipt -t "$table" -S 2>/dev/null | grep -E -- "^-A .*-j ($pattern)" || true)
  for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N/{print $2}' | grep -E "^($pattern)$" || true); do
    $ipt -t "$table" -F "$chain" 2>/dev/null || true
  done
  for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N/{print $2}' | grep -E "^($pattern)$" || true); do
    $ipt -t "$table" -X "$chain" 2>/dev/null || true
  done
}

# The bridge plugin's per-pod masquerade chains of this network (a pod killed with the node gets no
# CNI DEL). Other CNI users' chains (podman's, say) carry another network name and stay.
remove_masquerade_chains() { # remove_masquerade_chains IPTABLES
  local ipt="$1" rule chain
  while read -r rule; do
    chain="$(sed -n 's/.*-j \(CNI-[0-9a-f]*\).*/\1/p' <<<"$rule")"
    eval "$ipt -t nat ${rule/-A /-D }" 2>/dev/null || true
    [[ -n "$chain" ]] && { $ipt -t nat -F "$chain"; $ipt -t nat -X "$chain"; } 2>/dev/null || true
  done < <($ipt -t nat -S POSTROUTING 2>/dev/null | grep -- '-j CNI-' | grep -F 'name: \"simcluster\"' || true)
}

stop() {
  [[ -d "$rn" ]] || return 0
  rlog "stopping (kubelet, kube-proxy, CoreDNS, containers, containerd)"
  stop_process volume-permissions
  stop_process coredns
  stop_process kubelet
  # Containers first (their tasks), while containerd still runs.
  if [[ -S "$sock" ]] && running containerd; then
    local c
    for c in $(ctr_ tasks list -q 2>/dev/null); do ctr_ tasks kill -s SIGKILL "$c" >/dev/null 2>&1 || true; done
    sleep 1
    for c in $(ctr_ tasks list -q 2>/dev/null); do ctr_ tasks delete -f "$c" >/dev/null 2>&1 || true; done
  fi
  stop_process containerd
  # Shims outlive containerd; ours are the ones whose address is under our state.
  local shim
  for shim in $(pgrep -f -- "containerd-shim-runc-v2 .*-address $sock" || true); do kill -KILL "$shim" 2>/dev/null || true; done
  if running kube-proxy || [[ -f "$rn/run/kube-proxy.cmd" ]]; then
    stop_process kube-proxy
    "$bin/kube-proxy" --cleanup --v=0 >/dev/null 2>&1 || true
  fi
  unmount_under "$rn"
  remove_cgroups
  ip link delete "$bridge" 2>/dev/null || true
  local ipt t
  for ipt in iptables ip6tables; do
    remove_masquerade_chains "$ipt"
    for t in filter nat mangle; do
      remove_chains "$ipt" "$t" 'KUBE-[A-Z0-9-]+'
    done
  done
  [[ -f "$rn/ip_forward.saved" ]] && cat "$rn/ip_forward.saved" > /proc/sys/net/ipv4/ip_forward
  # Pods are recreated on the next start: their addresses are free again.
  rm -rf "$rn/cni/ipam" "$rn/run"/*.pid
  local p
  while read -r p; do [[ -n "$p" ]] && rm -rf -- "$p"; done < "$rn/created-paths" 2>/dev/null || true
  rm -f "$owner_file"
}

delete() {
  stop
  rm -rf "$rn"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  delete) delete ;;
  import) shift; import_images "$@" ;;
  ensure-image) ensure_image "$2" "$3" ;;
  relaunch) relaunch "$2" ;;
  volume-permissions) volume_permissions ;;
  *) echo "usage: $0 start|stop|delete|import FILE...|relaunch NAME" >&2; exit 2 ;;
esac
