#!/usr/bin/env bash
# The command line of ccm-early ($CCM, default build/dev/ccm-early): verbs,
# exit codes, usage errors, the config file, the key file, `status` and the
# handoff files a run leaves behind.  Real processes over loopback (node A on
# 127.0.0.2, node B on 127.0.0.3) where a connection is needed.
#
# Note: `connect` reads /etc/ccm/ccm.conf when it exists and no --config is
# given; these tests assume a machine without one.
set -u
. "$(dirname "$0")/../lib/common.sh"

oneTimeSetUp() {
	[ -x "${CCM}" ] || fail "no binary at ${CCM}; run make build/dev/ccm-early"
}

setUp() {
	ccm_begin_test
	make_client "$t/clients" fmon 1 4K
	make_client "$t/clients" nvmirror 2 1M
}

tearDown() {
	ccm_end_test
}

# run_ccm ARGS...: run $CCM, stdout in $t/out, stderr in $t/err, status in rc.
run_ccm() {
	"${CCM}" "$@" >"$t/out" 2>"$t/err" </dev/null
	rc=$?
}

# What the last run_ccm printed, for assert messages on failure.
shown() {
	printf 'stdout: %s\nstderr: %s' "$(cat "$t/out")" "$(cat "$t/err")"
}

# The options every connect needs, for node A, minus the ones in $1
# (a space-separated list of option names to leave out).
base_args() {
	_skip=" ${1:-} "
	for _kv in "node-id=1" "listen=127.0.0.2:$port" "partner=127.0.0.3:$port" \
		   "clients=$t/clients" "state-dir=$t/run"; do
		case "$_skip" in *" ${_kv%%=*} "*) continue ;; esac
		printf -- '--%s\n%s\n' "${_kv%%=*}" "${_kv#*=}"
	done
}

# start_node a|b [extra args...]: both nodes share $t/clients.
start_node() {
	_node=$1
	shift
	ccm_start "${CCM}" "$_node" "$t/clients" -v --foreground "$@"
}

# Start a raw command line in the background as node N (log in $t/N/log).
start_raw() {
	_n=$1
	shift
	mkdir -p "$t/$_n"
	"$@" >>"$t/$_n/log" 2>&1 </dev/null &
	eval "pid_$_n=$!"
	pids="$pids $!"
}

# Wait for both nodes (started with --once) and check each exited 0.
wait_pair_once() {
	for _n in a b; do
		eval "_p=\$pid_$_n"
		wait_exit "$_p" 15
		assertEquals "node $_n --once exit status; log: $(cat "$t/$_n/log")" 0 "$ccm_rc"
	done
	pids=""
}

# A --once pair with the default clients; the handoffs in $t/a/run, $t/b/run.
run_pair() {
	start_node a --once "$@"
	start_node b --once "$@"
	wait_pair_once
}

# --- verbs and exit codes -------------------------------------------------------

test_verbs_exit_codes() {
	# expected status | stream that must say something (out/err/-) | args
	while IFS='|' read -r want stream args; do
		# shellcheck disable=SC2086
		run_ccm $args
		assertEquals "'ccm-early $args' exit status; $(shown)" "$want" "$rc"
		case "$stream" in
		out) assertTrue "'ccm-early $args' prints on stdout" "[ -s '$t/out' ]" ;;
		err) assertTrue "'ccm-early $args' prints on stderr" "[ -s '$t/err' ]" ;;
		esac
	done <<-EOF
		2|err|
		2|err|frobnicate
		2|err|connectx
		2|err|--frobnicate
		0|out|--help
		0|out|-h
		0|out|help
		0|out|connect --help
		0|out|connect -h
		0|out|status --help
		0|out|devices --help
		0|out|version
		0|out|--version
		2|err|devices extra
		2|err|status extra
		2|err|status --frobnicate
		0|out|check --help
		4|err|check extra
		4|err|check --frobnicate
	EOF
}

test_unknown_command_is_named() {
	run_ccm frobnicate
	assertContains "stderr names the command" "$(cat "$t/err")" "unknown command 'frobnicate'"
	assertEquals "nothing on stdout" "" "$(cat "$t/out")"
}

test_help_lists_the_commands() {
	for h in --help help; do
		run_ccm "$h"
		for verb in connect status devices version; do
			assertTrue "'ccm-early $h' lists $verb: $(shown)" \
				"grep -qE '^ +$verb +' '$t/out'"
		done
	done
}

test_connect_help_documents_every_exit_code() {
	run_ccm connect --help
	assertEquals "exit status" 0 "$rc"
	for code in 0 1 2 3 4 5; do
		assertTrue "connect --help documents exit code $code: $(shown)" \
			"grep -qE '^ +$code +[a-z]' '$t/out'"
	done
	for opt in --node-id --listen --partner --transport --clients --state-dir \
		   --psk-file --cluster --timeout --proto-versions --config --once; do
		assertContains "connect --help documents $opt" "$(cat "$t/out")" "$opt"
	done
}

test_version_prints_version() {
	run_ccm version
	assertEquals "exit status" 0 "$rc"
	assertTrue "version line: $(shown)" \
		"grep -qE '^ccm-early [0-9]+\.[0-9]+\.[0-9]+ ' '$t/out'"
}

# --- connect usage errors -------------------------------------------------------

test_connect_usage_errors() {
	# options left out of the base | what stderr must contain | extra args
	while IFS='|' read -r skip msg extra; do
		rm -rf "$t/run"
		# shellcheck disable=SC2046,SC2086
		run_ccm connect $(base_args "$skip") $extra
		assertEquals "[$skip/$extra] exit status; $(shown)" 2 "$rc"
		assertContains "[$skip/$extra] stderr names the problem" "$(cat "$t/err")" "$msg"
		case "$extra" in
		--*\ *) assertContains "[$skip/$extra] stderr names the option" "$(cat "$t/err")" "${extra%% *}" ;;
		esac
		assertFalse "[$skip/$extra] a usage error writes no state" "[ -e '$t/run' ]"
	done <<-EOF
		node-id|node-id is not set|
		listen|listen is not set|
		partner|partner is not set|
		partner|same address|--partner 127.0.0.2:$port
		listen partner|same address|--listen 127.0.0.2 --partner 127.0.0.2:7471
		listen partner|same address|--listen [::1]:$port --partner [0:0::1]:$port
		node-id|node-id: '0' is not a number in 1..4294967294|--node-id 0
		node-id|node-id: '-1' is not a number in 1..4294967294|--node-id -1
		node-id|node-id: 'one' is not a number in 1..4294967294|--node-id one
		node-id|node-id: '1x' is not a number in 1..4294967294|--node-id 1x
		node-id|node-id: '4294967295' is not a number in 1..4294967294|--node-id 4294967295
		node-id|node-id: '4294967296' is not a number in 1..4294967294|--node-id 4294967296
		node-id|node-id: '99999999999999999999' is not a number in 1..4294967294|--node-id 99999999999999999999
		listen|port '0'|--listen 127.0.0.2:0
		listen|port '70000'|--listen 127.0.0.2:70000
		partner|port 'x'|--partner 127.0.0.3:x
		partner|port ''|--partner 127.0.0.3:
		partner|not a numeric IPv4 address|--partner localhost:$port
		listen|not a numeric IPv4 address|--listen node-a.example
		|transport: 'udp' is neither tcp nor rdma|--transport udp
		|timeout: '-1' is not a number of seconds|--timeout -1
		|timeout: 'soon' is not a number of seconds|--timeout soon
		|timeout: '86401' is not a number of seconds|--timeout 86401
		|proto-versions: '3-1' is not MIN-MAX|--proto-versions 3-1
		|proto-versions: '0-1' is not MIN-MAX|--proto-versions 0-1
		|proto-versions: 'a' is not MIN-MAX|--proto-versions a
		|proto-versions: '1-' is not MIN-MAX|--proto-versions 1-
		|proto-versions: '1-65536' is not MIN-MAX|--proto-versions 1-65536
		|frobnicate|--frobnicate
		|unexpected argument 'extra'|extra
	EOF
}

# A cluster name with a space needs its own case: the table splits on blanks.
test_connect_cluster_with_space_is_refused() {
	# shellcheck disable=SC2046
	run_ccm connect $(base_args) --cluster "two words"
	assertEquals "exit status; $(shown)" 2 "$rc"
	assertContains "stderr names the cluster" "$(cat "$t/err")" "'two words' is not a cluster name"
}

# --- the config file ------------------------------------------------------------

# write_conf FILE node-id listen partner [more lines]: a config file for a node.
write_conf() {
	_f=$1
	shift
	{
		echo "# ccm-early configuration"
		echo "node-id   = $1"
		echo "listen    = $2"
		echo "partner   = $3"
		echo "clients   = $t/clients"
		shift 3
		for _l in "$@"; do echo "$_l"; done
	} >"$_f"
}

test_config_file_alone_suffices() {
	write_conf "$t/a.conf" 1 "127.0.0.2:$port" "127.0.0.3:$port" \
		"state-dir = $t/a/run" '	cluster = "east-1"	' "timeout = 10"
	start_raw a "${CCM}" connect --config "$t/a.conf" --once
	start_node b --once --cluster east-1 --timeout 10
	wait_pair_once
	assertEquals "A's handoff" connected "$(state_get "$t/a/run" CCM_STATE)"
	assertEquals "A's node id from the file" 1 "$(state_get "$t/a/run" CCM_NODE)"
	assertEquals "A's cluster from the file (quoted, blanks trimmed)" east-1 \
		"$(state_get "$t/a/run" CCM_CLUSTER)"
	assertEquals "B sees A" 1 "$(state_get "$t/b/run" CCM_PARTNER_NODE)"
}

test_command_line_overrides_config_file() {
	# The file points at the wrong port and a wrong cluster; the command
	# line has the right ones.
	write_conf "$t/a.conf" 1 "127.0.0.2:$port" "127.0.0.3:1" \
		"state-dir = $t/a/run" "cluster = wrong" "timeout = 10"
	start_raw a "${CCM}" connect --config "$t/a.conf" --once \
		--partner "127.0.0.3:$port" --cluster right
	start_node b --once --cluster right --timeout 10
	wait_pair_once
	assertEquals "A's partner address" "127.0.0.3:$port" \
		"$(state_get "$t/a/run" CCM_PARTNER_ADDR)"
	assertEquals "A's cluster" right "$(state_get "$t/a/run" CCM_CLUSTER)"
}

# pad_to FILE SIZE: append comment lines until FILE is SIZE bytes.
pad_to() {
	while [ $(($2 - $(stat -c %s "$1"))) -gt 200 ]; do
		printf '#%098d\n' 0 >>"$1"
	done
	printf '#%0*d\n' $(($2 - $(stat -c %s "$1") - 2)) 0 >>"$1"
}

# Files that parse: each run gets as far as waiting for a partner that never
# comes, and times out (3), instead of a configuration error (2).
test_config_file_forms_accepted() {
	write_conf "$t/edge.conf" 1 "127.0.0.2:$port" "127.0.0.3:$port" "state-dir = $t/run1"
	printf '#%01023d\n' 0 >>"$t/edge.conf"      # 1024 bytes and a newline: the limit
	write_conf "$t/crlf.conf" 1 "127.0.0.2:$port" "127.0.0.3:$port" "state-dir = $t/run2" \
		"   # indented comment" "" "	" "psk-file = \"\""
	sed -i 's/$/\r/' "$t/crlf.conf"
	write_conf "$t/full.conf" 1 "127.0.0.2:$port" "127.0.0.3:$port" "state-dir = $t/run3"
	pad_to "$t/full.conf" 65536
	assertEquals "test setup: full.conf is 64 KiB" 65536 "$(stat -c %s "$t/full.conf")"
	for f in edge crlf full; do
		run_ccm connect --config "$t/$f.conf" --timeout 1 --once
		assertEquals "$f.conf is accepted (times out, 3); $(shown)" 3 "$rc"
	done
}

test_config_file_errors() {
	# file name | expected "LINE: message" | printf format of the text after
	# two valid lines (node-id, listen)
	while IFS='|' read -r name msg text; do
		f="$t/$name.conf"
		{
			printf 'node-id = 1\nlisten = 127.0.0.2:%s\n' "$port"
			# shellcheck disable=SC2059
			printf -- "$text"
		} >"$f"
		# --timeout: a file wrongly accepted must not hang the suite.
		run_ccm connect --config "$f" --partner "127.0.0.3:$port" --state-dir "$t/run" \
			--timeout 2 --once
		assertEquals "$name: exit status; $(shown)" 2 "$rc"
		assertContains "$name: message names FILE:LINE:" "$(cat "$t/err")" "$f:$msg"
	done <<-'EOF'
		unknown-key|3: unknown setting 'colour'|colour = blue\n
		repeated-key|5: 'node-id' is set twice|\n# again\nnode-id = 2\n
		repeated-key-same-value|3: 'listen' is set twice|listen = 127.0.0.2\n
		missing-eq|3: expected 'key = value'|cluster east\n
		missing-key|3: missing key before '='| = east\n
		invalid-value|3: timeout|timeout = soon\n
		comment-after-value|3: timeout|timeout = 5 # seconds\n
		nul-byte|3: NUL byte|cluster = ea\000st\n
		control-char|3: control character 0x01|cluster = ea\001st\n
		unterminated-quote|3: badly quoted|cluster = "east\n
		quote-inside|3: badly quoted|cluster = "ea"st"\n
		lone-quote|3: badly quoted|cluster = "\n
	EOF
}

# An invalid value on the first line.
test_config_file_invalid_node_id() {
	printf 'node-id = 0\nlisten = 127.0.0.2\npartner = 127.0.0.3\n' >"$t/c.conf"
	run_ccm connect --config "$t/c.conf"
	assertEquals "exit status; $(shown)" 2 "$rc"
	assertContains "message" "$(cat "$t/err")" "$t/c.conf:1: node-id: '0' is not a number"
}

test_config_file_long_line() {
	{
		printf 'node-id = 1\n'
		printf '#%01024d\n' 0     # 1025 bytes
	} >"$t/c.conf"
	run_ccm connect --config "$t/c.conf" --listen 127.0.0.2 --partner 127.0.0.3
	assertEquals "exit status; $(shown)" 2 "$rc"
	assertContains "message" "$(cat "$t/err")" "$t/c.conf:2: line longer than 1024 bytes"
}

# The 1024-byte limit is on the line without its newline, and CRLF files
# work (config.h): a 1024-byte line ending in CR LF is as legal as one
# ending in LF.
test_config_file_crlf_line_at_limit() {
	write_conf "$t/c.conf" 1 "127.0.0.2:$port" "127.0.0.3:$port" "state-dir = $t/run"
	printf '#%01023d\n' 0 >>"$t/c.conf"
	sed -i 's/$/\r/' "$t/c.conf"
	run_ccm connect --config "$t/c.conf" --timeout 1 --once
	assertEquals "CRLF file with a 1024-byte line is accepted (times out, 3); $(shown)" 3 "$rc"
	printf '#%01024d\r\n' 0 >>"$t/c.conf"    # 1025 bytes before CR LF
	run_ccm connect --config "$t/c.conf" --timeout 1 --once
	assertEquals "a 1025-byte line is refused; $(shown)" 2 "$rc"
	assertContains "message" "$(cat "$t/err")" "$t/c.conf:8: line longer than 1024 bytes"
}

test_config_file_too_large() {
	printf 'node-id = 1\n' >"$t/c.conf"
	pad_to "$t/c.conf" 65537                   # one byte over
	run_ccm connect --config "$t/c.conf" --listen 127.0.0.2 --partner 127.0.0.3
	assertEquals "exit status; $(shown)" 2 "$rc"
	# A size error has no line to name: FILE: and the limit.
	assertContains "message names the file" "$(cat "$t/err")" "$t/c.conf: "
	assertContains "message names the limit" "$(cat "$t/err")" "64 KiB"
}

test_config_file_missing_or_not_a_file() {
	for f in "$t/nonexistent.conf" "$t"; do
		# shellcheck disable=SC2046
		run_ccm connect --config "$f" $(base_args)
		assertEquals "--config $f: exit status; $(shown)" 2 "$rc"
		assertContains "--config $f: message names the file" "$(cat "$t/err")" "$f"
	done
}

# --- the key file ---------------------------------------------------------------

test_psk_file_problems() {
	printf 'correct horse battery staple\n' >"$t/key-0644"
	chmod 644 "$t/key-0644"
	printf 'correct horse battery staple\n' >"$t/key-0640"
	chmod 640 "$t/key-0640"
	printf '0123456789abcde\n' >"$t/key-short"   # 15 bytes and a newline
	chmod 600 "$t/key-short"
	: >"$t/key-empty"
	chmod 600 "$t/key-empty"
	# key file | what stderr must contain
	while IFS='|' read -r key msg; do
		# shellcheck disable=SC2046
		run_ccm connect $(base_args) --psk-file "$t/$key" --timeout 5 --once
		assertEquals "$key: exit status; $(shown)" 2 "$rc"
		assertContains "$key: stderr names the key file" "$(cat "$t/err")" "$t/$key"
		assertContains "$key: stderr says what is wrong" "$(cat "$t/err")" "$msg"
	done <<-'EOF'
		key-missing|No such file or directory
		key-0644|accessible by group or others
		key-0640|accessible by group or others
		key-short|at least 16
		key-empty|at least 16
	EOF
}

# Keys of legal lengths are accepted: 16..256 bytes of key, one trailing
# newline not counted (auth.h).  Each run waits for a partner that never
# comes and times out (3) rather than refusing the key (2); they run at once.
test_psk_file_lengths_accepted() {
	for spec in 16: 16:nl 256: 256:nl; do
		_len=${spec%%:*}
		head -c "$_len" /dev/zero | tr '\0' k >"$t/key-$spec"
		[ "${spec#*:}" = nl ] && echo >>"$t/key-$spec"
		chmod 600 "$t/key-$spec"
	done
	_i=0
	for spec in 16: 16:nl 256: 256:nl; do
		_i=$((_i + 1))
		"${CCM}" connect --node-id 1 --listen "127.0.0.2:$((port + 100 * _i))" \
			--partner "127.0.0.3:$((port + 100 * _i))" --clients "$t/clients" \
			--state-dir "$t/run-$_i" --psk-file "$t/key-$spec" --timeout 1 --once \
			>"$t/log-$_i" 2>&1 </dev/null &
		eval "pid_$_i=$!"
		pids="$pids $!"
	done
	_i=0
	for spec in 16: 16:nl 256: 256:nl; do
		_i=$((_i + 1))
		eval "_p=\$pid_$_i"
		wait_exit "$_p" 10
		assertEquals "key of $(stat -c %s "$t/key-$spec") bytes ($spec) is accepted (times out, 3); $(cat "$t/log-$_i")" \
			3 "$ccm_rc"
	done
	pids=""
	# One byte more than the limit is refused.
	head -c 257 /dev/zero | tr '\0' k >"$t/key-257"
	chmod 600 "$t/key-257"
	# shellcheck disable=SC2046
	run_ccm connect $(base_args) --psk-file "$t/key-257" --timeout 1 --once
	assertEquals "257-byte key; $(shown)" 2 "$rc"
	assertContains "257-byte key: message" "$(cat "$t/err")" "longer than 256 bytes"
}

# --- status ---------------------------------------------------------------------

test_status_without_state() {
	run_ccm status --state-dir "$t/nothing-here"
	assertEquals "exit status; $(shown)" 1 "$rc"
	assertContains "message" "$(cat "$t/err")" "no handoff state"
}

# `check` without a keeper: none ever ran (3), its file is stale (3), or
# the file cannot be read (4).
test_check_without_a_keeper() {
	run_ccm check --state-dir "$t/nothing-here"
	assertEquals "no state dir: exit status; $(shown)" 3 "$rc"
	assertEquals "no state dir: the line" "ccm NO KEEPER: no handoff in $t/nothing-here" "$(cat "$t/out")"
	run_pair
	run_ccm check --state-dir "$t/a/run"
	assertEquals "after --once (the file is stale): exit status; $(shown)" 3 "$rc"
	assertContains "after --once: the line" "$(cat "$t/out")" "ccm NO KEEPER: pid "
	mkdir -p "$t/bad"
	printf 'CCM_STATE=connected\nno quotes here\n' >"$t/bad/state"
	run_ccm check --state-dir "$t/bad"
	assertEquals "a corrupt state file: exit status; $(shown)" 4 "$rc"
	assertNotEquals "a corrupt state file: said why on stderr" "" "$(cat "$t/err")"
}

# After --once no process holds the connection: the file says connected,
# but its writer is gone, so status calls it stale (exit 6) and still shows
# what the file says.
test_status_after_once_pair_is_stale() {
	run_pair
	run_ccm status --state-dir "$t/a/run"
	assertEquals "exit status; $(shown)" 6 "$rc"
	assertTrue "first line: the instance, node, state: $(shown)" \
		"grep -qE '^default node:1 epoch:[0-9]+ listen:127\.0\.0\.2:$port state:stale last-state:connected$' '$t/out'"
	assertTrue "stale line: $(shown)" \
		"grep -qE '^  stale: pid $(state_get "$t/a/run" CCM_PID), which wrote it, is gone$' '$t/out'"
	assertTrue "partner line: $(shown)" \
		"grep -qE '^  partner node:2 epoch:[0-9]+ at:127\.0\.0\.3:$port$' '$t/out'"
	# (--once hands off while the link may still be proving itself)
	assertTrue "link line: $(shown)" \
		"grep -qE '^  link:0 [a-z]+ 127\.0\.0\.2:$port->127\.0\.0\.3:$port ports:[0-9]+ ' '$t/out'"
	assertEquals "one line per client: $(shown)" 2 "$(grep -c '^  client:' "$t/out")"
	assertTrue "fmon line: $(shown)" "grep -qE '^  client:fmon ok ports:1 port-size:4096$' '$t/out'"
	assertTrue "nvmirror line: $(shown)" \
		"grep -qE '^  client:nvmirror ok ports:2 port-size:1048576$' '$t/out'"
	assertFalse "no colour when not on a terminal: $(shown)" "grep -q \$'\\033' '$t/out'"
}

# On a terminal (script(1) gives it one) the state words are coloured;
# with NO_COLOR, or TERM=dumb, they are not.
test_status_colours_only_a_terminal() {
	local out
	run_pair
	out=$(TERM=xterm script -qec "'${CCM}' status --state-dir '$t/a/run'" /dev/null)
	assertContains "stale in red on a terminal: $out" "$out" $'state:\033[1;31mstale\033[0m'
	assertContains "the fmon client ok in green: $out" "$out" $'client:fmon \033[32mok\033[0m'
	out=$(NO_COLOR=1 TERM=xterm script -qec "'${CCM}' status --state-dir '$t/a/run'" /dev/null)
	assertNotContains "NO_COLOR: none: $out" "$out" $'\033'
	out=$(TERM=dumb script -qec "'${CCM}' status --state-dir '$t/a/run'" /dev/null)
	assertNotContains "TERM=dumb: none: $out" "$out" $'\033'
}

test_status_json() {
	run_pair
	run_ccm status --state-dir "$t/b/run" --json
	assertEquals "exit status (stale: the --once process is gone); $(shown)" 6 "$rc"
	# shellcheck disable=SC2016
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["state"] == "stale" and d["stale"] is True, d["state"]
assert d["last_state"] == "connected", d["last_state"]
assert "is gone" in d["stale_reason"], d["stale_reason"]
assert d["node"] == 2 and d["partner_node"] == 1, d
assert isinstance(d["clients"], list), d["clients"]
names = sorted(c["name"] for c in d["clients"])
assert names == ["fmon", "nvmirror"], names
assert all(c["status"] == "ok" for c in d["clients"]), d["clients"]
' <"$t/out" 2>"$t/py"
	_rc=$?
	assertEquals "status --json is valid JSON with the facts: $(cat "$t/py"; shown)" 0 "$_rc"
	# The same as the state.json the run wrote, but for the stale marks.
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
f = json.load(open(sys.argv[2]))
d["state"] = d.pop("last_state")
del d["stale"], d["stale_reason"]
assert d == f, (d, f)
' "$t/out" "$t/b/run/state.json" 2>"$t/py"
	_rc=$?
	assertEquals "status --json matches state.json: $(cat "$t/py")" 0 "$_rc"
}

test_status_corrupt_state_file() {
	run_pair
	good="$t/a/run/state"
	# case | expected message (after "state") | how to make it from the good file
	while IFS='|' read -r name msg edit; do
		mkdir -p "$t/$name"
		cp "$good" "$t/$name/state"
		( cd "$t/$name" && eval "$edit" )
		run_ccm status --state-dir "$t/$name"
		assertEquals "$name: exit status; $(shown)" 2 "$rc"
		assertContains "$name: message names the line" "$(cat "$t/err")" "$msg"
	done <<-'EOF'
		unknown-key|state:50: CCM_COLOUR: unknown key|echo "CCM_COLOUR='blue'" >>state
		unknown-client-suffix|state:50: CCM_CLIENT_fmon_SPEED: unknown key|echo "CCM_CLIENT_fmon_SPEED='1'" >>state
		repeated-key|state:50: CCM_NODE: given twice|echo "CCM_NODE='1'" >>state
		unquoted|state:9: CCM_CLUSTER: value is not in single quotes|sed -i "s/^CCM_CLUSTER=.*/CCM_CLUSTER=ccm/" state
		double-quoted|state:9: CCM_CLUSTER: value is not in single quotes|sed -i "s/^CCM_CLUSTER=.*/CCM_CLUSTER=\"ccm\"/" state
		unterminated|state:9: CCM_CLUSTER: unterminated quote|sed -i "s/^CCM_CLUSTER=.*/CCM_CLUSTER='ccm/" state
		trailing-text|state:9: CCM_CLUSTER: text after the closing quote|sed -i "s/^CCM_CLUSTER=.*/CCM_CLUSTER='ccm'; rm -rf x/" state
		command-subst|state:9: CCM_CLUSTER: text after the closing quote|sed -i "s/^CCM_CLUSTER=.*/CCM_CLUSTER='ccm'\$(id)/" state
		bad-state|state:2: CCM_STATE: not a state|sed -i "s/^CCM_STATE=.*/CCM_STATE='happy'/" state
		bad-number|state:3: CCM_NODE: not a decimal number|sed -i "s/^CCM_NODE=.*/CCM_NODE='0x1'/" state
		truncated-mid-line|no newline at the end|head -c 200 state >s && mv s state
		truncated-no-newline|no newline at the end|head -c -1 state >s && mv s state
		truncated-lines|state: client 'nvmirror' lacks one of|head -n 28 state >s && mv s state
		no-header|state:1: not a ccm-early handoff file|sed -i 1d state
		garbage|state:1:|head -c 300 /dev/urandom >state; printf '\n' >>state
		binary-header-ok|state:2:|{ head -n 1 state; printf '\001\002\377garbage\n'; } >s && mv s state
		empty|state: empty file|: >state
		clients-list-wrong|CCM_CLIENTS does not list exactly|sed -i "s/^CCM_CLIENTS=.*/CCM_CLIENTS='fmon'/" state
	EOF
}

test_status_of_error_state_exits_1() {
	start_node a --timeout 1 --once
	wait_exit "$pid_a" 10
	pids=""
	assertEquals "connect without a partner times out" 3 "$ccm_rc"
	run_ccm status --state-dir "$t/a/run"
	assertEquals "status of an error state; $(shown)" 1 "$rc"
	assertTrue "state: $(shown)" "grep -qE '^default node:1 .* state:error$' '$t/out'"
	assertTrue "error line: $(shown)" "grep -qE '^  error: .*timed out' '$t/out'"
	run_ccm status --state-dir "$t/a/run" --json
	assertEquals "status --json of an error state" 1 "$rc"
	assertEquals "state in JSON" error \
		"$(python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' <"$t/out")"
}

# --- the handoff files ----------------------------------------------------------

test_state_file_is_safe_to_source() {
	rm -rf "$t/clients"
	long=abcdefghijklmnopqrstuvwxyz_0123                 # 31 bytes: the longest
	for c in a z_ x__9 a_port "$long"; do
		make_client "$t/clients" "$c" 1 4K
	done
	cluster=a.b-c_1.-X
	run_pair --cluster "$cluster"
	for n in a b; do
		# shellcheck disable=SC2016
		got=$(sh -eu -c '. "$1/state"
			printf "%s|%s|%s|%s|%s|%s|%s" "$CCM_STATE" "$CCM_CLUSTER" "$CCM_CLIENTS" \
				"$CCM_CLIENT_z__STATUS" "$CCM_CLIENT_x__9_PORTS" \
				"$CCM_CLIENT_a_port_PORT_SIZE" "$CCM_BAD_DESCRIPTORS"
			for c in $CCM_CLIENTS; do eval "s=\$CCM_CLIENT_${c}_STATUS"; printf "|%s=%s" "$c" "$s"; done' \
			sh "$t/$n/run" 2>&1)
		assertEquals "node $n: . state in sh -eu" \
			"connected|$cluster|a a_port $long x__9 z_|ok|1|4096||a=ok|a_port=ok|$long=ok|x__9=ok|z_=ok" \
			"$got"
		run_ccm status --state-dir "$t/$n/run"
		assertEquals "node $n: status reads back what connect wrote (stale after --once); $(shown)" \
			6 "$rc"
		assertTrue "node $n: status shows the cluster" "grep -qF ' cluster:$cluster ' '$t/out'"
	done
}

test_bad_descriptor_names_are_safe_to_source() {
	# Refused descriptor files whose names hold shell metacharacters.
	printf 'ports = many\n' >"$t/clients/\$(touch pwned).conf"
	printf 'ports = many\n' >"$t/clients/it's.conf"
	run_pair
	( cd "$t" && sh -eu -c '. "$1/state"; printf "%s" "$CCM_BAD_DESCRIPTORS"' sh "$t/a/run" ) \
		>"$t/bad" 2>&1
	_rc=$?
	assertEquals "sourcing succeeded: $(cat "$t/bad")" 0 "$_rc"
	assertFalse "sourcing ran nothing" "[ -e '$t/pwned' ]"
	assertContains "the refused files are listed: $(cat "$t/bad")" "$(cat "$t/bad")" "pwned"
	run_ccm status --state-dir "$t/a/run"
	assertEquals "status reads it back (stale after --once); $(shown)" 6 "$rc"
	python3 -c 'import json,sys; d=json.load(sys.stdin); assert len(d["bad_descriptors"]) == 2, d' \
		<"$t/a/run/state.json" 2>"$t/py"
	_rc=$?
	assertEquals "state.json lists both refused files: $(cat "$t/py")" 0 "$_rc"
}

test_error_text_is_safe_to_source_and_valid_json() {
	# A key file name with a quote, a command substitution and bytes that
	# are not UTF-8 ends up in CCM_ERROR.
	key=$(printf "%s/it's \$(touch pwned) \377\376 key" "$t")
	# shellcheck disable=SC2046
	run_ccm connect $(base_args) --psk-file "$key"
	assertEquals "missing key file; $(shown)" 2 "$rc"
	got=$(cd "$t" && sh -eu -c '. "$1/state"; printf "%s|%s" "$CCM_STATE" "$CCM_ERROR"' sh "$t/run")
	assertFalse "sourcing ran nothing" "[ -e '$t/pwned' ]"
	assertEquals ". state gives the error text byte for byte" \
		"error|key file $key: No such file or directory" "$got"
	run_ccm status --state-dir "$t/run"
	assertEquals "status reads it back (not connected: 1); $(shown)" 1 "$rc"
	run_ccm status --state-dir "$t/run" --json
	python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d["state"] == "error", d
assert "it'"'"'s $(touch pwned) \ufffd\ufffd key" in d["error"], d["error"]
' <"$t/out" 2>"$t/py"
	_rc=$?
	assertEquals "status --json: valid JSON, bad bytes as U+FFFD: $(cat "$t/py")" 0 "$_rc"
}

test_no_temp_files_left_in_state_dir() {
	run_pair
	for n in a b; do
		assertEquals "node $n's state dir after --once" "metrics state state.json" \
			"$(ls -A "$t/$n/run" | tr '\n' ' ' | sed 's/ $//')"
		assertEquals "node $n: state mode" 644 "$(stat -c %a "$t/$n/run/state")"
		assertEquals "node $n: state.json mode" 644 "$(stat -c %a "$t/$n/run/state.json")"
		assertEquals "node $n: metrics mode" 644 "$(stat -c %a "$t/$n/run/metrics")"
	done
	# And after a run ended by SIGTERM, and after an error.
	ccm_port_seq=$((ccm_port_seq + 1))
	port=$((ccm_port_base + ccm_port_seq))
	rm -rf "$t/a" "$t/b"
	start_node a
	start_node b
	wait_for_line "$t/a/run/state" "CCM_STATE='connected'" 15
	for n in a b; do
		eval "_p=\$pid_$n"
		kill -TERM "$_p"
		wait_exit "$_p" 10
		assertEquals "node $n's state dir after SIGTERM" "metrics state state.json" \
			"$(ls -A "$t/$n/run" | tr '\n' ' ' | sed 's/ $//')"
	done
	pids=""
}

# --- keygen ------------------------------------------------------------------------

test_keygen_writes_a_private_key_and_never_overwrites_one() {
	local first
	( umask 000; "${CCM}" keygen "$t/key" >"$t/out" 2>"$t/err" ); rc=$?
	assertEquals "keygen exit status: $(cat "$t/err")" 0 "$rc"
	assertEquals "mode 600 whatever the umask" 600 "$(stat -c %a "$t/key")"
	assertEquals "64 hex digits and a newline" 65 "$(wc -c <"$t/key")"
	assertTrue "hex only" "grep -qxE '[0-9a-f]{64}' '$t/key'"
	assertTrue "it printed the id" "grep -qE '^key written to .* \(id [0-9a-f]{16}\)$' '$t/out'"
	first=$(cat "$t/key")
	run_ccm keygen "$t/key"
	assertEquals "an existing key is not replaced: exit 2" 2 "$rc"
	assertContains "$(cat "$t/err")" "--force replaces it"
	assertEquals "the key is unchanged" "$first" "$(cat "$t/key")"
	run_ccm keygen --force "$t/key"
	assertEquals "--force replaces it" 0 "$rc"
	assertNotEquals "with a new key" "$first" "$(cat "$t/key")"
	ln -s "$t/key" "$t/link"
	run_ccm keygen --force "$t/link"
	assertEquals "never through a symbolic link" 1 "$rc"
	run_ccm keygen
	assertEquals "no FILE: usage error" 2 "$rc"
}

# --- devices and signals --------------------------------------------------------

test_devices() {
	run_ccm devices
	assertEquals "exit status; $(shown)" 0 "$rc"
	assertTrue "prints 0 devices: $(shown)" "grep -q '^0 devices' '$t/out'"
}

test_sigterm_on_connected_node() {
	start_node a
	start_node b
	wait_for_line "$t/a/run/state" "CCM_STATE='connected'" 15 ||
		fail "A did not connect: $(cat "$t/a/log")"
	wait_for_line "$t/b/run/state" "CCM_STATE='connected'" 15 ||
		fail "B did not connect: $(cat "$t/b/log")"
	kill -TERM "$pid_a"
	wait_exit "$pid_a" 10
	assertEquals "A's exit status after SIGTERM; log: $(cat "$t/a/log")" 0 "$ccm_rc"
	assertEquals "A's final state" terminated "$(state_get "$t/a/run" CCM_STATE)"
	run_ccm status --state-dir "$t/a/run"
	assertEquals "status of a terminated node" 1 "$rc"
	kill -TERM "$pid_b"
	wait_exit "$pid_b" 10
	assertEquals "B's final state" terminated "$(state_get "$t/b/run" CCM_STATE)"
	pids=""
}

. shunit2
