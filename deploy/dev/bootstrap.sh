#!/usr/bin/env bash
# Installs what development and the tests need on a Debian/Ubuntu machine, idempotently:
# Postgres, Redis, Chromium and PHP (CLI) from Debian packages, and the Python virtualenv from
# requirements.txt (reinstalled only when requirements.txt changes).
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$repo"

need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v redis-server >/dev/null || need+=(redis-server)
command -v chromium >/dev/null || need+=(chromium)
command -v php >/dev/null || need+=(php-cli)  # WordPress' HTTP API in tests/charts/test_woocommerce_http.py
[[ -x /usr/bin/time ]] || need+=(time)  # GNU time measures the Medusa setup in tests/charts/test_medusa_native.py
if ((${#need[@]})); then
  echo "bootstrap: installing ${need[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need[@]}" >/dev/null
fi

stamp=".venv/.requirements.sha256"
want="$(sha256sum requirements.txt | cut -d' ' -f1)"
if [[ ! -x .venv/bin/python || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  echo "bootstrap: installing Python packages" >&2
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip
  .venv/bin/pip install -q -r requirements.txt
  echo "$want" > "$stamp"
fi
