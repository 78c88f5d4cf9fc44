#!/usr/bin/env bash
# Several interconnects on real verbs (issue 6): two guests, each with two
# NICs on their own qemu dgram netdevs (link 0: eth0, rxe0, 10.0.0.0/24;
# link 1: eth1, rxe1, 10.0.1.0/24), one keeper per guest connected over
# both links (--transport rdma --link ...,device=rxeN), ccm-stream
# streaming writes and messages on every port in both directions. Mid-
# stream, link 0 is cut at guest a's end from qemu's monitor (set_link n0
# off: a loses its carrier, b keeps its own and can only tell by the
# link's heartbeat), then restored. Link 0 is the one cut because the
# handshake and the first PORTS ran on it: the harder case.
#
# What must hold: no client error, nothing lost, duplicated or reordered,
# each stream's window checksums the same on both sides, both keepers'
# status showing link 0 down while it is cut and up again, after the
# damping, once it is back. The failover time seen in the guests is
# reported as a "# " line, not asserted.
#
# Wall time: 45-60 s (one boot of two guests, a 20 s stream).
# LINKS_STREAM_SECS (default 20): how long each stream runs.
# LINKS_SAVE=DIR: copy the guests' files (logs, status snapshots) there.
set -u
# shellcheck disable=SC2154  # t and _shunit_test_ come from common.sh/shunit2
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source=tests/vm/lib.sh
. "$(dirname "$0")/lib.sh"

SAVE_TO=${LINKS_SAVE:-}
# shellcheck source=tests/vm/stream.sh
. "$(dirname "$0")/stream.sh"
# shellcheck source=tests/vm/suite.sh
. "$(dirname "$0")/suite.sh"

# How long each ccm-stream runs: long enough for the cut, its detection,
# the restore and the damping (1 s) with traffic still flowing after it.
STREAM_SECS=${LINKS_STREAM_SECS:-20}
# The keeper's timing. Soft-RoCE under TCG is about a hundred times
# slower than hardware, and each guest's one vCPU carries rxe's packet
# processing, the keeper and both stream clients: under the stream a
# link's heartbeat READ is routinely 300-600 ms late (measured), so at the
# defaults (10 ms x 3 per link, 100 ms x 5 for the partner) links flap
# several times a second and the partner is lost with no cut at all. Here
# a link is down after 1 s without its heartbeat and the partner after
# 2 s; LINKS_KEEPER_ARGS= runs the defaults.
KEEPER_ARGS=${LINKS_KEEPER_ARGS---link-heartbeat-ms 100 --link-misses 10 --heartbeat-ms 200 --heartbeat-misses 10}
# Guest timeout: boot (~5 s), connect, the stream, the stop.
GUEST_TIMEOUT=$((STREAM_SECS + 120))

# The guests' side. Both run the same script; a is node 1, b node 2.
write_scenario() {
	cat <<'EOS'
set -u
. "$LAB_LIB"
if [ "$role" = a ]; then id=1 peer=b; else id=2 peer=a; fi
run=/tmp/run
klog=/out/$role.keeper.log
res=/out/$role.res        # "key value" lines for the host's assertions
: >"$res"
result() { echo "$*" >>"$res"; }
# Realtime with microseconds, the clock of the keeper's log (busybox's
# date has no %N; its adjtimex prints the kernel's time).
now() { adjtimex | awk '/tv_sec/ { s = $2 } /tv_usec/ { u = $2 } END { printf "%d.%06d\n", s, u }'; }
status() { $CCM status --state-dir $run --json; }
# link_state N, link_ports N: link N's state and how many ports it
# carries, from the handoff's shell form (sourced in a subshell as a boot
# script would: cheaper under TCG than running `ccm-early status` every
# 50 ms; the JSON snapshots below are what the host checks).
link_state() { (. $run/state 2>/dev/null && eval "echo \"\${CCM_LINK_$1_STATE:-}\""); }
link_ports() { (. $run/state 2>/dev/null && eval "echo \"\${CCM_LINK_$1_PORTS:-}\""); }
# wait_link N STATES SECS: link N in one of STATES (a grep -E pattern);
# each state it changes to goes to /out/ROLE.trace with its time.
wait_link() {
	_end=$(($(cut -d. -f1 /proc/uptime) + $3))
	while :; do
		_s=$(link_state "$1")
		eval "_last=\${last_$1:-}"
		if [ "$_s" != "$_last" ]; then
			echo "$(now) link $1 ${_s:-none}" >>"/out/$role.trace"
			eval "last_$1=\$_s"
		fi
		echo "$_s" | grep -qxE "$2" && return 0
		[ "$(cut -d. -f1 /proc/uptime)" -lt $_end ] || return 1
		sleep 0.05
	done
}
fail() { echo "scenario: $*"; result fail "$*"; status >"/out/$role.status-fail.json" 2>&1; exit 1; }

# Two stream clients, the same on both nodes: from_a carries a's stream to
# b, from_b the other way. Two ports each, so that balance can put ports
# on both links.
mkdir -p /tmp/clients
for c in from_a from_b; do
	printf 'ports = 2\nport-size = 256K\n' >/tmp/clients/$c.conf
done

# The host's timing options, commas for spaces (kernel command line word).
keeper_args=$(echo "${keeper_args:-}" | tr , ' ')
# psk=HEX: both keepers hold that pre-shared key (kept off the 9p share).
if [ -n "${psk:-}" ]; then
	printf '%s\n' "$psk" >/tmp/key
	chmod 600 /tmp/key
	keeper_args="$keeper_args --psk-file /tmp/key"
fi
# psk2=HEX: the key the pair rotates to mid-stream (rotate_step below); the
# accept file names it once step 1 writes it.
[ -z "${psk2:-}" ] || keeper_args="$keeper_args --psk-accept-file /tmp/key2"
# shellcheck disable=SC2086  # keeper_args: several words
$CCM connect --node-id $id --transport rdma \
	--link "$ccm_local_0=$ccm_peer_0,device=$ccm_dev_0" \
	--link "$ccm_local_1=$ccm_peer_1,device=$ccm_dev_1" \
	--link-policy balance --clients /tmp/clients --state-dir $run \
	--timeout 60 -v $keeper_args >>"$klog" 2>&1
rc=$?
result connect $rc
[ $rc = 0 ] || fail "connect exited $rc"
wait_link 0 up 30 || fail "link 0 never up"
wait_link 1 up 30 || fail "link 1 never up"
status >"/out/$role.status-up.json"

# Receive the partner's stream, send ours.
ccm-stream recv -v --state-dir $run --client "from_$peer" --seconds "$stream_secs" \
	>"/out/$role.recv.out" 2>"/out/$role.recv.err" &
recv=$!
ccm-stream send -v --state-dir $run --client "from_$role" --seconds "$stream_secs" \
	>"/out/$role.send.out" 2>"/out/$role.send.err" &
send=$!

# Balance spreads the 4 ports over both links: wait until each carries some.
n=0
until [ "$(link_ports 0)" -gt 0 ] 2>/dev/null && [ "$(link_ports 1)" -gt 0 ] 2>/dev/null; do
	n=$((n + 1))
	[ $n -lt 200 ] || fail "the ports never spread over both links"
	sleep 0.05
done
status >"/out/$role.status-both.json"
# a sees its carrier go at the cut: that is when the cut happened, as its
# own clock tells (b's clock is not a's; b's figure comes from its log).
# ip -ts monitor stamps each change itself, and costs nothing meanwhile:
# a polling loop would steal the vCPU the keeper needs.
if [ "$role" = a ]; then
	/usr/sbin/ip -ts monitor link >/out/a.carrier 2>&1 &
	mon=$!
	# Listening once its netlink socket (port id = its pid) has groups;
	# without it only the figure is lost, so do not wait long.
	n=0
	until awk -v p=$mon '$3 == p && $4 != "00000000" { f = 1 } END { exit !f }' /proc/net/netlink; do
		n=$((n + 1))
		[ $n -lt 40 ] || break
		sleep 0.05
	done
fi
lab_mark streaming

# rotate_step N KEY ACCEPT: step N of the README's key rotation on this
# node (KEY into psk-file, ACCEPT into the accept file, '' none, then
# reload-keys); then the host cuts link 0 and restores it (cutN,
# restoredN), so that it comes back with a fresh keyed greeting under the
# step's keys.
rotate_step() {
	printf '%s\n' "$2" >/tmp/key.new && chmod 600 /tmp/key.new && mv /tmp/key.new /tmp/key
	if [ -n "$3" ]; then
		printf '%s\n' "$3" >/tmp/key2.new && chmod 600 /tmp/key2.new && mv /tmp/key2.new /tmp/key2
	else
		rm -f /tmp/key2
	fi
	$CCM reload-keys --state-dir $run >>"/out/$role.rotate" 2>&1 || fail "step $1: reload-keys failed"
	lab_mark "step$1"
	lab_wait_file "/out/cut$1" 90 || fail "step $1: the host never cut link 0"
	wait_link 0 'down|connecting' 30 || fail "step $1: link 0 never went down"
	lab_mark "down$1"
	lab_wait_file "/out/restored$1" 60 || fail "step $1: the host never restored link 0"
	wait_link 0 up 60 || fail "step $1: link 0 never came back up"
	status >"/out/$role.status-step$1.json"
}
# The cut, host-driven (cut_one_mid_stream), or the rotation's own flaps.
if [ -n "${psk2:-}" ]; then
	rotate_step 1 "$psk" "$psk2"
	rotate_step 2 "$psk2" "$psk"
	rotate_step 3 "$psk2" ""
	lab_mark rotated
else
	lab_wait_file /out/cut 60 || fail "the host never cut link 0"
	wait_link 0 'down|connecting' 30 || fail "link 0 never went down"
	# While the cut lasts the link must stay out of service, for longer than
	# a link that flapped under load stays out (its damping): a keeper that
	# only saw a late heartbeat would have it back by then.
	n=0
	while [ $n -lt 30 ]; do
		wait_link 0 'down|connecting' 0 || fail "link 0 came back while cut: $(link_state 0)"
		n=$((n + 1))
		sleep 0.1
	done
	status >"/out/$role.status-down.json"
	lab_mark linkdown

	lab_wait_file /out/restored 60 || fail "the host never restored link 0"
	wait_link 0 up 60 || fail "link 0 never came back up"
	status >"/out/$role.status-back.json"
	lab_mark linkup
fi

[ -z "${mon:-}" ] || kill "$mon"
wait $send
result send $?
wait $recv
result recv $?
status >"/out/$role.status-end.json"
# The partner may still be reading our last writes: stop only when it is done.
lab_mark streamed
lab_wait_file /out/$peer.streamed 60 || fail "the partner never finished its stream"
$CCM stop --state-dir $run
result stop $?
EOS
}

# json_link FILE N FIELD: field FIELD of link N in a saved status, or "".
json_link() {
	python3 - "$@" <<'EOF' 2>/dev/null
import json, sys
d = json.load(open(sys.argv[1]))
for l in d.get("links", []):
    if l.get("index") == int(sys.argv[2]):
        print(l.get(sys.argv[3], ""))
EOF
}

# complaints FILE: a stream client's stderr without its -v event lines.
complaints() { grep -v '^ccm-stream \[' "$1" 2>/dev/null | head -3 | tr '\n' ';'; }

test_dgram_two_rdma_links_cut_one_mid_stream() {
	cut_one_mid_stream ""
}

# The same with a pre-shared key: every message the stream makes is
# sealed, and link 0's return is a fresh keyed greeting.
test_dgram_two_rdma_links_cut_one_mid_stream_with_a_key() {
	cut_one_mid_stream "$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
}

# The key rotated on both nodes, step by step as the README has it, while
# both streams run over both rdma links; after each step the host cuts
# link 0, and it comes back with a fresh keyed greeting under that step's
# keys.
# Nothing may be lost, the partner never, and each step's keys are the
# ones the keepers hold.
test_dgram_key_rotated_on_both_nodes_mid_stream() {
	local old new s=$t/share r k1 a1 k2 a2 k3 a3 n
	lab_ready || return 0
	[ -x "$STREAM" ] || { fail "no $STREAM (tests/links/stream.c, make build/ccm-stream)"; return; }
	old=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	new=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
	mkdir -p "$s"
	write_scenario >"$t/s.sh"
	# The stream outlasts the three steps (each a link down and back).
	vm_start dgram "$s" "$t/s.sh" --links 2 --timeout $((GUEST_TIMEOUT + 90)) \
		--append "stream_secs=$((STREAM_SECS + 60)) keeper_args=$(echo "$KEEPER_ARGS" | tr ' ' ,) psk=$old psk2=$new" ||
		{ fail "vm_start"; return; }
	for n in 1 2 3; do
		if ! { wait_file "$s/a.step$n" 120 && wait_file "$s/b.step$n" 30; }; then
			vm_kill_all
			show_logs
			fail "step $n never taken on both nodes"
			return
		fi
		vm_set_link a 0 off || fail "set_link n0 off"
		date +%s.%N >"$s/cut$n"
		if ! { wait_file "$s/a.down$n" 40 && wait_file "$s/b.down$n" 40; }; then
			vm_set_link a 0 on
			vm_kill_all
			show_logs
			fail "step $n: a keeper never saw link 0 down"
			return
		fi
		vm_set_link a 0 on || fail "set_link n0 on"
		date +%s.%N >"$s/restored$n"
	done
	vm_wait || { show_logs; fail "a guest failed"; }
	save_share
	for r in a b; do
		assertEquals "$r: ccm-stream send exit status ($(complaints "$s/$r.send.err"))" 0 "$(res $r send)"
		assertEquals "$r: ccm-stream recv exit status ($(complaints "$s/$r.recv.err"))" 0 "$(res $r recv)"
		assertTrue "$r: every step taken before the stream ended ($(cat "$s/$r.rotate" 2>/dev/null | tr '\n' ';'))" \
			"[ -e '$s/$r.rotated' ]"
		k1=$(json_key "$s/$r.status-step1.json" key_id) a1=$(json_key "$s/$r.status-step1.json" key_accept_id)
		k2=$(json_key "$s/$r.status-step2.json" key_id) a2=$(json_key "$s/$r.status-step2.json" key_accept_id)
		k3=$(json_key "$s/$r.status-step3.json" key_id) a3=$(json_key "$s/$r.status-step3.json" key_accept_id)
		assertEquals "$r: step 1 proves with the old key" "$(json_key "$s/$r.status-both.json" key_id)" "$k1"
		assertTrue "$r: step 1 accepts a second, new key ($a1)" "[ -n '$a1' ] && [ '$a1' != '$k1' ]"
		assertEquals "$r: step 2 proves with the new key" "$a1" "$k2"
		assertEquals "$r: step 2 accepts the old one" "$k1" "$a2"
		assertEquals "$r: step 3 proves with the new key" "$k2" "$k3"
		assertEquals "$r: step 3 accepts no other" "" "$a3"
		for n in 1 2 3; do
			assertEquals "$r: link 0 up again after step $n" up "$(json_link "$s/$r.status-step$n.json" 0 state)"
		done
		assertEquals "$r: the keeper stopped cleanly" 0 "$(res $r stop)"
	done
	assertEquals "both nodes hold the same key at the end" \
		"$(json_key "$s/a.status-step3.json" key_id)" "$(json_key "$s/b.status-step3.json" key_id)"
	check_stream from_a a b
	check_stream from_b b a
}

# json_key FILE KEY: a top-level field of a saved status, or "".
json_key() {
	python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get(sys.argv[2], ""))' \
		"$1" "$2" 2>/dev/null
}

# cut_one_mid_stream PSK_HEX (empty: no key)
cut_one_mid_stream() {
	local psk=$1
	lab_ready || return 0
	[ -x "$STREAM" ] || { fail "no $STREAM (tests/links/stream.c, make build/ccm-stream)"; return; }
	"$CCM_STATIC" connect --help 2>&1 | grep -q -- '--link ' ||
		{ fail "$CCM_STATIC connect has no --link"; return; }
	local s=$t/share start=$SECONDS r
	mkdir -p "$s"
	write_scenario >"$t/s.sh"
	vm_start dgram "$s" "$t/s.sh" --links 2 --timeout "$GUEST_TIMEOUT" \
		--append "stream_secs=$STREAM_SECS keeper_args=$(echo "$KEEPER_ARGS" | tr ' ' ,)${psk:+ psk=$psk}" ||
		{ fail "vm_start"; return; }
	if ! { wait_file "$s/a.streaming" 90 && wait_file "$s/b.streaming" 30; }; then
		vm_kill_all
		show_logs
		fail "the stream never ran on both links"
		return
	fi
	vm_set_link a 0 off || fail "set_link n0 off"
	date +%s.%N >"$s/cut"
	if ! { wait_file "$s/a.linkdown" 40 && wait_file "$s/b.linkdown" 40; }; then
		vm_set_link a 0 on
		vm_kill_all
		show_logs
		fail "a keeper never saw link 0 down"
		return
	fi
	vm_set_link a 0 on || fail "set_link n0 on"
	date +%s.%N >"$s/restored"
	vm_wait || { show_logs; fail "a guest failed"; }
	echo "# ${_shunit_test_}: guest a ${VM_SECS_a:-?}s, b ${VM_SECS_b:-?}s; test $((SECONDS - start))s" >&2
	save_share

	for r in a b; do
		assertEquals "$r: ccm-stream send exit status ($(complaints "$s/$r.send.err"))" 0 "$(res $r send)"
		assertEquals "$r: ccm-stream recv exit status ($(complaints "$s/$r.recv.err"))" 0 "$(res $r recv)"
		assertEquals "$r: link 0 up before the cut" up "$(json_link "$s/$r.status-both.json" 0 state)"
		assertEquals "$r: link 1 up before the cut" up "$(json_link "$s/$r.status-both.json" 1 state)"
		[ -z "$psk" ] || assertNotEquals "$r: the keeper held the key" "" "$(python3 -c \
			'import json, sys; print(json.load(open(sys.argv[1])).get("key_id", ""))' \
			"$s/$r.status-both.json" 2>/dev/null)"
		assertTrue "$r: link 0 down or reconnecting while cut, not '$(json_link "$s/$r.status-down.json" 0 state)'" \
			"json_link '$s/$r.status-down.json' 0 state | grep -qxE 'down|connecting'"
		assertEquals "$r: link 0 carries no port while cut" 0 "$(json_link "$s/$r.status-down.json" 0 ports)"
		assertEquals "$r: link 1 carries every port while cut" 4 "$(json_link "$s/$r.status-down.json" 1 ports)"
		assertEquals "$r: link 1 stayed up" up "$(json_link "$s/$r.status-down.json" 1 state)"
		assertEquals "$r: link 0 up again" up "$(json_link "$s/$r.status-back.json" 0 state)"
		assertTrue "$r: link 0 was damped before it came back: $(tr '\n' ';' <"$s/$r.trace" 2>/dev/null)" \
			"grep -q 'link 0 damped' '$s/$r.trace'"
		assertEquals "$r: the keeper stopped cleanly" 0 "$(res $r stop)"
	done
	check_stream from_a a b
	check_stream from_b b a
	report_failover
}

# check_stream CLIENT SENDER RECEIVER: the receiver got the sender's
# stream whole and in order, the windows' checksum is the same on both
# sides, and both ends were told of the link going and coming back.
check_stream() {
	local s=$t/share c=$1 tx=$2 rx=$3 snd rcv k
	snd=$(grep '^stream send: ' "$s/$tx.send.out" 2>/dev/null)
	rcv=$(grep '^stream recv: ' "$s/$rx.recv.out" 2>/dev/null)
	echo "# $c: $tx $snd" >&2
	echo "# $c: $rx $rcv" >&2
	assertNotNull "$c: $tx's summary line" "$snd"
	assertNotNull "$c: $rx's summary line" "$rcv"
	assertEquals "$c: no send or write failed" 0 "$(field "$snd" errors)"
	for k in lost dup reordered corrupt bad_slots lost_in_outage; do
		assertEquals "$c: $k" 0 "$(field "$rcv" $k)"
	done
	assertNotNull "$c: $tx's checksum" "$(field "$snd" checksum)"
	assertEquals "$c: $rx's windows hold what $tx's hold" \
		"$(field "$snd" checksum)" "$(field "$rcv" checksum)"
	assertEquals "$c: $rx's checksum as $tx heard it" \
		"$(field "$snd" checksum)" "$(field "$snd" partner_checksum)"
	assertTrue "$c: messages flowed: $rcv" "[ '$(field "$rcv" msgs)' -gt 0 ] 2>/dev/null"
	for k in "$snd" "$rcv"; do
		assertTrue "$c: told of the link down: $k" "[ '$(field "$k" link_down)' -ge 1 ] 2>/dev/null"
		assertTrue "$c: told of the link up: $k" "[ '$(field "$k" link_up)' -ge 1 ] 2>/dev/null"
		assertEquals "$c: the partner was never lost: $k" 0 "$(field "$k" partner_lost)"
	done
}

# The failover figures, from guest a's own clock: its NIC's carrier loss
# and return (ip -ts monitor), its keeper's log, its stream clients' events.
# b's clock is not a's (each guest's starts from the RTC's whole second),
# so b's figure is what its keeper says it waited.
report_failover() {
	python3 - "$t/share" <<'PY' >&2
import datetime, re, sys
d = sys.argv[1]

def read(f):
    try:
        return open(f"{d}/{f}", errors="replace").read().splitlines()
    except OSError:
        return []

def iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%f").replace(
        tzinfo=datetime.timezone.utc).timestamp()

def carrier(word, after):
    for l in read("a.carrier"):
        m = re.match(r"\[([0-9T:.-]+)\] \d+: eth0: .*<([^>]*)>", l)
        if m and word in m.group(2).split(",") and iso(m.group(1)) >= after:
            return iso(m.group(1))

def keeper(role, pattern, after):
    for l in read(f"{role}.keeper.log"):
        m = re.match(r"([0-9T:.-]+)Z ccm-early\[node \d+\]: (.*)", l)
        if m and re.search(pattern, m.group(2)) and iso(m.group(1)) >= after:
            return iso(m.group(1)), m.group(2)
    return None, ""

def client(f, pattern, after):
    for l in read(f):
        m = re.match(r"ccm-stream \[([0-9.]+)\]: (.*)", l)
        if m and re.search(pattern, m.group(2)) and float(m.group(1)) >= after:
            return float(m.group(1))

def ms(a, b):
    return "?" if a is None or b is None else "%.0f" % ((b - a) * 1000)

cut = carrier("NO-CARRIER", 0)
back = carrier("LOWER_UP", cut) if cut else None
down, why = keeper("a", r"^link 0 down", cut or 0)
again, what = keeper("a", r"of link 0 sent again", cut or 0)
told = client("a.send.err", r"link-down \(link 0\)", cut or 0)
up, _ = keeper("a", r"^link 0 up again", back or 0)
print(f"# failover a: link 0 down {ms(cut, down)} ms after the carrier went ({why}); "
      f"in-flight work re-issued at {ms(cut, again)} ms ({what.split(' of ')[0] or 'none'}); "
      f"client told at {ms(cut, told)} ms")
bdown, bwhy = keeper("b", r"^link 0 down", 0)
print(f"# failover b: {bwhy or 'no link 0 down in its log'}")
print(f"# failback a: link 0 up again {ms(back, up)} ms after the carrier came back "
      f"(damping 1000 ms); cut lasted {ms(cut, back)} ms")
PY
}

# shellcheck disable=SC1091
. shunit2
