#!/usr/bin/env bash
# The deployment files of deploy/ checked end to end: `scripts/test-deploy.sh`.
#
#   1. deploy/build-static.sh builds dbx-gateway as a static musl binary
#      (x86_64-unknown-linux-musl, profile $DBX_DEPLOY_PROFILE, default
#      release) and stages the image's root file system; `file` and `ldd`
#      must call it static
#   2. the shipped configurations (deploy/docker/gateway.toml,
#      deploy/systemd/gateway.toml, the ConfigMap's gateway.toml) pass
#      `dbx-gateway --check` at the paths they name, in an empty chroot
#   3. the binary runs as uid 10001 in an EMPTY chroot (the binary, its
#      config, the JWT secret and a PostgreSQL password file; nothing else)
#      against SQLite, Redis (shared rate limits) and PostgreSQL: /healthz,
#      /readyz, 401 without a token, KV set/get and SQL with an HS256 token
#      (deploy/dev-token.py), SIGHUP reload, SIGTERM drain and exit 0; its
#      system calls (strace) must all be allowed by the systemd unit's
#      SystemCallFilter
#   4. deploy/kubernetes/*.yaml: kubernetes-validate --strict (schemas of the
#      Kubernetes release it bundles, offline; from PyPI into a venv), then
#      the cross-references between them (deploy/kubernetes/check.py)
#   5. deploy/systemd/dbx-gateway.service: systemd-analyze verify, and
#      systemd-analyze security --offline (exposure must stay <= 2.0)
#   6. when a Docker engine answers: the FROM scratch image of
#      deploy/docker/Dockerfile.prebuilt is built from the staged tree and run
#      (--network host, --read-only, --cap-drop ALL) with the same checks;
#      otherwise a loud SKIPPED banner (the multi-stage deploy/docker/Dockerfile
#      needs the official Rust image, which this machine cannot pull)
#
# Needs root for chroot (as CI runs); without it, steps 2-3 are skipped loudly.
# Ends with `deploy: N passed, M failed`.
#
# Environment: CARGO_TARGET_DIR (default ~/.cache/dbx-target; the musl build
# lives under it), DBX_DEPLOY_PROFILE (cargo profile, default release),
# DBX_TEST_REDIS_URL, DBX_TEST_POSTGRES_URL (default 127.0.0.1:6379 and
# postgres@127.0.0.1:5432/postgres, trust auth), DBX_DEPLOY_VENV (the venv of
# the validators, default ~/.cache/dbx-deploy-venv).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
PROFILE="${DBX_DEPLOY_PROFILE:-release}"
# The chroot has no /etc/hosts and no resolver configuration: addresses only.
REDIS_URL="${DBX_TEST_REDIS_URL:-redis://127.0.0.1:6379}"; REDIS_URL="${REDIS_URL/localhost/127.0.0.1}"
POSTGRES_URL="${DBX_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"; POSTGRES_URL="${POSTGRES_URL/localhost/127.0.0.1}"
VENV="${DBX_DEPLOY_VENV:-$HOME/.cache/dbx-deploy-venv}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
UID_GW=10001

step() { printf '\n==> %s\n' "$*"; }
passed=0; failed=0; failures=()
ok() { passed=$((passed + 1)); echo "ok: $*"; }
bad() { failed=$((failed + 1)); failures+=("$*"); echo "FAILED: $*" >&2; }
check() { # DESCRIPTION COMMAND...: ok when the command succeeds
  local what="$1"; shift
  if "$@"; then ok "$what"; else bad "$what"; fi
}
banner() {
  printf '\n  %s\n' "************************************************************************" >&2
  local line; for line in "$@"; do printf '  *  %-68s*\n' "$line" >&2; done
  printf '  %s\n\n' "************************************************************************" >&2
}

work=$(mktemp -d /tmp/dbx-deploy-test.XXXXXX)
chmod 0755 "$work"
gw_pid=""; container=""; image_tag="dbx-gateway:test-deploy-$$"; image_built=0
cleanup() {
  [ -z "$gw_pid" ] || kill -9 "$gw_pid" 2>/dev/null || true
  [ -z "$container" ] || docker rm -f "$container" >/dev/null 2>&1 || true
  [ "$image_built" = 0 ] || docker rmi "$image_tag" >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

# --- prerequisites ---------------------------------------------------------------
step "checking prerequisites"
apt_missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2"); }
need_cmd curl curl
need_cmd file file
need_cmd strace strace
need_cmd systemd-analyze systemd
need_cmd python3 python3
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${apt_missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
python3 -c 'import venv, ensurepip' 2>/dev/null || {
  $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq python3-venv >/dev/null
}
if [ ! -x "$VENV/bin/kubernetes-validate" ] || ! "$VENV/bin/python" -c 'import yaml' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q --disable-pip-version-check kubernetes-validate pyyaml
fi

# --- 1. static binary ------------------------------------------------------------------
step "1. static musl binary (deploy/build-static.sh --profile $PROFILE)"
stage="$work/stage"
t0=$(date +%s)
bash deploy/build-static.sh --no-image --profile "$PROFILE" --out "$stage"
build_secs=$(( $(date +%s) - t0 ))
bin="$stage/rootfs/usr/local/bin/dbx-gateway"
desc=$(file -b "$bin")
echo "file: $desc"
check "file calls the binary static" grep -Eq 'statically linked|static-pie linked' <<<"$desc"
ldd_out=$(ldd "$bin" 2>&1 || true)
echo "ldd: $ldd_out"
check "ldd finds no shared libraries" grep -Eq 'not a dynamic executable|statically linked' <<<"$ldd_out"
bin_bytes=$(stat -c %s "$bin")

# --- helpers for the running gateway -----------------------------------------------------
secret="$work/jwt-hs256"
head -c 48 /dev/urandom | base64 -w0 >"$secret"
token=$(python3 deploy/dev-token.py "$secret" --role admin --iss dbx-deploy-test --aud dbx-gateway)

# Writes a gateway.toml that listens on 127.0.0.1:0 and reads its secrets
# from SECRET_DIR. SQLITE_URL is where the SQLite database goes.
write_config() { # FILE SECRET_DIR SQLITE_URL
  cat >"$1" <<EOF
listen = "127.0.0.1:0"
password_files = { pg = "$2/pg-password" }

[auth]
issuer = "dbx-deploy-test"
audience = "dbx-gateway"
[[auth.keys]]
algorithm = "HS256"
secret_file = "$2/jwt-hs256"

[roles.admin]
grants = [{ databases = ["*"], capabilities = ["*"], access = "write" }]

[rate_limit]
per_principal = { requests = 1000, per_secs = 1 }
shared_database = "cache"
key_prefix = "dbx-deploy-test:$$:rl:"

[log]
format = "json"

[shutdown]
drain_timeout_secs = 5

[databases.lite]
url = "$3"
[databases.cache]
url = "$REDIS_URL"
[databases.pg]
url = "$POSTGRES_URL"
EOF
}

wait_listening() { # STDOUT_FILE PID -> prints the base URL
  local _i
  for _i in $(seq 1 150); do
    if grep -qE '^listening on ' "$1" 2>/dev/null; then
      sed -nE 's/^listening on (http[s]?:\/\/[^ ]+).*/\1/p' "$1" | head -n1
      return 0
    fi
    [ -z "$2" ] || kill -0 "$2" 2>/dev/null || return 1
    sleep 0.2
  done
  return 1
}

http() { # METHOD URL [BODY] -> "STATUS BODY"
  local args=(-s -o "$work/body" -w '%{http_code}' -X "$1" -H "authorization: Bearer $token")
  [ -z "${3:-}" ] || args+=(-H 'content-type: application/json' -d "$3")
  local code; code=$(curl "${args[@]}" "$2" || echo 000)
  echo "$code $(cat "$work/body" 2>/dev/null)"
}
expect() { # WHAT "STATUS BODY" STATUS [BODY_REGEX]
  local got_status="${2%% *}" got_body="${2#* }"
  if [ "$got_status" = "$3" ] && { [ -z "${4:-}" ] || grep -Eq "$4" <<<"$got_body"; }; then
    ok "$1"
  else
    bad "$1 (wanted $3 ${4:-}, got $2)"
  fi
}

smoke() { # WHERE BASE_URL
  local w="$1" b="$2" key="deploy-test-$$"
  expect "$w: GET /healthz" "$(curl -s -o "$work/body" -w '%{http_code}' "$b/healthz"; echo " $(cat "$work/body")")" 200
  expect "$w: GET /readyz (SQLite, Redis, PostgreSQL answer)" \
    "$(curl -s -o "$work/body" -w '%{http_code}' "$b/readyz"; echo " $(cat "$work/body")")" 200
  expect "$w: no token is refused" \
    "$(curl -s -o "$work/body" -w '%{http_code}' "$b/v1/databases"; echo " $(cat "$work/body")")" 401 unauthorized
  expect "$w: GET /v1/databases with a token" "$(http GET "$b/v1/databases")" 200 '"lite"'
  local db
  for db in lite cache; do
    expect "$w: PUT kv on $db" "$(http PUT "$b/v1/db/$db/kv/$key" '{"value": "hello from '"$w"'", "ttl_ms": 60000}')" 200 '"stored":true'
    expect "$w: GET kv on $db" "$(http GET "$b/v1/db/$db/kv/$key")" 200 "hello from $w"
    expect "$w: DELETE kv on $db" "$(http DELETE "$b/v1/db/$db/kv/$key")" 200 '"deleted":true'
    expect "$w: GET kv on $db after the delete" "$(http GET "$b/v1/db/$db/kv/$key")" 404 not_found
  done
  # The rate limit windows are counted in Redis ([rate_limit] shared_database).
  expect "$w: rate limit counters in the shared Redis" \
    "$(http GET "$b/v1/db/cache/kv?prefix=dbx-deploy-test:$$:rl:&limit=10")" 200 'dbx-deploy-test:[0-9]+:rl:'

  # shellcheck disable=SC2016 # $1 is a SQL parameter, not a shell expansion
  expect "$w: SQL on PostgreSQL" \
    "$(http POST "$b/v1/db/pg/sql/query" '{"sql": "SELECT $1::int + 1 AS n", "params": [41]}')" 200 '42'
  expect "$w: SQL on SQLite (a file in the writable directory)" \
    "$(http POST "$b/v1/db/lite/sql/query" '{"sql": "SELECT count(*) AS n FROM sqlite_master"}')" 200 '"row_count":1'
  expect "$w: GET /metrics" \
    "$(curl -s -o "$work/body" -w '%{http_code}' "$b/metrics"; echo " $(head -c 2000 "$work/body" | tr '\n' ' ')")" 200 dbx_gateway_http
}

# Waits until PID (a child of this shell) has exited, up to SECONDS, and sets
# exit_status to its status ("running" when it has not exited).
wait_exit() { # PID SECONDS
  local _i
  for _i in $(seq 1 $(( $2 * 5 ))); do
    kill -0 "$1" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$1" 2>/dev/null; then exit_status=running; return; fi
  exit_status=0; wait "$1" 2>/dev/null || exit_status=$?
}

# --- 2 + 3. empty chroot -----------------------------------------------------------------
if [ "$(id -u)" != 0 ]; then
  banner "CHROOT CHECKS SKIPPED: chroot needs root (CI runs as root)." \
    "Steps 2 and 3 did not run."
else
  step "2. the shipped configurations pass --check at the paths they name"
  # deploy/kubernetes/check.py writes the ConfigMap's gateway.toml and the
  # Secret's (placeholder) files; the others get made-up secrets.
  check_in_chroot() { # WHAT CONFIG_FILE SECRET_DIR SECRET_NAMES...
    local what="$1" cfg="$2" sdir="$3"; shift 3
    local r="$work/check-root"; rm -rf "$r"; mkdir -p "$r/etc/dbx-gateway" "$r$sdir"
    cp "$bin" "$r/dbx-gateway"
    cp "$cfg" "$r/etc/dbx-gateway/gateway.toml"
    local n; for n in "$@"; do
      [ -f "$r$sdir/$n" ] || cp "$secret" "$r$sdir/$n"
    done
    local out; if out=$(chroot "$r" /dbx-gateway --config /etc/dbx-gateway/gateway.toml --check 2>&1); then
      ok "$what: $out"
    else
      bad "$what: $out"
    fi
  }
  check_in_chroot "deploy/docker/gateway.toml --check" deploy/docker/gateway.toml \
    /run/secrets/dbx-gateway jwt-hs256 main-password
  check_in_chroot "deploy/systemd/gateway.toml --check" deploy/systemd/gateway.toml \
    /run/credentials/dbx-gateway.service jwt-hs256
  "$VENV/bin/python" deploy/kubernetes/check.py --extract "$work/k8s"
  r="$work/check-root"; rm -rf "$r"; mkdir -p "$r/etc/dbx-gateway"
  cp -a "$work/k8s/." "$r/"
  cp "$bin" "$r/dbx-gateway"
  if out=$(chroot "$r" /dbx-gateway --config /etc/dbx-gateway/gateway.toml --check 2>&1); then
    ok "deploy/kubernetes/configmap.yaml's gateway.toml --check (with secret.yaml's files): $out"
  else
    bad "deploy/kubernetes/configmap.yaml's gateway.toml --check: $out"
  fi

  step "3. the static binary alone in an empty chroot, as uid $UID_GW"
  root="$work/chroot"
  mkdir -p "$root/etc/dbx-gateway" "$root/run/secrets/dbx-gateway" "$root/data"
  cp "$bin" "$root/dbx-gateway"
  write_config "$root/etc/dbx-gateway/gateway.toml" /run/secrets/dbx-gateway "sqlite:///data/gateway.db"
  cp "$secret" "$root/run/secrets/dbx-gateway/jwt-hs256"
  echo "not-needed-with-trust-auth" >"$root/run/secrets/dbx-gateway/pg-password"
  chown -R "$UID_GW:$UID_GW" "$root/run/secrets/dbx-gateway" "$root/data"
  chmod 0400 "$root/run/secrets/dbx-gateway/"*
  chmod 0700 "$root/run/secrets/dbx-gateway" "$root/data"
  echo "chroot contents:"; (cd "$root" && find . -mindepth 1 | sort | sed 's/^/  /')
  strace -f -qq -o "$work/strace.txt" \
    chroot --userspec="$UID_GW:$UID_GW" "$root" /dbx-gateway --config /etc/dbx-gateway/gateway.toml \
    >"$work/chroot.out" 2>"$work/chroot.err" &
  gw_pid=$!
  if base=$(wait_listening "$work/chroot.out" "$gw_pid"); then
    ok "started in the chroot: $base"
    gw=$(pgrep -P "$gw_pid" | head -n1 || true)   # strace's child: chroot, then the gateway
    uid=$(awk '/^Uid:/ {print $2}' "/proc/$gw/status" 2>/dev/null || echo "?")
    check "runs as uid $UID_GW (got $uid)" test "$uid" = "$UID_GW"
    rss_kib=$(awk '/^VmRSS:/ {print $2}' "/proc/$gw/status" 2>/dev/null || echo "?")
    smoke chroot "$base"
    check "the SQLite file is in the chroot's /data" test -f "$root/data/gateway.db"
    kill -HUP "$gw"
    for _ in $(seq 1 25); do grep -q 'reloaded' "$work/chroot.err" && break; sleep 0.2; done
    check "SIGHUP reloads auth and roles" grep -q 'SIGHUP: auth and roles reloaded' "$work/chroot.err"
    kill -TERM "$gw"
    wait_exit "$gw_pid" 15
    rc=$exit_status
    [ "$rc" = running ] || gw_pid=""
    check "SIGTERM: drained, databases closed, exit 0 (got $rc)" test "$rc" = 0
    check "the log says the databases were closed" grep -q 'databases closed' "$work/chroot.err"
    # System calls made after the execve of the gateway, against the unit's filter.
    allowed="$work/allowed.txt"
    # Groups nest (@system-service holds @basic-io...): expand them all.
    systemd-analyze syscall-filter 2>/dev/null | python3 -c '
import sys
groups, cur = {}, None
for line in sys.stdin:
    if line.startswith("@"):
        cur = groups.setdefault(line.strip(), set())
    elif line.strip() and not line.strip().startswith("#") and cur is not None:
        cur.add(line.strip())
def expand(name, seen=()):
    out = set()
    for m in groups.get(name, ()):
        out |= expand(m, seen + (name,)) if m.startswith("@") and m not in seen else {m}
    return out
allowed = expand("@system-service") - expand("@privileged") - expand("@resources")
print("\n".join(sorted(allowed)))' | sort -u >"$allowed"
    awk 'f || /execve\("\/dbx-gateway"/ {f=1; print}' "$work/strace.txt" \
      | sed -nE 's/^[0-9]+ +([a-z0-9_]+)\(.*/\1/p' | sort -u >"$work/used.txt"
    outside=$(comm -23 "$work/used.txt" "$allowed" | tr '\n' ' ')
    echo "system calls used: $(wc -l <"$work/used.txt")"
    check "every system call is allowed by SystemCallFilter=@system-service ~@privileged @resources${outside:+ (not: $outside)}" \
      test -z "$outside"
  else
    bad "the gateway did not start in the chroot"
    cat "$work/chroot.out" "$work/chroot.err" >&2
  fi
fi

# --- 4. Kubernetes ---------------------------------------------------------------------------
step "4. deploy/kubernetes: kubernetes-validate --strict, then cross-references"
manifests=()
for f in deploy/kubernetes/*.yaml; do
  [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
"$VENV/bin/kubernetes-validate" --version
if "$VENV/bin/kubernetes-validate" --strict "${manifests[@]}"; then
  ok "kubernetes-validate --strict: ${#manifests[@]} manifests"
else
  bad "kubernetes-validate --strict"
fi
if "$VENV/bin/python" deploy/kubernetes/check.py; then
  ok "deploy/kubernetes/check.py"
else
  bad "deploy/kubernetes/check.py"
fi

# --- 5. systemd --------------------------------------------------------------------------------
step "5. deploy/systemd/dbx-gateway.service: systemd-analyze verify and security"
systemd-analyze --version | head -n1
mkdir -p "$work/systemd"
unit="$work/systemd/dbx-gateway.service"
# verify wants the executables to exist: point it at the staged binary.
sed "s#/usr/local/bin/dbx-gateway#$bin#g" deploy/systemd/dbx-gateway.service >"$unit"
if out=$(systemd-analyze verify --man=no "$unit" 2>&1) && [ -z "$out" ]; then
  ok "systemd-analyze verify: no findings"
else
  bad "systemd-analyze verify: $out"
fi
if out=$(systemd-analyze security --offline=yes --threshold=20 "$unit" 2>&1); then
  ok "systemd-analyze security --offline: $(grep -o 'Overall exposure level.*' <<<"$out")"
else
  bad "systemd-analyze security --offline (threshold 2.0): $(grep -E 'Overall|✗' <<<"$out" | tr '\n' ';')"
fi
drain=$(sed -nE 's/^drain_timeout_secs *= *([0-9]+).*/\1/p' deploy/systemd/gateway.toml)
stop=$(sed -nE 's/^TimeoutStopSec=([0-9]+)$/\1/p' deploy/systemd/dbx-gateway.service)
check "TimeoutStopSec ($stop) exceeds the drain (${drain:-30} s)" test "${stop:-0}" -gt "${drain:-30}"

# --- 6. Docker image ----------------------------------------------------------------------------
step "6. the FROM scratch image (deploy/docker/Dockerfile.prebuilt)"
image_bytes=""
if ! docker info >/dev/null 2>&1; then
  banner "DOCKER IMAGE NOT TESTED: no Docker engine answers here." \
    "The static binary and its staged tree were tested (steps 1-3);" \
    "start dockerd (or set DOCKER_HOST) to build and run the image."
else
  docker build -q -t "$image_tag" "$stage" >/dev/null && image_built=1
  check "docker build of the staged tree" test "$image_built" = 1
  if [ "$image_built" = 1 ]; then
    image_bytes=$(docker image inspect "$image_tag" --format '{{.Size}}')
    user=$(docker image inspect "$image_tag" --format '{{.Config.User}}')
    check "the image's USER is numeric and not root ($user)" grep -Eq '^[1-9][0-9]*(:[0-9]+)?$' <<<"$user"
    layers=$(docker image inspect "$image_tag" --format '{{len .RootFS.Layers}}')
    echo "image: $image_bytes bytes, $layers layers, user $user"
    docker create "$image_tag" | { read -r id; docker export "$id" | tar -tv --numeric-owner; docker rm "$id" >/dev/null; } \
      >"$work/image-files.txt"
    files=$(awk '$1 !~ /^l/ {print $NF}' "$work/image-files.txt" | grep -v '/$' \
      | grep -Ev '^(\.dockerenv|etc/(hostname|hosts|resolv\.conf|mtab)|proc/|sys/|dev/)' | sort | tr '\n' ' ')
    check "the working directory /var/lib/dbx-gateway belongs to $UID_GW" \
      grep -Eq "^d.* $UID_GW/$UID_GW .* var/lib/dbx-gateway/\$" "$work/image-files.txt"
    check "/tmp is world-writable and sticky" grep -Eq '^drwxrwxrwt .* tmp/$' "$work/image-files.txt"
    echo "files in the image: $files"
    check "the image holds the binary, passwd, group and the CA bundle, nothing else" \
      test "$files" = "etc/group etc/passwd etc/ssl/certs/ca-certificates.crt usr/local/bin/dbx-gateway "
    if docker run --rm --entrypoint /bin/sh "$image_tag" -c true >/dev/null 2>&1; then
      bad "the image has no shell (/bin/sh ran)"
    else
      ok "the image has no shell (/bin/sh cannot start)"
    fi
    d="$work/docker"; mkdir -p "$d/config" "$d/secrets" "$d/data"
    write_config "$d/config/gateway.toml" /run/secrets/dbx-gateway "sqlite:gateway.db"
    cp "$secret" "$d/secrets/jwt-hs256"; echo "not-needed-with-trust-auth" >"$d/secrets/pg-password"
    chown -R "$UID_GW:$UID_GW" "$d/secrets" "$d/data"; chmod 0400 "$d/secrets/"*
    container=$(docker run -d --network host --read-only --tmpfs /tmp:mode=1777 \
      --cap-drop ALL --security-opt no-new-privileges \
      -v "$d/config:/etc/dbx-gateway:ro" -v "$d/secrets:/run/secrets/dbx-gateway:ro" \
      -v "$d/data:/var/lib/dbx-gateway" "$image_tag")
    for _ in $(seq 1 150); do docker logs "$container" 2>/dev/null | grep -q '^listening on' && break; sleep 0.2; done
    if base=$(docker logs "$container" 2>/dev/null | sed -nE 's/^listening on (http[s]?:\/\/[^ ]+).*/\1/p' | head -n1) && [ -n "$base" ]; then
      ok "the container started: $base"
      cpid=$(docker inspect "$container" --format '{{.State.Pid}}')
      uid=$(awk '/^Uid:/ {print $2}' "/proc/$cpid/status")
      check "the container's process runs as uid $UID_GW (got $uid)" test "$uid" = "$UID_GW"
      smoke docker "$base"
      check "relative sqlite:gateway.db landed in the working directory /var/lib/dbx-gateway" test -f "$d/data/gateway.db"
      docker stop -t 15 "$container" >/dev/null
      rc=$(docker inspect "$container" --format '{{.State.ExitCode}}')
      check "docker stop: drained and exited 0 (got $rc)" test "$rc" = 0
    else
      bad "the container did not start"
      docker logs "$container" >&2 || true
    fi
  fi
fi

# --- summary ---------------------------------------------------------------------------------------
step "summary"
echo "static binary: $bin_bytes bytes (stripped), built in ${build_secs}s (profile $PROFILE, CARGO_TARGET_DIR $CARGO_TARGET_DIR)"
[ -z "${rss_kib:-}" ] || echo "RSS after start in the chroot: ${rss_kib} KiB"
[ -z "$image_bytes" ] || echo "image: $image_bytes bytes"
for f in "${failures[@]}"; do echo "  failed: $f" >&2; done
echo "deploy: $passed passed, $failed failed"
[ "$failed" = 0 ]
