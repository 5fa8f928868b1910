#!/usr/bin/env bash
# Builds dbx-gateway as a static musl binary with cargo on this machine,
# stages a minimal root file system around it, and (when a Docker engine
# answers) builds the FROM scratch image of deploy/docker/Dockerfile.prebuilt:
#
#   deploy/build-static.sh [--target TARGET] [--profile PROFILE] [--out DIR]
#                          [--tag IMAGE] [--no-image]
#
#   --target   x86_64-unknown-linux-musl (default on x86_64 hosts) or
#              aarch64-unknown-linux-musl (default on aarch64 hosts; cross-built
#              from x86_64 the way scripts/cross.sh does it)
#   --profile  cargo profile (default release; release-small = opt-level s,
#              fat LTO, one codegen unit: smaller, slower to build)
#   --out      staging directory (default $CARGO_TARGET_DIR/dbx-gateway-image/TARGET)
#   --tag      image tag (default dbx-gateway:TARGET-ARCH-local)
#   --no-image stop after staging (no docker build)
#
# The staged tree (OUT/rootfs) is what goes into the image:
#   usr/local/bin/dbx-gateway            the static binary, symbols stripped
#   etc/passwd, etc/group                one user, dbx-gateway (10001:10001)
#   etc/ssl/certs/ca-certificates.crt    the host's CA bundle (rediss:// and
#                                        Qdrant over https use the system roots)
#   etc/dbx-gateway/                     where gateway.toml is mounted
#   tmp/                                 SQLite's temporary files (mode 1777)
# and OUT/state, the empty /var/lib/dbx-gateway (uid 10001): the working
# directory, where relative SQLite paths land.
# The multi-stage deploy/docker/Dockerfile runs this same script in its
# builder stage (with --no-image), so both images hold the same tree.
#
# Prerequisites are installed when missing (Debian packages and rustup, as in
# scripts/cross.sh): musl-tools for x86_64, gcc-aarch64-linux-gnu and
# musl-dev:arm64 for aarch64 cross builds, ca-certificates, binutils.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/dbx-target}"
source scripts/targets.sh

host_arch=$(uname -m)
target="${host_arch}-unknown-linux-musl"
profile=release
out=""
tag=""
image=1
while [ $# -gt 0 ]; do
  case "$1" in
    --target) target="$2"; shift 2 ;;
    --profile) profile="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    --tag) tag="$2"; shift 2 ;;
    --no-image) image=0; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "build-static.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$target" in
  x86_64-unknown-linux-musl) arch=amd64 ;;
  aarch64-unknown-linux-musl) arch=arm64 ;;
  *) echo "build-static.sh: target $target is not supported (x86_64-unknown-linux-musl, aarch64-unknown-linux-musl)" >&2; exit 2 ;;
esac
out="${out:-$CARGO_TARGET_DIR/dbx-gateway-image/$target}"
tag="${tag:-dbx-gateway:$arch-local}"
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
step() { printf '\n==> %s\n' "$*"; }

# --- prerequisites ------------------------------------------------------------
native=0; [ "$target" = "${host_arch}-unknown-linux-musl" ] && native=1
apt_missing=()
need_cmd() { command -v "$1" >/dev/null 2>&1 || apt_missing+=("$2"); }
need_cmd strip binutils
[ -f /etc/ssl/certs/ca-certificates.crt ] || apt_missing+=(ca-certificates)
if [ "$native" = 1 ]; then
  need_cmd musl-gcc musl-tools
else # aarch64 musl from x86_64, as scripts/cross.sh builds it
  configure "$target"
  need_cmd "$gcc" gcc-aarch64-linux-gnu
  need_cmd aarch64-linux-gnu-strip binutils-aarch64-linux-gnu
  if [ ! -f /usr/lib/aarch64-linux-musl/libc.a ]; then
    dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
    apt_missing+=(musl-dev:arm64)
  fi
fi
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${apt_missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -o DPkg::Lock::Timeout=300 -y -qq --no-install-recommends "${apt_missing[@]}" >/dev/null
fi
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

# --- build --------------------------------------------------------------------
step "cargo build -p dbx-gateway --profile $profile --target $target"
env_t=$(tr 'a-z-' 'A-Z_' <<<"$target")
build_env=()
if [ "$native" = 1 ]; then
  # musl-gcc compiles the C parts (bundled SQLite, ring) against musl's
  # headers; rustc links with the host's cc and its own musl start files.
  build_env=("CC_${target//-/_}=musl-gcc")
  strip_cmd="strip"
else
  build_env=("CARGO_TARGET_${env_t}_LINKER=$gcc" "CC_${target//-/_}=$gcc" "CFLAGS_${target//-/_}=$cflags")
  strip_cmd=aarch64-linux-gnu-strip
fi
t0=$(date +%s)
env "${build_env[@]}" cargo build --locked -p dbx-gateway --profile "$profile" --target "$target"
echo "build: $(( $(date +%s) - t0 ))s"
dir=$profile; [ "$profile" = dev ] && dir=debug
bin="$CARGO_TARGET_DIR/$target/$dir/dbx-gateway"

# --- stage the root file system -------------------------------------------------
step "staging $out/rootfs"
rm -rf "$out"
root="$out/rootfs"
# state/ becomes /var/lib/dbx-gateway, owned by 10001 (COPY --chown of a
# directory that no earlier COPY created).
mkdir -p "$root/usr/local/bin" "$root/etc/ssl/certs" "$root/etc/dbx-gateway" "$root/tmp" "$out/state"
cp "$bin" "$root/usr/local/bin/dbx-gateway"
"$strip_cmd" "$root/usr/local/bin/dbx-gateway"
chmod 0755 "$root/usr/local/bin/dbx-gateway"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
chmod 0644 "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/:/sbin/nologin\ndbx-gateway:x:10001:10001:dbx-gateway:/var/lib/dbx-gateway:/sbin/nologin\n' >"$root/etc/passwd"
printf 'root:x:0:\ndbx-gateway:x:10001:\n' >"$root/etc/group"
chmod 1777 "$root/tmp"
chmod 0755 "$out/state" "$root/etc/dbx-gateway"
cp deploy/docker/Dockerfile.prebuilt "$out/Dockerfile"
file "$root/usr/local/bin/dbx-gateway" 2>/dev/null || true
echo "binary: $(stat -c %s "$root/usr/local/bin/dbx-gateway") bytes (stripped), $(stat -c %s "$bin") bytes before"

# --- image ----------------------------------------------------------------------
[ "$image" = 1 ] || exit 0
if ! docker info >/dev/null 2>&1; then
  cat >&2 <<BANNER

  ************************************************************************
  *  NO DOCKER ENGINE: the image was not built. The staged context is    *
  *  ready; build it elsewhere with                                      *
  *    docker build -t $tag $out
  ************************************************************************

BANNER
  exit 0
fi
step "docker build -t $tag ($arch)"
docker build --platform "linux/$arch" -t "$tag" "$out"
docker image inspect "$tag" --format 'image {{.RepoTags}}: {{.Size}} bytes, user {{.Config.User}}'
