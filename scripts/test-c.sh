#!/usr/bin/env bash
# The C binding (bindings/c): builds libdbx_c, compiles the C example and the
# C error-path test with gcc against include/dbx.h, and runs them against
# SQLite (in memory) and Redis at 127.0.0.1:6379 (or DBX_TEST_REDIS_URL).
# The header's freshness is checked by `cargo test -p dbx-c` (tests/header.rs).
#
# Environment:
#   CARGO_TARGET_DIR   build directory (default ~/.cache/dbx-target)
#   DBX_C_REUSE_TEST_BUILD=1  link the libdbx_c that `cargo test --workspace
#                      --all-targets --all-features` already built (scripts/test.sh
#                      sets it: a plain `cargo build -p dbx-c` resolves other
#                      features and would rebuild dbx and its drivers)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"

if ! command -v gcc >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends gcc libc6-dev >/dev/null
fi

if [ "${DBX_C_REUSE_TEST_BUILD:-0}" = 1 ]; then
  # A no-op after the test run; the cdylib and staticlib stay in deps/.
  cargo test --workspace --all-targets --all-features --no-run --quiet
  lib="$CARGO_TARGET_DIR/debug/deps"
else
  cargo build -p dbx-c
  lib="$CARGO_TARGET_DIR/debug"
fi
out="$CARGO_TARGET_DIR/c"
mkdir -p "$out"
cflags=(-std=c11 -Wall -Wextra -Werror -pthread -Ibindings/c/include)
link=(-L"$lib" -ldbx_c -Wl,-rpath,"$lib")
gcc "${cflags[@]}" bindings/c/examples/quickstart.c "${link[@]}" -o "$out/quickstart"
gcc "${cflags[@]}" bindings/c/tests/errors.c "${link[@]}" -o "$out/errors"
# The static library links too (with the system libraries Rust's std needs).
gcc "${cflags[@]}" bindings/c/examples/quickstart.c "$lib/libdbx_c.a" -lm -ldl -o "$out/quickstart-static"

redis_url="${DBX_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
timeout 120 "$out/quickstart" "sqlite::memory:" "$redis_url"
# The static build on a database file (a fresh one each run).
rm -f "$out"/quickstart.db*
timeout 120 "$out/quickstart-static" "sqlite:$out/quickstart.db" "$redis_url" >/dev/null
rm -f "$out"/quickstart.db*
timeout 120 "$out/errors" "$redis_url"
echo "C binding: ok"
