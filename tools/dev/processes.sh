#!/usr/bin/env bash
# Runs the orchestrator's web, worker and scheduler under supervisord (tools/dev/supervisord.conf),
# which restarts any of them that dies. Used by up.sh and down.sh; idempotent.
#   tools/dev/processes.sh start|stop|status
# start expects the application's settings in the environment (DATABASE_URL, REDIS_URL, KUBECONFIG,
# HELM_BIN, ...); RUN_DIR (default .run), PORT (8000) and WORKER_CONCURRENCY (4) are optional.
# It also writes $RUN_DIR/env, which a shell can source to reach the same database, Redis and cluster.
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
export REPO="$repo"
export RUN_DIR="${RUN_DIR:-$repo/.run}"
export PORT="${PORT:-8000}"
export WORKER_CONCURRENCY="${WORKER_CONCURRENCY:-4}"
export DJANGO_SETTINGS_MODULE="${DJANGO_SETTINGS_MODULE:-orchestrator.settings}"
conf="$repo/tools/dev/supervisord.conf"
mkdir -p "$RUN_DIR"

running() { [[ -f "$RUN_DIR/supervisord.pid" ]] && kill -0 "$(cat "$RUN_DIR/supervisord.pid")" 2>/dev/null; }

write_env() {
  # %q quotes every value for the shell; PATH keeps "$PATH" outside the quotes so it expands on sourcing.
  {
    for name in DATABASE_URL REDIS_URL KUBECONFIG HELM_BIN DJANGO_SETTINGS_MODULE; do
      if [[ -n "${!name:-}" ]]; then printf 'export %s=%q\n' "$name" "${!name}"; fi
    done
    if [[ -n "${HELM_BIN:-}" ]]; then printf 'export PATH=%q:"$PATH"\n' "$(dirname "$HELM_BIN")"; fi
  } > "$RUN_DIR/env"
}

start() {
  write_env
  if running; then
    supervisorctl -c "$conf" start all >/dev/null || true  # restarts any that were stopped by hand
  else
    supervisord -c "$conf"
  fi
}

stop() {
  if running; then
    local pid; pid="$(cat "$RUN_DIR/supervisord.pid")"
    supervisorctl -c "$conf" shutdown >/dev/null || kill "$pid" 2>/dev/null || true
    # The worker gets up to 60 s to finish its tasks (stopwaitsecs).
    for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  # Processes of an older up.sh that wrote one pid file each.
  for name in web worker beat; do
    if [[ -f "$RUN_DIR/$name.pid" ]]; then kill "$(cat "$RUN_DIR/$name.pid")" 2>/dev/null || true; rm -f "$RUN_DIR/$name.pid"; fi
  done
}

case "${1:-status}" in
  start) start ;;
  stop) stop ;;
  status) if running; then supervisorctl -c "$conf" status; else echo "not running"; exit 3; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
