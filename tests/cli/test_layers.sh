#!/usr/bin/env bash
# The house's shape (scripts/check-layers.sh): calls between lib/'s files
# point down the layers (cli -> daemon -> state -> conf -> tp -> proto,
# client -> base) and never go round, read from the dev build's objects,
# and so do their #include lines.  A tree planted with an upward call, an
# upward include and a cycle proves the check can fail.
set -u
# shellcheck disable=SC2154  # t comes from common.sh
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
check=$top/scripts/check-layers.sh

setUp() {
	ccm_begin_test
}

tearDown() {
	ccm_end_test
}

test_lib_calls_point_down_and_never_go_round() {
	[ -d "$top/build/dev/lib/daemon" ] || { fail "no dev objects: run make dev"; return; }
	local out
	out=$(cd "$top" && "$check" build/dev/lib 2>&1)
	assertEquals "check-layers on lib/ ($out)" 0 $?
	assertEquals "nothing said" "" "$out"
}

# plant DIR FILE CODE: lib-like source DIR/src/FILE.c, compiled to
# DIR/obj/FILE.o.
plant() {
	mkdir -p "$(dirname "$1/src/$2")" "$(dirname "$1/obj/$2")"
	printf '%s\n' "$3" >"$1/src/$2.c"
	gcc -c -o "$1/obj/$2.o" "$1/src/$2.c"
}

test_an_upward_call_is_caught() {
	local d=$t/tree out rc
	plant "$d" base/log 'void log_line(void) {}'
	plant "$d" daemon/loop 'void log_line(void); void loop_run(void) { log_line(); }'
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	assertEquals "down only: passes ($out)" 0 $?
	plant "$d" base/log 'void loop_run(void); void log_line(void) { loop_run(); }'
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	rc=$?
	assertEquals "an upward call fails the check" 1 $rc
	assertContains "and is named" "$out" "base/log.o calls loop_run in daemon/loop.o"
}

test_an_upward_include_is_caught() {
	local d=$t/tree out rc
	plant "$d" base/log 'void log_line(void) {}'
	printf '#include "base/log.h"\n' >"$d/src/base/clock.h"
	mkdir -p "$d/src/daemon"
	printf '#include "base/log.h"\n' >"$d/src/daemon/loop.h"
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	assertEquals "includes down or within a folder: passes ($out)" 0 $?
	printf '#include "daemon/loop.h"\n' >"$d/src/base/log.h"
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	rc=$?
	assertEquals "an upward include fails the check" 1 $rc
	assertContains "and is named" "$out" 'base/log.h includes "daemon/loop.h": base may not use daemon'
}

test_a_cycle_between_files_is_caught() {
	local d=$t/tree out rc
	plant "$d" daemon/session 'void serve_x(void); void sess_y(void) { serve_x(); }'
	plant "$d" daemon/timers 'void timers_z(void) {}'
	plant "$d" daemon/serve 'void timers_z(void); void sess_y(void); void serve_x(void) { timers_z(); }'
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	assertEquals "no cycle: passes ($out)" 0 $?
	plant "$d" daemon/serve 'void timers_z(void); void sess_y(void); void serve_x(void) { sess_y(); }'
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	rc=$?
	assertEquals "a cycle fails the check" 1 $rc
	assertContains "and is named" "$out" "daemon/serve.o <-> daemon/session.o"
	# An object whose source has gone (a stale build) does not count.
	rm "$d/src/daemon/serve.c"
	out=$("$check" "$d/obj" "$d/src" 2>&1)
	assertEquals "a stale object is not read ($out)" 0 $?
}

. shunit2
