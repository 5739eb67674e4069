#!/usr/bin/env bash
# Starts (or stops) the Postgres and Redis that development and the tests use:
# Debian's packages, private data directories, loopback only. Idempotent.
#   tools/dev/services.sh install|start|stop|env
set -euo pipefail
# Outside $HOME: the postgres user must be able to reach its data directory.
state="${ORCHESTRATOR_STATE_DIR:-/var/lib/store-orchestrator}"
pg_port="${PG_PORT:-54320}"
redis_port="${REDIS_PORT:-63790}"
pg_dir="$state/postgres"
redis_dir="$state/redis"

pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1; }

install() {
  if [[ -z "$(pg_bin)" ]] || ! command -v redis-server >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq postgresql redis-server >/dev/null
  fi
}

start_postgres() {
  local bin; bin="$(pg_bin)"
  mkdir -p "$state"; chmod 755 "$state"
  if [[ ! -f "$pg_dir/PG_VERSION" ]]; then
    mkdir -p "$pg_dir"; chown postgres: "$pg_dir"
    runuser -u postgres -- "$bin/initdb" -D "$pg_dir" -A trust -U postgres >/dev/null
  fi
  if ! runuser -u postgres -- "$bin/pg_ctl" -D "$pg_dir" status >/dev/null 2>&1; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$pg_dir" -l "$pg_dir/server.log" -w start \
      -o "-p $pg_port -c listen_addresses=127.0.0.1 -k /tmp -c max_connections=300 -c fsync=off" >/dev/null
  fi
  # The orchestrator's role and database (trust auth on loopback: development only).
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname='orchestrator'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE ROLE orchestrator LOGIN CREATEDB"
  psql -h 127.0.0.1 -p "$pg_port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='orchestrator'" | grep -q 1 \
    || psql -h 127.0.0.1 -p "$pg_port" -U postgres -qc "CREATE DATABASE orchestrator OWNER orchestrator"
}

# Tasks live in Redis (queued and delayed ones): an append-only file keeps them across a restart.
start_redis() {
  mkdir -p "$redis_dir"
  if ! redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$redis_port" --dir "$redis_dir" --daemonize yes \
      --save "" --appendonly yes --appendfsync everysec --logfile "$redis_dir/redis.log" --pidfile "$redis_dir/redis.pid"
    for _ in $(seq 50); do redis-cli -h 127.0.0.1 -p "$redis_port" ping >/dev/null 2>&1 && break; sleep 0.1; done
  fi
}

stop() {
  local bin; bin="$(pg_bin)"
  [[ -f "$pg_dir/PG_VERSION" ]] && runuser -u postgres -- "$bin/pg_ctl" -D "$pg_dir" -m fast stop >/dev/null 2>&1 || true
  redis-cli -h 127.0.0.1 -p "$redis_port" shutdown nosave >/dev/null 2>&1 || true
}

print_env() {
  echo "export DATABASE_URL=postgres://orchestrator@127.0.0.1:$pg_port/orchestrator"
  echo "export REDIS_URL=redis://127.0.0.1:$redis_port/0"
}

case "${1:-start}" in
  install) install ;;
  start) install; start_postgres; start_redis; print_env ;;
  stop) stop ;;
  env) print_env ;;
  *) echo "usage: $0 install|start|stop|env" >&2; exit 2 ;;
esac
