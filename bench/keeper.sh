#!/usr/bin/env bash
# bench/keeper.sh: the keeper's figures, each beside a reference measured in
# the same run, with the static binaries (make):
#   messages   round trips between two clients through their ports (each
#              client -> its keeper -> the partner's keeper -> its client),
#              against round trips over one raw TCP connection between two
#              processes; goal ratio <= 1.3
#   throughput messages per second streamed from one client to the other
#              through a port (within its window: 64 in flight), against
#              the same over a raw TCP connection; both from the first
#              message to the receiver's answer that it has them all
#   detection  from a partner's keeper frozen (SIGSTOP: its sockets stay
#              open, so only the heartbeat can tell) to our client hearing
#              "partner lost", against the configured bound
#              (heartbeat-ms x heartbeat-misses)
# BENCH_PSK=FILE gives both keepers that pre-shared key (its cost).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
CCM=${CCM:-$top/ccm-early}
PING=$top/build/bench/msgping
HB_MS=${HB_MS:-100} HB_MISSES=${HB_MISSES:-5} ITERS=${ITERS:-2000} STREAM_N=${STREAM_N:-50000}
[ -x "$CCM" ] && [ -x "$PING" ] || { echo "bench/keeper.sh: make ccm-early bench first" >&2; exit 1; }
tmp=$(mktemp -d /dev/shm/ccm-bench-keeper.XXXXXX)
port=$(( 24000 + $$ % 5000 ))
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -CONT "$p" 2>/dev/null; kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

for n in a b; do
	mkdir -p "$tmp/$n/clients"
	printf 'ports = 1\nport-size = 4K\n' > "$tmp/$n/clients/fmon.conf"
done
keeper() {
	local n=$1 id=$2 me=$3 peer=$4
	"$CCM" connect --node-id "$id" --listen "$me:$port" --partner "$peer:$port" \
		--clients "$tmp/$n/clients" --state-dir "$tmp/$n/run" --foreground \
		--heartbeat-ms "$HB_MS" --heartbeat-misses "$HB_MISSES" \
		${BENCH_PSK:+--psk-file "$BENCH_PSK"} 2>"$tmp/$n.log" &
	pids+=($!)
}
connected() {
	for _ in $(seq 1 200); do
		grep -qx "CCM_STATE='connected'" "$tmp/$1/run/state" 2>/dev/null && return 0
		sleep 0.05
	done
	echo "bench/keeper.sh: node $1 did not connect" >&2
	cat "$tmp/$1.log" >&2
	return 1
}
keeper a 1 127.0.0.2 127.0.0.3
keeper b 2 127.0.0.3 127.0.0.2
connected a
connected b

# Messages, interleaved with the baseline so both see the same noise.
for round in 1 2; do
	"$PING" pong --state-dir "$tmp/b/run" &
	pong=$!
	"$PING" ping --state-dir "$tmp/a/run" --iters "$ITERS" > "$tmp/ccm.$round"
	wait "$pong"
	"$PING" tcp-pong $((port + 1)) > "$tmp/tcp-ready" &
	pong=$!
	for _ in $(seq 1 100); do grep -q listening "$tmp/tcp-ready" 2>/dev/null && break; sleep 0.02; done
	"$PING" tcp-ping 127.0.0.2 $((port + 1)) --iters "$ITERS" > "$tmp/tcp.$round"
	wait "$pong"
done
median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
ccm=$(cat "$tmp"/ccm.* | sed 's/.*median \([0-9.]*\) us.*/\1/' | median)
tcp=$(cat "$tmp"/tcp.* | sed 's/.*median \([0-9.]*\) us.*/\1/' | median)
cat "$tmp"/ccm.1 "$tmp"/tcp.1
awk -v c="$ccm" -v t="$tcp" 'BEGIN { printf "messages: ccm ports median %.1f us, raw TCP median %.1f us, ratio %.2f (goal <= 1.3)\n", c, t, c / t }'

# Throughput, interleaved the same way.
for round in 1 2; do
	"$PING" sink --state-dir "$tmp/b/run" --iters "$STREAM_N" &
	sink=$!
	"$PING" source --state-dir "$tmp/a/run" --iters "$STREAM_N" > "$tmp/ccm-stream.$round"
	wait "$sink"
	"$PING" tcp-sink $((port + 1)) --iters "$STREAM_N" > "$tmp/tcp-ready" &
	sink=$!
	for _ in $(seq 1 100); do grep -q listening "$tmp/tcp-ready" 2>/dev/null && break; sleep 0.02; done
	"$PING" tcp-source 127.0.0.2 $((port + 1)) --iters "$STREAM_N" > "$tmp/tcp-stream.$round"
	wait "$sink"
done
rate() { sed 's/.*: \([0-9]*\) messages\/s$/\1/' | sort -n | tail -1; }
ccm=$(cat "$tmp"/ccm-stream.* | rate)
tcp=$(cat "$tmp"/tcp-stream.* | rate)
cat "$tmp"/ccm-stream.1 "$tmp"/tcp-stream.1
awk -v c="$ccm" -v t="$tcp" 'BEGIN { if (c <= 0 || t <= 0) exit 1; printf "throughput: ccm ports %d messages/s, raw TCP %d messages/s, ratio %.2f (the best of 2 each)\n", c, t, c / t }' ||
	{ echo "bench/keeper.sh: the throughput measurement failed" >&2; exit 1; }

# Detection of a frozen partner.
"$PING" watch --state-dir "$tmp/a/run" > "$tmp/watch" &
watcher=$!
for _ in $(seq 1 100); do grep -q watching "$tmp/watch" 2>/dev/null && break; sleep 0.02; done
t0=$(date +%s.%N)
kill -STOP "${pids[1]}"
wait "$watcher"
t1=$(sed -n 's/^partner lost at //p' "$tmp/watch")
kill -CONT "${pids[1]}"
awk -v a="$t0" -v b="$t1" -v ms="$HB_MS" -v k="$HB_MISSES" 'BEGIN {
	d = (b - a) * 1000
	printf "detection: partner frozen -> client told in %.0f ms; configured bound %d ms (heartbeat %d ms x %d), ratio %.2f\n", d, ms * k, ms, k, d / (ms * k) }'
