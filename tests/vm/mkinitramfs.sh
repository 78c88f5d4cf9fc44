#!/bin/bash
# tests/vm/mkinitramfs.sh - build the RDMA lab's guest initramfs.
#
#   tests/vm/mkinitramfs.sh OUT.cpio[.gz] [--add SRC:DST ...] [--no-ccm]
#
# Contents:
#   - static busybox (/bin/busybox and its applet links)
#   - the kernel modules of build/vm (tests/vm/setup.sh), in the order
#     `modprobe --show-depends` gives, listed in /etc/lab/modules
#   - iproute2's /usr/sbin/ip (busybox's ip applet cannot make veth pairs;
#     Debian's busybox sh runs its own applet for a bare `ip`, so /init calls
#     /usr/sbin/ip by path) and /usr/bin/rdma, with their shared libraries
#   - the reference tools rping, ib_write_lat, ib_read_lat, ib_write_bw,
#     ib_read_bw, ibv_devices, ibv_devinfo with their shared libraries, the
#     rxe provider (librxe-rdmav34.so) and /etc/libibverbs.d/rxe.driver (both
#     loaded at run time, so ldd does not list them) and libgcc_s.so.1
#   - the static ccm-early as /usr/bin/ccm-early ($CCM_STATIC, default
#     ./ccm-early of the tree; --no-ccm leaves it out)
#   - /init (tests/vm/init.sh), /etc/lab/lib.sh (tests/vm/guest-lib.sh:
#     helpers for scenario scripts) and every --add SRC:DST (file or directory)
#
# OUT ending in .gz is gzip -1 compressed, else a plain newc cpio (a plain
# one boots slightly faster under TCG: the guest does not inflate it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
vm=$top/build/vm

usage() { echo "usage: $0 OUT.cpio[.gz] [--add SRC:DST ...] [--no-ccm]" >&2; exit 2; }
[ $# -ge 1 ] || usage
out=$1
shift
adds=()
ccm=${CCM_STATIC:-$top/ccm-early}
while [ $# -gt 0 ]; do
	case $1 in
	--add) [ $# -ge 2 ] || usage; adds+=("$2"); shift 2 ;;
	--add=*) adds+=("${1#--add=}"); shift ;;
	--no-ccm) ccm=""; shift ;;
	*) usage ;;
	esac
done

"$here/setup.sh"
kver=$(cat "$vm/kver")
kroot=$vm/kernel

stage=$(mktemp -d "${TMPDIR:-/tmp}/ccm-initramfs.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,sbin,usr/bin,usr/sbin,usr/lib/x86_64-linux-gnu/libibverbs,usr/lib64,etc/libibverbs.d,etc/lab,proc,sys,dev,run,tmp,out,mnt}
# Merged /usr like the host, so ldd's /lib/... paths land in usr/lib.
ln -s usr/lib "$stage/lib"
ln -s usr/lib64 "$stage/lib64"

# busybox and its applets (never over a file already there).
cp /bin/busybox "$stage/bin/busybox"
for a in $(/bin/busybox --list-full); do
	[ -e "$stage/$a" ] || ln -s /bin/busybox "$stage/$a"
done

# A dynamically linked program with every library ldd names.
add_dyn() {
	local f=$1 dst=${2:-$1} lib
	mkdir -p "$stage/$(dirname "$dst")"
	rm -f "$stage/$dst"
	cp -L "$f" "$stage/$dst"
	for lib in $(ldd "$f" 2>/dev/null | awk '/=> \// { print $3 } /^\t\// { print $1 }'); do
		[ -e "$stage/$lib" ] && continue
		mkdir -p "$stage/$(dirname "$lib")"
		cp -L "$lib" "$stage/$lib"
	done
}
# /usr/sbin/ip replaces nothing of busybox: its ip applet link is /sbin/ip.
add_dyn /usr/sbin/ip /usr/sbin/ip
add_dyn /usr/bin/rdma /usr/bin/rdma
for t in rping ib_write_lat ib_read_lat ib_write_bw ib_read_bw ibv_devices ibv_devinfo; do
	p=$(command -v "$t") || { echo "mkinitramfs: $t not found (run tests/vm/setup.sh)" >&2; exit 1; }
	add_dyn "$p" "/usr/bin/$t"
done
libdir=/usr/lib/x86_64-linux-gnu
add_dyn "$libdir/libibverbs/librxe-rdmav34.so"
cp /etc/libibverbs.d/rxe.driver "$stage/etc/libibverbs.d/"
add_dyn "$(readlink -f "$libdir/libgcc_s.so.1")" "$libdir/libgcc_s.so.1"
# The loader looks in /lib/x86_64-linux-gnu by default; say it anyway.
echo "$libdir" >"$stage/etc/ld.so.conf"

if [ -n "$ccm" ]; then
	[ -x "$ccm" ] || { echo "mkinitramfs: no static ccm-early at $ccm (make ccm-early)" >&2; exit 1; }
	cp "$ccm" "$stage/usr/bin/ccm-early"
fi

# Modules, deduplicated, in dependency order; builtins are skipped.
: >"$stage/etc/lab/modules"
for m in virtio_pci virtio_net veth crc32_generic crc32_pclmul rdma_rxe rdma_ucm ib_uverbs 9pnet_virtio 9p; do
	modprobe -d "$kroot" -S "$kver" --show-depends "$m" | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		rel=${path#"$kroot"}
		grep -qxF "$rel" "$stage/etc/lab/modules" && continue
		mkdir -p "$stage/$(dirname "$rel")"
		cp "$path" "$stage/$rel"
		echo "$rel" >>"$stage/etc/lab/modules"
	done
done
echo "$kver" >"$stage/etc/lab/kver"

install -m 0755 "$here/init.sh" "$stage/init"
install -m 0644 "$here/guest-lib.sh" "$stage/etc/lab/lib.sh"

for a in "${adds[@]}"; do
	src=${a%%:*} dst=${a#*:}
	if [ "$src" = "$a" ] || [ -z "$dst" ]; then echo "mkinitramfs: --add wants SRC:DST, got $a" >&2; exit 2; fi
	mkdir -p "$stage/$(dirname "$dst")"
	cp -a "$src" "$stage/$dst"
done

mkdir -p "$(dirname "$out")"
case $out in
*.gz) (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out.tmp.$$" ;;
*) (cd "$stage" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$out.tmp.$$" ;;
esac
mv "$out.tmp.$$" "$out"
