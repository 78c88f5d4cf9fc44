# Shared helpers for the shunit2 test files.  Source it, define tests, then
# source shunit2.  Every test prints one TAP line ("ok N - file: test" or
# "not ok ...") from tearDown, which tests/run counts.
#
# CCM is the ccm-early binary under test (default: the sanitizer dev build).

: "${CCM:=$(cd "$(dirname "$0")/../.." && pwd)/build/dev/ccm-early}"
export CCM
# The sanitizer runtime must fail loudly, never print and carry on.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"

ccm_test_file=$(basename "$0" .sh)
ccm_test_n=0

# Report the test that just ran.  Relies on shunit2 2.1.8's per-test
# success flag (Debian's shunit2 package).
ccm_reported=""
ccm_report() {
	# shunit2 also runs tearDown once more as it exits: report each test once.
	[ -n "${_shunit_test_:-}" ] && [ "${_shunit_test_}" != "${ccm_reported}" ] || return 0
	ccm_reported=${_shunit_test_}
	ccm_test_n=$((ccm_test_n + 1))
	# shellcheck disable=SC2154
	if [ "${__shunit_testSuccess}" = "${SHUNIT_TRUE}" ]; then
		echo "ok ${ccm_test_n} - ${ccm_test_file}: ${_shunit_test_:-?}"
	else
		echo "not ok ${ccm_test_n} - ${ccm_test_file}: ${_shunit_test_:-?}"
	fi
}

# Milliseconds since 1970.
now_ms() {
	date +%s%3N
}

# wait_for SECONDS COMMAND...: run COMMAND every 20 ms until it succeeds;
# 1 if it never did within SECONDS.
wait_for() {
	_wf_end=$(( $(now_ms) + $1 * 1000 ))
	shift
	until "$@"; do
		[ "$(now_ms)" -lt "${_wf_end}" ] || return 1
		sleep 0.02
	done
}

# No sanitizer report in any of the test's logs (*log, *.err).
assert_no_sanitizer_report() {
	local f
	while IFS= read -r f; do
		if grep -q 'Sanitizer' "$f"; then
			fail "a sanitizer report in $f: $(grep -A20 Sanitizer "$f" | head -40)"
		fi
	done < <(find "$t" -type f \( -name '*log' -o -name '*.err' \))
}

# SIGTERM a keeper: it exits 0 and says terminated.
stop_node() {
	local n=$1 p
	eval "p=\$pid_$n"
	kill -TERM "$p"
	wait_exit "$p" 10
	assertEquals "node $n exit status after SIGTERM" 0 "$ccm_rc"
	assertEquals "node $n final state" terminated "$(state_get "$t/$n/run" CCM_STATE)"
}

stop_pair() {
	stop_node a
	stop_node b
	assert_no_sanitizer_report
}

# Wait until FILE contains LINE (a fixed string), up to SECONDS.
wait_for_line() {
	_file=$1 _line=$2 _secs=${3:-10}
	_end=$(( $(date +%s) + _secs ))
	while [ "$(date +%s)" -le "${_end}" ]; do
		if [ -f "${_file}" ] && grep -qxF -- "${_line}" "${_file}"; then
			return 0
		fi
		sleep 0.05
	done
	return 1
}

# Wait until process PID has exited, up to SECONDS; then its exit status
# is in ccm_rc (killed with SIGKILL if it had to be).
wait_exit() {
	_pid=$1 _secs=${2:-10}
	_end=$(( $(date +%s) + _secs ))
	while kill -0 "${_pid}" 2>/dev/null; do
		if [ "$(date +%s)" -gt "${_end}" ]; then
			kill -9 "${_pid}" 2>/dev/null
			wait "${_pid}" 2>/dev/null
			ccm_rc=timeout
			return 1
		fi
		sleep 0.05
	done
	wait "${_pid}"
	ccm_rc=$?
	return 0
}

# Value of KEY in a handoff state file, unquoted, by sourcing it in a
# subshell exactly as a boot script would.
state_get() {
	( . "$1/state" && eval "printf '%s' \"\${$2}\"" )
}

# Write a client descriptor: DIR NAME PORTS SIZE
make_client() {
	mkdir -p "$1"
	printf 'ports = %s\nport-size = %s\n' "$3" "$4" > "$1/$2.conf"
}

# --- the shape every suite's tests share ----------------------------------

# Each test gets its own port (so a socket of the previous test can never
# answer) and its own scratch directory $t.
ccm_port_base=$(( 20000 + ($$ % 20000) ))
ccm_port_seq=0

ccm_begin_test() {
	ccm_port_seq=$((ccm_port_seq + 1))
	port=$((ccm_port_base + ccm_port_seq))
	t="${SHUNIT_TMPDIR}/${_shunit_test_}"
	mkdir -p "$t"
	pids=""
}

# Kill whatever the test left running, then report it.
ccm_end_test() {
	for _p in $pids; do
		kill -9 "$_p" 2>/dev/null
		wait "$_p" 2>/dev/null
	done
	ccm_report
}

# ccm_start BINARY a|b CLIENTS-DIR [extra args...]: start a node in the
# background; node a is id 1 on 127.0.0.2, b is id 2 on 127.0.0.3, both on
# $port.  Its state dir is $t/NODE/run, its log $t/NODE/log, its pid $pid_NODE.
ccm_start() {
	_bin=$1 _n=$2 _clients=$3
	shift 3
	if [ "$_n" = a ]; then _id=1 _me=127.0.0.2 _peer=127.0.0.3; else _id=2 _me=127.0.0.3 _peer=127.0.0.2; fi
	mkdir -p "$t/$_n"
	"$_bin" connect --node-id "$_id" --listen "$_me:$port" --partner "$_peer:$port" \
		--clients "$_clients" --state-dir "$t/$_n/run" "$@" \
		>>"$t/$_n/log" 2>&1 </dev/null &
	eval "pid_$_n=$!"
	pids="$pids $!"
}
