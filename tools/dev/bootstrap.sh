#!/usr/bin/env bash
# Installs what development and the tests need on a Debian/Ubuntu machine, idempotently:
# Postgres, Redis, Chromium, supervisord and PHP (CLI) from Debian packages, and the Python virtualenv from
# requirements.txt (reinstalled only when requirements.txt changes). With SIMCLUSTER_REAL_NODE=1
# also what the simulated cluster's real node runs on (containerd, runc, CNI plugins, ...).
# `bootstrap.sh --images` installs only what building and trying container images takes (podman with
# runc, CNI plugins, mmdebstrap); tools/simcluster/images/build.sh runs it when those are missing.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

if [[ "${1:-}" == --images ]]; then
  need=()
  for tool in podman:podman runc:runc mmdebstrap:mmdebstrap /usr/lib/cni/bridge:containernetworking-plugins; do
    command -v "${tool%%:*}" >/dev/null || [[ -x "${tool%%:*}" ]] || need+=("${tool#*:}")
  done
  if ((${#need[@]})); then
    echo "bootstrap: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # Without recommends: podman would bring crun (which fails on this machine's hybrid cgroups),
    # slirp4netns and more that root builds do not use.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  exit 0
fi

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v supervisord >/dev/null || need+=(supervisor)  # restarts make up's processes
command -v php >/dev/null || need+=(php-cli)  # WordPress' HTTP API in tests/charts/test_woocommerce_http.py
[[ -x /usr/bin/time ]] || need+=(time)  # GNU time measures the Medusa setup in tests/charts/test_medusa_native.py
if [[ "${SIMCLUSTER_REAL_NODE:-0}" == 1 ]]; then
  # tools/simcluster/realnode.sh: the container runtime, the CNI bridge, kube-proxy's iptables and
  # conntrack, the pause and toolbox images' static binaries, and its volume-permissions watcher.
  command -v containerd >/dev/null || need+=(containerd)
  command -v runc >/dev/null || need+=(runc)
  [[ -x /usr/lib/cni/bridge ]] || need+=(containernetworking-plugins)
  command -v iptables >/dev/null || need+=(iptables)
  command -v conntrack >/dev/null || need+=(conntrack)
  command -v catatonit >/dev/null || need+=(catatonit)
  [[ -x /bin/busybox ]] || need+=(busybox-static)
  command -v openssl >/dev/null || need+=(openssl)
  command -v inotifywait >/dev/null || need+=(inotify-tools)
fi
if ((${#need[@]})); then
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

stamp=".venv/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: installing Python packages" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
