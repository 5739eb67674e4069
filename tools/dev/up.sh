#!/usr/bin/env bash
# Brings the whole orchestrator up on this machine: Postgres and Redis, the simulated
# cluster (or the cluster your KUBECONFIG names), migrations, a demo login, and the web,
# worker and scheduler processes under supervisord, which restarts any that dies. Logs go to .run/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
run=".run"
mkdir -p "$run"

tools/dev/bootstrap.sh
eval "$(tools/dev/services.sh start)"
if [[ -n "${KUBECONFIG:-}" ]]; then
  echo "up: using your cluster from KUBECONFIG=$KUBECONFIG" >&2
  bin="$(tools/simcluster/build.sh)"   # the pinned helm, also for real clusters
  export PATH="$bin:$PATH"
else
  eval "$(tools/simcluster/start.sh)"
fi
export HELM_BIN="${HELM_BIN:-$(command -v helm)}"
export DJANGO_SETTINGS_MODULE=orchestrator.settings

py=.venv/bin/python
$py manage.py migrate --noinput -v0
$py manage.py collectstatic --noinput -v0
demo="$($py manage.py ensure_demo_user)"

# web, worker and beat under supervisord, which restarts whichever dies; also writes .run/env.
port="${PORT:-8000}"
RUN_DIR="$repo/$run" PORT="$port" tools/dev/processes.sh start

for _ in $(seq 60); do
  curl -fsS "http://127.0.0.1:$port/healthz/ready" >/dev/null 2>&1 && break
  sleep 0.5
done
cat <<MSG

Store Orchestrator is up.
  Dashboard:  http://127.0.0.1:$port/
  API docs:   http://127.0.0.1:$port/api/docs/
  Admin:      http://127.0.0.1:$port/admin/
  Login:      $demo
  Cluster:    KUBECONFIG=$KUBECONFIG
  Logs:       $run/web.log, $run/worker.log, $run/beat.log (restarted if they die:
              tools/dev/processes.sh status)
  Shell:      source $run/env   (the same database, Redis and cluster)
Stop it with: make down
MSG
