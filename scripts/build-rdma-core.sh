#!/bin/bash
# build-rdma-core.sh - build rdma-core (libibverbs, librdmacm, providers) as
# static musl libraries into a private sysroot.
#
# Usage: scripts/build-rdma-core.sh BUILD_DIR
#
# Result (all under BUILD_DIR/sysroot):
#   lib/libibverbs.a lib/librdmacm.a lib/lib<provider>.a ...
#   lib/pkgconfig/libibverbs.pc librdmacm.pc   (use PKG_CONFIG_LIBDIR=...)
#   include/infiniband include/rdma            (rdma-core public headers)
#   include/linux include/asm-generic include/asm   (kernel uapi headers for
#                                                    musl-gcc, which uses -nostdinc)
# Consumers compile with: musl-gcc -isystem BUILD_DIR/sysroot/include
#   -DRDMA_STATIC_PROVIDERS=rxe,mlx5 ...
# Idempotent: a stamp file records version + tarball hash; if it matches the
# script exits at once. Remove BUILD_DIR/sysroot/.rdma-core.stamp to rebuild.
# Full build log: BUILD_DIR/logs/rdma-core.log (tail printed on failure).
# Needs: musl-tools cmake ninja-build python3 pkg-config (scripts/deps.sh build)
set -eu

VERSION=56.1
POOL=pool/main/r/rdma-core/rdma-core_${VERSION}.orig.tar.gz
SHA256=63ce7f2baa7242c2dbc76375dac957c420187dd27f8c5e148efc07971ee522a8
RECIPE=2   # bump when the build recipe below changes
CC=${CC_MUSL:-musl-gcc}

[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 1; }
script_dir=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1"
build_dir=$(cd "$1" && pwd)
sysroot=$build_dir/sysroot
stamp=$sysroot/.rdma-core.stamp
want_stamp="rdma-core $VERSION $SHA256 recipe=$RECIPE sysroot=$sysroot"

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want_stamp" ]; then
    touch "$stamp"   # newer than this script, for make's dependency check
    echo "rdma-core $VERSION: up to date ($sysroot)"
    exit 0
fi

src_root=$build_dir/src
src=$src_root/rdma-core-$VERSION
obj=$build_dir/obj/rdma-core
logdir=$build_dir/logs
log=$logdir/rdma-core.log
mkdir -p "$src_root" "$logdir" "$sysroot/include" "$sysroot/lib/pkgconfig"
: >"$log"

t0=$(date +%s)
step() { echo "rdma-core: $* ($(($(date +%s) - t0))s)"; }
run() {   # run a command with its output only in the log
    echo "+ $*" >>"$log"
    if ! "$@" >>"$log" 2>&1; then
        echo "rdma-core: FAILED: $*" >&2
        echo "---- last 40 lines of $log ----" >&2
        tail -n 40 "$log" >&2
        exit 1
    fi
}

command -v "$CC" >/dev/null || { echo "rdma-core: $CC not found (run scripts/deps.sh build)" >&2; exit 1; }
for t in cmake ninja python3; do
    command -v $t >/dev/null || { echo "rdma-core: $t not found (run scripts/deps.sh build)" >&2; exit 1; }
done
rm -f "$stamp"

# 1. Kernel uapi headers for musl-gcc (-nostdinc hides /usr/include). Only
#    linux/, asm-generic/ and the arch asm/ are copied; adding /usr/include
#    itself would leak glibc headers.
step "kernel headers -> $sysroot/include"
multiarch=$(gcc -print-multiarch 2>/dev/null || true)
asm_dir=/usr/include/${multiarch:-x86_64-linux-gnu}/asm
[ -d "$asm_dir" ] || asm_dir=/usr/include/asm
for d in /usr/include/linux /usr/include/asm-generic "$asm_dir"; do
    [ -d "$d" ] || { echo "rdma-core: missing $d (install linux-libc-dev)" >&2; exit 1; }
done
rm -rf "$sysroot/include/linux" "$sysroot/include/asm-generic" "$sysroot/include/asm"
cp -a /usr/include/linux /usr/include/asm-generic "$sysroot/include/"
cp -a "$asm_dir" "$sysroot/include/asm"

# 2. Source
step "fetch + unpack $VERSION"
tarball=$("$script_dir/debsrc.sh" "$POOL" "$SHA256" "$build_dir/cache" 2>>"$log") || {
    echo "rdma-core: download failed:" >&2; tail -n 5 "$log" >&2; exit 1; }
rm -rf "$src" "$obj"
run tar -xzf "$tarball" -C "$src_root"
[ -f "$src/CMakeLists.txt" ] || { echo "rdma-core: unexpected tarball layout" >&2; exit 1; }

# 3. Configure. PKG_CONFIG_LIBDIR points at the private sysroot so host glibc
#    libraries (libudev, libsystemd, libdrm, libnl) are not found.
#    Note: do NOT pass -DENABLE_LTTNG=0 - the option is tested with
#    "if (DEFINED ...)" and would turn LTTng on.
step "cmake configure"
mkdir -p "$obj"
# -f*-sections let the final --gc-sections drop unused code; no unwind tables
# (C only, the shipped binary is stripped) saves ~40 KB of .eh_frame.
cflags="-ffunction-sections -fdata-sections -fno-asynchronous-unwind-tables -fno-unwind-tables"
cflags="$cflags -isystem $sysroot/include"
(
    cd "$obj"
    export CC PKG_CONFIG_LIBDIR="$sysroot/lib/pkgconfig" PKG_CONFIG_PATH=
    run cmake -G Ninja "$src" \
        -DCMAKE_BUILD_TYPE=MinSizeRel \
        -DCMAKE_C_FLAGS="$cflags" \
        -DCMAKE_INSTALL_PREFIX="$sysroot" \
        -DCMAKE_INSTALL_LIBDIR=lib \
        -DCMAKE_INSTALL_INCLUDEDIR=include \
        -DENABLE_STATIC=1 \
        -DNO_PYVERBS=1 \
        -DNO_MAN_PAGES=1 \
        -DENABLE_RESOLVE_NEIGH=0 \
        -DENABLE_VALGRIND=0 \
        -DCMAKE_DISABLE_FIND_PACKAGE_UDev=TRUE \
        -DCMAKE_DISABLE_FIND_PACKAGE_Systemd=TRUE
)

# 4. Build only the static libraries (ninja install would build every tool).
step "ninja make_static"
run ninja -C "$obj" make_static

# 5. Install: static archives, .pc files and public headers, taken from the
#    generated cmake_install rules (only the lines for those destinations).
step "install into $sysroot"
inst=$obj/install-static.cmake
find "$obj" -name cmake_install.cmake -print0 | xargs -0 cat |
    grep -E '^[[:space:]]*file\(INSTALL DESTINATION "\$\{CMAKE_INSTALL_PREFIX\}/(include/|lib/pkgconfig"|lib" TYPE FILE FILES "[^"]*\.a"\))' \
    >"$inst" || true
[ -s "$inst" ] || { echo "rdma-core: no install rules found in $obj" >&2; exit 1; }
rm -rf "$sysroot/include/infiniband" "$sysroot/include/rdma"
run cmake -DCMAKE_INSTALL_PREFIX="$sysroot" -P "$inst"
# Kernel ABI headers (rdma/ib_user_verbs.h, rdma_user_cm.h, ...) that the
# public headers include; cmake only publishes them internally.
mkdir -p "$sysroot/include/rdma"
cp -a "$src/kernel-headers/rdma/." "$sysroot/include/rdma/"

for f in lib/libibverbs.a lib/librdmacm.a lib/pkgconfig/libibverbs.pc \
         lib/pkgconfig/librdmacm.pc include/infiniband/verbs.h \
         include/rdma/rdma_cma.h include/rdma/ib_user_verbs.h; do
    [ -e "$sysroot/$f" ] || { echo "rdma-core: missing $sysroot/$f after install" >&2; exit 1; }
done

echo "$want_stamp" >"$stamp"
step "done: libibverbs.a librdmacm.a + providers in $sysroot/lib"
