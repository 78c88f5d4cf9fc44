#!/bin/sh
# /init of the RDMA lab's guests (busybox sh). Installed by mkinitramfs.sh.
#
# Kernel command line words (unknown key=value words reach /init as
# environment variables):
#   role=NAME        this guest's role: a or b (default a); names its files
#   topo=veth|dgram  veth: one guest, veth0/veth1 with rxe0/rxe1;
#                    dgram: virtio-net eth0..eth(links-1) with rxe0..
#   links=N          dgram: number of links (default 1)
#   ccm_script=PATH  the scenario to run (usually /out/SOMETHING.sh)
#   ccm_debug=1      trace this script (set -x) on the serial console
# Any other key=value word is passed on to the scenario unchanged.
#
# The scenario runs with cwd /out and these variables exported:
#   role topo links            as above
#   OUT=/out                   the host's 9p share (read-write)
#   CCM=/usr/bin/ccm-early     the static binary
#   ccm_local ccm_peer         link 0: this guest's and the partner's IPv4
#                              address (veth: 10.0.0.1 on veth0/rxe0 and
#                              10.0.0.2 on veth1/rxe1)
#   ccm_local_N ccm_peer_N ccm_if_N ccm_dev_N   the same for link N, with its
#                              netdev and rxe device (dgram)
#   ccm_gid_index=1            the IPv4-mapped GID index of the rxe devices
#   LAB_LIB=/etc/lab/lib.sh    helpers (lab_wait_file, lab_wait_listen, ...)
# Its stdout+stderr go to /out/ROLE.log and to the serial console; its exit
# status to /out/ROLE.rc. Then the guest powers off (qemu exits 0).
# A failure before the scenario could start writes "setup: WHY" to the
# console (and /out/ROLE.rc = 99 if /out is mounted) and makes qemu exit
# with status 199 through isa-debug-exit.
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
export LD_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu
umask 022
[ "${ccm_debug:-0}" = 1 ] && set -x

role=${role:-a}
topo=${topo:-veth}
links=${links:-1}
export role topo links

# mounted DIR: something is mounted there (busybox has no mountpoint).
mounted() { grep -q " $1 " /proc/mounts; }

say() { echo "lab[$role $(cut -d' ' -f1 /proc/uptime)s]: $*"; }

die() {
	say "setup: $*"
	if mounted /out; then
		echo 99 >"/out/$role.rc"
		echo "setup: $*" >>"/out/$role.log"
		sync
	fi
	# isa-debug-exit: qemu exits with 2*99+1 = 199.
	printf '\143' | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null
	poweroff -f
}

mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t tmpfs tmp /tmp
hostname "$role"
say "init started"

while read -r m; do
	out=$(insmod "$m" 2>&1) || case $out in
		*"File exists"*) ;;
		*) die "insmod $m: $out" ;;
	esac
done </etc/lab/modules
mounted /sys/kernel/config || mount -t configfs configfs /sys/kernel/config 2>/dev/null

# The share: virtio devices may probe a moment after their driver loads.
n=0
until mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 out /out 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 50 ] || die "cannot mount the 9p share 'out' at /out"
	sleep 0.1
done
: >"/out/$role.log" || die "/out is not writable"
rm -f "/out/$role.rc"

ip() { /usr/sbin/ip "$@"; }  # iproute2, not busybox's applet
sysw() { echo "$2" >"/proc/sys/$1" || die "cannot set $1"; }

ip link set lo up
sysw net/ipv4/conf/all/rp_filter 0
sysw net/ipv4/conf/default/rp_filter 0
sysw net/ipv4/conf/all/accept_local 1
sysw net/ipv4/conf/default/accept_local 1

# addr_of LINK ROLE: 10.0.LINK.1 for a, .2 for b.
case $topo in
veth)
	ip link add veth0 type veth peer name veth1 || die "cannot create veth0/veth1"
	for i in 0 1; do
		ip addr add "10.0.0.$((i + 1))/24" dev "veth$i" || die "address on veth$i"
		ip link set "veth$i" up || die "veth$i up"
		sysw "net/ipv4/conf/veth$i/accept_local" 1
		sysw "net/ipv4/conf/veth$i/rp_filter" 0
		rdma link add "rxe$i" type rxe netdev "veth$i" || die "rdma link add rxe$i netdev veth$i"
	done
	export ccm_local=10.0.0.1 ccm_peer=10.0.0.2
	export ccm_local_0=10.0.0.1 ccm_peer_0=10.0.0.2 ccm_if_0=veth0 ccm_dev_0=rxe0
	export ccm_local_1=10.0.0.2 ccm_peer_1=10.0.0.1 ccm_if_1=veth1 ccm_dev_1=rxe1
	;;
dgram)
	case $role in
	a) me=1 peer=2 ;;
	b) me=2 peer=1 ;;
	*) die "role must be a or b for topo=dgram, not '$role'" ;;
	esac
	i=0
	while [ $i -lt "$links" ]; do
		n=0
		until [ -e "/sys/class/net/eth$i" ]; do
			n=$((n + 1))
			[ $n -lt 50 ] || die "no netdev eth$i"
			sleep 0.1
		done
		ip addr add "10.0.$i.$me/24" dev "eth$i" || die "address on eth$i"
		ip link set "eth$i" up || die "eth$i up"
		sysw "net/ipv4/conf/eth$i/rp_filter" 0
		rdma link add "rxe$i" type rxe netdev "eth$i" || die "rdma link add rxe$i netdev eth$i"
		export "ccm_local_$i=10.0.$i.$me" "ccm_peer_$i=10.0.$i.$peer" "ccm_if_$i=eth$i" "ccm_dev_$i=rxe$i"
		i=$((i + 1))
	done
	export ccm_local="10.0.0.$me" ccm_peer="10.0.0.$peer"
	;;
*) die "unknown topo '$topo'" ;;
esac
export OUT=/out CCM=/usr/bin/ccm-early ccm_gid_index=1 LAB_LIB=/etc/lab/lib.sh

[ -n "${ccm_script:-}" ] || die "no ccm_script= on the kernel command line"
[ -r "$ccm_script" ] || die "scenario $ccm_script not found"
say "running $ccm_script"
cd /out || die "cannot cd /out"
set +x
# stdout+stderr to the log and to the console; the status through a file.
{ sh "$ccm_script"; echo $? >/tmp/rc; } 2>&1 | tee -a "/out/$role.log"
rc=$(cat /tmp/rc 2>/dev/null || echo 98)
cd /
say "scenario exited $rc"
echo "$rc" >"/out/$role.rc"
sync
umount /out 2>/dev/null
poweroff -f
