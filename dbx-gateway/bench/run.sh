#!/usr/bin/env bash
# The gateway's load table, reproducible with one command:
#
#   dbx-gateway/bench/run.sh            # builds the release binary, 3 rounds
#   ROUNDS=5 DURATION=15s dbx-gateway/bench/run.sh
#
# Needs: wrk, redis-benchmark, pgbench, psql, python3, curl; Redis on
# 127.0.0.1:6379 and PostgreSQL on 127.0.0.1:5432 (user postgres, trust auth).
# Everything talks to 127.0.0.1 only. The gateway, the load generator and the
# databases share this machine, so each figure is the whole box's.
#
# Per round, side by side: redis-benchmark GET (baseline), wrk KV GET through
# the gateway, pgbench point select (baseline), wrk SQL point select through
# the gateway on PostgreSQL and on SQLite; then the gateway's RSS (VmRSS and
# VmHWM from /proc). Finally startup-to-ready over STARTUP_RUNS runs.
# Test data: Redis keys bench:kv:1..1000 and redis-benchmark's key:000000000000
# ..key:000000000999, the PostgreSQL table dbx_bench_items (10k rows); all
# removed at the end. Not part of CI.
set -euo pipefail

ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-50}
THREADS=${THREADS:-2}
PORT=${BENCH_PORT:-18471}
STARTUP_RUNS=${STARTUP_RUNS:-30}
PG_URL=${PG_URL:-postgres://postgres@127.0.0.1:5432/postgres}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)

for tool in wrk redis-benchmark redis-cli pgbench psql python3 curl; do
  command -v "$tool" >/dev/null || { echo "run.sh: needs $tool (Debian: apt-get install wrk redis-tools postgresql-client)" >&2; exit 2; }
done

if [ -z "${GATEWAY_BIN:-}" ]; then
  (cd "$ROOT" && cargo build --release -p dbx-gateway >&2)
  GATEWAY_BIN="${CARGO_TARGET_DIR:-$ROOT/target}/release/dbx-gateway"
fi

WORK=$(mktemp -d /tmp/dbx-gateway-bench.XXXXXX)
GW_PID=
cleanup() {
  if [ -n "$GW_PID" ]; then kill "$GW_PID" 2>/dev/null || true; wait "$GW_PID" 2>/dev/null || true; fi
  { for i in $(seq 1 1000); do echo "DEL bench:kv:$i"; done
    for i in $(seq 0 999); do printf 'DEL key:%012d\n' "$i"; done; } | redis-cli -h 127.0.0.1 -p 6379 >/dev/null || true
  psql -q "$PG_URL" -c 'DROP TABLE IF EXISTS dbx_bench_items' >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# --- configuration and data ----------------------------------------------
sed "s/^listen = .*/listen = \"127.0.0.1:$PORT\"/" "$HERE/gateway.toml" >"$WORK/gateway.toml"
head -c 48 /dev/urandom | base64 >"$WORK/secret"
chmod 600 "$WORK/secret"
TOKEN=$(python3 "$HERE/mint-jwt.py" "$WORK/secret" bench)
export TOKEN

{ for i in $(seq 1 1000); do printf 'SET bench:kv:%d value-%010d\n' "$i" "$i"; done; } | redis-cli -h 127.0.0.1 -p 6379 >/dev/null
redis-benchmark -h 127.0.0.1 -p 6379 -t set -r 1000 -n 20000 -d 16 -q >/dev/null
psql -q -v ON_ERROR_STOP=1 "$PG_URL" >/dev/null <<'SQL'
DROP TABLE IF EXISTS dbx_bench_items;
CREATE TABLE dbx_bench_items (id integer PRIMARY KEY, name text NOT NULL, score double precision NOT NULL);
INSERT INTO dbx_bench_items SELECT i, 'item-' || i, i * 0.5 FROM generate_series(1, 10000) AS i;
ANALYZE dbx_bench_items;
SQL
python3 - "$WORK/bench.db" <<'PY'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("PRAGMA journal_mode=WAL")
c.execute("CREATE TABLE dbx_bench_items (id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL NOT NULL)")
c.executemany("INSERT INTO dbx_bench_items VALUES (?, ?, ?)", ((i, f"item-{i}", i * 0.5) for i in range(1, 10001)))
c.commit()
PY

# --- the gateway -----------------------------------------------------------
(cd "$WORK" && exec "$GATEWAY_BIN" --config "$WORK/gateway.toml" >"$WORK/stdout" 2>"$WORK/gateway.log") &
GW_PID=$!
for _ in $(seq 1 200); do
  curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  sleep 0.05
done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { echo "gateway not ready; log:" >&2; cat "$WORK/gateway.log" >&2; exit 1; }
BASE="http://127.0.0.1:$PORT"
# Sanity: each request the load sends answers 200 with the expected body.
curl -fs -H "authorization: Bearer $TOKEN" "$BASE/v1/db/red/kv/bench:kv:7" | grep -q 'value-0000000007'
for db in pg lite; do
  # shellcheck disable=SC2016 # $1 is the SQL placeholder, not a shell variable
  curl -fs -H "authorization: Bearer $TOKEN" -H 'content-type: application/json' \
    -d '{"sql":"SELECT id, name, score FROM dbx_bench_items WHERE id = $1","params":[42]}' \
    "$BASE/v1/db/$db/sql/query" | grep -q '"item-42"'
done

echo "# machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/Mem:/{print $2}') GiB; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "# gateway: $GATEWAY_BIN; wrk -t$THREADS -c$CONNS -d$DURATION; $ROUNDS rounds"

# CPU time (user + system, in clock ticks) a process has used so far: the
# gateway's CPU per request does not depend on how much of the shared
# machine it was given, unlike requests/s.
CLK=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
per_req() { # ticks_before ticks_after requests -> microseconds of CPU per request
  awk -v a="$1" -v b="$2" -v n="$3" -v clk="$CLK" 'BEGIN{ if (n > 0) printf "%.1f", (b - a) * 1e6 / clk / n; else print "-" }'
}
REDIS_PID=$(pgrep -x redis-server | head -1 || true)
[ -n "$REDIS_PID" ] && [ -r "/proc/$REDIS_PID/stat" ] || REDIS_PID=

wrk_run() { # label lua [env...]
  local label=$1 lua=$2; shift 2
  local out t0 t1 line errs n
  t0=$(cpu_ticks "$GW_PID")
  out=$(env "$@" wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$HERE/$lua" "$BASE" 2>&1)
  t1=$(cpu_ticks "$GW_PID")
  line=$(echo "$out" | grep '^non2xx=' || true)
  n=$(echo "$line" | sed -n 's/.*requests=\([0-9]*\).*/\1/p')
  errs=$(echo "$out" | grep -E 'Socket errors|Non-2xx' | tr '\n' ' ' || true)
  echo "$label $line gateway_cpu_us_per_req=$(per_req "$t0" "$t1" "${n:-0}") $errs"
}

rss() {
  awk '/VmRSS|VmHWM/{printf "%s=%.1fMB ", $1, $2/1024}' "/proc/$GW_PID/status"
  echo
}

# Warm up: connections, statement caches.
wrk -t"$THREADS" -c"$CONNS" -d2s -s "$HERE/kv-get.lua" "$BASE" >/dev/null
SQL_DB=pg wrk -t"$THREADS" -c"$CONNS" -d2s -s "$HERE/sql-get.lua" "$BASE" >/dev/null
SQL_DB=lite wrk -t"$THREADS" -c"$CONNS" -d2s -s "$HERE/sql-get.lua" "$BASE" >/dev/null

secs=${DURATION%s}
for r in $(seq 1 "$ROUNDS"); do
  echo "## round $r"
  n=$((secs * 40000))
  r0=$( [ -n "$REDIS_PID" ] && cpu_ticks "$REDIS_PID" || echo 0)
  rb=$(redis-benchmark -h 127.0.0.1 -p 6379 -t get -r 1000 -c "$CONNS" -n "$n" --csv | tail -1)
  r1=$( [ -n "$REDIS_PID" ] && cpu_ticks "$REDIS_PID" || echo 0)
  echo "redis-benchmark-get $rb requests=$n redis_cpu_us_per_req=$( [ -n "$REDIS_PID" ] && per_req "$r0" "$r1" "$n" || echo -)"
  wrk_run gateway-kv-get kv-get.lua
  echo "pgbench-select $(pgbench -n -M prepared -c "$CONNS" -j "$THREADS" -T "$secs" -f "$HERE/pgbench-select.sql" "$PG_URL" 2>/dev/null \
    | awk '/latency average/{lat=$4} /^tps/{tps=$3} END{printf "tps=%.0f avg_latency_ms=%s", tps, lat}')"
  wrk_run gateway-sql-pg sql-get.lua SQL_DB=pg
  wrk_run gateway-sql-sqlite sql-get.lua SQL_DB=lite
  echo "gateway-rss $(rss)"
done

kill "$GW_PID"; wait "$GW_PID" 2>/dev/null || true; GW_PID=
echo "## startup"
(cd "$WORK" && python3 "$HERE/startup.py" "$GATEWAY_BIN" "$WORK/gateway.toml" "$PORT" "$STARTUP_RUNS")
