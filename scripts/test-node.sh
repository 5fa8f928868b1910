#!/usr/bin/env bash
# The Node.js binding's tests: `scripts/test-node.sh` (for scripts/test.sh).
#
# Installs Node.js and npm from Debian when missing, installs the binding's
# dev dependencies (TypeScript and Node's type definitions, pinned by
# package-lock.json) with `npm ci` when node_modules is missing or stale
# (`--prefer-offline`: npm's cache first), builds the addon with
# bindings/node/build.sh (debug profile, the same CARGO_TARGET_DIR as
# scripts/test.sh, so warm runs rebuild nothing), type-checks index.d.ts
# with tsc, and runs the tests with node's built-in runner against SQLite,
# Redis, PostgreSQL (and MongoDB when DBX_TEST_MONGO_URL is set).
#
# Environment:
#   CARGO_TARGET_DIR        build directory (default ~/.cache/dbx-target)
#   DBX_TEST_<BACKEND>_URL  point the tests at other servers
#   extra arguments go to `node --test`
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq nodejs npm >/dev/null
fi
node -e 'if (+process.versions.node.split(".")[0] < 18) { console.error(`Node.js >= 18 needed, found ${process.version}`); process.exit(1) }'

cd bindings/node
# node_modules/.package-lock.json is what npm last installed: reinstall
# when package-lock.json differs from it.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
fi

./build.sh
node_modules/.bin/tsc -p tsconfig.json
if [ -z "${DBX_TEST_MONGO_URL:-}" ]; then
  echo "note: DBX_TEST_MONGO_URL is not set: the MongoDB document tests will be SKIPPED" >&2
fi
node --test --test-concurrency=1 "$@" test/*.test.js
