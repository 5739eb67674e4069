#!/usr/bin/env bash
# Builds the simulated cluster's tools (control plane with the real node's kubelet
# and kube-proxy, kwok, kwokctl, helm, CoreDNS) from the Go module proxy into a
# cache outside the repository. Each tool is cached under a key made of its pin,
# its sources and the Go version, so an unchanged tool is reused, not rebuilt.
# Prints the bin directory (symlinks into the cache) on stdout; progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck disable=SC1091
source "$here/versions.env"
cache_root="${SIMCLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-orchestrator/simcluster}"
bin="$cache_root/bin"
mkdir -p "$bin"
# Concurrent callers (start.sh from several test runners) wait for one build.
exec 8>"$cache_root/.build.lock"
flock 8
gover="$(go version)"

# cached NAME KEYTEXT BUILDFN EXPECTED: runs BUILDFN OUTDIR unless OUTDIR is complete;
# EXPECTED says how long a build usually takes here (2 cores), for the progress line.
cached() {
  local name="$1" keytext="$2" fn="$3" expected="$4" key out t0
  key="$(printf '%s\n%s\n' "$keytext" "$gover" | sha256sum | cut -c1-16)"
  out="$cache_root/$name-$key"
  if [[ ! -f "$out/.complete" ]]; then
    echo "simcluster: building $name (cache key $key); expect $expected" >&2
    t0=$(date +%s)
    rm -rf "$out"; mkdir -p "$out"
    "$fn" "$out"
    touch "$out/.complete"
    echo "simcluster: built $name in $(( $(date +%s) - t0 ))s" >&2
  fi
  local f
  for f in "$out"/*; do ln -sfn "$f" "$bin/$(basename "$f")"; done
}

build_controlplane() {
  local out="$1" minor ldflags="" pkg name
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  # Real version strings: helm and kwokctl read /version to pick behaviour.
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    ldflags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  (cd "$here/controlplane" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $ldflags" -o "$out/controlplane" .)
  for name in kube-apiserver kube-controller-manager kube-scheduler kubectl etcd kubelet kube-proxy; do
    ln -sf controlplane "$out/$name"
  done
}
# `go install` leaves helm's version at its source default ("v3.22"), which is not semver and
# breaks clients that parse `helm version` (pyhelm3 does); stamp the real one.
build_helm() {
  GOBIN="$1" CGO_ENABLED=0 go install -trimpath \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION -X helm.sh/helm/v3/internal/version.gitTreeState=clean" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}
build_kwok() {
  GOBIN="$1" CGO_ENABLED=0 go install -trimpath -ldflags "-s -w" \
    "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

# CoreDNS with the plugins the cluster's Corefile uses (see coredns/main.go).
build_coredns() {
  (cd "$here/coredns" && CGO_ENABLED=0 go build -trimpath \
    -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$COREDNS_VERSION" -o "$1/coredns" .)
}

sources_of() { (cd "$here/$1" && cat go.mod go.sum ./*.go); }

cached controlplane "$KUBERNETES_VERSION $(sources_of controlplane)" build_controlplane \
  "7-12 min cold (15-20 under load), about 2 min with a warm Go cache"
cached helm "$HELM_VERSION version-stamped" build_helm "about 1-2 min cold"
cached kwok "$KWOK_VERSION" build_kwok "about 2 min cold"
# Cluster DNS only serves the real node (start.sh with SIMCLUSTER_REAL_NODE=1).
if [[ "${SIMCLUSTER_REAL_NODE:-0}" == 1 ]]; then
  cached coredns "$COREDNS_VERSION $(sources_of coredns)" build_coredns "about 2-4 min cold"
fi
echo "$bin"
