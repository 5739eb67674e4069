#!/bin/sh
# Brings one store to the state the orchestrator promises: WordPress installed and its database
# schema current, WooCommerce at the pinned version, active and its database updated, pretty
# permalinks, and the shop settings applied by store-setup.php. The chart runs it as a Job named
# per revision, so it runs on every install and every upgrade: the upgrade's health gate waits
# for it, which is how database migrations are done before the orchestrator calls the store ready.
# Every step looks before it acts, so a re-run after any partial failure converges instead of
# repeating work. Never prints a credential.
set -eu

WP_PATH=/var/www/html
log() { printf 'setup: %s\n' "$*"; }
wp() { command wp --path="$WP_PATH" --no-color "$@"; }

wait_for_database() {
  deadline=$(( $(date +%s) + DB_WAIT_SECONDS ))
  # shellcheck disable=SC2016 # PHP code: the $ are PHP's, not the shell's.
  until php -r '
      mysqli_report(MYSQLI_REPORT_OFF);
      $db = @mysqli_connect(getenv("WORDPRESS_DB_HOST"), getenv("WORDPRESS_DB_USER"),
                            getenv("WORDPRESS_DB_PASSWORD"), getenv("WORDPRESS_DB_NAME"));
      exit($db ? 0 : 1);'; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "database ${WORDPRESS_DB_HOST} not reachable after ${DB_WAIT_SECONDS}s"
      exit 1
    fi
    log "waiting for database ${WORDPRESS_DB_HOST}"
    sleep 5
  done
}

install_wordpress() {
  if wp core is-installed 2>/dev/null; then
    log "WordPress already installed"
    return
  fi
  log "installing WordPress for ${STORE_URL}"
  # The password goes through stdin (--prompt), never onto a command line or into the log.
  printf '%s\n' "$ADMIN_PASSWORD" | wp core install \
    --url="$STORE_URL" --title="$SITE_TITLE" \
    --admin_user="$ADMIN_USER" --admin_email="$ADMIN_EMAIL" \
    --skip-email --prompt=admin_password >/dev/null
}

update_wordpress_database() {
  # The setup Job runs on every install and upgrade. An upgrade may bring newer WordPress core files
  # (the image's): bring the database schema up to them before anything else touches it. Does
  # nothing when the schema is current.
  result="$(wp core update-db)"
  log "WordPress database: ${result#Success: }"
}

ensure_permalinks() {
  if [ "$(wp option get permalink_structure 2>/dev/null || true)" = "/%postname%/" ]; then
    log "pretty permalinks already on"
    return
  fi
  log "turning on pretty permalinks (/wp-json)"
  wp rewrite structure '/%postname%/'
}

install_woocommerce() {
  # The upgrader unpacks into wp-content/upgrade and renames the result into place (same
  # volume), so an interrupted install leaves either no plugin or a whole one; a missing or
  # other-version plugin is (re)installed as a whole. No download when it is already there,
  # so a re-run needs no egress.
  installed="$(wp plugin get woocommerce --field=version 2>/dev/null || true)"
  if [ "$installed" = "$WOOCOMMERCE_VERSION" ]; then
    log "WooCommerce ${installed} already installed"
  else
    log "installing WooCommerce ${WOOCOMMERCE_VERSION} (found: ${installed:-none})"
    wp plugin install woocommerce --version="$WOOCOMMERCE_VERSION" --force
  fi
  if wp plugin is-active woocommerce; then
    log "WooCommerce already active"
  else
    log "activating WooCommerce"
    wp plugin activate woocommerce
  fi
  # WooCommerce's own database update, after the plugin of this revision is in place: on an upgrade
  # to a newer WooCommerce this migrates its tables; does nothing when there is nothing to do.
  log "WooCommerce database update"
  wp wc update
}

if [ -z "${ADMIN_PASSWORD:-}" ]; then
  # Without it wp-cli would invent a password and print it.
  log "admin-password in the store Secret is empty"
  exit 1
fi
wait_for_database
install_wordpress
update_wordpress_database
ensure_permalinks
install_woocommerce
log "applying store settings"
wp eval-file /scripts/store-setup.php
log "store is set up"
