#!/usr/bin/env bash
# The proof of the dracut module (issue 5): two real boots.
#
# Each guest boots Debian's stock kernel (build/vm) with a dracut image
# built here from the tree's dracut/95ccm (dracut's own init, network-legacy),
# runs `ccm-early connect --transport rdma` over Soft-RoCE in the initramfs
# (rd.ccm.rxe=eth0 creates rxe0), switches root to a real ext4 root on a
# virtio disk, whose /sbin/init (tests/boot/root-init.sh) starts
# `ccm-early exec fmon -- ccm-fmon` and reports through the 9p share.
#
#   both together   connected in both initramfs, the keeper ('@...') survived
#                   switch_root, fmon heartbeats flow; time in the initramfs
#                   with and without the module (same run), keeper RSS
#   b 30 s late     a's connect times out (rd.ccm.timeout=10): a degraded
#                   boot; its keeper connects once b is there.  Both nodes
#                   also bring up the named instance mirror (tcp, port 7472,
#                   rd.ccm.instance=mirror): a's two connect steps run side
#                   by side, and both keepers connect once b is there
#   b reboots       a's keeper and fmon see b lost, then b's new incarnation
#   systemd         systemd in both initramfs (dracut's systemd modules) and
#                   in both real roots: ccm-early.service connects, systemd
#                   stops the unit and switches root, the keeper survives
#                   both, handoff/ccm-fmon.service runs fmon over it; b's
#                   keeper restarts in place (stop --restart) and systemd
#                   starts the unit again; then b goes and a's keeper logs
#                   it on the console.  The named instance mirror the same
#                   way: ccm-early@mirror.service in the initramfs, taken
#                   over by handoff/ccm-early@.service, untouched by the
#                   other keeper's restart
set -u
# shellcheck disable=SC2154  # t and _shunit_test_ come from common.sh/shunit2
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/boot/lib.sh
. "$(dirname "$0")/lib.sh"

boot_missing=""
BOOT_LOGS=$VM_TOP/build/test-logs/boot

oneTimeSetUp() {
	"$BOOT_HERE/setup.sh" >&2 || true
	if ! vm_available || ! command -v dracut >/dev/null || ! command -v mkfs.ext4 >/dev/null; then
		boot_missing="no qemu, lab kernel, dracut or mkfs.ext4 after tests/boot/setup.sh"
		return 0
	fi
	local s=$SECONDS
	boot_prepare "$SHUNIT_TMPDIR/boot" >&2 || boot_missing="building the images failed"
	echo "# images and root filesystem built in $((SECONDS - s))s" >&2
}

setUp() {
	ccm_begin_test
	VM_ROLES="" VM_PIDS=""
	if [ -n "$boot_missing" ]; then
		if [ "${CI:-}" = true ]; then
			fail "boot proof unavailable: $boot_missing"
		else
			echo "" >&2
			echo "#### SKIP ${_shunit_test_}: boot proof unavailable: $boot_missing ####" >&2
			echo "" >&2
		fi
		startSkipping
	fi
}

boot_ready() { [ -z "$boot_missing" ]; }

tearDown() {
	vm_kill_all
	# The guests' reports and serial logs outlive the run.
	if [ -n "${_shunit_test_:-}" ] && [ -n "${t:-}" ] && [ -d "$t/share" ]; then
		rm -rf "${BOOT_LOGS:?}/${_shunit_test_}"
		mkdir -p "$BOOT_LOGS"
		cp -r "$t/share" "$BOOT_LOGS/${_shunit_test_}"
	fi
	ccm_report
}

# The kernel command line of node a (1) or b (2), plus EXTRA.
args() {
	local n=1
	[ "$1" = b ] && n=2
	echo "ip=10.0.0.$n:::255.255.255.0::eth0:none rd.ccm.rxe=eth0 $2"
}

# Seconds spent in the initramfs: from the kernel's "Run /init" to the real
# root's init.
in_initramfs() {
	awk -v a="$(boot_val "$1" INIT_AT)" -v b="$(boot_val "$1" ROOT_UPTIME)" \
		'BEGIN { if (a == "" || b == "") print "?"; else printf "%.1f", b - a }'
}

# Fail with the serial tails of every guest named.
show() {
	local n
	for n in "$@"; do boot_tail "$n" "$t/share" >&2; done
}

# journal_has FILE FIELD=VALUE|FIELD~REGEX...: an entry of FILE (journalctl
# -o json, one per line) has every one of them.
journal_has() {
	python3 - "$@" <<-'EOF'
		import json, re, sys
		want = sys.argv[2:]
		def fits(e, w):
		    k, op, v = re.match(r'([A-Z_]+)([=~])(.*)', w).groups()
		    got = e.get(k)
		    return isinstance(got, str) and (got == v if op == '=' else re.search(v, got))
		try:
		    lines = open(sys.argv[1]).read().splitlines()
		except OSError:
		    sys.exit(1)
		sys.exit(0 if any(all(fits(json.loads(l), w) for w in want) for l in lines if l) else 1)
	EOF
}

# A guest's serial console without CRs and colours (systemd's status lines).
serial() {
	tr -d '\r' <"$t/share/$1.serial" | sed 's/\x1b\[[0-9;]*m//g'
}

# Connected in the initramfs (its connect step said so on the console:
# SAID, by default dracut's own init's way), over rdma, and connected with
# its client shared at the end of the run.  The handoff the real root's init
# found may already be a later one: the keeper goes on writing it after
# switch_root.
assert_booted_connected() {
	local n=$1 s=$t/share said=${2:-"dracut: ccm: connected to node"} waited
	waited=$(boot_val "$s/$n.final" FINAL_SETTLE_S)
	[ "${waited:-0}" = 0 ] ||
		echo "# $n: its final report waited ${waited}s for the keeper to be connected again; stalls its keeper saw: $(serial "$n" | grep -o 'not scheduled for [0-9]* ms' | tr '\n' ';' | grep . || echo none)" >&2
	assertContains "$n: connected in the initramfs (see $s/$n.serial)" "$(serial "$n")" "$said"
	assertEquals "$n: transport" rdma "$(boot_val "$s/$n.boot" CCM_TRANSPORT)"
	assertEquals "$n: connected at the end (see $s/$n.final)" connected "$(kept "$n" STATE)"
	assertEquals "$n: clients at the end" fmon "$(boot_val "$s/$n.final" CCM_CLIENTS)"
}

assert_keeper_survived() {
	local n=$1 s=$t/share pid argv
	pid=$(boot_val "$s/$n.boot" KEEPER_PID)
	argv=$(boot_val "$s/$n.boot" KEEPER_ARGV)
	assertNotNull "$n: a keeper in the real root (see $s/$n.boot)" "$pid"
	assertEquals "$n: its argv[0] starts with @" @ "${argv:0:1}"
	assertEquals "$n: it is the handoff's writer" "$(boot_val "$s/$n.boot" CCM_PID)" "$pid"
	assertEquals "$n: its own session" "$pid" "$(boot_val "$s/$n.boot" KEEPER_SID)"
	assertEquals "$n: cwd /" / "$(boot_val "$s/$n.boot" KEEPER_CWD)"
	assertEquals "$n: the same keeper at the end" "$pid" "$(boot_val "$s/$n.final" KEEPER_PID)"
}

# kept N KEY: the keeper's latest handoff value KEY (STATE, PARTNER_EPOCH)
# at the end of N's run: what it wrote into its own root after switch_root
# if anything (see below), else the real root's /run/ccm/state.
kept() {
	local f=$t/share/$1.final v
	v=$(boot_val "$f" "KEEPER_VIEW_$2")
	[ -n "$v" ] || v=$(boot_val "$f" "CCM_$2")
	echo "$v"
}

# The handoff that the real root reads (/run/ccm/state) must be the one
# the keeper writes after switch_root.  The keeper's root directory stays
# the initramfs' (switch_root changes PID 1's only), and ccm-early opens the
# state directory by path at every write (lib/state/handoff.c handoff_write), so
# its writes after switch_root land in the old, hidden root
# (/proc/KEEPER/root/run/ccm), and the real root keeps the initramfs' last
# handoff.  Fails until ccm-early writes through a directory fd opened
# before the switch.
assert_real_root_sees_the_keeper() {
	local f=$t/share/$1.final
	assertEquals "$1: the real root's /run/ccm/state is current (the keeper's own handoff, in the initramfs' old root: '$(boot_val "$f" KEEPER_VIEW_STATE)'; see $f)" \
		"$2" "$(boot_val "$f" CCM_STATE)"
	assertEquals "$1: the real root's /run/ccm/state has the current partner epoch" \
		"$3" "$(boot_val "$f" CCM_PARTNER_EPOCH)"
}

# The initramfs' ccm.conf names metrics-dir /var/lib/ccm-metrics, which only
# the real root has (tests/boot/lib.sh): the keeper, its root still the
# initramfs' after switch_root, follows PID 1 into the real root to write
# it, and the pair is up in it at the end.
assert_metrics_from_the_real_root() {
	local f=$t/share/$1.final
	assertEquals "$1: the keeper's metrics in the real root's metrics-dir say connected (see $f)" \
		1 "$(boot_val "$f" METRICS_PARTNER_UP)"
	assertEquals "$1: the keeper moved into the real root to write them" yes \
		"$(boot_val "$f" KEEPER_ROOT_IS_OURS)"
}

# ------------------------------------------------------------------ tests

test_both_boot_together_connect_in_the_initramfs() {
	boot_ready || return 0
	local s=$t/share n with without
	mkdir -p "$s"

	# Without the module: the same guests, kernel and command line,
	# plain.img -- and rd.neednet=1, so that dracut brings the same
	# interface up as the module has it do: the fair baseline, in which
	# the difference is the module's own (the Soft-RoCE device, the
	# connect), not dracut's network.
	boot_net
	boot_guest a pa "$BOOT_DIR/plain.img" "$s" "$(args a "boot_hold=0 rd.neednet=1")"
	boot_guest b pb "$BOOT_DIR/plain.img" "$s" "$(args b "boot_hold=0 rd.neednet=1")"
	boot_wait_guests 150 || show pa pb
	assertTrue "plain boots reached the real root" "[ -e $s/pa.done ] && [ -e $s/pb.done ]"
	assertEquals "pa: no keeper without the module" "" "$(boot_val "$s/pa.boot" KEEPER_PID)"

	boot_net
	boot_guest a a "$BOOT_DIR/ccm-a.img" "$s" "$(args a "rd.ccm.timeout=90 boot_peer=b boot_hold=5")"
	boot_guest b b "$BOOT_DIR/ccm-b.img" "$s" "$(args b "rd.ccm.timeout=90 boot_peer=a boot_hold=5")"
	boot_wait_guests 170 || show a b
	assertTrue "a: reached the real root and finished" "[ -e $s/a.done ]"
	assertTrue "b: reached the real root and finished" "[ -e $s/b.done ]"
	for n in a b; do
		assert_booted_connected "$n"
		assert_keeper_survived "$n"
		assertContains "$n: connected in the initramfs" "$(serial "$n")" "dracut: ccm: connected to node"
		assertContains "$n: rxe0 by rd.ccm.rxe" "$(serial "$n")" "ccm: Soft-RoCE device rxe0 on eth0"
		assertContains "$n: fmon heard the partner (see $s/$n.fmon)" "$(cat "$s/$n.fmon" 2>/dev/null)" "unknown -> alive: first heartbeat"
		assert_metrics_from_the_real_root "$n"
		assertNotContains "$n: the busybox root has no journald: the keeper does not claim to log there" \
			"$(serial "$n")" "logging to the journal from now on"
	done
	assertEquals "a knows b's epoch" "$(boot_val "$s/b.boot" CCM_EPOCH)" "$(boot_val "$s/a.boot" CCM_PARTNER_EPOCH)"
	assertEquals "b knows a's epoch" "$(boot_val "$s/a.boot" CCM_EPOCH)" "$(boot_val "$s/b.boot" CCM_PARTNER_EPOCH)"

	for n in a b; do
		with=$(in_initramfs "$s/$n.boot") without=$(in_initramfs "$s/p$n.boot")
		echo "# $n: in the initramfs ${with}s with the module, ${without}s without it (network up in both); ratio $(awk -v a="$with" -v b="$without" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "?" }')" >&2
		echo "# $n: keeper RSS $(boot_val "$s/$n.boot" KEEPER_RSS_KB) KiB after switch_root, $(boot_val "$s/$n.final" KEEPER_RSS_KB) KiB at the end" >&2
		echo "# $n: connect step: $(serial "$n" | grep -E 'ccm: (Soft-RoCE|looking|connected)' | sed 's/^\[ *\([0-9.]*\)\].*ccm: \([a-zA-Z-]*\).*/\1 \2/' | tr '\n' ' ')" >&2
	done
}

test_b_boots_30s_late_a_boots_degraded_then_connects() {
	boot_ready || return 0
	local s=$t/share t1 t2
	mkdir -p "$s"
	boot_net
	boot_guest a a "$BOOT_DIR/ccm-a.img" "$s" "$(args a "rd.ccm.timeout=10 rd.ccm.instance=mirror boot_peer=b boot_hold=5 boot_max=120")"
	sleep 30
	boot_guest b b "$BOOT_DIR/ccm-b.img" "$s" "$(args b "rd.ccm.timeout=90 rd.ccm.instance=mirror boot_peer=a boot_hold=3")"
	boot_wait_guests 200 || show a b
	assertTrue "a finished" "[ -e $s/a.done ]"
	assertTrue "b finished" "[ -e $s/b.done ]"
	assertContains "a: degraded boot" "$(serial a)" "ccm: degraded: the partner did not answer within 10 s (exit 3)"
	assertContains "a: mirror degraded too" "$(serial a)" "ccm@mirror: degraded: the partner did not answer within 10 s (exit 3)"
	# Side by side: one after the other, the second would end 10 s later.
	t1=$(serial a | sed -n 's/^\[ *\([0-9.]*\)\].* ccm: degraded: .*/\1/p' | head -1)
	t2=$(serial a | sed -n 's/^\[ *\([0-9.]*\)\].* ccm@mirror: degraded: .*/\1/p' | head -1)
	assertTrue "a: the two connect steps ran side by side (degraded at ${t1:-?} s and ${t2:-?} s)" \
		"awk -v a='$t1' -v b='$t2' 'BEGIN { d = a - b; exit !(a != \"\" && b != \"\" && d < 5 && d > -5) }'"
	assertContains "b: mirror connected in the initramfs" "$(serial b)" "ccm@mirror: connected to node 1"
	assertEquals "a: mirror connected at the end (see $s/a.final)" connected "$(boot_val "$s/a.final" INSTANCE_STATE)"
	assertEquals "a: to b's mirror" "$(boot_val "$s/b.boot" INSTANCE_EPOCH)" "$(boot_val "$s/a.final" INSTANCE_PARTNER_EPOCH)"
	assertNotNull "a: mirror's keeper survived switch_root" "$(boot_val "$s/a.boot" INSTANCE_KEEPER_PID)"
	assertEquals "a: the same mirror keeper at the end" "$(boot_val "$s/a.boot" INSTANCE_KEEPER_PID)" \
		"$(boot_val "$s/a.final" INSTANCE_KEEPER_PID)"
	assertNotEquals "a: mirror's keeper is not the unnamed one" "$(boot_val "$s/a.boot" KEEPER_PID)" \
		"$(boot_val "$s/a.boot" INSTANCE_KEEPER_PID)"
	assertEquals "a: initramfs handoff not connected" handshaking "$(boot_val "$s/a.boot" CCM_STATE)"
	echo "# a: handshake state when its real root started: $(boot_val "$s/a.boot" CCM_HS_STATE)" >&2
	assert_keeper_survived a
	assert_booted_connected b
	assertEquals "a: its keeper connected after switch_root (see $s/a.final)" connected "$(kept a STATE)"
	assertEquals "a: its keeper knows b's epoch" "$(boot_val "$s/b.boot" CCM_EPOCH)" "$(kept a PARTNER_EPOCH)"
	assert_real_root_sees_the_keeper a connected "$(boot_val "$s/b.boot" CCM_EPOCH)"
	assertContains "a: fmon ran degraded, then heard b (see $s/a.fmon)" "$(cat "$s/a.fmon" 2>/dev/null)" "unknown -> alive: first heartbeat"
	assertContains "b: fmon heard a" "$(cat "$s/b.fmon" 2>/dev/null)" "unknown -> alive: first heartbeat"
}

test_b_reboots_a_sees_it_lost_then_back() {
	boot_ready || return 0
	local s=$t/share fmon
	mkdir -p "$s"
	boot_net
	# b powers off 3 s after both roots are up (poweroff -f: its keeper dies
	# without a word, as a crashed machine's), then boots again as b2.
	boot_guest a a "$BOOT_DIR/ccm-a.img" "$s" "$(args a "rd.ccm.timeout=90 boot_peer=b2 boot_hold=5 boot_max=150")"
	boot_guest b b "$BOOT_DIR/ccm-b.img" "$s" "$(args b "rd.ccm.timeout=90 boot_peer=a boot_hold=3 boot_sync=0")"
	local e b_pid="" end=$(($(date +%s) + 170))
	for e in $VM_PIDS; do [ "${e%%:*}" = b ] && b_pid=${e#*:}; done
	while kill -0 "$b_pid" 2>/dev/null && [ "$(date +%s)" -lt "$end" ]; do sleep 0.2; done
	wait "$b_pid" 2>/dev/null
	assertTrue "b finished its first boot" "[ -e $s/b.done ]"
	boot_guest b b2 "$BOOT_DIR/ccm-b.img" "$s" "$(args b "rd.ccm.timeout=90 boot_peer=a boot_hold=3")"
	boot_wait_guests 200 || show a b b2
	assertTrue "a finished" "[ -e $s/a.done ]"
	assertTrue "b2 finished" "[ -e $s/b2.done ]"
	assert_booted_connected a
	assert_keeper_survived a
	assert_booted_connected b2
	fmon=$(cat "$s/a.fmon" 2>/dev/null)
	assertContains "a: fmon heard b (see $s/a.fmon)" "$fmon" "partner node 2 unknown -> alive"
	assertContains "a: keeper reported b lost" "$fmon" "the keeper reports partner node 2 lost"
	assertContains "a: fmon declared b dead" "$fmon" "partner node 2 alive -> dead"
	assertContains "a: takeover ran" "$fmon" "TAKEOVER"
	assertContains "a: keeper reported b back" "$fmon" "the keeper reports partner node 2 back"
	assertContains "a: fmon heard b2" "$fmon" "partner node 2 dead -> alive"
	assertContains "a: giveback ran" "$fmon" "GIVEBACK"
	assertEquals "a: its keeper is connected in the end (see $s/a.final)" connected "$(kept a STATE)"
	assertEquals "a: to b2's epoch" "$(boot_val "$s/b2.boot" CCM_EPOCH)" "$(kept a PARTNER_EPOCH)"
	assert_real_root_sees_the_keeper a connected "$(boot_val "$s/b2.boot" CCM_EPOCH)"
	assertNotEquals "b2 is a new epoch" "$(boot_val "$s/b.boot" CCM_EPOCH)" "$(boot_val "$s/b2.boot" CCM_EPOCH)"
}

# The same two nodes with systemd as the initramfs' init (ccm-sd-*.img)
# and as the real root's (root-sd.ext4, tests/boot/lib.sh boot_root_systemd).
# ccm-early.service runs ccm-connect; at switch-root systemd leaves the unit
# running (IgnoreOnIsolate=), kills every process not named '@...', and
# execs the real root's systemd, which takes the initramfs' state over: the
# tree's handoff/ccm-early.service takes the unit, the keeper as its main
# process.  It starts handoff/ccm-fmon.service (ccm-early exec, over the
# keeper's socket) and root-init.sh as ccmlab-report.service.  b powers off
# cleanly (systemctl poweroff) after both final reports: the shutdown stops
# its ccm-early.service, whose ExecStop= tells a (BYE).  a reports again
# once b is gone: its keeper must still be there.  The keeper logs to the
# console in the initramfs (with the unit's journal stream as its fd 2, the
# initramfs' journald, stopped at switch-root, took every later line with
# it), and to the real root's journald once it has joined the real root;
# the journal there forwards to the console too (tests/boot/lib.sh).
test_systemd_initramfs_both_boot_together() {
	boot_ready || return 0
	local s=$t/share n out sd="systemd.status_unit_format=name systemd.show_status=1"
	mkdir -p "$s"
	boot_net
	boot_guest a a "$BOOT_DIR/ccm-sd-a.img" "$s" "$(args a "$sd rd.ccm.timeout=90 rd.ccm.instance=mirror boot_peer=b boot_hold=5 boot_after=6")" root-sd.ext4
	boot_guest b b "$BOOT_DIR/ccm-sd-b.img" "$s" "$(args b "$sd rd.ccm.timeout=90 rd.ccm.instance=mirror boot_peer=a boot_hold=5 boot_restart=1")" root-sd.ext4
	boot_wait_guests 200 || show a b
	assertTrue "a: reached the real root and finished" "[ -e $s/a.done ]"
	assertTrue "b: reached the real root and finished" "[ -e $s/b.done ]"
	for n in a b; do
		out=$(serial "$n")
		assertContains "$n: systemd started the unit (see $s/$n.serial)" "$out" "Started ccm-early.service"
		assertContains "$n: the unit's ccm-connect connected" "$out" "ccm-connect["
		assert_booted_connected "$n" "ccm: connected to node"
		assert_keeper_survived "$n"
		assertContains "$n: rxe0 by rd.ccm.rxe" "$out" "ccm: Soft-RoCE device rxe0 on eth0"
		assertNotContains "$n: systemd left the unit running at switch-root (IgnoreOnIsolate=)" \
			"$(echo "$out" | sed '/Starting initrd-switch-root.service/q')" "Stopped ccm-early.service"
		assertContains "$n: and switched root" "$out" "Starting initrd-switch-root.service"
		assertContains "$n: the real root's systemd took the unit over (handoff/ccm-early.service)" \
			"$(boot_val "$s/$n.boot" KEEPER_UNIT)" "LoadState=loaded ActiveState=active"
		assertEquals "$n: with the keeper as its main process" \
			"$(boot_val "$s/$n.boot" KEEPER_PID)" "$(boot_val "$s/$n.boot" KEEPER_UNIT_MAINPID)"
		assertEquals "$n: systemd is the real root's init (see $s/$n.boot)" systemd "$(boot_val "$s/$n.boot" PID1)"
		assertEquals "$n: handoff/ccm-fmon.service runs" active "$(boot_val "$s/$n.boot" FMON_UNIT)"
		assertEquals "$n: and still runs at the end" active "$(boot_val "$s/$n.final" FMON_UNIT)"
		assertContains "$n: fmon heard the partner (see $s/$n.fmon)" "$(cat "$s/$n.fmon" 2>/dev/null)" "unknown -> alive: first heartbeat"
		assertEquals "$n: the keeper logs to the console" /dev/console "$(boot_val "$s/$n.boot" KEEPER_FD2)"
		assert_metrics_from_the_real_root "$n"
		# The named instance: its own unit from the generator, its own
		# keeper, carried over by the real root's template.
		assertContains "$n: the generator's ccm-early@mirror.service started" "$out" "Started ccm-early@mirror.service"
		assertContains "$n: and connected" "$out" "ccm@mirror: connected to node"
		assertContains "$n: the real root's handoff/ccm-early@.service took it over" \
			"$(boot_val "$s/$n.boot" INSTANCE_UNIT)" "LoadState=loaded ActiveState=active"
		assertNotNull "$n: mirror's keeper (see $s/$n.boot)" "$(boot_val "$s/$n.boot" INSTANCE_KEEPER_PID)"
		assertEquals "$n: as its main process" "$(boot_val "$s/$n.boot" INSTANCE_KEEPER_PID)" \
			"$(boot_val "$s/$n.boot" INSTANCE_UNIT_MAINPID)"
		assertEquals "$n: mirror connected at the end" connected "$(boot_val "$s/$n.final" INSTANCE_STATE)"
	done
	assertEquals "a knows b's mirror" "$(boot_val "$s/b.boot" INSTANCE_EPOCH)" "$(boot_val "$s/a.final" INSTANCE_PARTNER_EPOCH)"
	assertEquals "b: the unnamed keeper's restart left mirror's keeper alone" \
		"$(boot_val "$s/b.boot" INSTANCE_KEEPER_PID)" "$(boot_val "$s/b.final" INSTANCE_KEEPER_PID)"
	assertEquals "b: and connected to the same a" "$(boot_val "$s/a.boot" INSTANCE_EPOCH)" \
		"$(boot_val "$s/b.final" INSTANCE_PARTNER_EPOCH)"
	assertEquals "a knows b's epoch" "$(boot_val "$s/b.boot" CCM_EPOCH)" "$(boot_val "$s/a.boot" CCM_PARTNER_EPOCH)"
	assertEquals "b knows a's epoch" "$(boot_val "$s/a.boot" CCM_EPOCH)" "$(boot_val "$s/b.boot" CCM_PARTNER_EPOCH)"
	# b's keeper restarted in place (ccm-early stop --restart): its
	# TERMINATING said so, fmon exited 1, and systemd started the shipped
	# ccm-fmon.service again.
	assertEquals "b: stop --restart (see $s/b.restart)" 0 "$(boot_val "$s/b.restart" RESTART_RC)"
	assertTrue "b: systemd started ccm-fmon.service again ($(boot_val "$s/b.restart" \
		FMON_NRESTARTS_BEFORE) -> $(boot_val "$s/b.restart" FMON_NRESTARTS) restarts)" \
		"[ '$(boot_val "$s/b.restart" FMON_NRESTARTS)' -gt '$(boot_val "$s/b.restart" FMON_NRESTARTS_BEFORE)' ]"
	assertEquals "b: and it is active" active "$(boot_val "$s/b.restart" FMON_UNIT)"
	assertContains "b: fmon left for the restart (see $s/b.fmon)" "$(cat "$s/b.fmon" 2>/dev/null)" \
		"the keeper is restarting"
	# b has gone: a's keeper logged it on the console and told fmon.
	assertEquals "a: the same keeper after b went (see $s/a.after)" \
		"$(boot_val "$s/a.boot" KEEPER_PID)" "$(boot_val "$s/a.after" KEEPER_PID)"
	assertEquals "a: and the same mirror keeper" \
		"$(boot_val "$s/a.boot" INSTANCE_KEEPER_PID)" "$(boot_val "$s/a.after" INSTANCE_KEEPER_PID)"
	assertTrue "b: its power-off stopped ccm-early@mirror.service too (see $s/b.serial)" \
		"serial b | grep -q 'Stopping ccm-early@mirror.service'"
	for n in a:1 b:2; do
		assertContains "${n%:*}: the keeper joined the real root (see $s/${n%:*}.serial)" \
			"$(serial "${n%:*}" | sed -n '/Starting initrd-switch-root.service/,$p')" \
			"ccm-early[node ${n#*:}]: the initramfs has gone: now in the real root"
	done
	assertTrue "a: the keeper logs to the journal, natively (see $s/a.journal)" \
		"journal_has '$s/a.journal' MESSAGE='logging to the journal from now on' _TRANSPORT=journal CCM_NODE=1 PRIORITY=5"
	assertTrue "a: b's BYE in the journal" \
		"journal_has '$s/a.journal' MESSAGE~'^partner is terminating' CCM_NODE=1"
	assertTrue "a: b's loss is an event in the journal, a warning, with b's node" \
		"journal_has '$s/a.journal' CCM_EVENT=partner CCM_STATE=lost CCM_PARTNER_NODE=2 PRIORITY=4"
	assertTrue "b: the restarted session's events are in the journal (see $s/b.journal)" \
		"journal_has '$s/b.journal' CCM_EVENT=partner CCM_STATE=ready CCM_PARTNER_NODE=1 CCM_NODE=2"
	assertContains "a: fmon heard the keeper say b was lost" "$(cat "$s/a.fmon" 2>/dev/null)" \
		"the keeper reports partner node 2 lost"
	assertNotContains "a: fmon never lost the keeper" "$(cat "$s/a.fmon" 2>/dev/null)" "ccm-fmon: the keeper has gone"
	# b powered off cleanly (systemctl poweroff): the shutdown stopped its
	# ccm-early.service, whose ExecStop= (ccm-early stop) told a.
	out=$(serial b | sed -n '/Starting initrd-switch-root.service/,$p')
	assertContains "b: its power-off stopped the keeper's unit (see $s/b.serial)" "$out" "Stopping ccm-early.service"
	# (from b's journal, forwarded: after the power-off began, the console
	# is the only way out of b)
	assertContains "b: the keeper told its clients and the partner" "$out" "]: stopping: telling"
	assertContains "a: its keeper heard b's BYE, not a silence (see $s/a.serial)" \
		"$(serial a | sed -n '/Starting initrd-switch-root.service/,$p')" "]: partner is terminating"
	for n in a b; do
		echo "# systemd $n: in the initramfs and the real root's systemd $(in_initramfs "$s/$n.boot")s; keeper RSS $(boot_val "$s/$n.boot" KEEPER_RSS_KB) KiB" >&2
		echo "# systemd $n: the keeper's cgroup $(boot_val "$s/$n.boot" KEEPER_CGROUP), its unit: $(boot_val "$s/$n.boot" KEEPER_UNIT)" >&2
	done
}

# shellcheck disable=SC1091
. shunit2
