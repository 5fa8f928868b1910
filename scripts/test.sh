#!/usr/bin/env bash
# The test command of dbx: `scripts/test.sh`.
#
# Makes sure everything the tests need is present (installing it from Debian
# packages and rustup where missing), then runs, in order:
#   1. cargo fmt --check
#   2. clippy with -D warnings on all targets and features (and the Redis
#      and PostgreSQL drivers without their `tls` feature)
#   3. the whole test suite (unit, integration, conformance, benches in test
#      mode, examples), the Redis and PostgreSQL drivers' unit tests without
#      their `tls` feature, the C binding's C programs (scripts/test-c.sh), the
#      Python binding's pytest suite (scripts/test-python.sh), the Node.js
#      binding's node --test suite (scripts/test-node.sh), the gateway's
#      /docs page in headless Chromium (scripts/test-gateway-docs.sh), the
#      doctests, and the docs built with -D warnings
#   4. the dependency policy: no openssl-sys / aws-lc-sys anywhere in the tree,
#      then dbx-core built for wasm32-unknown-unknown and smoke-run under
#      Node (scripts/wasm.sh)
#   5. scripts/cross.sh: the examples (facade with sqlite + redis + postgres)
#      cross-built for aarch64, armv7, riscv64 and static musl (x86_64,
#      aarch64) and run under qemu-user against Redis and PostgreSQL, then
#      scripts/test-deploy.sh: the gateway's deploy/ files (static musl
#      binary in an empty chroot, Kubernetes manifests, systemd unit, and the
#      image when a Docker engine runs)
#
# Environment:
#   CARGO_TARGET_DIR     build directory (default ~/.cache/dbx-target, kept
#                        between runs so warm runs are fast)
#   CARGO_INCREMENTAL    0 unless set (see below)
#   DBX_SKIP_CROSS=1     skip step 5 (local iteration only; CI never sets it)
#   QDRANT_BIN           a Qdrant server binary (built outside this repository);
#                        without one (or DBX_TEST_QDRANT_URL) the Qdrant tests
#                        are skipped, loudly
#   DBX_TEST_<BACKEND>_URL  point the tests at other servers
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
# No incremental compilation: each run builds the workspace from a fresh
# checkout (a new path, so nothing to reuse), and its files took ~10 GB of
# the kept target directory.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export RUST_BACKTRACE="${RUST_BACKTRACE:-1}"

step() { printf '\n==> %s\n' "$*"; }
start=$(date +%s)

# --- prerequisites ---------------------------------------------------------
step "checking prerequisites"
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

# --- services the tests talk to ----------------------------------------------
# Redis at 127.0.0.1:6379 and PostgreSQL at 127.0.0.1:5432 (trust auth for
# local TCP) unless DBX_TEST_REDIS_URL / DBX_TEST_POSTGRES_URL point
# elsewhere. Installed from Debian packages and started when missing; the
# server binaries are also what the fault tests start throwaway copies of.
step "checking services"
svc_missing=()
command -v redis-server >/dev/null 2>&1 || svc_missing+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || svc_missing+=(redis-tools)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || svc_missing+=(postgresql)
command -v psql >/dev/null 2>&1 || svc_missing+=(postgresql-client)
command -v runuser >/dev/null 2>&1 || svc_missing+=(util-linux)
# The Redis TLS tests make their certificates with the openssl CLI.
command -v openssl >/dev/null 2>&1 || svc_missing+=(openssl)
if [ ${#svc_missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${svc_missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${svc_missing[@]}" >/dev/null
fi
if [ -z "${DBX_TEST_REDIS_URL:-}" ] && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  echo "starting redis-server on 127.0.0.1:6379"
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp --logfile /tmp/dbx-redis.log
fi
if [ -z "${DBX_TEST_POSTGRES_URL:-}" ]; then
  # The tests connect as postgres over TCP without a password: a freshly
  # installed cluster (scram-sha-256 by default) gets a trust line for loopback.
  pg_running=1; (exec 3<>/dev/tcp/127.0.0.1/5432) 2>/dev/null || pg_running=0
  if [ "$pg_running" = 0 ] || [[ " ${svc_missing[*]} " == *" postgresql "* ]]; then
    if command -v pg_ctlcluster >/dev/null 2>&1 && ls /etc/postgresql/*/main >/dev/null 2>&1; then
      v=$(ls /etc/postgresql | sort -V | tail -n1)
      hba=/etc/postgresql/$v/main/pg_hba.conf
      grep -q '^host all all 127.0.0.1/32 trust' "$hba" || sed -i '1i host all all 127.0.0.1/32 trust' "$hba"
      echo "starting PostgreSQL $v on 127.0.0.1:5432"
      pg_ctlcluster --skip-systemctl-redirect "$v" main restart || pg_ctlcluster --skip-systemctl-redirect "$v" main start
    else
      echo "no PostgreSQL cluster to start; set DBX_TEST_POSTGRES_URL" >&2
      exit 1
    fi
  fi
fi
for port in 6379 5432; do
  for _ in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.2; done
done
# MongoDB wire protocol: SecantusDB from PyPI in a venv (MongoDB itself is not
# in the package registries here). CI starts a fresh instance every run.
if [ -z "${DBX_TEST_MONGO_URL:-}" ]; then
  command -v python3 >/dev/null 2>&1 || { echo "python3 is needed for the MongoDB test server" >&2; exit 1; }
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
  }
  fresh=0; [ "${CI:-}" = true ] && fresh=1
  DBX_TEST_MONGO_URL="$(DBX_MONGO_FRESH=$fresh bash scripts/start-mongo.sh)"
  export DBX_TEST_MONGO_URL
  echo "MongoDB-wire test server: $DBX_TEST_MONGO_URL"
fi

# Redis Cluster: 3 primaries + 3 replicas of the machine's redis-server on
# free loopback ports, stopped (and their files deleted) when this script
# exits. The failover test starts a cluster of its own the same way.
cleanups=()
cleanup() { for c in "${cleanups[@]}"; do eval "$c" || true; done; }
trap cleanup EXIT
if [ -z "${DBX_TEST_REDIS_CLUSTER_URL:-}" ]; then
  DBX_TEST_REDIS_CLUSTER_URL="$(bash scripts/start-redis-cluster.sh)"
  export DBX_TEST_REDIS_CLUSTER_URL
  cleanups+=('bash scripts/start-redis-cluster.sh --stop "$DBX_TEST_REDIS_CLUSTER_URL"')
fi
echo "Redis Cluster test servers: $DBX_TEST_REDIS_CLUSTER_URL"
# Redis Sentinel: a primary, a replica and 3 sentinels, the same way.
if [ -z "${DBX_TEST_REDIS_SENTINEL_URL:-}" ]; then
  DBX_TEST_REDIS_SENTINEL_URL="$(bash scripts/start-redis-sentinel.sh)"
  export DBX_TEST_REDIS_SENTINEL_URL
  cleanups+=('bash scripts/start-redis-sentinel.sh --stop "$DBX_TEST_REDIS_SENTINEL_URL"')
fi
echo "Redis Sentinel test servers: $DBX_TEST_REDIS_SENTINEL_URL"
# PostgreSQL primary + streaming standby (pg_basebackup -R), the same way.
if [ -z "${DBX_TEST_POSTGRES_REPLICA_URL:-}" ]; then
  DBX_TEST_POSTGRES_REPLICA_URL="$(bash scripts/start-pg-replica.sh)"
  export DBX_TEST_POSTGRES_REPLICA_URL
  cleanups+=('bash scripts/start-pg-replica.sh --stop "$DBX_TEST_POSTGRES_REPLICA_URL"')
fi
echo "PostgreSQL primary + standby: $DBX_TEST_POSTGRES_REPLICA_URL"

# Qdrant: not in the package registries here. When a binary is found
# (QDRANT_BIN, `qdrant` on PATH or ~/.cache/dbx-qdrant/qdrant) a throwaway
# server is started on free loopback ports; otherwise the Qdrant tests skip,
# and this script says so loudly before and after the test run.
qdrant_skipped=0
qdrant_banner() {
  cat >&2 <<'BANNER'

  ************************************************************************
  *  QDRANT TESTS SKIPPED: no Qdrant binary (set QDRANT_BIN, put `qdrant` *
  *  on PATH or in ~/.cache/dbx-qdrant/) and no DBX_TEST_QDRANT_URL.      *
  *  The vector conformance suite ran on SQLite only.                     *
  ************************************************************************

BANNER
}
if [ -z "${DBX_TEST_QDRANT_URL:-}" ]; then
  DBX_TEST_QDRANT_URL="$(bash scripts/start-qdrant.sh)"
  if [ -n "$DBX_TEST_QDRANT_URL" ]; then
    export DBX_TEST_QDRANT_URL
    cleanups+=('bash scripts/start-qdrant.sh --stop "$DBX_TEST_QDRANT_URL"')
    echo "Qdrant test server: $DBX_TEST_QDRANT_URL"
    # Tests that need a server of their own (API keys) start one from this.
    if [ -z "${QDRANT_BIN:-}" ]; then
      QDRANT_BIN="$(command -v qdrant 2>/dev/null || echo "$HOME/.cache/dbx-qdrant/qdrant")"
    fi
    export QDRANT_BIN
  else
    unset DBX_TEST_QDRANT_URL
    qdrant_skipped=1
    qdrant_banner
  fi
else
  echo "Qdrant test server: $DBX_TEST_QDRANT_URL"
fi

# --- 1. format --------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

# --- 2. lints ---------------------------------------------------------------
step "cargo clippy (all targets, all features, -D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
# The drivers' code without TLS (cfg(not(feature = "tls"))).
cargo clippy -p dbx-redis -p dbx-postgres --all-targets --no-default-features -- -D warnings

# --- 3. tests ---------------------------------------------------------------
step "cargo test (all targets, all features)"
cargo test --workspace --all-targets --all-features
step "the Redis and PostgreSQL drivers without their \`tls\` feature"
# TLS URLs refused with InvalidConfig before any connection, plaintext ones
# (and sslmode=prefer) still served; compiles redis-rs a second time, without TLS.
cargo test -p dbx-redis -p dbx-postgres --no-default-features --lib
step "the edge example (current-thread runtime) on every backend"
# `cargo test` builds examples as test harnesses; the runnable binary is a build of its own
# (same features, so it reuses the test build's dependencies).
cargo build --workspace --all-features --example edge --quiet
edge_urls=(sqlite::memory: "${DBX_TEST_REDIS_URL:-redis://127.0.0.1:6379}"
  "${DBX_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}" "$DBX_TEST_MONGO_URL")
[ -n "${DBX_TEST_QDRANT_URL:-}" ] && edge_urls+=("$DBX_TEST_QDRANT_URL")
for url in "${edge_urls[@]}"; do
  "$CARGO_TARGET_DIR/debug/examples/edge" "$url" | tee "$CARGO_TARGET_DIR/edge.log"
  grep -q '^done$' "$CARGO_TARGET_DIR/edge.log"
done
step "the C binding: C programs built with gcc against libdbx_c (scripts/test-c.sh)"
DBX_C_REUSE_TEST_BUILD=1 bash scripts/test-c.sh
step "the Python binding (scripts/test-python.sh: maturin develop + pytest)"
bash scripts/test-python.sh
step "the Node.js binding (scripts/test-node.sh: build + tsc + node --test)"
bash scripts/test-node.sh
step "the gateway's /docs page in headless Chromium (scripts/test-gateway-docs.sh)"
# The binary `cargo test` built for the gateway's process tests (workspace features).
GATEWAY_BIN="$CARGO_TARGET_DIR/debug/dbx-gateway" bash scripts/test-gateway-docs.sh
step "cargo test --doc"
cargo test --workspace --doc --all-features
step "cargo doc (no broken links or doc warnings)"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --quiet

# --- 4. dependency policy ---------------------------------------------------
step "dependency policy: no openssl-sys or aws-lc-sys"
forbidden=$(cargo tree --workspace --all-features --target all -e normal,build --prefix none \
  | awk '{print $1}' | grep -Ex 'openssl-sys|aws-lc-sys|aws-lc-rs|openssl' | sort -u || true)
if [ -n "$forbidden" ]; then
  echo "forbidden dependencies (they break aarch64/armv7/riscv64 cross builds): $forbidden" >&2
  cargo tree --workspace --all-features --target all -e normal,build -i "$(head -n1 <<<"$forbidden")" >&2 || true
  exit 1
fi
echo "ok: none found"

# --- 4b. WebAssembly ---------------------------------------------------------
step "dbx-core on wasm32-unknown-unknown, smoke-run under Node (scripts/wasm.sh)"
bash scripts/wasm.sh

# --- 5. cross builds under emulation -----------------------------------------
if [ "${DBX_SKIP_CROSS:-0}" != 1 ]; then
  step "cross builds run under qemu-user (scripts/cross.sh)"
  bash scripts/cross.sh
  step "deploy/: static gateway in an empty chroot, Kubernetes manifests, systemd unit, image (scripts/test-deploy.sh)"
  bash scripts/test-deploy.sh
fi

[ "$qdrant_skipped" = 1 ] && qdrant_banner
step "all checks passed in $(( $(date +%s) - start ))s"
