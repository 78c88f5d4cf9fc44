#!/usr/bin/env bash
# Several interconnects (issue 6): two keepers, node A (id 1, 127.0.0.2)
# and node B (id 2, 127.0.0.3), joined by two links over loopback, link i
# on TCP port $p0 or $p1 at both ends.  A link is cut silently with
# nftables -- its packets dropped as they arrive, no RST, as a pulled cable
# would -- in a table of this suite's own.  ccm-stream streams writes and
# messages both ways (client sab from A to B, sba from B to A) through the
# cuts and checks that nothing was lost, duplicated, reordered or written
# wrong, and that both sides' windows end up the same.
#
# Scenarios: one link cut mid-stream; its return after the damping time;
# the standby policy; both links cut (partner lost, then back over one);
# a link flapping for 10 s (no error, no leak, little CPU, ports stay on
# the stable link); a single --link against a plain --listen/--partner;
# the pre-shared key rotated on both nodes, step by step, mid-stream.

# Variables set by common.sh (t, port, ccm_rc) and by eval (pid_a, send_a):
# shellcheck disable=SC2154
set -u
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/nftcut.sh
. "$(dirname "$0")/../lib/nftcut.sh"

bindir=$(cd "$(dirname "${CCM}")" && pwd)
topdir=$(cd "$(dirname "$0")/../.." && pwd)
STREAM=${STREAM:-${bindir}/ccm-stream}
NFT_TABLE=ccm_test_$$
NPORTS=8          # sab 4 + sba 4: the ports each keeper carries
DAMP_MS=1000      # --link-damp-ms's default
# Streams that keep every port busy without taking all of the CPU: the
# sanitizer keepers, saturated, are late with a 10 ms heartbeat now and
# then, and a link declared down then would muddle what a test checks.
# The first test streams flat out.
RATE=2000
suite_error=""

oneTimeSetUp() {
	local b
	for b in "${CCM}" "${STREAM}"; do
		[ -x "$b" ] || suite_error="no binary at $b; run make dev"
	done
	if [ -z "$suite_error" ] && ! "${CCM}" connect --help 2>&1 | grep -q -- '--link LOCAL'; then
		suite_error="${CCM} has no --link"
	fi
	# The cut (tests/lib/nftcut.sh): a set of TCP ports dropped between the nodes.
	nftcut_create "${NFT_TABLE}" ||
		suite_error="cannot create nftables table ${NFT_TABLE} (nft, root?)"
}

# Also run by shunit2's exit trap, after the table is gone.
oneTimeTearDown() {
	nft delete table inet "${NFT_TABLE}" 2>/dev/null || true
}

setUp() {
	ccm_begin_test
	p0=$port
	p1=$((port + 10000))
	link0_opts="" link1_opts=""
	keeper_bin=${CCM}
	for n in a b; do
		make_client "$t/$n/clients" sab 4 64K
		make_client "$t/$n/clients" sba 4 64K
	done
}

# LINKS_KEEP=DIR keeps each test's directory (logs, outputs) under DIR.
tearDown() {
	nft flush set inet "${NFT_TABLE}" cut 2>/dev/null
	ccm_end_test
	if [ -n "${LINKS_KEEP:-}" ] && [ -d "${t:-}" ]; then
		mkdir -p "${LINKS_KEEP}" && cp -r "$t" "${LINKS_KEEP}/"
	fi
}

suite_ok() {
	[ -z "$suite_error" ] || { fail "$suite_error"; return 1; }
}

# --- the keepers -------------------------------------------------------------

# start_node a|b [extra args...]: a keeper in the foreground with both
# links (each with $link0_opts / $link1_opts appended) and that node's
# clients; its pid in pid_NODE, its log $t/NODE/log.
start_node() {
	local n=$1 id me peer
	shift
	if [ "$n" = a ]; then id=1 me=127.0.0.2 peer=127.0.0.3; else id=2 me=127.0.0.3 peer=127.0.0.2; fi
	mkdir -p "$t/$n"
	"${keeper_bin}" connect --node-id "$id" \
		--link "$me:$p0=$peer:$p0$link0_opts" --link "$me:$p1=$peer:$p1$link1_opts" \
		--clients "$t/$n/clients" --state-dir "$t/$n/run" -v --foreground "$@" \
		>>"$t/$n/log" 2>&1 </dev/null &
	eval "pid_$n=$!"
	pids="$pids $!"
}

start_pair() {
	start_node a "$@"
	start_node b "$@"
}

connected() {
	[ "$(state_get "$t/$1/run" CCM_STATE 2>/dev/null)" = connected ]
}

not_connected() {
	! connected "$1"
}

# NODE's handoff says the partner is gone: unreachable (the session waits
# for a link to come back) or handshaking (a new one), with the reason.
assert_lost() {
	local st
	st=$(state_get "$t/$1/run" CCM_STATE)
	assertTrue "$1 lost its partner (state '$st')" "[ '$st' = unreachable ] || [ '$st' = handshaking ]"
	assertContains "$1's handoff says why" "$(state_get "$t/$1/run" CCM_ERROR)" partner
}

link_state() {  # NODE LINK
	state_get "$t/$1/run" "CCM_LINK_$2_STATE" 2>/dev/null
}

link_ports() {  # NODE LINK
	state_get "$t/$1/run" "CCM_LINK_$2_PORTS" 2>/dev/null
}

# Both nodes: link LINK is in STATE.
link_is() {
	[ "$(link_state a "$1")" = "$2" ] && [ "$(link_state b "$1")" = "$2" ]
}

link_not_up() {
	local n s
	for n in a b; do
		s=$(link_state "$n" "$1")
		[ -n "$s" ] && [ "$s" != up ] && [ "$(link_ports "$n" "$1")" = 0 ] || return 1
	done
}

# Both nodes: link LINK carries exactly N ports.
ports_on() {
	[ "$(link_ports a "$1")" = "$2" ] && [ "$(link_ports b "$1")" = "$2" ]
}

# Both nodes: both links carry some ports.
spread() {
	local n
	for n in a b; do
		[ "$(link_ports "$n" 0)" -gt 0 ] 2>/dev/null && [ "$(link_ports "$n" 1)" -gt 0 ] 2>/dev/null ||
			return 1
	done
}

# status_link NODE LINK KEY: KEY of links[LINK] in `ccm-early status --json`.
status_link() {
	"${CCM}" status --json --state-dir "$t/$1/run" 2>/dev/null | python3 -c '
import json, sys
links = json.load(sys.stdin).get("links", [])
i = int(sys.argv[1])
print(links[i].get(sys.argv[2], "") if i < len(links) else "")' "$2" "$3" 2>/dev/null
}

# check NODE CODE WORD: `ccm-early check` on NODE exits CODE and says WORD
# (OK, DEGRADED, NOT CONNECTED, NO KEEPER), waiting up to 5 s for it.
assert_check() {
	local out rc
	check_is() {
		out=$("${CCM}" check --state-dir "$t/$1/run" 2>/dev/null)
		rc=$?
		[ "$rc" = "$2" ] && [ "${out#ccm "$3"}" != "$out" ]
	}
	check_is "$@" || wait_for 5 check_is "$@"
	assertEquals "$1: check's exit code ('$out')" "$2" "$rc"
	assertContains "$1: check says" "$out" "ccm $3"
}

links_summary() {  # NODE: one line per link, for messages
	"${CCM}" status --json --state-dir "$t/$1/run" 2>/dev/null | python3 -c '
import json, sys
for l in json.load(sys.stdin).get("links", []):
    print(" ".join("%s=%s" % kv for kv in sorted(l.items())))' 2>&1
}

assert_connected() {
	if ! { wait_for 15 connected a && wait_for 5 connected b; }; then
		fail "not connected: A $(tail -5 "$t/a/log") B $(tail -5 "$t/b/log")"
		return 1
	fi
}

assert_pair_up() {  # both connected, both links up on both nodes
	assert_connected || return 1
	if ! { wait_for 10 link_is 0 up && wait_for 10 link_is 1 up; }; then
		fail "links not up: A $(links_summary a); B $(links_summary b)"
		return 1
	fi
}

cut_link() {  # LINK...: drop its packets from now on
	local l v
	for l in "$@"; do
		v=p$l
		nft add element inet "${NFT_TABLE}" cut "{ ${!v} }" || fail "nft: cut link $l"
	done
}

restore_link() {  # LINK...
	local l v
	for l in "$@"; do
		v=p$l
		nft delete element inet "${NFT_TABLE}" cut "{ ${!v} }" || fail "nft: restore link $l"
	done
}

# --- the streams ---------------------------------------------------------------

# stream NODE send|recv CLIENT [ccm-stream args...]: in the background, pid
# in send_NODE / recv_NODE, output $t/NODE/MODE.out and .err.
stream() {
	local n=$1 mode=$2 c=$3
	shift 3
	"${STREAM}" "$mode" --state-dir "$t/$n/run" --client "$c" -v "$@" \
		>"$t/$n/$mode.out" 2>"$t/$n/$mode.err" </dev/null &
	eval "${mode}_$n=$!"
	pids="$pids $!"
}

# start_streams [ccm-stream args...]: A -> B on sab, B -> A on sba, for
# at most 120 s (end_streams ends them); returns once both stream.
start_streams() {
	stream b recv sab --seconds 120 "$@"
	stream a recv sba --seconds 120 "$@"
	stream a send sab --seconds 120 "$@"
	stream b send sba --seconds 120 "$@"
	if ! { wait_for 10 grep -q 'streaming for' "$t/a/send.err" &&
		wait_for 10 grep -q 'streaming for' "$t/b/send.err"; }; then
		fail "the streams never started: $(cat "$t"/?/send.err "$t"/?/recv.err)"
		return 1
	fi
}

# Tell both senders to finish, and check all four ends exited 0.
end_streams() {
	local n m p
	kill -INT "$send_a" "$send_b"
	for n in a b; do
		for m in send recv; do
			eval "p=\$${m}_$n"
			wait_exit "$p" 60
			assertEquals "node $n's ccm-stream $m exit status: $(tail -5 "$t/$n/$m.err")" 0 "$ccm_rc"
		done
	done
}

# field FILE KEY: KEY=VALUE's value in FILE's ccm-stream summary line.
field() {
	grep '^stream ' "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1
}

# assert_stream_clean SENDER RECEIVER CLIENT: what SENDER streamed arrived
# whole, once and in order, and both windows hold the same.
assert_stream_clean() {
	local tx=$1 rx=$2 c=$3 k snd=$t/$1/send.out rcv=$t/$2/recv.out
	echo "# $c: $tx $(cat "$snd" 2>/dev/null)"
	echo "# $c: $rx $(cat "$rcv" 2>/dev/null)"
	assertNotNull "$c: $tx's summary: $(tail -5 "$t/$tx/send.err")" "$(field "$snd" checksum)"
	assertNotNull "$c: $rx's summary: $(tail -5 "$t/$rx/recv.err")" "$(field "$rcv" checksum)"
	assertEquals "$c: no write or send failed" 0 "$(field "$snd" errors)"
	for k in lost dup reordered corrupt bad_slots; do
		assertEquals "$c: $k" 0 "$(field "$rcv" $k)"
	done
	assertEquals "$c: $rx's windows hold what $tx's do" "$(field "$snd" checksum)" \
		"$(field "$rcv" checksum)"
	assertEquals "$c: the checksum $tx heard from $rx" "$(field "$snd" checksum)" \
		"$(field "$snd" partner_checksum)"
	assertTrue "$c: writes were done" "[ '$(field "$snd" ops)' -gt 100 ]"
	assertTrue "$c: messages arrived" "[ '$(field "$rcv" msgs)' -gt 100 ]"
}

assert_streams_clean() {
	assert_stream_clean a b sab
	assert_stream_clean b a sba
}

# assert_events KEY OP N: every stream end counted KEY OP N (test(1) OP).
assert_events() {
	local f v
	for f in "$t"/a/send.out "$t"/a/recv.out "$t"/b/send.out "$t"/b/recv.out; do
		v=$(field "$f" "$1")
		assertTrue "$f: $1=$v, expected $2 $3" "[ '$v' $2 $3 ]"
	done
}

# --- 1. one link cut mid-stream -------------------------------------------------

test_cut_one_link_while_streaming() {
	local t0 took
	suite_ok || return
	start_pair
	assert_pair_up || return
	assert_check a 0 "OK: connected to node 2, 2 of 2 links up"
	start_streams || return
	wait_for 10 spread || { fail "balance never used both links: $(links_summary a)"; return; }
	t0=$(now_ms)
	cut_link 0
	wait_for 10 link_not_up 0
	took=$(( $(now_ms) - t0 ))
	echo "# link 0 seen down on both nodes ${took} ms after the cut (10 ms x 3 misses)"
	assertTrue "link 0 down, no ports on it: A $(links_summary a); B $(links_summary b)" \
		"link_not_up 0"
	wait_for 5 ports_on 1 $NPORTS
	assertTrue "all ports on link 1: A $(links_summary a); B $(links_summary b)" \
		"ports_on 1 $NPORTS"
	# The same in `ccm-early status`.
	for n in a b; do
		assertNotEquals "$n: status says link 0 is not up" up "$(status_link $n 0 state)"
		assertEquals "$n: status: no port on link 0" 0 "$(status_link $n 0 ports)"
		assertEquals "$n: status: link 1 up" up "$(status_link $n 1 state)"
		assertEquals "$n: status: every port on link 1" $NPORTS "$(status_link $n 1 ports)"
		assertTrue "$n: status counts link 0's fall" "[ '$(status_link $n 0 downs)' -ge 1 ]"
	done
	assert_check a 1 "DEGRADED: connected to node 2, 1 of 2 links up (link 0 "
	assert_check b 1 "DEGRADED: connected to node 1, 1 of 2 links up (link 0 "
	# Streaming goes on over link 1 alone for a while.
	wait_for 30 grep -q 'event link-down' "$t/a/send.err"
	sleep 1
	assertTrue "still connected" "connected a && connected b"
	end_streams
	assert_streams_clean
	assert_events link_down -ge 1
	assert_events partner_lost -eq 0
	echo "# A: $(links_summary a | tr '\n' ';')"
	stop_pair
	assert_check a 3 "NO KEEPER: "
}

# --- 2. the link comes back -------------------------------------------------------

# sample_early NODE LINK UNTIL_MS: 1 if link LINK carried ports before
# UNTIL_MS (now_ms) on NODE; otherwise 0, once UNTIL_MS has passed.
ports_before() {
	local n l until=$3
	while [ "$(now_ms)" -lt "$until" ]; do
		for n in a b; do
			l=$(link_ports "$n" "$2")
			[ "${l:-0}" = 0 ] || { echo "$n carried $l ports on link $2 at $(now_ms)"; return 1; }
		done
		sleep 0.02
	done
}

test_restored_link_carries_ports_after_damping() {
	local t0 took early
	suite_ok || return
	start_pair --link-damp-ms $DAMP_MS
	assert_pair_up || return
	start_streams --rate $RATE || return
	wait_for 10 spread || { fail "balance never used both links: $(links_summary a)"; return; }
	cut_link 0
	if ! { wait_for 10 link_not_up 0 && wait_for 5 ports_on 1 $NPORTS; }; then
		fail "link 0 never went down: A $(links_summary a)"
		return
	fi
	t0=$(now_ms)
	restore_link 0
	# Damped: no port may go back to link 0 within the damping time.
	early=$(ports_before a 0 $((t0 + DAMP_MS * 9 / 10)))
	assertEquals "no ports on link 0 while it is damped" "" "$early"
	wait_for 15 spread
	took=$(( $(now_ms) - t0 ))
	echo "# link 0 carried ports again ${took} ms after it was restored (damping ${DAMP_MS} ms)"
	assertTrue "ports on both links again: A $(links_summary a); B $(links_summary b)" spread
	assertTrue "not before the damping time (${took} ms)" "[ $took -ge $((DAMP_MS * 9 / 10)) ]"
	for n in a b; do
		assertEquals "$n: status: link 0 up" up "$(status_link $n 0 state)"
		assertTrue "$n: status: link 0 carries ports" "[ '$(status_link $n 0 ports)' -gt 0 ]"
		assertTrue "$n: status: link 1 carries ports" "[ '$(status_link $n 1 ports)' -gt 0 ]"
	done
	end_streams
	assert_streams_clean
	assert_events link_down -ge 1
	assert_events link_up -ge 1
	assert_events partner_lost -eq 0
	stop_pair
}

# --- 3. standby -------------------------------------------------------------------

test_standby_keeps_ports_on_the_preferred_link() {
	local t0 took damp=600
	suite_ok || return
	# Link 1 preferred: the priority decides, not the index.
	link1_opts=,priority=10
	start_pair --link-policy standby --link-damp-ms $damp
	assert_pair_up || return
	wait_for 5 ports_on 1 $NPORTS
	assertTrue "every port on link 1 (priority 10): A $(links_summary a); B $(links_summary b)" \
		"ports_on 1 $NPORTS && ports_on 0 0"
	start_streams --rate $RATE || return
	sleep 0.5
	assertTrue "streaming keeps them there: A $(links_summary a)" "ports_on 1 $NPORTS && ports_on 0 0"
	cut_link 1
	wait_for 10 ports_on 0 $NPORTS
	assertTrue "link 1 cut: every port on link 0: A $(links_summary a); B $(links_summary b)" \
		"ports_on 0 $NPORTS && link_not_up 1"
	t0=$(now_ms)
	restore_link 1
	wait_for 15 ports_on 1 $NPORTS
	took=$(( $(now_ms) - t0 ))
	echo "# the ports returned to link 1 ${took} ms after it was restored (damping ${damp} ms)"
	assertTrue "restored: every port back on link 1: A $(links_summary a); B $(links_summary b)" \
		"ports_on 1 $NPORTS && ports_on 0 0"
	assertTrue "not before the damping time (${took} ms)" "[ $took -ge $((damp * 9 / 10)) ]"
	end_streams
	assert_streams_clean
	assert_events link_down -ge 1
	assert_events link_up -ge 1
	assert_events partner_lost -eq 0
	stop_pair
}

# --- 4. both links cut --------------------------------------------------------------

test_both_links_cut_partner_lost_then_back_over_one() {
	local t0 took
	suite_ok || return
	start_pair
	assert_pair_up || return
	# Messages and writes caught by the loss may be lost: the stream
	# allows it, and still checks everything else.
	start_streams --rate $RATE --partner-loss-ok || return
	t0=$(now_ms)
	cut_link 0 1
	wait_for 10 not_connected a && wait_for 5 not_connected b
	took=$(( $(now_ms) - t0 ))
	echo "# both links cut: A left connected after ${took} ms (heartbeat 100 ms x 5)"
	assert_lost a
	assert_lost b
	assert_check a 2 "NOT CONNECTED: "
	assertTrue "the clients were told" "wait_for 5 grep -q 'event partner-lost' '$t/a/send.err'"
	# Back over link 1 alone: link 0 stays cut.
	restore_link 1
	wait_for 20 connected a && wait_for 10 connected b
	assertTrue "connected again over link 1: A $(tail -3 "$t/a/log")" "connected a && connected b"
	wait_for 10 link_is 1 up && wait_for 10 ports_on 1 $NPORTS
	assertTrue "link 1 up and carrying every port: A $(links_summary a); B $(links_summary b)" \
		"link_is 1 up && ports_on 1 $NPORTS && link_not_up 0"
	wait_for 10 grep -q 'event partner-back' "$t/a/send.err"
	sleep 1    # the streams go on after the return
	end_streams
	assert_streams_clean
	assert_events partner_lost -ge 1
	assert_events partner_back -ge 1
	# A fresh stream, allowing nothing, is clean.
	start_streams || return
	sleep 1
	end_streams
	assert_streams_clean
	assert_events partner_lost -eq 0
	stop_pair
}

# --- 5. flapping ----------------------------------------------------------------------

fd_count() {
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 | wc -l
}

rss_kib() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

cpu_ticks() {  # utime + stime: fields 14 and 15 (the name has no spaces)
	awk '{print $14 + $15}' "/proc/$1/stat"
}

pid_of() {  # NODE
	eval "echo \$pid_$1"
}

test_flapping_link_no_error_no_leak_little_cpu() {
	local i t0 ms hz n p pct early="" unsettled="" l
	local -A fds0 rss0 cpu0
	suite_ok || return
	# The shipped (static, musl) keepers: the sanitizer's quarantine and
	# its speed would hide a leak or a busy loop under its own.
	keeper_bin=$topdir/ccm-early
	"$keeper_bin" connect --help 2>&1 | grep -q -- '--link LOCAL' ||
		{ fail "no static ./ccm-early with --link; run make"; return; }
	start_pair
	assert_pair_up || return
	# A light stream, so that the keepers' CPU is the flapping's.
	start_streams --rate 500 || return
	wait_for 10 spread || { fail "balance never used both links: $(links_summary a)"; return; }
	for n in a b; do
		p=$(pid_of $n)
		fds0[$n]=$(fd_count "$p") rss0[$n]=$(rss_kib "$p") cpu0[$n]=$(cpu_ticks "$p")
	done
	t0=$(now_ms)
	for i in $(seq 1 25); do
		cut_link 0
		sleep 0.2
		restore_link 0
		sleep 0.2
		# Damped for 1 s, a link up for 0.2 s at a time never carries
		# ports again once it has fallen; and after a few cycles (the
		# handoff's counts may lag 1 s) every port is on link 1.
		for n in a b; do
			l=$(link_ports $n 0)
			[ "$i" -le 3 ] || [ "${l:-x}" = 0 ] || early="$early $n:$l@$i"
			l=$(link_ports $n 1)
			[ "$i" -le 8 ] || [ "${l:-x}" = $NPORTS ] || unsettled="$unsettled $n:$l@$i"
		done
	done
	ms=$(( $(now_ms) - t0 ))
	hz=$(getconf CLK_TCK)
	for n in a b; do
		p=$(pid_of $n)
		pct=$(( ($(cpu_ticks "$p") - cpu0[$n]) * 100000 / hz / ms ))
		echo "# node $n's keeper used ${pct}% of a core during ${ms} ms of flapping"
		assertTrue "node $n's keeper used under 30% of a core (${pct}%)" "[ $pct -lt 30 ]"
		assertTrue "node $n's keeper survived" "kill -0 $p"
	done
	assertEquals "link 0 carried no ports while flapping (node:ports@cycle)" "" "$early"
	assertEquals "every port on link 1 from cycle 9 on (node:ports@cycle)" "" "$unsettled"
	# Left up, link 0 carries ports again, and all is as before.
	wait_for 15 spread
	assertTrue "link 0 back in use after the flapping: A $(links_summary a)" spread
	for n in a b; do
		p=$(pid_of $n)
		l="fds ${fds0[$n]} -> $(fd_count "$p"), VmRSS ${rss0[$n]} -> $(rss_kib "$p") KiB"
		echo "# node $n: $l"
		i=$(( $(fd_count "$p") - fds0[$n] ))
		assertTrue "node $n: fds within 2 ($l)" "[ $i -le 2 ] && [ $i -ge -2 ]"
		assertTrue "node $n: VmRSS growth under 512 KiB ($l)" \
			"[ $(( $(rss_kib "$p") - rss0[$n] )) -lt 512 ]"
	done
	end_streams
	assert_streams_clean
	assert_events link_down -ge 1
	assert_events partner_lost -eq 0
	echo "# A: $(links_summary a | tr '\n' ';')"
	stop_pair
}

# --- 6. one link, as before ---------------------------------------------------------

# The handoff's keys, without values.
keys_of() {
	sed -n 's/^\([A-Za-z_0-9]*\)=.*/\1/p' "$1/state" | sort
}

test_single_link_is_the_plain_case() {
	local t0 took
	suite_ok || return
	# A names its one link with --link, B the old way: they must meet.
	mkdir -p "$t/a" "$t/b"
	"${CCM}" connect --node-id 1 --link "127.0.0.2:$p0=127.0.0.3:$p0" --clients "$t/a/clients" \
		--state-dir "$t/a/run" -v --foreground >>"$t/a/log" 2>&1 </dev/null &
	eval "pid_a=$!"
	pids="$pids $!"
	"${CCM}" connect --node-id 2 --listen "127.0.0.3:$p0" --partner "127.0.0.2:$p0" \
		--clients "$t/b/clients" --state-dir "$t/b/run" -v --foreground >>"$t/b/log" 2>&1 </dev/null &
	eval "pid_b=$!"
	pids="$pids $!"
	assert_connected || return
	assertEquals "A: one link" 1 "$(state_get "$t/a/run" CCM_LINKS)"
	# The handoff's link counters may be a second behind.
	wait_for 3 link_is 0 up && wait_for 3 ports_on 0 $NPORTS
	assertEquals "A: link 0 up" up "$(status_link a 0 state)"
	assertEquals "A: link 0 carries every port" $NPORTS "$(status_link a 0 ports)"
	assertEquals "A: the link's addresses" "127.0.0.2:$p0 127.0.0.3:$p0" \
		"$(status_link a 0 local) $(status_link a 0 partner)"
	assertEquals "A's handoff has the plain node's keys" "$(keys_of "$t/b/run")" "$(keys_of "$t/a/run")"
	assertEquals "A's handoff: where it listens" "127.0.0.2:$p0" "$(state_get "$t/a/run" CCM_LISTEN_ADDR)"
	assertEquals "A's handoff: where the partner is" "127.0.0.3:$p0" \
		"$(state_get "$t/a/run" CCM_PARTNER_ADDR)"
	start_streams || return
	sleep 1
	end_streams
	assert_streams_clean
	assert_events link_down -eq 0
	assert_events partner_lost -eq 0
	# The one link cut: the partner is lost (by heartbeat-ms x misses, as
	# ever), and found again when it returns.
	t0=$(now_ms)
	cut_link 0
	wait_for 10 not_connected a && wait_for 5 not_connected b
	took=$(( $(now_ms) - t0 ))
	echo "# the single link cut: A left connected after ${took} ms (heartbeat 100 ms x 5)"
	assert_lost a
	assert_lost b
	assertEquals "the --link node is in the plain node's state" \
		"$(state_get "$t/b/run" CCM_STATE)" "$(state_get "$t/a/run" CCM_STATE)"
	assertTrue "by the heartbeat, not sooner (${took} ms)" "[ $took -ge 400 ]"
	restore_link 0
	wait_for 20 connected a && wait_for 10 connected b
	assertTrue "connected again: A $(tail -3 "$t/a/log")" "connected a && connected b"
	stop_pair
}

# --- 7. key rotation ----------------------------------------------------------------

key_id_of_file() {  # FILE: keygen's id of the key in FILE
	"${CCM}" keygen --force "$1" | sed -n 's/.*(id \([0-9a-f]\{16\}\))$/\1/p'
}

# relink: link 0 cut and back, so that both ends greet again under the
# keys each holds now.
relink() {
	cut_link 0
	wait_for 10 link_not_up 0 || { fail "link 0 never went down: $(links_summary a)"; return 1; }
	restore_link 0
	wait_for 15 link_is 0 up || { fail "link 0 never came back: A $(links_summary a); \
		$(grep -i 'key' "$t/a/log" "$t/b/log" | tail -4)"; return 1; }
}

# reload_keys NODE ID0 [ID1]: A by SIGHUP, B by `ccm-early reload-keys`;
# either way the keeper says it took them.
reload_keys() {
	local n=$1 want="proving with id $2${3:+, also accepting id $3}" pid out
	if [ "$n" = a ]; then
		eval "pid=\$pid_$n"
		kill -HUP "$pid"
	else
		out=$("${CCM}" reload-keys --state-dir "$t/$n/run" 2>&1)
		assertEquals "reload-keys on $n: $out" 0 $?
		assertEquals "reload-keys says what it holds now" "keys read again: $want" "$out"
	fi
	wait_for 5 grep -q "keys read again: $want\$" "$t/$n/log" ||
		fail "$n did not take the keys ($want): $(grep -i key "$t/$n/log" | tail -2)"
}

# The three steps of the README, with both streams running: the new key
# accepted on both; then proved with, node by node (A proves with the new
# key while B still proves with the old one); then the old one dropped.
# After each step link 0 is cut and comes back, so a fresh greeting is
# made under that step's keys.  The session never notices; nothing is lost.
test_keys_rotated_while_streaming() {
	local old new n out
	suite_ok || return
	old=$(key_id_of_file "$t/old") && new=$(key_id_of_file "$t/new") || { fail keygen; return; }
	for n in a b; do
		mkdir -p "$t/$n"
		install -m 600 "$t/old" "$t/$n/key"
	done
	start_node a --psk-file "$t/a/key" --psk-accept-file "$t/a/next"
	start_node b --psk-file "$t/b/key" --psk-accept-file "$t/b/next"
	assert_pair_up || return
	assertEquals "A proves with the old key" "$old" "$(state_get "$t/a/run" CCM_KEY_ID)"
	start_streams || return
	# 1. The new key accepted on both.
	for n in a b; do
		install -m 600 "$t/new" "$t/$n/next"
		reload_keys "$n" "$old" "$new"
	done
	assertEquals "A's handoff names the key accepted too" "$new" \
		"$(state_get "$t/a/run" CCM_KEY_ACCEPT_ID)"
	relink || return
	# 2. Proved with, A first: the two nodes prove with different keys.
	for n in a b; do
		install -m 600 "$t/new" "$t/$n/key"
		install -m 600 "$t/old" "$t/$n/next"
		reload_keys "$n" "$new" "$old"
		relink || return
	done
	# 3. The old key dropped on both.
	for n in a b; do
		rm "$t/$n/next"
		reload_keys "$n" "$new"
	done
	relink || return
	# A key file that cannot be read leaves the keys in use.
	chmod 644 "$t/a/key"
	kill -HUP "$pid_a"
	wait_for 5 grep -q "keys not read again; the ones in use stay" "$t/a/log" ||
		fail "A did not refuse a group-readable key file: $(tail -2 "$t/a/log")"
	out=$("${CCM}" reload-keys --state-dir "$t/a/run" 2>&1)
	assertEquals "reload-keys fails then: $out" 1 $?
	assertContains "and says why" "$out" "accessible by group or others"
	chmod 600 "$t/a/key"
	sleep 1
	end_streams
	assert_streams_clean
	assert_events partner_lost -eq 0
	for n in a b; do
		assertTrue "$n still connected" "connected $n"
		assertEquals "$n proves with the new key" "$new" "$(state_get "$t/$n/run" CCM_KEY_ID)"
		assertEquals "$n accepts no other" "" "$(state_get "$t/$n/run" CCM_KEY_ACCEPT_ID)"
		assertFalse "$n never lost its session: $(grep -m3 'lost\|-> error' "$t/$n/log")" \
			"grep -q 'session with the partner lost\|-> error' '$t/$n/log'"
	done
	stop_pair
}

# shellcheck source=/dev/null
. shunit2
