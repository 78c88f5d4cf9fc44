#!/usr/bin/env bash
# The keeper: what ccm-early does after the handoff, with two real keepers
# over real TCP sockets on loopback (node A: id 1 on 127.0.0.2, node B: id 2
# on 127.0.0.3) and the real clients attached to them: heartbeats between
# two ccm-fmon, the nvmirror log mirrored byte for byte, failover and
# giveback, a silent partner found by the heartbeat alone, `ccm-early exec`
# and LISTEN_FDS, refusals, a keeper started in an "initrd" serving a
# service in the pivoted root, 100 stop/restart cycles without leaks,
# `ccm-early stop` with a client attached, local hardening (connection
# limits, event fds a client cannot block, modes), `status` telling the
# truth about a killed keeper and about a keeper whose state disk is full,
# and the message channel's flow control: a slow receiver, a late one, one
# that leaves and returns, and a partner rebooted mid-stream.
set -u
. "$(dirname "$0")/../lib/common.sh"

bindir=$(cd "$(dirname "${CCM}")" && pwd)
FMON="${bindir}/ccm-fmon"
NVMIRROR="${bindir}/ccm-nvmirror"
topdir=$(cd "$(dirname "$0")/../.." && pwd)
here=$(cd "$(dirname "$0")" && pwd)
NOBODY=65534

oneTimeSetUp() {
	for b in "${CCM}" "${FMON}" "${NVMIRROR}"; do
		[ -x "$b" ] || fail "no binary at $b; run make dev"
	done
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

# start_node a|b [extra args...]: a keeper in the foreground (the test owns
# its pid), with that node's clients.
start_node() {
	local n=$1
	shift
	ccm_start "${CCM}" "$n" "$t/$n/clients" -v --foreground "$@"
}

connected() {
	wait_for_line "$t/$1/run/state" "CCM_STATE='connected'" "${2:-15}"
}

state_is_not() {  # DIR STATE
	[ "$(state_get "$1" CCM_STATE)" != "$2" ]
}

# Both connected, each knowing the other's current epoch.
assert_pair_connected() {
	connected a || { cat "$t/a/log"; fail "A not connected"; return 1; }
	connected b || { cat "$t/b/log"; fail "B not connected"; return 1; }
	wait_for 5 epochs_agree || {
		fail "the epochs never agreed: A $(state_get "$t/a/run" CCM_EPOCH)/$(state_get \
			"$t/a/run" CCM_PARTNER_EPOCH), B $(state_get "$t/b/run" CCM_EPOCH)/$(state_get \
			"$t/b/run" CCM_PARTNER_EPOCH)"
		return 1
	}
}

epochs_agree() {
	[ "$(state_get "$t/a/run" CCM_STATE)" = connected ] &&
	[ "$(state_get "$t/b/run" CCM_STATE)" = connected ] &&
	[ "$(state_get "$t/b/run" CCM_EPOCH)" = "$(state_get "$t/a/run" CCM_PARTNER_EPOCH)" ] &&
	[ "$(state_get "$t/a/run" CCM_EPOCH)" = "$(state_get "$t/b/run" CCM_PARTNER_EPOCH)" ]
}

# start_fmon a|b exec|attach [ccm-fmon args...]: that node's ccm-fmon,
# either started by `ccm-early exec` (LISTEN_FDS) or attaching to the
# keeper's socket itself.  Its pid in fmon_a/fmon_b, its log $t/NODE/fmon.log.
start_fmon() {
	local n=$1 how=$2
	shift 2
	if [ "$how" = exec ]; then
		"${CCM}" exec --state-dir "$t/$n/run" fmon -- "${FMON}" -vv "$@" \
			>>"$t/$n/fmon.log" 2>&1 </dev/null &
	else
		"${FMON}" --state-dir "$t/$n/run" -vv "$@" >>"$t/$n/fmon.log" 2>&1 </dev/null &
	fi
	eval "fmon_$n=$!"
	pids="$pids $!"
}

# The fixed string STRING is in FILE.
in_file() {
	[ -f "$2" ] && grep -qF -- "$1" "$2"
}

# Let the directories down to DIR be searched by anyone, so that an
# unprivileged caller can reach the keeper's socket: the keeper's own
# SO_PEERCRED check is what is tested, not the file system's.  Only the
# test's own directories (shunit2's, 0700) are touched.
open_path_to() {
	local d=$1 top
	top=$(dirname "${SHUNIT_TMPDIR}")
	while [ "${d#"$top"}" != "$d" ]; do
		chmod o+x "$d"
		d=$(dirname "$d")
	done
}

as_nobody() {
	setpriv --reuid=$NOBODY --regid=$NOBODY --clear-groups "$@"
}

# --- 1. heartbeats ----------------------------------------------------------

test_heartbeats_flow_between_two_fmons() {
	start_node a
	start_node b
	assert_pair_connected || return
	start_fmon a exec
	start_fmon b attach
	for n in a b; do
		wait_for 5 in_file "heartbeat 5 received" "$t/$n/fmon.log"
		rc=$?
		assertTrue "node $n's fmon got the partner's heartbeats: $(cat "$t/$n/fmon.log")" "$rc"
	done
	assertContains "A's fmon (exec) declared B alive" "$(cat "$t/a/fmon.log")" \
		"partner node 2 unknown -> alive: first heartbeat"
	assertContains "B's fmon (attach) declared A alive" "$(cat "$t/b/fmon.log")" \
		"partner node 1 unknown -> alive: first heartbeat"
	assertContains "A's keeper saw the exec'd fmon attach" "$(cat "$t/a/log")" \
		"attached to client fmon"
	assertContains "B's keeper saw fmon attach" "$(cat "$t/b/log")" "attached to client fmon"
	# Both monitors still running: SIGTERM ends them with 0.
	for n in a b; do
		eval "p=\$fmon_$n"
		kill -TERM "$p"
		wait_exit "$p" 5
		assertEquals "node $n's fmon exit status after SIGTERM" 0 "$ccm_rc"
	done
	assertNotContains "no hook, no death" "$(cat "$t/a/fmon.log" "$t/b/fmon.log")" "-> dead"
	stop_pair
}

# --- 2. the mirror ----------------------------------------------------------

test_nvmirror_log_arrives_byte_for_byte() {
	start_node a
	start_node b
	assert_pair_connected || return
	head -c 204800 /dev/urandom > "$t/nvlog"
	"${NVMIRROR}" --state-dir "$t/a/run" --log "$t/nvlog" --once -v >"$t/a/nvmirror.log" 2>&1
	rc=$?
	assertEquals "ccm-nvmirror --once exit status: $(cat "$t/a/nvmirror.log")" 0 "$rc"
	"${CCM}" dump --state-dir "$t/b/run" nvmirror --payload >"$t/out" 2>"$t/dump.err"
	rc=$?
	assertEquals "dump exit status: $(cat "$t/dump.err")" 0 "$rc"
	assertEquals "dumped size" 204800 "$(stat -c %s "$t/out")"
	cmp "$t/nvlog" "$t/out" >"$t/cmp.out" 2>&1
	rc=$?
	assertEquals "the mirrored log is the log: $(cat "$t/cmp.out")" 0 "$rc"
	# The listing checks every record.
	"${CCM}" dump --state-dir "$t/b/run" nvmirror >"$t/listing" 2>&1
	rc=$?
	assertEquals "dump listing exit status: $(head -5 "$t/listing")" 0 "$rc"
	# Port 1 held nothing: the dump says so instead of inventing a log.
	"${CCM}" dump --state-dir "$t/b/run" --port 1 nvmirror --payload >"$t/out1" 2>"$t/dump1.err"
	assertNotEquals "dump of an empty port fails" 0 $?
	assertContains "the dump says why" "$(cat "$t/dump1.err")" "nothing mirrored"
	stop_pair
}

# --- 3. failover -------------------------------------------------------------

hook_args() {  # NODE
	printf '%s\n' --interval 100 --dead-after 1000 \
		--takeover "echo takeover \$CCM_FMON_REASON >> '$t/$1/hooks'" \
		--giveback "echo giveback >> '$t/$1/hooks'"
}

test_failover_takeover_and_giveback() {
	local args_a args_b t0 t1 took
	start_node a
	start_node b
	assert_pair_connected || return
	mapfile -t args_a < <(hook_args a)
	mapfile -t args_b < <(hook_args b)
	start_fmon a exec "${args_a[@]}"
	start_fmon b attach "${args_b[@]}"
	for n in a b; do
		wait_for 5 in_file "unknown -> alive" "$t/$n/fmon.log" ||
			{ fail "node $n's fmon never heard its partner: $(cat "$t/$n/fmon.log")"; return; }
	done
	sleep 0.3
	t0=$(now_ms)
	kill -9 "$pid_b" "$fmon_b"
	wait "$pid_b" "$fmon_b" 2>/dev/null
	wait_for 5 in_file takeover "$t/a/hooks"
	t1=$(now_ms)
	took=$((t1 - t0))
	echo "# takeover ran ${took} ms after B was killed (dead-after 1000 ms)"
	assertTrue "A's fmon ran the takeover: $(cat "$t/a/fmon.log")" "in_file takeover '$t/a/hooks'"
	assertTrue "takeover within dead-after + 1.5 s (took ${took} ms)" "[ $took -le 2500 ]"
	# Dead means heartbeats silent for --dead-after, not the keeper's word
	# (which came within ms of the kill): B's last heartbeat left at most
	# an interval before it, so no takeover long before 900 ms.
	assertTrue "takeover not before the heartbeats were silent for ~dead-after (took ${took} ms)" \
		"[ $took -ge 700 ]"
	assertContains "the hook got the reason" "$(cat "$t/a/hooks")" "takeover no heartbeat for"
	assertContains "A's fmon declared B dead" "$(cat "$t/a/fmon.log")" \
		"partner node 2 alive -> dead: no heartbeat for"
	assertContains "the keeper's loss was only logged" "$(cat "$t/a/fmon.log")" \
		"the keeper reports partner node 2 lost (waiting for the heartbeats to say)"
	assertNotContains "no giveback while B is dead" "$(cat "$t/a/hooks")" giveback

	# B comes back: keeper and monitor.
	start_node b
	assert_pair_connected || return
	start_fmon b attach "${args_b[@]}"
	wait_for 10 in_file giveback "$t/a/hooks"
	assertTrue "A's fmon ran the giveback: $(cat "$t/a/fmon.log")" "in_file giveback '$t/a/hooks'"
	assertEquals "the hooks ran once each, in order" "takeover giveback" "$(hooks_run a)"
	assertContains "A's fmon declared B alive again" "$(cat "$t/a/fmon.log")" \
		"partner node 2 dead -> alive: heartbeats resumed"
	assertFalse "B's fresh fmon took nothing over" "[ -s '$t/b/hooks' ]"
	kill -TERM "$fmon_a" "$fmon_b"
	wait_exit "$fmon_a" 5
	assertEquals "A's fmon exit status" 0 "$ccm_rc"
	wait_exit "$fmon_b" 5
	stop_pair
}

# The hooks' first words, in order, on one line.
hooks_run() {  # NODE
	awk '{print $1}' "$t/$1/hooks" 2>/dev/null | tr '\n' ' ' | sed 's/ $//'
}

count_fences() {  # NODE AT_LEAST
	local n
	n=$(grep -c '^fence' "$t/$1/hooks" 2>/dev/null)
	[ "${n:-0}" -ge "$2" ]
}

# With --fence, a silent partner is not taken over until the fence says it
# is fenced: a fence that fails (DRBD's 6, "refused") blocks the takeover
# and is tried again; one that says fenced (7) lets it run.  A partner that
# came back and died again is fenced again.
test_failover_waits_for_the_fence() {
	local args_a args_b
	start_node a
	start_node b
	assert_pair_connected || return
	echo 6 >"$t/a/fence_rc"
	mapfile -t args_a < <(hook_args a)
	mapfile -t args_b < <(hook_args b)
	start_fmon a exec "${args_a[@]}" --fence-retry 300 \
		--fence "echo fence \$CCM_FMON_PARTNER \$CCM_FMON_REASON >> '$t/a/hooks'; exit \$(cat '$t/a/fence_rc')"
	start_fmon b attach "${args_b[@]}"
	for n in a b; do
		wait_for 5 in_file "unknown -> alive" "$t/$n/fmon.log" ||
			{ fail "node $n's fmon never heard its partner: $(cat "$t/$n/fmon.log")"; return; }
	done
	kill -9 "$pid_b" "$fmon_b"
	wait "$pid_b" "$fmon_b" 2>/dev/null
	wait_for 6 count_fences a 3 ||
		{ fail "the fence was not tried again: $(cat "$t/a/fmon.log")"; return; }
	assertEquals "refused fences, no takeover" "fence fence fence" "$(hooks_run a | cut -d' ' -f1-3)"
	assertNotContains "no takeover while not fenced" "$(cat "$t/a/hooks")" takeover
	assertContains "the fence got the partner and the reason" "$(head -1 "$t/a/hooks")" \
		"fence 2 no heartbeat for"
	assertContains "A's fmon says why it does not take over" "$(cat "$t/a/fmon.log")" \
		"failed: exit status 6; no takeover of a partner not fenced: trying again in 300 ms"
	echo 7 >"$t/a/fence_rc"
	wait_for 5 in_file takeover "$t/a/hooks"
	assertContains "fenced, then taken over: $(cat "$t/a/fmon.log")" "$(hooks_run a)" "fence takeover"
	assertContains "A's fmon says the partner is fenced" "$(cat "$t/a/fmon.log")" \
		"done: exit status 7, the partner is fenced"
	sleep 1
	assertEquals "no fence after the takeover" 1 "$(grep -c '^takeover' "$t/a/hooks")"
	assertEquals "the fence ends once it worked" "" "$(hooks_run a | sed 's/.*takeover//')"

	# B back, then dead again: fenced again before a second takeover.
	start_node b
	assert_pair_connected || return
	start_fmon b attach "${args_b[@]}"
	wait_for 10 in_file giveback "$t/a/hooks" || { fail "no giveback: $(cat "$t/a/fmon.log")"; return; }
	: >"$t/a/hooks"
	echo 5 >"$t/a/fence_rc"
	kill -9 "$pid_b" "$fmon_b"
	wait "$pid_b" "$fmon_b" 2>/dev/null
	wait_for 6 count_fences a 2 || { fail "B not fenced again: $(cat "$t/a/fmon.log")"; return; }
	assertNotContains "no takeover on an unreachable fence (5)" "$(cat "$t/a/hooks")" takeover
	echo 4 >"$t/a/fence_rc"
	wait_for 5 in_file takeover "$t/a/hooks"
	assertContains "outdated (4) counts as fenced" "$(hooks_run a)" "fence takeover"
	kill -TERM "$fmon_a"
	wait_exit "$fmon_a" 5
	assertEquals "A's fmon exit status" 0 "$ccm_rc"
	stop_node a  # B is dead
	assert_no_sanitizer_report
}

# --- 4. a silent partner -------------------------------------------------------

test_heartbeat_loss_without_a_word() {
	local b_epoch t0 took state error
	start_node a --heartbeat-ms 100 --heartbeat-misses 5
	start_node b
	assert_pair_connected || return
	b_epoch=$(state_get "$t/b/run" CCM_EPOCH)
	sleep 0.3
	t0=$(now_ms)
	kill -STOP "$pid_b"
	wait_for 5 state_is_not "$t/a/run" connected
	took=$(( $(now_ms) - t0 ))
	# Read before B resumes: they reconnect within milliseconds after.
	state=$(state_get "$t/a/run" CCM_STATE)
	error=$(state_get "$t/a/run" CCM_ERROR)
	kill -CONT "$pid_b"
	echo "# A left 'connected' ${took} ms after B was stopped (100 ms x 5 misses)"
	assertEquals "A noticed the silent partner" unreachable "$state"
	assertTrue "within 0.5 s + slack (took ${took} ms)" "[ $took -lt 2500 ]"
	# The last change A saw was at most ~2 intervals before the stop.
	assertTrue "not before 5 silent intervals (took ${took} ms)" "[ $took -ge 250 ]"
	assertContains "A's handoff says why" "$error" "partner unreachable: no heartbeat for"
	assertContains "A's log says no heartbeat" "$(cat "$t/a/log")" "partner unreachable: no heartbeat for"
	# Resumed, B is the same incarnation, and the session goes on.
	assert_pair_connected || return
	assertEquals "A knows B's (unchanged) epoch" "$b_epoch" "$(state_get "$t/a/run" CCM_PARTNER_EPOCH)"
	stop_pair
}

# A keeper that was not scheduled for a while (SIGSTOP here; a starved VM in
# life) does not blame its partner for the silence it did not watch: A,
# which saw B go quiet, says unreachable and resumes; B says it was paused.
test_a_paused_keeper_does_not_call_its_partner_unreachable() {
	start_node a --heartbeat-ms 100 --heartbeat-misses 5
	start_node b --heartbeat-ms 100 --heartbeat-misses 5
	assert_pair_connected || return
	kill -STOP "$pid_b"
	sleep 1.5
	kill -CONT "$pid_b"
	sleep 2
	assertTrue "B said it was not scheduled: $(tail -3 "$t/b/log")" \
		"grep -q 'this keeper was not scheduled for' '$t/b/log'"
	assertFalse "B did not call A unreachable: $(grep -m2 unreachable "$t/b/log")" \
		"grep -q 'partner unreachable' '$t/b/log'"
	assertTrue "A did call B unreachable" "grep -q 'partner unreachable' '$t/a/log'"
	assert_pair_connected || return
	stop_pair
}

# --- 5. exec and LISTEN_FDS -----------------------------------------------------

test_exec_hands_over_listen_fds() {
	local out base
	start_node a
	start_node b
	assert_pair_connected || return
	out=$("${CCM}" exec --state-dir "$t/a/run" fmon -- sh -c \
		'echo "$LISTEN_FDS $LISTEN_PID $$ $LISTEN_FDNAMES"' 2>"$t/exec.err")
	rc=$?
	assertEquals "exec exit status: $(cat "$t/exec.err")" 0 "$rc"
	set -- $out
	assertEquals "LISTEN_FDS: control + window + event" 3 "${1:-}"
	assertEquals "LISTEN_PID is the command's pid" "${3:-x}" "${2:-}"
	assertEquals "LISTEN_FDNAMES" "ccm.control:ccm.window.0:ccm.event.0" "${4:-}"

	# The fds the test's shell passes down anyway, which exec leaves alone.
	base=$(python3 "$here/listenfds_probe.py" --fds | sed 's/^fds //')
	# What each fd is, from the inside: tests/twonode/listenfds_probe.py.
	out=$("${CCM}" exec --state-dir "$t/a/run" fmon -- python3 "$here/listenfds_probe.py" 2>&1)
	assertEquals "fmon probe exit status: $out" 0 $?
	assertContains "$out" "pid ok"
	assertContains "$out" "fd 3 ccm.control socket seqpacket inheritable"
	assertContains "the window is a memfd of 4096 bytes" "$out" \
		"fd 4 ccm.window.0 memfd 4096 inheritable"
	assertContains "$out" "fd 5 ccm.event.0 pipe read-only inheritable"
	assertContains "$out" "fd 6 closed"
	assertContains "fds 3-5 added to the caller's, nothing else leaked into the service" "$out" \
		"fds $(printf '%s\n' $base 3 4 5 | sort -nu | tr '\n' ' ' | sed 's/ *$//')"
	# Two ports: five fds, the windows of 1 MiB.
	out=$("${CCM}" exec --state-dir "$t/a/run" nvmirror -- python3 "$here/listenfds_probe.py" 2>&1)
	assertEquals "nvmirror probe exit status: $out" 0 $?
	assertContains "$out" "LISTEN_FDS=5 LISTEN_FDNAMES=ccm.control:ccm.window.0:ccm.event.0:ccm.window.1:ccm.event.1"
	assertContains "$out" "fd 6 ccm.window.1 memfd 1048576 inheritable"
	assertContains "$out" "fd 7 ccm.event.1 pipe read-only inheritable"
	assertContains "$out" "fd 8 closed"
	assertContains "two ports, nothing else leaked" "$out" \
		"fds $(printf '%s\n' $base 3 4 5 6 7 | sort -nu | tr '\n' ' ' | sed 's/ *$//')"
	# The exec'd channel is a live attachment: the keeper logged it.
	assertContains "the keeper logged the attach" "$(cat "$t/a/log")" "attached to client nvmirror"
	stop_pair
}

# --- 6. refusals ----------------------------------------------------------------

test_refusals_wrong_uid_and_unknown_client() {
	local out
	start_node a
	start_node b
	assert_pair_connected || return
	open_path_to "$t/a/run"
	out=$(as_nobody "${CCM}" exec --state-dir "$t/a/run" fmon -- sh -c 'echo started' 2>&1)
	assertNotEquals "uid $NOBODY refused for a client naming no uid: $out" 0 $?
	assertNotContains "the command did not run" "$out" started
	assertContains "the refusal says why" "$out" "uid $NOBODY may not attach to client 'fmon'"
	assertContains "the keeper logged it" "$(cat "$t/a/log")" "may not attach to client 'fmon'"

	# The descriptor names the uid; a restart re-reads the descriptors.
	printf 'uid = %s\n' $NOBODY >> "$t/a/clients/fmon.conf"
	"${CCM}" stop --restart --state-dir "$t/a/run" >"$t/stop.out" 2>&1
	rc=$?
	assertEquals "stop --restart: $(cat "$t/stop.out")" 0 "$rc"
	assert_pair_connected || return
	out=$(as_nobody "${CCM}" exec --state-dir "$t/a/run" fmon -- sh -c 'echo "started as $(id -u) with $LISTEN_FDS fds"' 2>&1)
	assertEquals "uid $NOBODY accepted once the descriptor names it: $out" 0 $?
	assertEquals "started as $NOBODY with 3 fds" "$out"
	# ... for that client only.
	out=$(as_nobody "${CCM}" exec --state-dir "$t/a/run" nvmirror -- sh -c 'echo started' 2>&1)
	assertNotEquals "uid $NOBODY still refused for nvmirror: $out" 0 $?
	assertContains "$out" "may not attach to client 'nvmirror'"

	out=$("${CCM}" exec --state-dir "$t/a/run" nosuchclient -- sh -c 'echo started' 2>&1)
	assertNotEquals "an unknown client is refused: $out" 0 $?
	assertNotContains "$out" started
	assertContains "the refusal names it" "$out" "nosuchclient"
	assertContains "$out" "no client 'nosuchclient' on this node"
	kill -0 "$pid_a"
	assertTrue "A survived the refusals" $?
	stop_pair
}

# --- 7. the initrd keeper and the pivot -------------------------------------------

# The static binaries the initramfs holds (`make` builds them).
static_bins_ok() {
	local b
	for b in ccm-early ccm-fmon; do
		[ -x "$topdir/$b" ] && file "$topdir/$b" | grep -q 'statically linked' || return 1
	done
	command -v busybox >/dev/null && file "$(command -v busybox)" | grep -q 'statically linked'
}

# A keeper started in an "initramfs" ($t/initrd, chroot, /etc/initrd-release
# there, no --foreground) marks itself '@' for systemd and detaches at the
# handoff.  The "real root" ($t/sysroot) gets the initramfs' /run, the way
# switch-root moves it, and a service pivoted into that root -- the old root
# unmounted -- fetches its fds through the moved socket from the keeper,
# whose own binary is gone by then, and exchanges heartbeats with B.
test_initrd_keeper_serves_the_pivoted_root() {
	local kpid out rc
	static_bins_ok || { fail "no static ./ccm-early, ./ccm-fmon or busybox; run make"; return; }
	mkdir -p "$t/initrd/bin" "$t/initrd/etc/ccm" "$t/initrd/run/ccm" \
		"$t/sysroot/bin" "$t/sysroot/run" "$t/sysroot/oldroot"
	cp "$topdir/ccm-early" "$t/initrd/bin/"
	cp -r "$t/a/clients" "$t/initrd/etc/ccm/clients.d"
	printf 'NAME="test initrd"\n' > "$t/initrd/etc/initrd-release"
	cp "$topdir/ccm-early" "$topdir/ccm-fmon" "$(command -v busybox)" "$t/sysroot/bin/"
	ln -s busybox "$t/sysroot/bin/sh"
	start_node b
	mkdir -p "$t/a"
	chroot "$t/initrd" /bin/ccm-early connect --node-id 1 --listen "127.0.0.2:$port" \
		--partner "127.0.0.3:$port" --clients /etc/ccm/clients.d --state-dir /run/ccm \
		--timeout 15 -v >>"$t/a/log" 2>&1 </dev/null
	rc=$?
	kpid=$(sed -n 's/^"pid":\([0-9]*\),$/\1/p' "$t/initrd/run/ccm/state.json")
	[ -n "$kpid" ] && pids="$pids $kpid"
	assertEquals "the initrd keeper's command exits 0 at the handoff: $(cat "$t/a/log")" 0 "$rc"
	assertEquals connected "$(state_get "$t/initrd/run/ccm" CCM_STATE)"
	"${CCM}" status --json --state-dir "$t/initrd/run/ccm" >"$t/status.json"
	assertEquals "status exit status" 0 $?
	assertContains "status --json names the keeper's pid" "$(cat "$t/status.json")" "\"pid\":$kpid,"
	assertTrue "the keeper lives on, detached (pid $kpid)" "kill -0 $kpid"
	assertEquals "its cmdline starts with '@' (systemd spares it at switch-root)" @ \
		"$(head -c1 "/proc/$kpid/cmdline")"
	assertNotEquals "B's keeper, with no initrd-release, is not renamed" @ \
		"$(head -c1 "/proc/$pid_b/cmdline")"

	# Switch-root: the initramfs' files go, /run moves to the real root.
	rm -f "$t/initrd/bin/ccm-early" "$t/initrd/etc/initrd-release"
	start_fmon b attach
	unshare -m --propagation private sh -c '
		set -e
		mount --bind "$1/sysroot" "$1/sysroot"
		mount --bind "$1/initrd/run" "$1/sysroot/run"
		cd "$1/sysroot"
		pivot_root . oldroot
		exec /bin/sh -c "cd / && /bin/busybox umount -l /oldroot &&
			if /bin/busybox test -e /oldroot/bin; then echo old root still there; exit 9; fi &&
			/bin/ccm-early status --state-dir /run/ccm &&
			exec /bin/ccm-early exec --state-dir /run/ccm fmon -- /bin/ccm-fmon -vv"
	' pivot "$t" >>"$t/a/fmon.log" 2>&1 </dev/null &
	fmon_a=$!
	pids="$pids $fmon_a"
	wait_for 5 in_file "heartbeat 5 received" "$t/a/fmon.log"
	rc=$?
	assertTrue "the pivoted fmon got B's heartbeats: $(cat "$t/a/fmon.log")" "$rc"
	wait_for 5 in_file "heartbeat 5 received" "$t/b/fmon.log"
	rc=$?
	assertTrue "B's fmon got the pivoted fmon's heartbeats: $(cat "$t/b/fmon.log")" "$rc"
	assertContains "the new root sees the handoff in the moved /run" "$(cat "$t/a/fmon.log")" \
		"state:connected"
	assertContains "the pivoted fmon declared B alive" "$(cat "$t/a/fmon.log")" \
		"partner node 2 unknown -> alive"
	assertEquals "the pivoted service is the root's static fmon" "/bin/ccm-fmon -vv " \
		"$(tr '\0' ' ' <"/proc/$fmon_a/cmdline")"

	# The keeper still stops cleanly, telling the pivoted service.
	"${CCM}" stop --state-dir "$t/initrd/run/ccm" >"$t/stop.out" 2>&1
	rc=$?
	assertEquals "ccm-early stop of the initrd keeper: $(cat "$t/stop.out")" 0 "$rc"
	wait_exit "$fmon_a" 5
	assertEquals "the pivoted fmon exits 0 on TERMINATING" 0 "$ccm_rc"
	wait_for 5 eval "! kill -0 $kpid 2>/dev/null"
	assertTrue "the initrd keeper ended" $?
	assertEquals terminated "$(state_get "$t/initrd/run/ccm" CCM_STATE)"
	kill -TERM "$fmon_b"
	wait_exit "$fmon_b" 5
	stop_node b
	assert_no_sanitizer_report
}

# --- 8. stop/restart cycles --------------------------------------------------------

fd_count() {
	ls "/proc/$1/fd" | wc -l
}

rss_kib() {
	awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# A connected again with an epoch other than $1.
restarted_from() {
	local f="$t/a/run/state"
	grep -qxF "CCM_STATE='connected'" "$f" 2>/dev/null && ! grep -qxF "CCM_EPOCH='$1'" "$f"
}

test_100_stop_restart_cycles_leak_nothing() {
	local i old new fds10 rss10 fds100 rss100 t0 elapsed failed=0
	# The shipped (static, musl) keeper: the sanitizer's quarantine would
	# hide any real growth under its own.
	[ -x "$topdir/ccm-early" ] || { fail "no static ./ccm-early; run make"; return; }
	ccm_start "$topdir/ccm-early" a "$t/a/clients" --foreground
	start_node b
	assert_pair_connected || return
	t0=$(now_ms)
	for i in $(seq 1 100); do
		old=$(state_get "$t/a/run" CCM_EPOCH)
		if ! "${CCM}" stop --restart --grace 1000 --state-dir "$t/a/run" >"$t/stop.out" 2>&1; then
			fail "cycle $i: stop --restart failed: $(cat "$t/stop.out")"
			failed=1
			break
		fi
		if ! wait_for 10 restarted_from "$old"; then
			fail "cycle $i: A not connected again with a new epoch: $(tail -20 "$t/a/log")"
			failed=1
			break
		fi
		new=$(state_get "$t/a/run" CCM_EPOCH)
		echo "$new" >>"$t/epochs"
		if [ "$i" = 10 ]; then
			fds10=$(fd_count "$pid_a")
			rss10=$(rss_kib "$pid_a")
		fi
	done
	elapsed=$(( $(now_ms) - t0 ))
	[ "$failed" = 0 ] || return
	fds100=$(fd_count "$pid_a")
	rss100=$(rss_kib "$pid_a")
	echo "# 100 stop/restart cycles in ${elapsed} ms; A's fds: ${fds10} after 10, ${fds100} after 100;" \
		"VmRSS: ${rss10} KiB after 10, ${rss100} KiB after 100"
	assertEquals "every cycle a new epoch" 100 "$(sort -u "$t/epochs" | wc -l)"
	assertEquals "no fd growth from cycle 10 to 100" "$fds10" "$fds100"
	assertTrue "RSS growth under 512 KiB (${rss10} -> ${rss100} KiB)" \
		"[ $((rss100 - rss10)) -lt 512 ]"
	assertTrue "under 60 s (${elapsed} ms)" "[ $elapsed -lt 60000 ]"
	assertEquals "the keeper is the same process" "$pid_a" "$(state_get "$t/a/run" CCM_PID)"
	assert_pair_connected || return
	stop_pair
}

# --- 9. stop with a client attached ------------------------------------------------

# A supervisor's view: with --foreground the keeper says READY=1 and what
# it is doing on systemd's notify socket, and its control socket answers
# STATUS with the same facts as the handoff.
test_foreground_notifies_systemd_and_answers_status() {
	python3 "$here/ctl_probe.py" notify "$t/notify" 20 > "$t/notify.log" &
	pids="$pids $!"
	wait_for_line "$t/notify.log" listening 5 || { fail "no notify socket"; return; }
	NOTIFY_SOCKET=$t/notify start_node a
	start_node b
	assert_pair_connected || return
	wait_for_line "$t/notify.log" "READY=1|STATUS=connected to node 2" 5
	assertEquals "READY=1 and STATUS on the notify socket" 0 $?
	out=$(python3 "$here/ctl_probe.py" status "$t/a/run/ccm.sock" 2>&1)
	rc=$?
	assertEquals "STATUS answered: $out" 0 "$rc"
	assertContains "$out" '"state": "connected"'
	assertContains "$out" '"partner_node": 2'
	assertContains "$out" "\"epoch\": \"$(state_get "$t/a/run" CCM_EPOCH)\""
}

test_stop_tells_the_client_and_waits_for_it() {
	local out fpid
	start_node a
	start_node b
	assert_pair_connected || return
	start_fmon a exec
	wait_for 5 in_file "attached to client fmon" "$t/a/log" ||
		{ fail "fmon never attached: $(cat "$t/a/fmon.log")"; return; }

	open_path_to "$t/a/run"
	out=$(as_nobody "${CCM}" stop --state-dir "$t/a/run" 2>&1)
	assertNotEquals "a stop by uid $NOBODY is refused: $out" 0 $?
	assertContains "$out" "only root may stop the keeper"
	out=$(as_nobody "${CCM}" reload-keys --state-dir "$t/a/run" 2>&1)
	assertNotEquals "reload-keys by uid $NOBODY is refused: $out" 0 $?
	assertContains "$out" "only root may change the keeper's keys"
	out=$("${CCM}" reload-keys --state-dir "$t/a/run" 2>&1)
	assertNotEquals "reload-keys by root on a keeper without a key: $out" 0 $?
	assertContains "$out" "no psk-file is configured"
	sleep 0.2
	assertTrue "the keeper still runs" "kill -0 $pid_a"
	assertTrue "and so does its client" "kill -0 $fmon_a"
	assertEquals "still connected" connected "$(state_get "$t/a/run" CCM_STATE)"

	out=$("${CCM}" stop --state-dir "$t/a/run" 2>&1)
	assertEquals "ccm-early stop: $out" 0 $?
	assertContains "$out" "keeper stopped"
	wait_exit "$fmon_a" 5
	assertEquals "fmon exits 0 on TERMINATING" 0 "$ccm_rc"
	assertContains "fmon heard TERMINATING" "$(cat "$t/a/fmon.log")" "the keeper is stopping"
	wait_exit "$pid_a" 5
	assertEquals "the foreground keeper exits 0" 0 "$ccm_rc"
	assertEquals terminated "$(state_get "$t/a/run" CCM_STATE)"
	# The order in the keeper's log: told 1 client, it detached, then the end.
	out=$(grep -nE 'stopping: telling|detached from client fmon|terminating' "$t/a/log" |
		sed 's/^[^]]*\]: //')
	assertEquals "the keeper told its client, waited for it, then ended" \
		"stopping: telling 1 client(s), 5000 ms grace
pid ${fmon_a} detached from client fmon
terminating" "$out"
	assertNotContains "no grace time ran out" "$(cat "$t/a/log")" "still attached after the grace"
	assertFalse "the socket is gone" "[ -e '$t/a/run/ccm.sock' ]"
	# B heard the BYE.
	wait_for 5 state_is_not "$t/b/run" connected
	assertEquals "B is looking for A again" handshaking "$(state_get "$t/b/run" CCM_STATE)"
	pids="$pid_b"
	stop_node b
	assert_no_sanitizer_report
}

# count_in FILE STRING: how many lines of FILE hold the fixed STRING.
count_in() {
	grep -cF -- "$2" "$1" 2>/dev/null
}

# `stop --restart`: TERMINATING says the keeper comes back, and both shipped
# clients exit 1, for Restart=on-failure to start them again; started again
# they attach to the restarted keeper.  A plain stop makes them exit 0.
test_stop_restart_has_the_clients_come_back() {
	local out
	start_node a
	start_node b
	assert_pair_connected || return
	: >"$t/nvlog"
	start_fmon a attach
	"${NVMIRROR}" --state-dir "$t/a/run" --log "$t/nvlog" -v >>"$t/a/nvmirror.log" 2>&1 &
	nv=$! pids="$pids $!"
	wait_for 5 eval '[ "$(count_in "$t/a/log" "attached to client")" -ge 2 ]' ||
		{ fail "the clients never attached: $(cat "$t/a/fmon.log" "$t/a/nvmirror.log")"; return; }
	out=$("${CCM}" stop --restart --state-dir "$t/a/run" 2>&1)
	assertEquals "ccm-early stop --restart: $out" 0 $?
	wait_exit "$fmon_a" 10
	assertEquals "fmon exits 1 on a restart" 1 "$ccm_rc"
	assertContains "fmon heard why" "$(cat "$t/a/fmon.log")" "the keeper is restarting"
	wait_exit "$nv" 10
	assertEquals "nvmirror exits 1 on a restart" 1 "$ccm_rc"
	assertContains "nvmirror heard why" "$(cat "$t/a/nvmirror.log")" "the keeper is restarting"
	assertTrue "the keeper itself goes on" "kill -0 $pid_a"
	# What Restart=on-failure does: start them again.
	wait_for 10 test -S "$t/a/run/ccm.sock" || { fail "no socket after the restart"; return; }
	start_fmon a attach
	"${NVMIRROR}" --state-dir "$t/a/run" --log "$t/nvlog" -v >>"$t/a/nvmirror.log" 2>&1 &
	nv=$! pids="$pids $!"
	wait_for 10 eval '[ "$(count_in "$t/a/log" "attached to client")" -ge 4 ]'
	assertTrue "both attached to the restarted keeper: $(grep -F 'attached to client' "$t/a/log")" $?
	assert_pair_connected
	# A plain stop: they exit 0 and stay down.
	out=$("${CCM}" stop --state-dir "$t/a/run" 2>&1)
	assertEquals "ccm-early stop: $out" 0 $?
	wait_exit "$fmon_a" 10
	assertEquals "fmon exits 0 on a stop" 0 "$ccm_rc"
	wait_exit "$nv" 10
	assertEquals "nvmirror exits 0 on a stop" 0 "$ccm_rc"
	wait_exit "$pid_a" 10
	pids="$pid_b"
	stop_node b
}

# --- 10. local hardening --------------------------------------------------------

# STATUS through the socket (`ccm-early status` reads the handoff files).
sock_status() {  # NODE
	timeout 1 python3 "$here/ctl_probe.py" status "$t/$1/run/ccm.sock" 2>&1
}

# An unprivileged user holding more idle connections than it may gets its
# share and no more: root (and another user) still get in, and root's
# stop still stops the keeper.  The refusals are logged once, not per
# connection.
test_idle_connections_of_one_user_leave_root_its_way_in() {
	local out rc py
	# Another user may not reach a python of root's own (pyenv's, say);
	# the script comes on stdin, so its path need not be open either.
	py=/usr/bin/python3
	[ -x "$py" ] || py=$(command -v python3)
	start_node a
	start_node b
	assert_pair_connected || return
	open_path_to "$t/a/run"
	as_nobody "$py" - flood "$t/a/run/ccm.sock" 80 60 <"$here/ctl_probe.py" \
		>"$t/flood.out" 2>&1 &
	pids="$pids $!"
	wait_for 10 in_file "opened" "$t/flood.out" || { fail "no flood: $(cat "$t/flood.out")"; return; }
	assertEquals "uid $NOBODY holds its share" "opened held=16" "$(cat "$t/flood.out")"
	out=$(sock_status a)
	assertEquals "root's STATUS answered: $out" 0 $?
	assertContains "$out" '"state": "connected"'
	out=$(setpriv --reuid=65533 --regid=65533 --clear-groups \
		timeout 1 "$py" - status "$t/a/run/ccm.sock" <"$here/ctl_probe.py" 2>&1)
	assertEquals "another uid's STATUS answered: $out" 0 $?
	out=$("${CCM}" status --state-dir "$t/a/run" 2>&1)
	assertEquals "ccm-early status: $out" 0 $?
	assertEquals "one line for all the refusals" 1 \
		"$(grep -c "refused a connection from uid $NOBODY" "$t/a/log")"
	assertContains "$(cat "$t/a/log")" "too many connections from this uid"
	out=$(timeout 10 "${CCM}" stop --state-dir "$t/a/run" 2>&1)
	assertEquals "root's ccm-early stop: $out" 0 $?
	assertContains "$out" "keeper stopped"
	wait_exit "$pid_a" 5
	assertEquals "the keeper exits 0" 0 "$ccm_rc"
	pids="$pid_b"
	stop_node b
	assert_no_sanitizer_report
}

# A client attached to nvmirror makes its event fds as hostile as it can
# (a saturated eventfd counter, O_NONBLOCK cleared on its copy) and never
# reads them; the partner's nvmirror then writes with notify towards it.
# The keeper goes on serving: STATUS answers, heartbeats keep both sides
# connected, the partner's writes complete.
test_a_client_cannot_block_the_keeper_with_its_event_fds() {
	local out rc
	start_node a
	start_node b
	assert_pair_connected || return
	"${CCM}" exec --state-dir "$t/a/run" nvmirror -- python3 "$here/ctl_probe.py" saturate \
		>"$t/sat.out" 2>&1 &
	pids="$pids $!"
	wait_for 10 in_file "saturated" "$t/sat.out" || { fail "no client: $(cat "$t/sat.out")"; return; }
	head -c 262144 /dev/urandom > "$t/nvlog"
	timeout 20 "${NVMIRROR}" --state-dir "$t/b/run" --log "$t/nvlog" --once -v \
		>"$t/b/nvmirror.log" 2>&1
	rc=$?
	assertEquals "B's nvmirror --once: $(tail -3 "$t/b/nvmirror.log")" 0 "$rc"
	out=$(sock_status a)
	assertEquals "A's STATUS answered within a second: $out" 0 $?
	assertContains "$out" '"state": "connected"'
	sleep 1.5   # three times heartbeat-ms x heartbeat-misses
	out=$(sock_status a)
	assertEquals "and still: $out" 0 $?
	assertEquals "A still connected" connected "$(state_get "$t/a/run" CCM_STATE)"
	assertEquals "B still connected" connected "$(state_get "$t/b/run" CCM_STATE)"
	assertNotContains "B never lost A" "$(cat "$t/b/log")" "partner unreachable"
	assertTrue "the hostile client is still attached" "in_file 'saturated' '$t/sat.out'"
	stop_pair
}

# The modes README documents, under umask 077 to tell the modes set from
# the ones left to the umask: the state directory as mkdir makes it (0755
# less the umask), the socket 0666 whatever the umask (who may do
# what is decided per request), the handoff files 0644.
test_state_dir_and_socket_modes() {
	local old
	old=$(umask)
	umask 077
	start_node a
	start_node b
	umask "$old"
	assert_pair_connected || return
	assertEquals "state directory" 700 "$(stat -c %a "$t/a/run")"
	assertEquals "socket" "666 socket" "$(stat -c '%a %F' "$t/a/run/ccm.sock")"
	assertEquals "handoff file" 644 "$(stat -c %a "$t/a/run/state")"
	assertEquals "handoff JSON" 644 "$(stat -c %a "$t/a/run/state.json")"
	stop_pair
}

# A node's 256 ports take about 800 fds (a memfd and a pipe each, see
# bench/failover.sh's scale part): the keeper raises its soft fd limit to
# the hard one, past the 1024 most services start with.
test_the_keeper_raises_its_soft_fd_limit() {
	local soft hard got
	soft=$(ulimit -Sn) hard=$(ulimit -Hn)
	if [ "$hard" != unlimited ] && [ "$hard" -le 256 ]; then
		fail "the hard fd limit here is $hard: nothing to raise to"
		return
	fi
	ulimit -Sn 256
	start_node a
	ulimit -Sn "$soft"
	wait_for 5 test -S "$t/a/run/ccm.sock" || { fail "a's keeper did not start"; return; }
	got=$(awk '/^Max open files/ { print $4, $5 }' "/proc/$pid_a/limits")
	assertEquals "soft raised to hard (started with 256)" "$(echo "$got" | awk '{ print $2, $2 }')" "$got"
	assertNotEquals "not 256 any more" 256 "${got%% *}"
	stop_node a
	assert_no_sanitizer_report
}

# --- 11. truthful state ---------------------------------------------------------

# run_status NODE [ccm-early status args...]: `ccm-early status` of that node,
# output in $t/status.out, exit status in status_rc.
run_status() {
	local n=$1
	shift
	"${CCM}" status --state-dir "$t/$n/run" "$@" >"$t/status.out" 2>&1
	status_rc=$?
}

# A keeper killed outright leaves its handoff saying connected: status must
# not believe it, neither while the dead keeper is a zombie nor once reaped.
test_status_of_a_killed_keeper_is_stale() {
	local rc
	start_node a
	start_node b
	assert_pair_connected || return
	run_status a
	assertEquals "with the keeper alive: connected; $(cat "$t/status.out")" 0 "$status_rc"
	kill -KILL "$pid_a"
	wait_for 5 eval "grep -q '^State:.*zombie' /proc/$pid_a/status 2>/dev/null"
	assertEquals "the file still says connected" connected "$(state_get "$t/a/run" CCM_STATE)"
	run_status a
	assertEquals "a zombie keeper: stale, exit 6; $(cat "$t/status.out")" 6 "$status_rc"
	assertTrue "state shown as stale: $(cat "$t/status.out")" \
		"grep -qE '^default node:1 .* state:stale last-state:connected$' '$t/status.out'"
	wait_exit "$pid_a" 5
	run_status a
	assertEquals "a reaped keeper: stale, exit 6; $(cat "$t/status.out")" 6 "$status_rc"
	assertTrue "the reason names the pid: $(cat "$t/status.out")" \
		"grep -qE '^  stale: pid $pid_a, which wrote it, is gone$' '$t/status.out'"
	run_status a --json
	assertEquals "status --json: exit 6" 6 "$status_rc"
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["state"] == "stale" and d["stale"] is True, d
assert d["last_state"] == "connected", d
assert "is gone" in d["stale_reason"], d
' <"$t/status.out" 2>"$t/py"
	rc=$?
	assertEquals "JSON says stale, with the reason: $(cat "$t/py" "$t/status.out")" 0 "$rc"
	pids="$pid_b"
	stop_node b
	assert_no_sanitizer_report
}

# The state directory on a full file system: the keeper cannot write that
# its partner died.  It says so in its log, the old file stays whole, status
# asks the keeper and does not say connected, and once there is room again
# the next write brings the whole truth to the file.
test_status_with_the_state_dir_on_a_full_disk() {
	local k rc
	mkdir -p "$t/a/run" "$t/mnt"
	unshare -m --propagation private sh -c 'mount -t tmpfs -o size=64k tmpfs "$1"' sh "$t/mnt"
	assertEquals "a 64 KiB tmpfs can be mounted in a mount namespace" 0 $? || return
	# Node A in its own mount namespace, its state directory a 64 KiB tmpfs.
	unshare -m --propagation private sh -c '
		mount -t tmpfs -o size=64k,mode=0755 tmpfs "$1" || exit 99
		shift
		exec "$@"' sh "$t/a/run" \
		"${CCM}" connect --node-id 1 --listen "127.0.0.2:$port" --partner "127.0.0.3:$port" \
		--clients "$t/a/clients" --state-dir "$t/a/run" -v --foreground \
		>>"$t/a/log" 2>&1 </dev/null &
	pid_a=$!
	pids="$pids $pid_a"
	start_node b
	k="nsenter -t $pid_a -m"
	wait_for 15 eval "$k grep -qx \"CCM_STATE='connected'\" '$t/a/run/state' 2>/dev/null"
	rc=$?
	assertTrue "A connected on its tmpfs: $(cat "$t/a/log")" "$rc" || return
	assertTrue "A's state dir is the tmpfs" "$k findmnt -n -t tmpfs '$t/a/run' >/dev/null"
	connected b || { fail "B not connected: $(cat "$t/b/log")"; return; }
	# Fill it.
	$k sh -c "dd if=/dev/zero of='$t/a/run/fill' bs=1k 2>/dev/null; exit 0"
	assertEquals "the tmpfs is full" 0 "$($k df --output=avail -k "$t/a/run" | tail -1 | tr -d ' ')"
	kill -KILL "$pid_b"
	wait_exit "$pid_b" 5
	wait_for 10 in_file "cannot write the handoff (unreachable)" "$t/a/log"
	rc=$?
	assertTrue "the keeper logs the failed write: $(tail -5 "$t/a/log")" "$rc"
	assertContains "with the reason" "$(cat "$t/a/log")" "No space left on device"
	assertEquals "the old file is whole, and says connected" connected \
		"$($k sh -c ". '$t/a/run/state'; printf %s \"\$CCM_STATE\"")"
	assertEquals "no temporary file left" "ccm.sock fill metrics state state.json" \
		"$($k ls -A "$t/a/run" | tr '\n' ' ' | sed 's/ $//')"
	$k "${CCM}" status --state-dir "$t/a/run" >"$t/status.out" 2>&1
	status_rc=$?
	assertNotEquals "status does not exit 0: $(cat "$t/status.out")" 0 "$status_rc"
	assertFalse "status does not say connected: $(cat "$t/status.out")" \
		"grep -qE '^default .* state:connected' '$t/status.out'"
	assertTrue "the keeper's own answer: unreachable: $(cat "$t/status.out")" \
		"grep -qE '^default .* state:unreachable$' '$t/status.out'"
	# Room again: the keeper writes the whole state, unasked.
	$k rm -f "$t/a/run/fill"
	wait_for 10 eval "$k grep -qx \"CCM_STATE='unreachable'\" '$t/a/run/state'"
	rc=$?
	assertTrue "the next write carries the truth: $(tail -5 "$t/a/log")" "$rc"
	assertContains "and says so" "$(cat "$t/a/log")" "handoff written again: unreachable"
	kill -TERM "$pid_a"
	wait_exit "$pid_a" 10
	assertEquals "A stops cleanly" 0 "$ccm_rc"
	pids=""
	assert_no_sanitizer_report
}

# A host without the key that claims to be B (its node id) and floods small
# READs of A's status window on two connections for 10 s, 4,096 in flight
# on each: A's per-connection service budget (tp/tcp.c SERVE_BUDGET) keeps
# the real B's heartbeats and messages served.  The session stays
# connected, neither failover monitor loses its partner, and A's heartbeat
# round trips stay below the loss bound (500 ms here); the figure is printed
# from A's metrics.  (Without the budget, tried: fmon declared its partner
# dead and the longest round trip was 0.67 s.)
test_a_read_flood_from_an_impostor_starves_nothing() {
	local f1 f2 max
	start_node a --heartbeat-ms 100 --heartbeat-misses 5
	start_node b --heartbeat-ms 100 --heartbeat-misses 5
	assert_pair_connected || return
	start_fmons_hearing || return
	python3 "$here/readflood.py" 127.0.0.2 "$port" 2 10 4096 8 >"$t/flood1.out" 2>&1 &
	f1=$!
	python3 "$here/readflood.py" 127.0.0.2 "$port" 2 10 4096 8 >"$t/flood2.out" 2>&1 &
	f2=$!
	pids="$pids $f1 $f2"
	wait_exit "$f1" 20
	wait_exit "$f2" 20
	echo "# READ flood, two connections for 10 s: $(cat "$t/flood1.out"); $(cat "$t/flood2.out")"
	assertContains "the flood was served (the budget slows, it does not refuse)" \
		"$(cat "$t/flood1.out")" "greeted=1"
	assertNotContains "no monitor lost its partner" "$(cat "$t/a/fmon.log" "$t/b/fmon.log")" \
		"-> dead"
	assertNotContains "A never lost B" "$(cat "$t/a/log")" "lost"
	assert_pair_connected || return
	max=$(sed -n 's/^ccm_link_heartbeat_rtt_max_seconds{instance="default",link="0"} //p' \
		"$t/a/run/metrics")
	echo "# A's longest heartbeat round trip meanwhile: ${max:-?} s (loss at 0.5 s)"
	assertTrue "A's heartbeats stayed inside the bound (${max:-?} s)" \
		"awk 'BEGIN { exit !(\"${max:-9}\" + 0 < 0.5) }'"
}

# `ccm-early events`: what is first (--now), then every change, until the
# keeper goes; the same in JSON.
test_events_follow_the_keeper() {
	local ev=$t/events.txt js=$t/events.json e1 e2 p_ev p_js out
	start_node a
	start_node b
	assert_pair_connected || return
	e1=$(state_get "$t/b/run" CCM_EPOCH)
	"${CCM}" events --state-dir "$t/a/run" --now >"$ev" 2>"$t/events.err" &
	p_ev=$!
	# Anyone may watch, as anyone may ask the status.
	open_path_to "$t/a/run"
	as_nobody "${CCM}" events --state-dir "$t/a/run" --now --json >"$js" 2>"$t/events-json.err" &
	p_js=$!
	pids="$pids $p_ev $p_js"
	wait_for 5 in_file "exists -" "$ev" || { fail "no snapshot: $(cat "$ev" "$t/events.err")"; return; }
	out=$(cut -d' ' -f2- "$ev")
	assertContains "the state" "$out" "exists state connected"
	assertContains "the handshake" "$out" "exists handshake connected"
	assertContains "the link" "$out" "exists link 0 up"
	assertContains "the partner" "$out" "exists partner node=2 epoch=$e1 ready"
	assertTrue "ISO 8601 times, in ms" "head -1 '$ev' | grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}\.[0-9]{3}Z '"
	wait_for 5 in_file '"object":"-"' "$js" ||
		{ fail "the JSON watcher has no snapshot: $(cat "$js" "$t/events-json.err")"; return; }
	start_fmon a exec
	wait_for 5 in_file "change client fmon attached" "$ev" ||
		{ fail "no attach: $(cat "$ev")"; return; }
	kill -TERM "$fmon_a"
	wait_for 5 in_file "change client fmon detached" "$ev" ||
		{ fail "no detach: $(cat "$ev")"; return; }
	kill -9 "$pid_b"
	wait_for 10 in_file "change partner node=2 epoch=$e1 lost" "$ev" ||
		{ fail "no loss: $(cat "$ev")"; return; }
	wait_for 5 in_file "change state unreachable" "$ev" || fail "not unreachable: $(cat "$ev")"
	rm -f "$t/b/run/state"  # the killed keeper's last word: connected
	start_node b
	connected b || { fail "B back: $(cat "$t/b/log")"; return; }
	e2=$(state_get "$t/b/run" CCM_EPOCH)
	wait_for 15 in_file "epoch=$e2 back" "$ev" || { fail "not back: $(cat "$ev")"; return; }
	wait_for 5 in_file "change state connected" "$ev" || fail "not connected again: $(cat "$ev")"
	"${CCM}" stop --state-dir "$t/a/run" >/dev/null 2>&1
	wait_exit "$p_ev" 10
	assertEquals "events ends with the keeper: $(cat "$t/events.err")" 0 "$ccm_rc"
	assertContains "having said so" "$(cat "$ev")" "change terminating stop"
	wait_exit "$p_js" 10
	assertEquals "the JSON watcher too: $(cat "$t/events-json.err")" 0 "$ccm_rc"
	out=$(python3 -c 'import json, sys
seen = []
for line in open(sys.argv[1]):
    o = json.loads(line)
    assert o["type"] in ("exists", "change") and o["time"].endswith("Z"), o
    if o["type"] == "exists":
        continue
    seen.append((o["object"], o.get("state"), o.get("name"), o.get("epoch")))
print(("client", "attached", "fmon", None) in seen, ("partner", "lost", None, sys.argv[2]) in seen,
      ("partner", "back", None, sys.argv[3]) in seen, ("terminating", "stop", None, None) in seen)' \
		"$js" "$e1" "$e2" 2>&1)
	assertEquals "the JSON lines parse and say the same ($(head -c 600 "$js"))" \
		"True True True True" "$out"
	echo "# events: $(wc -l <"$ev") lines, e.g. $(grep -m1 ' lost$' "$ev")"
	stop_node b
}

# Debian's prometheus-node-exporter and promtool read the keeper's metrics.
NODE_EXPORTER=$(command -v prometheus-node-exporter || true)
PROMTOOL=$(command -v promtool || true)

free_tcp_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# scrape PORT: node_exporter's /metrics, into $t/scrape.
scrape() {
	python3 -c 'import sys, urllib.request
sys.stdout.write(urllib.request.urlopen("http://127.0.0.1:%s/metrics" % sys.argv[1], timeout=5).read().decode())' \
		"$1" >"$t/scrape" 2>/dev/null
}

# scrape_has PORT LINE: the scrape has that exact line.
scrape_has() {
	scrape "$1" && grep -qxF -- "$2" "$t/scrape"
}

test_metrics_reach_node_exporter_and_pass_promtool() {
	local prom=$t/prom web out rc
	if [ -z "$NODE_EXPORTER" ] || [ -z "$PROMTOOL" ]; then
		fail "no prometheus-node-exporter or promtool: scripts/deps.sh test installs them"
		return
	fi
	mkdir -p "$prom"
	start_node a --metrics-dir "$prom"
	start_node b
	assert_pair_connected || return
	start_fmons_hearing || return
	wait_for 5 in_file 'ccm_client_attached{instance="default",client="fmon"} 1' \
		"$prom/ccm-early.prom" ||
		{ fail "no attached fmon in the textfile: $(cat "$prom/ccm-early.prom")"; return; }
	out=$("$PROMTOOL" check metrics <"$prom/ccm-early.prom" 2>&1)
	rc=$?
	assertEquals "promtool check metrics, the textfile: $out" 0 "$rc"
	"${CCM}" metrics --state-dir "$t/a/run" >"$t/cli.prom" 2>"$t/cli.err"
	assertEquals "ccm-early metrics: $(cat "$t/cli.err")" 0 $?
	out=$("$PROMTOOL" check metrics <"$t/cli.prom" 2>&1)
	rc=$?
	assertEquals "promtool check metrics, ccm-early metrics: $out" 0 "$rc"
	assertContains "the same metrics in the state directory" "$(cat "$t/cli.prom")" \
		'ccm_partner_up{instance="default"} 1'
	web=$(free_tcp_port)
	"$NODE_EXPORTER" --web.listen-address="127.0.0.1:$web" --collector.disable-defaults \
		--collector.textfile --collector.textfile.directory="$prom" \
		>"$t/node_exporter.log" 2>&1 </dev/null &
	pids="$pids $!"
	wait_for 10 scrape_has "$web" 'ccm_partner_up{instance="default"} 1' ||
		{ fail "node_exporter does not serve ccm_partner_up: $(head -c 2000 "$t/scrape") $(cat "$t/node_exporter.log")"; return; }
	assertContains "node_exporter read the file without error" "$(cat "$t/scrape")" \
		'node_textfile_scrape_error 0'
	assertContains "the link is up" "$(cat "$t/scrape")" \
		'ccm_link_up{instance="default",link="0"} 1'
	assertContains "fmon is attached" "$(cat "$t/scrape")" \
		'ccm_client_attached{client="fmon",instance="default"} 1'
	assertTrue "heartbeat round trips were counted" \
		"grep -q '^ccm_link_heartbeat_rtt_seconds_count{instance=\"default\",link=\"0\"} [1-9]' $t/scrape"
	# B goes: what an alert would fire on.
	kill -9 "$pid_b"
	wait_for 15 scrape_has "$web" 'ccm_partner_losses_total{instance="default"} 1' ||
		{ fail "node_exporter never showed the loss: $(grep '^ccm_partner\|^ccm_state' "$t/scrape")"; return; }
	assertContains "and the partner is down" "$(cat "$t/scrape")" 'ccm_partner_up{instance="default"} 0'
	assertContains "the state says why" "$(cat "$t/scrape")" \
		'ccm_state{instance="default",state="unreachable"} 1'
	# A's keeper goes too: the metrics are still printed, and the exit
	# status says they are stale, as status does.
	kill -9 "$pid_a"
	wait_exit "$pid_a" 5
	"${CCM}" metrics --state-dir "$t/a/run" >"$t/cli.prom" 2>"$t/cli.err"
	assertEquals "ccm-early metrics of a dead keeper: stale (6)" 6 $?
	assertContains "it says so" "$(cat "$t/cli.err")" "stale"
	assertContains "and prints what there was" "$(cat "$t/cli.prom")" 'ccm_partner_losses_total{instance="default"} 1'
}

# --- 12. the message channel's flow control -----------------------------------
# A client that does not read must slow its partner's sender, never be
# dropped for it, and lose nothing; one that attaches late gets what waited
# for it; and a flood of messages must not cut a failover monitor off its
# keeper.  ccm-msgflow (tests/twonode/msgflow.c) is both ends.

MSGFLOW="${bindir}/ccm-msgflow"

# flow NODE send|recv [ccm-msgflow args...]: in the background; its pid in
# flow_NODE_MODE, its output in $t/NODE/MODE.out and .err.
flow() {
	local n=$1 m=$2
	shift 2
	"${MSGFLOW}" "$m" --state-dir "$t/$n/run" --client flow "$@" \
		>"$t/$n/$m.out" 2>"$t/$n/$m.err" </dev/null &
	eval "flow_${n}_$m=$!"
	pids="$pids $!"
}

# out_field NODE MODE NAME: NAME=value from that ccm-msgflow's summary line.
out_field() {
	tr ' ' '\n' <"$t/$1/$2.out" | sed -n "s/^$3=//p"
}

# Both failover monitors (A's by exec, B's attaching), hearing each other.
start_fmons_hearing() {
	start_fmon a exec
	start_fmon b attach
	for n in a b; do
		wait_for 5 in_file "heartbeat 2 received" "$t/$n/fmon.log" ||
			{ fail "node $n's fmon hears no heartbeat: $(cat "$t/$n/fmon.log")"; return 1; }
	done
}

# start_flow_pair [KEEPER OPTION...]: both keepers with a client "flow".
start_flow_pair() {
	for n in a b; do
		make_client "$t/$n/clients" flow 1 4K
	done
	start_node a "$@"
	start_node b "$@"
	assert_pair_connected
}

test_a_slow_receiver_slows_its_sender_and_loses_nothing() {
	local rc
	[ -x "${MSGFLOW}" ] || { fail "no ccm-msgflow at ${MSGFLOW}; run make dev"; return; }
	# A hold far shorter than the deafness: an attached client, however
	# slow, never has a message given up.
	start_flow_pair --msg-hold-ms 500 || return
	start_fmons_hearing || return
	# B's client attaches and reads nothing for 3 s while A sends 5,000.
	flow b recv --count 5000 --deaf-ms 3000
	wait_for 5 in_file attached "$t/b/recv.out" ||
		{ fail "the receiver did not attach: $(cat "$t/b/recv.err")"; return; }
	flow a send --count 5000 --size 64
	wait_exit "$flow_a_send" 60
	assertEquals "the sender's exit status: $(cat "$t/a/send.err")" 0 "$ccm_rc"
	wait_exit "$flow_b_recv" 60
	assertEquals "the receiver's exit status: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	assertEquals "the receiver got all 5,000, once each, in order" 5000 \
		"$(out_field b recv received)"
	assertEquals "every send DONE 0" 5000 "$(out_field a send done)"
	rc=$(out_field a send eagain)
	assertTrue "the sender was held back (-EAGAIN $rc times)" "[ '${rc:-0}' -gt 0 ]"
	rc=$(out_field a send max_in_flight)
	assertTrue "at most one window in flight ($rc)" "[ '${rc:-999}' -le 64 ]"
	echo "# sender: $(cat "$t/a/send.out"); receiver: $(tail -1 "$t/b/recv.out")"
	echo "# peak RSS of the keepers ($(basename "${CCM}") as built for the tests):" \
		"A $(awk '/^VmHWM/ { print $2 $3 }' "/proc/$pid_a/status")," \
		"B $(awk '/^VmHWM/ { print $2 $3 }' "/proc/$pid_b/status")"
	assertNotContains "B's keeper kept its slow client" "$(cat "$t/b/log")" "dropp"
	# The failover monitors heard each other throughout.
	assertNotContains "no monitor declared its partner dead" \
		"$(cat "$t/a/fmon.log" "$t/b/fmon.log")" "-> dead"
	for n in a b; do
		eval "p=\$fmon_$n"
		kill -TERM "$p"
		wait_exit "$p" 5
		assertEquals "node $n's fmon still attached and well" 0 "$ccm_rc"
	done
	stop_pair
}

test_messages_wait_for_a_receiver_that_attaches_late() {
	[ -x "${MSGFLOW}" ] || { fail "no ccm-msgflow at ${MSGFLOW}; run make dev"; return; }
	start_flow_pair || return
	# No client on B yet: the first window's messages wait in B's keeper,
	# and the sender gets no DONE, and no credit, until they are delivered.
	flow a send --count 300 --size 200
	sleep 2
	assertTrue "the sender is still waiting" "kill -0 $flow_a_send"
	flow b recv --count 300
	wait_exit "$flow_b_recv" 30
	assertEquals "the late receiver's exit status: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	assertEquals "it got all 300, in order" 300 "$(out_field b recv received)"
	wait_exit "$flow_a_send" 30
	assertEquals "the sender's exit status: $(cat "$t/a/send.err")" 0 "$ccm_rc"
	assertEquals "every send DONE 0" 300 "$(out_field a send done)"
	stop_pair
}

test_messages_for_a_receiver_that_stays_away_time_out() {
	[ -x "${MSGFLOW}" ] || { fail "no ccm-msgflow at ${MSGFLOW}; run make dev"; return; }
	start_flow_pair --msg-hold-ms 1000 || return
	# No client on B: A's first window waits in B's keeper for 1 s, then
	# is given up, and each of those sends completes with ETIMEDOUT.
	flow a send --count 1000 --size 64 --until-lost --timeout-s 20
	wait_exit "$flow_a_send" 20
	assertEquals "the sender's exit status: $(cat "$t/a/send.err")" 0 "$ccm_rc"
	echo "# sender: $(cat "$t/a/send.out")"
	assertEquals "none was confirmed" 0 "$(out_field a send done)"
	assertEquals "a window's worth failed" 64 "$(out_field a send failed)"
	assertEquals "with ETIMEDOUT" -110 "$(out_field a send first_error)"
	# (In one go, or in more when they came over more than a millisecond.)
	assertContains "B's keeper says so" "$(cat "$t/b/log")" \
		"message(s) of the partner's given up: no channel for 1000 ms"
	# What was given up never comes: a receiver that attaches now gets a
	# new sender's 1..200 and nothing before them (an old one would come
	# first and make the new 1 a duplicate).
	mv "$t/a/send.out" "$t/a/send1.out"
	flow b recv --count 200
	wait_for 5 in_file attached "$t/b/recv.out" ||
		{ fail "the receiver did not attach: $(cat "$t/b/recv.err")"; return; }
	flow a send --count 200 --size 64
	wait_exit "$flow_a_send" 30
	assertEquals "the second sender's exit status: $(cat "$t/a/send.err")" 0 "$ccm_rc"
	assertEquals "every send DONE 0" 200 "$(out_field a send done)"
	wait_exit "$flow_b_recv" 30
	assertEquals "the receiver's exit status: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	assertEquals "it got the 200, from the first, in order" "200 1" \
		"$(out_field b recv received) $(out_field b recv first)"
	stop_pair
}

test_receiver_leaving_mid_stream_returns_to_the_rest() {
	local first
	[ -x "${MSGFLOW}" ] || { fail "no ccm-msgflow at ${MSGFLOW}; run make dev"; return; }
	start_flow_pair || return
	# The first receiver takes 1,000 and leaves; the second takes the rest.
	flow b recv --count 1000
	wait_for 5 in_file attached "$t/b/recv.out" ||
		{ fail "the receiver did not attach: $(cat "$t/b/recv.err")"; return; }
	flow a send --count 5000 --size 64
	wait_exit "$flow_b_recv" 30
	assertEquals "the first receiver's exit status: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	mv "$t/b/recv.out" "$t/b/recv1.out"
	flow b recv --count 5000 --from-any
	wait_exit "$flow_b_recv" 30
	assertEquals "the second receiver's exit status: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	wait_exit "$flow_a_send" 30
	assertEquals "the sender's exit status: $(cat "$t/a/send.err")" 0 "$ccm_rc"
	# Every message was taken by one receiver's channel: all DONE 0.  What
	# the first one's channel held unread when it left went with it (at
	# most a window); the second gets everything after, in order, to the
	# last.
	assertEquals "every send DONE 0" 5000 "$(out_field a send done)"
	first=$(out_field b recv first)
	echo "# the first receiver left after 1000; the second began at ${first}"
	assertTrue "the second began after the first's last ($first)" "[ '${first:-0}' -gt 1000 ]"
	assertTrue "at most a window went unread with the first ($first)" \
		"[ '${first:-9999}' -le $((1001 + 64)) ]"
	assertEquals "and got every one to the last, in order" 5000 "$(out_field b recv last)"
	stop_pair
}

test_partner_reboot_mid_stream_fails_the_unconfirmed() {
	local done failed sent last
	[ -x "${MSGFLOW}" ] || { fail "no ccm-msgflow at ${MSGFLOW}; run make dev"; return; }
	start_flow_pair || return
	flow b recv --count 100000000 --until-gone
	wait_for 5 in_file attached "$t/b/recv.out" ||
		{ fail "the receiver did not attach: $(cat "$t/b/recv.err")"; return; }
	flow a send --count 100000000 --until-lost --timeout-s 60
	sleep 2
	kill -9 "$pid_b"
	wait_exit "$flow_b_recv" 10
	assertEquals "the receiver saw its keeper go: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	start_node b
	wait_exit "$flow_a_send" 60
	assertEquals "the sender's exit status: $(cat "$t/a/send.err")" 0 "$ccm_rc"
	echo "# sender: $(cat "$t/a/send.out"); receiver: $(tail -1 "$t/b/recv.out")"
	sent=$(out_field a send sent) done=$(out_field a send done)
	failed=$(out_field a send failed) last=$(out_field b recv last)
	assertTrue "messages flowed before the reboot ($done)" "[ '${done:-0}' -gt 100 ]"
	assertTrue "some were not confirmed ($failed)" "[ '${failed:-0}' -gt 0 ]"
	assertEquals "every message sent has its DONE" "$sent" "$((done + failed))"
	# DONEs come in order: 1..done were confirmed, and each of them was
	# received; what failed may or may not have been.
	assertTrue "every confirmed message was received ($done <= $last)" \
		"[ '${done:-1}' -le '${last:-0}' ]"
	assertEquals "the unconfirmed ones failed with ECONNRESET" -104 \
		"$(out_field a send first_error)"
	assert_pair_connected
	stop_pair
}

# hwm_kib PID: a process's peak RSS (VmHWM) in KiB.
hwm_kib() {
	awk '/^VmHWM/ { print $2 }' "/proc/$1/status"
}

# A local client floods its port for FLOOD_S seconds (60 by default),
# ignoring the window and never reading, at a partner client that reads
# nothing all that time.  With the shipped static keepers (no sanitizer's
# quarantine in the figure): their memory stays bounded, the flooder is
# refused and, once 1 MiB of answers wait for it, closed; the deaf
# receiver is kept and the failover monitors beside them never notice.
test_a_minute_long_flood_at_a_deaf_client_stays_bounded() {
	local secs=${FLOOD_S:-60} out
	[ -x "$topdir/ccm-early" ] || { fail "no static ./ccm-early; run make"; return; }
	[ -x "${MSGFLOW}" ] || { fail "no ccm-msgflow at ${MSGFLOW}; run make dev"; return; }
	for n in a b; do
		make_client "$t/$n/clients" flow 1 4K
	done
	ccm_start "$topdir/ccm-early" a "$t/a/clients" -v --foreground
	ccm_start "$topdir/ccm-early" b "$t/b/clients" -v --foreground
	assert_pair_connected || return
	start_fmons_hearing || return
	echo "# peak RSS before the flood: A $(hwm_kib "$pid_a") KiB, B $(hwm_kib "$pid_b") KiB"
	flow b recv --count 1 --from-any --deaf-ms $((secs * 1000)) --timeout-s 30
	wait_for 5 in_file attached "$t/b/recv.out" ||
		{ fail "the receiver did not attach: $(cat "$t/b/recv.err")"; return; }
	"${CCM}" exec --state-dir "$t/a/run" flow -- python3 "$here/ctl_probe.py" sendflood "$secs" \
		>"$t/flood.out" 2>&1 </dev/null &
	flooder=$!
	pids="$pids $flooder"
	wait_exit "$flooder" $((secs + 10))
	assertEquals "the flooder ends: $(cat "$t/flood.out")" 0 "$ccm_rc"
	assertContains "the keeper closed the flooder that never read" "$(cat "$t/flood.out")" closed=1
	wait_exit "$flow_b_recv" $((secs + 40))
	assertEquals "the deaf receiver was kept, and then read: $(cat "$t/b/recv.err")" 0 "$ccm_rc"
	out="A $(hwm_kib "$pid_a") KiB, B $(hwm_kib "$pid_b") KiB"
	echo "# flood: $(cat "$t/flood.out"); peak RSS after ${secs} s of it: $out"
	for n in a b; do
		eval "p=\$pid_$n"
		assertTrue "node $n's keeper lives" "kill -0 $p"
		assertTrue "node $n's keeper stayed under 4 MiB ($out)" "[ $(hwm_kib "$p") -lt 4096 ]"
	done
	assertNotContains "no monitor declared its partner dead" \
		"$(cat "$t/a/fmon.log" "$t/b/fmon.log")" "-> dead"
	assert_pair_connected
	stop_pair
}

. shunit2
