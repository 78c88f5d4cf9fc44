#!/usr/bin/env bash
# The keeper's lines in the journal, over journald's native protocol: a real
# systemd-journald (Debian's) in a mount namespace of this suite's own, so
# that it neither sees nor touches the machine's journal, and real keepers
# over tcp on loopback.  A keeper writes to the journal when systemd says
# its stderr is the journal ($JOURNAL_STREAM, as for a unit with
# StandardError=journal, here made by systemd-cat), and after switch_root
# (the systemd boot scenario in tests/boot); otherwise to stderr.
set -u

# The namespace: a fresh /run of our own, where journald binds its sockets
# and keeps its (volatile) journal.
if [ -z "${CCM_JOURNAL_NS:-}" ]; then
	CCM_JOURNAL_NS=1 exec unshare --mount --propagation private bash "$0" "$@"
fi

. "$(dirname "$0")/../lib/common.sh"

JOURNALD=/lib/systemd/systemd-journald

oneTimeSetUp() {
	[ -x "${CCM}" ] || fail "no binary at ${CCM}; run make dev"
	[ -x "$JOURNALD" ] || fail "no $JOURNALD (Debian's systemd package)"
	mount -t tmpfs -o mode=755 tmpfs /run || fail "cannot mount a tmpfs on /run in the namespace"
	mkdir -p /run/systemd/journald.conf.d /run/log/journal
	printf '[Journal]\nStorage=volatile\nRateLimitBurst=0\n' >/run/systemd/journald.conf.d/ccm-test.conf
	"$JOURNALD" >/dev/null 2>&1 </dev/null &
	journald_pid=$!
	wait_for 10 test -S /run/systemd/journal/socket || fail "journald never bound its socket"
}

oneTimeTearDown() {
	[ -z "${journald_pid:-}" ] || { kill "$journald_pid"; wait "$journald_pid"; } 2>/dev/null
}

setUp() {
	ccm_begin_test
	for n in a b; do
		make_client "$t/$n/clients" alpha 1 4K
	done
}

tearDown() {
	ccm_end_test
}

# start_node NODE STDERR-MODE [args]: a keeper in the foreground, as a
# unit runs it.  STDERR-MODE journal: its stderr is a journal stream and
# $JOURNAL_STREAM names it; file: its stderr is $t/NODE/log and
# $JOURNAL_STREAM names that file (so the keeper takes it for the journal's
# and must still write there whenever journald does not take a line).
start_node() {
	local n=$1 mode=$2 id me peer
	shift 2
	if [ "$n" = a ]; then id=1 me=127.0.0.2 peer=127.0.0.3; else id=2 me=127.0.0.3 peer=127.0.0.2; fi
	mkdir -p "$t/$n"
	set -- connect --node-id "$id" --listen "$me:$port" --partner "$peer:$port" \
		--clients "$t/$n/clients" --state-dir "$t/$n/run" --foreground "$@"
	if [ "$mode" = journal ]; then
		systemd-cat -t "ccm-stderr-$n" bash -c \
			'JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec "$0" "$@"' "${CCM}" "$@" \
			</dev/null &
	else
		: >"$t/$n/log"
		JOURNAL_STREAM=$(stat -c %d:%i "$t/$n/log") "${CCM}" "$@" 2>>"$t/$n/log" </dev/null &
	fi
	eval "pid_$n=$!"
	pids="$pids $!"
}

connected() {
	wait_for_line "$t/$1/run/state" "CCM_STATE='connected'" "${2:-15}"
}

# entries NODE [MATCH...]: the ccm-early entries of node NODE's keeper
# in this test (journalctl matches, FIELD=VALUE), one JSON object per line.
entries() {
	local n=$1 id pid
	shift
	if [ "$n" = a ]; then id=1; else id=2; fi
	eval "pid=\${pid_$n:-0}"
	journalctl --no-pager -o json SYSLOG_IDENTIFIER=ccm-early "CCM_NODE=$id" "_PID=$pid" "$@" 2>/dev/null
}

# field JSON-LINES FIELD: FIELD of each entry, one per line.
field() {
	python3 -c 'import json, sys
for l in sys.stdin:
    print(json.loads(l).get(sys.argv[1], ""))' "$2" <<<"$1"
}

has_entry() {
	[ -n "$(entries "$@")" ]
}

# wait_entry NODE SECONDS MATCH...: until such an entry is there.
wait_entry() {
	local n=$1 secs=$2
	shift 2
	wait_for "$secs" has_entry "$n" "$@"
}

test_lines_and_events_reach_journald_natively_with_their_fields() {
	local all ev
	start_node a journal
	start_node b journal
	connected a || fail "a never connected"
	connected b || fail "b never connected"
	wait_entry a 10 CCM_EVENT=partner CCM_STATE=ready || fail "a: no partner-ready entry"

	all=$(entries a)
	assertTrue "a: entries came over the native protocol, not the stream: $(field "$all" _TRANSPORT | sort -u | tr '\n' ' ')" \
		"[ '$(field "$all" _TRANSPORT | sort -u)' = journal ]"
	assertTrue "a: its milestone is a notice (5)" \
		"has_entry a 'MESSAGE=connected to node 2 at version 1; 1 client(s) matched' PRIORITY=5"
	assertEquals "nothing of a's came through its stderr stream as well" "" \
		"$(journalctl --no-pager -o cat SYSLOG_IDENTIFIER=ccm-stderr-a 2>/dev/null)"

	ev=$(entries a CCM_EVENT=link CCM_LINK=0 CCM_STATE=up)
	assertEquals "a: link 0 up, with its fields" "link 0 up" "$(field "$ev" MESSAGE | tail -1)"
	ev=$(entries a CCM_EVENT=partner CCM_STATE=ready)
	assertEquals "a: the partner's node in its event" 2 "$(field "$ev" CCM_PARTNER_NODE | tail -1)"
	assertNotEquals "a: the partner's epoch in its event" "" "$(field "$ev" CCM_PARTNER_EPOCH | tail -1)"
	assertTrue "a: the handshake's state changes are events: $(field "$(entries a CCM_EVENT=handshake)" MESSAGE | tr '\n' ';')" \
		"has_entry a CCM_EVENT=handshake CCM_STATE=connected"

	# The partner dies: a warning (4), with the partner's node.
	kill -9 "$pid_b"
	wait "$pid_b" 2>/dev/null
	wait_entry a 15 CCM_EVENT=partner CCM_STATE=lost || fail "a: no partner-lost entry"
	ev=$(entries a CCM_EVENT=partner CCM_STATE=lost)
	assertEquals "a: partner lost is a warning" 4 "$(field "$ev" PRIORITY | tail -1)"
	assertEquals "a: lost, node 2" 2 "$(field "$ev" CCM_PARTNER_NODE | tail -1)"
	assertTrue "a: the message says so: $(field "$ev" MESSAGE | tail -1)" \
		"field '$ev' MESSAGE | tail -1 | grep -q '^partner node=2 epoch=[0-9]* lost$'"
}

test_an_error_is_an_error_in_the_journal() {
	local ev
	"${CCM}" keygen "$t/key" >/dev/null || fail "keygen"
	start_node a journal --psk-file "$t/key"
	wait_for 10 test -S "$t/a/run/ccm.sock" || fail "a never served its socket"
	echo "not a key" >"$t/key"
	"${CCM}" reload-keys --state-dir "$t/a/run" >/dev/null 2>&1
	wait_entry a 10 PRIORITY=3 || fail "a: no error entry"
	ev=$(entries a PRIORITY=3)
	assertTrue "a: the failed reload is the error: $(field "$ev" MESSAGE)" \
		"field '$ev' MESSAGE | grep -q '^keys not read again; the ones in use stay'"
}

# A named instance (ccm-early@x) says which in every entry: CCM_INSTANCE.
test_a_named_instance_says_which_in_the_journal() {
	local ev
	mkdir -p "$t/etc"
	: >"$t/etc/x.conf"   # an instance needs its file; the command line says the rest
	export CCM_CONF_DIR=$t/etc
	start_node a journal --instance x
	start_node b journal
	unset CCM_CONF_DIR
	connected a || fail "a never connected"
	wait_entry a 10 CCM_INSTANCE=x "MESSAGE=link 0 up" || fail "a: no event with CCM_INSTANCE=x"
	ev=$(entries a)
	assertEquals "every entry of the instance says x" x "$(field "$ev" CCM_INSTANCE | sort -u)"
	# Lines too, not only events (a line has no CCM_EVENT); any of them:
	# one journald's queue refused under load went to stderr instead.
	assertTrue "the lines too, not only events: $(field "$ev" MESSAGE | sed -n 1,5p)" \
		"[ $(field "$ev" CCM_EVENT | grep -c '^$') -ge 1 ]"
	assertEquals "the unnamed instance's entries say none" "" \
		"$(field "$(entries b)" CCM_INSTANCE | sort -u)"
}

test_a_line_journald_does_not_take_goes_to_stderr() {
	local before in_journal in_stderr
	# journald's socket moved away: every line goes to stderr, stamped.
	mv /run/systemd/journal/socket /run/systemd/journal/socket.away
	start_node a file -v
	wait_for 10 grep -q 'listening on 127.0.0.2' "$t/a/log" ||
		fail "a's lines never reached its stderr without journald: $(cat "$t/a/log")"
	assertTrue "a's stderr line is stamped as ever: $(head -1 "$t/a/log")" \
		"head -1 '$t/a/log' | grep -q '^[0-9-]*T[0-9:.]*Z ccm-early\[node 1\]: '"
	before=$(wc -l <"$t/a/log")
	# Back: the next lines go to the journal, found again by its path.
	mv /run/systemd/journal/socket.away /run/systemd/journal/socket
	start_node b file
	connected a || fail "a never connected"
	wait_entry a 10 CCM_EVENT=partner CCM_STATE=ready || fail "a: journald back, but no entry of a's"
	# Each line goes to the journal, or to stderr when journald does not
	# take it then (its queue full under load: EAGAIN), never to both and
	# never nowhere.
	in_journal=0 in_stderr=0
	has_entry a 'MESSAGE=connected to node 2 at version 1; 1 client(s) matched' && in_journal=1
	grep -q 'connected to node 2' "$t/a/log" && in_stderr=1
	assertEquals "a: 'connected' in exactly one of the journal ($in_journal) and stderr ($in_stderr)" \
		1 $((in_journal + in_stderr))
	assertTrue "a: its stderr kept the lines from before ($before)" "[ $before -ge 1 ]"
}

test_a_keeper_whose_stderr_is_not_the_journal_writes_there() {
	# A terminal, a file, a pipe: $JOURNAL_STREAM absent or naming another
	# file.  The lines stay where the operator looks.
	start_node a file
	mkdir -p "$t/b"
	JOURNAL_STREAM=1:1 "${CCM}" connect --node-id 2 --listen "127.0.0.3:$port" \
		--partner "127.0.0.2:$port" --clients "$t/b/clients" --state-dir "$t/b/run" \
		--foreground 2>>"$t/b/log" </dev/null &
	pid_b=$!
	pids="$pids $!"
	connected b || fail "b never connected"
	wait_for 10 grep -q 'connected to node 1' "$t/b/log" || fail "b: not on its stderr: $(cat "$t/b/log")"
	assertEquals "b: nothing in the journal" "" "$(entries b)"
}

. /usr/bin/shunit2
