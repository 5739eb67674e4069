#!/bin/sh
# One run of the store's scheduled work, started by the CronJob (WordPress itself never runs it on
# page loads: DISABLE_WP_CRON). Runs the WP-Cron events that are due (scheduled sales, e-mails,
# clean-ups, Action Scheduler's own runner), then works through WooCommerce's Action Scheduler
# queue (stock holds, webhooks, follow-ups) in bounded batches; what is left waits for the next
# run. Nothing to do until the setup Job has installed WordPress. Never prints a credential.
set -eu

WP_PATH=/var/www/html
log() { printf 'cron: %s\n' "$*"; }
wp() { command wp --path="$WP_PATH" --no-color "$@"; }

if ! wp core is-installed 2>/dev/null; then
  log "WordPress is not installed yet (the setup Job installs it); nothing to run"
  exit 0
fi
started=$(date +%s)
log "running the WP-Cron events that are due"
wp cron event run --due-now
if wp cli has-command "action-scheduler run"; then
  log "running the Action Scheduler queue (up to ${AS_BATCHES} batches of ${AS_BATCH_SIZE})"
  wp action-scheduler run --batch-size="$AS_BATCH_SIZE" --batches="$AS_BATCHES"
else
  log "no Action Scheduler (WooCommerce not active)"
fi
log "done in $(( $(date +%s) - started ))s"
