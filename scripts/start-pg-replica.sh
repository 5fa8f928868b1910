#!/usr/bin/env bash
# Start a throwaway PostgreSQL primary and a streaming standby (made with
# pg_basebackup -R) on free loopback ports and print the dbx URL naming both:
#
#   url="$(scripts/start-pg-replica.sh)"       # postgres://postgres@127.0.0.1:P,127.0.0.1:S/postgres
#   scripts/start-pg-replica.sh --stop-primary "$url"   # immediate shutdown of the primary (a crash)
#   scripts/start-pg-replica.sh --promote "$url"        # promote the standby
#   scripts/start-pg-replica.sh --stop "$url"           # stop both, delete their files
#
# Trust authentication, fsync off (throwaway data), and synchronous
# replication (synchronous_standby_names='*'): a commit is acknowledged once
# the standby has it, so promoting the standby loses no acknowledged write.
# Files live in ${TMPDIR:-/tmp}/dbx-pg-replica/<primary port>, owned by the
# postgres user when run as root (the server refuses to run as root). Only
# 127.0.0.1 is used.
set -euo pipefail

ROOT="${TMPDIR:-/tmp}/dbx-pg-replica"
BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"
[ -x "$BIN/pg_ctl" ] || { echo "start-pg-replica.sh: no PostgreSQL server binaries (set PG_BIN)" >&2; exit 1; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

dir_of() { # url
  local first=${1#*://}
  first=${first#*@}
  first=${first%%,*}
  echo "$ROOT/${first##*:}"
}

case "${1:-}" in
  --stop)
    dir=$(dir_of "${2:?usage: --stop URL}")
    for node in primary standby; do
      [ -d "$dir/$node" ] && as_pg "$BIN/pg_ctl" -D "$dir/$node" -m immediate -w stop >/dev/null 2>&1 || true
    done
    rm -rf "$dir"
    exit 0
    ;;
  --stop-primary)
    dir=$(dir_of "${2:?usage: --stop-primary URL}")
    as_pg "$BIN/pg_ctl" -D "$dir/primary" -m immediate -w stop >/dev/null
    exit 0
    ;;
  --promote)
    dir=$(dir_of "${2:?usage: --promote URL}")
    as_pg "$BIN/pg_ctl" -D "$dir/standby" -w promote >/dev/null
    exit 0
    ;;
esac

read -r P S < <(python3 - <<'PY'
import socket
held = [socket.socket() for _ in range(2)]
for s in held:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in held))
PY
)
dir="$ROOT/$P"
rm -rf "$dir"
mkdir -p "$dir"
[ "$(id -u)" = 0 ] && chown postgres:postgres "$ROOT" "$dir"
trap 'bash "$0" --stop "postgres://postgres@127.0.0.1:$P"' ERR

start_node() { # name port [extra server options]
  as_pg "$BIN/pg_ctl" -D "$dir/$1" -l "$dir/$1.log" -w -t 30 \
    -o "-p $2 -c listen_addresses=127.0.0.1 -k $dir -c fsync=off ${3:-}" \
    start >/dev/null
}
as_pg "$BIN/initdb" -D "$dir/primary" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1
# Only the primary waits for a synchronous standby: the promoted standby
# has none, and would wait for one forever.
start_node primary "$P" "-c synchronous_standby_names=*"
as_pg "$BIN/pg_basebackup" -h 127.0.0.1 -p "$P" -U postgres -D "$dir/standby" -R -X stream --no-sync \
  >"$dir/basebackup.log" 2>&1
start_node standby "$S"

# Ready when the standby streams from the primary.
for _ in $(seq 1 300); do
  state=$(as_pg "$BIN/psql" -h 127.0.0.1 -p "$P" -U postgres -Atqc \
    "select state from pg_stat_replication" postgres 2>/dev/null || true)
  [ "$state" = streaming ] && break
  sleep 0.1
done
if [ "$state" != streaming ]; then
  echo "start-pg-replica.sh: the standby did not start streaming within 30 s; see $dir/*.log" >&2
  exit 1
fi
echo "postgres://postgres@127.0.0.1:$P,127.0.0.1:$S/postgres"
