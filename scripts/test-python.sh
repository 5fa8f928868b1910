#!/usr/bin/env bash
# The Python binding's tests: `scripts/test-python.sh` (called by scripts/test.sh).
#
# Makes a venv under ~/.cache/dbx-python-venv (python3-venv from Debian when
# missing), pip-installs maturin, pytest and pytest-asyncio from PyPI when
# missing, builds the extension into the venv with `maturin develop` (debug
# profile, the same CARGO_TARGET_DIR as scripts/test.sh, so warm runs
# rebuild nothing) and runs pytest on bindings/python/tests against SQLite,
# Redis, PostgreSQL (and MongoDB when DBX_TEST_MONGO_URL is set).
#
# Environment:
#   CARGO_TARGET_DIR        build directory (default ~/.cache/dbx-target)
#   DBX_PY_VENV             venv directory (default ~/.cache/dbx-python-venv)
#   DBX_TEST_<BACKEND>_URL  point the tests at other servers
#   extra arguments go to pytest
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
VENV="${DBX_PY_VENV:-$HOME/.cache/dbx-python-venv}"

command -v python3 >/dev/null 2>&1 || { echo "python3 is needed for the Python binding tests" >&2; exit 1; }
if [ ! -x "$VENV/bin/python" ]; then
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  }
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
if ! "$PY" -c 'import maturin, pytest, pytest_asyncio' 2>/dev/null \
   || ! "$VENV/bin/maturin" --version >/dev/null 2>&1; then
  "$PY" -m pip install -q --disable-pip-version-check 'maturin>=1.9.4,<2' pytest pytest-asyncio
fi

# Builds (or finds up to date) the extension and installs the package,
# editable, into the venv.
( cd bindings/python && VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" "$VENV/bin/maturin" develop --quiet )

cd bindings/python
"$PY" -m pytest -q -p no:cacheprovider "$@"
