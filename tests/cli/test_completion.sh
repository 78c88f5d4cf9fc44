#!/usr/bin/env bash
# The bash completion (doc/ccm-early.bash), in a bash of its own with
# bash-completion loaded, the way bash calls it: COMP_WORDS, COMP_CWORD,
# COMP_LINE and COMP_POINT set, then _ccm_early, whose COMPREPLY is
# checked.  The commands and every option that the programs' --help lists
# ($CCM, default build/dev/ccm-early, and the ccm-fmon and ccm-nvmirror
# beside it) are offered; option values (paths, tcp|rdma, ...); client
# names from a clients directory that a config file names, and from the
# handoff's CCM_CLIENTS.  A completion with an option taken out proves that
# the check can fail.
set -u
# shellcheck disable=SC2154  # t comes from common.sh
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
: "${COMPLETION:=$top/doc/ccm-early.bash}"
: "${BASH_COMPLETION:=/usr/share/bash-completion/bash_completion}"
bindir=$(cd "$(dirname "${CCM}")" 2>/dev/null && pwd)
FMON="${bindir}/ccm-fmon"
NVMIRROR="${bindir}/ccm-nvmirror"

oneTimeSetUp() {
	[ -f "${BASH_COMPLETION}" ] ||
		fail "no ${BASH_COMPLETION}: scripts/deps.sh test installs bash-completion"
}

setUp() {
	ccm_begin_test
	# The clients directory is named by a config file of the test's own,
	# never /etc/ccm/ccm.conf; the handoff is in $t/run.
	mkdir -p "$t/clients" "$t/run" "$t/empty" "$t/dirs/sub"
	: >"$t/dirs/file"
	for f in alpha.conf beta_2.conf .hidden.conf Upper.conf 9lives.conf notes.txt; do
		: >"$t/clients/$f"
	done
	printf '# test\nnode-id = 1\n  clients = "%s"  \n' "$t/clients" >"$t/ccm.conf"
	printf "CCM_STATE='connected'\nCCM_CLIENTS='gamma delta'\n" >"$t/run/state"
	export CCM_COMPLETION_CONFIG="$t/ccm.conf"
}

tearDown() {
	ccm_end_test
}

# comp [-f FILE] WORD...: what the completion offers for the command
# line WORD... (the last word is the one being completed; '' for a new
# one), one a line, sorted and without repeats.  FILE is the completion to
# load (default $COMPLETION).  A word "--opt=value" stays whole, as bash
# hands it over once bash-completion has joined what COMP_WORDBREAKS split.
comp() {
	local file=${COMPLETION}
	if [ "$1" = -f ]; then
		file=$2
		shift 2
	fi
	# shellcheck disable=SC2016  # expanded by the inner bash
	bash --norc --noprofile -c '
		. "$1" >/dev/null 2>&1 || { echo "cannot load $1" >&2; exit 3; }
		. "$2" || exit 3
		shift 2
		COMP_WORDS=("$@")
		COMP_CWORD=$(($# - 1))
		COMP_LINE="$*"
		COMP_POINT=${#COMP_LINE}
		_ccm_early "$1" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
		[ "${#COMPREPLY[@]}" -eq 0 ] || printf "%s\n" "${COMPREPLY[@]}"
	' comp "${BASH_COMPLETION}" "$file" "$@" | sort -u
}

# The same, as one line of space-separated words.
offered() {
	comp "$@" | tr '\n' ' ' | sed 's/ $//'
}

# listed_options PROGRAM ARGS...: the long options PROGRAM ARGS --help lists
# as its own ("  --port N ...", "  -v, --verbose ..."), one a line.
listed_options() {
	"$@" --help 2>&1 | sed -nE 's/^[[:space:]]+(-[a-z], )?(--[a-z][a-z0-9-]*).*/\2/p' | sort -u
}

# not_offered WORDS-FILE WANTED...: the WANTED words not in WORDS-FILE.
not_offered() {
	local f=$1 w
	shift
	for w in "$@"; do
		grep -qxF -- "$w" "$f" || printf '%s\n' "$w"
	done
}

# The commands that 'ccm-early --help' lists.
ccm_commands() {
	"${CCM}" --help | sed -n '/^Commands:/,/^$/s/^  \([a-z][a-z-]*\) .*/\1/p'
}

# missing_options [-f FILE] COMMAND: the options of 'ccm-early COMMAND
# --help' that the completion does not offer after 'ccm-early COMMAND -'.
missing_options() {
	local f=()
	if [ "$1" = -f ]; then
		f=(-f "$2")
		shift 2
	fi
	listed_options "${CCM}" "$1" >"$t/listed"
	comp "${f[@]}" ccm-early "$1" - >"$t/offered"
	# shellcheck disable=SC2046
	not_offered "$t/offered" $(cat "$t/listed")
}

# --- commands and options --------------------------------------------------

test_commands() {
	local cmds
	[ -x "${CCM}" ] || { fail "no binary at ${CCM}; run make build/dev/ccm-early"; return; }
	cmds=$(ccm_commands)
	assertTrue "ccm-early --help lists commands: $cmds" "[ $(echo "$cmds" | wc -w) -ge 10 ]"
	comp ccm-early '' >"$t/offered"
	# shellcheck disable=SC2086
	assertEquals "every command offered" "" "$(not_offered "$t/offered" $cmds)"
	# shellcheck disable=SC2086
	assertEquals "only commands, and help" "$(printf '%s\n' $cmds help | sort -u)" \
		"$(cat "$t/offered")"
	assertEquals "a prefix" "status stop" "$(offered ccm-early st)"
	assertEquals "an option first" "--help --version" "$(offered ccm-early -)"
}

test_each_commands_options() {
	local c n
	[ -x "${CCM}" ] || { fail "no binary at ${CCM}; run make build/dev/ccm-early"; return; }
	for c in $(ccm_commands); do
		assertEquals "'ccm-early $c --help' options the completion lacks" "" \
			"$(missing_options "$c")"
	done
	n=$(listed_options "${CCM}" connect | wc -l)
	assertTrue "connect lists its options ($n)" "[ $n -ge 25 ]"
	assertEquals "a prefix" "--link --link-damp-ms --link-heartbeat-ms --link-misses --link-policy" \
		"$(offered ccm-early connect --link)"
	assertEquals "status's options" "--help --instance --json --state-dir -h" \
		"$(offered ccm-early status -)"
}

test_client_programs_options() {
	local p missing
	for p in "${FMON}" "${NVMIRROR}"; do
		[ -x "$p" ] || { fail "no binary at $p; run make dev"; continue; }
		listed_options "$p" >"$t/listed"
		assertTrue "$p --help lists options" "[ $(wc -l <"$t/listed") -ge 8 ]"
		comp "$(basename "$p")" - >"$t/offered"
		# shellcheck disable=SC2046
		missing=$(not_offered "$t/offered" $(cat "$t/listed"))
		assertEquals "$(basename "$p") --help options the completion lacks" "" "$missing"
	done
}

# --- option values ---------------------------------------------------------------

test_option_values() {
	assertEquals "--transport" "rdma tcp" "$(offered ccm-early connect --transport '')"
	assertEquals "--transport=" "rdma" "$(offered ccm-early connect --transport=r)"
	assertEquals "--link-policy" "balance standby" "$(offered ccm-early connect --link-policy '')"
	assertEquals "a directory option: directories only" "$t/dirs/sub" \
		"$(offered ccm-early status --state-dir "$t/dirs/")"
	assertEquals "a file option: files too" "$t/dirs/file $t/dirs/sub" \
		"$(offered ccm-early connect --psk-file "$t/dirs/")"
	assertEquals "keygen FILE" "$t/dirs/file $t/dirs/sub" \
		"$(offered ccm-early keygen "$t/dirs/")"
	assertEquals "ccm-nvmirror --log" "$t/dirs/file $t/dirs/sub" \
		"$(offered ccm-nvmirror --log "$t/dirs/")"
	assertEquals "a number: nothing" "" "$(offered ccm-early connect --node-id '')"
	assertEquals "no command, no options" "" "$(offered ccm-early frobnicate -)"
}

# --- client names ------------------------------------------------------------------

test_client_names_from_the_clients_directory() {
	# The handoff of $t/empty has no clients: the directory's only.
	assertEquals "exec CLIENT" "alpha beta_2" \
		"$(offered ccm-early exec --state-dir "$t/empty" '')"
	assertEquals "a prefix" "alpha" "$(offered ccm-early exec --state-dir "$t/empty" a)"
	assertEquals "dump CLIENT" "alpha beta_2" \
		"$(offered ccm-early dump --state-dir="$t/empty" --port 1 '')"
	assertEquals "ccm-fmon --client" "alpha beta_2" \
		"$(offered ccm-fmon --state-dir "$t/empty" --client '')"
	assertEquals "after dump's CLIENT, nothing" "" \
		"$(offered ccm-early dump --state-dir "$t/empty" alpha '')"
	# Without `clients` in the config, /etc/ccm/clients.d: not this one.
	printf 'node-id = 1\n# clients = %s\n' "$t/clients" >"$t/ccm.conf"
	assertEquals "not named, not read" "" \
		"$(offered ccm-early exec --state-dir "$t/empty" al)"
}

test_client_names_from_the_handoff() {
	assertEquals "exec CLIENT" "alpha beta_2 delta gamma" \
		"$(offered ccm-early exec --state-dir "$t/run" '')"
	assertEquals "--state-dir=DIR" "delta" \
		"$(offered ccm-early exec --state-dir="$t/run" d)"
}

# Instances: each NAME.conf in the config directory but ccm.conf, and each
# state directory with a handoff; then an instance's own clients.
test_instance_names_and_their_clients() {
	local etc=$t/etc run=$t/runroot
	mkdir -p "$etc/x.clients.d" "$etc/y.clients.d" "$run/z" "$run/nostate" "$run/Bad"
	: >"$etc/ccm.conf"
	: >"$etc/x.conf"
	: >"$etc/y.conf"
	: >"$etc/9.conf"
	: >"$etc/x.clients.d/xclient.conf"
	printf 'clients = %s\n' "$etc/x.clients.d" >"$etc/y.conf"
	printf "CCM_STATE='connected'\n" >"$run/z/state"
	printf "CCM_STATE='connected'\n" >"$run/Bad/state"
	printf "CCM_STATE='connected'\nCCM_CLIENTS='zclient'\n" >"$run/z/state"
	unset CCM_COMPLETION_CONFIG
	export CCM_CONF_DIR=$etc CCM_RUN_DIR=$run
	assertEquals "--instance" "x y z" "$(offered ccm-early status --instance '')"
	assertEquals "--instance=" "x" "$(offered ccm-early stop --instance=x)"
	assertEquals "ccm-fmon --instance" "x y z" "$(offered ccm-fmon --instance '')"
	assertEquals "instance x's clients directory" "xclient" \
		"$(offered ccm-early exec --instance x '')"
	assertEquals "instance y's config names its clients directory" "xclient" \
		"$(offered ccm-early dump --instance y '')"
	assertEquals "instance z's handoff" "zclient" "$(offered ccm-early exec --instance z '')"
	assertEquals "\$CCM_INSTANCE" "zclient" "$(CCM_INSTANCE=z offered ccm-fmon --client '')"
	unset CCM_CONF_DIR CCM_RUN_DIR
}

test_exec_takes_a_command_after_the_client() {
	assertEquals "after CLIENT, --" "--" "$(offered ccm-early exec alpha '')"
	assertEquals "no options after CLIENT" "--" "$(offered ccm-early exec alpha -)"
	comp ccm-early exec alpha -- ech >"$t/offered"
	assertTrue "the command: $(cat "$t/offered")" "grep -qx echo '$t/offered'"
}

# --- the check itself --------------------------------------------------------------

test_a_completion_without_an_option_fails_the_check() {
	[ -x "${CCM}" ] || { fail "no binary at ${CCM}; run make build/dev/ccm-early"; return; }
	# Out of connect's list of options only (it also takes a value).
	sed '/echo --node-id/,/--help -h$/s/ --heartbeat-misses//' "${COMPLETION}" >"$t/planted.bash"
	assertEquals "the check misses the option taken out" "--heartbeat-misses" \
		"$(missing_options -f "$t/planted.bash" connect)"
	# And one that does not read the clients directory.
	# shellcheck disable=SC2016  # a $ of the completion's
	sed 's/^\([[:space:]]*\)for f in "\$dir"\/\*\.conf; do/\1for f in; do/' \
		"${COMPLETION}" >"$t/planted.bash"
	assertNotEquals "the planted completion differs" "" \
		"$(diff "${COMPLETION}" "$t/planted.bash")"
	assertEquals "its clients are the handoff's only" "delta gamma" \
		"$(offered -f "$t/planted.bash" ccm-early exec --state-dir "$t/run" '')"
}

. shunit2
