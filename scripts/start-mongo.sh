#!/usr/bin/env bash
# Start the MongoDB-wire test server of dbx (SecantusDB from PyPI) if it is
# not already answering, and print the URL the tests should use.
#
#   export DBX_TEST_MONGO_URL="$(scripts/start-mongo.sh)"
#
# MongoDB itself cannot be installed from this machine's package registries;
# SecantusDB is a single-node server that speaks the real wire protocol. The
# venv lives under ~/.cache/dbx-venv; the server keeps its data in memory and
# logs to ~/.cache/dbx-mongo.log. Only the URL goes to stdout.
#
# Environment:
#   DBX_MONGO_PORT   port to serve on (default 27018)
#   DBX_VENV         venv directory (default ~/.cache/dbx-venv)
#   DBX_MONGO_FRESH  1: stop a SecantusDB already serving that port and start
#                    a new one (a long-lived instance slows down; CI uses this)
set -euo pipefail

PORT="${DBX_MONGO_PORT:-27018}"
VENV="${DBX_VENV:-$HOME/.cache/dbx-venv}"
LOG="$HOME/.cache/dbx-mongo.log"
URL="mongodb://127.0.0.1:${PORT}"

answering() {
  # A TCP connect is enough: SecantusDB accepts only once it can serve.
    (exec 3<>"/dev/tcp/127.0.0.1/${PORT}") 2>/dev/null
}

if [ "${DBX_MONGO_FRESH:-0}" = 1 ] && pkill -f "secantusd-py .*--port ${PORT}( |$)" 2>/dev/null; then
  for _ in $(seq 1 100); do answering || break; sleep 0.1; done
fi

if answering; then
  echo "$URL"
  exit 0
fi

if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  python3 -m venv "$VENV" >&2
fi
if [ ! -x "$VENV/bin/secantusd-py" ]; then
  "$VENV/bin/pip" install -q SecantusDB >&2
fi

mkdir -p "$(dirname "$LOG")"
nohup setsid "$VENV/bin/secantusd-py" --host 127.0.0.1 --port "$PORT" \
  --storage-path :memory: --log-level WARNING >"$LOG" 2>&1 </dev/null &
pid=$!

for _ in $(seq 1 300); do
  if answering; then
    echo "$URL"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "SecantusDB exited while starting; see $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
  fi
  sleep 0.1
done
echo "SecantusDB did not accept connections on 127.0.0.1:${PORT} within 30s; see $LOG" >&2
exit 1
