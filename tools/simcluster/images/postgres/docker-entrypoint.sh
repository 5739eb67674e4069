#!/usr/bin/env bash
# Entrypoint of the postgres stand-in (a test fixture): the official image's contract, described in
# the Dockerfile, for Debian's postgresql-17. Initialises an empty PGDATA, then runs the server.
set -Eeo pipefail

# VAR, or the content of the file VAR_FILE names (a mounted secret); not both.
file_env() {  # VAR [DEFAULT]
  local var="$1" file_var="${1}_FILE" value="${2:-}"
  if [[ -n "${!var:-}" && -n "${!file_var:-}" ]]; then
    echo "error: both $var and $file_var are set; they are exclusive" >&2
    exit 1
  fi
  if [[ -n "${!var:-}" ]]; then
    value="${!var}"
  elif [[ -n "${!file_var:-}" ]]; then
    value="$(<"${!file_var}")"
  fi
  export "$var=$value"
  unset "$file_var"
}

# `postgres --help`, `-C name` and the like only print: no initialisation for them.
wants_no_server() {
  local arg
  for arg in "$@"; do
    case "$arg" in -'?' | --help | --describe-config | -V | --version | -C | --config-file=*) return 0 ;; esac
  done
  return 1
}

setup_env() {
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
  export PGDATA POSTGRES_HOST_AUTH_METHOD
}

create_directories() {
  mkdir -p "$PGDATA"
  chmod 00700 "$PGDATA" 2>/dev/null || :
  mkdir -p /var/run/postgresql 2>/dev/null || :
  chmod 03775 /var/run/postgresql 2>/dev/null || :
  if [[ -n "${POSTGRES_INITDB_WALDIR:-}" ]]; then
    mkdir -p "$POSTGRES_INITDB_WALDIR"
    chmod 700 "$POSTGRES_INITDB_WALDIR" 2>/dev/null || :
  fi
  if [[ "$(id -u)" == 0 ]]; then
    find "$PGDATA" \! -user postgres -exec chown postgres: '{}' +
    find /var/run/postgresql \! -user postgres -exec chown postgres: '{}' +
    [[ -z "${POSTGRES_INITDB_WALDIR:-}" ]] || chown postgres: "$POSTGRES_INITDB_WALDIR"
  fi
}

refuse_without_password() {
  [[ -z "$POSTGRES_PASSWORD" && "$POSTGRES_HOST_AUTH_METHOD" != trust ]] || return 0
  cat >&2 <<'MSG'
Error: Database is uninitialized and superuser password is not specified.
       Set POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) to a non-empty value for the superuser,
       or POSTGRES_HOST_AUTH_METHOD=trust to allow every connection without a password
       (not recommended).
MSG
  exit 1
}

# initdb needs a passwd entry for the user it runs as; an arbitrary --user has none.
init_database_dir() {
  local wrapped=""
  if ! getent passwd "$(id -u)" >/dev/null; then
    wrapped=1
    NSS_WRAPPER_PASSWD="$(mktemp)" NSS_WRAPPER_GROUP="$(mktemp)"
    export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP LD_PRELOAD=libnss_wrapper.so
    echo "postgres:x:$(id -u):$(id -g):PostgreSQL:$PGDATA:/bin/false" >"$NSS_WRAPPER_PASSWD"
    echo "postgres:x:$(id -g):" >"$NSS_WRAPPER_GROUP"
  fi
  [[ -z "${POSTGRES_INITDB_WALDIR:-}" ]] || POSTGRES_INITDB_ARGS="--waldir $POSTGRES_INITDB_WALDIR $POSTGRES_INITDB_ARGS"
  eval 'initdb --username="$POSTGRES_USER" --pwfile=<(printf "%s\n" "$POSTGRES_PASSWORD") '"$POSTGRES_INITDB_ARGS"
  if [[ -n "$wrapped" ]]; then
    rm -f "$NSS_WRAPPER_PASSWD" "$NSS_WRAPPER_GROUP"
    unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
  fi
}

# initdb trusts the socket and 127.0.0.1/::1; every other host logs in with a password.
allow_remote_logins() {
  {
    echo
    [[ "$POSTGRES_HOST_AUTH_METHOD" != trust ]] || echo '# warning: trust is enabled for every connection'
    echo "host all all all $POSTGRES_HOST_AUTH_METHOD"
  } >>"$PGDATA/pg_hba.conf"
}

psql_run() {  # psql as the superuser over the socket, stopping at the first error
  PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}" psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" \
    --no-password --no-psqlrc "$@"
}

# Listens on the socket only, so no client (nor a TCP probe) sees the server before it is ready.
temp_server_start() {  # SERVER ARGS...
  PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -w start \
    -o "$(printf '%q ' "$@" -c listen_addresses= -p "${PGPORT:-5432}")"
}

create_database() {
  [[ "$POSTGRES_DB" != postgres ]] || return 0
  if [[ -z "$(psql_run --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<<"SELECT 1 FROM pg_database WHERE datname = :'db';")" ]]; then
    psql_run --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    echo
  fi
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh)
        if [[ -x "$f" ]]; then echo "$0: running $f"; "$f"; else echo "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) echo "$0: running $f"; psql_run --dbname "$POSTGRES_DB" -f "$f"; echo ;;
      *.sql.gz) echo "$0: running $f"; gunzip -c "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
      *.sql.xz) echo "$0: running $f"; xzcat "$f" | psql_run --dbname "$POSTGRES_DB"; echo ;;
      *) [[ "$f" == '/docker-entrypoint-initdb.d/*' ]] || echo "$0: ignoring $f" ;;
    esac
  done
}

initialise() {  # SERVER ARGS...
  refuse_without_password
  ls /docker-entrypoint-initdb.d/ >/dev/null
  init_database_dir
  allow_remote_logins
  temp_server_start "$@"
  create_database
  run_init_files
  pg_ctl -D "$PGDATA" -m fast -w stop
  echo
  echo 'PostgreSQL init process complete; ready for start up.'
  echo
}

main() {
  if [[ "${1:0:1}" == - ]]; then
    set -- postgres "$@"
  fi
  if [[ "$1" == postgres ]] && ! wants_no_server "$@"; then
    setup_env
    create_directories
    if [[ "$(id -u)" == 0 ]]; then
      exec setpriv --reuid=postgres --regid=postgres --init-groups -- "${BASH_SOURCE[0]}" "$@"
    fi
    if [[ -s "$PGDATA/PG_VERSION" ]]; then
      echo 'PostgreSQL Database directory appears to contain a database; Skipping initialization'
    else
      initialise "${@:2}"
    fi
    unset PGPASSWORD
  fi
  exec "$@"
}

main "$@"
