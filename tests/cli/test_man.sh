#!/usr/bin/env bash
# The man pages (doc/*.scd, which make turns into build/man/NAME.SECTION,
# MAN_DIR here): each renders with man -l, without a warning, and says
# what the code has.  Every long option that a program's --help prints is
# in that program's page, with an entry of its own: each ccm-early
# command's in the command's part of COMMANDS, ccm-fmon's and
# ccm-nvmirror's under OPTIONS.  So is every ccm-early command; every key
# of the configuration's table (lib/conf/config.c) has its entry in
# ccm-early.conf(5), every rd.ccm argument that parse-ccm.sh accepts its
# entry in dracut.ccm(7); every function and event type of ccm.h is in
# libccm(3).
# The programs are $CCM (default build/dev/ccm-early) and the ccm-fmon and
# ccm-nvmirror beside it.  A page with an option taken out proves that the
# check can fail.
set -u
# shellcheck disable=SC2154  # t comes from common.sh
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
: "${MAN_DIR:=$top/build/man}"
bindir=$(cd "$(dirname "${CCM}")" 2>/dev/null && pwd)
FMON="${bindir}/ccm-fmon"
NVMIRROR="${bindir}/ccm-nvmirror"
PAGES="ccm-early.8 ccm-early.conf.5 ccm-fmon.8 ccm-nvmirror.8 ccm-state.1 dracut.ccm.7 libccm.3"

setUp() {
	ccm_begin_test
}

tearDown() {
	ccm_end_test
}

# render PAGE-FILE: the page as man shows it, 80 columns, in plain ASCII,
# without hyphenation, and with the lines that groff broke after a hyphen
# ("--heartbeat-" / "misses") joined again, so that every word is whole.
# Status: man's; its stderr (groff's warnings, -ww: all of them) in
# $t/man.err.
render() {
	local rc
	LC_ALL=C MANROFFOPT='-rHY=0 -ww' MANWIDTH=80 man -l "$1" >"$t/man.raw" 2>"$t/man.err"
	rc=$?
	col -b <"$t/man.raw" | sed -e ':a' -e '/[[:alnum:]]-$/{N;s/-\n[[:space:]]*/-/;ba' -e '}'
	return "$rc"
}

# The extended regular expression for WORD standing alone: not part of a
# longer name ("--link" in "--link-policy", "rd.ccm" in "rd.ccm.node").
# The words here are names: of all their characters only '.' needs escaping.
word_re() {
	printf '(^|[^[:alnum:]_.-])%s([^[:alnum:]_.-]|[.]([^[:alnum:]]|$)|$)' "${1//./[.]}"
}

# missing_from TEXT-FILE WORD...: the words that TEXT-FILE lacks, one a line.
missing_from() {
	local f=$1 w
	shift
	for w in "$@"; do
		grep -qE -- "$(word_re "$w")" "$f" || printf '%s\n' "$w"
	done
}

# section TEXT-FILE HEADING: the lines under HEADING ("OPTIONS", or a
# subsection's "   connect") up to the next heading of its level or above.
section() {
	awk -v h="$2" '
		found && (/^[A-Z]/ || (subsec && /^   [^ ]/)) { exit }
		$0 == h { found = 1; subsec = (h ~ /^   /); next }
		found { print }' "$1"
}

# no_entry_in TEXT-FILE WORD...: the words that have no entry of their own
# in TEXT-FILE (a line that starts with the word, as "       --port N",
# "       -v, --verbose" or "       rd.ccm.node=N" do), one a line.
no_entry_in() {
	local f=$1 w e
	shift
	for w in "$@"; do
		e=${w//./[.]}
		grep -qE -- "^[[:space:]]+(-[a-z], )?$e([=[:space:],]|$)" "$f" || printf '%s\n' "$w"
	done
}

# long_options PROGRAM ARGS...: opts is every long option that
# PROGRAM ARGS --help prints, defined those that it lists as its own
# ("  --port N  the port", "  -v, --verbose  say more"); a failing --help
# fails the test.
long_options() {
	local out
	opts='' defined=''
	if ! out=$("$@" --help 2>&1); then
		fail "'$* --help' failed: $out"
		return 1
	fi
	opts=$(printf '%s\n' "$out" | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u)
	defined=$(printf '%s\n' "$out" |
		sed -nE 's/^[[:space:]]+(-[a-z], )?(--[a-z][a-z0-9-]*).*/\2/p' | sort -u)
}

# The commands that 'ccm-early --help' lists.
ccm_commands() {
	"${CCM}" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# page NAME: text is the file that holds the rendered page NAME (rendered
# once per test); a page that is not there or does not render fails the
# test.
page() {
	text=$t/$1.txt
	[ -s "$text" ] && return 0
	[ -f "${MAN_DIR}/$1" ] || { fail "no ${MAN_DIR}/$1: run make man"; return 1; }
	render "${MAN_DIR}/$1" >"$text" || { fail "man -l $1 failed: $(cat "$t/man.err")"; return 1; }
}

# assert_documented PAGE WHAT WORD...: each WORD is in PAGE's text.
assert_documented() {
	local p=$1 what=$2 text
	shift 2
	page "$p" || return
	assertEquals "$what missing from $p" "" "$(missing_from "$text" "$@")"
}

# assert_entries PAGE HEADING WHAT WORD...: each WORD has its entry in
# PAGE's section HEADING.
assert_entries() {
	local p=$1 h=$2 what=$3 text
	shift 3
	page "$p" || return
	section "$text" "$h" >"$t/section.txt"
	assertTrue "$p has a section '$h'" "[ -s '$t/section.txt' ]"
	assertEquals "$what without an entry in $p's '${h#"${h%%[! ]*}"}'" "" \
		"$(no_entry_in "$t/section.txt" "$@")"
}

# --- rendering ---------------------------------------------------------------

test_every_page_renders() {
	local p name text
	for p in $PAGES; do
		name=${p%.*}
		page "$p" || continue
		assertTrue "$p renders to something" "[ -s '$text' ]"
		assertEquals "groff's warnings for $p" "" "$(cat "$t/man.err")"
		assertTrue "$p has a NAME section naming $name" \
			"grep -A1 '^NAME' '$text' | grep -qF -- '$name - '"
		for s in SYNOPSIS DESCRIPTION 'SEE ALSO'; do
			assertTrue "$p has $s" "grep -qx '$s' '$text'"
		done
	done
}

test_every_scd_source_is_a_listed_page() {
	local f n
	for f in "$top"/doc/*.scd; do
		n=$(basename "$f" .scd)
		case " $PAGES " in *" $n "*) ;; *) fail "doc/$n.scd is not in PAGES: test it" ;; esac
	done
}

# --- the programs' options ---------------------------------------------------

test_ccm_early_commands_and_their_options() {
	local cmds c opts defined
	[ -x "${CCM}" ] || { fail "no binary at ${CCM}; run make build/dev/ccm-early"; return; }
	cmds=$(ccm_commands)
	assertTrue "ccm-early --help lists commands: $cmds" "[ $(echo "$cmds" | wc -w) -ge 10 ]"
	# shellcheck disable=SC2086
	assert_documented ccm-early.8 "commands" $cmds
	long_options "${CCM}" || return
	# shellcheck disable=SC2086
	assert_documented ccm-early.8 "ccm-early --help's options" $opts
	for c in $cmds; do
		long_options "${CCM}" "$c" || continue
		# shellcheck disable=SC2086
		assert_documented ccm-early.8 "'ccm-early $c --help' options" $opts
		# shellcheck disable=SC2086
		assert_entries ccm-early.8 "   $c" "'ccm-early $c --help' options" $defined
	done
	long_options "${CCM}" connect
	assertTrue "connect --help lists its options: $defined" "[ $(echo "$defined" | wc -w) -ge 25 ]"
}

test_ccm_fmon_options() {
	local opts defined
	[ -x "${FMON}" ] || { fail "no binary at ${FMON}; run make dev"; return; }
	long_options "${FMON}" || return
	assertTrue "ccm-fmon --help lists options: $defined" "[ $(echo "$defined" | wc -w) -ge 8 ]"
	# shellcheck disable=SC2086
	assert_documented ccm-fmon.8 "ccm-fmon --help's options" $opts
	# shellcheck disable=SC2086
	assert_entries ccm-fmon.8 OPTIONS "ccm-fmon --help's options" $defined
}

# handoff/ccm-state, the shell reader of the handoff: its forms' options,
# and each exit status its header lists.
test_ccm_state_options() {
	local opts defined st
	long_options sh "$top/handoff/ccm-state" || return
	assertEquals "ccm-state --help's options" "--help --wait" "$(echo $opts)"
	# shellcheck disable=SC2086
	assert_documented ccm-state.1 "ccm-state --help's options" $opts CCM_STATE_DIR
	for st in $(sed -n 's/^#   \([0-9]\)  .*/\1/p' "$top/handoff/ccm-state"); do
		page ccm-state.1 || return
		section "$text" "EXIT STATUS" >"$t/section.txt"
		assertTrue "ccm-state.1 documents exit status $st" "grep -qx ' *$st' '$t/section.txt'"
	done
}

test_ccm_nvmirror_options() {
	local opts defined
	[ -x "${NVMIRROR}" ] || { fail "no binary at ${NVMIRROR}; run make dev"; return; }
	long_options "${NVMIRROR}" || return
	assertTrue "ccm-nvmirror --help lists options: $defined" "[ $(echo "$defined" | wc -w) -ge 8 ]"
	# shellcheck disable=SC2086
	assert_documented ccm-nvmirror.8 "ccm-nvmirror --help's options" $opts
	# shellcheck disable=SC2086
	assert_entries ccm-nvmirror.8 OPTIONS "ccm-nvmirror --help's options" $defined
}

# --- the sources' lists --------------------------------------------------------

# The keys of config_table[] in lib/conf/config.c, the one table that both
# the command line and the file go through.
config_keys() {
	sed -n '/config_table\[\] = {/,/^};/s/^[[:space:]]*{ "\([a-z-]*\)", set_[a-z_]* },.*/\1/p' \
		"$top/lib/conf/config.c"
}

test_every_config_key_has_its_entry() {
	local keys
	keys=$(config_keys)
	assertTrue "config.c's table has keys: $keys" "[ $(echo "$keys" | wc -w) -ge 20 ]"
	# Entries such as "       node-id = N".
	# shellcheck disable=SC2086
	assert_entries ccm-early.conf.5 KEYS "config keys" $keys
	# The same keys are connect's options.
	# shellcheck disable=SC2046,SC2086
	assert_entries ccm-early.8 "   connect" "config keys as options" $(printf -- '--%s ' $keys)
}

# The rd.ccm arguments parse-ccm.sh accepts: the case that tells them from
# unknown ones ("rd.ccm | rd.ccm.node | ... | rd.ccm.rxe) ;;").
dracut_args() {
	sed -n '/^[[:space:]]*rd\.ccm | /,/) ;;$/p' "$top/dracut/95ccm/parse-ccm.sh" |
		grep -oE 'rd\.ccm(\.[a-z]+)?' | sort -u
}

test_every_dracut_argument_is_documented() {
	local args
	args=$(dracut_args)
	assertTrue "parse-ccm.sh accepts arguments: $args" "[ $(echo "$args" | wc -w) -ge 9 ]"
	# shellcheck disable=SC2086
	assert_entries dracut.ccm.7 OPTIONS "rd.ccm arguments" $args
}

test_every_libccm_function_and_event_is_documented() {
	local fns evs
	# As the Makefile finds the API that libccm.a may export.
	fns=$(sed -n 's/^[a-z][^(]*[ *]\(ccm_[a-z0-9_]*\)(.*/\1/p' "$top/lib/client/ccm.h" | sort -u)
	evs=$(grep -oE '\bCCM_EV_[A-Z_]+' "$top/lib/client/ccm.h" | sort -u)
	assertTrue "ccm.h has functions: $fns" "[ $(echo "$fns" | wc -w) -ge 10 ]"
	# shellcheck disable=SC2086
	assert_documented libccm.3 "ccm.h's functions" $fns
	# shellcheck disable=SC2086
	assert_documented libccm.3 "ccm.h's events" $evs CCM_NOTIFY CCM_SEND_WINDOW
}

# --- the check itself ----------------------------------------------------------

test_a_page_without_an_option_fails_the_check() {
	local text
	[ -f "${MAN_DIR}/ccm-early.8" ] || { fail "no ${MAN_DIR}/ccm-early.8: run make man"; return; }
	# The option's entry and every other mention of it taken out.
	sed '/heartbeat-misses/d' "${MAN_DIR}/ccm-early.8" >"$t/planted.8"
	render "$t/planted.8" >"$t/planted.txt"
	assertEquals "the check misses the option taken out" "--heartbeat-misses" \
		"$(missing_from "$t/planted.txt" --heartbeat-ms --heartbeat-misses --link)"
	page ccm-early.8 || return
	assertEquals "and finds it in the real page" "" \
		"$(missing_from "$text" --heartbeat-ms --heartbeat-misses --link)"
	# A name inside a longer one is not the name: --link-policy is no --link.
	printf 'see --link-policy, rd.ccm.node and ccm_attach_x\n' >"$t/longer.txt"
	assertEquals "longer names do not count" "$(printf -- '--link\nrd.ccm\nccm_attach')" \
		"$(missing_from "$t/longer.txt" --link rd.ccm ccm_attach)"
	# An option that is mentioned but has lost its entry.
	sed '/^\\fB--giveback\\fR/d' "${MAN_DIR}/ccm-fmon.8" >"$t/planted-fmon.8"
	render "$t/planted-fmon.8" >"$t/planted-fmon.txt"
	section "$t/planted-fmon.txt" OPTIONS >"$t/planted-options.txt"
	assertEquals "still mentioned" "" "$(missing_from "$t/planted-fmon.txt" --giveback)"
	assertEquals "but without its entry" "--giveback" \
		"$(no_entry_in "$t/planted-options.txt" --takeover --giveback)"
	: >"$t/empty.8"
	assertEquals "an empty page renders to nothing" "" "$(render "$t/empty.8")"
}

. shunit2
