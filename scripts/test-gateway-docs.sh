#!/usr/bin/env bash
# The gateway's /docs page in a real browser: `scripts/test-gateway-docs.sh`.
#
# Builds dbx-gateway (debug, the same CARGO_TARGET_DIR as scripts/test.sh),
# starts it on a free loopback port over a SQLite file, and runs
# dbx-gateway/tests/browser/docs-check.mjs in headless Chromium (Debian's
# `chromium`, driven by playwright-core from npm; no browser is downloaded):
# the page lists the operations, Authorize takes a bearer token, "Try it out"
# -> Execute on POST /v1/db/{db}/sql/query shows 200 and the row, and no
# request leaves the gateway. Installs chromium (apt) and playwright-core
# (npm ci) the first time.
#
# Environment:
#   CARGO_TARGET_DIR   build directory (default ~/.cache/dbx-target)
#   GATEWAY_BIN        use this binary instead of building
#   SHOT               also save a screenshot of the operation here (PNG)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
if [ ! -x /usr/bin/chromium ]; then
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null
fi
command -v node >/dev/null 2>&1 || {
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
}
BROWSER_DIR="$ROOT/dbx-gateway/tests/browser"
if [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
  (cd "$BROWSER_DIR" && npm ci --no-audit --no-fund --silent)
fi
if [ -z "${GATEWAY_BIN:-}" ]; then
  cargo build -q -p dbx-gateway
  GATEWAY_BIN="$CARGO_TARGET_DIR/debug/dbx-gateway"
fi

WORK=$(mktemp -d /tmp/dbx-gateway-docs.XXXXXX)
GW_PID=
cleanup() {
  if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT

head -c 48 /dev/urandom | base64 >"$WORK/secret"
cat >"$WORK/gateway.toml" <<'TOML'
listen = "127.0.0.1:0"
[auth]
issuer = "dbx-bench"
audience = "dbx-gateway"
[[auth.keys]]
algorithm = "HS256"
secret_file = "secret"
[roles.bench]
grants = [{ databases = ["lite"], capabilities = ["sql", "kv"], access = "read" }]
[log]
format = "text"
filter = "warn"
[databases.lite]
url = "sqlite:docs.db"
TOML
python3 - "$WORK/docs.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
c.execute("INSERT INTO notes VALUES (1, 'hello from dbx'), (2, 'second note')")
c.commit()
PY
TOKEN=$(python3 "$ROOT/dbx-gateway/bench/mint-jwt.py" "$WORK/secret" bench 600)

mkfifo "$WORK/out"
(cd "$WORK" && exec "$GATEWAY_BIN" --config "$WORK/gateway.toml" >"$WORK/out" 2>"$WORK/gateway.log") &
GW_PID=$!
exec 3<"$WORK/out"
if ! read -r -t 60 line <&3; then
  echo "gateway did not start; log:" >&2; cat "$WORK/gateway.log" >&2; exit 1
fi
cat <&3 >/dev/null &
BASE=${line#listening on }

GATEWAY_URL="$BASE" TOKEN="$TOKEN" DB=lite SHOT="${SHOT:-}" node "$BROWSER_DIR/docs-check.mjs"
