#!/usr/bin/env bash
# sweep.sh SIM SEEDS [FIRST]: run SEEDS seeds of the simulator, split over
# the machine's cores, and print one summary: seeds per second, simulated
# hours, every failing seed with its replay command, and "N passed, N failed".
set -u
sim=$1 seeds=$2 first=${3:-1}
jobs=$(nproc 2>/dev/null || echo 1)
[ "$seeds" -lt "$jobs" ] && jobs=1
logs=build/sim-logs
mkdir -p "$logs"
per=$(( (seeds + jobs - 1) / jobs ))
start=$(date +%s%N)
pids=()
for ((j = 0; j < jobs; j++)); do
	from=$(( first + j * per ))
	n=$per
	[ $(( from + n )) -gt $(( first + seeds )) ] && n=$(( first + seeds - from ))
	[ "$n" -le 0 ] && continue
	"$sim" --first "$from" --seeds "$n" >"$logs/part$j.out" 2>"$logs/part$j.err" &
	pids+=($!)
done
rc=0
for p in "${pids[@]}"; do wait "$p" || rc=1; done
ms=$(( ($(date +%s%N) - start) / 1000000 ))
[ "$ms" -gt 0 ] || ms=1
cat "$logs"/part*.out | grep -v '^sim: seeds\|passed,.*failed$' | grep -v '^ok '
passed=$(cat "$logs"/part*.out | awk '/^[0-9]+ passed, [0-9]+ failed$/ { p += $1 } END { print p + 0 }')
failed=$(cat "$logs"/part*.out | awk '/^[0-9]+ passed, [0-9]+ failed$/ { f += $3 } END { print f + 0 }')
echo "sweep: $seeds seeds on $jobs core(s) in $((ms / 1000)).$(( ms % 1000 / 100 )) s:" \
	"$(( seeds * 1000 / ms )) seeds/s"
if [ "$failed" -ne 0 ]; then
	echo "sweep: failing seeds' traces are in $logs/part*.err"
	grep -h 'replay:' "$logs"/part*.err
fi
[ $((passed + failed)) -eq "$seeds" ] || { echo "sweep: a part died: $((passed + failed)) of $seeds seeds reported"; rc=1; }
echo "$passed passed, $failed failed"
exit $rc
