#!/usr/bin/env bash
# Strangers on the interconnect, without a key: real keepers over real TCP
# sockets on loopback.  A and B are the pair (ids 1 and 2 on 127.0.0.2 and
# 127.0.0.3); C is a third node (id 3 on 127.0.0.4) whose partner= points
# at A by mistake.  A live session must never notice it: A refuses C's
# greeting before it touches anything, says so once, and C hears why.
set -u
. "$(dirname "$0")/../lib/common.sh"

oneTimeSetUp() {
	[ -x "${CCM}" ] || fail "no binary at ${CCM}; run make dev"
}

setUp() {
	ccm_begin_test
	for n in a b c; do
		make_client "$t/$n/clients" fmon 1 4K
	done
}

tearDown() {
	ccm_end_test
}

start_node() {
	local n=$1
	shift
	ccm_start "${CCM}" "$n" "$t/$n/clients" -v --foreground "$@"
}

# start_stray [args...]: node C, id 3, its partner A's address.
start_stray() {
	mkdir -p "$t/c"
	"${CCM}" connect --node-id 3 --listen "127.0.0.4:$port" --partner "127.0.0.2:$port" \
		--clients "$t/c/clients" --state-dir "$t/c/run" -v --foreground "$@" \
		>>"$t/c/log" 2>&1 </dev/null &
	pid_c=$!
	pids="$pids $pid_c"
}

connected() {
	wait_for_line "$t/$1/run/state" "CCM_STATE='connected'" "${2:-15}"
}

in_log() {  # NODE TEXT
	grep -qF -- "$2" "$t/$1/log"
}

test_a_misconfigured_third_node_never_disturbs_the_pair() {
	local a_epoch b_epoch refusals
	start_node a
	start_node b
	connected a && connected b || { cat "$t/a/log" "$t/b/log"; fail "the pair never connected"; return; }
	a_epoch=$(state_get "$t/a/run" CCM_EPOCH)
	b_epoch=$(state_get "$t/b/run" CCM_EPOCH)
	start_stray
	# C retries every 100 ms or so: give it many tries.
	wait_for 10 in_log c "refused us: it is connected to another partner" ||
		fail "C never heard why A refused it: $(tail -5 "$t/c/log")"
	sleep 3
	assertEquals "A still connected" connected "$(state_get "$t/a/run" CCM_STATE)"
	assertEquals "B still connected" connected "$(state_get "$t/b/run" CCM_STATE)"
	assertEquals "A's partner is still B" 2 "$(state_get "$t/a/run" CCM_PARTNER_NODE)"
	assertEquals "A's partner epoch unchanged" "$b_epoch" "$(state_get "$t/a/run" CCM_PARTNER_EPOCH)"
	assertEquals "B's partner epoch unchanged" "$a_epoch" "$(state_get "$t/b/run" CCM_PARTNER_EPOCH)"
	assertFalse "A never lost its session: $(grep -m3 'lost\|error' "$t/a/log")" \
		"grep -q 'session with the partner lost\|-> error\|unreachable' '$t/a/log'"
	assertFalse "B never lost its session: $(grep -m3 'lost\|error' "$t/b/log")" \
		"grep -q 'session with the partner lost\|-> error\|unreachable' '$t/b/log'"
	refusals=$(grep -c "refused a connection: node 3 is not our partner (node 2)" "$t/a/log")
	assertEquals "A said it once, however often C tried" 1 "$refusals"
	assertNotEquals "C is not connected" connected "$(state_get "$t/c/run" CCM_STATE)"
	kill -TERM "$pid_c"
	wait_exit "$pid_c" 10
	stop_pair
}

# Idle connections that never greet (8, more than the 4 passive slots):
# each new one makes room by dropping an old one, never the partner's.
test_idle_connections_never_evict_the_partners_own() {
	local fds=() fd i b_epoch
	start_node a
	start_node b
	connected a && connected b || { cat "$t/a/log" "$t/b/log"; fail "the pair never connected"; return; }
	b_epoch=$(state_get "$t/a/run" CCM_PARTNER_EPOCH)
	for i in 1 2 3 4 5 6 7 8; do
		exec {fd}<>"/dev/tcp/127.0.0.2/$port" || { fail "connect $i"; break; }
		fds+=("$fd")
		sleep 0.1
	done
	sleep 2
	for fd in "${fds[@]}"; do exec {fd}>&-; done
	assertEquals "A still connected" connected "$(state_get "$t/a/run" CCM_STATE)"
	assertEquals "B still connected" connected "$(state_get "$t/b/run" CCM_STATE)"
	assertEquals "A's partner epoch unchanged" "$b_epoch" "$(state_get "$t/a/run" CCM_PARTNER_EPOCH)"
	for n in a b; do
		assertFalse "$n never lost its session or link: $(grep -m2 'unreachable\|lost\|reset' "$t/$n/log")" \
			"grep -q 'session with the partner lost\|unreachable\|reset by peer' '$t/$n/log'"
	done
	stop_pair
}

# A connection that never greets is dropped after 5 s, not kept for good.
test_a_connection_that_never_greets_goes_after_5_s() {
	local fd t0 took
	start_node a
	start_node b
	connected a && connected b || { cat "$t/a/log" "$t/b/log"; fail "the pair never connected"; return; }
	exec {fd}<>"/dev/tcp/127.0.0.2/$port" || { fail "connect"; return; }
	t0=$(now_ms)
	timeout 15 cat <&"$fd" >/dev/null 2>&1
	took=$(( $(now_ms) - t0 ))
	exec {fd}>&-
	echo "# the silent connection was closed after ${took} ms" >&2
	assertTrue "closed after 5 s (took ${took} ms)" "[ $took -ge 4500 ] && [ $took -lt 10000 ]"
	assertEquals "A still connected" connected "$(state_get "$t/a/run" CCM_STATE)"
	stop_pair
}

test_partner_node_refuses_others_before_any_session() {
	start_node a --partner-node 2
	start_stray
	wait_for 10 in_log c "refused us: it is connected to another partner" ||
		fail "C was not refused: $(tail -5 "$t/c/log")"
	assertTrue "A said whom it refused" "in_log a 'node 3 is not our partner (node 2)'"
	assertNotEquals "A did not take C as its partner" connected "$(state_get "$t/a/run" CCM_STATE)"
	kill -TERM "$pid_c"
	wait_exit "$pid_c" 10
	# The partner it names is let in.
	start_node b --partner-node 1
	connected a && connected b || { cat "$t/a/log"; fail "A and B never connected"; return; }
	assertEquals "A's partner" 2 "$(state_get "$t/a/run" CCM_PARTNER_NODE)"
	stop_pair
}

test_partner_node_not_the_node_at_the_address_is_not_talked_to() {
	# A expects node 5 at B's address; B is node 2.
	start_node a --partner-node 5 --timeout 3
	start_node b
	wait_for 10 in_log a "is node 2, not partner-node 5" ||
		fail "A did not say whom it found: $(tail -5 "$t/a/log")"
	assertNotEquals "A did not take B" connected "$(state_get "$t/a/run" CCM_STATE)"
	# --timeout 3: nobody it would talk to came; it hands off degraded.
	wait_for 10 in_log a "handed off (degraded)" ||
		fail "A did not hand off degraded: $(tail -3 "$t/a/log")"
	assertEquals "A still looks for its partner" handshaking "$(state_get "$t/a/run" CCM_STATE)"
	kill -TERM "$pid_b" "$pid_a"
	wait_exit "$pid_b" 10
	wait_exit "$pid_a" 10
	assertEquals "A stopped cleanly" 0 "$ccm_rc"
}

test_partner_node_equal_to_node_id_is_a_usage_error() {
	"${CCM}" connect --node-id 1 --partner-node 1 --listen "127.0.0.2:$port" \
		--partner "127.0.0.3:$port" --clients "$t/a/clients" --state-dir "$t/a/run" \
		>"$t/out" 2>&1
	assertEquals "exit status" 2 "$?"
	assertContains "$(cat "$t/out")" "partner-node is this node's own id"
}

. shunit2
