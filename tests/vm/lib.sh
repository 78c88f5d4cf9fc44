# tests/vm/lib.sh - the RDMA lab harness: qemu guests with Soft-RoCE.
# Source it (bash). See tests/vm/README.md for the whole picture.
#
#   vm_available                  0 when qemu and the lab's kernel are there
#   vm_prepare [--add SRC:DST]... setup.sh + the initramfs ($VM_INITRD)
#   vm_run TOPO SHARE SCRIPT [--links N] [--delay-b SECS] [--timeout SECS]
#          [--append 'k=v ...'] [--mem SIZE] [--smp N]
#                                 boot the guests (veth: a; dgram: a and b),
#                                 wait for them, check them (vm_wait)
#   vm_start TOPO SHARE SCRIPT [same options]
#                                 the same without waiting: returns at once
#                                 (guest b, if delayed, is started by vm_wait
#                                 or vm_start_b); then vm_monitor, vm_wait
#   vm_monitor ROLE 'CMD'         a qemu monitor command (e.g. set_link n0 off)
#   vm_freeze ROLE stop|cont      freeze a guest (SIGSTOP of its qemu), thaw it
#   vm_set_link ROLE LINK on|off  dgram: connect or cut link LINK at ROLE's
#                                 end (its netdev nLINK; the NIC is nicLINK)
#   vm_wait                       wait for every guest, kill what is left,
#                                 return 0 only if every guest ran its
#                                 scenario and wrote ROLE.rc = 0; else print
#                                 each failed guest's serial and log tails
#   vm_kill_all                   kill every guest (safe to call any time)
#
# Call vm_start/vm_run from the main shell, never inside $(...) or a pipe:
# each qemu is tied to the shell that started it (PR_SET_PDEATHSIG through
# setpriv, around timeout and around qemu), so a harness killed even by
# SIGKILL takes its guests with it. A sourcing script should still call
# vm_kill_all from its EXIT/INT/TERM handling (test_lab.sh does it from
# tearDown, which shunit2 also runs on INT and TERM).
#
# Files in SHARE (the guests' /out): ROLE.serial (serial console, CRLF),
# ROLE.log (the scenario's output), ROLE.rc (its exit status).

VM_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VM_DIR=$VM_TOP/build/vm
VM_KERNEL=$VM_DIR/vmlinux
: "${VM_INITRD:=$VM_DIR/lab.cpio}"
: "${VM_QEMU:=qemu-system-x86_64}"
: "${VM_TIMEOUT:=120}"       # seconds for one guest, boot to power-off
: "${VM_MEM:=256M}"
VM_PIDS=""                   # "role:pid ..." of the guests now running
VM_ROLES=""
VM_RUNDIR=""                 # monitor sockets (short path: sun_path is 108 bytes)

vm_log() { echo "vm: $*" >&2; }

vm_available() {
	command -v "$VM_QEMU" >/dev/null 2>&1 && [ -f "$VM_KERNEL" ] &&
		[ -f "$VM_DIR/stamp" ]
}

# vm_prepare [--add SRC:DST ...]: make sure the kernel is there and build
# $VM_INITRD (with the current static ccm-early and the given extra files).
vm_prepare() {
	"$VM_TOP/tests/vm/setup.sh" || return 1
	"$VM_TOP/tests/vm/mkinitramfs.sh" "$VM_INITRD" "$@"
}

# Free UDP ports on 127.0.0.1, N of them, chosen by the kernel (so that
# concurrent runs do not clash), printed on one line.
vm_free_udp_ports() {
	python3 - "$1" <<'EOF'
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}

# vm_boot ROLE: start one guest in the background from the vm_start
# settings (_vm_*). Not for direct use.
vm_boot() {
	local role=$1 smp=$_vm_smp net=() i pl pr words pid
	if [ "$_vm_topo" = dgram ]; then
		for ((i = 0; i < _vm_links; i++)); do
			# shellcheck disable=SC2086
			set -- $_vm_ports
			shift $((2 * i))
			if [ "$role" = a ]; then pl=$1 pr=$2; else pl=$2 pr=$1; fi
			net+=(-netdev "dgram,id=n$i,local.type=inet,local.host=127.0.0.1,local.port=$pl,remote.type=inet,remote.host=127.0.0.1,remote.port=$pr"
				-device "virtio-net-pci,id=nic$i,netdev=n$i,mac=52:54:00:cc:$(printf %02x "$i"):0$([ "$role" = a ] && echo 1 || echo 2)")
		done
	fi
	words="console=ttyS0 panic=-1 quiet role=$role topo=$_vm_topo links=$_vm_links ccm_script=$_vm_script $_vm_append"
	rm -f "$_vm_share/$role.rc" "$_vm_share/$role.log" "$_vm_share/$role.serial" "$_vm_share/$role.qemu"
	# setpriv ties timeout to this shell, and qemu to timeout.
	setpriv --pdeathsig KILL \
		timeout -k 5 "$_vm_timeout" \
		setpriv --pdeathsig KILL \
		"$VM_QEMU" -nodefaults -no-user-config -accel tcg -cpu max \
		-m "$_vm_mem" -smp "$smp" -display none -no-reboot \
		-serial "file:$_vm_share/$role.serial" \
		-monitor "unix:$VM_RUNDIR/$role.mon,server,nowait" \
		-device isa-debug-exit,iobase=0xf4,iosize=4 \
		-virtfs "local,path=$_vm_share,mount_tag=out,security_model=none" \
		"${net[@]}" \
		-kernel "$VM_KERNEL" -initrd "$VM_INITRD" -append "$words" \
		</dev/null >"$_vm_share/$role.qemu" 2>&1 &
	pid=$!
	VM_PIDS="$VM_PIDS $role:$pid"
	VM_ROLES="$VM_ROLES $role"
	eval "VM_START_$role=\$(date +%s.%N) VM_END_$role="
}

# vm_start TOPO SHARE SCRIPT [options]: see the top of this file.
vm_start() {
	[ $# -ge 3 ] || { vm_log "usage: vm_start TOPO SHARE SCRIPT [options]"; return 2; }
	_vm_topo=$1 _vm_share=$(cd "$2" && pwd) _vm_links=1 _vm_delay=0
	local script=$3
	_vm_timeout=$VM_TIMEOUT _vm_append="" _vm_mem=$VM_MEM _vm_smp=""
	shift 3
	while [ $# -gt 0 ]; do
		case $1 in
		--links) _vm_links=$2; shift 2 ;;
		--delay-b) _vm_delay=$2; shift 2 ;;
		--timeout) _vm_timeout=$2; shift 2 ;;
		--append) _vm_append=$2; shift 2 ;;
		--mem) _vm_mem=$2; shift 2 ;;
		--smp) _vm_smp=$2; shift 2 ;;
		*) vm_log "vm_start: unknown option $1"; return 2 ;;
		esac
	done
	case $_vm_topo in
	veth) : "${_vm_smp:=2}" ;;
	dgram) : "${_vm_smp:=1}" ;;
	*) vm_log "vm_start: topology must be veth or dgram, not $_vm_topo"; return 2 ;;
	esac
	vm_available || { vm_log "no qemu or no lab kernel: run tests/vm/setup.sh"; return 1; }
	[ -f "$VM_INITRD" ] || { vm_log "no initramfs $VM_INITRD: run vm_prepare"; return 1; }
	# The scenario, as the guest sees it (/out is the share).
	if [ "$(cd "$(dirname "$script")" && pwd)" != "$_vm_share" ]; then
		cp "$script" "$_vm_share/" || return 1
	fi
	_vm_script=/out/$(basename "$script")
	vm_kill_all
	VM_RUNDIR=$(mktemp -d /tmp/ccmvm.XXXXXX)
	VM_PIDS="" VM_ROLES=""
	[ "$_vm_topo" = dgram ] && _vm_ports=$(vm_free_udp_ports $((2 * _vm_links)))
	vm_boot a
	_vm_b_pending=0
	if [ "$_vm_topo" = dgram ]; then
		if [ "$_vm_delay" = 0 ]; then vm_boot b; else _vm_b_pending=1 _vm_b_at=$(($(date +%s) + _vm_delay)); fi
	fi
	return 0
}

# vm_start_b: start a delayed guest b now (vm_wait does it when it is due).
vm_start_b() {
	[ "${_vm_b_pending:-0}" = 1 ] || return 0
	_vm_b_pending=0
	vm_boot b
}

# vm_monitor ROLE CMD...: send one command to ROLE's qemu monitor; prints
# the monitor's answer.
vm_monitor() {
	local role=$1
	shift
	python3 - "$VM_RUNDIR/$role.mon" "$*" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.settimeout(2)
def until_prompt():
    buf = b""
    end = time.time() + 5
    while b"(qemu)" not in buf and time.time() < end:
        try:
            d = s.recv(4096)
        except socket.timeout:
            break
        if not d:
            break
        buf += d
    return buf
until_prompt()
s.sendall(sys.argv[2].encode() + b"\n")
out = until_prompt().decode(errors="replace")
# The answer: what follows the echoed command, before the next prompt.
lines = [l for l in out.replace("\r", "").split("\n") if l and "(qemu)" not in l and "\x1b" not in l]
print("\n".join(lines))
EOF
}

# vm_set_link ROLE LINK on|off: set_link on link LINK's netdev at ROLE's
# end. qemu drops every frame to and from that NIC while it is off, and the
# guest sees its carrier go; the partner's NIC keeps its carrier, as with a
# cable cut beyond the near switch. 1 when the monitor answered anything
# (set_link is silent when it worked).
vm_set_link() {
	local out
	out=$(vm_monitor "$1" "set_link n$2 $3") || return 1
	[ -z "$out" ] || { vm_log "set_link n$2 $3 on $1: $out"; return 1; }
}

# vm_freeze ROLE stop|cont: stop ROLE's qemu process (SIGSTOP), or let it
# go on (SIGCONT). The whole guest, kernel and Soft-RoCE included, stands
# still while its clock runs on: a VM its hypervisor does not schedule, or
# a host that starves it. (The monitor's `stop` stops the guest's clock
# too, so the guest would not know it had been away.)
vm_freeze() {
	local p
	# The pid kept is timeout(1)'s (setpriv execs it); qemu is its child.
	p=$(pgrep -P "$(_vm_pid "$1")" | head -1)
	[ -n "$p" ] && grep -q qemu "/proc/$p/comm" 2>/dev/null ||
		{ vm_log "vm_freeze: no qemu process for guest $1"; return 1; }
	case $2 in
	stop) kill -STOP "$p" ;;
	cont) kill -CONT "$p" ;;
	*) vm_log "vm_freeze: stop or cont, not $2"; return 2 ;;
	esac
}

# _vm_pid ROLE: the pid of ROLE's guest.
_vm_pid() {
	local e
	for e in $VM_PIDS; do [ "${e%%:*}" = "$1" ] && { echo "${e#*:}"; return 0; }; done
	return 1
}

_vm_running() {
	local e
	for e in $VM_PIDS; do kill -0 "${e#*:}" 2>/dev/null && return 0; done
	return 1
}

# vm_kill_all: TERM every guest (timeout passes it on to qemu), KILL what
# is still there a second later, reap them.
vm_kill_all() {
	local e pid n=0
	_vm_b_pending=0
	for e in $VM_PIDS; do kill -TERM "${e#*:}" 2>/dev/null; done
	while _vm_running && [ $n -lt 20 ]; do sleep 0.05; n=$((n + 1)); done
	for e in $VM_PIDS; do
		pid=${e#*:}
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	VM_PIDS=""
	[ -n "$VM_RUNDIR" ] && rm -rf "$VM_RUNDIR"
	VM_RUNDIR=""
	return 0
}

# vm_tail ROLE: the end of a guest's serial console and scenario log.
vm_tail() {
	echo "---- guest $1: serial ($_vm_share/$1.serial), last lines ----"
	tail -n "${VM_TAIL_LINES:-40}" "$_vm_share/$1.serial" 2>/dev/null | tr -d '\r'
	if [ -s "$_vm_share/$1.qemu" ]; then
		echo "---- guest $1: qemu's own output ----"
		tail -n 20 "$_vm_share/$1.qemu"
	fi
	echo "----"
}

# vm_wait: wait for every guest (starting a delayed b when due), then check.
# Sets VM_QEMU_RC_ROLE, VM_RC_ROLE (scenario status or "none") and
# VM_SECS_ROLE (wall seconds from qemu start to exit).
vm_wait() {
	local e role pid rc rc2 bad=0 end
	end=$(($(date +%s) + _vm_timeout + _vm_delay + 10))
	while :; do
		if [ "${_vm_b_pending:-0}" = 1 ] && [ "$(date +%s)" -ge "$_vm_b_at" ]; then
			vm_start_b
		fi
		for e in $VM_PIDS; do
			role=${e%%:*}
			kill -0 "${e#*:}" 2>/dev/null || eval ": \"\${VM_END_$role:=\$(date +%s.%N)}\""
		done
		if ! _vm_running && [ "${_vm_b_pending:-0}" = 0 ]; then break; fi
		if [ "$(date +%s)" -gt "$end" ]; then break; fi
		sleep 0.1
	done
	for e in $VM_PIDS; do
		role=${e%%:*} pid=${e#*:}
		if kill -0 "$pid" 2>/dev/null; then
			rc=124
			kill -KILL "$pid" 2>/dev/null
			wait "$pid" 2>/dev/null
		else
			wait "$pid"
			rc=$?
		fi
		eval "VM_QEMU_RC_$role=$rc"
		eval "VM_SECS_$role=\$(awk -v a=\"\$VM_START_$role\" -v b=\"\${VM_END_$role:-\$(date +%s.%N)}\" 'BEGIN { printf \"%.1f\", b - a }')"
		if [ -f "$_vm_share/$role.rc" ]; then
			eval "VM_RC_$role=\$(cat \"\$_vm_share/\$role.rc\")"
		else
			eval "VM_RC_$role=none"
		fi
		eval "rc2=\$VM_RC_$role"
		if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
			vm_log "guest $role timed out after ${_vm_timeout}s"
		elif [ "$rc" = 199 ]; then
			vm_log "guest $role failed to set up (see its serial log)"
		elif [ "$rc" != 0 ]; then
			vm_log "guest $role: qemu exited $rc"
		fi
		if [ "$rc" != 0 ] || [ "$rc2" != 0 ]; then
			[ "$rc" = 0 ] && vm_log "guest $role: scenario exited $rc2"
			bad=1
			vm_tail "$role" >&2
			if [ -s "$_vm_share/$role.log" ]; then
				echo "---- guest $role: scenario log, last lines ----" >&2
				tail -n "${VM_TAIL_LINES:-40}" "$_vm_share/$role.log" >&2
				echo "----" >&2
			fi
		fi
	done
	vm_kill_all
	return $bad
}

# vm_run TOPO SHARE SCRIPT [options]: vm_start, then vm_wait.
vm_run() {
	vm_start "$@" || { vm_kill_all; return 1; }
	vm_wait
}
