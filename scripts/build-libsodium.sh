#!/bin/bash
# build-libsodium.sh - build libsodium as a static musl library into the
# private sysroot shared with build-rdma-core.sh.
#
# Usage: scripts/build-libsodium.sh BUILD_DIR
#
# Result: BUILD_DIR/sysroot/lib/libsodium.a, BUILD_DIR/sysroot/include/sodium.h
#         (+ include/sodium/), BUILD_DIR/sysroot/lib/pkgconfig/libsodium.pc
# Built with --enable-minimal (crypto_auth_hmacsha256 is part of the minimal
# set), -Os -ffunction-sections -fdata-sections, so unused code is dropped by
# -Wl,--gc-sections in the final link.
# Idempotent: a stamp file records version + tarball hash; if it matches the
# script exits at once. Remove BUILD_DIR/sysroot/.libsodium.stamp to rebuild.
# Full build log: BUILD_DIR/logs/libsodium.log (tail printed on failure).
# Needs: musl-tools build-essential autoconf automake libtool
#        (scripts/deps.sh build)
set -eu

VERSION=1.0.18
POOL=pool/main/libs/libsodium/libsodium_${VERSION}.orig.tar.gz
SHA256=d59323c6b712a1519a5daf710b68f5e7fde57040845ffec53850911f10a5d4f4
RECIPE=2   # bump when the build recipe below changes
CC=${CC_MUSL:-musl-gcc}
JOBS=${JOBS:-2}

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
script_dir=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
build_dir=$(cd "$1" && pwd)
sysroot=$build_dir/sysroot
stamp=$sysroot/.libsodium.stamp
want_stamp="libsodium $VERSION $SHA256 recipe=$RECIPE sysroot=$sysroot"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
    touch "$stamp"   # newer than this script, for make's dependency check
    echo "libsodium $VERSION: up to date ($sysroot)"
    exit 0
fi

src_root=$build_dir/src
src=$src_root/libsodium-$VERSION
obj=$build_dir/obj/libsodium
logdir=$build_dir/logs
log=$logdir/libsodium.log
mkdir -p "$src_root" "$logdir" "$sysroot/include" "$sysroot/lib/pkgconfig"
: >"$log"

t0=$(date +%s)
step() { echo "libsodium: $* ($(($(date +%s) - t0))s)"; }
run() {   # run a command with its output only in the log
    echo "+ $*" >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        echo "libsodium: FAILED: $*" >&2
        echo "---- last 40 lines of $log ----" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

command -v "$CC" >/dev/null || { echo "libsodium: $CC not found (run scripts/deps.sh build)" >&2; exit 1; }
command -v make >/dev/null || { echo "libsodium: make not found (run scripts/deps.sh build)" >&2; exit 1; }
rm -f "$stamp"

step "fetch + unpack $VERSION"
tarball=$("$script_dir/debsrc.sh" "$POOL" "$SHA256" "$build_dir/cache" 2>>"$log") || {
    echo "libsodium: download failed:" >&2; tail -n 5 "$log" >&2; exit 1; }
rm -rf "$src" "$obj"
run tar -xzf "$tarball" -C "$src_root"
[ -f "$src/configure.ac" ] || { echo "libsodium: unexpected tarball layout" >&2; exit 1; }

# Debian's orig tarball is a git export without a generated configure script.
# Run autoreconf directly: upstream's autogen.sh would also try to download
# config.guess/config.sub with curl.
if [ ! -x "$src/configure" ]; then
    step "autoreconf"
    for t in autoreconf libtoolize automake; do
        command -v $t >/dev/null || { echo "libsodium: $t not found (run scripts/deps.sh build)" >&2; exit 1; }
    done
    (cd "$src" && run autoreconf -fi)
fi

step "configure"
mkdir -p "$obj"
cflags="-Os -ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables"
(
    cd "$obj"
    run env CC="$CC" CFLAGS="$cflags" \
        PKG_CONFIG_LIBDIR="$sysroot/lib/pkgconfig" PKG_CONFIG_PATH= \
        "$src/configure" --prefix="$sysroot" --libdir="$sysroot/lib" \
        --disable-shared --enable-static --enable-minimal \
        --disable-dependency-tracking
)

step "make -j$JOBS"
run make -C "$obj" -j"$JOBS"

step "install into $sysroot"
rm -rf "$sysroot/include/sodium" "$sysroot/include/sodium.h"
run make -C "$obj" install
rm -f "$sysroot/lib/libsodium.la"   # libtool archive is not needed

for f in lib/libsodium.a lib/pkgconfig/libsodium.pc include/sodium.h \
         include/sodium/crypto_auth_hmacsha256.h; do
    [ -e "$sysroot/$f" ] || { echo "libsodium: missing $sysroot/$f after install" >&2; exit 1; }
done
grep -q 'define SODIUM_LIBRARY_MINIMAL 1' "$sysroot/include/sodium/version.h" ||
    echo "libsodium: warning: not a minimal build" >&2

echo "$want_stamp" >"$stamp"
step "done: $sysroot/lib/libsodium.a ($(wc -c <"$sysroot/lib/libsodium.a") bytes)"
