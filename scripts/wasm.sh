#!/usr/bin/env bash
# dbx-core on WebAssembly (wasm32-unknown-unknown): builds the library with
# its default features, builds the wasm_smoke example for wasm32 and runs it
# under Node (values, rows, params!, filters, errors, URL/option parsing and
# policy validation must work there; a trap or a failed check exits 1).
# The `cache` feature is left out: it does not build for this target
# (see dbx-core/README.md, "WebAssembly").
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
target=wasm32-unknown-unknown

rustup target list --installed 2>/dev/null | grep -qx "$target" || rustup target add "$target"
if ! command -v node >/dev/null 2>&1; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs >/dev/null
fi

cargo build -p dbx-core --target "$target" --lib
cargo build -p dbx-core --target "$target" --example wasm_smoke
node scripts/wasm-run.mjs "$CARGO_TARGET_DIR/$target/debug/examples/wasm_smoke.wasm"
echo "wasm32: ok"
