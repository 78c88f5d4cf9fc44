#!/usr/bin/env bash
# The message channel's flow control on real verbs: two guests, one keeper
# each, connected over one Soft-RoCE link, a client "flow" on each.  b's
# client attaches and then reads nothing for 3 s while a's sends 5,000
# messages of 64 bytes as fast as the channel takes them (ccm-msgflow,
# tests/twonode/msgflow.c, static).  What must hold, as over tcp in
# tests/twonode/test_keeper.sh: every message arrives once, in order; the
# receiver is not dropped; the sender is held back (-EAGAIN) with at most
# one window (64) in flight; every DONE is 0.  Over rdma the acks that
# return the credit are READ by the sender's keeper from the receiver's
# status window, which the receiver's NIC answers.
#
# A second run has b's client attach 2 s after a began, take 1,000 and
# leave, and a second client take the rest: the first gets 1..1000, the
# second everything after what the first's channel held unread, to the
# last, in order; every DONE 0.
#
# A third has b's keeper killed while a streams, and started again (a new
# epoch): a's sender stops at its first failed DONE; every message it sent
# has its DONE, the ones confirmed (0) were all received, the rest failed
# with ECONNRESET, and the pair is connected again.
#
# Wall time: about 30 s a test (one boot of two guests, the stream).
set -u
# shellcheck disable=SC2154  # t and _shunit_test_ come from common.sh/shunit2
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

SAVE_TO=${MSGFLOW_SAVE:-}
# shellcheck source=tests/vm/stream.sh
. "$(dirname "$0")/stream.sh"
MSGFLOW=$VM_TOP/build/ccm-msgflow
[ -x "$MSGFLOW" ] || (cd "$VM_TOP" && make build/ccm-msgflow >&2) || true
[ ! -x "$MSGFLOW" ] || LAB_ADD+=(--add "$MSGFLOW:/usr/bin/ccm-msgflow")
# shellcheck source=tests/vm/suite.sh
. "$(dirname "$0")/suite.sh"

# The partner's heartbeat: Soft-RoCE under TCG answers a heartbeat READ
# 300-600 ms late under a stream (measured, tests/vm/test_links.sh), so at
# the default 100 ms x 5 a partner that is there can be declared lost (a
# CI run lost it after 2,076 messages).  2 s here, as in test_links;
# MSGFLOW_KEEPER_ARGS= runs the defaults.
KEEPER_ARGS=${MSGFLOW_KEEPER_ARGS---heartbeat-ms 200 --heartbeat-misses 10}

# write_scenario slow|late|reboot
write_scenario() {
	echo "mode=$1"
	echo "keeper_args='$KEEPER_ARGS'"
	cat <<'EOS'
set -u
. "$LAB_LIB"
if [ "$role" = a ]; then id=1 peer=b; else id=2 peer=a; fi
run=/tmp/run
res=/out/$role.res
: >"$res"
result() { echo "$*" >>"$res"; }
fail() { echo "scenario: $*"; result fail "$*"; exit 1; }

mkdir -p /tmp/clients
printf 'ports = 1\nport-size = 64K\n' >/tmp/clients/flow.conf
# shellcheck disable=SC2086  # keeper_args: words
$CCM connect --node-id $id --listen "$ccm_local" --partner "$ccm_peer" --transport rdma \
	--clients /tmp/clients --state-dir $run --timeout 60 -v $keeper_args >>"/out/$role.keeper.log" 2>&1
rc=$?
result connect $rc
[ $rc = 0 ] || fail "connect exited $rc"
lab_mark connected
lab_wait_file "/out/$peer.connected" 60 || fail "the partner never connected"

if [ "$role" = b ] && [ "$mode" = slow ]; then
	ccm-msgflow recv --state-dir $run --client flow --count 5000 --deaf-ms 3000 \
		--timeout-s 120 >/out/b.recv.out 2>/out/b.recv.err &
	recv=$!
	n=0
	until grep -q attached /out/b.recv.out 2>/dev/null || [ $n -ge 100 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	lab_mark attached
	wait $recv
	result recv $?
elif [ "$role" = b ] && [ "$mode" = reboot ]; then
	ccm-msgflow recv --state-dir $run --client flow --count 100000000 --until-gone \
		--timeout-s 120 >/out/b.recv.out 2>/out/b.recv.err &
	recv=$!
	lab_wait_file /out/a.sending 60 || fail "a never began"
	sleep 2
	# The keeper dies without a word, and a new one (a new epoch) comes.
	kill -9 "$(. $run/state; echo "$CCM_PID")"
	wait $recv
	result recv $?
	# shellcheck disable=SC2086
	$CCM connect --node-id $id --listen "$ccm_local" --partner "$ccm_peer" --transport rdma \
		--clients /tmp/clients --state-dir $run --timeout 60 -v $keeper_args >>"/out/$role.keeper.log" 2>&1
	result reconnect $?
elif [ "$role" = b ]; then
	# Late: a has been sending for 2 s.  Then one that leaves, and one
	# that takes the rest.
	lab_wait_file /out/a.sending 60 || fail "a never began"
	sleep 2
	ccm-msgflow recv --state-dir $run --client flow --count 1000 --timeout-s 120 \
		>/out/b.recv1.out 2>/out/b.recv1.err
	result recv1 $?
	ccm-msgflow recv --state-dir $run --client flow --count 5000 --from-any --timeout-s 120 \
		>/out/b.recv.out 2>/out/b.recv.err
	result recv $?
else
	if [ "$mode" = slow ]; then
		lab_wait_file /out/b.attached 60 || fail "b's receiver never attached"
	fi
	lab_mark sending
	if [ "$mode" = reboot ]; then
		ccm-msgflow send --state-dir $run --client flow --count 100000000 --until-lost \
			--timeout-s 120 >/out/a.send.out 2>/out/a.send.err
	else
		ccm-msgflow send --state-dir $run --client flow --count 5000 --size 64 \
			--timeout-s 120 >/out/a.send.out 2>/out/a.send.err
	fi
	result send $?
fi
if [ "$mode" = reboot ]; then
	n=0
	until grep -qx "CCM_STATE='connected'" $run/state 2>/dev/null || [ $n -ge 300 ]; do
		sleep 0.1
		n=$((n + 1))
	done
	result again "$(. $run/state; echo "$CCM_STATE")"
fi
lab_mark flowed
lab_wait_file "/out/$peer.flowed" 150 || fail "the partner never finished"
$CCM stop --state-dir $run
result stop $?
EOS
}

# out_field ROLE MODE KEY: KEY=VALUE's value in that ccm-msgflow's summary.
out_field() { field "$(tail -1 "$t/share/$1.$2.out" 2>/dev/null)" "$3"; }

# run_scenario MODE: boot both guests with it and wait; the common checks.
run_scenario() {
	local s=$t/share r
	mkdir -p "$s"
	write_scenario "$1" >"$t/s.sh"
	vm_start dgram "$s" "$t/s.sh" --timeout 240 || { fail "vm_start"; return 1; }
	vm_wait || show_logs
	save_share
	for r in a b; do
		assertEquals "$r: guest scenario (see $s/$r.res)" 0 "$(cat "$s/$r.rc" 2>/dev/null)"
		assertEquals "$r: connect" 0 "$(res $r connect)"
		assertEquals "$r: the keeper stopped cleanly" 0 "$(res $r stop)"
	done
	assertEquals "a: the sender's exit status ($(head -3 "$s/a.send.err" 2>/dev/null))" 0 "$(res a send)"
}

test_dgram_a_slow_receiver_over_rdma() {
	lab_ready || return 0
	[ -x "$MSGFLOW" ] || { fail "no $MSGFLOW (tests/twonode/msgflow.c, make build/ccm-msgflow)"; return; }
	local s=$t/share n
	run_scenario slow || return
	assertEquals "a: every send DONE 0" 5000 "$(out_field a send done)"
	assertEquals "b: the receiver's exit status ($(head -3 "$s/b.recv.err" 2>/dev/null))" 0 "$(res b recv)"
	assertEquals "b: all 5,000, once each, in order" 5000 "$(out_field b recv received)"
	n=$(out_field a send eagain)
	assertTrue "a: held back by the window (-EAGAIN $n times)" "[ '${n:-0}' -gt 0 ]"
	n=$(out_field a send max_in_flight)
	assertTrue "a: at most a window in flight ($n)" "[ '${n:-999}' -le 64 ]"
	assertNotContains "b: its keeper kept its slow client" "$(cat "$s/b.keeper.log" 2>/dev/null)" "dropp"
	echo "# ${_shunit_test_}: $(tail -1 "$s/a.send.out" 2>/dev/null); $(tail -1 "$s/b.recv.out" 2>/dev/null)" >&2
}

test_dgram_a_late_receiver_that_leaves_and_returns_over_rdma() {
	lab_ready || return 0
	[ -x "$MSGFLOW" ] || { fail "no $MSGFLOW (tests/twonode/msgflow.c, make build/ccm-msgflow)"; return; }
	local s=$t/share first
	run_scenario late || return
	assertEquals "a: every send DONE 0" 5000 "$(out_field a send done)"
	assertEquals "b: the first receiver's exit status ($(head -3 "$s/b.recv1.err" 2>/dev/null))" \
		0 "$(res b recv1)"
	assertEquals "b: it got 1..1000 (what waited for it first)" "1 1000" \
		"$(out_field b recv1 first) $(out_field b recv1 last)"
	assertEquals "b: the second receiver's exit status ($(head -3 "$s/b.recv.err" 2>/dev/null))" \
		0 "$(res b recv)"
	first=$(out_field b recv first)
	assertTrue "b: the second began after the first's last ($first)" "[ '${first:-0}' -gt 1000 ]"
	assertTrue "b: at most a window went unread with the first ($first)" \
		"[ '${first:-9999}' -le $((1001 + 64)) ]"
	assertEquals "b: and got every one to the last, in order" 5000 "$(out_field b recv last)"
	echo "# ${_shunit_test_}: $(tail -1 "$s/a.send.out" 2>/dev/null); first receiver $(tail -1 "$s/b.recv1.out" 2>/dev/null); second $(tail -1 "$s/b.recv.out" 2>/dev/null)" >&2
}

test_dgram_the_receivers_keeper_reboots_mid_stream_over_rdma() {
	lab_ready || return 0
	[ -x "$MSGFLOW" ] || { fail "no $MSGFLOW (tests/twonode/msgflow.c, make build/ccm-msgflow)"; return; }
	local s=$t/share sent done failed last
	run_scenario reboot || return
	assertEquals "b: the receiver saw its keeper go ($(head -3 "$s/b.recv.err" 2>/dev/null))" \
		0 "$(res b recv)"
	assertEquals "b: a new keeper connected" 0 "$(res b reconnect)"
	sent=$(out_field a send sent) done=$(out_field a send done)
	failed=$(out_field a send failed) last=$(out_field b recv last)
	assertTrue "a: messages flowed before the reboot ($done)" "[ '${done:-0}' -gt 100 ]"
	assertTrue "a: some were not confirmed ($failed)" "[ '${failed:-0}' -gt 0 ]"
	assertEquals "a: every message sent has its DONE" "$sent" "$((done + failed))"
	# DONEs come in order: 1..done were confirmed, and each was received.
	assertTrue "a: every confirmed message was received ($done <= $last)" \
		"[ '${done:-1}' -le '${last:-0}' ]"
	assertEquals "a: the unconfirmed failed with ECONNRESET" -104 "$(out_field a send first_error)"
	for r in a b; do
		assertEquals "$r: connected again" connected "$(res $r again)"
	done
	echo "# ${_shunit_test_}: $(tail -1 "$s/a.send.out" 2>/dev/null); $(tail -1 "$s/b.recv.out" 2>/dev/null)" >&2
}

. shunit2
