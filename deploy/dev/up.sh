#!/usr/bin/env bash
# Brings the whole orchestrator up on this machine: Postgres and Redis, the simulated
# cluster (or the cluster your KUBECONFIG names), migrations, a demo login, and the web,
# worker and scheduler processes in the background. Logs and pids go to .run/.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"
run=".run"
mkdir -p "$run"

deploy/dev/bootstrap.sh
eval "$(deploy/dev/services.sh start)"
if [[ -n "${KUBECONFIG:-}" ]]; then
  echo "up: using your cluster from KUBECONFIG=$KUBECONFIG" >&2
  bin="$(deploy/simcluster/build.sh)"   # the pinned helm, also for real clusters
  export PATH="$bin:$PATH"
else
  eval "$(deploy/simcluster/start.sh)"
fi
export HELM_BIN="${HELM_BIN:-$(command -v helm)}"
export DJANGO_SETTINGS_MODULE=orchestrator.settings
{
  echo "export DATABASE_URL='$DATABASE_URL'"
  echo "export REDIS_URL='$REDIS_URL'"
  echo "export KUBECONFIG='$KUBECONFIG'"
  echo "export HELM_BIN='$HELM_BIN'"
  echo "export PATH='$(dirname "$HELM_BIN"):\$PATH'"
} > "$run/env"

py=.venv/bin/python
$py manage.py migrate --noinput -v0
$py manage.py collectstatic --noinput -v0
demo="$($py manage.py ensure_demo_user)"

start() {  # start NAME COMMAND...: run in the background unless already running
  local name="$1"; shift
  if [[ -f "$run/$name.pid" ]] && kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
    return
  fi
  nohup "$@" > "$run/$name.log" 2>&1 &
  echo $! > "$run/$name.pid"
}
port="${PORT:-8000}"
start web .venv/bin/gunicorn orchestrator.wsgi:application --bind "127.0.0.1:$port" --workers 2 --threads 4 \
  --access-logfile -
start worker .venv/bin/celery -A orchestrator worker --loglevel=INFO --concurrency="${WORKER_CONCURRENCY:-4}"
start beat .venv/bin/celery -A orchestrator beat --loglevel=INFO --schedule "$run/celerybeat-schedule"

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
  Logs:       $run/web.log, $run/worker.log, $run/beat.log
Stop it with: make down
MSG
