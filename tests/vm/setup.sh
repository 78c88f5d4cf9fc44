#!/bin/bash
# tests/vm/setup.sh - prepare the RDMA lab (qemu guests with Soft-RoCE).
#
# Installs the host packages the lab needs (apt-get, only what is missing),
# downloads Debian 12's stock kernel package with `apt-get download` (apt
# knows the mirror), unpacks it into build/vm/kernel/, runs depmod there and
# extracts an uncompressed vmlinux from the XZ-compressed vmlinuz (qemu boots
# it through its PVH entry point, 2-3x faster than the bzImage under TCG).
#
# Idempotent and fast when done: a stamp (build/vm/stamp) records the kernel
# version; with it present and the files in place this takes ~50 ms.
#
# Prints nothing but errors when there is nothing to do. Results:
#   build/vm/kver       the kernel release (e.g. 6.1.0-41-amd64)
#   build/vm/vmlinux    uncompressed kernel for qemu -kernel
#   build/vm/kernel/    the unpacked package (lib/modules/KVER, with depmod)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
vm=$top/build/vm
mkdir -p "$vm"

# Host packages. kmod: modprobe --show-depends / depmod; iproute2: ip, rdma;
# ibverbs-providers: librxe + rxe.driver for the guest's reference tools.
HOST_PKGS="qemu-system-x86 busybox-static cpio kmod python3 iproute2
ibverbs-utils rdmacm-utils perftest ibverbs-providers libgcc-s1 coreutils
shunit2"

# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $HOST_PKGS 2>/dev/null |
	awk '$2 == "installed" { printf "%s ", $1 }')"
missing=
for p in $HOST_PKGS; do
	case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "vm-setup: missing packages:$missing; run as root:" >&2
		echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
		exit 2
	fi
	echo "vm-setup: installing:$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	# shellcheck disable=SC2086
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
fi

stamp=$vm/stamp
if [ -f "$stamp" ] && [ -f "$vm/vmlinux" ] && [ -f "$vm/kver" ] &&
	[ -f "$vm/kernel/lib/modules/$(cat "$vm/kver")/modules.dep" ]; then
	exit 0
fi

# The real kernel package behind the linux-image-amd64 metapackage.
pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
	sed -n 's/^ *Depends: \(linux-image-6\.1\.[^ ]*-amd64\)$/\1/p' | head -1)
if [ -z "$pkg" ]; then
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	pkg=$(apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-6\.1\.[^ ]*-amd64\)$/\1/p' | head -1)
fi
[ -n "$pkg" ] || { echo "vm-setup: cannot find the kernel package behind linux-image-amd64" >&2; exit 1; }
kver=${pkg#linux-image-}

echo "vm-setup: fetching $pkg" >&2
rm -rf "$vm/dl" "$vm/kernel.tmp"
mkdir -p "$vm/dl"
( cd "$vm/dl" && apt-get -o APT::Sandbox::User=root download -qq "$pkg" ) ||
	{ apt-get -o DPkg::Lock::Timeout=600 update -qq && ( cd "$vm/dl" && apt-get -o APT::Sandbox::User=root download -qq "$pkg" ); }
deb=$(find "$vm/dl" -name "${pkg}_*.deb" | head -1)
dpkg-deb -x "$deb" "$vm/kernel.tmp"
depmod -b "$vm/kernel.tmp" "$kver"

# vmlinuz is a bzImage whose payload is an XZ stream: find the stream magic
# and decompress it (trailing bytes after the stream are ignored).
python3 - "$vm/kernel.tmp/boot/vmlinuz-$kver" "$vm/vmlinux.tmp" <<'EOF'
import lzma, sys
data = open(sys.argv[1], 'rb').read()
magic = b'\xfd7zXZ\x00'
off = data.find(magic)
while off >= 0:
    try:
        d = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
        out = d.decompress(data[off:])
        if out[:4] == b'\x7fELF':
            open(sys.argv[2], 'wb').write(out)
            sys.exit(0)
    except lzma.LZMAError:
        pass
    off = data.find(magic, off + 1)
sys.exit("vm-setup: no XZ-compressed ELF kernel found in " + sys.argv[1])
EOF
rm -rf "$vm/kernel"
mv "$vm/kernel.tmp" "$vm/kernel"
mv "$vm/vmlinux.tmp" "$vm/vmlinux"
rm -rf "$vm/dl"
echo "$kver" >"$vm/kver"
echo "$kver" >"$stamp"
echo "vm-setup: kernel $kver ready in $vm" >&2
