#!/usr/bin/env bash
# Two real ccm-early processes handshaking over real TCP sockets on
# loopback (node A on 127.0.0.2, node B on 127.0.0.3): start orders, a node
# killed in every handshake state and restarted, keys, versions, clients,
# timeouts and a hostile partner.
set -u
. "$(dirname "$0")/../lib/common.sh"

oneTimeSetUp() {
	[ -x "${CCM}" ] || fail "no binary at ${CCM}; run make dev"
}

setUp() {
	ccm_begin_test
	for n in a b; do
		make_client "$t/$n/clients" fmon 1 4K
		make_client "$t/$n/clients" nvmirror 2 1M
	done
}

tearDown() {
	ccm_end_test
}

# start_node a|b [extra args...]: each node with its own clients.
start_node() {
	_node=$1
	shift
	ccm_start "${CCM}" "$_node" "$t/$_node/clients" -vv --foreground "$@"
}

connected() {
	wait_for_line "$t/$1/run/state" "CCM_STATE='connected'" "${2:-15}"
}

# Both connected, each knowing the other's current epoch.
assert_pair_connected() {
	connected a || { cat "$t/a/log"; fail "A not connected"; return; }
	connected b || { cat "$t/b/log"; fail "B not connected"; return; }
	assertEquals "A's partner" 2 "$(state_get "$t/a/run" CCM_PARTNER_NODE)"
	assertEquals "B's partner" 1 "$(state_get "$t/b/run" CCM_PARTNER_NODE)"
	assertEquals "A knows B's epoch" "$(state_get "$t/b/run" CCM_EPOCH)" \
		"$(state_get "$t/a/run" CCM_PARTNER_EPOCH)"
	assertEquals "B knows A's epoch" "$(state_get "$t/a/run" CCM_EPOCH)" \
		"$(state_get "$t/b/run" CCM_PARTNER_EPOCH)"
	assertEquals "A's clients" "fmon nvmirror" "$(state_get "$t/a/run" CCM_CLIENTS)"
	assertEquals "B's clients" "fmon nvmirror" "$(state_get "$t/b/run" CCM_CLIENTS)"
}

# SIGTERM both: each exits 0 and says terminated.
stop_pair() {
	for n in a b; do
		eval "_p=\$pid_$n"
		kill -TERM "$_p"
		wait_exit "$_p" 10
		assertEquals "node $n exit status after SIGTERM" 0 "$ccm_rc"
		assertEquals "node $n final state" terminated "$(state_get "$t/$n/run" CCM_STATE)"
	done
	pids=""
}

test_a_first() {
	start_node a
	sleep 0.5
	start_node b
	assert_pair_connected
	stop_pair
}

test_b_first_late_by_seconds() {
	start_node b
	sleep 3
	assertEquals "B waits in state 3" wait3 "$(state_get "$t/b/run" CCM_HS_STATE)"
	start_node a
	assert_pair_connected
	stop_pair
}

test_both_at_once() {
	start_node a
	start_node b
	assert_pair_connected
	stop_pair
}

test_once_exits_zero_after_handoff() {
	start_node a --once
	start_node b --once
	wait_exit "$pid_a" 15
	assertEquals "A --once exit status" 0 "$ccm_rc"
	wait_exit "$pid_b" 15
	assertEquals "B --once exit status" 0 "$ccm_rc"
	pids=""
	assertEquals connected "$(state_get "$t/a/run" CCM_STATE)"
	assertEquals ok "$(state_get "$t/a/run" CCM_CLIENT_nvmirror_STATUS)"
	assertEquals 2 "$(state_get "$t/a/run" CCM_CLIENT_nvmirror_PORTS)"
	assertEquals 1048576 "$(state_get "$t/a/run" CCM_CLIENT_nvmirror_PORT_SIZE)"
	assertEquals 1 "$(state_get "$t/b/run" CCM_VERSION)"
	assertEquals tcp "$(state_get "$t/b/run" CCM_TRANSPORT)"
}

# B dies by SIGKILL on entering STATE, then comes back with a new epoch.
crash_b_in() {
	_state=$1
	if [ "$_state" = wait3 ]; then
		# B can only wait in 3 while A is down.
		CCM_EARLY_TEST_CRASH_AT=$_state start_node b
		wait_exit "$pid_b" 10
		start_node a
	else
		start_node a
		sleep 0.3
		CCM_EARLY_TEST_CRASH_AT=$_state start_node b
		wait_exit "$pid_b" 10
	fi
	assertEquals "B was killed in $_state" 137 "$ccm_rc"
	_old_epoch=$(state_get "$t/b/run" CCM_EPOCH)
	start_node b
	assert_pair_connected
	assertNotEquals "B came back with a new epoch" "$_old_epoch" "$(state_get "$t/b/run" CCM_EPOCH)"
	stop_pair
}

test_b_killed_in_read1() { crash_b_in read1; }
test_b_killed_in_write2() { crash_b_in write2; }
test_b_killed_in_wait3() { crash_b_in wait3; }
test_b_killed_in_read4() { crash_b_in read4; }
test_b_killed_in_write5() { crash_b_in write5; }
test_b_killed_when_connected() { crash_b_in connected; }
test_b_killed_when_ready() { crash_b_in ready; }

test_partner_restart_after_connected_leaks_nothing() {
	start_node a
	start_node b
	assert_pair_connected
	_fds=$(ls "/proc/$pid_a/fd" | wc -l)
	for round in 1 2 3; do
		_old=$(state_get "$t/b/run" CCM_EPOCH)
		kill -9 "$pid_b"
		wait "$pid_b" 2>/dev/null
		# Its link gone, the partner is unreachable; the session
		# waits for it (a new epoch then ends it).
		wait_for_line "$t/a/run/state" "CCM_STATE='unreachable'" 10
		assertEquals "round $round: A noticed the loss" unreachable \
			"$(state_get "$t/a/run" CCM_STATE)"
		assertContains "round $round: and says why" \
			"$(state_get "$t/a/run" CCM_ERROR)" "partner unreachable: no link left"
		start_node b
		assert_pair_connected
		assertNotEquals "round $round: new epoch" "$_old" \
			"$(state_get "$t/a/run" CCM_PARTNER_EPOCH)"
	done
	assertEquals "A holds as many fds as before the three losses" "$_fds" \
		"$(ls "/proc/$pid_a/fd" | wc -l)"
	stop_pair
}

make_key() {
	printf '%s\n' "$2" > "$1"
	chmod 600 "$1"
}

test_same_psk_connects() {
	make_key "$t/key" "correct horse battery staple"
	start_node a --psk-file "$t/key"
	start_node b --psk-file "$t/key"
	assert_pair_connected
	stop_pair
}

# A key from keygen works on both nodes, and both show the id keygen said.
test_keygen_key_connects_and_both_show_its_id() {
	local out id
	out=$("${CCM}" keygen "$t/key") || { fail "keygen: $out"; return; }
	id=$(printf '%s\n' "$out" | sed -n 's/.*(id \([0-9a-f]\{16\}\))$/\1/p')
	assertNotEquals "keygen printed an id: $out" "" "$id"
	start_node a --psk-file "$t/key"
	start_node b --psk-file "$t/key"
	assert_pair_connected
	assertEquals "A's handoff names the key" "$id" "$(state_get "$t/a/run" CCM_KEY_ID)"
	assertEquals "B's too" "$id" "$(state_get "$t/b/run" CCM_KEY_ID)"
	assertContains "status shows it" "$("${CCM}" status --state-dir "$t/a/run")" " key:$id "
	assertNotContains "the key itself is nowhere in the handoff" \
		"$(cat "$t/a/run/state" "$t/a/run/state.json")" "$(cat "$t/key")"
	stop_pair
}

# A refusal of our key carries no proof (anyone at the partner's address
# could send one): the run tries on, and its --timeout ends it with exit 5.
test_wrong_psk_fails_with_5_at_the_timeout_and_hides_clients() {
	make_key "$t/a/key" "correct horse battery staple"
	make_key "$t/b/key" "incorrect horse battery staple"
	make_client "$t/b/clients" secretclient 1 4K
	start_node a --psk-file "$t/a/key" --timeout 3
	start_node b --psk-file "$t/b/key" --timeout 3
	local n=0
	until grep -q "^CCM_ERROR='pre-shared key: " "$t/a/run/state" 2>/dev/null || [ $n -ge 50 ]; do
		sleep 0.05
		n=$((n + 1))
	done
	assertTrue "A's handoff says why it waits, before its timeout: $(state_get "$t/a/run" CCM_ERROR)" \
		"grep -q \"^CCM_ERROR='pre-shared key: \" '$t/a/run/state'"
	assertEquals "A still waits" handshaking "$(state_get "$t/a/run" CCM_STATE)"
	wait_exit "$pid_a" 15
	assertEquals "A exit status" 5 "$ccm_rc"
	wait_exit "$pid_b" 15
	assertEquals "B exit status" 5 "$ccm_rc"
	pids=""
	assertEquals error "$(state_get "$t/a/run" CCM_STATE)"
	assertContains "$(state_get "$t/a/run" CCM_ERROR)" "pre-shared key"
	assertContains "$(state_get "$t/a/run" CCM_ERROR)" "timed out after 3 s"
	assertEquals "the refusal said once, not at every try" 1 \
		"$(grep -c 'pre-shared key: .*trying on until the timeout' "$t/a/log")"
	assertNotContains "A never learned B's clients" "$(cat "$t/a/run/state" "$t/a/log")" secretclient
	assertNotContains "no CLIENTS went out" "$(cat "$t/a/log" "$t/b/log")" "sent clients"
}

test_psk_on_one_side_only_fails_with_5() {
	make_key "$t/key" "correct horse battery staple"
	start_node a --psk-file "$t/key" --timeout 3
	start_node b --timeout 3
	wait_exit "$pid_a" 15
	assertEquals "A exit status" 5 "$ccm_rc"
	wait_exit "$pid_b" 15
	assertEquals "B exit status" 5 "$ccm_rc"
	pids=""
}

test_no_common_version_fails_with_4() {
	start_node a --proto-versions 2-3
	start_node b
	wait_exit "$pid_a" 15
	assertEquals "A exit status" 4 "$ccm_rc"
	wait_exit "$pid_b" 15
	assertEquals "B exit status" 4 "$ccm_rc"
	pids=""
	assertContains "$(state_get "$t/b/run" CCM_ERROR)" "versions"
}

test_client_on_one_side_only() {
	rm "$t/b/clients/nvmirror.conf"
	make_client "$t/b/clients" extra 1 8K
	start_node a --once
	start_node b --once
	wait_exit "$pid_a" 15
	assertEquals 0 "$ccm_rc"
	wait_exit "$pid_b" 15
	assertEquals 0 "$ccm_rc"
	pids=""
	assertEquals "A: nvmirror" local-only "$(state_get "$t/a/run" CCM_CLIENT_nvmirror_STATUS)"
	assertEquals "B: nvmirror" remote-only "$(state_get "$t/b/run" CCM_CLIENT_nvmirror_STATUS)"
	assertEquals "A: extra" remote-only "$(state_get "$t/a/run" CCM_CLIENT_extra_STATUS)"
	assertEquals "fmon still works" ok "$(state_get "$t/a/run" CCM_CLIENT_fmon_STATUS)"
	assertEquals "A's usable clients" fmon "$(state_get "$t/a/run" CCM_CLIENTS)"
}

test_size_mismatch_is_per_client() {
	make_client "$t/b/clients" nvmirror 2 2M
	start_node a --once
	start_node b --once
	wait_exit "$pid_a" 15
	assertEquals 0 "$ccm_rc"
	wait_exit "$pid_b" 15
	pids=""
	assertEquals size-mismatch "$(state_get "$t/a/run" CCM_CLIENT_nvmirror_STATUS)"
	assertEquals ok "$(state_get "$t/a/run" CCM_CLIENT_fmon_STATUS)"
}

test_corrupt_descriptor_is_left_out() {
	printf 'ports = many\n' > "$t/a/clients/broken.conf"
	start_node a --once
	start_node b --once
	wait_exit "$pid_a" 15
	assertEquals 0 "$ccm_rc"
	wait_exit "$pid_b" 15
	pids=""
	assertEquals "fmon nvmirror" "$(state_get "$t/a/run" CCM_CLIENTS)"
	assertContains "$(state_get "$t/a/run" CCM_BAD_DESCRIPTORS)" broken.conf
	assertContains "$(cat "$t/a/log")" "broken.conf"
}

test_timeout_without_partner_exits_3() {
	start_node a --timeout 2 --once
	wait_exit "$pid_a" 10
	assertEquals "exit status" 3 "$ccm_rc"
	pids=""
	assertEquals error "$(state_get "$t/a/run" CCM_STATE)"
	assertContains "$(state_get "$t/a/run" CCM_ERROR)" "timed out"
}

# The keeper's way: the command exits 3 at the timeout so the boot can go
# on degraded, and the keeper it left behind connects when the partner
# comes.
test_timeout_then_keeper_connects_later() {
	ccm_start "${CCM}" a "$t/a/clients" -vv --timeout 2
	wait_exit "$pid_a" 10
	assertEquals "the command exits 3 at the timeout" 3 "$ccm_rc"
	pids=""
	assertEquals "the handoff says it is still looking" handshaking \
		"$(state_get "$t/a/run" CCM_STATE)"
	assertContains "$(state_get "$t/a/run" CCM_ERROR)" "timed out"
	start_node b
	connected a 15
	assertEquals "the keeper connected after all" connected "$(state_get "$t/a/run" CCM_STATE)"
	"${CCM}" stop --state-dir "$t/a/run" >/dev/null
	assertEquals "ccm-early stop ends the detached keeper" 0 $?
	assertEquals terminated "$(state_get "$t/a/run" CCM_STATE)"
}

test_cluster_mismatch_fails() {
	start_node a --cluster east
	start_node b --cluster west
	wait_exit "$pid_a" 15
	assertEquals 1 "$ccm_rc"
	wait_exit "$pid_b" 15
	assertEquals 1 "$ccm_rc"
	pids=""
	assertContains "$(state_get "$t/a/run" CCM_ERROR)" "cluster"
}

test_hostile_partner_then_real_one() {
	start_node a
	sleep 0.3
	python3 "$(dirname "$0")/hostile.py" 127.0.0.2 "$port" >"$t/hostile.log" 2>&1
	_rc=$?
	assertEquals "hostile script's cases: $(cat "$t/hostile.log")" 0 "$_rc"
	kill -0 "$pid_a"
	assertEquals "A survived" 0 $?
	start_node b
	assert_pair_connected
	stop_pair
	assertContains "$(cat "$t/a/log")" "refused a connection to us"
}

. shunit2
