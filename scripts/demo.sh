#!/usr/bin/env bash
# demo.sh BINARY: two ccm-early nodes handshake on this machine, then a
# client mirrors a log through them.
#
# As root (with iproute2), each node lives in its own network namespace and
# the two are joined by a veth pair, like two servers on a cluster
# interconnect; otherwise both run on loopback addresses.  Each node has two
# clients: a failover monitor (1 port x 4 KiB) and an NVRAM mirror
# (2 ports x 1 MiB).  Shows both sides' state transitions and handoff files;
# then node 1's ccm-nvmirror mirrors a log into node 2's window, node 2
# dumps what arrived, and both keepers are stopped with `ccm-early stop`.
set -eu
bin=$(realpath "${1:-./ccm-early}")
nvmirror=$(dirname "$bin")/ccm-nvmirror
tmp=$(mktemp -d /tmp/ccm-demo.XXXXXX)
ns_a="ccm-demo-a-$$" ns_b="ccm-demo-b-$$"
use_netns=0
pids=()

cleanup() {
	pkill -9 -f -- "--state-dir $tmp/" 2>/dev/null || true
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	if [ "$use_netns" = 1 ]; then
		ip netns del "$ns_a" 2>/dev/null || true
		ip netns del "$ns_b" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

say() { printf '\n== %s\n' "$*"; }

if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add "$ns_a" 2>/dev/null; then
	use_netns=1
	ip netns add "$ns_b"
	ip link add ccm-demo-va netns "$ns_a" type veth peer name ccm-demo-vb netns "$ns_b"
	ip -n "$ns_a" addr add 10.77.0.1/24 dev ccm-demo-va
	ip -n "$ns_b" addr add 10.77.0.2/24 dev ccm-demo-vb
	for ns in "$ns_a" "$ns_b"; do
		ip -n "$ns" link set lo up
	done
	ip -n "$ns_a" link set ccm-demo-va up
	ip -n "$ns_b" link set ccm-demo-vb up
	addr_a=10.77.0.1 addr_b=10.77.0.2
	say "two network namespaces joined by a veth pair: node 1 at $addr_a, node 2 at $addr_b"
else
	addr_a=127.0.0.2 addr_b=127.0.0.3
	say "not root (or no ip netns): both nodes on loopback, node 1 at $addr_a, node 2 at $addr_b"
fi

for n in a b; do
	mkdir -p "$tmp/$n/clients"
	printf '# failover monitor: heartbeats with the partner\nports = 1\nport-size = 4K\n' \
		> "$tmp/$n/clients/fmon.conf"
	printf '# NVRAM mirror: shadows the non-volatile log\nports = 2\nport-size = 1M\n' \
		> "$tmp/$n/clients/nvmirror.conf"
done

run_node() {
	local n=$1 id=$2 me=$3 peer=$4 ns=$5
	local -a cmd=("$bin" connect --node-id "$id" --listen "$me" --partner "$peer"
		--transport tcp --clients "$tmp/$n/clients" --state-dir "$tmp/$n/run" -v)
	if [ "$use_netns" = 1 ]; then
		ip netns exec "$ns" "${cmd[@]}" 2>&1 | sed -u "s/^/  /" &
	else
		"${cmd[@]}" 2>&1 | sed -u "s/^/  /" &
	fi
	pids+=($!)
}

say "starting node 1, then node 2 half a second later (state transitions follow)"
run_node a 1 "$addr_a" "$addr_b" "$ns_a"
sleep 0.5
run_node b 2 "$addr_b" "$addr_a" "$ns_b"

for n in a b; do
	for _ in $(seq 1 300); do
		grep -qx "CCM_STATE='connected'" "$tmp/$n/run/state" 2>/dev/null && break
		sleep 0.1
	done
	if ! grep -qx "CCM_STATE='connected'" "$tmp/$n/run/state" 2>/dev/null; then
		echo "demo: node $n did not connect within 30 s" >&2
		exit 1
	fi
done
sleep 0.2

for n in a b; do
	say "node $([ $n = a ] && echo 1 || echo 2) handoff: $tmp/$n/run/state (shell-sourceable)"
	cat "$tmp/$n/run/state"
done
say "node 1 handoff as JSON: state.json"
cat "$tmp/a/run/state.json"
say "ccm-early status on node 2"
"$bin" status --state-dir "$tmp/b/run"

say "the keepers stay: node 1's ccm-nvmirror mirrors a log into node 2's window"
printf 'txn %s: write block %s\n' 1 17 2 42 3 99 > "$tmp/nvram.log"
cat "$tmp/nvram.log"
"$nvmirror" --state-dir "$tmp/a/run" --log "$tmp/nvram.log" --once
say "node 2: ccm-early dump nvmirror (what node 1 mirrored, every record checked)"
"$bin" dump --state-dir "$tmp/b/run" nvmirror
"$bin" dump --state-dir "$tmp/b/run" nvmirror --payload | cmp - "$tmp/nvram.log"
echo "  the payload matches node 1's log byte for byte"

say "stopping both keepers with ccm-early stop"
for n in a b; do
	"$bin" stop --state-dir "$tmp/$n/run"
done
for p in "${pids[@]}"; do wait "$p" || true; done
pids=()
for n in a b; do
	printf '  node %s: %s\n' "$([ $n = a ] && echo 1 || echo 2)" "$(grep '^CCM_STATE=' "$tmp/$n/run/state")"
	grep -qx "CCM_STATE='terminated'" "$tmp/$n/run/state"
done
say "demo finished"
