#!/usr/bin/env bash
# Installs or upgrades the orchestrator on a production cluster (a k3s VPS) with values-prod.yaml,
# after checking everything it relies on, so a missing Secret or issuer is reported up front
# instead of as pods stuck in CreateContainerConfigError.
#
# Required environment:
#   DOMAIN          your domain: the dashboard becomes orchestrator.$DOMAIN, stores <store>.stores.$DOMAIN
#                   (point both orchestrator.$DOMAIN and *.stores.$DOMAIN at the server)
#   IMAGE           the orchestrator image with an immutable tag, e.g. ghcr.io/acme/store-orchestrator:0.1.0
#   MEDUSA_IMAGE    the Medusa store image (deploy/images/medusa) in your registry, e.g.
#                   ghcr.io/acme/store-orchestrator/medusa:2.21.2
#   DATABASE_HOST   host of your Postgres;   REDIS_HOST   host of your Redis
# Optional:
#   NAMESPACE=store-orchestrator      release namespace (must exist and hold the Secret)
#   SECRET_NAME=store-orchestrator-secrets   Secret with django-secret-key, postgres-password, redis-password,
#                                            metrics-token
#   CLUSTER_ISSUER=letsencrypt-prod   cert-manager ClusterIssuer for the dashboard and the stores
#   DASHBOARD_HOST=orchestrator.$DOMAIN   STORE_BASE_DOMAIN=stores.$DOMAIN
#   DATABASE_PORT=5432 DATABASE_NAME=orchestrator DATABASE_USER=orchestrator REDIS_PORT=6379
#   INGRESS=nginx                     the ingress controller that serves the dashboard and the stores:
#                                     nginx   ingress-nginx (IngressClass nginx, namespace ingress-nginx;
#                                             on k3s install the server with --disable traefik)
#                                     traefik k3s' bundled Traefik (IngressClass traefik in kube-system):
#                                             adds values-traefik.yaml, so every store's NetworkPolicies
#                                             admit Traefik's pods
#   EXTRA_VALUES=path.yaml            one more values file, applied last (anything else you change)
#   KUBE_CONTEXT                      kubectl/helm context to use (default: the current one)
set -euo pipefail

repo="$(cd "$(dirname "$0")/.." && pwd)"
chart="$repo/deploy/helm/store-orchestrator"
namespace="${NAMESPACE:-store-orchestrator}"
secret="${SECRET_NAME:-store-orchestrator-secrets}"
issuer="${CLUSTER_ISSUER:-letsencrypt-prod}"
ingress="${INGRESS:-nginx}"
release="store-orchestrator"

problems=()
problem() { problems+=("$*"); }
die() { printf 'deploy-prod: %s\n' "$*" >&2; exit 1; }

for tool in helm kubectl; do
  command -v "$tool" >/dev/null || die "$tool is not installed"
done
kubectl_context=()
helm_context=()
if [[ -n "${KUBE_CONTEXT:-}" ]]; then
  kubectl_context=(--context "$KUBE_CONTEXT")
  helm_context=(--kube-context "$KUBE_CONTEXT")
fi
kc() { kubectl "${kubectl_context[@]}" "$@"; }

# --- settings ---------------------------------------------------------------------------------------
domain="${DOMAIN:-}"
if [[ -z "$domain" ]]; then
  problem "DOMAIN is not set (e.g. DOMAIN=shops.example.org)"
elif [[ ! "$domain" =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)+$ ]]; then
  problem "DOMAIN=$domain is not a domain name"
elif [[ "$domain" == example.com || "$domain" == *.example.com || "$domain" == *localhost ]]; then
  problem "DOMAIN=$domain is a placeholder; use a domain whose DNS points at this server"
fi
dashboard_host="${DASHBOARD_HOST:-orchestrator.$domain}"
store_base_domain="${STORE_BASE_DOMAIN:-stores.$domain}"
[[ -n "${IMAGE:-}" ]] || problem "IMAGE is not set (e.g. IMAGE=ghcr.io/acme/store-orchestrator:0.1.0)"
if [[ -n "${IMAGE:-}" ]]; then
  [[ "$IMAGE" == *:* && "${IMAGE##*:}" != latest ]] || problem "IMAGE=$IMAGE needs an immutable tag (not :latest)"
fi
[[ -n "${MEDUSA_IMAGE:-}" ]] || problem "MEDUSA_IMAGE is not set (the Medusa store image in your registry, e.g. ghcr.io/acme/store-orchestrator/medusa:2.21.2)"
if [[ -n "${MEDUSA_IMAGE:-}" && "$MEDUSA_IMAGE" != *:* ]]; then
  problem "MEDUSA_IMAGE=$MEDUSA_IMAGE needs a tag"
fi
[[ -n "${DATABASE_HOST:-}" ]] || problem "DATABASE_HOST is not set (your Postgres server)"
[[ -n "${REDIS_HOST:-}" ]] || problem "REDIS_HOST is not set (your Redis server)"
case "$ingress" in
  nginx | traefik) ;;
  *) problem "INGRESS=$ingress is not nginx or traefik" ;;
esac
if [[ -n "${EXTRA_VALUES:-}" && ! -f "${EXTRA_VALUES}" ]]; then
  problem "EXTRA_VALUES=$EXTRA_VALUES does not exist"
fi

# --- the cluster ------------------------------------------------------------------------------------
if ! kc get --raw /readyz --request-timeout=15s >/dev/null 2>&1; then
  problem "the cluster of kubectl context '$(kc config current-context 2>/dev/null || echo none)' is not reachable (set KUBECONFIG or KUBE_CONTEXT)"
  printf 'deploy-prod: cannot deploy:\n' >&2; printf '  - %s\n' "${problems[@]}" >&2; exit 1
fi
minor="$(kc version -o json 2>/dev/null | sed -n 's/.*"minor": *"\([0-9]*\).*/\1/p' | tail -n 1)"
if [[ -n "$minor" && "$minor" -lt 30 ]]; then
  problem "Kubernetes 1.$minor: the chart's admission policy needs 1.30+ (or set rbac.admissionPolicy.enabled=false in EXTRA_VALUES and rely on the app's own check)"
fi
if ! kc get namespace "$namespace" >/dev/null 2>&1; then
  problem "namespace $namespace does not exist: kubectl create namespace $namespace (then create the Secret)"
else
  # Key names only; values are never read into this script. (A Go template, not shell expansion.)
  # shellcheck disable=SC2016
  keys="$(kc -n "$namespace" get secret "$secret" -o go-template='{{range $k, $v := .data}}{{$k}}{{"\n"}}{{end}}' 2>/dev/null || true)"
  if [[ -z "$keys" ]]; then
    problem "Secret $namespace/$secret is missing: kubectl -n $namespace create secret generic $secret --from-literal=django-secret-key=\"\$(openssl rand -base64 48)\" --from-literal=postgres-password=... --from-literal=redis-password=... --from-literal=metrics-token=\"\$(openssl rand -hex 32)\""
  else
    for key in django-secret-key postgres-password redis-password metrics-token; do
      grep -qx "$key" <<<"$keys" || problem "Secret $namespace/$secret has no key $key"
    done
  fi
fi
kc get clusterissuer "$issuer" >/dev/null 2>&1 \
  || problem "cert-manager ClusterIssuer '$issuer' not found (install cert-manager and create it, or set CLUSTER_ISSUER)"
if [[ "$ingress" == traefik ]]; then
  kc get ingressclass traefik >/dev/null 2>&1 \
    || problem "IngressClass traefik not found: k3s installs it unless started with --disable traefik (or use INGRESS=nginx with ingress-nginx)"
else
  kc get ingressclass nginx >/dev/null 2>&1 \
    || problem "IngressClass nginx not found: install ingress-nginx (k3s: start the server with --disable traefik), or use k3s' bundled Traefik with INGRESS=traefik"
fi
kc get apiservice v1beta1.metrics.k8s.io >/dev/null 2>&1 \
  || echo "deploy-prod: warning: no metrics API (metrics-server); the HPAs will not scale" >&2

if ((${#problems[@]})); then
  printf 'deploy-prod: cannot deploy:\n' >&2
  printf '  - %s\n' "${problems[@]}" >&2
  exit 1
fi

# --- install or upgrade -----------------------------------------------------------------------------
values=(--values "$chart/values-prod.yaml")
if [[ "$ingress" == traefik ]]; then
  values+=(--values "$chart/values-traefik.yaml")
fi
if [[ -n "${EXTRA_VALUES:-}" ]]; then
  values+=(--values "$EXTRA_VALUES")
fi
echo "deploy-prod: helm upgrade --install $release in $namespace (dashboard https://$dashboard_host, ingress $ingress)" >&2
# --atomic: a failed upgrade (e.g. failed migrations, pods not ready in time) is rolled back.
helm "${helm_context[@]}" upgrade --install "$release" "$chart" \
  --namespace "$namespace" \
  "${values[@]}" \
  --set "image.repository=${IMAGE%:*}" --set "image.tag=${IMAGE##*:}" \
  --set "ingress.host=$dashboard_host" --set "ingress.tls.clusterIssuer=$issuer" \
  --set "stores.baseDomain=$store_base_domain" --set "stores.tlsClusterIssuer=$issuer" \
  --set "secrets.existingSecret=$secret" \
  --set "externalDatabase.existingSecret=$secret" --set "externalRedis.existingSecret=$secret" \
  --set "externalDatabase.host=$DATABASE_HOST" --set "externalDatabase.port=${DATABASE_PORT:-5432}" \
  --set "externalDatabase.database=${DATABASE_NAME:-orchestrator}" \
  --set "externalDatabase.username=${DATABASE_USER:-orchestrator}" \
  --set "externalRedis.host=$REDIS_HOST" --set "externalRedis.port=${REDIS_PORT:-6379}" \
  --set "stores.engineValues.medusa.medusa.image.repository=${MEDUSA_IMAGE%:*}" \
  --set-string "stores.engineValues.medusa.medusa.image.tag=${MEDUSA_IMAGE##*:}" \
  --atomic --wait --timeout 10m

cat <<EOF

Deployed. Dashboard: https://$dashboard_host/ (the certificate may take a minute to be issued).
Stores will answer at https://<store>.$store_base_domain/.
First admin login:
  kubectl -n $namespace exec -it deploy/$release-web -- python manage.py createsuperuser
EOF
