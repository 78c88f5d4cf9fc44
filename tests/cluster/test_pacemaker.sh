#!/usr/bin/env bash
# The OCF resource agent ocf:ccm:ccm (handoff/ocf/ccm) with a real ccm-early
# pair and a real Pacemaker.  Two keepers on this machine, each a node of
# its own ($CCM_CONF_DIR, $CCM_RUN_DIR, as in test_instances.sh), instance
# "pair", joined by two links over loopback (TCP ports $p0 and $p1):
#
#   A (id 1, 127.0.0.2)  instance pair  <->  B instance pair  (id 2, 127.0.0.3)
#
# A link is cut with nftables (its packets dropped, in a table of this
# suite's own) to make the pair degraded.  The agent runs on A:
#
# - ocf-tester (resource-agents) passes on it;
# - validate-all refuses what it must, with the OCF exit codes;
# - by hand, with an attrd_updater stand-in that records what it is told,
#   it publishes every state: connected, degraded, partner lost, keeper
#   terminated, keeper killed (stale), no keeper ever;
# - in a one-node Pacemaker cluster that the test starts itself (corosync -f
#   with a corosync.conf of the test's own, then pacemakerd; no systemd), as
#   a clone with node-health-strategy=migrate-on-red: the node attributes
#   ccm-partner, ccm-links-up and #health-ccm follow the pair (green,
#   yellow, red, green again), and a Dummy resource leaves the node while
#   it is red and comes back when it is green.
#
# The cluster test writes outside the test's directory, and puts back what
# it found: the agent in /usr/lib/ocf/resource.d/ccm/ccm, the CIB in
# /var/lib/pacemaker/cib, Pacemaker's and corosync's other state
# (/var/lib/pacemaker/pengine, /var/lib/corosync, /run/crm, /dev/shm/qb-*).
# It refuses to run when a corosync or pacemakerd is already running.
# /etc/corosync/corosync.conf is not touched (corosync -c).

# Variables set by common.sh (t, port) and by eval (pid_a_pair, ...):
# shellcheck disable=SC2154
set -u
# shellcheck source-path=SCRIPTDIR source=../lib/common.sh
. "$(dirname "$0")/../lib/common.sh"
# shellcheck source-path=SCRIPTDIR source=../lib/nftcut.sh
. "$(dirname "$0")/../lib/nftcut.sh"

topdir=$(cd "$(dirname "$0")/../.." && pwd)
AGENT="${topdir}/handoff/ocf/ccm"
OCF_DIR=/usr/lib/ocf/resource.d/ccm
NFT_TABLE=ccm_pcmk_$$
declare -A addr=([a]=127.0.0.2 [b]=127.0.0.3)
declare -A id=([a]=1 [b]=2)
suite_error=""
# Where this suite's cluster keeps its files: readable by hacluster, which
# runs most of Pacemaker's daemons (shunit2's directory is root's only).
pcmk_dir=""
cluster_up=no

oneTimeSetUp() {
	local c
	[ -x "${CCM}" ] || suite_error="no binary at ${CCM}; run make dev"
	[ -x "${AGENT}" ] || suite_error="${suite_error:+$suite_error; }no executable agent at ${AGENT}"
	for c in ocf-tester xmllint attrd_updater corosync pacemakerd crm_mon cibadmin \
		crm_attribute crm_resource nft; do
		command -v "$c" >/dev/null ||
			suite_error="${suite_error:+$suite_error; }no $c: run scripts/deps.sh test"
	done
	[ "$(id -u)" -eq 0 ] || suite_error="${suite_error:+$suite_error; }not root: Pacemaker, corosync and nft need root"
	[ -z "${suite_error}" ] || return 0
	# The cut (tests/lib/nftcut.sh), as in tests/links/test_links.sh.
	nftcut_create "${NFT_TABLE}" || suite_error="cannot create nftables table ${NFT_TABLE}"
}

# Also run by shunit2's exit trap.
oneTimeTearDown() {
	cluster_stop
	nft delete table inet "${NFT_TABLE}" 2>/dev/null || true
}

setUp() {
	ccm_begin_test
	p0=$port
	p1=$((port + 10000))
	conf a b
	conf b a
	mkdir -p "$t/rsctmp" "$t/attrs" "$t/bin"
}

# PACEMAKER_KEEP=DIR keeps each test's directory (logs, outputs; the
# cluster's logs too) under DIR.
tearDown() {
	nft flush set inet "${NFT_TABLE}" cut 2>/dev/null
	cluster_stop
	if [ -n "${PACEMAKER_KEEP:-}" ] && [ -d "${t:-}" ]; then
		mkdir -p "${PACEMAKER_KEEP}" && cp -r "$t" "${PACEMAKER_KEEP}/"
	fi
	ccm_end_test
}

suite_ok() {
	[ -z "${suite_error}" ] || { fail "${suite_error}"; return 1; }
}

# --- the pair ------------------------------------------------------------------

# conf NODE PARTNER: NODE's /etc/ccm/pair.conf, two links, one client.
# Heartbeats slow enough for sanitizer keepers beside a starting cluster
# on two cores: a link is down after 500 ms without an answer, the
# partner lost after 1 s.
conf() {
	local n=$1 p=$2 etc=$t/$1/etc
	mkdir -p "$etc"
	cat >"$etc/pair.conf" <<-EOF
		# $n's instance pair: towards node $p
		node-id = ${id[$n]}
		partner-node = ${id[$p]}
		link = ${addr[$n]}:$p0=${addr[$p]}:$p0
		link = ${addr[$n]}:$p1=${addr[$p]}:$p1
		heartbeat-ms = 100
		heartbeat-misses = 10
		link-heartbeat-ms = 100
		link-misses = 5
		link-damp-ms = 300
	EOF
	make_client "$etc/pair.clients.d" fmon 1 64K
}

# on NODE COMMAND...: run COMMAND as on node NODE (its /etc/ccm, /run/ccm).
on() {
	local n=$1
	shift
	CCM_CONF_DIR=$t/$n/etc CCM_RUN_DIR=$t/$n/run "$@"
}

# up NODE: start the node's keeper of instance pair, as ccm-early@pair does.
up() {
	local n=$1
	env CCM_CONF_DIR="$t/$n/etc" CCM_RUN_DIR="$t/$n/run" \
		"${CCM}" connect --instance pair --foreground -v >>"$t/$n.log" 2>&1 </dev/null &
	eval "pid_$n=$!"
	pids="$pids $!"
}

state() {  # NODE [KEY]
	[ -f "$t/$1/run/pair/state" ] && state_get "$t/$1/run/pair" "${2:-CCM_STATE}" 2>/dev/null
}

pair_up() {  # both connected, both links up on both nodes
	local n
	for n in a b; do
		[ "$(state "$n")" = connected ] && [ "$(state "$n" CCM_LINK_0_STATE)" = up ] &&
			[ "$(state "$n" CCM_LINK_1_STATE)" = up ] || return 1
	done
}

start_pair() {
	up a
	up b
	wait_for 20 pair_up || {
		fail "the pair never came up: $(tail -n 3 "$t/a.log" "$t/b.log")"
		return 1
	}
}

cut_link1() {
	nft add element inet "${NFT_TABLE}" cut "{ $p1 }" || fail "nft: cut link 1"
}

restore_link1() {
	nft delete element inet "${NFT_TABLE}" cut "{ $p1 }" || fail "nft: restore link 1"
}

# The state word `ccm-early status --json` gives for A's instance.
status_word() {
	on a "${CCM}" status --json --instance pair 2>/dev/null |
		sed -n 's/^"state":"\([a-z]*\)".*/\1/p'
}

a_lost_b() {
	[ "$(status_word)" != connected ]
}

is() {  # NODE STATE: the node's handoff says STATE
	[ "$(state "$1")" = "$2" ]
}

# --- the agent by hand -----------------------------------------------------------

# agent ACTION [VAR=VALUE...]: the agent as Pacemaker runs it, for A's
# instance pair (its CCM_CONF_DIR and CCM_RUN_DIR), its state under
# $t/rsctmp; the variables are added (OCF_RESKEY_...).  Output: $t/agent.out,
# exit status also in $arc (for messages that read agent.out).
agent() {
	local action=$1
	shift
	env CCM_CONF_DIR="$t/a/etc" CCM_RUN_DIR="$t/a/run" OCF_ROOT=/usr/lib/ocf \
		OCF_RESOURCE_INSTANCE=ccm HA_RSCTMP="$t/rsctmp" OCF_RESKEY_CRM_meta_timeout=20000 \
		OCF_RESKEY_instance=pair OCF_RESKEY_ccm_early="${CCM}" OCF_RESKEY_dampen=1s \
		"$@" "${AGENT}" "$action" >"$t/agent.out" 2>&1
	arc=$?
	return "$arc"
}

# An attrd_updater that keeps each attribute in a file $t/attrs/NAME and
# logs its calls in $t/attrs.calls: first in the agent's PATH.
stand_in() {
	cat >"$t/bin/attrd_updater" <<-EOF
		#!/bin/sh
		n= v= op=
		while [ \$# -gt 0 ]; do
			case \$1 in
			-n) n=\$2; shift ;;
			-U | -B) op=set v=\$2; shift ;;
			-D) op=del ;;
			-d) shift ;;
			esac
			shift
		done
		echo "\$op \$n \$v" >>"$t/attrs.calls"
		case \$op in
		set) printf '%s\n' "\$v" >"$t/attrs/\$n" ;;
		del) rm -f "$t/attrs/\$n" ;;
		esac
	EOF
	chmod +x "$t/bin/attrd_updater"
}

attrs() {  # the three attributes as the stand-in holds them: STATE LINKS HEALTH
	local f v out=""
	for f in ccm-partner ccm-links-up '#health-ccm'; do
		v=$(cat "$t/attrs/$f" 2>/dev/null) || v=-
		out="$out${out:+ }$v"
	done
	printf '%s' "$out"
}

# monitor_until WANT: run monitor (with the stand-in) until the attributes
# are WANT, up to 10 s; then assert them and monitor's exit status.
monitor_until() {
	local want=$1 rc
	mon_is() {
		agent monitor PATH="$t/bin:$PATH"
		rc=$?
		[ "$rc" = 0 ] && [ "$(attrs)" = "$want" ]
	}
	mon_is || wait_for 10 mon_is
	assertEquals "monitor's exit status: $(cat "$t/agent.out")" 0 "$rc"
	assertEquals "attributes (partner links-up health)" "$want" "$(attrs)"
}

test_ocf_tester_passes_against_a_running_pair() {
	suite_ok || return
	local rc shellcheck_out
	start_pair || return
	# Outside a cluster: attrd_updater cannot connect, which the agent logs;
	# everything else is as in a cluster.  (ocf-tester also runs the agent's
	# meta-data as nobody: the checkout must be readable by anyone.)
	on a env HA_RSCTMP="$t/rsctmp" ocf-tester -v -n ccm -o instance=pair \
		-o ccm_early="${CCM}" -o dampen=1s "${AGENT}" >"$t/ocf-tester.out" 2>&1
	rc=$?
	assertEquals "ocf-tester's exit status: $(cat "$t/ocf-tester.out")" 0 "$rc"
	assertContains "ocf-tester: passed" "$(cat "$t/ocf-tester.out")" "${AGENT} passed all tests"
	assertNotContains "ocf-tester: no error" "$(cat "$t/ocf-tester.out")" "* rc="
	# What it would have published, from the log of the failed attrd_updater.
	assertContains "it read the pair: connected" "$(cat "$t/ocf-tester.out")" "ccm-partner=connected"
	assertContains "both links up" "$(cat "$t/ocf-tester.out")" "ccm-links-up=2"
	assertContains "green" "$(cat "$t/ocf-tester.out")" "#health-ccm=green"
	# And with a state_dir instead of an instance.
	HA_RSCTMP=$t/rsctmp ocf-tester -n ccm2 -o state_dir="$t/a/run/pair" -o ccm_early="${CCM}" \
		"${AGENT}" >"$t/ocf-tester2.out" 2>&1
	rc=$?
	assertEquals "ocf-tester with state_dir: $(cat "$t/ocf-tester2.out")" 0 "$rc"
	assertEquals "nothing left in HA_RSCTMP" "" "$(ls "$t/rsctmp")"
	assertNotContains "no sanitizer report in the agent's runs" \
		"$(cat "$t/ocf-tester.out" "$t/ocf-tester2.out")" Sanitizer
	shellcheck_out=$(shellcheck -s sh "${AGENT}" 2>&1)
	assertEquals "shellcheck -s sh handoff/ocf/ccm" "" "${shellcheck_out}"
}

test_validate_all_and_the_ocf_exit_codes() {
	suite_ok || return
	local v
	agent validate-all
	assertEquals "validate-all, instance pair: $(cat "$t/agent.out")" 0 "$arc"
	agent meta-data
	assertEquals "meta-data" 0 "$arc"
	# As ocf-tester checks it: the DTD is found beside the standard input.
	assertTrue "meta-data is valid against ra-api-1.dtd" \
		"(cd /usr/share/resource-agents && xmllint --noout --valid - <'$t/agent.out')"
	for v in instance state_dir name ccm_early dampen; do
		assertContains "meta-data: parameter $v" "$(cat "$t/agent.out")" "<parameter name=\"$v\""
	done
	assertContains "meta-data: monitor every 10 s" "$(cat "$t/agent.out")" \
		'<action name="monitor" timeout="30s" interval="10s"'
	# OCF_ERR_CONFIGURED (6), with the reason.
	for v in Bad-Name 9lives a23456789012345678901234567890xy 'pair;x' ../etc $'pair\nx'; do
		agent validate-all OCF_RESKEY_instance="$v"
		assertEquals "instance '$v': $(cat "$t/agent.out")" 6 "$arc"
	done
	assertContains "the reason" "$(cat "$t/agent.out")" "is not a name"
	agent validate-all OCF_RESKEY_instance=a23456789012345678901234567890x
	assertEquals "a name of 31: $(cat "$t/agent.out")" 0 "$arc"
	agent validate-all OCF_RESKEY_state_dir=run/ccm
	assertEquals "a relative state_dir: $(cat "$t/agent.out")" 6 "$arc"
	for v in 1ccm 'c m' 'ccm#' -ccm $'ccm\nx'; do
		agent validate-all OCF_RESKEY_name="$v"
		assertEquals "name '$v': $(cat "$t/agent.out")" 6 "$arc"
	done
	for v in soon 5x -1 1.5s s $'5s\nx'; do
		agent validate-all OCF_RESKEY_dampen="$v"
		assertEquals "dampen '$v': $(cat "$t/agent.out")" 6 "$arc"
	done
	for v in 0 5 5s 500ms 1m; do
		agent validate-all OCF_RESKEY_dampen="$v"
		assertEquals "dampen '$v': $(cat "$t/agent.out")" 0 "$arc"
	done
	# OCF_ERR_INSTALLED (5): no ccm-early, as a path or a name.
	agent validate-all OCF_RESKEY_ccm_early=/nonexistent/ccm-early
	assertEquals "ccm_early missing: $(cat "$t/agent.out")" 5 "$arc"
	agent validate-all OCF_RESKEY_ccm_early=no-such-ccm-early
	assertEquals "ccm_early not in PATH nor /usr/sbin: $(cat "$t/agent.out")" 5 "$arc"
	agent start OCF_RESKEY_ccm_early=/nonexistent/ccm-early
	assertEquals "start without ccm-early: $(cat "$t/agent.out")" 5 "$arc"
	# A probe on a node without ccm-early: not running (7), not an error.
	agent monitor OCF_RESKEY_ccm_early=/nonexistent/ccm-early OCF_RESKEY_CRM_meta_interval=0
	assertEquals "probe without ccm-early: $(cat "$t/agent.out")" 7 "$arc"
	agent stop
	assertEquals "stop of a stopped resource" 0 "$arc"
	agent monitor
	assertEquals "monitor of a stopped resource" 7 "$arc"
	for v in promote demote notify reload migrate_to frobnicate; do
		agent "$v"
		assertEquals "$v: OCF_ERR_UNIMPLEMENTED" 3 "$arc"
	done
}

# Every state the agent publishes, through the attrd_updater stand-in.
test_monitor_publishes_each_state() {
	suite_ok || return
	local rc
	stand_in
	# No keeper ever ran (the unnamed instance of an empty $CCM_RUN_DIR).
	agent start PATH="$t/bin:$PATH" OCF_RESKEY_instance= CCM_RUN_DIR="$t/nothing"
	assertEquals "start, no keeper: $(cat "$t/agent.out")" 0 "$arc"
	assertEquals "no keeper: none, 0, red" "none 0 red" "$(attrs)"
	assertContains "start set the dampening too (-B)" "$(cat "$t/attrs.calls")" "set ccm-partner none"
	start_pair || return
	monitor_until "connected 2 green"
	cut_link1
	monitor_until "connected 1 yellow"
	restore_link1
	monitor_until "connected 2 green"
	# The partner dies.
	kill -9 "${pid_b}"
	wait_exit "${pid_b}" 5
	wait_for 10 a_lost_b
	assertNotEquals "A's keeper lost its partner" connected "$(status_word)"
	monitor_until "$(status_word) 0 red"
	# A's keeper stops: terminated.
	on a "${CCM}" stop --instance pair >"$t/stop.out" 2>&1
	rc=$?
	assertEquals "ccm-early stop: $(cat "$t/stop.out")" 0 "$rc"
	wait_exit "${pid_a}" 10
	monitor_until "terminated 0 red"
	# A's keeper is killed: its file is stale.
	up a
	wait_for 10 is a handshaking
	kill -9 "${pid_a}"
	wait_exit "${pid_a}" 5
	monitor_until "stale 0 red"
	# Stop deletes them, and the state file.
	agent stop PATH="$t/bin:$PATH"
	assertEquals "stop: $(cat "$t/agent.out")" 0 "$arc"
	assertEquals "stop deleted the attributes" "- - -" "$(attrs)"
	assertEquals "stop deleted its state file" "" "$(ls "$t/rsctmp")"
	agent monitor PATH="$t/bin:$PATH"
	assertEquals "monitor after stop" 7 "$arc"
	assert_no_sanitizer_report
}

# --- the cluster -------------------------------------------------------------------

# Paths the cluster creates or changes, each put back by cluster_stop.
pcmk_state_dirs="/var/lib/pacemaker/cib /var/lib/pacemaker/pengine /var/lib/corosync"

cluster_log() {  # the end of the cluster's logs, for a failure message
	tail -n "${1:-15}" "${pcmk_dir}/corosync.log" "${pcmk_dir}/pacemaker.log" 2>&1
}

# cluster_start: corosync and Pacemaker on this one node, in the
# foreground, as children of the test; the CIB seeded with a short
# dc-deadtime (the one-node election otherwise waits 20 s).
cluster_start() {
	local d n
	if pgrep -x corosync >/dev/null || pgrep -x pacemakerd >/dev/null; then
		fail "a corosync or pacemakerd already runs on this machine: not touching it"
		return 1
	fi
	if ! pcmk_dir=$(mktemp -d /tmp/ccm-pcmk.XXXXXX) || ! chmod 0755 "${pcmk_dir}"; then
		fail "mktemp"
		return 1
	fi
	node=$(uname -n)
	# What is there now, to be put back.
	mkdir -p "${pcmk_dir}/backup"
	pcmk_owner=$(stat -c %u:%g /var/lib/pacemaker)
	[ -d /run/crm ] && run_crm_was=yes || run_crm_was=no
	[ -d "${OCF_DIR}" ] && ocf_dir_was=yes || ocf_dir_was=no
	ls /dev/shm >"${pcmk_dir}/shm.before"
	cluster_up=yes
	for d in ${pcmk_state_dirs}; do
		n=${pcmk_dir}/backup/$(echo "$d" | tr / _)
		mkdir -p "$n" "$d"
		find "$d" -mindepth 1 -maxdepth 1 -exec mv -t "$n" {} +
	done
	if [ -e "${OCF_DIR}/ccm" ]; then
		mv "${OCF_DIR}/ccm" "${pcmk_dir}/backup/agent"
	fi
	install -D -m 0755 "${AGENT}" "${OCF_DIR}/ccm"

	cat >"${pcmk_dir}/corosync.conf" <<-EOF
		totem {
			version: 2
			cluster_name: ccmtest
			transport: knet
			crypto_cipher: none
			crypto_hash: none
		}
		logging {
			to_stderr: yes
			to_logfile: no
			to_syslog: no
			timestamp: on
		}
		quorum {
			provider: corosync_votequorum
			wait_for_all: 0
		}
		nodelist {
			node {
				name: ${node}
				nodeid: 1
				ring0_addr: 127.0.0.1
			}
		}
	EOF
	if ! { cibadmin --empty >"${pcmk_dir}/cib.xml" &&
		CIB_file=${pcmk_dir}/cib.xml crm_attribute -t crm_config -n dc-deadtime -v 2s &&
		install -o hacluster -g haclient -m 0600 "${pcmk_dir}/cib.xml" \
			/var/lib/pacemaker/cib/cib.xml; }; then
		fail "cannot seed the CIB"
		return 1
	fi

	corosync -f -c "${pcmk_dir}/corosync.conf" >"${pcmk_dir}/corosync.log" 2>&1 </dev/null &
	corosync_pid=$!
	if ! wait_for 15 grep -q "Completed service synchronization" "${pcmk_dir}/corosync.log"; then
		fail "corosync did not start: $(cluster_log 30)"
		return 1
	fi
	# Pacemaker's daemons inherit this environment and pass it on to the
	# agents: HA_RSCTMP keeps their state files here, ASAN_OPTIONS reaches
	# the sanitizer build of ccm-early that the agent runs.  Pacemaker sets
	# the agents' HA_LOGFILE to PCMK_logfile: their ocf_log lines are in
	# pacemaker.log too.
	env PCMK_logfile="${pcmk_dir}/pacemaker.log" PCMK_logfacility=none \
		HA_RSCTMP="${pcmk_dir}/rsctmp" pacemakerd >"${pcmk_dir}/pacemakerd.out" 2>&1 </dev/null &
	pacemakerd_pid=$!
	if ! wait_for 60 node_online; then
		fail "Pacemaker's node never came online: $(crm_mon -1 2>&1) $(cluster_log 30)"
		return 1
	fi
	pcmk_children=$(pgrep -P "${pacemakerd_pid}" | tr '\n' ' ')
}

node_online() {
	crm_mon -1 2>/dev/null | grep -qF "Online: [ ${node} ]"
}

# cluster_stop: pacemakerd (which stops the resources and its daemons),
# then corosync; whatever is left of them killed; every file put back.
cluster_stop() {
	local d n p
	[ "${cluster_up}" = yes ] || return 0
	cluster_up=no
	if [ -n "${pacemakerd_pid:-}" ]; then
		kill -TERM "${pacemakerd_pid}" 2>/dev/null
		wait_exit "${pacemakerd_pid}" 60 ||
			echo "# pacemakerd did not stop within 60 s: killed" >&2
		for p in ${pcmk_children:-}; do
			kill -9 "$p" 2>/dev/null && echo "# killed a pacemaker daemon left behind: $p" >&2
		done
	fi
	if [ -n "${corosync_pid:-}" ]; then
		kill -TERM "${corosync_pid}" 2>/dev/null
		wait_exit "${corosync_pid}" 20 || echo "# corosync did not stop within 20 s: killed" >&2
	fi
	pacemakerd_pid="" corosync_pid="" pcmk_children=""
	for d in ${pcmk_state_dirs}; do
		n=${pcmk_dir}/backup/$(echo "$d" | tr / _)
		find "$d" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
		[ -d "$n" ] && find "$n" -mindepth 1 -maxdepth 1 -exec mv -t "$d" {} +
	done
	chown "${pcmk_owner}" /var/lib/pacemaker
	[ "${run_crm_was}" = yes ] || rm -rf /run/crm
	# libqb's shared memory of the daemons' connections, if any is left.
	for n in /dev/shm/qb-*; do
		[ -e "$n" ] || continue
		grep -qxF -- "${n#/dev/shm/}" "${pcmk_dir}/shm.before" || rm -rf "$n"
	done
	rm -f "${OCF_DIR}/ccm"
	[ -e "${pcmk_dir}/backup/agent" ] && mv "${pcmk_dir}/backup/agent" "${OCF_DIR}/ccm"
	[ "${ocf_dir_was}" = yes ] || rmdir "${OCF_DIR}" 2>/dev/null
	# The logs, into the test's directory (which shunit2 removes).
	cp "${pcmk_dir}"/*.log "$t/" 2>/dev/null
	rm -rf "${pcmk_dir}"
}

# cib_attr NAME: the node attribute NAME as the CIB holds it (what the
# scheduler sees, after attrd's dampening).
cib_attr() {
	crm_attribute -N "${node}" -l reboot -n "$1" -G -q 2>/dev/null
}

cluster_attrs() {  # STATE LINKS HEALTH
	local f v out=""
	for f in ccm-partner ccm-links-up '#health-ccm'; do
		v=$(cib_attr "$f") || v=-
		out="$out${out:+ }$v"
	done
	printf '%s' "$out"
}

# cluster_attrs_become WANT [SECONDS]: the CIB's attributes are WANT within
# SECONDS (default 15: a monitor interval of 2 s and a dampening of 1 s).
attrs_are() {
	[ "$(cluster_attrs)" = "$1" ]
}

# Deleted: gone, or (attrd_updater -D) empty.
attrs_gone() {
	[ "$(cluster_attrs)" = "- - -" ] || [ "$(cluster_attrs)" = "  " ]
}

not_running_here() {
	! running_here "$1"
}

cluster_attrs_become() {
	wait_for "${2:-15}" attrs_are "$1"
	assertEquals "the node attributes (partner links-up health): $(crm_mon -1 -A 2>&1)" \
		"$1" "$(cluster_attrs)"
}

running_here() {  # RESOURCE: running on this node
	crm_resource --locate -r "$1" 2>/dev/null | grep -q "is running on: ${node}"
}

test_a_pacemaker_cluster_sees_the_pair() {
	suite_ok || return
	local begin want out rc
	begin=$(date +%s)
	start_pair || return
	cluster_start || return
	crm_attribute -t crm_config -n stonith-enabled -v false &&
		crm_attribute -t crm_config -n node-health-strategy -v migrate-on-red
	assertEquals "cluster options set" 0 $?
	# The agent as a clone, monitoring A's instance every 2 s; a resource
	# on a red node is moved away, but not the agent itself.
	cibadmin -C -o resources -X "
		<clone id=\"ccm-clone\">
		  <meta_attributes id=\"ccm-clone-meta\">
		    <nvpair id=\"ccm-clone-allow-unhealthy\" name=\"allow-unhealthy-nodes\" value=\"true\"/>
		  </meta_attributes>
		  <primitive id=\"ccm\" class=\"ocf\" provider=\"ccm\" type=\"ccm\">
		    <instance_attributes id=\"ccm-params\">
		      <nvpair id=\"ccm-state_dir\" name=\"state_dir\" value=\"$t/a/run/pair\"/>
		      <nvpair id=\"ccm-ccm_early\" name=\"ccm_early\" value=\"${CCM}\"/>
		      <nvpair id=\"ccm-dampen\" name=\"dampen\" value=\"1s\"/>
		    </instance_attributes>
		    <operations>
		      <op id=\"ccm-monitor\" name=\"monitor\" interval=\"2s\" timeout=\"20s\"/>
		    </operations>
		  </primitive>
		</clone>" >"$t/cibadmin.out" 2>&1
	rc=$?
	assertEquals "cibadmin: the clone: $(cat "$t/cibadmin.out")" 0 "$rc"
	cibadmin -C -o resources -X "
		<primitive id=\"dummy\" class=\"ocf\" provider=\"pacemaker\" type=\"Dummy\">
		  <instance_attributes id=\"dummy-params\">
		    <nvpair id=\"dummy-state\" name=\"state\" value=\"${pcmk_dir}/dummy.state\"/>
		  </instance_attributes>
		  <operations>
		    <op id=\"dummy-monitor\" name=\"monitor\" interval=\"2s\" timeout=\"20s\"/>
		  </operations>
		</primitive>" >"$t/cibadmin.out" 2>&1
	rc=$?
	assertEquals "cibadmin: the dummy: $(cat "$t/cibadmin.out")" 0 "$rc"

	# Connected on both links: green.
	cluster_attrs_become "connected 2 green" 20
	out=$(crm_mon -1 -A 2>&1)
	assertContains "crm_mon -A shows it: $out" "$out" "ccm-partner"
	assertContains "crm_mon: the clone started" "$out" "Started: [ ${node} ]"
	wait_for 10 running_here dummy
	assertTrue "the dummy runs: $(crm_mon -1 2>&1)" "running_here dummy"
	assertEquals "attrd holds the same" 'name="ccm-partner" host="'"${node}"'" value="connected"' \
		"$(attrd_updater -Q -n ccm-partner 2>&1)"

	# A link cut: degraded, yellow; the dummy stays.
	cut_link1
	cluster_attrs_become "connected 1 yellow"
	assertTrue "yellow: the dummy stays" "running_here dummy"
	restore_link1
	cluster_attrs_become "connected 2 green"

	# The partner dies: red, and the dummy leaves the node (it has no other).
	kill -9 "${pid_b}"
	wait_exit "${pid_b}" 5
	wait_for 10 a_lost_b
	want=$(status_word)
	assertNotEquals "A's keeper lost its partner" connected "$want"
	cluster_attrs_become "$want 0 red"
	wait_for 15 not_running_here dummy
	assertFalse "red: the dummy was stopped: $(crm_mon -1 2>&1)" "running_here dummy"
	assertTrue "red: the agent itself still runs (allow-unhealthy-nodes)" "running_here ccm"

	# The partner returns: green, the dummy back.
	up b
	wait_for 20 pair_up || fail "the pair did not come back: $(tail -n 3 "$t/b.log")"
	cluster_attrs_become "connected 2 green"
	wait_for 15 running_here dummy
	assertTrue "green again: the dummy runs: $(crm_mon -1 2>&1)" "running_here dummy"

	# Nothing failed along the way; the agent's state file is in the
	# HA_RSCTMP Pacemaker was given.
	out=$(crm_mon -1 2>&1)
	assertNotContains "no failed action: $out" "$out" "Failed Resource Actions"
	assertEquals "the agent's state file" "ccm-ccm.started" "$(ls "${pcmk_dir}/rsctmp" 2>&1)"
	out=$(grep -F ' ccm(ccm' "${pcmk_dir}/pacemaker.log")
	assertEquals "the agent logged no error nor warning" "" "$(echo "$out" | grep -E 'ERROR|WARN|CRIT')"
	assertContains "the agent logged each change: $out" "$out" \
		"INFO: ccm: connected, 1 of 2 links up, yellow (was connected 2 green)"

	# Stopping the clone deletes the attributes.
	crm_resource -r ccm-clone --meta -p target-role -v Stopped >/dev/null 2>&1
	wait_for 15 attrs_gone
	assertTrue "stopped: the attributes are gone: '$(cluster_attrs)'" attrs_gone
	assertEquals "stopped: its state file is gone" "" "$(ls "${pcmk_dir}/rsctmp" 2>&1)"
	assertNotContains "no sanitizer report in Pacemaker's log" \
		"$(cat "${pcmk_dir}/pacemaker.log")" Sanitizer
	assert_no_sanitizer_report
	echo "# the cluster test took $(($(date +%s) - begin)) s" >&2
}

# shellcheck disable=SC1091
. shunit2
