#!/usr/bin/env bash
# A host without the pre-shared key, on the interconnect, against a pair
# that holds one: real keepers over real TCP sockets on loopback (A: id 1 on
# 127.0.0.2, B: id 2 on 127.0.0.3), real ccm-fmon on both, and keyless.py
# speaking the real wire format from 127.0.0.4.  Before the tcp transport
# was authenticated, every attack here worked: a forged BYE made both
# monitors take over (split brain), forged heartbeats kept a dead
# partner's takeover from running, windows were read and written.
set -u
. "$(dirname "$0")/../lib/common.sh"

bindir=$(cd "$(dirname "${CCM}")" && pwd)
FMON="${bindir}/ccm-fmon"
here=$(cd "$(dirname "$0")" && pwd)
KEYLESS="python3 ${here}/keyless.py"

oneTimeSetUp() {
	for b in "${CCM}" "${FMON}"; do
		[ -x "$b" ] || fail "no binary at $b; run make dev"
	done
}

setUp() {
	ccm_begin_test
	for n in a b; do
		make_client "$t/$n/clients" fmon 1 4K
	done
	"${CCM}" keygen "$t/key" >/dev/null || fail "keygen"
}

tearDown() {
	ccm_end_test
}

start_node() {
	local n=$1
	shift
	ccm_start "${CCM}" "$n" "$t/$n/clients" -v --foreground --psk-file "$t/key" "$@"
}

connected() {
	wait_for_line "$t/$1/run/state" "CCM_STATE='connected'" "${2:-15}"
}

in_file() {
	[ -f "$2" ] && grep -qF -- "$1" "$2"
}

start_fmon() {  # NODE
	local n=$1
	"${FMON}" --state-dir "$t/$n/run" -vv --interval 100 --dead-after 1000 \
		--takeover "echo takeover \$CCM_FMON_REASON >> '$t/$n/hooks'" \
		--giveback "echo giveback >> '$t/$n/hooks'" \
		>>"$t/$n/fmon.log" 2>&1 </dev/null &
	eval "fmon_$n=$!"
	pids="$pids $!"
}

# Both connected with monitors that hear each other.
start_pair_with_monitors() {
	start_node a
	start_node b
	connected a && connected b || { cat "$t/a/log" "$t/b/log"; fail "the pair never connected"; return 1; }
	start_fmon a
	start_fmon b
	for n in a b; do
		wait_for 5 in_file "unknown -> alive" "$t/$n/fmon.log" ||
			{ fail "node $n's fmon never heard its partner: $(cat "$t/$n/fmon.log")"; return 1; }
	done
}

# The key's id, which status prints on both nodes: no secret.
key_id_of() {
	state_get "$t/$1/run" CCM_KEY_ID
}

test_a_host_without_the_key_is_refused_everything() {
	local a_epoch b_epoch id out
	start_pair_with_monitors || return
	a_epoch=$(state_get "$t/a/run" CCM_EPOCH)
	b_epoch=$(state_get "$t/b/run" CCM_EPOCH)
	id=$(key_id_of a)
	assertNotEquals "the key id is known" "" "$id"
	# Posing as B towards A, and as A towards B.
	out=$(${KEYLESS} attack 127.0.0.2 "$port" 2 "$id" 2>&1)
	assertEquals "every attack on A refused: $out" 0 $?
	echo "$out" | sed 's/^/# A: /' >&2
	out=$(${KEYLESS} attack 127.0.0.3 "$port" 1 "$id" 2>&1)
	assertEquals "every attack on B refused: $out" 0 $?
	sleep 1.5   # longer than the monitors' dead-after
	for n in a b; do
		assertEquals "$n still connected" connected "$(state_get "$t/$n/run" CCM_STATE)"
		assertFalse "$n never lost its session: $(grep -m3 'lost\|error' "$t/$n/log")" \
			"grep -q 'session with the partner lost\|-> error\|unreachable' '$t/$n/log'"
		assertFalse "no split brain: $n's monitor took nothing over: $(cat "$t/$n/hooks" 2>/dev/null)" \
			"[ -s '$t/$n/hooks' ]"
		assertNotContains "$n's monitor never saw its partner die" "$(cat "$t/$n/fmon.log")" \
			"alive -> dead"
	done
	assertEquals "A's partner epoch unchanged" "$b_epoch" "$(state_get "$t/a/run" CCM_PARTNER_EPOCH)"
	assertEquals "B's partner epoch unchanged" "$a_epoch" "$(state_get "$t/b/run" CCM_PARTNER_EPOCH)"
	assertTrue "A said why it refused: $(grep -m2 refused "$t/a/log")" \
		"grep -q 'refused a connection: node 2 has no pre-shared key; ours is required' '$t/a/log'"
	assertNotContains "the forged client message never reached a client" \
		"$(cat "$t/a/fmon.log" "$t/b/fmon.log")" "forge"
	stop_pair
}

# B dies.  A keyless host keeps trying A with forged heartbeats, and
# poses as B at B's own address with a status block whose heartbeat
# counts on: A's monitor still takes over within its bound.
test_forged_heartbeats_and_an_impostor_do_not_hide_a_dead_partner() {
	local b_epoch id t0 took imp att
	start_pair_with_monitors || return
	b_epoch=$(state_get "$t/a/run" CCM_PARTNER_EPOCH)
	id=$(key_id_of a)
	sleep 0.3
	t0=$(now_ms)
	kill -9 "$pid_b" "$fmon_b"
	wait "$pid_b" "$fmon_b" 2>/dev/null
	${KEYLESS} impostor 127.0.0.3 "$port" 2 "$b_epoch" 4 >"$t/impostor.log" 2>&1 &
	imp=$!
	( end=$(( $(now_ms) + 3500 ))
	  while [ "$(now_ms)" -lt "$end" ]; do
		${KEYLESS} attack 127.0.0.2 "$port" 2 "$id" >/dev/null 2>&1
	  done ) &
	att=$!
	wait_for 5 in_file takeover "$t/a/hooks"
	took=$(( $(now_ms) - t0 ))
	wait "$imp" "$att" 2>/dev/null
	echo "# takeover ran ${took} ms after B was killed; $(cat "$t/impostor.log")" >&2
	assertTrue "A's fmon took over: $(tail -3 "$t/a/fmon.log")" "in_file takeover '$t/a/hooks'"
	assertTrue "within dead-after + 1.5 s (took ${took} ms)" "[ $took -le 2500 ]"
	assertContains "the impostor never got to serve a READ" "$(cat "$t/impostor.log")" \
		"served 0 READs"
	assertTrue "A said the node at B's address did not prove the key: $(grep -m3 'key' "$t/a/log")" \
		"grep -q 'did not prove our pre-shared key' '$t/a/log'"
	kill -TERM "$pid_a"
	wait_exit "$pid_a" 10
	pids=""
}

. shunit2
