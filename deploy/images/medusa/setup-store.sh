#!/bin/sh
# Brings a store's database to the state the server expects: schema migrations, the admin user and
# the seed data an order needs. Every step is idempotent, so the chart's setup Job may run it on
# every install and upgrade, and again after a partial failure.
#
#   setup-store.sh          wait for Postgres, then migrate, ensure the admin user, seed
#   setup-store.sh --wait   wait until a setup has finished (the server's init container)
#
# SETUP_MARKER (the chart sets "<chart version>/<release revision>") ties the two to one revision:
# the setup writes it last, into store_orchestrator.setup_runs, and --wait waits for exactly it. On
# an upgrade the store is long set up, so only this revision's marker proves that this revision's
# migrations ran before its server starts. Without SETUP_MARKER, --wait waits for the seed's marker
# (any setup, ever).
#
# Runs from the built server directory (the image's /app: node_modules/ and compiled src/) or from
# a source checkout. Needs DATABASE_URL, REDIS_URL, JWT_SECRET, COOKIE_SECRET, and for the setup
# ADMIN_EMAIL and ADMIN_PASSWORD. SETUP_WAIT_SECONDS bounds each wait (default 600).
set -eu
cd "$(dirname "$0")"
medusa=node_modules/.bin/medusa
ext=js
[ -f src/scripts/seed.js ] || ext=ts

# wait_for SQL WHAT [PARAM]: until SQL ($1 = PARAM) returns a row. Errors (server down, table
# missing) mean "not yet".
wait_for() {
  node -e '
    const { Client } = require("pg")
    const [sql, what, seconds, ...params] = process.argv.slice(1)
    const deadline = Date.now() + 1000 * Number(seconds)
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
    ;(async () => {
      for (let said = false; ; said = true) {
        const client = new Client({ connectionString: process.env.DATABASE_URL })
        try {
          await client.connect()
          if ((await client.query(sql, params)).rowCount > 0) process.exit(0)
          if (!said) console.error(`setup-store: waiting for ${what}`)
        } catch (error) {
          if (!said) console.error(`setup-store: waiting for ${what} (${error.message})`)
        } finally {
          await client.end().catch(() => {})
        }
        if (Date.now() > deadline) {
          console.error(`setup-store: gave up waiting for ${what}`)
          process.exit(1)
        }
        await sleep(2000)
      }
    })()
  ' "$1" "$2" "${SETUP_WAIT_SECONDS:-600}" ${3+"$3"}
}

# mark_done MARKER: record that the setup of MARKER's revision finished (again, on a re-run).
mark_done() {
  node -e '
    const { Client } = require("pg")
    ;(async () => {
      const client = new Client({ connectionString: process.env.DATABASE_URL })
      await client.connect()
      await client.query("CREATE SCHEMA IF NOT EXISTS store_orchestrator")
      await client.query(`CREATE TABLE IF NOT EXISTS store_orchestrator.setup_runs (
        marker text PRIMARY KEY, finished_at timestamptz NOT NULL DEFAULT now())`)
      await client.query(`INSERT INTO store_orchestrator.setup_runs (marker) VALUES ($1)
        ON CONFLICT (marker) DO UPDATE SET finished_at = now()`, [process.argv[1]])
      await client.end()
    })().catch((error) => { console.error(`setup-store: ${error.message}`); process.exit(1) })
  ' "$1"
}

if [ "${1:-}" = "--wait" ]; then
  if [ -n "${SETUP_MARKER:-}" ]; then
    wait_for "SELECT 1 FROM store_orchestrator.setup_runs WHERE marker = \$1" "the setup of ${SETUP_MARKER}" \
      "$SETUP_MARKER"
    echo "setup-store: store is set up (${SETUP_MARKER})"
    exit 0
  fi
  # The seed writes this marker last (src/scripts/seed.ts, SEED_MARKER).
  wait_for "SELECT 1 FROM store WHERE metadata->>'store_orchestrator_seed' IS NOT NULL" "the store setup"
  echo "setup-store: store is set up"
  exit 0
fi

wait_for "SELECT 1" "the database"
echo "setup-store: migrations"
"$medusa" db:migrate
echo "setup-store: admin user"
"$medusa" exec "./src/scripts/ensure-admin.$ext"
echo "setup-store: seed"
"$medusa" exec "./src/scripts/seed.$ext"
if [ -n "${SETUP_MARKER:-}" ]; then
  mark_done "$SETUP_MARKER"
  echo "setup-store: marked ${SETUP_MARKER} set up"
fi
echo "setup-store: done"
