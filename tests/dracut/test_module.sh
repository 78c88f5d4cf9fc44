#!/usr/bin/env bash
# The dracut module (dracut/95ccm) and the handoff reader (handoff/ccm-state),
# without dracut and without a boot: the hooks run against fake dracut-lib
# functions (getarg, getargbool, getargs, getcmdline, warn, info, die), a fake
# /sbin/initqueue, a fake `ip` and a fake ccm-early; module-setup.sh against
# fake inst* helpers.  Every path is under $t (CCM_ROOT, hookdir, initdir).
#
# The address table is also checked against the real ccm-early ($CCM, else
# ./ccm-early) where one is built: the hook must refuse exactly what the
# binary refuses.
set -u
. "$(dirname "$0")/../lib/common.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
mod=$top/dracut/95ccm
ccm_state=$top/handoff/ccm-state

oneTimeSetUp() {
	for f in ccm-lib.sh parse-ccm.sh ccm-connect.sh module-setup.sh ccm-early.service; do
		[ -f "$mod/$f" ] || fail "missing $mod/$f"
	done
	# The validators, for the tests that call them directly.
	# shellcheck source=../../dracut/95ccm/ccm-lib.sh
	. "$mod/ccm-lib.sh"
	real_ccm=
	for b in "${CCM}" "$top/ccm-early"; do
		if [ -x "$b" ]; then real_ccm=$b; break; fi
	done
}

setUp() {
	ccm_begin_test
	export CCM_ROOT=$t/root
	export hookdir=$CCM_ROOT/lib/dracut/hooks
	mkdir -p "$CCM_ROOT/etc/ccm" "$CCM_ROOT/run" "$hookdir/initqueue/finished" "$t/bin"
	: > "$t/log" && : > "$t/initqueue" && : > "$t/ccm-args" && : > "$t/calls"
	cmdline="" local_addrs="" tentative=""
	unset DRACUT_SYSTEMD
	base_conf
}

tearDown() {
	ccm_end_test
}

# --- fakes: dracut-lib.sh -----------------------------------------------------
# $cmdline holds one argument a line (so a value may hold blanks).

getarg() {
	local want=$1 a out="" found=1
	while IFS= read -r a; do
		[ -n "$a" ] || continue
		case $want in
		*=) case $a in "$want"*) out=${a#"$want"} found=0 ;; esac ;;
		*) case $a in
			"$want") out="" found=0 ;;
			"$want="*) out=${a#"$want="} found=0 ;;
			esac ;;
		esac
	done <<< "$cmdline"
	[ $found = 0 ] && printf '%s' "$out"
	return $found
}
getargs() {
	local want=$1 a found=1
	while IFS= read -r a; do
		case $a in "$want"*) printf '%s\n' "${a#"$want"}"; found=0 ;; esac
	done <<< "$cmdline"
	return $found
}
getargbool() {
	local d=$1 b
	shift
	b=$(getarg "$@") || b=$d
	case $b in 0 | no | off) return 1 ;; esac
	return 0
}
getcmdline() { printf '%s ' $cmdline; }
warn() { echo "warn: $*" >> "$t/log"; }
info() { echo "info: $*" >> "$t/log"; }
die() { echo "die: $*" >> "$t/log"; exit 1; }
/sbin/initqueue() { echo "$*" >> "$t/initqueue"; }
# No address is local unless the test says so ($local_addrs).
local_addrs=""
ip() {
	local a
	for a in $local_addrs; do
		[ "$5" = "${a%%/*}" ] && echo "2: eth1    inet $a scope global eth1${tentative:+ tentative}"
	done
	return 0
}
tentative=""

# --- helpers --------------------------------------------------------------------

# A ccm.conf with what ccm-early cannot do without.
base_conf() {
	printf 'node-id = 1\nlisten = 10.0.0.1\npartner = 10.0.0.2\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
}

# args LINE...: the kernel command line, one argument each.
args() {
	cmdline=$(printf '%s\n' "$@")
}

# Run the cmdline hook the way init does (sourced), in a subshell.
run_parse() {
	(
		# shellcheck source=../../dracut/95ccm/ccm-lib.sh
		. "$mod/ccm-lib.sh"
		# shellcheck source=../../dracut/95ccm/parse-ccm.sh
		. "$mod/parse-ccm.sh"
	) > "$t/out" 2>&1
	rc=$?
}

# Run ccm-connect [MODE]; its exit status in rc.
run_connect() {
	(
		. "$mod/ccm-lib.sh"
		# shellcheck source=../../dracut/95ccm/ccm-connect.sh
		. "$mod/ccm-connect.sh"
	) > "$t/out" 2>&1
	rc=$?
}

frag() { cat "$CCM_ROOT/run/ccm/cmdline.conf" 2> /dev/null; }
shown() {
	printf 'log: %s\nout: %s\ninitqueue: %s\nfragment: %s\n' "$(cat "$t/log")" \
		"$(cat "$t/out")" "$(cat "$t/initqueue")" "$(frag)"
}

# A fake ccm-early: records its arguments, writes a handoff, exits $1.
fake_ccm() {
	cat > "$t/bin/ccm-early" <<-EOF
		#!/bin/sh
		printf '%s\n' "\$*" >> "$t/ccm-args"
		while [ \$# -gt 0 ]; do [ "\$1" = --state-dir ] && dir=\$2; shift; done
		mkdir -p "\$dir"
		cat > "\$dir/state" <<-'S'
		CCM_STATE='connected'
		CCM_PARTNER_NODE='2'
		CCM_PARTNER_ADDR='10.0.0.2:7471'
		CCM_ERROR='cannot listen on 10.0.0.1:7471: it'\''s gone'
		S
		exit $1
	EOF
	chmod +x "$t/bin/ccm-early"
	export CCM_EARLY=$t/bin/ccm-early
}

# A fragment as parse-ccm.sh leaves it (module on).
on_fragment() {
	mkdir -p "$CCM_ROOT/run/ccm"
	printf '# rd.ccm.*\n%s' "${1:-}" > "$CCM_ROOT/run/ccm/cmdline.conf"
}

# --- the validators ---------------------------------------------------------------

# The addresses: valid | value.  Shared by the hook tests and the check
# against the real binary.
address_table() {
	cat <<-'EOF'
		ok|10.0.0.1
		ok|10.0.0.1:7471
		ok|0.0.0.0
		ok|255.255.255.255:65535
		ok|192.168.1.1:1
		ok|10.0.0.1:00080
		ok|::1
		ok|::
		ok|[::1]
		ok|[::1]:7471
		ok|fd00::2
		ok|FD00::A
		ok|[fd00::2]:7471
		ok|1:2:3:4:5:6:7:8
		ok|[1:2:3:4:5:6:7:8]:9
		ok|1:2:3:4:5:6:7::
		ok|::2:3:4:5:6:7:8
		ok|::ffff:10.0.0.2
		ok|[::ffff:10.0.0.2]:7471
		ok|1:2:3:4:5:6:10.0.0.2
		ok|fd00::1:7471
		bad|
		bad|node-b
		bad|localhost
		bad|node-b.example:7471
		bad|10.0.0
		bad|10.0.0.1.5
		bad|10.0.0.256
		bad|10.0.0.01
		bad|010.0.0.1
		bad|10.0.0.-1
		bad|-10.0.0.1
		bad|+10.0.0.1
		bad|10.0.0.1:0
		bad|10.0.0.1:65536
		bad|10.0.0.1:123456
		bad|10.0.0.1:
		bad|10.0.0.1:-1
		bad|10.0.0.1:+1
		bad|10.0.0.1:http
		bad|10.0.0.1:7471x
		bad|10.0.0.1:0x10
		bad|10.0.0.1 
		bad| 10.0.0.1
		bad|10.0.0.1 7471
		bad|10.0.0.1/24
		bad|0x0a.0.0.1
		bad|[fd00::1
		bad|[fd00::1]x
		bad|[fd00::1]:
		bad|[fd00::1]:0
		bad|[fd00::1]:65536
		bad|[10.0.0.1]
		bad|[10.0.0.1]:7471
		bad|[]
		bad|[]:7471
		bad|fe80::1%eth0
		bad|[fe80::1%eth0]:7471
		bad|fd00:::1
		bad|fd00::1::2
		bad|1:2:3:4:5:6:7:8:9
		bad|1:2:3:4:5:6:7
		bad|12345::1
		bad|fd0g::1
		bad|:1:2:3:4:5:6:7
		bad|1:2:3:4:5:6:7:
		bad|::ffff:10.0.0.256
		bad|::10.0.0.2:1
		bad|1:2:3:4:5:6:7:10.0.0.2
		bad|1:2:3:4:5:6:7::10.0.0.2
	EOF
}

test_addresses_are_validated_as_ccm_early_does() {
	while IFS='|' read -r want value; do
		if ccm_valid_addr "$value"; then got=ok; else got=bad; fi
		assertEquals "ccm_valid_addr '$value' ($ccm_why)" "$want" "$got"
		if [ "$got" = bad ]; then
			assertNotEquals "a reason for '$value'" "" "$ccm_why"
		fi
	done < <(address_table)
}

# The same table against the binary: a bad address is a usage error (2); a
# good one gets as far as listening on 192.0.2.1, which is not ours (1).
test_address_table_matches_the_binary() {
	if [ -z "$real_ccm" ]; then
		startSkipping
		echo "no ccm-early built: skipping the cross-check" >&2
	fi
	mkdir -p "$t/clients"
	while IFS='|' read -r want value; do
		isSkipping && break
		"$real_ccm" connect --node-id 1 --listen 192.0.2.1:9 --partner "$value" --once \
			--timeout 1 --clients "$t/clients" --state-dir "$t/run" > "$t/out" 2>&1 < /dev/null
		r=$?
		if [ "$want" = ok ]; then
			assertEquals "ccm-early takes partner '$value': $(cat "$t/out")" 1 "$r"
		else
			assertEquals "ccm-early refuses partner '$value': $(cat "$t/out")" 2 "$r"
		fi
	done < <(address_table)
}

test_numbers_are_strict() {
	# valid | value | min | max | canonical
	while IFS='|' read -r want value min max canon; do
		if ccm_valid_uint "$value" "$min" "$max"; then got=ok; else got=bad; fi
		assertEquals "ccm_valid_uint '$value' $min $max ($ccm_why)" "$want" "$got"
		if [ "$got" = ok ]; then
			assertEquals "canonical '$value'" "$canon" "$ccm_value"
		fi
	done <<-'EOF'
		ok|1|1|4294967294|1
		ok|4294967294|1|4294967294|4294967294
		ok|007|1|4294967294|7
		ok|0|0|86400|0
		ok|000|0|86400|0
		ok|86400|0|86400|86400
		bad|0|1|4294967294|
		bad|4294967295|1|4294967294|
		bad|99999999999999999999|1|4294967294|
		bad|00000000000000000001x|1|4294967294|
		bad|-1|0|86400|
		bad|+1|0|86400|
		bad| 1|0|86400|
		bad|1 |0|86400|
		bad|1 2|0|86400|
		bad|0x10|0|86400|
		bad|1e3|0|86400|
		bad|1.5|0|86400|
		bad|60s|0|86400|
		bad|86401|0|86400|
		bad||0|86400|
	EOF
}

# --- parse-ccm.sh ------------------------------------------------------------------

# Each rd.ccm argument alone, on top of a complete ccm.conf.
#   ok   | argument | the fragment line it must write
#   bad  | argument | what the warning must say
#   link | argument | the line of cmdline.links
test_parse_every_argument() {
	while IFS='|' read -r kind arg want; do
		rm -rf "$CCM_ROOT/run/ccm" "$hookdir/initqueue/finished/ccm-early.sh"
		: > "$t/log" && : > "$t/initqueue"
		args "$arg"
		run_parse
		assertEquals "[$arg] the hook returns 0; $(shown)" 0 "$rc"
		case $kind in
		ok)
			assertContains "[$arg] fragment; $(shown)" "$(frag)" "$want"
			assertNotContains "[$arg] no warning; $(shown)" "$(cat "$t/log")" "warn:"
			assertEquals "[$arg] initqueue scheduled; $(shown)" 2 "$(wc -l < "$t/initqueue")"
			;;
		link)
			assertEquals "[$arg] links file; $(shown)" "$want" \
				"$(cat "$CCM_ROOT/run/ccm/cmdline.links" 2> /dev/null)"
			assertContains "[$arg] says it is reserved" "$(cat "$t/log")" "reserved"
			;;
		bad)
			assertContains "[$arg] warning names the argument and value; $(shown)" \
				"$(cat "$t/log")" "warn: ccm: $arg: "
			assertContains "[$arg] warning says why; $(shown)" "$(cat "$t/log")" "$want"
			assertContains "[$arg] says ccm is off; $(shown)" "$(cat "$t/log")" "off for this boot"
			assertFalse "[$arg] no fragment: off; $(shown)" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
			assertEquals "[$arg] nothing queued; $(shown)" "" "$(cat "$t/initqueue")"
			assertFalse "[$arg] no finished hook" "[ -e '$hookdir/initqueue/finished/ccm-early.sh' ]"
			;;
		esac
	done <<-'EOF'
		ok|rd.ccm.node=1|node-id = 1
		ok|rd.ccm.node=4294967294|node-id = 4294967294
		ok|rd.ccm.node=007|node-id = 7
		bad|rd.ccm.node=0|not in 1..4294967294
		bad|rd.ccm.node=4294967295|not in 1..4294967294
		bad|rd.ccm.node=-1|not a decimal number
		bad|rd.ccm.node=+2|not a decimal number
		bad|rd.ccm.node= 2|not a decimal number
		bad|rd.ccm.node=2 |not a decimal number
		bad|rd.ccm.node=0x2|not a decimal number
		bad|rd.ccm.node=two|not a decimal number
		bad|rd.ccm.node=|empty value
		ok|rd.ccm.listen=10.0.0.5|listen = 10.0.0.5
		ok|rd.ccm.listen=10.0.0.5:7000|listen = 10.0.0.5:7000
		ok|rd.ccm.listen=[fd00::1]:7471|listen = [fd00::1]:7471
		ok|rd.ccm.listen=fd00::1|listen = fd00::1
		bad|rd.ccm.listen=node-a|not a numeric IPv4 address
		bad|rd.ccm.listen=node-a:7471|not a numeric IPv4 address
		bad|rd.ccm.listen=10.0.0.300|not a numeric IPv4 address
		bad|rd.ccm.listen=10.0.0.1:0|port '0'
		bad|rd.ccm.listen=10.0.0.1:65536|port '65536'
		bad|rd.ccm.listen=10.0.0.1:|port ''
		bad|rd.ccm.listen=10.0.0.1:x|port 'x'
		bad|rd.ccm.listen=10.0.0.1 :7471|not a numeric IPv4 address
		bad|rd.ccm.listen=[fd00::1|missing ']'
		bad|rd.ccm.listen=[fd00::1]7471|expected ':PORT'
		bad|rd.ccm.listen=fe80::1%eth0|not a numeric IPv6 address
		bad|rd.ccm.listen=|empty value
		ok|rd.ccm.partner=10.0.0.9|partner = 10.0.0.9
		ok|rd.ccm.partner=[fd00::2]:7471|partner = [fd00::2]:7471
		bad|rd.ccm.partner=node-b.example|not a numeric IPv4 address
		bad|rd.ccm.partner=[fd00::2]:99999|port '99999'
		bad|rd.ccm.partner=|empty value
		ok|rd.ccm.transport=tcp|transport = tcp
		ok|rd.ccm.transport=rdma|transport = rdma
		bad|rd.ccm.transport=udp|neither tcp nor rdma
		bad|rd.ccm.transport=TCP|neither tcp nor rdma
		bad|rd.ccm.transport=tcp |neither tcp nor rdma
		bad|rd.ccm.transport=|empty value
		ok|rd.ccm.device=rxe0|device = rxe0
		ok|rd.ccm.device=mlx5_0|device = mlx5_0
		ok|rd.ccm.device=rxe-eth1.100|device = rxe-eth1.100
		bad|rd.ccm.device=rxe/0|not a device name
		bad|rd.ccm.device=rxe 0|not a device name
		bad|rd.ccm.device=..|not a device name
		bad|rd.ccm.device=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|longer than 63
		bad|rd.ccm.device=|empty value
		ok|rd.ccm.timeout=0|timeout = 0
		ok|rd.ccm.timeout=120|timeout = 120
		ok|rd.ccm.timeout=0060|timeout = 60
		ok|rd.ccm.timeout=86400|timeout = 86400
		bad|rd.ccm.timeout=86401|not in 0..86400
		bad|rd.ccm.timeout=-1|not a decimal number
		bad|rd.ccm.timeout=1.5|not a decimal number
		bad|rd.ccm.timeout=60s|not a decimal number
		bad|rd.ccm.timeout=|empty value
		link|rd.ccm.link=10.0.1.1=10.0.1.2|10.0.1.1 10.0.1.2
		link|rd.ccm.link=[fd01::1]:7471=[fd01::2]:7471|[fd01::1]:7471 [fd01::2]:7471
		bad|rd.ccm.link=10.0.1.1|expected LOCAL=PARTNER
		bad|rd.ccm.link=10.0.1.1=|expected LOCAL=PARTNER
		bad|rd.ccm.link==10.0.1.2|expected LOCAL=PARTNER
		bad|rd.ccm.link=10.0.1.1=10.0.1.2=10.0.1.3|expected LOCAL=PARTNER
		bad|rd.ccm.link=node-a=10.0.1.2|local address
		bad|rd.ccm.link=10.0.1.1=10.0.1.2:0|partner address
	EOF
}

test_parse_no_arguments_uses_the_config_file() {
	run_parse
	assertEquals "fragment holds no setting; $(shown)" "" "$(frag | grep -v '^#')"
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertEquals "neednet" "rd.neednet=1" "$(cat "$CCM_ROOT/etc/cmdline.d/95ccm-neednet.conf")"
	assertEquals "finished hook" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]" \
		"$(cat "$hookdir/initqueue/finished/ccm-early.sh")"
	assertEquals "initqueue calls" \
		"--settled --unique --name ccm-early-settled /sbin/ccm-connect settled
--timeout --onetime --unique --name ccm-early-timeout /sbin/ccm-connect timeout" \
		"$(cat "$t/initqueue")"
}

test_parse_everything_at_once() {
	rm "$CCM_ROOT/etc/ccm/ccm.conf"
	args rd.ccm.node=2 rd.ccm.listen=10.0.0.2 "rd.ccm.partner=[fd00::1]:7000" \
		rd.ccm.transport=rdma rd.ccm.device=rxe0 rd.ccm.timeout=30 rd.ccm.required \
		rd.ccm.link=10.0.1.2=10.0.1.1 rd.ccm.link=10.0.2.2=10.0.2.1 quiet
	run_parse
	assertEquals "fragment; $(shown)" "node-id = 2
listen = 10.0.0.2
partner = [fd00::1]:7000
transport = rdma
device = rxe0
timeout = 30" "$(frag | grep -v '^#')"
	assertEquals "links" "10.0.1.2 10.0.1.1
10.0.2.2 10.0.2.1" "$(cat "$CCM_ROOT/run/ccm/cmdline.links")"
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
}

test_parse_rd_ccm_0_turns_it_off() {
	for off in rd.ccm=0 rd.ccm=no rd.ccm=off; do
		: > "$t/log"
		args "$off" rd.ccm.node=bogus rd.ccm.required
		run_parse
		assertFalse "[$off] no fragment; $(shown)" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
		assertContains "[$off] says so" "$(cat "$t/log")" "info: ccm: off (rd.ccm=0)"
		assertNotContains "[$off] nothing validated" "$(cat "$t/log")" "bogus"
		assertEquals "[$off] nothing queued" "" "$(cat "$t/initqueue")"
		assertFalse "[$off] no neednet" "[ -e '$CCM_ROOT/etc/cmdline.d/95ccm-neednet.conf' ]"
	done
	args rd.ccm=1
	run_parse
	assertTrue "rd.ccm=1 is on; $(shown)" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
}

test_parse_every_error_is_reported() {
	args rd.ccm.node=0 rd.ccm.listen=host rd.ccm.transport=udp
	run_parse
	for a in "rd.ccm.node=0" "rd.ccm.listen=host" "rd.ccm.transport=udp"; do
		assertContains "warns about $a; $(shown)" "$(cat "$t/log")" "warn: ccm: $a: "
	done
}

test_parse_required_with_errors_defers_the_failure() {
	args rd.ccm.node=0 rd.ccm.required
	run_parse
	assertEquals "the hook itself does not die; $(shown)" 0 "$rc"
	assertNotContains "no die in the cmdline hook" "$(cat "$t/log")" "die:"
	assertContains "says loudly what will happen; $(shown)" "$(cat "$t/log")" \
		"rd.ccm.required is set and the rd.ccm arguments are wrong: the boot will stop"
	assertContains "the errors are kept" "$(cat "$CCM_ROOT/run/ccm/cmdline.err")" "rd.ccm.node=0"
	assertTrue "the fragment is written, so the connect step runs" \
		"[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	assertEquals "the connect step is queued" 2 "$(wc -l < "$t/initqueue")"
	# rd.ccm.required=0 is not required.
	args rd.ccm.node=0 rd.ccm.required=0
	run_parse
	assertFalse "rd.ccm.required=0: off; $(shown)" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
}

test_parse_missing_settings() {
	rm "$CCM_ROOT/etc/ccm/ccm.conf"
	run_parse
	for a in rd.ccm.node rd.ccm.listen rd.ccm.partner; do
		assertContains "names $a; $(shown)" "$(cat "$t/log")" "warn: ccm: $a=: not given"
	done
	assertFalse "off; $(shown)" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	# The command line alone is enough.
	: > "$t/log"
	args rd.ccm.node=1 rd.ccm.listen=10.0.0.1 rd.ccm.partner=10.0.0.2
	run_parse
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertTrue "on" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
}

test_parse_unknown_argument_is_warned_about() {
	args rd.ccm.parnter=10.0.0.9 rd.ccmx=1 rd.ccm.node=3
	run_parse
	assertContains "the typo; $(shown)" "$(cat "$t/log")" "unknown argument 'rd.ccm.parnter=10.0.0.9'"
	assertNotContains "rd.ccmx is not ours" "$(cat "$t/log")" "rd.ccmx"
	assertContains "still on" "$(frag)" "node-id = 3"
}

test_parse_systemd_queues_nothing() {
	export DRACUT_SYSTEMD=1
	args rd.ccm.node=1
	run_parse
	assertContains "fragment; $(shown)" "$(frag)" "node-id = 1"
	assertEquals "no initqueue job: the unit connects" "" "$(cat "$t/initqueue")"
	assertFalse "no finished hook" "[ -e '$hookdir/initqueue/finished/ccm-early.sh' ]"
	assertTrue "neednet" "[ -e '$CCM_ROOT/etc/cmdline.d/95ccm-neednet.conf' ]"
}

test_parse_clears_an_earlier_run() {
	mkdir -p "$CCM_ROOT/run/ccm"
	for f in cmdline.err cmdline.links connect.done connect.queued; do
		echo stale > "$CCM_ROOT/run/ccm/$f"
	done
	run_parse
	for f in cmdline.err cmdline.links connect.done connect.queued; do
		assertFalse "$f removed" "[ -e '$CCM_ROOT/run/ccm/$f' ]"
	done
}

# The hook is POSIX: the same parse under dash, and shellcheck -s sh.
test_parse_under_dash() {
	command -v dash > /dev/null || { fail "dash is missing: scripts/deps.sh test installs it"; return; }
	cat > "$t/fakes.sh" <<-EOF
		getarg() { case \$1 in rd.ccm.node=) printf 7; return 0 ;; rd.ccm.partner=) printf '[fd00::2]:9'; return 0 ;; esac; return 1; }
		getargs() { printf '10.0.1.1=10.0.1.2\n'; }
		getargbool() { return 0; }
		getcmdline() { printf 'rd.ccm.node=7 rd.ccm.bogus=1'; }
		warn() { echo "warn: \$*" >> "$t/log"; }
		info() { echo "info: \$*" >> "$t/log"; }
	EOF
	DRACUT_SYSTEMD=1 dash -c ". '$t/fakes.sh'; . '$mod/ccm-lib.sh'; . '$mod/parse-ccm.sh'" > "$t/out" 2>&1
	assertEquals "dash: status; $(shown)" 0 $?
	assertEquals "dash: fragment; $(shown)" "node-id = 7
partner = [fd00::2]:9" "$(frag | grep -v '^#')"
	assertContains "dash: unknown argument" "$(cat "$t/log")" "rd.ccm.bogus=1"
}

test_shellcheck_posix() {
	command -v shellcheck > /dev/null || { fail "shellcheck is missing: scripts/deps.sh test installs it"; return; }
	# Not followed: the sourced libraries (dracut-lib.sh, ccm-lib.sh), which
	# also assign the variables the hooks use.
	for f in ccm-lib.sh parse-ccm.sh ccm-connect.sh; do
		out=$(shellcheck -s sh -e SC1091,SC2153,SC2154 "$mod/$f" 2>&1)
		assertEquals "shellcheck -s sh $f: $out" "" "$out"
	done
	out=$(shellcheck -s sh "$ccm_state" 2>&1)
	assertEquals "shellcheck handoff/ccm-state: $out" "" "$out"
	out=$(shellcheck -s bash -e SC1091,SC2034,SC2154 "$mod/module-setup.sh" 2>&1)
	assertEquals "shellcheck module-setup.sh: $out" "" "$out"
}

# --- ccm-connect ---------------------------------------------------------------------

test_connect_exit_codes() {
	# ccm-early's status | rd.ccm.required | info/warn/die | what it says | done marker
	while IFS='|' read -r code req kind msg done; do
		rm -f "$CCM_ROOT/run/ccm/connect.done" && : > "$t/log"
		on_fragment
		fake_ccm "$code"
		if [ "$req" = 1 ]; then args rd.ccm.required; else args; fi
		run_connect
		tag="[exit $code, required=$req]"
		if [ "$kind" = die ]; then
			assertEquals "$tag dies; $(shown)" 1 "$rc"
		else
			assertEquals "$tag status; $(shown)" 0 "$rc"
		fi
		assertContains "$tag $kind; $(shown)" "$(cat "$t/log")" "$kind: ccm: "
		assertContains "$tag message; $(shown)" "$(cat "$t/log")" "$msg"
		if [ "$done" = yes ]; then
			assertTrue "$tag marks itself done" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]"
		else
			assertFalse "$tag a fatal step is not done" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]"
		fi
		if [ "$kind" = die ]; then
			assertContains "$tag die names rd.ccm.required" \
				"$(cat "$t/log")" "die: ccm: rd.ccm.required: "
		elif [ "$kind" = warn ] && [ "$code" != 3 ]; then
			assertContains "$tag boots on" \
				"$(cat "$t/log")" "booting on without the cluster interconnect"
		fi
	done <<-'EOF'
		0|0|info|connected to node 2 at 10.0.0.2:7471|yes
		0|1|info|connected to node 2|yes
		3|0|warn|degraded: the partner did not answer within 60 s (exit 3); the keeper keeps looking|yes
		3|1|die|the partner did not answer within 60 s (exit 3: timed out)|no
		1|0|warn|failed (exit 1): cannot listen on 10.0.0.1:7471: it's gone|yes
		1|1|die|failed (exit 1): cannot listen|no
		2|0|warn|usage or configuration error (exit 2)|yes
		2|1|die|usage or configuration error|no
		4|0|warn|no protocol version in common with the partner (exit 4)|yes
		4|1|die|no protocol version in common|no
		5|0|warn|authentication failed (exit 5): the pre-shared keys differ|yes
		5|1|die|authentication failed|no
		7|0|warn|unexpected status 7|yes
		7|1|die|unexpected status 7|no
	EOF
}

test_connect_options() {
	fake_ccm 0
	# ccm.conf and no rd.ccm.timeout: the default 60.
	on_fragment
	run_connect
	assertEquals "options; $(shown)" \
		"connect --config $CCM_ROOT/etc/ccm/ccm.conf --state-dir $CCM_ROOT/run/ccm --timeout 60" \
		"$(cat "$t/ccm-args")"
	# The fragment's keys become options; its timeout wins over ccm.conf's.
	: > "$t/ccm-args" && rm "$CCM_ROOT/run/ccm/connect.done"
	echo "timeout = 120" >> "$CCM_ROOT/etc/ccm/ccm.conf"
	on_fragment "node-id = 2
partner = [fd00::1]:7000
timeout = 5
"
	run_connect
	assertEquals "fragment as options; $(shown)" \
		"connect --config $CCM_ROOT/etc/ccm/ccm.conf --node-id 2 --partner [fd00::1]:7000 --state-dir $CCM_ROOT/run/ccm --timeout 5" \
		"$(cat "$t/ccm-args")"
	# ccm.conf's timeout without rd.ccm.timeout; no --config without ccm.conf.
	: > "$t/ccm-args" && rm "$CCM_ROOT/run/ccm/connect.done"
	on_fragment
	run_connect
	assertContains "ccm.conf's timeout; $(shown)" "$(cat "$t/ccm-args")" "--timeout 120"
	: > "$t/ccm-args" && rm "$CCM_ROOT/run/ccm/connect.done" "$CCM_ROOT/etc/ccm/ccm.conf"
	on_fragment "node-id = 1
listen = 10.0.0.1
partner = 10.0.0.2
"
	run_connect
	assertEquals "no ccm.conf; $(shown)" \
		"connect --node-id 1 --listen 10.0.0.1 --partner 10.0.0.2 --state-dir $CCM_ROOT/run/ccm --timeout 60" \
		"$(cat "$t/ccm-args")"
}

test_connect_runs_once_and_only_when_on() {
	fake_ccm 0
	run_connect
	assertEquals "off (no fragment): ccm-early not run; $(shown)" "" "$(cat "$t/ccm-args")"
	assertEquals "off: silent" "" "$(cat "$t/log")"
	on_fragment
	run_connect
	run_connect
	assertEquals "run once; $(shown)" 1 "$(wc -l < "$t/ccm-args")"
}

test_connect_required_with_bad_arguments_dies_without_running() {
	fake_ccm 0
	on_fragment
	echo "rd.ccm.node=0: '0' is not in 1..4294967294" > "$CCM_ROOT/run/ccm/cmdline.err"
	args rd.ccm.required
	run_connect
	assertEquals "dies; $(shown)" 1 "$rc"
	assertContains "names the argument; $(shown)" "$(cat "$t/log")" \
		"die: ccm: rd.ccm.required: the rd.ccm arguments are wrong: rd.ccm.node=0"
	assertEquals "ccm-early not run" "" "$(cat "$t/ccm-args")"
}

test_settled_queues_once_the_listen_address_is_up() {
	on_fragment
	run_connect settled
	assertEquals "address not there: nothing queued; $(shown)" "" "$(cat "$t/initqueue")"
	local_addrs=10.0.0.1/24 tentative=1
	run_connect settled
	assertEquals "tentative: nothing queued; $(shown)" "" "$(cat "$t/initqueue")"
	tentative=""
	run_connect settled
	assertEquals "queued; $(shown)" "--onetime --unique --name ccm-early /sbin/ccm-connect" \
		"$(cat "$t/initqueue")"
	run_connect settled
	assertEquals "queued once" 1 "$(wc -l < "$t/initqueue")"
	# The address from the fragment, not ccm.conf.
	rm "$CCM_ROOT/run/ccm/connect.queued" && : > "$t/initqueue"
	on_fragment "listen = [fd00::5]:7471
"
	run_connect settled
	assertEquals "fragment's listen not up; $(shown)" "" "$(cat "$t/initqueue")"
	local_addrs="10.0.0.1/24 fd00::5/64"
	run_connect settled
	assertEquals "fragment's listen up; $(shown)" 1 "$(wc -l < "$t/initqueue")"
}

test_timeout_hook() {
	fake_ccm 0
	on_fragment
	run_connect timeout
	assertEquals "status; $(shown)" 0 "$rc"
	assertContains "warns; $(shown)" "$(cat "$t/log")" "warn: ccm: the listen address 10.0.0.1 never came up"
	assertTrue "done: the initqueue may finish" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]"
	assertEquals "ccm-early not run" "" "$(cat "$t/ccm-args")"
	rm "$CCM_ROOT/run/ccm/connect.done" && : > "$t/log"
	args rd.ccm.required
	run_connect timeout
	assertEquals "required: dies; $(shown)" 1 "$rc"
	assertContains "required: says why" "$(cat "$t/log")" "die: ccm: rd.ccm.required: the listen address"
	# The address is there after all (configured outside dracut's network
	# modules): connect now.
	args
	local_addrs=10.0.0.1/8
	run_connect timeout
	assertEquals "connects; $(shown)" 1 "$(wc -l < "$t/ccm-args")"
}

test_systemd_waits_for_the_listen_address() {
	export DRACUT_SYSTEMD=1
	fake_ccm 0
	on_fragment "timeout = 1
"
	start=$(date +%s)
	run_connect
	secs=$(($(date +%s) - start))
	assertContains "never up: warns; $(shown)" "$(cat "$t/log")" \
		"the listen address 10.0.0.1 was not configured within 1 s"
	assertEquals "ccm-early not run" "" "$(cat "$t/ccm-args")"
	assertTrue "bounded by the timeout ($secs s)" "[ $secs -le 4 ]"
	rm "$CCM_ROOT/run/ccm/connect.done"
	local_addrs=10.0.0.1/24
	run_connect
	assertContains "up: connects; $(shown)" "$(cat "$t/ccm-args")" "--timeout 1"
}

test_connect_unknown_mode() {
	run_connect frobnicate
	assertEquals "status" 2 "$rc"
	assertContains "says so" "$(cat "$t/log")" "unknown mode 'frobnicate'"
}

# --- module-setup.sh -----------------------------------------------------------------

# Load module-setup.sh with dracut's helpers faked; calls go to $t/calls.
load_module_setup() {
	export moddir=$mod initdir=$t/initdir dracutsysrootdir=$t/sysroot
	export systemdsystemunitdir=/usr/lib/systemd/system SYSTEMCTL=fake_systemctl
	mkdir -p "$initdir" "$dracutsysrootdir"
	hostonly=yes hostonly_cmdline=no included=""
	find_binary() { return 1; }
	require_binaries() { echo "require_binaries $*" >> "$t/calls"; return 1; }
	instmods() { echo "instmods hostonly=[${hostonly-unset}] $*" >> "$t/calls"; }
	dracut_module_included() { case " $included " in *" $1 "*) return 0 ;; esac; return 1; }
	dracut_need_initqueue() { echo "dracut_need_initqueue" >> "$t/calls"; }
	dwarn() { echo "dwarn $*" >> "$t/calls"; }
	dinfo() { :; }
	fake_systemctl() { echo "systemctl $*" >> "$t/calls"; }
	inst_dir() { echo "inst_dir $*" >> "$t/calls"; mkdir -p "$initdir$1"; }
	inst_multiple() { echo "inst_multiple $*" >> "$t/calls"; }
	inst_hook() { echo "inst_hook $*" >> "$t/calls"; }
	inst_script() { echo "inst_script $*" >> "$t/calls"; }
	inst_simple() {
		local src=$1 dst=${2:-$1}
		echo "inst_simple $*" >> "$t/calls"
		[ -e "$dracutsysrootdir$src" ] && src=$dracutsysrootdir$src
		[ -e "$src" ] || return 1
		mkdir -p "$initdir$(dirname "$dst")" && cp -p "$src" "$initdir$dst"
	}
	# shellcheck source=../../dracut/95ccm/module-setup.sh
	. "$mod/module-setup.sh"
}

sysroot_files() {
	mkdir -p "$dracutsysrootdir/usr/sbin" "$dracutsysrootdir/etc/ccm/clients.d"
	printf '#!/bin/sh\n' > "$dracutsysrootdir/usr/sbin/ccm-early"
	chmod 755 "$dracutsysrootdir/usr/sbin/ccm-early"
	cat > "$dracutsysrootdir/etc/ccm/ccm.conf" <<-'EOF'
		# the host's config
		node-id = 1
		  listen  =	10.0.0.1
		partner = 10.0.0.2:7471
		transport = "rdma"
		psk-file = /etc/ccm/psk
		timeout = 120
	EOF
	printf 'ports = 1\nport-size = 4K\n' > "$dracutsysrootdir/etc/ccm/clients.d/fmon.conf"
	printf 'ports = 2\nport-size = 1M\n' > "$dracutsysrootdir/etc/ccm/clients.d/nvmirror.conf"
	echo x > "$dracutsysrootdir/etc/ccm/clients.d/.hidden.conf"
	echo x > "$dracutsysrootdir/etc/ccm/clients.d/notes.txt"
	printf 'a-key-of-thirty-two-bytes-......\n' > "$dracutsysrootdir/etc/ccm/psk"
	chmod 600 "$dracutsysrootdir/etc/ccm/psk"
}

test_module_check() {
	(
		load_module_setup
		check
		echo "rc=$?"
	) > "$t/out" 2>&1
	assertContains "no binary: 1; $(cat "$t/out")" "$(cat "$t/out")" "rc=1"
	assertContains "dracut's standard message" "$(cat "$t/calls")" "require_binaries ccm-early"
	for where in /usr/sbin /usr/local/sbin; do
		(
			load_module_setup
			mkdir -p "$dracutsysrootdir$where"
			printf '#!/bin/sh\n' > "$dracutsysrootdir$where/ccm-early"
			chmod 755 "$dracutsysrootdir$where/ccm-early"
			check
			echo "rc=$?"
			echo "bin=$(ccm_early_bin)"
		) > "$t/out" 2>&1
		assertContains "$where: only on request (255); $(cat "$t/out")" "$(cat "$t/out")" "rc=255"
		assertContains "$where: found there" "$(cat "$t/out")" "bin=$where/ccm-early"
		rm -rf "$t/sysroot"
	done
	(
		load_module_setup
		depends
	) > "$t/out" 2>&1
	assertEquals "depends" "network" "$(cat "$t/out")"
}

test_module_installkernel() {
	(
		load_module_setup
		installkernel
	)
	assertEquals "instmods, generic" \
		"instmods hostonly=[] ib_uverbs rdma_ucm rdma_cm ib_core mlx5_ib rdma_rxe crc32_generic" \
		"$(cat "$t/calls")"
}

test_module_cmdline() {
	(
		load_module_setup
		sysroot_files
		cmdline
	) > "$t/out" 2>&1
	assertEquals "rd.ccm arguments from ccm.conf" \
		" rd.ccm.node=1 rd.ccm.listen=10.0.0.1 rd.ccm.partner=10.0.0.2:7471 rd.ccm.transport=rdma rd.ccm.timeout=120" \
		"$(cat "$t/out")"
	(
		load_module_setup
		sysroot_files
		ip_params_for_remote_addr() { printf 'ip=eth1:dhcp(%s) ' "$1"; }
		cmdline
	) > "$t/out" 2>&1
	assertContains "the ip= for the partner, as 95iscsi does" "$(cat "$t/out")" \
		"rd.ccm.timeout=120 ip=eth1:dhcp(10.0.0.2)"
	rm -rf "$t/sysroot"
	(
		load_module_setup
		cmdline
	) > "$t/out" 2>&1
	assertEquals "no config: nothing" "" "$(cat "$t/out")"
}

test_module_install() {
	(
		load_module_setup
		sysroot_files
		install
		echo "rc=$?"
	) > "$t/out" 2>&1
	calls=$(cat "$t/calls")
	assertContains "status; $(cat "$t/out")" "$(cat "$t/out")" "rc=0"
	assertContains "the binary" "$calls" "inst_simple /usr/sbin/ccm-early /usr/sbin/ccm-early"
	assertContains "ip" "$calls" "inst_multiple -o ip"
	assertContains "the lib" "$calls" "inst_simple $mod/ccm-lib.sh /lib/ccm-lib.sh"
	assertContains "the connect step" "$calls" "inst_script $mod/ccm-connect.sh /sbin/ccm-connect"
	assertContains "the cmdline hook" "$calls" "inst_hook cmdline 90 $mod/parse-ccm.sh"
	assertContains "ccm.conf" "$calls" "inst_simple /etc/ccm/ccm.conf"
	assertContains "clients dir" "$calls" "inst_dir /etc/ccm/clients.d"
	assertContains "fmon.conf" "$calls" "inst_simple /etc/ccm/clients.d/fmon.conf"
	assertContains "nvmirror.conf" "$calls" "inst_simple /etc/ccm/clients.d/nvmirror.conf"
	assertNotContains "no hidden file" "$calls" ".hidden.conf"
	assertNotContains "no other file" "$calls" "notes.txt"
	assertContains "the key" "$calls" "inst_simple /etc/ccm/psk"
	assertEquals "the key is 0600" 600 "$(stat -c %a "$t/initdir/etc/ccm/psk")"
	assertNotContains "no unit without systemd" "$calls" "ccm-early.service"
	assertContains "initqueue" "$calls" "dracut_need_initqueue"
	assertFalse "no host cmdline unless hostonly_cmdline" "[ -e '$t/initdir/etc/cmdline.d/95ccm.conf' ]"
}

test_module_install_systemd_and_hostonly_cmdline() {
	(
		load_module_setup
		sysroot_files
		included="systemd network" hostonly_cmdline=yes
		install
	) > "$t/out" 2>&1
	calls=$(cat "$t/calls")
	assertContains "the unit; $calls" "$calls" \
		"inst_simple $mod/ccm-early.service /usr/lib/systemd/system/ccm-early.service"
	assertContains "enabled in the image" "$calls" "systemctl -q --root $t/initdir enable ccm-early.service"
	assertEquals "the host's rd.ccm arguments" \
		" rd.ccm.node=1 rd.ccm.listen=10.0.0.1 rd.ccm.partner=10.0.0.2:7471 rd.ccm.transport=rdma rd.ccm.timeout=120" \
		"$(cat "$t/initdir/etc/cmdline.d/95ccm.conf")"
}

test_module_install_missing_key_warns() {
	(
		load_module_setup
		sysroot_files
		rm "$dracutsysrootdir/etc/ccm/psk"
		install
	) > "$t/out" 2>&1
	assertContains "dwarn; $(cat "$t/calls")" "$(cat "$t/calls")" \
		"dwarn ccm: psk-file /etc/ccm/psk (in /etc/ccm/ccm.conf) does not exist"
}

test_unit_survives_switch_root() {
	u=$mod/ccm-early.service
	for line in DefaultDependencies=no KillMode=none Type=forking RemainAfterExit=yes \
		ExecStart=/sbin/ccm-connect ConditionPathExists=/run/ccm/cmdline.conf \
		Before=initrd.target WantedBy=initrd.target Wants=network-online.target \
		"After=dracut-cmdline.service dracut-initqueue.service network-online.target"; do
		assertTrue "$line" "grep -qxF '$line' '$u'"
	done
	assertFalse "no Conflicts= at all" "grep -q '^Conflicts=' '$u'"
	for f in ccm-fmon ccm-nvmirror; do
		assertTrue "$f: needs the keeper's socket" \
			"grep -qxF 'ConditionPathExists=/run/ccm/ccm.sock' '$top/handoff/$f.service'"
		assertTrue "$f: started through ccm-early exec" \
			"grep -q '^ExecStart=/usr/sbin/ccm-early exec ${f#ccm-} -- /usr/sbin/$f ' '$top/handoff/$f.service'"
	done
}

# --- handoff/ccm-state ---------------------------------------------------------------

write_state() {
	mkdir -p "$t/run"
	cat > "$t/run/state.tmp" <<-EOF
		# ccm-early handoff, format 1
		CCM_STATE='$1'
		CCM_NODE='1'
		CCM_CLIENTS=''
		CCM_CLIENT_fmon_PORTS='1'
		CCM_ERROR='it'\\''s \$(not run) \`either\`'
	EOF
	mv "$t/run/state.tmp" "$t/run/state"
}

run_state() {
	CCM_STATE_DIR=$t/run "$ccm_state" "$@" > "$t/out" 2> "$t/err"
	rc=$?
}

test_ccm_state_values() {
	write_state connected
	# status | stdout | args
	while IFS='|' read -r want out a; do
		# shellcheck disable=SC2086
		run_state $a
		assertEquals "ccm-state $a: status; $(cat "$t/err")" "$want" "$rc"
		assertEquals "ccm-state $a: output" "$out" "$(cat "$t/out")"
	done <<-'EOF'
		0|connected|STATE
		0|connected|CCM_STATE
		0|1|NODE
		0|1|CLIENT_fmon_PORTS
		0||CLIENTS
		0|it's $(not run) `either`|ERROR
		1||NOPE
		1||CLIENT_nvmirror_PORTS
		2||a-b
		2||1X
		2||STATE=x
		2||
		2||STATE NODE
		2||--frobnicate
		2||--wait
		2||--wait connected soon
		2||--wait connected -1
		2||--wait Connected 1
		2||--wait connected 1 2
	EOF
	run_state NOPE
	assertContains "names the key" "$(cat "$t/err")" "CCM_NOPE is not in"
	run_state --help
	assertEquals "--help" 0 "$rc"
	assertContains "--help text" "$(cat "$t/out")" "ccm-state --wait STATE [SEC]"
}

test_ccm_state_missing_file() {
	run_state STATE
	assertEquals "no handoff: 3" 3 "$rc"
	assertContains "says where" "$(cat "$t/err")" "no handoff at $t/run/state"
}

test_ccm_state_wait() {
	write_state connected
	run_state --wait connected 5
	assertEquals "already connected" 0 "$rc"
	write_state handshaking
	start=$(date +%s)
	run_state --wait connected 1
	secs=$(($(date +%s) - start))
	assertEquals "timed out: 1; $(cat "$t/err")" 1 "$rc"
	assertContains "says what it saw" "$(cat "$t/err")" "it is 'handshaking'"
	assertTrue "bounded ($secs s)" "[ $secs -le 3 ]"
	# The state changes while it waits; the file appears while it waits.
	(sleep 0.5 && write_state connected) &
	run_state --wait connected 10
	assertEquals "reached" 0 "$rc"
	wait
	rm -rf "$t/run"
	(sleep 0.5 && write_state terminated) &
	run_state --wait terminated
	assertEquals "file appears (no SEC: forever)" 0 "$rc"
	wait
}

. shunit2
