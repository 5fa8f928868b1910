#!/usr/bin/env bash
# Builds the native addon and puts it next to index.js as
# dbx.<platform>-<arch>.node: `./build.sh` (debug) or `./build.sh --release`.
# Uses CARGO_TARGET_DIR when set (scripts/test-node.sh passes the shared one).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
profile=debug
args=()
if [ "${1:-}" = "--release" ]; then profile=release; args+=(--release); fi

command -v cargo >/dev/null 2>&1 || { echo "cargo is needed to build the dbx addon (https://rustup.rs)" >&2; exit 1; }
target_dir="${CARGO_TARGET_DIR:-$root/target}"
( cd "$root" && CARGO_TARGET_DIR="$target_dir" cargo build -p dbx-node ${args[@]+"${args[@]}"} )

case "$(uname -s)" in
  Darwin) lib=libdbx_node.dylib ;;
  MINGW*|MSYS*|CYGWIN*) lib=dbx_node.dll ;;
  *) lib=libdbx_node.so ;;
esac
name="$(node -p '`dbx.${process.platform}-${process.arch}.node`')"
# Copy to a temporary name and rename: a running node keeps its mapping.
cp "$target_dir/$profile/$lib" "$here/.$name.tmp"
mv -f "$here/.$name.tmp" "$here/$name"
echo "built $here/$name ($profile)"
