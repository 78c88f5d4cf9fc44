#!/usr/bin/env bash
# The RDMA lab itself: qemu guests (TCG) with Debian 12's kernel and
# Soft-RoCE (rdma_rxe), proven with the reference tools (rping, perftest,
# ibv_devices) and the static ccm-early's `devices`.
#
#   veth:  one guest, rxe0 on veth0 (10.0.0.1) and rxe1 on veth1 (10.0.0.2)
#   dgram: two guests a and b joined by qemu dgram netdevs over loopback UDP
#
# Without qemu (after tests/vm/setup.sh) every test fails when CI=true and
# is skipped loudly otherwise.
set -u
# shellcheck disable=SC2154  # t and _shunit_test_ come from common.sh/shunit2
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

# shellcheck source=tests/vm/suite.sh
. "$(dirname "$0")/suite.sh"

# ---------------------------------------------------------------- veth

test_veth_ccm_devices_lists_rxe0_and_rxe1() {
	lab_ready || return 0
	cat >"$t/scenario.sh" <<'EOF'
set -u
"$CCM" devices >/out/devices.txt 2>&1 || exit 1
ibv_devices >/out/ibv_devices.txt 2>&1 || exit 1
EOF
	lab veth "$t" "$t/scenario.sh" || fail "the guest failed"
	cat "$t/devices.txt" >&2
	assertTrue "ccm-early devices counts 2" "grep -q '^2 devices' '$t/devices.txt'"
	assertTrue "ccm-early devices lists rxe0" "grep -qE '^ +rxe0 ' '$t/devices.txt'"
	assertTrue "ccm-early devices lists rxe1" "grep -qE '^ +rxe1 ' '$t/devices.txt'"
	assertTrue "ibv_devices lists rxe0" "grep -qE '^ +rxe0 ' '$t/ibv_devices.txt'"
}

test_veth_rping_completes() {
	lab_ready || return 0
	cat >"$t/scenario.sh" <<'EOF'
set -u
. "$LAB_LIB"
rping -s -a "$ccm_local" -C 5 -v >/out/rping-server.txt 2>&1 &
srv=$!
# The client is rejected until the server listens: retry it.
lab_retry 20 0.3 rping -c -a "$ccm_local" -I "$ccm_peer" -C 5 -v -S 64 >/out/rping-client.txt 2>&1 || exit 1
wait $srv || exit 2
EOF
	lab veth "$t" "$t/scenario.sh" || fail "the guest failed"
	assertEquals "client pings" 5 "$(grep -c '^ping data: rdma-ping-' "$t/rping-client.txt")"
	assertEquals "server pings" 5 "$(grep -c '^server ping data: rdma-ping-' "$t/rping-server.txt")"
}

test_veth_ib_write_lat_rxe0_to_rxe1() {
	lab_ready || return 0
	cat >"$t/scenario.sh" <<'EOF'
set -u
. "$LAB_LIB"
ib_write_lat -d rxe0 -x "$ccm_gid_index" -n 500 -F >/out/srv.txt 2>&1 &
srv=$!
lab_wait_listen 18515 || exit 1
ib_write_lat -d rxe1 -x "$ccm_gid_index" -n 500 -F "$ccm_local" >/out/cli.txt 2>&1 || exit 2
wait $srv || exit 3
# The result line: bytes iterations t_min t_max t_typical t_avg ...
grep -E '^ +2 +500 ' /out/cli.txt >/out/write_lat.txt || exit 4
EOF
	lab veth "$t" "$t/scenario.sh" || fail "the guest failed"
	echo "# ib_write_lat veth: $(cat "$t/write_lat.txt" 2>/dev/null)" >&2
	assertTrue "result line captured" "[ -s '$t/write_lat.txt' ]"
	assertTrue "typical latency is a number" \
		"awk '{ exit !(\$5 + 0 > 0) }' '$t/write_lat.txt'"
}

# ---------------------------------------------------------------- dgram

# The two-guest read latency scenario: a serves, b connects (after a's
# server listens, told through the share).
write_dgram_read_lat() {
	cat >"$1" <<'EOF'
set -u
. "$LAB_LIB"
ibv_devices >"/out/$role.devices" 2>&1 || exit 1
if [ "$role" = a ]; then
	ib_read_lat -d "$ccm_dev_0" -x "$ccm_gid_index" -n 300 -F >/out/a.lat 2>&1 &
	srv=$!
	lab_wait_listen 18515 || exit 2
	lab_mark listening
	wait $srv || exit 3
else
	lab_wait_file /out/a.listening 60 || exit 2
	ib_read_lat -d "$ccm_dev_0" -x "$ccm_gid_index" -n 300 -F "$ccm_peer" >/out/b.lat 2>&1 || exit 3
	grep -E '^ +2 +300 ' /out/b.lat >/out/read_lat.txt || exit 4
fi
EOF
}

assert_dgram_read_lat() {
	assertEquals "a's rc file" 0 "$(cat "$t/a.rc" 2>/dev/null)"
	assertEquals "b's rc file" 0 "$(cat "$t/b.rc" 2>/dev/null)"
	assertTrue "a has rxe0" "grep -qE '^ +rxe0 ' '$t/a.devices'"
	assertTrue "b has rxe0" "grep -qE '^ +rxe0 ' '$t/b.devices'"
	assertTrue "read latency result line" "[ -s '$t/read_lat.txt' ]"
	echo "# ib_read_lat dgram: $(cat "$t/read_lat.txt" 2>/dev/null)" >&2
}

test_dgram_ib_read_lat_between_guests() {
	lab_ready || return 0
	write_dgram_read_lat "$t/scenario.sh"
	lab dgram "$t" "$t/scenario.sh" || fail "a guest failed"
	assert_dgram_read_lat
}

test_dgram_guest_b_five_seconds_late() {
	lab_ready || return 0
	write_dgram_read_lat "$t/scenario.sh"
	lab dgram "$t" "$t/scenario.sh" --delay-b 5 || fail "a guest failed"
	assert_dgram_read_lat
	# b really started later: a ran for at least 5 s longer.
	assertTrue "b started about 5 s after a (a ${VM_SECS_a:-?}s, b ${VM_SECS_b:-?}s)" \
		"awk 'BEGIN { exit !(${VM_SECS_a:-0} - ${VM_SECS_b:-0} >= 4) }'"
}

test_dgram_two_links_read_lat_on_link_1() {
	lab_ready || return 0
	cat >"$t/scenario.sh" <<'EOF'
set -u
. "$LAB_LIB"
ibv_devices >"/out/$role.devices" 2>&1 || exit 1
[ "$ccm_dev_1" = rxe1 ] && [ "$ccm_if_1" = eth1 ] || exit 5
if [ "$role" = a ]; then
	[ "$ccm_local_1" = 10.0.1.1 ] && [ "$ccm_peer_1" = 10.0.1.2 ] || exit 6
	ib_read_lat -d rxe1 -x "$ccm_gid_index" -n 100 -F >/out/a.lat 2>&1 &
	srv=$!
	lab_wait_listen 18515 || exit 2
	lab_mark listening
	wait $srv || exit 3
else
	lab_wait_file /out/a.listening 60 || exit 2
	ib_read_lat -d rxe1 -x "$ccm_gid_index" -n 100 -F "$ccm_peer_1" >/out/b.lat 2>&1 || exit 3
	grep -E '^ +2 +100 ' /out/b.lat >/out/read_lat.txt || exit 4
fi
EOF
	lab dgram "$t" "$t/scenario.sh" --links 2 || fail "a guest failed"
	for g in a b; do
		assertTrue "$g has rxe0" "grep -qE '^ +rxe0 ' '$t/$g.devices'"
		assertTrue "$g has rxe1" "grep -qE '^ +rxe1 ' '$t/$g.devices'"
	done
	assertTrue "read latency over link 1" "[ -s '$t/read_lat.txt' ]"
}

# A link cut from qemu's monitor: the guest sees its carrier go down.
test_dgram_monitor_set_link_off() {
	lab_ready || return 0
	cat >"$t/scenario.sh" <<'EOF'
set -u
. "$LAB_LIB"
[ "$role" = a ] || exit 0
[ "$(cat /sys/class/net/eth0/carrier)" = 1 ] || exit 1
lab_mark up
n=0
until [ "$(cat /sys/class/net/eth0/carrier)" = 0 ]; do
	n=$((n + 1)); [ $n -lt 300 ] || exit 2
	sleep 0.1
done
echo "carrier lost at $(lab_uptime)"
EOF
	vm_start dgram "$t" "$t/scenario.sh" || fail "vm_start"
	wait_for_file "$t/a.up" 60 || fail "guest a never came up"
	vm_monitor a "set_link n0 off" >&2
	lab_wait_guests || fail "a guest failed"
	assertTrue "a saw the carrier go" "grep -q 'carrier lost' '$t/a.log'"
}

lab_wait_guests() {
	local rc
	vm_wait
	rc=$?
	echo "# ${_shunit_test_}: guest a ${VM_SECS_a:-?}s, b ${VM_SECS_b:-?}s" >&2
	return $rc
}

wait_for_file() {
	local end=$((SECONDS + $2))
	while [ ! -e "$1" ]; do
		[ $SECONDS -lt "$end" ] || return 1
		sleep 0.1
	done
}

# ---------------------------------------------------------------- harness

test_harness_reports_failures_and_timeouts() {
	lab_ready || return 0
	printf 'echo about to fail\nexit 3\n' >"$t/fail.sh"
	printf 'echo hanging\nsleep 300\n' >"$t/hang.sh"
	vm_run veth "$t" "$t/fail.sh" 2>"$t/fail.err"
	assertNotEquals "a failing scenario fails the run" 0 $?
	assertEquals "its status is in a.rc" 3 "$(cat "$t/a.rc")"
	assertTrue "the log tail is shown" "grep -q 'about to fail' '$t/fail.err'"
	vm_run veth "$t" "$t/hang.sh" --timeout 12 2>"$t/hang.err"
	assertNotEquals "a hanging guest fails the run" 0 $?
	assertEquals "timeout's status" 124 "${VM_QEMU_RC_a:-}"
	assertTrue "the timeout is reported" "grep -q 'timed out' '$t/hang.err'"
	assertTrue "the serial tail is shown" "grep -q 'hanging' '$t/hang.err'"
	assertFalse "no qemu of this test is left" "pgrep -f 'path=$t,mount_tag' >/dev/null"
}

# shellcheck disable=SC1091
. shunit2
