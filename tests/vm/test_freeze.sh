#!/usr/bin/env bash
# A frozen node (issue 10's "a node stalled for a while, as a frozen VM"),
# on real verbs: two guests, one keeper each, connected over one Soft-RoCE
# link. The host then stops guest b's qemu with SIGSTOP for FREEZE_SECS and
# lets it go on: b's whole machine, kernel and Soft-RoCE included, stands
# still while its clock runs on -- what a hypervisor that deschedules a VM,
# or a host that starves it, does. CI machines do it on their own: a boot
# test once saw b's guest not scheduled for 9.7 s, twice in a row.
#
# What must hold: a sees its partner unreachable while b is frozen; once b
# runs again a is connected within RECOVER_SECS, both to the same epochs as
# before (b did not reboot: a resume, not a new handshake), and a stream of
# writes and messages then flows both ways whole. b never saw the freeze
# as a loss (its own stall is not held against its partner), so the time
# a took is the figure, reported as a "# " line.
#
# Wall time: about 25 s (one boot of two guests, the freeze, a 4 s stream).
# FREEZE_SAVE=DIR: copy the guests' files (logs, handoffs) there.
set -u
# shellcheck disable=SC2154  # t and _shunit_test_ come from common.sh/shunit2
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

SAVE_TO=${FREEZE_SAVE:-}
# shellcheck source=tests/vm/stream.sh
. "$(dirname "$0")/stream.sh"
# shellcheck source=tests/vm/suite.sh
. "$(dirname "$0")/suite.sh"

FREEZE_SECS=10
RECOVER_SECS=15
# The keepers' defaults (a link down after 3 missed 10 ms heartbeats, the
# partner after 5 missed 100 ms ones): what the boot runs with.

write_scenario() {
	cat <<'EOS'
set -u
. "$LAB_LIB"
if [ "$role" = a ]; then id=1 peer=b; else id=2 peer=a; fi
run=/tmp/run
res=/out/$role.res
: >"$res"
result() { echo "$*" >>"$res"; }
# handoff KEY: the keeper's latest handoff value.
handoff() { sed -n "s/^$1='\(.*\)'\$/\1/p" $run/state 2>/dev/null; }
# wait_state STATES SECS: the handoff's state is one of STATES (grep -E).
wait_state() {
	_end=$(($(cut -d. -f1 /proc/uptime) + $2))
	until handoff CCM_STATE | grep -qxE "$1"; do
		[ "$(cut -d. -f1 /proc/uptime)" -lt $_end ] || return 1
		sleep 0.1
	done
}
keep() { cp $run/state "/out/$role.state-$1" 2>/dev/null; }
fail() { echo "scenario: $*"; result fail "$*"; keep fail; exit 1; }

mkdir -p /tmp/clients
for c in from_a from_b; do
	printf 'ports = 1\nport-size = 64K\n' >/tmp/clients/$c.conf
done
$CCM connect --node-id $id --listen "$ccm_local" --partner "$ccm_peer" --transport rdma \
	--clients /tmp/clients --state-dir $run --timeout 60 -v >>"/out/$role.keeper.log" 2>&1
rc=$?
result connect $rc
[ $rc = 0 ] || fail "connect exited $rc"
wait_state connected 30 || fail "never connected"
keep before
lab_mark connected

if [ "$role" = a ]; then
	# b stands still: a must tell, by the heartbeats.
	lab_wait_file /out/frozen 60 || fail "the host never froze b"
	wait_state unreachable 20 || fail "b frozen, and a still says $(handoff CCM_STATE)"
	keep frozen
fi
lab_wait_file /out/thawed 90 || fail "the host never let b go on"
t0=$(lab_uptime)
# b's own handoff says connected all along (it never saw the freeze): give
# its links a heartbeat after the thaw, then check. a's recovery is the
# figure: from seeing the thaw to its handoff saying connected.
[ "$role" = a ] || sleep 1
wait_state connected 30 || fail "not connected again after the freeze"
[ "$role" = b ] || result back "$(awk -v a="$t0" -v b="$(lab_uptime)" 'BEGIN { printf "%.1f", b - a }')"
keep after
lab_mark back
lab_wait_file "/out/$peer.back" 60 || fail "the partner never came back"

# The channel carries both ways again.
ccm-stream recv -v --state-dir $run --client "from_$peer" --seconds 4 \
	>"/out/$role.recv.out" 2>"/out/$role.recv.err" &
recv=$!
ccm-stream send -v --state-dir $run --client "from_$role" --seconds 4 \
	>"/out/$role.send.out" 2>"/out/$role.send.err"
result send $?
wait $recv
result recv $?
keep end
lab_mark streamed
lab_wait_file "/out/$peer.streamed" 60 || fail "the partner never finished its stream"
$CCM stop --state-dir $run
result stop $?
EOS
}

# hv FILE KEY: a saved handoff's value.
hv() { sed -n "s/^$2='\(.*\)'\$/\1/p" "$t/share/$1" 2>/dev/null; }

test_dgram_b_frozen_10s_then_both_connected_again() {
	lab_ready || return 0
	[ -x "$STREAM" ] || { fail "no $STREAM (tests/links/stream.c, make build/ccm-stream)"; return; }
	local s=$t/share r snd rcv k
	mkdir -p "$s"
	write_scenario >"$t/s.sh"
	vm_start dgram "$s" "$t/s.sh" --timeout 150 || { fail "vm_start"; return; }
	if ! { wait_file "$s/a.connected" 90 && wait_file "$s/b.connected" 30; }; then
		vm_kill_all
		show_logs
		fail "the pair never connected"
		return
	fi
	vm_freeze b stop || { vm_kill_all; fail "cannot freeze guest b"; return; }
	date +%s.%N >"$s/frozen"
	sleep "$FREEZE_SECS"
	vm_freeze b cont
	date +%s.%N >"$s/thawed"
	vm_wait || show_logs
	save_share

	for r in a b; do
		assertEquals "$r: guest scenario (see $s/$r.res)" 0 "$(cat "$s/$r.rc" 2>/dev/null)"
		assertEquals "$r: connect" 0 "$(res $r connect)"
		assertEquals "$r: connected again after the freeze (see $s/$r.keeper.log)" connected \
			"$(hv $r.state-after CCM_STATE)"
		assertEquals "$r: the same partner epoch as before the freeze (a resume)" \
			"$(hv $r.state-before CCM_PARTNER_EPOCH)" "$(hv $r.state-after CCM_PARTNER_EPOCH)"
		assertEquals "$r: its own epoch unchanged" \
			"$(hv $r.state-before CCM_EPOCH)" "$(hv $r.state-after CCM_EPOCH)"
		assertEquals "$r: still connected after the stream" connected "$(hv $r.state-end CCM_STATE)"
		assertEquals "$r: stream send" 0 "$(res $r send)"
		assertEquals "$r: stream recv" 0 "$(res $r recv)"
		assertEquals "$r: the keeper stopped cleanly" 0 "$(res $r stop)"
	done
	assertEquals "a: b unreachable while frozen" unreachable "$(hv a.state-frozen CCM_STATE)"
	assertTrue "a: connected again within $RECOVER_SECS s of the thaw, not '$(res a back)'" \
		"awk -v b='$(res a back)' -v m=$RECOVER_SECS 'BEGIN { exit !(b != \"\" && b <= m) }'"
	# The connection requests a sent meanwhile queued up at b, given up on
	# by their sender: b drops them without an error line.
	assertNotContains "b: no refusal logged for the stale requests" \
		"$(cat "$s/b.keeper.log" 2>/dev/null)" "refused a connection"
	assertContains "b: but it saw its own stall" \
		"$(cat "$s/b.keeper.log" 2>/dev/null)" "this keeper was not scheduled for"
	for r in a b; do
		snd=$(grep '^stream send: ' "$s/$r.send.out" 2>/dev/null)
		rcv=$(grep '^stream recv: ' "$s/$r.recv.out" 2>/dev/null)
		assertNotNull "$r: its send summary" "$snd"
		assertNotNull "$r: its recv summary" "$rcv"
		assertEquals "$r: no send or write failed" 0 "$(field "$snd" errors)"
		assertTrue "$r: messages flowed: $rcv" "[ '$(field "$rcv" msgs)' -gt 0 ] 2>/dev/null"
		for k in lost dup reordered corrupt; do
			assertEquals "$r: $k" 0 "$(field "$rcv" $k)"
		done
	done
	echo "# ${_shunit_test_}: b frozen ${FREEZE_SECS}s; a connected again $(res a back)s after it saw the thaw (its clock, 0.1 s polls)" >&2
}

. shunit2
