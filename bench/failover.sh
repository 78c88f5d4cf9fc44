#!/usr/bin/env bash
# bench/failover.sh: what a failing interconnect costs a client, with the
# static binaries (make ccm-early bench): two keepers on loopback (node A
# 127.0.0.2, node B 127.0.0.3) joined by TCP links, a link cut silently by
# nftables (its packets dropped on arrival, no RST; needs root):
#   failover    standby policy, link 0 preferred, one client doing
#               back-to-back 64-byte writes; link 0 cut: from the cut to
#               the first write done over link 1, CUTS cuts (restored, and
#               the port back on link 0, between cuts), at
#               link-heartbeat-ms 10 (the default), 5 and 20, against the
#               detection bound link-heartbeat-ms x link-misses;
#               goal: median <= 50 ms at the defaults
#   throughput  64 KiB writes, 4 in flight on each of 8 ports, two links
#               (balance) against one link, rounds interleaved;
#               goal: ratio >= 1.7 where the links are independent
#   scale       the failover cut again (defaults, SCALE_CUTS cuts) with 1, 8
#               and 16 clients of 16 ports of 4 KiB each on both nodes, all
#               attached (16 x 16 = 256 ports, the most a node takes); node
#               A's keeper's fds and RSS idle and with every client
#               attached; goal: failover with 256 ports within 2 x the
#               time with 16
# BENCH_PSK=FILE gives both keepers that pre-shared key (its cost).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source-path=SCRIPTDIR source=../tests/lib/nftcut.sh
. "$top/tests/lib/nftcut.sh"
CCM=$(readlink -f -- "${CCM:-$top/ccm-early}")
FO=$top/build/bench/failover
CUTS=${CUTS:-20} MISSES=${MISSES:-3} DAMP_MS=${DAMP_MS:-300}
TPUT_SECS=${TPUT_SECS:-3} ROUNDS=${ROUNDS:-3} PARTS=${PARTS:-failover throughput scale}
SCALE_CUTS=${SCALE_CUTS:-10}
if ! [ -x "$CCM" ] || ! [ -x "$FO" ]; then
	echo "bench/failover.sh: make ccm-early bench first" >&2
	exit 1
fi
"$CCM" connect --help 2>&1 | grep -q -- '--link LOCAL' ||
	{ echo "bench/failover.sh: $CCM has no --link" >&2; exit 1; }
tmp=$(mktemp -d /dev/shm/ccm-bench-failover.XXXXXX)
table=ccm_bench_$$
port=$(( 26000 + $$ % 3000 ))
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	nft delete table inet "$table" 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

# The cut: TCP ports in the set @cut are dropped between the two addresses.
nftcut_create "$table" || { echo "bench/failover.sh: cannot set up nftables (root?)" >&2; exit 1; }

# pair NAME CLIENT-PORTS CLIENT-SIZE LINK-PORT... -- KEEPER-ARGS: two
# keepers, $tmp/NAME/{a,b}, with one link per LINK-PORT (link 0 given
# priority 1, so that standby prefers it), one client "bench" (and
# $pair_others more, o1 .. oN, described alike).
pair_others=0
pair() {
	local name=$1 nports=$2 size=$3 n id me peer lp i prio c
	local -a links
	shift 3
	for n in a b; do
		mkdir -p "$tmp/$name/$n/clients"
		for c in bench $(seq -f 'o%g' 1 "$pair_others"); do
			printf 'ports = %s\nport-size = %s\n' "$nports" "$size" >"$tmp/$name/$n/clients/$c.conf"
		done
	done
	for n in a b; do
		if [ $n = a ]; then id=1 me=127.0.0.2 peer=127.0.0.3; else id=2 me=127.0.0.3 peer=127.0.0.2; fi
		links=() i=0
		for lp in "$@"; do
			[ "$lp" = -- ] && break
			prio=""
			[ $i != 0 ] || prio=,priority=1
			links+=(--link "$me:$lp=$peer:$lp$prio")
			i=$((i + 1))
		done
		"$CCM" connect --node-id $id "${links[@]}" --clients "$tmp/$name/$n/clients" \
			--state-dir "$tmp/$name/$n/run" --foreground ${BENCH_PSK:+--psk-file "$BENCH_PSK"} \
			"${@:i+2}" 2>"$tmp/$name/$n.log" &
		pids+=($!)
	done
	for n in a b; do
		for _ in $(seq 1 300); do
			grep -qx "CCM_STATE='connected'" "$tmp/$name/$n/run/state" 2>/dev/null && continue 2
			sleep 0.05
		done
		echo "bench/failover.sh: $name: node $n did not connect" >&2
		cat "$tmp/$name/$n.log" >&2
		return 1
	done
}

# Stop the last two keepers started.
unpair() {
	local p
	for p in "${pids[@]: -2}"; do kill -TERM "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	pids=("${pids[@]:0:${#pids[@]}-2}")
}

# cut_link0 NAME PORTS WHAT FAILOVER-ARGS...: build/bench/failover's cuts of
# link 0 of pair NAME (each once its PORTS ports are on link 0 on both
# nodes, and nothing on link 1), into $tmp/NAME/out; then the pair stops.
cut_link0() {
	local d=$tmp/$1 total=$2 what=$3 ready
	shift 3
	ready="grep -qx \"CCM_LINK_0_PORTS='$total'\" $d/a/run/state && grep -qx \"CCM_LINK_0_PORTS='$total'\" $d/b/run/state"
	ready="$ready && grep -qx \"CCM_LINK_0_STATE='up'\" $d/a/run/state && grep -qx \"CCM_LINK_0_STATE='up'\" $d/b/run/state"
	if ! "$FO" cut --state-dir "$d/a/run" "$@" \
		--cut "nft add element inet $table cut '{ $port }'" \
		--restore "nft delete element inet $table cut '{ $port }'" --ready "$ready" >"$d/out"; then
		echo "bench/failover.sh: the cuts failed $what" >&2
		tail -n 20 "$d/a.log" "$d/b.log" >&2
		exit 1
	fi
	unpair
}

median() { sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

# --- failover -------------------------------------------------------------------
for hb in 10 5 20; do
	case " $PARTS " in *" failover "*) ;; *) break ;; esac
	port=$((port + 2))
	name=fo$hb
	pair $name 1 4K $port $((port + 1)) -- --link-policy standby --link-heartbeat-ms $hb \
		--link-misses "$MISSES" --link-damp-ms "$DAMP_MS"
	d=$tmp/$name
	cut_link0 $name 1 "at link-heartbeat-ms $hb" --cuts "$CUTS"
	awk -v hb="$hb" -v k="$MISSES" '/^failover:/ {
		printf "failover: link-heartbeat-ms %d x link-misses %d = %d ms bound: %d cuts, median %.1f ms, worst %.1f ms, median/bound %.2f%s\n",
			hb, k, hb * k, $2, $5, $8, $5 / (hb * k), hb == 10 ? " (goal: median <= 50 ms)" : "" }' "$d/out"
done

# --- throughput -------------------------------------------------------------------
throughput() {
port=$((port + 2))
pair two 8 1M $port $((port + 1)) -- --link-policy balance
pair one 8 1M $((port + 2)) --
for r in $(seq 1 "$ROUNDS"); do
	for name in two one; do
		"$FO" tput --state-dir "$tmp/$name/a/run" --seconds "$TPUT_SECS" --size 65536 --depth 4 \
			>"$tmp/$name.tput.$r" || {
			echo "bench/failover.sh: throughput over $name failed" >&2
			tail -n 20 "$tmp/$name/a.log" "$tmp/$name/b.log" >&2
			exit 1
		}
	done
done
two=$(cat "$tmp"/two.tput.* | awk '{ print $2 }' | median)
one=$(cat "$tmp"/one.tput.* | awk '{ print $2 }' | median)
grep -h . "$tmp"/two.tput.1 "$tmp"/one.tput.1 | sed 's/^/  /'
awk -v a="$two" -v b="$one" -v cpus="$(nproc)" 'BEGIN {
	printf "throughput: two links (balance) %.0f MB/s, one link %.0f MB/s, ratio %.2f (goal >= 1.7 where the links are independent)\n", a, b, a / b
	printf "  here both links are TCP over loopback: the same %d CPU(s) carry both, so the ratio\n  shows what two links cost or gain in the keepers, not two links'\''s capacity\n", cpus }'
	unpair
	unpair
}
case " $PARTS " in *" throughput "*) throughput ;; esac

# --- scale --------------------------------------------------------------------------
# held PID: "FDS RSS_KIB" of process PID.
held() {
	local n
	n=$(find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l)
	echo "$n $(awk '/^VmRSS:/ { print $2 }' "/proc/$1/status")"
}
scale() {
	local k name d total keeper idle base="" fo
	for k in 1 8 16; do
		port=$((port + 2))
		name=sc$k total=$((16 * k)) pair_others=$((k - 1))
		pair $name 16 4K $port $((port + 1)) -- --link-policy standby \
			--link-misses "$MISSES" --link-damp-ms "$DAMP_MS"
		pair_others=0
		d=$tmp/$name keeper=${pids[-2]}
		idle=$(held "$keeper")
		cut_link0 $name $total "with $k clients x 16 ports" --others $((k - 1)) \
			--cuts "$SCALE_CUTS" --attached "$(declare -f held); held $keeper >$d/attached"
		fo=$(awk '/^failover:/ { print $5 }' "$d/out")
		[ -n "$base" ] || base=$fo
		read -r afds arss <"$d/attached"
		awk -v k="$k" -v p="$total" -v n="$SCALE_CUTS" -v fo="$fo" -v base="$base" \
			-v w="$(awk '/^failover:/ { print $8 }' "$d/out")" -v idle="$idle" -v afds="$afds" -v arss="$arss" \
			'BEGIN { split(idle, i, " ")
			printf "scale: %2d clients x 16 ports (%3d ports): failover median %.1f ms, worst %.1f ms of %d cuts, %.2f x the 16-port median; keeper %d fds and %d KiB idle, %d fds and %d KiB with all attached\n",
				k, p, fo, w, n, fo / base, i[1], i[2], afds, arss }'
	done
	echo "  (goal: failover with 256 ports within 2 x the 16-port median; 64 x 16 ports cannot be configured: a node takes at most 32 clients and 256 ports)"
}
case " $PARTS " in *" scale "*) scale ;; esac
