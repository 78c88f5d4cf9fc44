#!/usr/bin/env bash
# Beyond one pair: several instances of ccm-early on one node, and an
# application server as the partner of both controllers of a storage pair.
# Three nodes on this machine, each with its own configuration and run
# directories ($CCM_CONF_DIR, $CCM_RUN_DIR: the /etc/ccm and /run/ccm of
# a node of its own), real keepers over real TCP sockets on loopback
# addresses:
#
#   A (id 1, 127.0.0.2)  instance pair  <->  B instance pair    (id 2, 127.0.0.3)
#                        instance app   <->  S instance ctrl_a  (id 3, 127.0.0.4)
#   B                    instance app   <->  S instance ctrl_b
#
# Every instance is started the way its unit starts it: `connect
# --instance NAME` and nothing else, the rest from /etc/ccm/NAME.conf.
set -u
. "$(dirname "$0")/../lib/common.sh"

bindir=$(cd "$(dirname "${CCM}")" && pwd)
NVMIRROR="${bindir}/ccm-nvmirror"

declare -A addr=([a]=127.0.0.2 [b]=127.0.0.3 [s]=127.0.0.4)
declare -A id=([a]=1 [b]=2 [s]=3)

oneTimeSetUp() {
	for b in "${CCM}" "${NVMIRROR}"; do
		[ -x "$b" ] || fail "no binary at $b; run make dev"
	done
}

# conf NODE INSTANCE PARTNER-NODE PORT-OFFSET CLIENT: the instance's config
# file and its one client (1 port of 64 KiB).
conf() {
	local n=$1 i=$2 p=$3 pp=$((port + $4)) etc=$t/$1/etc
	mkdir -p "$etc"
	cat >"$etc/$i.conf" <<-EOF
		# $n's instance $i: towards node $p
		node-id = ${id[$n]}
		listen = ${addr[$n]}:$pp
		partner = ${addr[$p]}:$pp
		partner-node = ${id[$p]}
		heartbeat-ms = 50
		metrics-dir = $t/$n/textfile
	EOF
	mkdir -p "$t/$n/textfile"
	make_client "$etc/$i.clients.d" "$5" 1 64K
}

setUp() {
	ccm_begin_test
	port=$((ccm_port_base + 3 * ccm_port_seq))  # three each: port .. port+2
	conf a pair b 0 fmon
	conf b pair a 0 fmon
	conf a app s 1 appdata
	conf s ctrl_a a 1 appdata
	conf b app s 2 appdata
	conf s ctrl_b b 2 appdata
}

tearDown() {
	ccm_end_test
}

# on NODE COMMAND...: run COMMAND as on node NODE (its /etc/ccm, /run/ccm).
on() {
	local n=$1
	shift
	CCM_CONF_DIR=$t/$n/etc CCM_RUN_DIR=$t/$n/run "$@"
}

# up NODE INSTANCE: start the instance's keeper, as ccm-early@INSTANCE does.
up() {
	local n=$1 i=$2
	# env execs the keeper: $! is its pid.
	env CCM_CONF_DIR="$t/$n/etc" CCM_RUN_DIR="$t/$n/run" \
		"${CCM}" connect --instance "$i" --foreground -v >>"$t/$n.$i.log" 2>&1 </dev/null &
	eval "pid_${n}_$i=$!"
	pids="$pids $!"
}

# state NODE INSTANCE [KEY]: KEY (default CCM_STATE) of the instance's handoff.
state() {
	[ -f "$t/$1/run/$2/state" ] && state_get "$t/$1/run/$2" "${3:-CCM_STATE}"
}

is() {  # NODE INSTANCE STATE
	[ "$(state "$1" "$2")" = "$3" ]
}

all_connected() {
	is a pair connected && is b pair connected && is a app connected &&
		is b app connected && is s ctrl_a connected && is s ctrl_b connected
}

start_all() {
	up a pair
	up b pair
	up a app
	up b app
	up s ctrl_a
	up s ctrl_b
	wait_for 20 all_connected || {
		fail "not all connected: $(for f in "$t"/*.log; do echo "== $f"; tail -3 "$f"; done)"
		return 1
	}
}

stop_all() {
	local p
	for p in $pids; do
		kill -TERM "$p" 2>/dev/null
	done
	for p in $pids; do
		wait_exit "$p" 10
	done
	assert_no_sanitizer_report
}

# mirror NODE INSTANCE LOG: ccm-nvmirror pushes LOG into the partner's
# window of client appdata, through the instance's keeper.
mirror() {
	on "$1" "${NVMIRROR}" --instance "$2" --client appdata --log "$3" --once \
		>>"$t/$1.$2.nvmirror.log" 2>&1
}

test_three_nodes_six_instances_each_its_own_partner() {
	local out rc
	start_all || return
	# Each instance is its own keeper with its own socket and port.
	for n in a b s; do
		out=$(on "$n" "${CCM}" check)
		rc=$?
		assertEquals "node $n: check of every instance exits 0: $out" 0 "$rc"
		assertEquals "node $n: one line per instance: $out" 2 "$(echo "$out" | grep -c ' OK: connected')"
	done
	assertEquals "S's instance towards A is connected to node 1" 1 "$(state s ctrl_a CCM_PARTNER_NODE)"
	assertEquals "S's instance towards B is connected to node 2" 2 "$(state s ctrl_b CCM_PARTNER_NODE)"
	assertEquals "A's pair instance is B's partner" 2 "$(state a pair CCM_PARTNER_NODE)"
	assertEquals "the handoff names its instance" ctrl_b "$(state s ctrl_b CCM_INSTANCE)"
	assertNotEquals "two sockets" "$(readlink -f "$t/s/run/ctrl_a/ccm.sock")" \
		"$(readlink -f "$t/s/run/ctrl_b/ccm.sock")"
	assertTrue "each socket there" "[ -S '$t/s/run/ctrl_a/ccm.sock' ] && [ -S '$t/s/run/ctrl_b/ccm.sock' ]"
	out=$(on s "${CCM}" status)
	assertEquals "status lists both of S's instances: $out" "ctrl_a ctrl_b" \
		"$(echo "$out" | awk '/^[a-z]/ { printf "%s%s", sep, $1; sep = " " }')"
	out=$(on s "${CCM}" status --json)
	assertEquals "status --json: an array of both" "ctrl_a ctrl_b" \
		"$(echo "$out" | python3 -c 'import json,sys; print(" ".join(x["instance"] for x in json.load(sys.stdin)))')"
	assertContains "CCM_INSTANCE selects one" "$(CCM_INSTANCE=ctrl_a on s "${CCM}" check)" \
		"ccm@ctrl_a OK: connected to node 1"
	assertContains "the metrics say which instance" "$(on s "${CCM}" metrics --instance ctrl_b)" \
		'ccm_link_up{instance="ctrl_b",link="0"} 1'
	assertContains "a named instance's lines say which" "$(cat "$t/s.ctrl_a.log")" "ccm-early@ctrl_a[node 3]"
	assertEquals "one metrics-dir, a file per instance" "ccm-early@ctrl_a.prom ccm-early@ctrl_b.prom" \
		"$(cd "$t/s/textfile" && echo *)"
	assertContains "each file its instance's" "$(cat "$t/s/textfile/ccm-early@ctrl_b.prom")" \
		'ccm_link_up{instance="ctrl_b",link="0"} 1'

	# S's client writes into windows on both controllers, each its own.
	head -c 20000 /dev/urandom >"$t/to_a"
	head -c 30000 /dev/urandom >"$t/to_b"
	mirror s ctrl_a "$t/to_a"
	assertEquals "mirrored through ctrl_a: $(cat "$t/s.ctrl_a.nvmirror.log")" 0 $?
	mirror s ctrl_b "$t/to_b"
	assertEquals "mirrored through ctrl_b: $(cat "$t/s.ctrl_b.nvmirror.log")" 0 $?
	on a "${CCM}" dump --instance app appdata --payload >"$t/at_a" 2>"$t/dump_a.err"
	assertEquals "A's window: $(cat "$t/dump_a.err")" 0 $?
	on b "${CCM}" dump --instance app appdata --payload >"$t/at_b" 2>"$t/dump_b.err"
	assertEquals "B's window: $(cat "$t/dump_b.err")" 0 $?
	assertTrue "A holds what S wrote towards A" "cmp -s '$t/to_a' '$t/at_a'"
	assertTrue "B holds what S wrote towards B" "cmp -s '$t/to_b' '$t/at_b'"
	stop_all
}

# Stopping one instance leaves the node's other instance untouched.
test_stopping_one_instance_leaves_the_other_alone() {
	local epoch_a out
	start_all || return
	epoch_a=$(state s ctrl_a CCM_EPOCH)
	out=$(on s "${CCM}" stop --instance ctrl_b 2>&1)
	assertEquals "stop --instance ctrl_b: $out" 0 $?
	wait_exit "$pid_s_ctrl_b" 10
	assertEquals "ctrl_b terminated" terminated "$(state s ctrl_b)"
	wait_for 5 eval '[ "$(state b app)" != connected ]'
	assertNotEquals "B's app instance heard S go" connected "$(state b app)"
	sleep 0.5
	assertEquals "ctrl_a still connected" connected "$(state s ctrl_a)"
	assertEquals "ctrl_a: same session" "$epoch_a" "$(state s ctrl_a CCM_EPOCH)"
	assertEquals "ctrl_a never lost A" 0 "$(state s ctrl_a CCM_PARTNER_LOSSES)"
	assertEquals "A's pair untouched" connected "$(state a pair)"
	assertEquals "B's pair untouched" connected "$(state b pair)"
	# Back: the same instance connects again.
	up s ctrl_b
	wait_for 15 all_connected
	assertTrue "all connected again: $(tail -3 "$t/s.ctrl_b.log")" all_connected
	stop_all
}

# A dies: S's instance towards A and B's pair instance see the loss; S's
# instance towards B carries on; A comes back and everything reconnects.
test_a_controller_dies_and_returns() {
	local epoch_b out
	start_all || return
	epoch_b=$(state s ctrl_b CCM_EPOCH)
	kill -9 "$pid_a_pair" "$pid_a_app"
	wait_exit "$pid_a_pair" 5
	wait_exit "$pid_a_app" 5
	wait_for 10 eval 'is s ctrl_a unreachable && is b pair unreachable'
	assertEquals "S's instance towards A: partner lost" unreachable "$(state s ctrl_a)"
	assertEquals "B's pair instance: partner lost" unreachable "$(state b pair)"
	out=$(on s "${CCM}" check)
	assertEquals "S's check: not connected (2): $out" 2 $?
	assertContains "S's check names the instance: $out" "$out" "ccm@ctrl_a NOT CONNECTED: unreachable"
	assertContains "S's check: B fine: $out" "$out" "ccm@ctrl_b OK: connected to node 2"
	assertEquals "S's instance towards B carries on" connected "$(state s ctrl_b)"
	assertEquals "same session towards B" "$epoch_b" "$(state s ctrl_b CCM_EPOCH)"
	assertEquals "B's app instance carries on" connected "$(state b app)"
	# A reboots: new keepers, new epochs.
	up a pair
	up a app
	wait_for 20 all_connected
	assertTrue "everything reconnected: $(tail -n 3 "$t/s.ctrl_a.log" "$t/b.pair.log")" all_connected
	assertEquals "S sees A's new epoch" "$(state a app CCM_EPOCH)" "$(state s ctrl_a CCM_PARTNER_EPOCH)"
	assertEquals "B sees A's new epoch" "$(state a pair CCM_EPOCH)" "$(state b pair CCM_PARTNER_EPOCH)"
	stop_all
}

# A named instance needs its own config file; a bad name is refused.
test_instance_usage_errors() {
	local out
	out=$(on a "${CCM}" connect --instance nosuch --once 2>&1)
	assertEquals "no /etc/ccm/nosuch.conf: usage error (2): $out" 2 $?
	assertContains "names the file: $out" "$out" "$t/a/etc/nosuch.conf"
	out=$(on a "${CCM}" connect --instance Bad-Name --once 2>&1)
	assertEquals "a bad name: 2: $out" 2 $?
	assertContains "says the rule: $out" "$out" "not a name"
	out=$(on a "${CCM}" status --instance x --state-dir /tmp 2>&1)
	assertEquals "both options: 2: $out" 2 $?
	out=$(CCM_INSTANCE=../etc on a "${CCM}" status 2>&1)
	assertEquals "a bad \$CCM_INSTANCE: 2: $out" 2 $?
	assertContains "says where it came from: $out" "$out" "CCM_INSTANCE"
	out=$(on a "${CCM}" check 2>&1)
	assertEquals "no instance ran on A: no keeper (3): $out" 3 $?
}

# shellcheck disable=SC1091
. shunit2
