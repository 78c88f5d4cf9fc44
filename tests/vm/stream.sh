# tests/vm/stream.sh: what the two-guest keeper suites that stream with
# ccm-stream share (test_links.sh, test_freeze.sh). Source it after
# tests/vm/lib.sh and before tests/vm/suite.sh: it sets LAB_ADD, which
# suite.sh's initramfs takes. Set SAVE_TO=DIR first to keep the guests'
# files (save_share).
# shellcheck shell=bash disable=SC2154  # t comes from common.sh

STREAM=$VM_TOP/build/ccm-stream
# The stream client comes with tests/links/stream.c (its own Makefile
# target); build it when it is not there yet, as suite.sh does ccm-early.
[ -x "$STREAM" ] || (cd "$VM_TOP" && make build/ccm-stream >&2) || true
# shellcheck disable=SC2034  # LAB_ADD: suite.sh reads it
if [ -x "$STREAM" ]; then
	LAB_ADD=(--add "$STREAM:/usr/bin/ccm-stream")
else
	LAB_ADD=()
fi

# wait_file FILE SECS: FILE exists (the guests write into the share); 1 if
# a guest ended first or SECS passed.
wait_file() {
	local end=$((SECONDS + $2))
	while [ ! -e "$1" ]; do
		[ $SECONDS -lt "$end" ] || return 1
		_vm_running || [ -e "$1" ] || return 1
		sleep 0.05
	done
}

# res ROLE KEY: a guest's result value ("KEY VALUE" lines in ROLE.res).
res() { sed -n "s/^$2 //p" "$t/share/$1.res" 2>/dev/null | head -1; }

# field LINE KEY: KEY=VALUE's value in a ccm-stream summary line.
field() { printf '%s\n' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }

# save_share: shunit2 removes $t at the end; SAVE_TO=DIR keeps the
# guests' files.
save_share() {
	[ -z "${SAVE_TO:-}" ] || { mkdir -p "$SAVE_TO" && cp -a "$t/share/." "$SAVE_TO/"; }
}

# show_logs: the guests' logs on stderr (a run that stopped early).
show_logs() {
	local f
	save_share
	for f in "$t"/share/*.log "$t"/share/*.out "$t"/share/*.err "$t"/share/*.trace \
		"$t"/share/*.res; do
		[ -s "$f" ] || continue
		echo "---- $f ----"
		tail -n 40 "$f"
	done >&2
}
