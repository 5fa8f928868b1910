#!/usr/bin/env bash
# Run every dbx comparison in one go and write a markdown table of ratios
# (dbx / raw driver on the same connection model, dbx / the server's own tool).
#
#   scripts/bench.sh [OUTPUT.md]          default: $CARGO_TARGET_DIR/bench/report.md
#
# Needs the local servers: Redis at $DBX_BENCH_REDIS_URL (redis://127.0.0.1:6379)
# and PostgreSQL at 127.0.0.1:5432 (user postgres, trust auth); MongoDB at
# $DBX_BENCH_MONGO_URL, else $DBX_TEST_MONGO_URL, else mongodb://127.0.0.1:27018
# (scripts/start-mongo.sh) and Qdrant at $DBX_BENCH_QDRANT_URL, else
# $DBX_TEST_QDRANT_URL (scripts/start-qdrant.sh), for their criterion rows
# only; a missing server's rows are skipped. Uses redis-benchmark, pgbench,
# createdb, python3.
#
# Knobs: DBX_BENCH_SECS (seconds per load run, default 5), DBX_BENCH_ROUNDS
# (interleaved rounds per comparison, default 4; keep it even, see below; the
# table shows the median of the per-round ratios), DBX_BENCH_CRITERION=0 to
# skip the criterion benches, DBX_BENCH_CLUSTER=0 to skip the Redis Cluster
# comparison (a throwaway cluster from scripts/start-redis-cluster.sh, or
# DBX_BENCH_REDIS_CLUSTER_URL).
#
# Ratios, not absolute times: the machines are shared and noisy, so each
# comparison runs its contenders back to back, round after round. Where a
# contender stands in dbx-load's `--client` list biases it: two identical
# raw tokio-postgres clients (`--client raw,raw`, 9 runs on 2026-12-04) read
# the second 1.05x the first (median), so the order flips every round.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
out=${1:-$CARGO_TARGET_DIR/bench/report.md}
secs=${DBX_BENCH_SECS:-5}
rounds=${DBX_BENCH_ROUNDS:-4}
redis_url=${DBX_BENCH_REDIS_URL:-redis://127.0.0.1:6379}
pg_host=127.0.0.1 pg_port=5432 pg_user=postgres pg_db=dbx_bench
# Plain TCP on every side (the raw clients use NoTls; pgbench is told the same).
pg_url="postgres://$pg_user@$pg_host:$pg_port/$pg_db?sslmode=disable"
export DBX_BENCH_PG_URL=$pg_url DBX_BENCH_REDIS_URL=$redis_url PGSSLMODE=disable
work=$CARGO_TARGET_DIR/bench
mkdir -p "$work" "$(dirname "$out")"
results=$work/results.txt
: >"$results"
log=$work/bench.log
: >"$log"
say() { echo "bench.sh: $*" >&2; }
# The `--client` list for round $1: as given in odd rounds, reversed in even ones.
order() { # round list
  if (($1 % 2)); then echo "$2"; else tr ',' '\n' <<<"$2" | tac | paste -sd, -; fi
}
record() { echo "$*" >>"$results"; }

say "building (release)"
cargo build --release -q -p benches --bin dbx-load
cargo build --release -q -p examples --example quickstart
load=$CARGO_TARGET_DIR/release/dbx-load

# --- criterion: per-operation comparisons -------------------------------
if [ "${DBX_BENCH_CRITERION:-1}" != 0 ]; then
  export CRITERION_HOME=$work/criterion
  rm -rf "$CRITERION_HOME"
  say "criterion benches (sqlite, policy, redis, postgres)"
  cargo bench -q -p benches --bench sqlite --bench policy --bench redis --bench postgres 2>&1 | tee -a "$log" >&2
  # MongoDB find_one and Qdrant search: each bench skips with a message when
  # its server is absent, and then leaves no figures (so no rows).
  say "criterion: mongo (find_one by _id)"
  cargo bench -q -p benches --bench mongo 2>&1 | tee -a "$log" >&2
  if [ -n "${DBX_BENCH_QDRANT_URL:-${DBX_TEST_QDRANT_URL:-}}" ]; then
    say "criterion: vector -- qdrant (search 10k x 384)"
    cargo bench -q -p benches --bench vector -- qdrant 2>&1 | tee -a "$log" >&2
  else
    say "skipping Qdrant: set DBX_BENCH_QDRANT_URL (e.g. \$(scripts/start-qdrant.sh))"
  fi
  python3 - "$CRITERION_HOME" >>"$results" <<'PY'
import json, os, sys
home = sys.argv[1]
for d, _, files in os.walk(home):
    if d.endswith("/new") and "benchmark.json" in files:
        b = json.load(open(os.path.join(d, "benchmark.json")))
        e = json.load(open(os.path.join(d, "estimates.json")))
        print(f"crit {b['full_id']} {e['median']['point_estimate']:.3f}")
PY
fi

# --- load runs: dbx-load against the servers' own tools ------------------
# dbx-load prints key=value pairs; keep the throughput and the percentiles.
# With `--client dbx,raw,pool` the contenders run in one process, alternating
# in 250 ms slices; each prints a line, recorded as <prefix>-<client>-r<round>.
run_load() { # prefix round args...
  local prefix=$1 round=$2; shift 2
  local lines line client
  if lines=$("$load" --duration "$secs" "$@" 2>>"$log"); then
    echo "$lines" >>"$log"
    while IFS= read -r line; do
      client=$(sed -n 's/^client=\([a-z]*\).*/\1/p' <<<"$line")
      if [ -n "$round" ]; then
        record "load $prefix-$client-r$round $line"
      else
        record "load $prefix $line"
      fi
    done <<<"$lines"
  else
    say "dbx-load $* failed (see $log)"
  fi
}

# The servers' tools run as one process for the whole run, so dbx is set
# beside them the same way: dbx-load with dbx alone (no 250 ms slices), right
# next to the tool, dbx first in odd rounds and the tool first in even ones,
# so a drift of the shared host's speed weighs on both alike.
beside_tool() { # prefix round tool-command dbx-load-args...
  local prefix=$1 round=$2 tool=$3; shift 3
  if ((round % 2)); then
    run_load "$prefix-alone" "$round" "$@" --client dbx
    "$tool"
  else
    "$tool"
    run_load "$prefix-alone" "$round" "$@" --client dbx
  fi
}
redis_tool() { # uses $op, $r, $n
  local rps
  rps=$(redis-benchmark -u "$redis_url" -c 50 -n "$n" -r 100000 -t "$op" --csv 2>>"$log" | tail -1 | cut -d, -f2 | tr -d '"')
  record "tool redis-$op-r$r throughput=$rps"
}
pg_tool() { # uses $c, $r
  local tps
  tps=$(pgbench -S -M prepared -n -c "$c" -j 2 -T "$secs" -h $pg_host -p $pg_port -U $pg_user $pg_db 2>>"$log" \
    | sed -n 's/^tps = \([0-9.]*\).*/\1/p' | head -1)
  record "tool pg-c$c-r$r throughput=$tps"
}

if redis-cli -u "$redis_url" ping >/dev/null 2>&1; then
  # Fill the keys GET reads, as redis-benchmark -r 100000 names them.
  "$load" --url "$redis_url" --op set --concurrency 50 --ops 200000 --keys 100000 >>"$log" 2>&1
  n=$((secs * 150000))
  for r in $(seq "$rounds"); do
    say "redis round $r/$rounds"
    for op in get set; do
      run_load "redis-$op" "$r" --url "$redis_url" --op "$op" --concurrency 50 --client "$(order "$r" dbx,raw,pool)"
      if [ "$op" = get ]; then
        # Both sides with Nagle on (dbx's tcp_nodelay=false, redis-rs's default).
        sep='?'; [[ "$redis_url" == *\?* ]] && sep='&'
        run_load "redis-getnagle" "$r" --url "${redis_url}${sep}tcp_nodelay=false" --op get --concurrency 50 --client "$(order "$r" dbx,raw)"
      fi
      beside_tool "redis-$op" "$r" redis_tool --url "$redis_url" --op "$op" --concurrency 50
    done
  done
else
  say "skipping Redis: no server at $redis_url"
fi

# Redis Cluster: dbx against redis-rs's own cluster client, on a throwaway
# 3+3 cluster (DBX_BENCH_REDIS_CLUSTER_URL to use another; DBX_BENCH_CLUSTER=0
# to skip).
if [ "${DBX_BENCH_CLUSTER:-1}" != 0 ]; then
  cluster_url=${DBX_BENCH_REDIS_CLUSTER_URL:-}
  started_cluster=
  if [ -z "$cluster_url" ] && cluster_url=$(bash scripts/start-redis-cluster.sh 2>>"$log"); then
    started_cluster=$cluster_url
  fi
  if [ -n "$cluster_url" ]; then
    "$load" --url "$cluster_url" --op set --concurrency 50 --ops 200000 --keys 100000 >>"$log" 2>&1
    for r in $(seq "$rounds"); do
      say "redis cluster round $r/$rounds"
      run_load "cluster-get" "$r" --url "$cluster_url" --op get --concurrency 50 --client "$(order "$r" dbx,raw)"
    done
    [ -n "$started_cluster" ] && bash scripts/start-redis-cluster.sh --stop "$started_cluster"
  else
    say "skipping Redis Cluster: scripts/start-redis-cluster.sh failed (see $log)"
  fi
fi

if pg_isready -q -h $pg_host -p $pg_port; then
  if ! psql -h $pg_host -p $pg_port -U $pg_user -Atqc "select 1 from pg_database where datname='$pg_db'" postgres | grep -q 1; then
    createdb -h $pg_host -p $pg_port -U $pg_user $pg_db
  fi
  say "pgbench -i (scale 1: 100000 accounts)"
  pgbench -i -q -s 1 -h $pg_host -p $pg_port -U $pg_user $pg_db >>"$log" 2>&1
  for r in $(seq "$rounds"); do
    say "postgres round $r/$rounds"
    for c in 8 50; do
      run_load "pg-c$c" "$r" --url "$pg_url" --op select --concurrency $c --client "$(order "$r" dbx,raw,pool)"
      beside_tool "pg-c$c" "$r" pg_tool --url "$pg_url" --op select --concurrency "$c"
    done
  done
else
  say "skipping PostgreSQL: no server at $pg_host:$pg_port"
fi

# --- quickstart: peak RSS and connect-to-ready ---------------------------
qs=$CARGO_TARGET_DIR/release/examples/quickstart
if rss=$(/usr/bin/time -f '%M' "$qs" 2>&1 >/dev/null | tail -1); then
  record "quickstart rss_kb=$rss"
fi
run_load "sqlite-connect" "" --url "sqlite::memory:" --op get --concurrency 1 --ops 1000

# --- the table ---------------------------------------------------------------
machine="$(uname -srm), $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
python3 - "$results" "$machine" "$(date -u '+%Y-%m-%d %H:%M UTC')" "scripts/bench.sh $*" "$secs" "$rounds" >"$out" <<'PY'
import re, statistics, sys
path, machine, date, command, secs, rounds = sys.argv[1:7]
crit, load, tool, misc = {}, {}, {}, {}
for line in open(path):
    kind, tag, *rest = line.split()
    kv = dict(x.split("=", 1) for x in rest if "=" in x)
    if kind == "crit":
        crit[tag] = float(rest[0])
    elif kind == "load":
        load[tag] = kv
    elif kind == "tool":
        tool[tag] = kv
    else:
        misc[kind] = {tag.split("=")[0]: tag.split("=")[1]}

def rounds_of(prefix, src):
    out = {}
    for tag, kv in src.items():
        m = re.fullmatch(re.escape(prefix) + r"-r(\d+)", tag)
        if m and kv.get("throughput") not in (None, ""):
            out[int(m.group(1))] = kv
    return out

def med_ratio(a, b, key="throughput"):
    rs = [float(a[r][key]) / float(b[r][key]) for r in a if r in b and float(b[r][key]) > 0]
    return (statistics.median(rs), rs) if rs else (None, [])

def med(src, key):
    vs = [float(kv[key]) for kv in src.values() if key in kv]
    return statistics.median(vs) if vs else None

def fmt(x, nd=2):
    return "–" if x is None else f"{x:.{nd}f}"

rows = []
def row(what, ratio, target, met, detail):
    rows.append(f"| {what} | {ratio} | {target} | {met} | {detail} |")

def verdict(x, lo=None, hi=None):
    if x is None:
        return "not measured"
    ok = (lo is None or x >= lo) and (hi is None or x <= hi)
    return "met" if ok else "**missed**"

# Throughput comparisons at N tasks (ratio = dbx ops/s / other ops/s).
for op, label in (("get", "GET"), ("set", "SET")):
    d = rounds_of(f"redis-{op}-dbx", load)
    if not d:
        continue
    raw, pool, rb = rounds_of(f"redis-{op}-raw", load), rounds_of(f"redis-{op}-pool", load), rounds_of(f"redis-{op}", tool)
    r1, rs1 = med_ratio(d, raw)
    alone = rounds_of(f"redis-{op}-alone-dbx", load) or d
    r2, rs2 = med_ratio(alone, rb)
    r3, _ = med_ratio(d, pool)
    t = op == "get"
    row(f"Redis {label}, 50 tasks: dbx / raw redis-rs ConnectionManager (both `TCP_NODELAY`)", fmt(r1), "≥ 0.95" if t else "–", verdict(r1, 0.95) if t else "–",
        f"dbx {fmt(med(d,'throughput'),0)} ops/s, raw {fmt(med(raw,'throughput'),0)}; rounds {', '.join(fmt(x) for x in rs1)}")
    row(f"Redis {label}, 50 tasks: dbx / redis-benchmark -c 50", fmt(r2), "≥ 3" if t else "–", verdict(r2, 3) if t else "–",
        f"dbx alone {fmt(med(alone,'throughput'),0)} ops/s, redis-benchmark {fmt(med(rb,'throughput'),0)} rps; rounds {', '.join(fmt(x) for x in rs2)}")
    row(f"Redis {label}, 50 tasks: dbx / deadpool-redis (16, checkout)", fmt(r3), "reference", "–", f"deadpool {fmt(med(pool,'throughput'),0)} ops/s")
    dn, rawn = rounds_of(f"redis-{op}nagle-dbx", load), rounds_of(f"redis-{op}nagle-raw", load)
    if dn and rawn:
        r4, rs4 = med_ratio(dn, rawn)
        r5, _ = med_ratio(dn, rb)
        row(f"Redis {label}, 50 tasks, `tcp_nodelay=false` on both: dbx / raw redis-rs ConnectionManager", fmt(r4), "reference", "–",
            f"dbx {fmt(med(dn,'throughput'),0)} ops/s, raw {fmt(med(rawn,'throughput'),0)}; rounds {', '.join(fmt(x) for x in rs4)}")
        row(f"Redis {label}, 50 tasks, dbx with `tcp_nodelay=false` / redis-benchmark -c 50", fmt(r5), "reference", "–",
            f"dbx p99 {fmt(med(dn,'p99_us'),0)} µs")
    if t:
        p99 = med(d, "p99_us")
        row("Redis GET p99 latency, 50 tasks (dbx)", f"{fmt(p99,0)} µs", "< 2000 µs", verdict(p99, hi=2000),
            f"p50 {fmt(med(d,'p50_us'),0)} µs, p99.9 {fmt(med(d,'p999_us'),0)} µs")

d, raw = rounds_of("cluster-get-dbx", load), rounds_of("cluster-get-raw", load)
if d and raw:
    r1, rs1 = med_ratio(d, raw)
    row("Redis Cluster (3+3) GET, 50 tasks: dbx / raw redis-rs cluster client (both `TCP_NODELAY`)", fmt(r1), "≥ 0.95", verdict(r1, 0.95),
        f"dbx {fmt(med(d,'throughput'),0)} ops/s, raw {fmt(med(raw,'throughput'),0)}; rounds {', '.join(fmt(x) for x in rs1)}")

for c in (8, 50):
    d = rounds_of(f"pg-c{c}-dbx", load)
    if not d:
        continue
    raw, pool, pg = rounds_of(f"pg-c{c}-raw", load), rounds_of(f"pg-c{c}-pool", load), rounds_of(f"pg-c{c}", tool)
    alone = rounds_of(f"pg-c{c}-alone-dbx", load) or d
    r1, rs1 = med_ratio(d, raw)
    r2, rs2 = med_ratio(alone, pg)
    r3, _ = med_ratio(d, pool)
    row(f"PostgreSQL point select, {c} tasks: dbx / raw tokio-postgres (2 shared clients)", fmt(r1),
        "≥ 0.95" if c == 50 else "–", verdict(r1, 0.95) if c == 50 else "–",
        f"dbx {fmt(med(d,'throughput'),0)} ops/s, raw {fmt(med(raw,'throughput'),0)}; rounds {', '.join(fmt(x) for x in rs1)}")
    tgt = 1.5 if c == 50 else 0.8
    row(f"PostgreSQL point select, {c} tasks: dbx / pgbench -S -M prepared -c {c}", fmt(r2), f"≥ {tgt}", verdict(r2, tgt),
        f"dbx alone {fmt(med(alone,'throughput'),0)} ops/s, pgbench {fmt(med(pg,'throughput'),0)} tps; rounds {', '.join(fmt(x) for x in rs2)}")
    row(f"PostgreSQL point select, {c} tasks: dbx / deadpool-postgres (8, checkout)", fmt(r3), "reference", "–",
        f"deadpool {fmt(med(pool,'throughput'),0)} ops/s")

# Per-operation comparisons from criterion (ratio = dbx time / raw time).
def cr(a, b):
    return crit[a] / crit[b] if a in crit and b in crit else None
flavors = {"multi_thread": "multi-thread runtime", "multi_thread_task": "multi-thread runtime, spawned task",
           "current_thread": "current-thread runtime"}
for flavor, where in flavors.items():
    for op in ("point_select", "insert"):
        r = cr(f"sqlite/{op}/dbx_{flavor}", f"sqlite/{op}/raw_rusqlite")
        t = op == "point_select"
        if r is not None:
            row(f"SQLite {op.replace('_', ' ')}, time per op: dbx ({where}) / raw rusqlite", fmt(r),
                "≤ 2 (stretch 1.5)" if t else "–", verdict(r, hi=2) if t else "–",
                f"{fmt(crit[f'sqlite/{op}/dbx_{flavor}'],0)} ns vs {fmt(crit[f'sqlite/{op}/raw_rusqlite'],0)} ns")
        # Reference: rusqlite on a private in-memory database, which no
        # other connection can share (so it skips the memdb VFS's locking).
        rp = cr(f"sqlite/{op}/dbx_{flavor}", f"sqlite/{op}/raw_rusqlite_private_memory")
        if rp is not None:
            row(f"SQLite {op.replace('_', ' ')}, time per op: dbx ({where}) / raw rusqlite on a private `:memory:`", fmt(rp),
                "reference", "–",
                f"{fmt(crit[f'sqlite/{op}/dbx_{flavor}'],0)} ns vs {fmt(crit[f'sqlite/{op}/raw_rusqlite_private_memory'],0)} ns")
if "policy/kv_get/direct" in crit:
    base = crit["policy/kv_get/direct"]
    for line, label in (("none", "no subscriber, no recorder"), ("tracing", "tracing subscriber"), ("metrics", "metrics recorder"), ("tracing_metrics", "both")):
        k = f"policy/kv_get/dbx_{line}"
        if k in crit:
            ns = crit[k] - base
            row(f"Resilience success path on a no-op op ({label}): overhead per op", f"{ns:.0f} ns",
                "< 1000 ns" if line == "none" else "–", verdict(ns, hi=1000) if line == "none" else "–",
                f"dbx {crit[k]:.0f} ns vs direct call {base:.0f} ns")
for kind, label in (("redis_get_c50", "Redis GET"), ("redis_set_c50", "Redis SET")):
    a, b = f"redis/{kind.split('_')[1]}/c50/dbx", f"redis/{kind.split('_')[1]}/c50/raw_redis_rs"
    r = cr(b, a)
    if r is not None:
        row(f"{label}, 50 tasks, criterion: dbx / raw throughput", fmt(r), "–", "–", f"{crit[a]:.0f} ns vs {crit[b]:.0f} ns per op")
for c in (1, 8, 50):
    a, b = f"postgres/point_select/c{c}/dbx", f"postgres/point_select/c{c}/raw_tokio_postgres"
    r = cr(b, a)
    if r is not None:
        row(f"PostgreSQL point select, {c} tasks, criterion: dbx / raw throughput", fmt(r), "–", "–", f"{crit[a]:.0f} ns vs {crit[b]:.0f} ns per op")
for c, tasks in ((1, "1 task"), (50, "50 tasks")):
    a, b = f"mongo/find_one/c{c}/dbx", f"mongo/find_one/c{c}/raw_mongodb"
    r = cr(a, b)
    if r is not None:
        row(f"MongoDB find_one by _id, {tasks}, criterion: dbx / raw (time per op)", fmt(r), "–", "–",
            f"{crit[a] / 1000:.1f} µs vs {crit[b] / 1000:.1f} µs per op (raw: the mongodb crate, same maxPoolSize)")
a, b = "vector/qdrant_search_10k/dbx", "vector/qdrant_search_10k/raw_qdrant_client"
r = cr(a, b)
if r is not None:
    row("Qdrant search 10k x 384, criterion: dbx / raw (time per op)", fmt(r), "–", "–",
        f"{crit[a] / 1000:.0f} µs vs {crit[b] / 1000:.0f} µs per search, top 10, cosine (raw: qdrant-client)")
if "quickstart" in misc:
    mb = int(misc["quickstart"]["rss_kb"]) / 1024
    row("quickstart peak RSS", f"{mb:.1f} MB", "< 15 MB", verdict(mb, hi=15), "`/usr/bin/time -f %M`, release build")
if "sqlite-connect" in load:
    ms = float(load["sqlite-connect"]["connect_ms"])
    row("connect to ready (`Dbx::connect(\"sqlite::memory:\")`)", f"{ms:.1f} ms", "< 100 ms", verdict(ms, hi=100), "dbx-load, release build")
for tag, label in (("pg-c50-dbx", "PostgreSQL"), ("redis-get-dbx", "Redis")):
    d = rounds_of(tag, load)
    if d:
        ms = med(d, "connect_ms")
        row(f"connect to ready ({label}, loopback)", f"{ms:.1f} ms", "< 100 ms", verdict(ms, hi=100), "dbx-load, release build")

print(f"# dbx performance: ratios\n")
print(f"- machine: {machine}")
print(f"- date: {date}")
print(f"- command: `{command}` ({rounds} interleaved rounds of {secs}s per load comparison; table = median of per-round ratios)")
print(f"- throughput ratios are dbx / other (higher is better); time ratios are dbx / raw (lower is better)")
print(f"- dbx-load rows interleave the contenders in one process; criterion rows run them one after another and swing more\n")
print("| comparison | dbx ratio | target | status | detail |")
print("|---|---|---|---|---|")
print("\n".join(rows))
PY
cat "$out"
say "wrote $out (raw figures in $results, log in $log)"
