#!/usr/bin/env bash
# Entrypoint of the mariadb stand-in (a test fixture): the official image's contract, described in
# the Dockerfile, for Debian's mariadb-server. Initialises an empty data directory (or upgrades an
# older one when asked), then runs the server.
set -Eeo pipefail

note() { echo "$(date --rfc-3339=seconds) [Note] [Entrypoint]: $*"; }
fail() { echo "$(date --rfc-3339=seconds) [ERROR] [Entrypoint]: $*" >&2; exit 1; }

# MARIADB_X, else its MYSQL_X alias, else the content of the file MARIADB_X_FILE or MYSQL_X_FILE
# names (a mounted secret). A variable and its _FILE form are exclusive.
file_env() {  # NAME (without prefix) [DEFAULT]
  local name="$1" value="${2:-}" var file_var
  for var in "MARIADB_$name" "MYSQL_$name"; do
    file_var="${var}_FILE"
    [[ -z "${!var:-}" || -z "${!file_var:-}" ]] || fail "both $var and $file_var are set; they are exclusive"
  done
  for var in "MARIADB_$name" "MYSQL_$name"; do
    file_var="${var}_FILE"
    if [[ -n "${!var:-}" ]]; then value="${!var}"; break; fi
    if [[ -n "${!file_var:-}" ]]; then value="$(<"${!file_var}")"; break; fi
  done
  export "MARIADB_$name=$value"
  unset "MARIADB_${name}_FILE" "MYSQL_$name" "MYSQL_${name}_FILE"
}

setup_env() {  # MARIADBD ARGS...
  file_env ROOT_PASSWORD
  file_env ROOT_HOST '%'
  file_env DATABASE
  file_env USER
  file_env PASSWORD
  file_env ALLOW_EMPTY_ROOT_PASSWORD
  file_env RANDOM_ROOT_PASSWORD
  file_env INITDB_SKIP_TZINFO
  file_env AUTO_UPGRADE
  DATADIR="$(server_setting datadir "$@")"
  SOCKET="$(server_setting socket "$@")"
  PORT="$(server_setting port "$@")"
  : "${DATADIR:=/var/lib/mysql/}" "${SOCKET:=/run/mysqld/mysqld.sock}" "${PORT:=3306}"
}

# What the server would use, given its configuration files and arguments.
server_setting() {  # NAME MARIADBD ARGS...
  local name="$1"; shift
  "$@" --verbose --help --log-bin-index="$(mktemp -u)" 2>/dev/null |
    awk -v name="$name" '$1 == name && NF == 2 { print $2; exit }'
}

check_config() {  # MARIADBD ARGS...
  local out
  out="$("$@" --verbose --help --log-bin-index="$(mktemp -u)" 2>&1 >/dev/null)" ||
    fail "mariadbd failed while checking its configuration; command was: $* --verbose --help"$'\n'"$out"
}

create_directories() {
  mkdir -p "$DATADIR"
  if [[ "$(id -u)" == 0 ]]; then
    find "$DATADIR" \! -user mysql -exec chown mysql: '{}' +
    find "$(dirname "$SOCKET")" -maxdepth 0 \! -user mysql -exec chown mysql: '{}' \;
  fi
}

refuse_without_root_password() {
  [[ -z "$MARIADB_ROOT_PASSWORD" && -z "$MARIADB_ALLOW_EMPTY_ROOT_PASSWORD" && -z "$MARIADB_RANDOM_ROOT_PASSWORD" ]] ||
    return 0
  fail "Database is uninitialized and password option is not specified
	You need to specify one of MARIADB_ROOT_PASSWORD, MARIADB_ROOT_PASSWORD_FILE, MARIADB_ALLOW_EMPTY_ROOT_PASSWORD and MARIADB_RANDOM_ROOT_PASSWORD"
}

random_password() {  # (no pipe into head: its early exit would kill tr with SIGPIPE, and pipefail us)
  local p
  p="$(head -c 1024 /dev/urandom | tr -dc 'A-Za-z0-9,./:;=?@^_{}~-')"
  echo "${p:0:32}"
}

# A string as a single-quoted SQL literal.
sql_literal() { local s="${1//\\/\\\\}"; printf "'%s'" "${s//\'/\\\'}"; }
sql_name() { printf '`%s`' "${1//\`/\`\`}"; }

sql() {  # statements on stdin, as root over the temporary server's socket (MYSQL_PWD once root has one)
  mariadb --no-defaults --protocol=socket --socket="$SOCKET" -uroot --database=mysql --binary-mode "$@"
}

temp_server_start() {  # MARIADBD ARGS...
  "$@" --skip-networking --default-time-zone=SYSTEM --socket="$SOCKET" --wsrep_on=OFF \
    --expire-logs-days=0 --skip-slave-start --loose-innodb_buffer_pool_load_at_startup=0 \
    --skip-ssl --ssl-cert='' --ssl-key='' --ssl-ca='' &
  TEMP_SERVER_PID=$!
  note "Waiting for server startup"
  local i
  for i in $(seq 60); do
    if echo 'SELECT 1' | sql >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$TEMP_SERVER_PID" 2>/dev/null || fail "Unable to start server."
    sleep 1
  done
  fail "Unable to start server."
}

temp_server_stop() {
  kill "$TEMP_SERVER_PID"
  wait "$TEMP_SERVER_PID" || true
}

install_db() {  # MARIADBD ARGS...
  note "Initializing database files"
  mariadb-install-db --datadir="$DATADIR" --rpm --auth-root-authentication-method=normal \
    --skip-test-db --old-mode='UTF8_IS_UTF8MB3' --default-time-zone=SYSTEM --enforce-storage-engine= \
    --skip-log-bin --expire-logs-days=0 --loose-innodb_buffer_pool_load_at_startup=0 \
    --loose-innodb_buffer_pool_dump_at_shutdown=0 "${@:2}"
  note "Database files initialized"
}

# The SQL that makes root, the healthcheck user, the database and its user.
setup_sql() {  # ROOT_PASSWORD
  local root_password="$1" health_password
  health_password="$(random_password)"
  write_healthcheck_config "$health_password"
  echo "SET @@SESSION.SQL_LOG_BIN=0; SET @@SESSION.SQL_MODE=REPLACE(@@SESSION.SQL_MODE, 'NO_BACKSLASH_ESCAPES', '');"
  # Only root@localhost, and root@MARIADB_ROOT_HOST if asked, stay.
  echo "DROP USER IF EXISTS root@'127.0.0.1', root@'::1';"
  echo "EXECUTE IMMEDIATE CONCAT('DROP USER IF EXISTS root@\\'', @@hostname,'\\'');"
  echo "SET PASSWORD FOR 'root'@'localhost' = PASSWORD($(sql_literal "$root_password"));"
  if [[ "$MARIADB_ROOT_HOST" != localhost ]]; then
    echo "CREATE USER 'root'@$(sql_literal "$MARIADB_ROOT_HOST") IDENTIFIED BY $(sql_literal "$root_password");"
    echo "GRANT ALL ON *.* TO 'root'@$(sql_literal "$MARIADB_ROOT_HOST") WITH GRANT OPTION;"
    echo "GRANT PROXY ON ''@'%' TO 'root'@$(sql_literal "$MARIADB_ROOT_HOST") WITH GRANT OPTION;"
  fi
  local host
  for host in 127.0.0.1 ::1 localhost; do
    echo "CREATE USER healthcheck@'$host' IDENTIFIED BY $(sql_literal "$health_password");"
  done
  if [[ -n "$MARIADB_DATABASE" ]]; then
    note "Creating database ${MARIADB_DATABASE}" >&2
    echo "CREATE DATABASE IF NOT EXISTS $(sql_name "$MARIADB_DATABASE");"
  fi
  if [[ -n "$MARIADB_USER" && -n "$MARIADB_PASSWORD" ]]; then
    note "Creating user ${MARIADB_USER}" >&2
    echo "CREATE USER $(sql_literal "$MARIADB_USER")@'%' IDENTIFIED BY $(sql_literal "$MARIADB_PASSWORD");"
    if [[ -n "$MARIADB_DATABASE" ]]; then
      note "Giving user ${MARIADB_USER} access to schema ${MARIADB_DATABASE}" >&2
      echo "GRANT ALL ON $(sql_name "${MARIADB_DATABASE//_/\\_}").* TO $(sql_literal "$MARIADB_USER")@'%';"
    fi
  fi
}

# healthcheck.sh logs in with this (over TCP, as in the official image).
write_healthcheck_config() {  # PASSWORD
  local cnf="$DATADIR/.my-healthcheck.cnf"
  (umask 077 && printf '[mariadb-client]\nport=%s\nsocket=%s\nuser=healthcheck\npassword=%s\nprotocol=tcp\n' \
    "$PORT" "$SOCKET" "$1" >"$cnf")
}

run_init_files() {
  local f
  for f in /docker-entrypoint-initdb.d/*; do
    case "$f" in
      *.sh) if [[ -x "$f" ]]; then note "$0: running $f"; "$f"; else note "$0: sourcing $f"; . "$f"; fi ;;
      *.sql) note "$0: running $f"; sql ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} <"$f" ;;
      *.sql.gz) note "$0: running $f"; gunzip -c "$f" | sql ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} ;;
      *.sql.xz) note "$0: running $f"; xzcat "$f" | sql ${MARIADB_DATABASE:+--database="$MARIADB_DATABASE"} ;;
      *) [[ "$f" == '/docker-entrypoint-initdb.d/*' ]] || note "$0: ignoring $f" ;;
    esac
  done
}

initialise() {  # MARIADBD ARGS...
  refuse_without_root_password
  install_db "$@"
  note "Starting temporary server"
  temp_server_start "$@"
  note "Temporary server started."
  if [[ -z "$MARIADB_INITDB_SKIP_TZINFO" ]]; then
    mariadb-tzinfo-to-sql --skip-write-binlog /usr/share/zoneinfo 2>/dev/null | sql
  fi
  local root_password="$MARIADB_ROOT_PASSWORD"
  if [[ -n "$MARIADB_RANDOM_ROOT_PASSWORD" ]]; then
    root_password="$(random_password)"
    note "GENERATED ROOT PASSWORD: $root_password"
  fi
  setup_sql "$root_password" | sql
  # From here on root has its password (the client reads MYSQL_PWD); the server started by `exec`
  # below does not see it.
  export MYSQL_PWD="$root_password"
  run_init_files
  unset MYSQL_PWD
  note "Stopping temporary server"
  temp_server_stop
  note "Temporary server stopped"
  echo
  note "MariaDB init process done. Ready for start up."
  echo
}

# The data directory was made by an older release: mariadb-upgrade, when MARIADB_AUTO_UPGRADE asks.
upgrade_needed() {
  local info="$DATADIR/mariadb_upgrade_info" server
  [[ -f "$info" ]] || info="$DATADIR/mysql_upgrade_info"
  [[ -f "$info" ]] || return 0
  server="$(mariadbd --version | grep -oE '[0-9]+\.[0-9]+' | head -1)"
  [[ "$(grep -oE '^[0-9]+\.[0-9]+' "$info")" != "$server" ]]
}

upgrade() {  # MARIADBD ARGS...
  note "Starting temporary server for the upgrade"
  temp_server_start "$@" --skip-grant-tables --loose-innodb_buffer_pool_dump_at_shutdown=0
  mariadb-upgrade --upgrade-system-tables --protocol=socket --socket="$SOCKET" -uroot
  temp_server_stop
  note "MariaDB upgrade complete"
}

main() {
  if [[ "${1:0:1}" == - ]]; then
    set -- mariadbd "$@"
  fi
  if [[ "$1" == mariadbd || "$1" == mysqld ]] && ! [[ " $* " =~ \ (--help|-\?|--version|-V)\  ]]; then
    note "Entrypoint script for MariaDB Server (stand-in, $(mariadbd --version | awk '{print $3}')) started."
    check_config "$@"
    setup_env "$@"
    create_directories
    if [[ "$(id -u)" == 0 ]]; then
      note "Switching to dedicated user 'mysql'"
      exec setpriv --reuid=mysql --regid=mysql --init-groups -- "${BASH_SOURCE[0]}" "$@"
    fi
    if [[ ! -d "$DATADIR/mysql" ]]; then
      initialise "$@"
    elif [[ -n "$MARIADB_AUTO_UPGRADE" ]] && upgrade_needed; then
      upgrade "$@"
    fi
  fi
  exec "$@"
}

main "$@"
