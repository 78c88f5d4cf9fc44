#!/usr/bin/env bash
# bench/rdma.sh: the rdma benchmarks, run inside one lab guest (two rxe
# devices on a veth pair, tests/vm) in one invocation, each against its
# reference measured in the same guest:
#   handshake   ccm-early pair, both up -> both handed off, over rdma,
#               against rping's client run (one rdma_cm connect, one ping);
#               then again with a pre-shared key (what the key costs)
#   write       one-sided WRITE ping-pong into the partner's port window
#               through ccm-early's transport and ports (portping), against
#               ib_write_lat on the same rxe pair (both half a round trip)
#   read        one-sided READ of the partner's port window (portping),
#               against ib_read_lat
# Goals: handshake ratio <= 2; write and read ratios <= 1.2.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/tests/vm/lib.sh"
SIZE=${SIZE:-64} ITERS=${ITERS:-1000} RUNS=${RUNS:-10}

[ -x "$top/build/bench/handshake" ] && [ -x "$top/build/bench/portping" ] ||
	{ echo "bench/rdma.sh: build the benchmarks first (make bench)" >&2; exit 1; }
"$top/tests/vm/setup.sh" >&2
share=$(mktemp -d /tmp/ccm-bench-rdma.XXXXXX)
VM_INITRD=$share/lab.cpio
export VM_INITRD
trap 'vm_kill_all; rm -rf "$share"' EXIT INT TERM
vm_prepare --add "$top/build/bench/portping:/usr/bin/portping" \
	--add "$top/build/bench/handshake:/usr/bin/bench-handshake" >&2

cat >"$share/s.sh" <<EOS
. "\$LAB_LIB"
set -e
bench-handshake -n $RUNS -t rdma -a 10.0.0.1 -b 10.0.0.2 -r "\$(command -v rping)" "\$CCM" > /out/handshake.txt 2>&1
bench-handshake -n $RUNS -t rdma -a 10.0.0.1 -b 10.0.0.2 -r "\$(command -v rping)" -K "\$CCM" > /out/handshake-key.txt 2>&1
for op in write read; do
	ib_\${op}_lat -d rxe0 -x "\$ccm_gid_index" -s $SIZE -n $ITERS -F > /out/ib_\$op.srv 2>&1 &
	lab_wait_listen 18515
	ib_\${op}_lat -d rxe1 -x "\$ccm_gid_index" -s $SIZE -n $ITERS -F 10.0.0.1 > /out/ib_\$op.txt 2>&1
	wait \$!
	portping --node 1 --local 10.0.0.1 --partner 10.0.0.2 --size $SIZE --iters $ITERS \$op-lat > /out/pp_\$op.txt 2>&1 &
	portping --node 2 --local 10.0.0.2 --partner 10.0.0.1 --size $SIZE --iters $ITERS \$op-lat > /out/pp_\$op.2 2>&1
	wait \$!
done
EOS
vm_run veth "$share" "$share/s.sh" --timeout 300 >&2 || { cat "$share"/*.txt >&2 2>/dev/null; exit 1; }

cat "$share/handshake.txt"
echo "# with a pre-shared key (keyed greeting, proof, the OPEN, every message sealed):"
cat "$share/handshake-key.txt"
# perftest's result line: bytes iterations t_min t_max t_typical ...
typical() { awk '$1 == '"$SIZE"' && NF >= 5 { print $5; exit }' "$1"; }
for op in write read; do
	ib=$(typical "$share/ib_$op.txt")
	pp=$(awk '/^portping/ { for (i = 1; i <= NF; i++) if ($i == "median") { print $(i + 1); exit } }' \
		"$share/pp_$op.txt")
	[ -n "$ib" ] && [ -n "$pp" ] || { echo "bench/rdma.sh: no $op figures" >&2;
		cat "$share/ib_$op.txt" "$share/pp_$op.txt" >&2; exit 1; }
	# A figure is a finite number above 0, or the measurement failed: never
	# a ratio printed from "inf" or 0.
	awk -v op="$op" -v ib="$ib" -v pp="$pp" -v size="$SIZE" 'BEGIN {
		if (ib !~ /^[0-9]+(\.[0-9]+)?$/ || pp !~ /^[0-9]+(\.[0-9]+)?$/ || ib + 0 <= 0 || pp + 0 <= 0) {
			printf "bench/rdma.sh: %s: no usable figure (ib_%s_lat \"%s\", portping \"%s\")\n",
				op, op, ib, pp > "/dev/stderr"
			exit 1
		}
		printf "%s %d bytes: ccm-early port window median %.2f us, ib_%s_lat typical %.2f us, ratio %.2f (goal <= 1.2)\n",
			op, size, pp, op, ib, pp / ib }' || { cat "$share/ib_$op.txt" >&2; failed=1; }
done
exit "${failed:-0}"
