#!/bin/bash
# Run every benchmark in build/bench/ against the ccm-early binary $CCM
# (default ./ccm-early), each under a header.  Extra arguments for every
# benchmark may be given in $BENCH_ARGS (e.g. BENCH_ARGS="-n 100 -k").
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
found=0
for b in "$BENCH_DIR"/*; do
	if [ ! -f "$b" ] || [ ! -x "$b" ]; then
		continue
	fi
	found=$((found + 1))
	echo "=== $(basename "$b") ($CCM) ==="
	# shellcheck disable=SC2086 # BENCH_ARGS is a list of words
	if ! "$b" $BENCH_ARGS "$CCM"; then
		echo "=== $(basename "$b"): FAILED ===" >&2
		failed=1
	fi
	echo
done
if [ "$found" -eq 0 ]; then
	echo "bench/run.sh: no benchmark in $BENCH_DIR (make bench builds them)" >&2
	exit 1
fi
exit "$failed"
