#!/usr/bin/env bash
# Runs podman against the images' private store and settings (runc, cgroupfs, its own storage and
# network), so building and trying the simulated cluster's images never touches a system-wide
# podman setup: `tools/simcluster/images/podman.sh images`, `... run --rm IMAGE`, etc.
# Why these settings: crun refuses this machine's hybrid cgroups and there is no systemd, so runc
# with cgroupfs; a bridge network of its own without a gateway, so containers reach each other but
# the host's routing and ip_forward stay as they are.
set -euo pipefail
root="${SIMCLUSTER_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-orchestrator/images}"
conf="$root/podman"
network=store-orchestrator-images
mkdir -p "$conf/cni"

write_if_changed() {  # PATH CONTENT: keeps the file (and its mtime) when the content is the same
  [[ -f "$1" && "$(cat "$1")" == "$2" ]] || printf '%s\n' "$2" >"$1"
}

# Raising a limit is not permitted here (no CAP_SYS_RESOURCE), and podman's defaults ask for more than
# the limits in force; runc's own process limit sits lower than the shell's, hence the cap on nproc.
nofile="$(ulimit -Hn)" nproc="$(ulimit -Hu)"
((nproc <= 32768)) || nproc=32768
write_if_changed "$conf/containers.conf" "[containers]
log_driver = \"k8s-file\"
default_ulimits = [\"nofile=$nofile:$nofile\", \"nproc=$nproc:$nproc\"]
[engine]
runtime = \"runc\"
cgroup_manager = \"cgroupfs\"
events_logger = \"file\"
events_logfile_path = \"$conf/events.log\"
[network]
network_backend = \"cni\"
cni_plugin_dirs = [\"/usr/lib/cni\"]
network_config_dir = \"$conf/cni\"
default_network = \"$network\""

# The run root holds the store's mount state: one per store (another SIMCLUSTER_IMAGES_CACHE gets its own).
write_if_changed "$conf/storage.conf" "[storage]
driver = \"overlay\"
graphroot = \"$root/storage\"
runroot = \"/run/store-orchestrator/images-$(printf %s "$root" | sha256sum | cut -c1-8)\""

# No gateway and no masquerading: the bridge only joins the containers to each other.
write_if_changed "$conf/cni/$network.conflist" '{
  "cniVersion": "0.4.0",
  "name": "'"$network"'",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "soimages0",
      "isGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": "10.213.213.0/24"}]]}
    }
  ]
}'

export CONTAINERS_CONF="$conf/containers.conf" CONTAINERS_STORAGE_CONF="$conf/storage.conf"
exec podman "$@"
