# shellcheck shell=bash
# tests/boot/lib.sh - the boot proof's harness: real dracut images with the
# ccm module (dracut/95ccm, from the tree), a real ext4 root on a virtio
# disk, two qemu guests joined by a dgram netdev.  Source it (bash); it
# sources tests/vm/lib.sh (vm_free_udp_ports, vm_kill_all, VM_PIDS).
#
#   boot_prepare DIR      setup.sh; in DIR: the private dracut tree, the
#                         images (ccm-a.img, ccm-b.img, plain.img: dracut's
#                         own init; ccm-sd-a.img, ccm-sd-b.img: systemd) and
#                         the root filesystem image (root.ext4)
#   boot_net              fresh UDP ports for the a<->b link
#   boot_guest ROLE NAME INITRD SHARE APPEND
#                         start one guest (ROLE a or b: its MAC and port;
#                         NAME: its files in SHARE, its disk copy)
#   boot_wait_file F SECS wait for a file (the share)
#   boot_wait_guests SECS wait for every guest to power off; 1 on timeout
#   vm_kill_all           (tests/vm/lib.sh) kill every guest
#
# Call boot_guest from the main shell (not in $(...) or a pipe): as in the
# lab, each qemu dies with the shell that started it (PR_SET_PDEATHSIG).

# shellcheck source=tests/vm/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/../vm/lib.sh"
BOOT_HERE=$VM_TOP/tests/boot
: "${BOOT_MEM:=384M}"
: "${BOOT_TIMEOUT:=180}"      # one guest, boot to power-off
BOOT_DIR=""
# The ccm-early under test, in the images and the root, and the ccm-fmon
# that goes with it (default: the tree's).
: "${BOOT_CCM_EARLY:=$VM_TOP/ccm-early}"
: "${BOOT_CCM_FMON:=$(dirname "$BOOT_CCM_EARLY")/ccm-fmon}"

boot_log() { echo "boot: $*" >&2; }

# boot_dracut_tree DIR: a private dracut tree: every file of /usr/lib/dracut
# by symlink, every module too, plus 95ccm from this tree; the host's
# /usr/lib/dracut and /etc/dracut.conf* are not touched or read.
# 90kernel-network-modules is replaced by a stub that installs only
# virtio_net: the real one puts every wired NIC driver in (80 MB images
# that TCG unpacks slowly).
boot_dracut_tree() {
	local d=$1 f
	rm -rf "$d"
	mkdir -p "$d/modules.d" "$d/conf.d" "$d/stub/90kernel-network-modules"
	for f in /usr/lib/dracut/*; do
		[ "${f##*/}" = modules.d ] || ln -s "$f" "$d/"
	done
	for f in /usr/lib/dracut/modules.d/*; do
		[ "${f##*/}" = 90kernel-network-modules ] || ln -s "$f" "$d/modules.d/"
	done
	ln -s "$VM_TOP/dracut/95ccm" "$d/modules.d/95ccm"
	cat >"$d/stub/90kernel-network-modules/module-setup.sh" <<'EOF'
#!/bin/bash
# tests/boot: the lab's NIC is virtio-net only.
check() { return 255; }
depends() { return 0; }
installkernel() { instmods virtio_net af_packet; }
install() { return 0; }
EOF
	ln -s "$d/stub/90kernel-network-modules" "$d/modules.d/90kernel-network-modules"
	# 99ccmlab: the lab's own needs, in every image: the 9p share's modules,
	# loaded before the root is mounted.  Loaded later, by the real root's
	# init, they stalled the guest (TCG) long enough for the partner's rxe
	# queue pair to give up on it: the partner lost us at the transport.
	mkdir -p "$d/stub/99ccmlab"
	cat >"$d/stub/99ccmlab/module-setup.sh" <<'EOF'
#!/bin/bash
check() { return 255; }
depends() { return 0; }
installkernel() { hostonly="" instmods 9p 9pnet_virtio; }
install() { inst_hook pre-mount 10 "$moddir/load-9p.sh"; }
EOF
	printf '#!/bin/sh\nmodprobe -q 9pnet_virtio\nmodprobe -q 9p\n' >"$d/stub/99ccmlab/load-9p.sh"
	ln -s "$d/stub/99ccmlab" "$d/modules.d/99ccmlab"
}

# boot_dracut OUT [--ccm NODE] [--systemd]: one image.  With --ccm, the
# module and an /etc/ccm (ccm.conf for node 1 = a = 10.0.0.1 or 2 = b =
# 10.0.0.2, rdma, client fmon) as an administrator's host would have it.
# With --systemd, dracut's systemd modules: systemd is the initramfs' init
# (the module's ccm-early.service connects), network-legacy still brings the
# interface up from dracut's initqueue (dracut-initqueue.service).
boot_dracut() {
	local out=$1 node="" mods="base rootfs-block network network-legacy ccmlab" inc=() kver
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--ccm) node=$2; shift 2 ;;
		--systemd) mods="systemd systemd-initrd dracut-systemd $mods"; shift ;;
		*) boot_log "boot_dracut: unknown option $1"; return 2 ;;
		esac
	done
	kver=$(cat "$VM_DIR/kver")
	if [ -n "$node" ]; then
		local e=$BOOT_DIR/etc-ccm-$node me=10.0.0.$node peer=10.0.0.$((3 - node))
		rm -rf "$e"
		mkdir -p "$e/clients.d"
		boot_fmon_desc "$e/clients.d"
		# heartbeat-misses: 2 s instead of 0.5 s.  Under TCG, a keeper
		# was seen silent for 1.2 s while its guest switched root, and its
		# partner declared it lost (README of tests/boot).
		printf '# tests/boot: node %s\nnode-id = %s\nlisten = %s\npartner = %s\ntransport = rdma\nclients = /etc/ccm/clients.d\nheartbeat-misses = %s\n' \
			"$node" "$node" "$me" "$peer" "${BOOT_HB_MISSES:-20}" >"$e/ccm.conf"
		# Not in the initramfs: the keeper writes it once it is in the real
		# root (boot_mkroot makes it there).
		echo "metrics-dir = /var/lib/ccm-metrics" >>"$e/ccm.conf"
		# The same for a link's own heartbeat, where ccm-early has one
		# (its default, 10 ms x 3, took the link down in these guests).
		if "$BOOT_CCM_EARLY" connect --help 2>&1 | grep -q -- --link-misses; then
			printf 'link-heartbeat-ms = 100\nlink-misses = %s\n' "${BOOT_HB_MISSES:-20}" >>"$e/ccm.conf"
		fi
		# A named instance beside it (rd.ccm.instance=mirror brings it up):
		# tcp on port 7472 of the same interface, no clients.
		boot_instance_conf "$node" >"$e/mirror.conf"
		mods="$mods ccm"
		inc=(--include "$e" /etc/ccm)
	fi
	dracutbasedir=$BOOT_DIR/dracut CCM_EARLY_BIN=$BOOT_CCM_EARLY \
		dracut -q --conf /dev/null --confdir "$BOOT_DIR/dracut/conf.d" \
		--tmpdir "$BOOT_DIR" \
		--no-hostonly --no-hostonly-cmdline --kver "$kver" \
		--kmoddir "$VM_DIR/kernel/lib/modules/$kver" \
		-m "$mods" --add-drivers "virtio_pci virtio_blk virtio_net ext4 9p 9pnet_virtio" \
		"${inc[@]}" --no-compress --no-early-microcode --nofscks --force "$out"
}

# boot_instance_conf NODE: /etc/ccm/mirror.conf of node 1 (a) or 2 (b).
boot_instance_conf() {
	printf '# tests/boot: node %s, instance mirror\nnode-id = %s\nlisten = 10.0.0.%s:7472\npartner = 10.0.0.%s:7472\ntransport = tcp\nheartbeat-misses = %s\nlink-heartbeat-ms = 100\nlink-misses = %s\n' \
		"$1" "$1" "$1" "$((3 - $1))" "${BOOT_HB_MISSES:-20}" "${BOOT_HB_MISSES:-20}"
}

# boot_fmon_desc DIR: the client descriptor of fmon, in DIR.
boot_fmon_desc() {
	printf 'ports = 1\nport-size = 4K\n' >"$1/fmon.conf"
}

# boot_mkroot OUT.ext4 [--systemd]: the real root: static busybox, the
# static ccm-early and ccm-fmon of the tree, /sbin/init (root-init.sh), the
# 9p modules.  With --systemd, systemd is its init (boot_root_systemd).
boot_mkroot() {
	local out=$1 r=$BOOT_DIR/root a kver kroot kind path size=48M
	kver=$(cat "$VM_DIR/kver") kroot=$VM_DIR/kernel
	[ "${2:-}" = --systemd ] && r=$BOOT_DIR/root-sd size=96M
	rm -rf "$r"
	mkdir -p "$r"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,out,root,lib/ccmlab,var/lib/ccm-metrics}
	cp /bin/busybox "$r/bin/busybox"
	for a in $(/bin/busybox --list-full); do
		[ -e "$r/$a" ] || ln -s /bin/busybox "$r/$a"
	done
	cp "$BOOT_CCM_EARLY" "$r/usr/sbin/ccm-early"
	cp "$BOOT_CCM_FMON" "$r/usr/sbin/ccm-fmon"
	rm -f "$r/sbin/init"
	install -m 0755 "$BOOT_HERE/root-init.sh" "$r/sbin/init"
	: >"$r/lib/ccmlab/order"
	modprobe -d "$kroot" -S "$kver" --show-depends 9p | while read -r kind path _; do
		[ "$kind" = insmod ] || continue
		cp "$path" "$r/lib/ccmlab/"
		echo "${path##*/}" >>"$r/lib/ccmlab/order"
	done
	echo "ccm-lab" >"$r/etc/hostname"
	# systemctl switch-root refuses a root without an os-release ("does
	# not seem to be an OS tree"); dracut's own switch_root does not care.
	printf 'NAME="ccm boot lab"\nID=ccmlab\n' >"$r/etc/os-release"
	if [ "${2:-}" = --systemd ]; then
		boot_root_systemd "$r" || return 1
	fi
	rm -f "$out"
	mkfs.ext4 -q -F -L ccmroot -d "$r" "$out" "$size"
}

# boot_copy_elf ROOT FILE...: FILE and the shared libraries it needs (ldd),
# each at its own path under ROOT.
boot_copy_elf() {
	local r=$1 f lib
	shift
	for f in "$@"; do
		for lib in "$f" $(ldd "$f" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
			[ -e "$r$lib" ] && continue
			mkdir -p "$r$(dirname "$lib")"
			cp -L "$lib" "$r$lib"
		done
	done
}

# boot_root_systemd ROOT: systemd as the real root's init: systemctl
# switch-root execs /lib/systemd/systemd there, which takes over the
# initramfs' systemd state (its ccm-early.service, the keeper in its
# cgroup).  The default target starts the tree's handoff/ccm-fmon.service
# as it is, with a drop-in for where its log goes, ccmlab-report.service
# (root-init.sh as a service: the reports, then power-off) and journald,
# where the keeper logs once it is in the real root.  Taken from this
# machine's systemd, binaries and libraries (ldd).
boot_root_systemd() {
	local r=$1 u
	boot_copy_elf "$r" /lib/systemd/systemd /lib/systemd/systemd-shutdown "$(command -v systemctl)" \
		/lib/systemd/systemd-journald "$(command -v journalctl)"
	u=$r/etc/systemd/system
	mkdir -p "$u/ccm-fmon.service.d" "$r/etc/ccm/clients.d"
	# The initramfs' descriptors again: a keeper that restarts after
	# switch_root reads the real root's (ccm.conf is not read again).
	boot_fmon_desc "$r/etc/ccm/clients.d"
	: >"$r/etc/machine-id"
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\n' >"$r/etc/group"
	install -m 0644 "$VM_TOP/handoff/ccm-fmon.service" "$u/ccm-fmon.service"
	# The keeper's unit of the real root: it takes over the initramfs' unit
	# of the same name, and stops the keeper at the power-off.
	install -m 0644 "$VM_TOP/handoff/ccm-early.service" "$u/ccm-early.service"
	# And the template, which takes over the initramfs' ccm-early@mirror;
	# its condition wants the instance's file, as an administrator's root
	# has it (the same for both nodes: only the unit's condition reads it).
	install -m 0644 "$VM_TOP/handoff/ccm-early@.service" "$u/ccm-early@.service"
	boot_instance_conf 1 >"$r/etc/ccm/mirror.conf"
	# An administrator's settings: a drop-in and fmon.env.
	printf '[Service]\nStandardOutput=append:/run/ccm-fmon.log\nStandardError=inherit\n' \
		>"$u/ccm-fmon.service.d/lab.conf"
	printf 'CCM_FMON_ARGS=-v --interval 100 --dead-after 1000 --takeover /etc/ccm/takeover --giveback /etc/ccm/giveback\n' \
		>"$r/etc/ccm/fmon.env"
	for u in TAKEOVER GIVEBACK; do
		# shellcheck disable=SC2016 # expanded by the hook, in the guest
		printf '#!/bin/sh\necho "%s $CCM_FMON_REASON" >>/run/ccm-fmon.log\n' "$u" >"$r/etc/ccm/${u,,}"
		chmod 0755 "$r/etc/ccm/${u,,}"
	done
	u=$r/etc/systemd/system
	install -m 0755 "$BOOT_HERE/root-init.sh" "$r/usr/sbin/ccmlab-report"
	cat >"$u/ccmlab-report.service" <<-'EOF'
		[Unit]
		Description=ccm boot lab: reports to the host, then power-off
		DefaultDependencies=no
		After=ccm-fmon.service

		[Service]
		Type=simple
		ExecStart=/usr/sbin/ccmlab-report
		StandardOutput=tty
		StandardError=inherit
	EOF
	# The targets a unit with default dependencies names (Requires= and
	# After=sysinit.target, After=basic.target, Conflicts=shutdown.target):
	# without them systemd starts it once but cannot schedule its
	# Restart= job ("Unit sysinit.target not found").
	for t in sysinit basic shutdown umount final; do
		printf '[Unit]\nDescription=ccm boot lab: %s\nDefaultDependencies=no\n' "$t" >"$u/$t.target"
	done
	# A clean power-off (systemctl poweroff), as systemd's own units have
	# it: shutdown.target stops every unit that conflicts with it (those
	# with default dependencies: ccm-fmon, then ccm-early, by their order),
	# then systemd-shutdown kills what is left and powers off.
	printf '[Unit]\nDescription=ccm boot lab: power-off\nDefaultDependencies=no\nRequires=systemd-poweroff.service\nAfter=systemd-poweroff.service\nAllowIsolate=yes\n' \
		>"$u/poweroff.target"
	printf '[Unit]\nDescription=ccm boot lab: power-off\nDefaultDependencies=no\nRequires=shutdown.target umount.target final.target\nAfter=shutdown.target umount.target final.target\nSuccessAction=poweroff-force\n' \
		>"$u/systemd-poweroff.service"
	# The real root's journald is this machine's, units and all: the
	# initramfs' (dracut's copy of the same units) hands its sockets over
	# at switch_root, so that what the keeper sends before the new journald
	# runs waits in them (with units that differ, systemd drops the
	# sockets, and those entries with them).  Kept in /run; every entry
	# is also forwarded to the console: after b's power-off begins, the
	# console is the only way its lines leave the guest.
	mkdir -p "$r/etc/systemd"
	printf '[Journal]\nStorage=volatile\nForwardToConsole=yes\n' >"$r/etc/systemd/journald.conf"
	for j in systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket \
		systemd-journald-audit.socket; do
		cp "/lib/systemd/system/$j" "$u/$j"
	done
	cat >"$u/default.target" <<-'EOF'
		[Unit]
		Description=ccm boot lab: the real root
		Wants=systemd-journald.service ccm-fmon.service ccmlab-report.service
	EOF
}

# boot_prepare DIR: everything the guests need, in DIR (~20 s).
boot_prepare() {
	BOOT_DIR=$(mkdir -p "$1" && cd "$1" && pwd)
	"$BOOT_HERE/setup.sh" || return 1
	[ -x "$VM_TOP/ccm-early" ] && [ -x "$VM_TOP/ccm-fmon" ] ||
		(cd "$VM_TOP" && make ccm-early ccm-fmon >&2) || return 1
	boot_dracut_tree "$BOOT_DIR/dracut"
	boot_dracut "$BOOT_DIR/ccm-a.img" --ccm 1 || return 1
	boot_dracut "$BOOT_DIR/ccm-b.img" --ccm 2 || return 1
	boot_dracut "$BOOT_DIR/plain.img" || return 1
	boot_dracut "$BOOT_DIR/ccm-sd-a.img" --ccm 1 --systemd || return 1
	boot_dracut "$BOOT_DIR/ccm-sd-b.img" --ccm 2 --systemd || return 1
	boot_mkroot "$BOOT_DIR/root.ext4" || return 1
	boot_mkroot "$BOOT_DIR/root-sd.ext4" --systemd || return 1
}

# boot_net: new UDP ports for the one a<->b link.
boot_net() {
	_boot_ports=$(vm_free_udp_ports 2)
}

# boot_guest ROLE NAME INITRD SHARE APPEND [ROOT]: see the top.  The guest
# gets its own copy of the root disk ROOT (default root.ext4; NAME.ext4 in
# BOOT_DIR).
boot_guest() {
	local role=$1 name=$2 initrd=$3 share=$4 append=$5 root=${6:-root.ext4} pl pr mac pid
	# shellcheck disable=SC2086
	set -- $_boot_ports
	if [ "$role" = a ]; then pl=$1 pr=$2 mac=52:54:00:cc:00:01; else pl=$2 pr=$1 mac=52:54:00:cc:00:02; fi
	cp --sparse=always "$BOOT_DIR/$root" "$BOOT_DIR/$name.ext4"
	rm -f "$share/$name".*
	[ -n "$VM_RUNDIR" ] || VM_RUNDIR=$(mktemp -d /tmp/ccmboot.XXXXXX)
	setpriv --pdeathsig KILL \
		timeout -k 5 "$BOOT_TIMEOUT" \
		setpriv --pdeathsig KILL \
		"$VM_QEMU" -nodefaults -no-user-config -accel tcg -cpu max \
		-m "$BOOT_MEM" -smp 1 -display none -no-reboot \
		-serial "file:$share/$name.serial" \
		-monitor "unix:$VM_RUNDIR/$name.mon,server,nowait" \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		-virtfs "local,path=$share,mount_tag=out,security_model=none" \
		-drive "file=$BOOT_DIR/$name.ext4,format=raw,if=virtio" \
		-netdev "dgram,id=n0,local.type=inet,local.host=127.0.0.1,local.port=$pl,remote.type=inet,remote.host=127.0.0.1,remote.port=$pr" \
		-device "virtio-net-pci,netdev=n0,mac=$mac" \
		-kernel "$VM_KERNEL" -initrd "$initrd" \
		-append "console=ttyS0 panic=-1 rd.shell=0 root=/dev/vda rootfstype=ext4 rw net.ifnames=0 boot_name=$name $append" \
		</dev/null >"$share/$name.qemu" 2>&1 &
	pid=$!
	VM_PIDS="$VM_PIDS $name:$pid"
	VM_ROLES="$VM_ROLES $name"
	eval "BOOT_T0_$name=\$(date +%s.%N)"
}

# boot_wait_file FILE SECS
boot_wait_file() {
	local end=$(($(date +%s) + $2))
	while [ ! -e "$1" ]; do
		[ "$(date +%s)" -ge "$end" ] && return 1
		_vm_running || return 1
		sleep 0.2
	done
}

# boot_wait_guests SECS: wait for every guest to exit; reap them.
boot_wait_guests() {
	local end=$(($(date +%s) + $1)) e
	while _vm_running; do
		[ "$(date +%s)" -ge "$end" ] && { boot_log "guests still running after $1 s"; vm_kill_all; return 1; }
		sleep 0.2
	done
	for e in $VM_PIDS; do wait "${e#*:}" 2>/dev/null; done
	return 0
}

# boot_val FILE KEY: KEY=VALUE (or KEY='VALUE') from a report file.
boot_val() {
	sed -n "s/^$2=//p" "$1" 2>/dev/null | head -1 | sed "s/^'\(.*\)'\$/\1/"
}

# boot_tail NAME SHARE: the end of a guest's serial console.
boot_tail() {
	echo "---- $1: serial, last lines ----"
	tail -n "${BOOT_TAIL_LINES:-30}" "$2/$1.serial" 2>/dev/null | tr -d '\r'
	[ -s "$2/$1.qemu" ] && { echo "---- $1: qemu ----"; tail -5 "$2/$1.qemu"; }
	echo "----"
}
