#!/usr/bin/env bash
# The orchestrator on a local kind cluster, from nothing: creates the cluster (ports 80/443 mapped to
# the ingress controller), installs ingress-nginx, builds the orchestrator image (and the Medusa
# image its stores run) and loads them into kind, installs the chart with the local values, creates
# the demo login and prints where to go. Safe to run again: every step reuses what exists.
#
# Needs docker, kind, helm and kubectl. Verified only where a Docker engine runs (not in CI).
# Environment (all optional):
#   CLUSTER_NAME=store-orchestrator   kind cluster name
#   NAMESPACE=store-orchestrator      namespace of the release
#   HTTP_PORT=80 HTTPS_PORT=443       host ports of the ingress controller
#   IMAGE=store-orchestrator:dev      tag of the orchestrator image (matches values.yaml)
#   INGRESS_HOST=orchestrator.localhost  host of the dashboard
#   SKIP_MEDUSA_IMAGE=1               do not build the Medusa store image (slow: npm ci)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
cluster="${CLUSTER_NAME:-store-orchestrator}"
namespace="${NAMESPACE:-store-orchestrator}"
http_port="${HTTP_PORT:-80}"
https_port="${HTTPS_PORT:-443}"
image="${IMAGE:-store-orchestrator:dev}"
host="${INGRESS_HOST:-orchestrator.localhost}"
chart="$repo/deploy/helm/store-orchestrator"
# ingress-nginx's manifest for kind (hostPorts on the node labelled ingress-ready), pinned.
ingress_nginx_version="controller-v1.15.1"
ingress_nginx_manifest="https://raw.githubusercontent.com/kubernetes/ingress-nginx/$ingress_nginx_version/deploy/static/provider/kind/deploy.yaml"

say() { printf '\n==> %s\n' "$*" >&2; }
die() { printf 'setup-local: %s\n' "$*" >&2; exit 1; }

for tool in docker kind helm kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not installed (needs docker, kind, helm and kubectl)"
done
docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is it running? may this user use it?)"

say "kind cluster '$cluster'"
if kind get clusters 2>/dev/null | grep -qx "$cluster"; then
  echo "exists; reusing it" >&2
else
  kind create cluster --name "$cluster" --wait 120s --config - <<YAML
kind: Cluster
apiVersion: kind.x-k8s.io/v1alpha4
nodes:
  - role: control-plane
    kubeadmConfigPatches:
      - |
        kind: InitConfiguration
        nodeRegistration:
          kubeletExtraArgs:
            node-labels: "ingress-ready=true"
    extraPortMappings:
      - {containerPort: 80, hostPort: $http_port, protocol: TCP}
      - {containerPort: 443, hostPort: $https_port, protocol: TCP}
YAML
fi
kubectl config use-context "kind-$cluster" >/dev/null

say "ingress-nginx $ingress_nginx_version"
kubectl apply -f "$ingress_nginx_manifest" >/dev/null
kubectl -n ingress-nginx rollout status deployment/ingress-nginx-controller --timeout=300s

say "orchestrator image $image"
docker build -f "$repo/deploy/Dockerfile" -t "$image" "$repo"
kind load docker-image "$image" --name "$cluster"

if [[ -z "${SKIP_MEDUSA_IMAGE:-}" ]]; then
  # The tag charts/medusa expects, read from its values so the two never drift apart.
  medusa_repo="$(helm show values "$repo/charts/medusa" | awk '/^medusa:/{m=1} m&&/^    repository:/{print $2; exit}')"
  medusa_tag="$(helm show values "$repo/charts/medusa" | awk '/^medusa:/{m=1} m&&/^    tag:/{gsub(/"/,"",$2); print $2; exit}')"
  [[ -n "$medusa_repo" && -n "$medusa_tag" ]] || die "cannot read medusa.image from charts/medusa/values.yaml"
  say "Medusa store image $medusa_repo:$medusa_tag (SKIP_MEDUSA_IMAGE=1 skips it)"
  docker build -t "$medusa_repo:$medusa_tag" "$repo/deploy/images/medusa"
  kind load docker-image "$medusa_repo:$medusa_tag" --name "$cluster"
fi

say "namespace $namespace (Pod Security restricted)"
kubectl create namespace "$namespace" --dry-run=client -o yaml | kubectl apply -f - >/dev/null
kubectl label namespace "$namespace" --overwrite \
  pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/enforce-version=latest >/dev/null

say "helm upgrade --install store-orchestrator (local values)"
upgrading=""
helm status store-orchestrator --namespace "$namespace" >/dev/null 2>&1 && upgrading=yes
repository="${image%:*}"
tag="${image##*:}"
helm upgrade --install store-orchestrator "$chart" \
  --namespace "$namespace" \
  --values "$chart/values.yaml" \
  --set "image.repository=$repository" --set "image.tag=$tag" --set "ingress.host=$host" \
  --wait --timeout 10m
if [[ -n "$upgrading" ]]; then
  # Same tag, new image: the pod specs did not change, so restart the orchestrator's processes
  # to run what was just loaded (the migrations hook already ran with it).
  kubectl -n "$namespace" rollout restart deployment \
    -l 'app.kubernetes.io/instance=store-orchestrator,app.kubernetes.io/component in (web,worker,beat)'
  kubectl -n "$namespace" rollout status deployment/store-orchestrator-web --timeout=300s
fi

say "demo login"
demo="$(kubectl -n "$namespace" exec deploy/store-orchestrator-web -- python manage.py ensure_demo_user)"

port_suffix=""
[[ "$http_port" == "80" ]] || port_suffix=":$http_port"
cat <<EOF

Store Orchestrator is running on kind cluster '$cluster'.

  Dashboard:  http://$host$port_suffix/
  Login:      $demo
              (the password is shown only when the user is created; run again with
               kubectl -n $namespace exec deploy/store-orchestrator-web -- python manage.py changepassword demo)

Stores answer at http://<store>.stores.localhost$port_suffix/ (*.localhost resolves to this machine).
Remove everything with: kind delete cluster --name $cluster
EOF
