#!/usr/bin/env bash
# Start a throwaway Redis Sentinel setup on free loopback ports and print its
# dbx URL: a primary, one replica and 3 sentinels monitoring them as
# `dbxmaster` (quorum 2, down-after-milliseconds 1000, failover-timeout
# 5000), every data node with appendonly + appendfsync always.
#
#   url="$(scripts/start-redis-sentinel.sh)"        # redis+sentinel://127.0.0.1:S1,...,/dbxmaster
#   scripts/start-redis-sentinel.sh --stop "$url"   # stop its processes, delete its files
#
# Everything lives in ~/.cache/dbx-redis-sentinel/<first sentinel port>
# (logs, pid files, configs, AOF). It only ever binds 127.0.0.1.
set -euo pipefail

ROOT="$HOME/.cache/dbx-redis-sentinel"
SERVER="${REDIS_SERVER:-redis-server}"
CLI="${REDIS_CLI:-redis-cli}"
NAME=dbxmaster

stop() { # dir
  local dir=$1 pid
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

if [ "${1:-}" = --stop ]; then
  url=${2:?usage: start-redis-sentinel.sh --stop URL}
  first=${url#*://}
  first=${first%%,*}
  first=${first%%/*}
  port=${first##*:}
  [ -d "$ROOT/$port" ] && stop "$ROOT/$port"
  exit 0
fi

command -v "$SERVER" >/dev/null || { echo "start-redis-sentinel.sh: $SERVER not found" >&2; exit 1; }
read -r P R S1 S2 S3 < <(python3 - <<'PY'
import socket
held = [socket.socket() for _ in range(5)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
)
dir="$ROOT/$S1"
rm -rf "$dir"
mkdir -p "$dir"
trap 'stop "$dir"' ERR

data_node() { # port [replicaof-port]
  local p=$1
  mkdir -p "$dir/$p"
  "$SERVER" --port "$p" --bind 127.0.0.1 --dir "$dir/$p" \
    --appendonly yes --appendfsync always --save '' \
    --daemonize yes --pidfile "$dir/$p.pid" --logfile "$dir/$p.log" \
    ${2:+--replicaof 127.0.0.1 "$2"} >/dev/null
}
data_node "$P"
data_node "$R" "$P"
for s in $S1 $S2 $S3; do
  cat >"$dir/sentinel-$s.conf" <<EOF
port $s
bind 127.0.0.1
daemonize yes
pidfile $dir/$s.pid
logfile $dir/$s.log
dir $dir
sentinel monitor $NAME 127.0.0.1 $P 2
sentinel down-after-milliseconds $NAME 1000
sentinel failover-timeout $NAME 5000
sentinel parallel-syncs $NAME 1
EOF
  "$SERVER" "$dir/sentinel-$s.conf" --sentinel >/dev/null
done

# Ready when the replica is in sync and every sentinel knows the replica and
# the two other sentinels.
for _ in $(seq 1 300); do
  ready=1
  "$CLI" -p "$R" info replication 2>/dev/null | grep -q 'master_link_status:up' || ready=0
  for s in $S1 $S2 $S3; do
    [ "$ready" = 1 ] || break
    info=$("$CLI" -p "$s" info sentinel 2>/dev/null || true)
    grep -q "name=$NAME,status=ok,address=127.0.0.1:$P,slaves=1,sentinels=3" <<<"$info" || ready=0
  done
  [ "$ready" = 1 ] && break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "start-redis-sentinel.sh: the sentinels did not settle within 30 s; see $dir/*.log" >&2
  exit 1
fi
echo "redis+sentinel://127.0.0.1:$S1,127.0.0.1:$S2,127.0.0.1:$S3/$NAME"
