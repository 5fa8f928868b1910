# The edge targets and how to build and run each; sourced by scripts/cross.sh
# and scripts/edge-budgets.sh.
EDGE_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf riscv64gc-unknown-linux-gnu
  x86_64-unknown-linux-musl aarch64-unknown-linux-musl)
HOST_TARGET=x86_64-unknown-linux-gnu

# Sets gcc (the target's C compiler and linker; empty for the host), cflags,
# qemu (empty where the binary runs natively) and sysroot (qemu's -L; empty
# for static binaries) for TARGET.
configure() { # TARGET
  gcc=""; cflags=""; qemu=""; sysroot=""
  case "$1" in
    aarch64-unknown-linux-gnu) gcc=aarch64-linux-gnu-gcc; qemu=qemu-aarch64; sysroot=/usr/aarch64-linux-gnu ;;
    armv7-unknown-linux-gnueabihf) gcc=arm-linux-gnueabihf-gcc; qemu=qemu-arm; sysroot=/usr/arm-linux-gnueabihf ;;
    riscv64gc-unknown-linux-gnu) gcc=riscv64-linux-gnu-gcc; qemu=qemu-riscv64; sysroot=/usr/riscv64-linux-gnu ;;
    x86_64-unknown-linux-musl) gcc=musl-gcc ;;
    aarch64-unknown-linux-musl)
      # SQLite's C must see musl's headers, not glibc's (Debian's musl-dev:arm64).
      gcc=aarch64-linux-gnu-gcc; qemu=qemu-aarch64
      if command -v "$gcc" >/dev/null 2>&1; then
        cflags="-nostdinc -isystem $("$gcc" -print-file-name=include) -isystem /usr/include/aarch64-linux-musl"
      fi ;;
    "$HOST_TARGET") ;;
    *) echo "unknown target $1 (known: ${EDGE_TARGETS[*]} $HOST_TARGET)" >&2; exit 2 ;;
  esac
}
