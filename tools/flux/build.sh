#!/usr/bin/env bash
# Builds Flux's helm-controller and source-controller (pins in versions.env) from the Go module
# proxy into a cache outside the repository, the way tools/simcluster/build.sh builds the control
# plane: each controller is the `tool` of a small wrapper module (helm-controller/, source-controller/,
# written by gen-gomod.sh) that carries upstream's replace directives, and its binary is cached under
# a key made of its pin, the wrapper's go.mod and go.sum and the Go version, so an unchanged one is
# reused. Upstream builds them the same way (CGO_ENABLED=0, -trimpath). Each controller's CRDs are
# copied next to its binary from the same pinned module, so what is installed matches what runs.
# Prints the bin directory on stdout: symlinks into the cache, <name> (the binary) and <name>-crds
# (a directory of CRD manifests). Progress on stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
cache_root="${FLUX_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-orchestrator/flux}"
bin="$cache_root/bin"
mkdir -p "$bin"
# Concurrent callers (a benchmark and a shell) wait for one build.
exec 8>"$cache_root/.build.lock"
flock 8
gover="$(go version)"
# What a cache entry holds; change it when the entry's contents change (it is part of the key).
layout="binary and config/crd/bases as crds/"

# cached NAME VERSION EXPECTED: builds the wrapper NAME/ into its cache directory unless it is
# complete; EXPECTED says how long a build usually takes here (2 cores), for the progress line.
cached() {
  local name="$1" version="$2" expected="$3" key out t0
  key="$(cd "$here/$name" && printf '%s\n%s\n%s\n%s\n' "$layout" "$version" "$(cat go.mod go.sum)" "$gover" | sha256sum | cut -c1-16)"
  out="$cache_root/$name-$key"
  if [[ ! -f "$out/.complete" ]]; then
    echo "flux: building $name $version (cache key $key); expect $expected" >&2
    t0=$(date +%s)
    rm -rf "$out"; mkdir -p "$out"
    (cd "$here/$name" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$out/$name" "github.com/fluxcd/$name")
    mkdir -p "$out/crds"
    cp "$(cd "$here/$name" && go list -m -f '{{.Dir}}' "github.com/fluxcd/$name")"/config/crd/bases/*.yaml "$out/crds/"
    chmod 644 "$out/crds/"*.yaml
    touch "$out/.complete"
    echo "flux: built $name in $(( $(date +%s) - t0 ))s" >&2
  fi
  ln -sfn "$out/$name" "$bin/$name"
  ln -sfn "$out/crds" "$bin/$name-crds"
}

cached helm-controller "$HELM_CONTROLLER_VERSION" "4-8 min cold (more under load), under a minute with a warm Go cache"
cached source-controller "$SOURCE_CONTROLLER_VERSION" "4-8 min cold (more under load), under a minute with a warm Go cache"
echo "$bin"
