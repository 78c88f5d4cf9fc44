#!/bin/bash
# tests/vm/run-guests.sh - boot the RDMA lab's guests on a scenario script.
#
#   tests/vm/run-guests.sh [options] veth|dgram SCRIPT
#     --share DIR        the guests' /out (default: a new build/vm/runs/...)
#     --links N          dgram: links per guest (default 1)
#     --delay-b SECS     dgram: start guest b SECS after guest a
#     --timeout SECS     per guest (default $VM_TIMEOUT, 120)
#     --append 'k=v ..'  more kernel command line words (scenario env vars)
#     --mem SIZE --smp N qemu sizes (default 256M; smp 2 veth, 1 dgram)
#     --build            rebuild the initramfs first (setup.sh included)
#     --add SRC:DST      extra file for the initramfs (implies --build)
#     --monitor 'SECS ROLE CMD'  send CMD to ROLE's qemu monitor SECS after
#                        guest a started (repeatable; e.g. '8 a set_link n0 off')
#
# Exits 0 when every guest ran SCRIPT and it exited 0; else non-zero with
# the failed guests' serial and log tails on stderr. Every qemu is killed
# on every exit path (including SIGINT/SIGTERM of this script).
set -u
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

share="" opts=() build=0 adds=() mons=()
while [ $# -gt 0 ]; do
	case $1 in
	--share) share=$2; shift 2 ;;
	--links | --delay-b | --timeout | --append | --mem | --smp) opts+=("$1" "$2"); shift 2 ;;
	--build) build=1; shift ;;
	--add) adds+=(--add "$2"); build=1; shift 2 ;;
	--monitor) mons+=("$2"); shift 2 ;;
	-h | --help) sed -n '2,/^$/s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "run-guests: unknown option $1" >&2; exit 2 ;;
	*) break ;;
	esac
done
[ $# -eq 2 ] || { echo "usage: $0 [options] veth|dgram SCRIPT" >&2; exit 2; }
topo=$1 script=$2

trap 'vm_kill_all; exit 130' INT
trap 'vm_kill_all; exit 143' TERM
trap 'vm_kill_all' EXIT

if [ "$build" = 1 ] || [ ! -f "$VM_INITRD" ]; then
	vm_prepare "${adds[@]}" || exit 1
fi
if [ -z "$share" ]; then
	share=$VM_DIR/runs/$(date +%Y%m%d-%H%M%S)-$$
fi
mkdir -p "$share"
vm_start "$topo" "$share" "$script" "${opts[@]}" || exit 1
t0=$(date +%s)
for m in "${mons[@]}"; do
	read -r at role cmd <<<"$m"
	while [ $(($(date +%s) - t0)) -lt "$at" ]; do
		[ "${_vm_b_pending:-0}" = 1 ] && [ "$(date +%s)" -ge "${_vm_b_at:-0}" ] && vm_start_b
		sleep 0.1
	done
	echo "run-guests: monitor $role: $cmd" >&2
	vm_monitor "$role" "$cmd"
done
vm_wait
rc=$?
for r in $VM_ROLES; do
	eval "echo \"run-guests: guest $r: qemu \$VM_QEMU_RC_$r, scenario \$VM_RC_$r, \${VM_SECS_$r}s\"" >&2
done
echo "run-guests: results in $share" >&2
exit $rc
