#!/usr/bin/env bash
# The shipped artifact: the static musl binary that `make` leaves at the top
# of the repository (STATIC_CCM, default ./ccm-early there).  It must be
# static, small, run on this machine, connect to itself and speak the same
# protocol as the dev build ($CCM).  Without the binary every test fails:
# the artifact is what ships, so its absence is never a skip.
set -u
. "$(dirname "$0")/../lib/common.sh"

: "${STATIC_CCM:=$(cd "$(dirname "$0")/../.." && pwd)/ccm-early}"
size_limit=524288

setUp() {
	ccm_begin_test
	make_client "$t/clients" fmon 1 4K
	make_client "$t/clients" nvmirror 2 1M
}

tearDown() {
	ccm_end_test
}

# Every test starts with: have_static || return
have_static() {
	[ -f "${STATIC_CCM}" ] && return 0
	fail "no static binary at ${STATIC_CCM}: run make first"
	return 1
}

# start_node BINARY a|b [extra args...]: a --once node of the given build.
start_node() {
	_b=$1 _node=$2
	shift 2
	ccm_start "$_b" "$_node" "$t/clients" --timeout 15 --once -v "$@"
}

# pair BINARY-A BINARY-B: run a --once pair, check both exit 0 and connected.
pair() {
	start_node "$1" a
	start_node "$2" b
	for _n in a b; do
		eval "_p=\$pid_$_n"
		wait_exit "$_p" 20
		assertEquals "node $_n exit status; log: $(cat "$t/$_n/log")" 0 "$ccm_rc"
	done
	pids=""
	for _n in a b; do
		assertEquals "node $_n's handoff" connected "$(state_get "$t/$_n/run" CCM_STATE 2>&1)"
		assertEquals "node $_n's clients" "fmon nvmirror" \
			"$(state_get "$t/$_n/run" CCM_CLIENTS 2>&1)"
	done
	assertEquals "A's partner" 2 "$(state_get "$t/a/run" CCM_PARTNER_NODE 2>&1)"
	assertEquals "B's partner" 1 "$(state_get "$t/b/run" CCM_PARTNER_NODE 2>&1)"
	assertEquals "A knows B's epoch" "$(state_get "$t/b/run" CCM_EPOCH 2>&1)" \
		"$(state_get "$t/a/run" CCM_PARTNER_EPOCH 2>&1)"
	assertEquals "B knows A's epoch" "$(state_get "$t/a/run" CCM_EPOCH 2>&1)" \
		"$(state_get "$t/b/run" CCM_PARTNER_EPOCH 2>&1)"
}

test_is_statically_linked() {
	have_static || return
	_f=$(file -b "${STATIC_CCM}")
	assertContains "file(1) says: $_f" "$_f" "statically linked"
	assertContains "file(1) says: $_f" "$_f" "ELF"
}

test_size_within_limit() {
	have_static || return
	_s=$(stat -c %s "${STATIC_CCM}")
	assertTrue "size $_s bytes <= $size_limit" "[ $_s -le $size_limit ]"
}

test_ldd_finds_no_dynamic_dependencies() {
	have_static || return
	_out=$(ldd "${STATIC_CCM}" 2>&1)
	_rc=$?
	assertNotEquals "ldd exit status (output: $_out)" 0 "$_rc"
	assertContains "ldd says: $_out" "$_out" "not a dynamic executable"
}

test_version_runs() {
	have_static || return
	_out=$("${STATIC_CCM}" version 2>&1)
	_rc=$?
	assertEquals "exit status; output: $_out" 0 "$_rc"
	assertTrue "version line: $_out" \
		"printf '%s\n' '$_out' | grep -qE '^ccm-early [0-9]+\.[0-9]+\.[0-9]+ '"
	# The same version and protocol range as the dev build.
	if [ -x "${CCM}" ]; then
		assertEquals "static and dev builds are the same version" \
			"$("${CCM}" version 2>&1)" "$_out"
	fi
}

test_devices_runs() {
	have_static || return
	_out=$("${STATIC_CCM}" devices 2>&1)
	_rc=$?
	assertEquals "exit status; output: $_out" 0 "$_rc"
	assertTrue "prints 0 devices: $_out" \
		"printf '%s\n' '$_out' | grep -q '^0 devices'"
}

test_static_pair_connects() {
	have_static || return
	pair "${STATIC_CCM}" "${STATIC_CCM}"
}

test_static_and_dev_build_interoperate() {
	have_static || return
	[ -x "${CCM}" ] || { fail "no dev build at ${CCM}; run make build/dev/ccm-early"; return; }
	pair "${STATIC_CCM}" "${CCM}"
	# And the other way round, each side authenticating with the same key.
	printf 'correct horse battery staple\n' >"$t/key"
	chmod 600 "$t/key"
	rm -rf "$t/a" "$t/b"
	port=$((port + 1000))
	start_node "${CCM}" a --psk-file "$t/key" --cluster interop.1
	start_node "${STATIC_CCM}" b --psk-file "$t/key" --cluster interop.1
	for _n in a b; do
		eval "_p=\$pid_$_n"
		wait_exit "$_p" 20
		assertEquals "with a key: node $_n exit status; log: $(cat "$t/$_n/log")" 0 "$ccm_rc"
	done
	pids=""
	assertEquals "dev A connected to static B" connected "$(state_get "$t/a/run" CCM_STATE 2>&1)"
	assertEquals "static B connected to dev A" connected "$(state_get "$t/b/run" CCM_STATE 2>&1)"
	assertEquals "agreed version" "$(state_get "$t/a/run" CCM_VERSION 2>&1)" \
		"$(state_get "$t/b/run" CCM_VERSION 2>&1)"
}

. shunit2
