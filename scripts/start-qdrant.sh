#!/usr/bin/env bash
# Start a throwaway Qdrant for the dbx tests, if a Qdrant binary is found, and
# print the URL the tests should use (`qdrant://127.0.0.1:<port>`). Prints
# nothing (and exits 0) when no binary is found.
#
#   export DBX_TEST_QDRANT_URL="$(scripts/start-qdrant.sh)"
#
# Qdrant is not in this machine's package registries; the binary is built
# outside this repository from Qdrant's public source and found through:
#   QDRANT_BIN                  path to the binary, or else
#   `qdrant` on PATH, or else
#   ~/.cache/dbx-qdrant/qdrant
# The server binds 127.0.0.1 only, on free ports, with telemetry disabled,
# keeps its storage in a fresh temporary directory, logs to
# ~/.cache/dbx-qdrant.<port>.log, and is stopped (its directory removed) by
# `scripts/start-qdrant.sh --stop URL`; each server has its own pid file,
# ~/.cache/dbx-qdrant.<port>.pid, so concurrent runs never stop each
# other's. Only the URL goes to stdout.
set -euo pipefail

CACHE="$HOME/.cache"

stop() { # stop PORT
  local pidfile="$CACHE/dbx-qdrant.$1.pid" pid dir
  if [ -f "$pidfile" ]; then
    read -r pid dir <"$pidfile" || true
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    [ -n "${dir:-}" ] && rm -rf "$dir"
    rm -f "$pidfile"
  fi
}

if [ "${1:-}" = --stop ]; then
  port="${2:-}"
  port="${port##*:}"
  port="${port%%/*}"
  [ -n "$port" ] || { echo "usage: $0 --stop qdrant://127.0.0.1:PORT" >&2; exit 2; }
  stop "$port"
  exit 0
fi

find_bin() {
  if [ -n "${QDRANT_BIN:-}" ]; then
    [ -x "$QDRANT_BIN" ] && { echo "$QDRANT_BIN"; return; }
    echo "QDRANT_BIN=$QDRANT_BIN is not an executable" >&2
    return 1
  fi
  command -v qdrant 2>/dev/null && return
  [ -x "$HOME/.cache/dbx-qdrant/qdrant" ] && { echo "$HOME/.cache/dbx-qdrant/qdrant"; return; }
  return 1
}

BIN="$(find_bin)" || exit 0

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

mkdir -p "$CACHE"
DIR="$(mktemp -d "${TMPDIR:-/tmp}/dbx-qdrant.XXXXXX")"
GRPC="$(free_port)"
HTTP="$(free_port)"
while [ "$HTTP" = "$GRPC" ]; do HTTP="$(free_port)"; done
PIDFILE="$CACHE/dbx-qdrant.$GRPC.pid"
LOG="$CACHE/dbx-qdrant.$GRPC.log"
(
  cd "$DIR"
  QDRANT__SERVICE__HOST=127.0.0.1 \
  QDRANT__SERVICE__GRPC_PORT="$GRPC" \
  QDRANT__SERVICE__HTTP_PORT="$HTTP" \
  QDRANT__TELEMETRY_DISABLED=true \
  QDRANT__STORAGE__STORAGE_PATH="$DIR/storage" \
  QDRANT__STORAGE__SNAPSHOTS_PATH="$DIR/snapshots" \
  QDRANT__LOG_LEVEL=WARN \
    nohup setsid "$BIN" >"$LOG" 2>&1 </dev/null &
  echo "$! $DIR" >"$PIDFILE"
)
read -r pid _ <"$PIDFILE"

# Ready when the gRPC port accepts and the HTTP readiness probe says so.
for _ in $(seq 1 300); do
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "Qdrant ($BIN) exited during startup; see $LOG" >&2
    tail -n 20 "$LOG" >&2 || true
    exit 1
  fi
  if (exec 3<>"/dev/tcp/127.0.0.1/${GRPC}") 2>/dev/null \
    && python3 -c "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:${HTTP}/readyz', timeout=1).status == 200 else 1)" 2>/dev/null; then
    echo "qdrant://127.0.0.1:${GRPC}"
    exit 0
  fi
  sleep 0.2
done
echo "Qdrant ($BIN) did not become ready within 60 s; see $LOG" >&2
stop "$GRPC"
exit 1
