#!/usr/bin/env bash
# Measures the edge budgets of the README: `scripts/edge-budgets.sh [TARGET ...]`.
#
# For each target (default: the five of scripts/cross.sh, plus the host), with
# the size-optimised profile `release-small` (opt-level s, fat LTO, one
# codegen unit, stripped):
#   - the size of an SQLite-only app (the quickstart: dbx with only `sqlite`)
#   - the size of an app with sqlite + redis + postgres (the edge example),
#     with TLS for Redis and PostgreSQL (dbx's default feature `tls`) and
#     without it (`--no-default-features`; run once against Redis and
#     PostgreSQL to check it works, in plaintext)
#   - under qemu-user (natively on x86_64): the edge example against SQLite in
#     memory, Redis and PostgreSQL: connect to ready and peak RSS. qemu-user's
#     peak RSS is the emulator's process, which includes qemu itself and the
#     code it translated; "qemu alone" is the same figure for a program that
#     returns at once (the quickstart with a URL it rejects), so the
#     difference estimates what the program itself took.
#   - the SQLite point-select ratio dbx / raw rusqlite (the point_select
#     example: both side by side in one process)
# It prints a Markdown table. Builds take minutes per target (fat LTO).
# Prerequisites are those of scripts/cross.sh (run it once first).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
source scripts/targets.sh
HOST=$HOST_TARGET
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${EDGE_TARGETS[@]}" "$HOST")
REDIS_URL="${DBX_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
POSTGRES_URL="${DBX_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
PROFILE=release-small

build() { # TARGET FEATURES EXAMPLE... (NO_DEFAULT=1: without the examples' default `tls`)
  local t=$1 features=$2; shift 2
  local env_t linker=()
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$t")
  case "$t" in "$HOST"|x86_64-unknown-linux-musl) ;; *) linker=("CARGO_TARGET_${env_t}_LINKER=$gcc") ;; esac
  local cc=()
  [ -n "$gcc" ] && cc=("CC_${t//-/_}=$gcc" "CFLAGS_${t//-/_}=$cflags")
  env "${linker[@]}" "${cc[@]}" cargo build -q -p examples --profile "$PROFILE" --target "$t" \
    ${NO_DEFAULT:+--no-default-features} ${features:+--features "$features"} $(printf -- '--example %s ' "$@") >&2
}

peak_kib() { # COMMAND... -> peak RSS in KiB (of the whole process, qemu included)
  /usr/bin/time -f '%M' -o /tmp/dbx-edge-time.$$ "$@" >/dev/null 2>&1 || true
  tail -n1 /tmp/dbx-edge-time.$$
}

mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)" >&2; exit 1; }
echo "| target | SQLite-only app | sqlite + redis + postgres app | the same without TLS | connect to ready (SQLite / Redis / PostgreSQL) | peak RSS (SQLite / Redis / PostgreSQL) | qemu alone | SQLite point select, dbx / rusqlite |"
echo "|---|---|---|---|---|---|---|---|"
for t in "${targets[@]}"; do
  configure "$t"
  dir="$CARGO_TARGET_DIR/$t/$PROFILE/examples"
  build "$t" "" quickstart
  small=$(stat -c %s "$dir/quickstart")
  run=()
  if [ -n "$qemu" ]; then run=("$qemu"); [ -n "$sysroot" ] && run+=(-L "$sysroot"); fi
  NO_DEFAULT=1 build "$t" redis,postgres edge
  notls=$(stat -c %s "$dir/edge")
  for url in "$REDIS_URL" "$POSTGRES_URL"; do
    out=$("${run[@]}" "$dir/edge" "$url")
    grep -q '^done$' <<<"$out" || { echo "$t: edge without TLS, $url failed: $out" >&2; exit 1; }
  done
  build "$t" redis,postgres edge point_select
  three=$(stat -c %s "$dir/edge")
  connects=(); peaks=()
  for url in sqlite::memory: "$REDIS_URL" "$POSTGRES_URL"; do
    out=$("${run[@]}" "$dir/edge" "$url")
    grep -q '^done$' <<<"$out" || { echo "$t: edge $url failed: $out" >&2; exit 1; }
    connects+=("$(sed -nE 's/.* in ([0-9.]+[mµn]?s)$/\1/p' <<<"$out" | head -n1)")
    peaks+=("$(mib "$(peak_kib "${run[@]}" "$dir/edge" "$url")")")
  done
  alone=$(mib "$(peak_kib "${run[@]}" "$dir/quickstart" "nosuchscheme://")")
  ratio=$("${run[@]}" "$dir/point_select" | sed -nE 's/.*= ([0-9.]+x).*/\1/p')
  printf '| %s | %.2f MB | %.2f MB | %.2f MB | %s / %s / %s | %s / %s / %s MiB | %s MiB | %s |\n' "$t" \
    "$(awk -v b="$small" 'BEGIN { print b / 1e6 }')" "$(awk -v b="$three" 'BEGIN { print b / 1e6 }')" \
    "$(awk -v b="$notls" 'BEGIN { print b / 1e6 }')" \
    "${connects[@]}" "${peaks[@]}" "$alone" "$ratio"
done
rm -f /tmp/dbx-edge-time.$$
