#!/usr/bin/env bash
# healthcheck.sh of the mariadb stand-in (a test fixture): the checks of the official image's script
# that probes use, with the same meaning. Each option names a check; all must pass (exit 0).
#   --connect                    the server accepts TCP connections (a refused login still counts)
#   --innodb_initialized         InnoDB is ready
#   --innodb_buffer_pool_loaded  the buffer pool saved at the last shutdown is loaded again
#   --mariadbupgrade             the data directory needs no mariadb-upgrade
# Client options: --datadir=DIR (where .my-healthcheck.cnf is, default /var/lib/mysql),
# --defaults-file=F, --defaults-extra-file=F, --no-defaults.
set -eo pipefail

datadir=/var/lib/mysql
client=()
checks=()
for arg in "$@"; do
  case "$arg" in
    --connect | --innodb_initialized | --innodb_buffer_pool_loaded | --mariadbupgrade) checks+=("${arg#--}") ;;
    --datadir=*) datadir="${arg#*=}" ;;
    --defaults-file=* | --defaults-extra-file=* | --no-defaults) client+=("$arg") ;;
    *) echo "healthcheck: unknown option or check: $arg" >&2; exit 1 ;;
  esac
done
# The entrypoint wrote the healthcheck user's login there when it initialised the data directory.
if ((${#client[@]} == 0)) && [[ -r "$datadir/.my-healthcheck.cnf" ]]; then
  client=(--defaults-extra-file="$datadir/.my-healthcheck.cnf")
fi

query() {  # SQL: its single value
  mariadb "${client[@]}" --skip-ssl --skip-ssl-verify-server-cert -h localhost --protocol=tcp \
    --skip-column-names --batch -e "$1"
}

connect() {
  local out
  out="$(mariadb "${client[@]}" --skip-ssl --skip-ssl-verify-server-cert -h localhost --protocol=tcp \
    -e 'SELECT 1' 2>&1)" && return 0
  # "Access denied" means a server answered; only "Can't connect" is a failed check.
  [[ "$out" != *"Can't connect"* ]]
}

innodb_initialized() {
  [[ "$(query "SELECT 1 FROM information_schema.ENGINES WHERE engine = 'innodb' AND support IN ('YES', 'DEFAULT', 'ENABLED')")" == 1 ]]
}

innodb_buffer_pool_loaded() {
  [[ "$(query "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'Innodb_buffer_pool_load_status'")" == "Buffer pool(s) load completed at"* ]]
}

mariadbupgrade() {
  local info="$datadir/mariadb_upgrade_info" server
  [[ -f "$info" ]] || info="$datadir/mysql_upgrade_info"
  server="$(mariadbd --version | grep -oE '[0-9]+\.[0-9]+\.[0-9]+' | head -1)"
  [[ -f "$info" && "$(grep -oE '^[0-9]+\.[0-9]+\.[0-9]+' "$info")" == "$server" ]]
}

for check in "${checks[@]}"; do
  "$check" || { echo "healthcheck $check failed" >&2; exit 1; }
done
