#!/usr/bin/env bash
# Start a throwaway Redis Cluster on free loopback ports and print its dbx URL:
# 3 primaries + 3 replicas (redis-server --cluster-enabled yes, created with
# redis-cli --cluster create ... --cluster-replicas 1), every node with
# appendonly + appendfsync always so an acknowledged write survives a kill -9
# of its primary once replicated, and cluster-node-timeout 1000 ms so a dead
# primary is replaced in about 2 s.
#
#   url="$(scripts/start-redis-cluster.sh)"        # redis+cluster://127.0.0.1:P1,...
#   scripts/start-redis-cluster.sh --stop "$url"   # stop its nodes, delete its files
#   scripts/start-redis-cluster.sh --logs "$url"   # CLUSTER NODES of each live node
#                                                  # and the tail of every node log
#
# Each cluster lives in its own directory, ~/.cache/dbx-redis-cluster/<first port>
# (node logs, pid files, AOF and nodes.conf). It only ever binds 127.0.0.1.
#
# Environment:
#   DBX_CLUSTER_NODES     nodes to start (default 6; with DBX_CLUSTER_REPLICAS)
#   DBX_CLUSTER_REPLICAS  replicas per primary (default 1)
set -euo pipefail

ROOT="$HOME/.cache/dbx-redis-cluster"
SERVER="${REDIS_SERVER:-redis-server}"
CLI="${REDIS_CLI:-redis-cli}"

stop() { # dir
  local dir=$1 pid
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f")
    kill -9 "$pid" 2>/dev/null || true
  done
  rm -rf "$dir"
}

if [ "${1:-}" = --stop ] || [ "${1:-}" = --logs ]; then
  url=${2:?usage: start-redis-cluster.sh --stop|--logs URL}
  first=${url#*://}
  first=${first%%,*}
  first=${first%%/*}
  port=${first##*:}
  if [ "$1" = --stop ]; then
    [ -d "$ROOT/$port" ] && stop "$ROOT/$port"
    exit 0
  fi
  dir="$ROOT/$port"
  for log in "$dir"/*.log; do
    [ -e "$log" ] || continue
    p=$(basename "$log" .log)
    echo "--- node $p: CLUSTER NODES"
    timeout 2 "$CLI" -p "$p" cluster nodes 2>&1 || echo "(no answer)"
    echo "--- node $p: last lines of its log"
    tail -n 25 "$log"
  done
  exit 0
fi

command -v "$SERVER" >/dev/null || { echo "start-redis-cluster.sh: $SERVER not found" >&2; exit 1; }
nodes=${DBX_CLUSTER_NODES:-6}
replicas=${DBX_CLUSTER_REPLICAS:-1}

# Free ports, asked of the kernel (a cluster node also listens on port+10000,
# so both must be free).
ports=$(python3 - "$nodes" <<'PY'
import socket, sys
want, found, held = int(sys.argv[1]), [], []
while len(found) < want:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); held.append(s)
    p = s.getsockname()[1]
    if p + 10000 > 65535:
        continue
    t = socket.socket()
    try:
        t.bind(("127.0.0.1", p + 10000))
    except OSError:
        continue
    finally:
        t.close()
    found.append(p)
print(" ".join(map(str, found)))
PY
)
first=${ports%% *}
dir="$ROOT/$first"
rm -rf "$dir"
mkdir -p "$dir"
trap 'stop "$dir"' ERR

for p in $ports; do
  mkdir -p "$dir/$p"
  "$SERVER" --port "$p" --bind 127.0.0.1 --dir "$dir/$p" \
    --cluster-enabled yes --cluster-config-file nodes.conf --cluster-node-timeout 1000 \
    --appendonly yes --appendfsync always --save '' \
    --daemonize yes --pidfile "$dir/$p.pid" --logfile "$dir/$p.log" >/dev/null
done
for p in $ports; do
  for _ in $(seq 1 100); do
    "$CLI" -p "$p" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
done

addrs=()
for p in $ports; do addrs+=("127.0.0.1:$p"); done
"$CLI" --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes >"$dir/create.log" 2>&1 || {
  echo "start-redis-cluster.sh: redis-cli --cluster create failed; see $dir/create.log" >&2
  tail -n 20 "$dir/create.log" >&2
  exit 1
}

# Ready when every node reports cluster_state:ok and sees every node, and every
# replica has finished its first sync.
for _ in $(seq 1 300); do
  ready=1
  for p in $ports; do
    info=$("$CLI" -p "$p" cluster info 2>/dev/null || true)
    if ! grep -q 'cluster_state:ok' <<<"$info" || ! grep -q "cluster_known_nodes:$nodes" <<<"$info"; then
      ready=0
      break
    fi
    repl=$("$CLI" -p "$p" info replication 2>/dev/null || true)
    if grep -q 'role:slave' <<<"$repl" && ! grep -q 'master_link_status:up' <<<"$repl"; then
      ready=0
      break
    fi
  done
  [ "$ready" = 1 ] && break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "start-redis-cluster.sh: the cluster did not become ready within 30 s; see $dir/*.log" >&2
  exit 1
fi

list=$(IFS=,; echo "${addrs[*]}")
echo "redis+cluster://$list"
