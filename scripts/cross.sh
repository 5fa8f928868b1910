#!/usr/bin/env bash
# Cross builds for the edge targets, run under qemu-user against this
# machine's Redis and PostgreSQL: `scripts/cross.sh [TARGET ...]`.
#
# For every target (all of them without arguments):
#   aarch64-unknown-linux-gnu      Raspberry Pi 3/4/5 and most ARM boards, 64-bit
#   armv7-unknown-linux-gnueabihf  Raspberry Pi 2/3/Zero 2 on a 32-bit OS
#   riscv64gc-unknown-linux-gnu    RISC-V boards (VisionFive 2, Milk-V, ...)
#   x86_64-unknown-linux-musl      static binaries for any x86_64 Linux
#   aarch64-unknown-linux-musl     static binaries for any aarch64 Linux
# it builds the examples quickstart, redis, postgres, vectors and edge (the
# facade with sqlite + redis + postgres) and dbx-sqlite's hnsw_measure (the
# opt-in HNSW index) in one cargo invocation, then runs them under qemu
# (natively for x86_64) against SQLite in memory, Redis and PostgreSQL, and
# checks each one finished.
#
# Prerequisites (installed when missing, from Debian packages and rustup):
# the cross gcc and libc of each target (gcc compiles the bundled SQLite and
# ring's C and links), qemu-user, musl-tools for x86_64 musl, and Debian's
# arm64 musl (musl-dev:arm64, through dpkg's multiarch) for aarch64 musl:
# SQLite's C must be compiled against musl's headers, not glibc's, or it
# links to glibc-only symbols (stat64, fcntl64, ...).
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/dbx-target),
# DBX_TEST_REDIS_URL and DBX_TEST_POSTGRES_URL (the servers the examples use;
# default 127.0.0.1:6379 and postgres@127.0.0.1:5432/postgres).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
source scripts/targets.sh
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${EDGE_TARGETS[@]}")
REDIS_URL="${DBX_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
POSTGRES_URL="${DBX_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"

step() { printf '\n==> %s\n' "$*"; }

# --- prerequisites ------------------------------------------------------------
apt_missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2"); }
need_arm64_musl=0
for t in "${targets[@]}"; do
  configure "$t"
  case "$t" in
    aarch64-unknown-linux-gnu) need_cmd "$gcc" gcc-aarch64-linux-gnu; [ -f "$sysroot/include/stdio.h" ] || apt_missing+=(libc6-dev-arm64-cross) ;;
    armv7-*) need_cmd "$gcc" gcc-arm-linux-gnueabihf; [ -f "$sysroot/include/stdio.h" ] || apt_missing+=(libc6-dev-armhf-cross) ;;
    riscv64*) need_cmd "$gcc" gcc-riscv64-linux-gnu; [ -f "$sysroot/include/stdio.h" ] || apt_missing+=(libc6-dev-riscv64-cross) ;;
    x86_64-unknown-linux-musl) need_cmd musl-gcc musl-tools ;;
    aarch64-unknown-linux-musl)
      need_cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
      [ -f /usr/lib/aarch64-linux-musl/libc.a ] || need_arm64_musl=1 ;;
  esac
  [ -z "$qemu" ] || need_cmd "$qemu" qemu-user
done
if [ "$need_arm64_musl" = 1 ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
  apt_missing+=(musl-dev:arm64)
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  mapfile -t apt_missing < <(printf '%s\n' "${apt_missing[@]}" | sort -u)
  echo "installing Debian packages: ${apt_missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
installed_targets=$(rustup target list --installed)
for t in "${targets[@]}"; do
  grep -qx "$t" <<<"$installed_targets" || rustup target add "$t"
done

# --- build and run ------------------------------------------------------------
EXAMPLES=(quickstart redis postgres vectors edge)
for t in "${targets[@]}"; do
  configure "$t"
  env_t=$(tr 'a-z-' 'A-Z_' <<<"$t")
  step "$t: examples ${EXAMPLES[*]} (dbx with sqlite, redis, postgres) and hnsw_measure (sqlite + hnsw)"
  linker=("CARGO_TARGET_${env_t}_LINKER=$gcc")
  # x86_64 musl links with the host's cc and Rust's own musl start files.
  [ "$t" = x86_64-unknown-linux-musl ] && linker=()
  env "${linker[@]}" "CC_${t//-/_}=$gcc" "CFLAGS_${t//-/_}=$cflags" \
    cargo build -p examples -p dbx-sqlite --features examples/redis,examples/postgres,dbx-sqlite/hnsw \
    --target "$t" $(printf -- '--example %s ' "${EXAMPLES[@]}") --example hnsw_measure
  dir="$CARGO_TARGET_DIR/$t/debug/examples"
  run() { # NAME [ARG ...]
    local name=$1; shift
    local log="$CARGO_TARGET_DIR/cross-$t-$name.log" cmd=("$dir/$name")
    [ -z "$qemu" ] || { if [ -n "$sysroot" ]; then cmd=("$qemu" -L "$sysroot" "${cmd[@]}"); else cmd=("$qemu" "${cmd[@]}"); fi; }
    echo "--- $t: $name $*"
    timeout 300 "${cmd[@]}" "$@" >"$log" 2>&1 || { cat "$log"; echo "$t: $name $* failed" >&2; exit 1; }
    tail -n 3 "$log"
    grep -Eq '^done' "$log" || { echo "$t: $name $* did not finish" >&2; exit 1; }
  }
  run quickstart
  run vectors
  run redis "$REDIS_URL"
  run postgres "$POSTGRES_URL"
  run edge sqlite::memory:
  run edge "$REDIS_URL"
  run edge "$POSTGRES_URL"
  # The approximate index on the target: 2,000 x 32 points, built, then
  # searched with two candidate lists against the exact scan.
  run hnsw_measure 2000 32 30 20 16,128
done
step "cross builds ran on: ${targets[*]}"
