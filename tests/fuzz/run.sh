#!/usr/bin/env bash
# run.sh DIR SECONDS: run every fuzz target in DIR for SECONDS each, keeping
# each target's corpus in DIR/corpus/NAME so later runs start where this one
# stopped; tests/fuzz/seeds/NAME (minimised with -merge=1) is read as well.
# Exits non-zero on the first crash, leaving the crashing input.
set -eu
dir=$1 secs=$2
for bin in "$dir"/fuzz_*; do
	[ -x "$bin" ] || continue
	name=$(basename "$bin")
	mkdir -p "$dir/corpus/$name" "$dir/crashes"
	seeds="$(dirname "$0")/seeds/$name"
	[ -d "$seeds" ] || seeds="$dir/corpus/$name"
	echo "== $name for ${secs}s"
	"$bin" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$dir/crashes/$name-" "$dir/corpus/$name" \
		"$seeds" 2>&1 |
		grep -E 'stat::number_of_executed_units|ERROR|SUMMARY|Test unit written' || true
	if ls "$dir/crashes/$name-"* >/dev/null 2>&1; then
		echo "$name: crash; inputs in $dir/crashes/" >&2
		exit 1
	fi
done
