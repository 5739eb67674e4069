#!/bin/sh
# Brings a store's database to the state the server expects: schema migrations, the admin user,
# and the seed data an order needs. Every step is idempotent, so the chart's setup Job may run it
# on every install and upgrade, and again after a partial failure.
# Runs from the built server directory (the image's /app), which holds node_modules/ and src/.
# Needs DATABASE_URL, REDIS_URL, JWT_SECRET, COOKIE_SECRET, ADMIN_EMAIL and ADMIN_PASSWORD.
set -eu
cd "$(dirname "$0")"
medusa=node_modules/.bin/medusa
# The built server carries compiled scripts; a source checkout (development) has TypeScript.
ext=js
[ -f src/scripts/seed.js ] || ext=ts

echo "setup-store: migrations"
"$medusa" db:migrate
echo "setup-store: admin user"
"$medusa" exec "./src/scripts/ensure-admin.$ext"
echo "setup-store: seed"
"$medusa" exec "./src/scripts/seed.$ext"
echo "setup-store: done"
