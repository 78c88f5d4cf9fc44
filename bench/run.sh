#!/bin/bash
# Run the benchmarks, each under a header: the tcp handshake against the
# ccm-early binary $CCM (default ./ccm-early; extra arguments in $BENCH_ARGS,
# e.g. BENCH_ARGS="-n 100 -k"), then the rdma ones in a lab guest.
# A benchmark that fails does not stop the others; the exit status is 1 if
# any failed.
set -eu

# A CCM given by the caller is relative to the caller's directory.
if [ -n "${CCM:-}" ]; then
	CCM=$(readlink -f -- "$CCM" || echo "$CCM")
fi
cd "$(dirname "$0")/.."
CCM=${CCM:-./ccm-early}
BENCH_DIR=${BENCH_DIR:-build/bench}
BENCH_ARGS=${BENCH_ARGS:-}

if [ ! -x "$CCM" ]; then
	echo "bench/run.sh: $CCM is not an executable (set CCM=path/to/ccm-early)" >&2
	exit 1
fi

failed=0
# The product's processes (keepers, clients): a benchmark must leave none
# behind, or every later figure would pay for them.
our_pids() {
	pgrep -f '^([^ ]*/)?@?ccm-(early|fmon|nvmirror|stream)( |$)' | sort
}
before=$(our_pids)
# bench NAME CMD...: run one benchmark under a header; a failure is noted
# and the others still run.
bench() {
	echo "=== $1 ==="
	shift
	if ! "$@"; then
		echo "=== FAILED: $* ===" >&2
		failed=1
	fi
	echo
}

# shellcheck disable=SC2086 # BENCH_ARGS is a list of words
bench "handshake over tcp on loopback ($CCM)" "$BENCH_DIR/handshake" $BENCH_ARGS "$CCM"
bench "keeper: messages between clients, detection of a frozen partner" bench/keeper.sh
bench "links: failover time of a cut link, two links against one, with 16 to 256 ports (tcp, needs root)" bench/failover.sh
# The rdma figures come from a lab guest (tests/vm), which runs the tree's
# static ./ccm-early.
# The most ports a node may have (CCM_PORTS_TOTAL), against the run above.
# shellcheck disable=SC2086
bench "handshake over tcp, 32 clients x 8 ports" "$BENCH_DIR/handshake" $BENCH_ARGS -c 32 -p 8 "$CCM"
# The cost of the pre-shared key: the tcp figures again with one.
keydir=$(mktemp -d)
trap 'rm -rf "$keydir"' EXIT
"$CCM" keygen "$keydir/key" >/dev/null
# shellcheck disable=SC2086
bench "handshake over tcp, with a pre-shared key" "$BENCH_DIR/handshake" $BENCH_ARGS -K "$CCM"
bench "keeper, with a pre-shared key" env BENCH_PSK="$keydir/key" bench/keeper.sh
bench "links, with a pre-shared key (needs root)" env BENCH_PSK="$keydir/key" PARTS="failover throughput" bench/failover.sh
bench "rdma in a Soft-RoCE guest (handshake, port window write and read)" bench/rdma.sh
sleep 1
left=$(comm -13 <(printf '%s\n' "$before") <(our_pids) | sed '/^$/d')
if [ -n "$left" ]; then
	for p in $left; do
		echo "bench/run.sh: left behind: $(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null)" >&2
		kill -9 "$p" 2>/dev/null
	done
	echo "=== FAILED: the benchmarks left $(echo "$left" | wc -l) process(es) running ===" >&2
	failed=1
fi
exit "$failed"
