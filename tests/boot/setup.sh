#!/bin/bash
# tests/boot/setup.sh - prepare the boot proof (tests/boot): the RDMA lab's
# kernel and qemu (tests/vm/setup.sh), plus dracut and mkfs.ext4.
#
# Idempotent and fast when done (a dpkg-query and the lab's stamp check).
# As a non-root user it prints the apt-get line to run and exits 2.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)

"$top/tests/vm/setup.sh"

# dracut-core (not dracut: it conflicts with initramfs-tools), the
# network-legacy module (dracut-network), mkfs.ext4 -d (e2fsprogs), the
# guests' busybox, iproute2's rdma for the initramfs, the udev that dracut's
# base module puts in every image, and systemd for the systemd initramfs
# (dracut's systemd modules copy it from this machine).
BOOT_PKGS="dracut-core dracut-network e2fsprogs busybox-static iproute2 udev kmod systemd"

# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $BOOT_PKGS 2>/dev/null |
	awk '$2 == "installed" { printf "%s ", $1 }')"
missing=
for p in $BOOT_PKGS; do
	case $installed in *" $p "*) ;; *) missing="$missing $p" ;; esac
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "boot-setup: missing packages:$missing; run as root:" >&2
	echo "  apt-get update && apt-get install -y --no-install-recommends$missing" >&2
	exit 2
fi
echo "boot-setup: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing >/dev/null
