#!/usr/bin/env bash
# The rdma transport on real verbs: Soft-RoCE (rdma_rxe) in qemu guests, the
# static ccm-early (the shipped artifact) inside them.
#
#   veth:  one guest, two nodes as two processes: node 1 on rxe0 (10.0.0.1),
#          node 2 on rxe1 (10.0.0.2); the handshake, the port windows, and a
#          node killed after state 2
#   dgram: two guests, one node each, joined by qemu dgram netdevs: start
#          orders (a first, b 20 s late, both together) and b's ccm-early
#          killed after state 2 and restarted
set -u
# shellcheck disable=SC2154  # t and _shunit_test_ come from common.sh/shunit2
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"
LAB_ADD=(--add "$VM_TOP/build/bench/portping:/usr/bin/portping"
	 --add "$VM_TOP/build/tests/keyless_rdma:/usr/bin/keyless_rdma")
# shellcheck source=tests/vm/suite.sh
. "$(dirname "$0")/suite.sh"

# The scenario's common start: client descriptors, and a node function.
# node ID LISTEN PARTNER [extra args]: a --once node, state in /out/run-ID,
# log in /out/node-ID.log.
preamble() {
	cat <<'EOS'
. "$LAB_LIB"
for d in /tmp/c1 /tmp/c2; do
	mkdir -p $d
	printf 'ports = 1\nport-size = 4K\n' > $d/fmon.conf
	printf 'ports = 2\nport-size = 1M\n' > $d/nvmirror.conf
done
node() {
	_id=$1 _me=$2 _peer=$3
	shift 3
	$CCM connect --node-id $_id --listen $_me --partner $_peer --transport rdma \
		--clients /tmp/c$_id --state-dir /out/run-$_id --once --timeout 90 -vv "$@" \
		>> /out/node-$_id.log 2>&1
}
state() { grep "^$2=" /out/run-$1/state | cut -d"'" -f2; }
EOS
}

# Both handoffs connected, each naming the other's current epoch.
assert_pair() {
	local s=$t/share
	for n in 1 2; do
		assertEquals "node $n state" connected "$(state_get "$s/run-$n" CCM_STATE)"
		assertEquals "node $n transport" rdma "$(state_get "$s/run-$n" CCM_TRANSPORT)"
		assertEquals "node $n clients" "fmon nvmirror" "$(state_get "$s/run-$n" CCM_CLIENTS)"
	done
	assertEquals "1 knows 2's epoch" "$(state_get "$s/run-2" CCM_EPOCH)" \
		"$(state_get "$s/run-1" CCM_PARTNER_EPOCH)"
	assertEquals "2 knows 1's epoch" "$(state_get "$s/run-1" CCM_EPOCH)" \
		"$(state_get "$s/run-2" CCM_PARTNER_EPOCH)"
}

# ---------------------------------------------------------------- one guest

test_veth_handshake_then_port_windows_match() {
	lab_ready || return 0
	mkdir -p "$t/share"
	{ preamble; cat <<'EOS'
node 1 10.0.0.1 10.0.0.2 &
sleep 1
node 2 10.0.0.2 10.0.0.1 || exit 2
wait $! || exit 1
# The port windows: one-sided READ and WRITE both ways, content checked.
portping --node 1 --local 10.0.0.1 --partner 10.0.0.2 verify > /out/pp1.log 2>&1 &
portping --node 2 --local 10.0.0.2 --partner 10.0.0.1 verify > /out/pp2.log 2>&1 || exit 3
wait $! || exit 4
EOS
	} >"$t/s.sh"
	lab veth "$t/share" "$t/s.sh" --timeout 90
	assertEquals "scenario status (see $t/share)" 0 "$VM_RC_a"
	assert_pair
	assertContains "$(cat "$t/share/pp1.log")" "read 65536 bytes of node 2's window: match"
	assertContains "$(cat "$t/share/pp1.log")" "node 2 wrote 65536 bytes into our window: match"
	assertContains "$(cat "$t/share/pp2.log")" "node 1 wrote 65536 bytes into our window: match"
}

test_veth_node_killed_after_state_2_and_restarted() {
	lab_ready || return 0
	mkdir -p "$t/share"
	{ preamble; cat <<'EOS'
node 1 10.0.0.1 10.0.0.2 &
sleep 1
CCM_EARLY_TEST_CRASH_AT=read4 node 2 10.0.0.2 10.0.0.1
echo "first node 2: $?" > /out/first.rc
state 2 CCM_EPOCH > /out/first.epoch
node 2 10.0.0.2 10.0.0.1 || exit 2
wait $! || exit 1
EOS
	} >"$t/s.sh"
	lab veth "$t/share" "$t/s.sh" --timeout 90
	assertEquals "scenario status (see $t/share)" 0 "$VM_RC_a"
	assertEquals "node 2 died by SIGKILL after its write in state 2" "first node 2: 137" \
		"$(cat "$t/share/first.rc")"
	assert_pair
	assertNotEquals "node 2 came back with a new epoch" "$(cat "$t/share/first.epoch")" \
		"$(state_get "$t/share/run-2" CCM_EPOCH)"
}

# A third node (id 3, on rxe1 at another port) whose partner address is node
# 1's, next to the connected pair: node 1 refuses it before it touches
# anything (a reject whose private data says why), and the pair goes on.
test_veth_a_stray_node_never_disturbs_the_pair() {
	lab_ready || return 0
	mkdir -p "$t/share"
	{ preamble; cat <<'EOS'
mkdir -p /tmp/c3 && cp /tmp/c1/* /tmp/c3/
keeper() {
	_id=$1 _me=$2 _peer=$3
	shift 3
	$CCM connect --node-id $_id --listen $_me --partner $_peer --transport rdma \
		--clients /tmp/c$_id --state-dir /tmp/run-$_id --foreground -v "$@" \
		>> /out/node-$_id.log 2>&1 &
}
# Keepers: their state (and control socket) off the 9p share.
kstate() { grep "^$2=" /tmp/run-$1/state 2>/dev/null | cut -d"'" -f2; }
keeper 1 10.0.0.1 10.0.0.2; p1=$!
keeper 2 10.0.0.2 10.0.0.1; p2=$!
for i in $(seq 300); do
	[ "$(state 1 CCM_STATE)" = connected ] && [ "$(state 2 CCM_STATE)" = connected ] && break
	sleep 0.2
done
for n in 1 2; do kstate $n CCM_PARTNER_EPOCH > /out/before-$n.epoch; done
keeper 3 10.0.0.2:7472 10.0.0.1; p3=$!
i=0
until grep -q "refused us" /out/node-3.log || [ $i -ge 150 ]; do sleep 0.2; i=$((i + 1)); done
sleep 5
for n in 1 2; do
	kstate $n CCM_STATE > /out/after-$n.state
	kstate $n CCM_PARTNER_EPOCH > /out/after-$n.epoch
done
kill -TERM $p3 $p1 $p2
wait
EOS
	} >"$t/s.sh"
	lab veth "$t/share" "$t/s.sh" --timeout 120
	assertEquals "scenario status (see $t/share)" 0 "$VM_RC_a"
	for n in 1 2; do
		assertEquals "node $n still connected" connected "$(cat "$t/share/after-$n.state")"
		assertEquals "node $n: the same partner epoch" "$(cat "$t/share/before-$n.epoch")" \
			"$(cat "$t/share/after-$n.epoch")"
		assertFalse "node $n never lost its session" \
			"grep -q 'session with the partner lost\|-> error\|unreachable' '$t/share/node-$n.log'"
	done
	assertContains "node 1 refused node 3" "$(cat "$t/share/node-1.log")" \
		"refused a connection: node 3 is not our partner (node 2)"
	assertContains "node 3 heard why" "$(cat "$t/share/node-3.log")" \
		"refused us: it is connected to another partner"
}

# With a pre-shared key: the pair connects over the keyed greeting (the
# status window sealed in the accept, the active side's proof, every
# message sealed), and hands over the same key id.  Then node 3, posing as
# node 2 from node 2's own address, once with another key and once with
# none: node 1 refuses both before they touch anything, each hears why,
# tries on (a refusal carries no proof) and exits 5 at its --timeout.  Then a host that names the real key id but cannot prove it
# (keyless_rdma): the accept hides the status window from it, and it is
# dropped, whether it sends nothing or a BYE; knowing the window's rkey
# (opened with the key from another accept, as if guessed), it can neither
# READ nor WRITE it before a proof; the keyed greeting of earlier builds is
# refused.  The pair goes on.
test_veth_with_a_key_only_the_key_holder_gets_in() {
	lab_ready || return 0
	mkdir -p "$t/share"
	"${CCM}" keygen "$t/share/key" >/dev/null || { fail keygen; return; }
	"${CCM}" keygen "$t/share/other" >/dev/null || { fail keygen; return; }
	{ preamble; cat <<'EOS'
mkdir -p /tmp/c3 && cp /tmp/c1/* /tmp/c3/
cp /out/key /tmp/key && chmod 600 /tmp/key
cp /out/other /tmp/other && chmod 600 /tmp/other
keeper() {
	_id=$1 _me=$2 _peer=$3
	shift 3
	$CCM connect --node-id $_id --listen $_me --partner $_peer --transport rdma \
		--clients /tmp/c$_id --state-dir /tmp/run-$_id --foreground -v "$@" \
		>> /out/node-$_id.log 2>&1 &
}
kstate() { grep "^$2=" /tmp/run-$1/state 2>/dev/null | cut -d"'" -f2; }
keeper 1 10.0.0.1 10.0.0.2 --psk-file /tmp/key; p1=$!
keeper 2 10.0.0.2 10.0.0.1 --psk-file /tmp/key; p2=$!
for i in $(seq 300); do
	[ "$(kstate 1 CCM_STATE)" = connected ] && [ "$(kstate 2 CCM_STATE)" = connected ] && break
	sleep 0.2
done
for n in 1 2; do
	kstate $n CCM_STATE > /out/before-$n.state
	kstate $n CCM_PARTNER_EPOCH > /out/before-$n.epoch
	kstate $n CCM_KEY_ID > /out/key-$n.id
done
# Node "2" again, from 10.0.0.2 at another port: another key, then none.
$CCM connect --node-id 2 --listen 10.0.0.2:7472 --partner 10.0.0.1 --transport rdma \
	--clients /tmp/c3 --state-dir /tmp/run-3 --timeout 6 -v --psk-file /tmp/other \
	>> /out/node-3.log 2>&1
echo $? > /out/other.rc
$CCM connect --node-id 2 --listen 10.0.0.2:7473 --partner 10.0.0.1 --transport rdma \
	--clients /tmp/c3 --state-dir /tmp/run-4 --timeout 6 -v >> /out/node-4.log 2>&1
echo $? > /out/none.rc
# And one that names the real key id but cannot prove it (tests/vm/keyless_rdma.c).
# With the key file it also knows the status window's rkey (as if guessed),
# and READs and WRITEs it without proving the key.
keyless_rdma 10.0.0.2 10.0.0.1 2 "$(kstate 1 CCM_KEY_ID)" /tmp/key > /out/keyless.log 2>&1
echo $? > /out/keyless.rc
sleep 2
for n in 1 2; do
	kstate $n CCM_STATE > /out/after-$n.state
	kstate $n CCM_PARTNER_EPOCH > /out/after-$n.epoch
done
kill -TERM $p1 $p2
wait
EOS
	} >"$t/s.sh"
	lab veth "$t/share" "$t/s.sh" --timeout 150
	# RDMA_SAVE=DIR keeps the guest's files (shunit2 removes $t).
	[ -z "${RDMA_SAVE:-}" ] || { mkdir -p "$RDMA_SAVE" && cp -a "$t/share/." "$RDMA_SAVE/"; }
	assertEquals "scenario status (see $t/share)" 0 "$VM_RC_a"
	for n in 1 2; do
		assertEquals "node $n connected with the key" connected "$(cat "$t/share/before-$n.state")"
		assertEquals "node $n still connected" connected "$(cat "$t/share/after-$n.state")"
		assertEquals "node $n: the same partner epoch" "$(cat "$t/share/before-$n.epoch")" \
			"$(cat "$t/share/after-$n.epoch")"
		assertFalse "node $n never lost its session" \
			"grep -q 'session with the partner lost\|-> error\|unreachable' '$t/share/node-$n.log'"
	done
	assertNotEquals "a key id" "" "$(cat "$t/share/key-1.id")"
	assertEquals "both hold the same key" "$(cat "$t/share/key-1.id")" "$(cat "$t/share/key-2.id")"
	assertEquals "another key: exit 5 (authentication)" 5 "$(cat "$t/share/other.rc")"
	assertEquals "no key: exit 5" 5 "$(cat "$t/share/none.rc")"
	assertContains "node 1 said why (another key)" "$(cat "$t/share/node-1.log")" \
		"which we do not hold"
	assertContains "the one with another key heard why" "$(cat "$t/share/node-3.log")" \
		"holds another pre-shared key, or none"
	assertContains "the one with none heard why" "$(cat "$t/share/node-4.log")" \
		"requires a pre-shared key"
	assertEquals "a keyless host naming the key id: every check held: $(cat "$t/share/keyless.log")" \
		0 "$(cat "$t/share/keyless.rc")"
	assertContains "$(cat "$t/share/keyless.log")" \
		"held - the accept shows neither the status window's address nor its rkey"
	assertContains "$(cat "$t/share/keyless.log")" \
		"held - no proof at all: the keeper drops the connection"
	assertContains "$(cat "$t/share/keyless.log")" \
		"held - a BYE instead of the proof: the keeper drops the connection"
	assertContains "$(cat "$t/share/keyless.log")" \
		"held - a READ of the status window with its real rkey, before any proof, fails"
	assertContains "$(cat "$t/share/keyless.log")" \
		"held - a WRITE of the status window with its real rkey, before any proof, fails"
	assertContains "$(cat "$t/share/keyless.log")" \
		"held - a keyed request of the ungated greeting is refused as such"
}

# ---------------------------------------------------------------- two guests

# dgram scenario: guest a runs node 1, guest b node 2.
dgram_script() {
	preamble
	cat <<'EOS'
if [ "$role" = a ]; then id=1; else id=2; fi
EOS
	cat
}

test_dgram_a_first_b_5s_late() {
	lab_ready || return 0
	mkdir -p "$t/share"
	dgram_script >"$t/s.sh" <<'EOS'
node $id $ccm_local $ccm_peer
EOS
	lab dgram "$t/share" "$t/s.sh" --delay-b 5 --timeout 90
	assertEquals "guest a (see $t/share)" 0 "$VM_RC_a"
	assertEquals "guest b" 0 "$VM_RC_b"
	assert_pair
}

test_dgram_b_20s_late_a_waits_in_state_3() {
	lab_ready || return 0
	mkdir -p "$t/share"
	dgram_script >"$t/s.sh" <<'EOS'
if [ $id = 1 ]; then
	node 1 $ccm_local $ccm_peer &
	sleep 10
	state 1 CCM_HS_STATE > /out/a-waiting.state
	wait $!
else
	node 2 $ccm_local $ccm_peer
fi
EOS
	lab dgram "$t/share" "$t/s.sh" --delay-b 20 --timeout 120
	assertEquals "guest a (see $t/share)" 0 "$VM_RC_a"
	assertEquals "guest b" 0 "$VM_RC_b"
	assertEquals "a waited in state 3 while b was down" wait3 "$(cat "$t/share/a-waiting.state")"
	assert_pair
}

test_dgram_both_together() {
	lab_ready || return 0
	mkdir -p "$t/share"
	dgram_script >"$t/s.sh" <<'EOS'
node $id $ccm_local $ccm_peer
EOS
	lab dgram "$t/share" "$t/s.sh" --timeout 90
	assertEquals "guest a (see $t/share)" 0 "$VM_RC_a"
	assertEquals "guest b" 0 "$VM_RC_b"
	assert_pair
}

test_dgram_b_killed_after_state_2_and_restarted() {
	lab_ready || return 0
	mkdir -p "$t/share"
	dgram_script >"$t/s.sh" <<'EOS'
if [ $id = 1 ]; then
	node 1 $ccm_local $ccm_peer
else
	lab_wait_file /out/run-1/state 30
	CCM_EARLY_TEST_CRASH_AT=read4 node 2 $ccm_local $ccm_peer
	echo "first node 2: $?" > /out/first.rc
	state 2 CCM_EPOCH > /out/first.epoch
	node 2 $ccm_local $ccm_peer
fi
EOS
	lab dgram "$t/share" "$t/s.sh" --timeout 120
	assertEquals "guest a (see $t/share)" 0 "$VM_RC_a"
	assertEquals "guest b" 0 "$VM_RC_b"
	assertEquals "b's ccm-early died by SIGKILL after state 2" "first node 2: 137" \
		"$(cat "$t/share/first.rc")"
	assert_pair
	assertNotEquals "b came back with a new epoch" "$(cat "$t/share/first.epoch")" \
		"$(state_get "$t/share/run-2" CCM_EPOCH)"
}

. shunit2
