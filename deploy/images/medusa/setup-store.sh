#!/bin/sh
# Brings a store's database to the state the server expects: schema migrations, the admin user and
# the seed data an order needs. Every step is idempotent, so the chart's setup Job may run it on
# every install and upgrade, and again after a partial failure.
#
#   setup-store.sh          wait for Postgres, then migrate, ensure the admin user, seed
#   setup-store.sh --wait   wait until a setup has finished (the server's init container)
#
# Runs from the built server directory (the image's /app: node_modules/ and compiled src/) or from
# a source checkout. Needs DATABASE_URL, REDIS_URL, JWT_SECRET, COOKIE_SECRET, and for the setup
# ADMIN_EMAIL and ADMIN_PASSWORD. SETUP_WAIT_SECONDS bounds each wait (default 600).
set -eu
cd "$(dirname "$0")"
medusa=node_modules/.bin/medusa
ext=js
[ -f src/scripts/seed.js ] || ext=ts

# wait_for SQL WHAT: until SQL returns a row. Errors (server down, table missing) mean "not yet".
wait_for() {
  node -e '
    const { Client } = require("pg")
    const [sql, what, seconds] = process.argv.slice(1)
    const deadline = Date.now() + 1000 * Number(seconds)
    const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
    ;(async () => {
      for (let said = false; ; said = true) {
        const client = new Client({ connectionString: process.env.DATABASE_URL })
        try {
          await client.connect()
          if ((await client.query(sql)).rowCount > 0) process.exit(0)
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
  ' "$1" "$2" "${SETUP_WAIT_SECONDS:-600}"
}

if [ "${1:-}" = "--wait" ]; then
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
echo "setup-store: done"
