#!/usr/bin/env bash
# The dracut module (dracut/95ccm) and the handoff reader (handoff/ccm-state),
# without dracut and without a boot: the hooks run against fake dracut-lib
# functions (getarg, getargbool, getargs, getcmdline, warn, info, die), a fake
# /sbin/initqueue, a fake `ip` and a fake ccm-early; module-setup.sh against
# fake inst* helpers.  Every path is under $t (CCM_ROOT, hookdir, initdir).
#
# The host's kernel is never touched: the hooks' modprobe and rdma are
# CCM_MODPROBE and CCM_RDMA, here fakes that record what would have been
# run ($t/kcalls); the console is CCM_CONSOLE, a file.  Functions named
# modprobe, insmod, rmmod and rdma catch any call that bypasses them, and
# tearDown fails the test that made one.
#
# The address table is also checked against the real ccm-early ($CCM, else
# ./ccm-early) where one is built: the hook must refuse exactly what the
# binary refuses.
# The hooks run in subshells on purpose (each run starts clean); the
# validators' variables read at the top level come from oneTimeSetUp.
# shellcheck disable=SC2031
set -u
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
mod=$top/dracut/95ccm
ccm_state=$top/handoff/ccm-state

oneTimeSetUp() {
	for f in ccm-lib.sh parse-ccm.sh ccm-connect.sh ccm-generator.sh module-setup.sh \
		ccm-early.service ccm-early@.service; do
		[ -f "$mod/$f" ] || fail "missing $mod/$f"
	done
	# The validators, for the tests that call them directly.
	# shellcheck source=dracut/95ccm/ccm-lib.sh
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
	: > "$t/kcalls" && : > "$t/host-calls" && : > "$t/console"
	cmdline="" local_addrs="" tentative=""
	rdma_links="" modprobe_fails="" rdma_add_fails=""
	export CCM_MODPROBE=fake_modprobe CCM_RDMA=fake_rdma CCM_CONSOLE=$t/console
	unset DRACUT_SYSTEMD
	base_conf
}

tearDown() {
	if [ -n "${t:-}" ] && [ -e "$t/host-calls" ]; then
		assertEquals "nothing ran on the host's kernel" "" "$(cat "$t/host-calls")"
	fi
	ccm_end_test
}

# --- fakes: dracut-lib.sh -----------------------------------------------------
# $cmdline holds one argument a line (so a value may hold blanks).

getarg() {
	local want=$1 a out="" found=1
	echo "getarg $want" >> "$t/asked"
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
	echo "getargs $want" >> "$t/asked"
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
# shellcheck disable=SC2086 # the words, as dracut's getcmdline gives them
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

# The hooks' kernel commands (CCM_MODPROBE, CCM_RDMA): each call is one line
# of $t/kcalls.  modprobe fails for the modules in $modprobe_fails; `rdma
# link show` prints $rdma_links; `rdma link add` fails for the netdevs in
# $rdma_add_fails.
fake_modprobe() {
	local m
	echo "modprobe $*" >> "$t/kcalls"
	for m in $modprobe_fails; do
		case " $* " in *" $m "*) return 1 ;; esac
	done
	return 0
}
fake_rdma() {
	local n
	echo "rdma $*" >> "$t/kcalls"
	case "$1 $2" in
	"link show") [ -z "$rdma_links" ] || printf '%s\n' "$rdma_links" ;;
	"link add")
		for n in $rdma_add_fails; do
			[ "$7" = "$n" ] && { echo "rdma: cannot add $3" >&2; return 1; }
		done
		;;
	esac
	return 0
}
# What must never run here.
modprobe() { echo "modprobe $*" >> "$t/host-calls"; return 1; }
insmod() { echo "insmod $*" >> "$t/host-calls"; return 1; }
rmmod() { echo "rmmod $*" >> "$t/host-calls"; return 1; }
rdma() { echo "rdma $*" >> "$t/host-calls"; return 1; }

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
		# shellcheck source=dracut/95ccm/ccm-lib.sh
		. "$mod/ccm-lib.sh"
		# shellcheck source=dracut/95ccm/parse-ccm.sh
		. "$mod/parse-ccm.sh"
	) > "$t/out" 2>&1
	rc=$?
}

# Run ccm-connect [MODE]; its exit status in rc.
run_connect() {
	(
		# shellcheck source=dracut/95ccm/ccm-lib.sh
		. "$mod/ccm-lib.sh"
		# shellcheck source=dracut/95ccm/ccm-connect.sh
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
		echo "fake ccm-early: a line on stdout"
		echo "fake ccm-early: a line on stderr" >&2
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

# The link table against the binary's --link, once it has one: a bad value
# is a usage error (2); a good one gets as far as listening on 10.0.1.x,
# which is not ours (1).
test_link_table_matches_the_binary() {
	if [ -z "$real_ccm" ]; then
		startSkipping
		echo "no ccm-early built: skipping the cross-check" >&2
	elif ! "$real_ccm" connect --help 2>&1 | grep -q -- '--link LOCAL=PARTNER'; then
		startSkipping
		echo "#### SKIP: $real_ccm has no --link yet: the link table is not cross-checked ####" >&2
	fi
	mkdir -p "$t/clients"
	while IFS='|' read -r kind value _; do
		isSkipping && break
		"$real_ccm" connect --node-id 1 --link "$value" --once --timeout 1 \
			--clients "$t/clients" --state-dir "$t/run" > "$t/out" 2>&1 < /dev/null
		r=$?
		if [ "$kind" = link ] || [ "$kind" = strict ]; then
			assertEquals "ccm-early takes --link '$value': $(cat "$t/out")" 1 "$r"
		else
			assertEquals "ccm-early refuses --link '$value': $(cat "$t/out")" 2 "$r"
		fi
	done < <(link_table)
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

# Each rd.ccm argument alone, on top of a complete ccm.conf (for rd.ccm.link,
# one with only the node id: a link replaces listen and partner).
#   ok   | argument | the fragment line it must write
#   bad  | argument | what the warning must say
#   link | argument | cmdline.links (the value)
#   rxe  | argument | cmdline.rxe, its lines joined by blanks
every_argument_table() {
	cat <<-'EOF'
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
		rxe|rd.ccm.rxe=eth0|eth0 
		rxe|rd.ccm.rxe=eth1.100|eth1.100 
		rxe|rd.ccm.rxe=eth0,eth1|eth0 eth1 
		rxe|rd.ccm.rxe=ib-a,eth_b,c.1,d|ib-a eth_b c.1 d 
		bad|rd.ccm.rxe=|empty value
		bad|rd.ccm.rxe=eth0,|an empty interface name
		bad|rd.ccm.rxe=,eth0|an empty interface name
		bad|rd.ccm.rxe=eth0,,eth1|an empty interface name
		bad|rd.ccm.rxe=,|an empty interface name
		bad|rd.ccm.rxe=eth0,eth0|'eth0' is named twice
		bad|rd.ccm.rxe=eth0,eth1,eth0|'eth0' is named twice
		bad|rd.ccm.rxe=a,b,c,d,e|more than 4 interfaces
		bad|rd.ccm.rxe=eth 0|not a device name
		bad|rd.ccm.rxe=eth0, eth1|not a device name
		bad|rd.ccm.rxe=eth0;eth1|not a device name
		bad|rd.ccm.rxe=eth0/1|not a device name
		bad|rd.ccm.rxe=$(reboot)|not a device name
		bad|rd.ccm.rxe=..|not a device name
		bad|rd.ccm.rxe=eth0,.|not a device name
		bad|rd.ccm.rxe=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|longer than 63
	EOF
	link_table | sed 's/|/|rd.ccm.link=/; s/^strict|/bad|/'
}

# rd.ccm.link values, for the hook and for ccm-early's --link.
#   link   | value | what the hook stores (the value)
#   bad    | value | what the warning must say
#   strict | value | the same, but ccm-early takes it: an empty device=,
#                    which it reads as "none", is refused by the hook as an
#                    empty rd.ccm.device= is
link_table() {
	cat <<-'EOF'
		link|10.0.1.1=10.0.1.2|10.0.1.1=10.0.1.2
		link|[fd01::1]:7471=[fd01::2]:7471|[fd01::1]:7471=[fd01::2]:7471
		link|fd01::1=fd01::2|fd01::1=fd01::2
		link|10.0.1.1:7000=10.0.1.1:7001|10.0.1.1:7000=10.0.1.1:7001
		link|10.0.1.1=10.0.1.2,device=rxe0|10.0.1.1=10.0.1.2,device=rxe0
		link|10.0.1.1=10.0.1.2,priority=255|10.0.1.1=10.0.1.2,priority=255
		link|10.0.1.1=10.0.1.2,priority=0,device=mlx5_0|10.0.1.1=10.0.1.2,priority=0,device=mlx5_0
		link|10.0.1.1=10.0.1.2,device=rxe1,priority=007|10.0.1.1=10.0.1.2,device=rxe1,priority=007
		link|10.0.1.1=10.0.1.2,,device=rxe0,|10.0.1.1=10.0.1.2,,device=rxe0,
		bad||empty value
		bad|10.0.1.1|expected LOCAL=PARTNER
		bad|10.0.1.1,device=rxe0|expected LOCAL=PARTNER
		bad|,device=rxe0|expected LOCAL=PARTNER
		bad|10.0.1.1=|partner address: empty value
		bad|=10.0.1.2|local address: empty value
		bad|=|local address: empty value
		bad|10.0.1.1=10.0.1.2=10.0.1.3|partner address: '10.0.1.2=10.0.1.3' is not
		bad|node-a=10.0.1.2|local address: 'node-a' is not a numeric IPv4 address
		bad|10.0.1.1=node-b:7471|partner address: 'node-b' is not a numeric IPv4 address
		bad|10.0.1.1=10.0.1.2:0|partner address: port '0'
		bad|10.0.1.1:65536=10.0.1.2|local address: port '65536'
		bad|[fd01::1=[fd01::2]|local address: missing ']'
		bad|10.0.1.1 =10.0.1.2|local address
		bad|10.0.1.1=10.0.1.1|LOCAL and PARTNER are the same address
		bad|10.0.1.1:7471=10.0.1.1|LOCAL and PARTNER are the same address
		bad|[fd01::1]=[fd01::1]:07471|LOCAL and PARTNER are the same address
		strict|10.0.1.1=10.0.1.2,device=|device: empty value
		bad|10.0.1.1=10.0.1.2,device=rxe/0|device: 'rxe/0' is not a device name
		bad|10.0.1.1=10.0.1.2,device=..|device: '..' is not a device name
		bad|10.0.1.1=10.0.1.2,priority=|priority: empty value
		bad|10.0.1.1=10.0.1.2,priority=256|priority: '256' is not in 0..255
		bad|10.0.1.1=10.0.1.2,priority=-1|priority: '-1' is not a decimal number
		bad|10.0.1.1=10.0.1.2,priority=0x1|priority: '0x1' is not a decimal number
		bad|10.0.1.1=10.0.1.2,priority=1 |priority: '1 ' is not a decimal number
		bad|10.0.1.1=10.0.1.2,weight=1|unknown option 'weight=1' (device=, priority=)
		bad|10.0.1.1=10.0.1.2,rxe0|unknown option 'rxe0'
		bad|10.0.1.1=10.0.1.2,DEVICE=rxe0|unknown option 'DEVICE=rxe0'
		bad|10.0.1.1=10.0.1.2,device=aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|longer than 255 bytes
	EOF
}

test_parse_every_argument() {
	while IFS='|' read -r kind arg want; do
		rm -rf "$CCM_ROOT/run/ccm" "$hookdir/initqueue/finished/ccm-early.sh"
		: > "$t/log" && : > "$t/initqueue"
		case $arg in
		rd.ccm.link=*) printf 'node-id = 1\n' > "$CCM_ROOT/etc/ccm/ccm.conf" ;;
		*) base_conf ;;
		esac
		args "$arg"
		run_parse
		assertEquals "[$arg] the hook returns 0; $(shown)" 0 "$rc"
		case $kind in
		ok | link | rxe)
			assertNotContains "[$arg] no warning; $(shown)" "$(cat "$t/log")" "warn:"
			assertEquals "[$arg] initqueue scheduled; $(shown)" 2 "$(wc -l < "$t/initqueue")"
			;;
		esac
		case $kind in
		ok)
			assertContains "[$arg] fragment; $(shown)" "$(frag)" "$want"
			;;
		link)
			assertEquals "[$arg] links file; $(shown)" "$want" \
				"$(cat "$CCM_ROOT/run/ccm/cmdline.links" 2> /dev/null)"
			assertEquals "[$arg] nothing in the fragment; $(shown)" "" "$(frag | grep -v '^#')"
			;;
		rxe)
			assertEquals "[$arg] rxe file; $(shown)" "$want" \
				"$(tr '\n' ' ' < "$CCM_ROOT/run/ccm/cmdline.rxe" 2> /dev/null)"
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
	done < <(every_argument_table)
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

# dracut's getarg reads the command line again and runs dracut-getarg at
# every call, in subshells (milliseconds each under TCG): the hook asks only
# for what the command line mentions, and still takes it whole.
test_parse_asks_only_for_the_arguments_given() {
	base_conf
	args rd.ccm.rxe=eth0 rd.ccm.timeout=90
	run_parse
	assertEquals "asked only for the two given; $(shown)" "getarg rd.ccm.timeout=
getarg rd.ccm.rxe=" "$(cat "$t/asked" 2>/dev/null)"
	assertEquals "and took them" "timeout = 90" "$(frag | grep -v '^#')"
	assertEquals "rxe" eth0 "$(cat "$CCM_ROOT/run/ccm/cmdline.rxe" 2>/dev/null)"
	rm -f "$t/asked"
	args
	run_parse
	assertEquals "nothing given, nothing asked" "" "$(cat "$t/asked" 2>/dev/null)"
}

test_parse_everything_at_once() {
	rm "$CCM_ROOT/etc/ccm/ccm.conf"
	args rd.ccm.node=2 rd.ccm.listen=10.0.0.2 "rd.ccm.partner=[fd00::1]:7000" \
		rd.ccm.transport=rdma rd.ccm.device=rxe0 rd.ccm.timeout=30 rd.ccm.required \
		rd.ccm.rxe=eth1,eth2 quiet
	run_parse
	assertEquals "fragment; $(shown)" "node-id = 2
listen = 10.0.0.2
partner = [fd00::1]:7000
transport = rdma
device = rxe0
timeout = 30" "$(frag | grep -v '^#')"
	assertEquals "rxe" "eth1
eth2" "$(cat "$CCM_ROOT/run/ccm/cmdline.rxe")"
	assertFalse "no links" "[ -e '$CCM_ROOT/run/ccm/cmdline.links' ]"
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
}

# Up to four rd.ccm.link, kept in their order with their options; they
# replace listen and partner, so a ccm.conf with neither is complete.
test_parse_links() {
	printf 'node-id = 2\ntransport = rdma\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	args rd.ccm.link=10.0.1.2=10.0.1.1,device=rxe0,priority=2 rd.ccm.timeout=30 \
		"rd.ccm.link=[fd02::2]:7000=[fd02::1]:7000" rd.ccm.link=10.0.3.2=10.0.3.1,priority=1 \
		rd.ccm.link=10.0.4.2:7471=10.0.4.1:7472 rd.ccm.rxe=eth1,eth3
	run_parse
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertEquals "links, in order" "10.0.1.2=10.0.1.1,device=rxe0,priority=2
[fd02::2]:7000=[fd02::1]:7000
10.0.3.2=10.0.3.1,priority=1
10.0.4.2:7471=10.0.4.1:7472" "$(cat "$CCM_ROOT/run/ccm/cmdline.links")"
	assertEquals "the fragment has the rest" "timeout = 30" "$(frag | grep -v '^#')"
	assertEquals "queued" 2 "$(wc -l < "$t/initqueue")"

	# A fifth is one too many: named, and ccm is off.
	: > "$t/log" && : > "$t/initqueue"
	args rd.ccm.link=10.0.1.2=10.0.1.1 rd.ccm.link=10.0.2.2=10.0.2.1 rd.ccm.link=10.0.3.2=10.0.3.1 \
		rd.ccm.link=10.0.4.2=10.0.4.1 rd.ccm.link=10.0.5.2=10.0.5.1
	run_parse
	assertContains "the fifth; $(shown)" "$(cat "$t/log")" \
		"warn: ccm: rd.ccm.link=10.0.5.2=10.0.5.1: more than 4 links"
	assertEquals "only the fifth is wrong" 1 "$(grep -c 'warn: ccm: rd.ccm.link=' "$t/log")"
	assertContains "off" "$(cat "$t/log")" "off for this boot"
	assertFalse "no fragment" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	assertFalse "no links file" "[ -e '$CCM_ROOT/run/ccm/cmdline.links' ]"
	assertEquals "nothing queued" "" "$(cat "$t/initqueue")"

	# Two links on one local address (the same port written two ways).
	: > "$t/log"
	args rd.ccm.link=10.0.1.2=10.0.1.1 rd.ccm.link=10.0.1.2:07471=10.0.2.1
	run_parse
	assertContains "the same local address; $(shown)" "$(cat "$t/log")" \
		"warn: ccm: rd.ccm.link=10.0.1.2:07471=10.0.2.1: another rd.ccm.link listens on 10.0.1.2:07471 too"
	assertFalse "off" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"

	# A wrong link is the only complaint: no "listen not given" on top.
	: > "$t/log"
	for a in rd.ccm.link=10.0.1.2 rd.ccm.link=; do
		: > "$t/log"
		args "$a"
		run_parse
		assertNotContains "[$a] no listen/partner noise; $(shown)" "$(cat "$t/log")" "not given"
		assertEquals "[$a] one warning and 'off'; $(shown)" 2 "$(grep -c 'warn:' "$t/log")"
	done
}

# rd.ccm.link replaces listen/partner/device: not both, from the command
# line or from ccm.conf; each clash is named with where it comes from.
test_parse_links_exclude_listen_partner_device() {
	printf 'node-id = 2\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	# command line | what the warning must say
	while IFS='|' read -r line want; do
		: > "$t/log" && : > "$t/initqueue" && rm -rf "$CCM_ROOT/run/ccm"
		# shellcheck disable=SC2086 # the words of the command line
		args $line
		run_parse
		assertContains "[$line] named; $(shown)" "$(cat "$t/log")" "$want"
		assertContains "[$line] off; $(shown)" "$(cat "$t/log")" "off for this boot"
		assertFalse "[$line] no fragment" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
		assertEquals "[$line] nothing queued" "" "$(cat "$t/initqueue")"
	done <<-'EOF'
		rd.ccm.link=10.0.1.2=10.0.1.1 rd.ccm.listen=10.0.0.2|warn: ccm: rd.ccm.listen=10.0.0.2: not with rd.ccm.link, which replaces rd.ccm.listen, rd.ccm.partner and rd.ccm.device
		rd.ccm.partner=10.0.0.1 rd.ccm.link=10.0.1.2=10.0.1.1|warn: ccm: rd.ccm.partner=10.0.0.1: not with rd.ccm.link
		rd.ccm.link=10.0.1.2=10.0.1.1 rd.ccm.device=rxe0|warn: ccm: rd.ccm.device=rxe0: not with rd.ccm.link
	EOF
	# With rd.ccm.required the clash stops the boot at the connect step.
	args rd.ccm.link=10.0.1.2=10.0.1.1 rd.ccm.listen=10.0.0.2 rd.ccm.required
	run_parse
	assertContains "required: kept for the connect step" \
		"$(cat "$CCM_ROOT/run/ccm/cmdline.err" 2> /dev/null)" "rd.ccm.listen=10.0.0.2: not with rd.ccm.link"
	# ccm.conf's listen, partner or device against rd.ccm.link.
	for k in "listen = 10.0.0.2" "partner = 10.0.0.1" "device = rxe0"; do
		: > "$t/log" && rm -rf "$CCM_ROOT/run/ccm"
		printf 'node-id = 2\n%s\n' "$k" > "$CCM_ROOT/etc/ccm/ccm.conf"
		args rd.ccm.link=10.0.1.2=10.0.1.1
		run_parse
		assertContains "[ccm.conf $k] named; $(shown)" "$(cat "$t/log")" \
			"warn: ccm: rd.ccm.link=10.0.1.2=10.0.1.1: it replaces listen, partner and device, but /etc/ccm/ccm.conf sets '${k%% *}'"
		assertFalse "[ccm.conf $k] off" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	done
	# ccm.conf's links against rd.ccm.listen; and they are enough alone.
	printf 'node-id = 2\nlink = 10.0.1.2=10.0.1.1\nlink = 10.0.2.2=10.0.2.1\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	: > "$t/log" && rm -rf "$CCM_ROOT/run/ccm"
	args rd.ccm.listen=10.0.0.2
	run_parse
	assertContains "ccm.conf's links; $(shown)" "$(cat "$t/log")" \
		"warn: ccm: rd.ccm.listen=10.0.0.2: /etc/ccm/ccm.conf has 'link' lines, which replace listen"
	: > "$t/log" && rm -rf "$CCM_ROOT/run/ccm"
	args
	run_parse
	assertEquals "ccm.conf's links alone: no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertTrue "on" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	# rd.ccm.link replaces ccm.conf's links (ccm-early: the command line's
	# links replace the file's).
	: > "$t/log" && rm -rf "$CCM_ROOT/run/ccm"
	args rd.ccm.link=10.0.9.2=10.0.9.1
	run_parse
	assertEquals "over ccm.conf's links: no warning; $(shown)" "" "$(grep warn: "$t/log")"
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
	printf 'node-id = 1\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	cat > "$t/fakes.sh" <<-EOF
		getarg() { case \$1 in rd.ccm.node=) printf 7; return 0 ;; rd.ccm.rxe=) printf 'eth1,eth2'; return 0 ;; esac; return 1; }
		getargs() { printf '10.0.1.1=10.0.1.2,device=rxe0\n[fd00::1]:9=[fd00::2]:9,priority=1\n'; }
		getargbool() { [ "\$2" = rd.ccm ]; }
		getcmdline() { printf 'rd.ccm.node=7 rd.ccm.rxe=eth1,eth2 rd.ccm.link=10.0.1.1=10.0.1.2,device=rxe0 rd.ccm.link=[fd00::1]:9=[fd00::2]:9,priority=1 rd.ccm.bogus=1'; }
		warn() { echo "warn: \$*" >> "$t/log"; }
		info() { echo "info: \$*" >> "$t/log"; }
	EOF
	DRACUT_SYSTEMD=1 dash -c ". '$t/fakes.sh'; . '$mod/ccm-lib.sh'; . '$mod/parse-ccm.sh'" > "$t/out" 2>&1
	assertEquals "dash: status; $(shown)" 0 $?
	assertEquals "dash: fragment; $(shown)" "node-id = 7" "$(frag | grep -v '^#')"
	assertEquals "dash: links" "10.0.1.1=10.0.1.2,device=rxe0
[fd00::1]:9=[fd00::2]:9,priority=1" "$(cat "$CCM_ROOT/run/ccm/cmdline.links" 2> /dev/null)"
	assertEquals "dash: rxe" "eth1
eth2" "$(cat "$CCM_ROOT/run/ccm/cmdline.rxe" 2> /dev/null)"
	assertEquals "dash: only the unknown argument is warned about; $(shown)" \
		"warn: ccm: unknown argument 'rd.ccm.bogus=1' ignored" "$(grep warn: "$t/log")"
}

# The connect step is POSIX too: links and rxe under dash.
test_connect_under_dash() {
	command -v dash > /dev/null || { fail "dash is missing: scripts/deps.sh test installs it"; return; }
	fake_ccm 0
	printf 'node-id = 1\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	on_fragment "timeout = 9
"
	printf '%s\n' 10.0.1.1=10.0.1.2,device=rxe0 "[fd00::1]:9=[fd00::2]:9" > "$CCM_ROOT/run/ccm/cmdline.links"
	printf '%s\n' eth1 eth2 > "$CCM_ROOT/run/ccm/cmdline.rxe"
	cat > "$t/fakes.sh" <<-EOF
		getarg() { return 1; }
		getargbool() { return 1; }
		warn() { echo "warn: \$*" >> "$t/log"; }
		info() { echo "info: \$*" >> "$t/log"; }
		die() { echo "die: \$*" >> "$t/log"; exit 1; }
		dash_modprobe() { echo "modprobe \$*" >> "$t/kcalls"; }
		dash_rdma() { echo "rdma \$*" >> "$t/kcalls"; }
		ip() { echo "2: eth1    inet \$5/24 scope global eth1"; }
	EOF
	CCM_MODPROBE=dash_modprobe CCM_RDMA=dash_rdma DRACUT_SYSTEMD=1 \
		dash -c ". '$t/fakes.sh'; . '$mod/ccm-lib.sh'; . '$mod/ccm-connect.sh'" > "$t/out" 2>&1
	assertEquals "dash: status; $(shown)" 0 $?
	assertEquals "dash: options; $(shown)" \
		"connect --config $CCM_ROOT/etc/ccm/ccm.conf --link 10.0.1.1=10.0.1.2,device=rxe0 --link [fd00::1]:9=[fd00::2]:9 --state-dir $CCM_ROOT/run/ccm --timeout 9" \
		"$(cat "$t/ccm-args")"
	assertEquals "dash: the kernel commands" "modprobe -q -a ib_uverbs rdma_ucm
modprobe -q crc32_generic
modprobe -q rdma_rxe
rdma link show
rdma link add rxe0 type rxe netdev eth1
rdma link add rxe1 type rxe netdev eth2" "$(cat "$t/kcalls")"
	assertContains "dash: connected" "$(cat "$t/log")" "info: ccm: connected to node 2"
	assertContains "dash: ccm-early on the console" "$(cat "$t/console")" "fake ccm-early"
}

test_shellcheck_posix() {
	command -v shellcheck > /dev/null || { fail "shellcheck is missing: scripts/deps.sh test installs it"; return; }
	# Not followed: the sourced libraries (dracut-lib.sh, ccm-lib.sh), which
	# also assign the variables the hooks use.
	for f in ccm-lib.sh parse-ccm.sh ccm-connect.sh ccm-generator.sh; do
		out=$(shellcheck -s sh -e SC1091,SC2153,SC2154 "$mod/$f" 2>&1)
		assertEquals "shellcheck -s sh $f: $out" "" "$out"
	done
	out=$(shellcheck -s sh "$ccm_state" 2>&1)
	assertEquals "shellcheck handoff/ccm-state: $out" "" "$out"
	out=$(shellcheck -s bash -e SC1091,SC2034,SC2154 "$mod/module-setup.sh" 2>&1)
	assertEquals "shellcheck module-setup.sh: $out" "" "$out"
	# The tests of the module: this suite and the boot proof (from the top,
	# where their `source=` paths start).
	out=$(cd "$top" && shellcheck -x tests/dracut/test_module.sh tests/boot/test_boot.sh \
		tests/boot/lib.sh tests/boot/setup.sh 2>&1)
	assertEquals "shellcheck the module's tests: $out" "" "$out"
	out=$(shellcheck -s sh "$top/tests/boot/root-init.sh" 2>&1)
	assertEquals "shellcheck tests/boot/root-init.sh: $out" "" "$out"
}

# --- ccm-connect ---------------------------------------------------------------------

test_connect_exit_codes() {
	# ccm-early's status | rd.ccm.required | info/warn/die | what it says | done marker
	while IFS='|' read -r code req kind msg marked; do
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
		if [ "$marked" = yes ]; then
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

# The settled pass that finds the listen address up connects right there:
# once, and queueing nothing.
test_settled_connects_once_the_listen_address_is_up() {
	fake_ccm 0
	on_fragment
	run_connect settled
	assertEquals "address not there: not run; $(shown)" "" "$(cat "$t/ccm-args")"
	local_addrs=10.0.0.1/24 tentative=1
	run_connect settled
	assertEquals "tentative: not run; $(shown)" "" "$(cat "$t/ccm-args")"
	tentative=""
	run_connect settled
	assertEquals "run; $(shown)" 1 "$(grep -c '^connect ' "$t/ccm-args")"
	assertTrue "done: the initqueue may finish" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]"
	run_connect settled
	assertEquals "run once" 1 "$(grep -c '^connect ' "$t/ccm-args")"
	assertEquals "nothing queued" "" "$(cat "$t/initqueue")"
	# The address from the fragment, not ccm.conf.
	rm -f "$CCM_ROOT/run/ccm/connect.queued" "$CCM_ROOT/run/ccm/connect.done"
	: > "$t/ccm-args"
	on_fragment "listen = [fd00::5]:7471
"
	run_connect settled
	assertEquals "fragment's listen not up; $(shown)" "" "$(cat "$t/ccm-args")"
	local_addrs="10.0.0.1/24 fd00::5/64"
	run_connect settled
	assertEquals "fragment's listen up; $(shown)" 1 "$(grep -c '^connect ' "$t/ccm-args")"
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
	# Links: each local address; the message names the missing one.
	rm "$CCM_ROOT/run/ccm/connect.done" && : > "$t/log" && : > "$t/ccm-args"
	printf '%s\n' "10.0.1.1=10.0.1.2" "10.0.2.1=10.0.2.2" > "$CCM_ROOT/run/ccm/cmdline.links"
	local_addrs=10.0.1.1/24
	run_connect
	assertContains "a link's address never up; $(shown)" "$(cat "$t/log")" \
		"the listen address 10.0.2.1 was not configured within 1 s"
	assertEquals "ccm-early not run" "" "$(cat "$t/ccm-args")"
}

# rd.ccm.rxe and the rdma transport: what would have been loaded and run,
# in order.  Every case starts from a fragment as parse-ccm.sh leaves it.
#   transport | rxe netdevs | rdma link show | modprobe fails | link add fails | kcalls (;-separated) | log | runs ccm-early
test_connect_kernel_commands() {
	while IFS='|' read -r transport nds shown_links mfail afail want_calls want_log runs; do
		rm -rf "$CCM_ROOT/run/ccm" && : > "$t/log" && : > "$t/kcalls" && : > "$t/ccm-args"
		fake_ccm 0
		on_fragment "${transport:+transport = $transport
}"
		# shellcheck disable=SC2086 # one interface a word
		[ -z "$nds" ] || printf '%s\n' $nds > "$CCM_ROOT/run/ccm/cmdline.rxe"
		rdma_links=$shown_links modprobe_fails=$mfail rdma_add_fails=$afail
		run_connect
		tag="[transport=$transport rxe=$nds have=$shown_links mfail=$mfail afail=$afail]"
		assertEquals "$tag status; $(shown)" 0 "$rc"
		assertEquals "$tag the calls; $(shown)" "$want_calls" "$(paste -sd';' "$t/kcalls")"
		[ -z "$want_log" ] || assertContains "$tag log; $(shown)" "$(cat "$t/log")" "$want_log"
		if [ "$runs" = yes ]; then
			assertEquals "$tag ccm-early ran" 1 "$(wc -l < "$t/ccm-args")"
		else
			assertEquals "$tag ccm-early did not run" "" "$(cat "$t/ccm-args")"
			assertContains "$tag boots on" "$(cat "$t/log")" "booting on without the cluster interconnect"
		fi
	done <<-'EOF'
		|||||||yes
		tcp|||||||yes
		rdma|||||modprobe -q -a ib_uverbs rdma_ucm||yes
		rdma||||ib_uverbs|modprobe -q -a ib_uverbs rdma_ucm||yes
		|eth0||||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev eth0|info: ccm: Soft-RoCE device rxe0 on eth0 (rd.ccm.rxe)|yes
		rdma|eth0 eth1||||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev eth0;rdma link add rxe1 type rxe netdev eth1|info: ccm: Soft-RoCE device rxe1 on eth1 (rd.ccm.rxe)|yes
		rdma|a b c d||||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev a;rdma link add rxe1 type rxe netdev b;rdma link add rxe2 type rxe netdev c;rdma link add rxe3 type rxe netdev d||yes
		rdma|eth0 eth1|link rxe0/1 state ACTIVE physical_state LINK_UP netdev eth0|||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe1 type rxe netdev eth1||yes
		rdma|eth0 eth1|link mlx5_0/1 state ACTIVE physical_state LINK_UP netdev eth1|||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev eth0||yes
		rdma|eth0|link rxe9/1 state ACTIVE physical_state LINK_UP netdev eth01|||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev eth0||yes
		rdma|eth0|link rxe9/1 state ACTIVE physical_state LINK_UP netdev eth0.5|||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev eth0||yes
		rdma|eth0||rdma_rxe||modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe|warn: ccm: rd.ccm.rxe: cannot load rdma_rxe|no
		rdma|eth0 eth1|||eth1|modprobe -q -a ib_uverbs rdma_ucm;modprobe -q crc32_generic;modprobe -q rdma_rxe;rdma link show;rdma link add rxe0 type rxe netdev eth0;rdma link add rxe1 type rxe netdev eth1|warn: ccm: rd.ccm.rxe: cannot create the Soft-RoCE device rxe1 on eth1 (rdma link add failed)|no
	EOF
	# With rd.ccm.required a failed rxe stops the boot.
	rm -rf "$CCM_ROOT/run/ccm" && : > "$t/log" && : > "$t/ccm-args"
	on_fragment
	echo eth0 > "$CCM_ROOT/run/ccm/cmdline.rxe"
	rdma_add_fails=eth0
	args rd.ccm.required
	run_connect
	assertEquals "required: dies; $(shown)" 1 "$rc"
	assertContains "required: says why" "$(cat "$t/log")" \
		"die: ccm: rd.ccm.required: rd.ccm.rxe: cannot create the Soft-RoCE device rxe0 on eth0"
	assertEquals "required: ccm-early not run" "" "$(cat "$t/ccm-args")"
}

# The links become --link options, in order, after the fragment's options.
test_connect_links() {
	fake_ccm 0
	printf 'node-id = 1\ntransport = rdma\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	on_fragment "timeout = 7
"
	printf '%s\n' "10.0.1.1=10.0.1.2,device=rxe0,priority=2" "[fd02::1]:7000=[fd02::2]:7000" \
		> "$CCM_ROOT/run/ccm/cmdline.links"
	run_connect
	assertEquals "options; $(shown)" \
		"connect --config $CCM_ROOT/etc/ccm/ccm.conf --link 10.0.1.1=10.0.1.2,device=rxe0,priority=2 --link [fd02::1]:7000=[fd02::2]:7000 --state-dir $CCM_ROOT/run/ccm --timeout 7" \
		"$(cat "$t/ccm-args")"
	assertEquals "rdma: the verbs modules" "modprobe -q -a ib_uverbs rdma_ucm" "$(cat "$t/kcalls")"
}

# Every link's local address must be up before the connect is queued
# (ccm-early binds them all as it starts): the command line's links, else
# ccm.conf's.
test_settled_waits_for_every_link_address() {
	printf 'node-id = 1\n' > "$CCM_ROOT/etc/ccm/ccm.conf"
	on_fragment
	printf '%s\n' "10.0.1.1=10.0.1.2,device=rxe0" "[fd02::1]:7000=[fd02::2]:7000" \
		> "$CCM_ROOT/run/ccm/cmdline.links"
	fake_ccm 0
	local_addrs=10.0.1.1/24
	run_connect settled
	assertEquals "one of two: not run; $(shown)" "" "$(cat "$t/ccm-args")"
	local_addrs="10.0.1.1/24 fd02::1/64"
	run_connect settled
	assertEquals "both: run; $(shown)" 1 "$(grep -c '^connect ' "$t/ccm-args")"
	# ccm.conf's links, when the command line has none.
	rm -f "$CCM_ROOT/run/ccm/connect.queued" "$CCM_ROOT/run/ccm/connect.done" \
		"$CCM_ROOT/run/ccm/cmdline.links"
	: > "$t/ccm-args"
	printf 'node-id = 1\nlink = 10.0.3.1=10.0.3.2\nlink = "10.0.4.1:7000=10.0.4.2,priority=1"\n' \
		> "$CCM_ROOT/etc/ccm/ccm.conf"
	local_addrs="10.0.3.1/24 10.0.1.1/24"
	run_connect settled
	assertEquals "ccm.conf's second link not up; $(shown)" "" "$(cat "$t/ccm-args")"
	local_addrs="10.0.3.1/24 10.0.4.1/24"
	run_connect settled
	assertEquals "ccm.conf's links up; $(shown)" 1 "$(grep -c '^connect ' "$t/ccm-args")"
	# The timeout hook names the address that never came up.
	rm -f "$CCM_ROOT/run/ccm/connect.queued" "$CCM_ROOT/run/ccm/connect.done"
	: > "$t/log" && : > "$t/ccm-args"
	local_addrs=10.0.3.1/24
	fake_ccm 0
	run_connect timeout
	assertContains "timeout: names it; $(shown)" "$(cat "$t/log")" \
		"warn: ccm: the listen address 10.0.4.1 never came up"
	assertEquals "timeout: ccm-early not run" "" "$(cat "$t/ccm-args")"
}

# In a systemd initramfs ccm-early (and so the keeper) writes to the
# console, not to the unit's journal stream, which ends at switch-root; in
# dracut's own init it keeps the hook's output, which is the console.
test_connect_output_outlives_the_initramfs() {
	fake_ccm 0
	on_fragment
	run_connect
	assertContains "dracut's init: the hook's output; $(shown)" "$(cat "$t/out")" "fake ccm-early: a line on stderr"
	assertEquals "dracut's init: not the console" "" "$(cat "$t/console")"
	rm "$CCM_ROOT/run/ccm/connect.done"
	export DRACUT_SYSTEMD=1
	local_addrs=10.0.0.1/24
	run_connect
	assertContains "systemd: stderr on the console; $(shown)" "$(cat "$t/console")" "fake ccm-early: a line on stderr"
	assertContains "systemd: stdout on the console" "$(cat "$t/console")" "fake ccm-early: a line on stdout"
	assertNotContains "systemd: not the unit's output" "$(cat "$t/out")" "fake ccm-early"
	assertContains "systemd: the hook itself still reports" "$(cat "$t/log")" "info: ccm: connected to node 2"
}

test_connect_unknown_mode() {
	run_connect frobnicate
	assertEquals "status" 2 "$rc"
	assertContains "says so" "$(cat "$t/log")" "unknown mode 'frobnicate'"
}

# --- named instances (rd.ccm.instance) ---------------------------------------------

# instance_conf NAME [LINES]: /etc/ccm/NAME.conf in the image, by default
# complete (node-id, listen, partner on port 7472).
instance_conf() {
	printf '%s' "${2:-node-id = 1
listen = 10.0.0.1:7472
partner = 10.0.0.2:7472
}" > "$CCM_ROOT/etc/ccm/$1.conf"
}

ifrag() { cat "$CCM_ROOT/run/ccm/$1/cmdline.conf" 2> /dev/null; }

# Each instance named comes up beside the unnamed one; only the timeout of
# the command line is theirs.
test_parse_instances() {
	instance_conf mirror
	instance_conf ctrl_b
	args rd.ccm.instance=mirror rd.ccm.timeout=30 rd.ccm.node=1 rd.ccm.instance=ctrl_b
	run_parse
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertEquals "the unnamed one's fragment" "node-id = 1
timeout = 30" "$(frag | grep -v '^#')"
	assertEquals "the instances, in order" "mirror
ctrl_b" "$(cat "$CCM_ROOT/run/ccm/cmdline.instances" 2> /dev/null)"
	assertEquals "mirror: only the timeout" "timeout = 30" "$(ifrag mirror | grep -v '^#')"
	assertEquals "ctrl_b: only the timeout" "timeout = 30" "$(ifrag ctrl_b | grep -v '^#')"
	assertEquals "finished hook of mirror" "[ -e '$CCM_ROOT/run/ccm/mirror/connect.done' ]" \
		"$(cat "$hookdir/initqueue/finished/ccm-early@mirror.sh" 2> /dev/null)"
	assertTrue "finished hook of ctrl_b" "[ -e '$hookdir/initqueue/finished/ccm-early@ctrl_b.sh' ]"
	assertTrue "and of the unnamed one" "[ -e '$hookdir/initqueue/finished/ccm-early.sh' ]"
	assertEquals "one settled and one timeout job for them all" 2 "$(wc -l < "$t/initqueue")"
	# A comma list is the same; no rd.ccm.timeout: an empty fragment.
	args rd.ccm.instance=ctrl_b,mirror
	run_parse
	assertEquals "comma list; $(shown)" "ctrl_b
mirror" "$(cat "$CCM_ROOT/run/ccm/cmdline.instances" 2> /dev/null)"
	assertEquals "no timeout" "" "$(ifrag mirror | grep -v '^#')"
	assertTrue "mirror on" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
}

# Without ccm.conf and without a setting of its own, the unnamed instance
# stays down: a node may run named instances only.
test_parse_only_named_instances() {
	rm "$CCM_ROOT/etc/ccm/ccm.conf"
	instance_conf mirror
	args rd.ccm.instance=mirror
	run_parse
	assertEquals "no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertContains "says so" "$(cat "$t/log")" "info: ccm: only the named instances"
	assertFalse "no unnamed fragment" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	assertFalse "no unnamed finished hook" "[ -e '$hookdir/initqueue/finished/ccm-early.sh' ]"
	assertTrue "mirror on" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
	assertEquals "jobs queued" 2 "$(wc -l < "$t/initqueue")"
	# An unnamed setting on the command line wants it back, and then it
	# must be complete.
	args rd.ccm.instance=mirror rd.ccm.listen=10.0.0.1
	run_parse
	assertContains "the unnamed one is incomplete; $(shown)" "$(cat "$t/log")" \
		"warn: ccm: rd.ccm.node=: not given"
	assertFalse "off" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
}

# kind | rd.ccm.instance value(s), ';' between arguments | what the warning says
test_parse_instance_errors() {
	local i many=""
	for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17; do
		instance_conf "i$i"
		many="${many:+$many,}i$i"
	done
	instance_conf mirror
	instance_conf nonode "listen = 10.0.0.1:7472
partner = 10.0.0.2:7472
"
	instance_conf nopartner "node-id = 1
listen = 10.0.0.1:7472
"
	instance_conf linked "node-id = 1
link = 10.0.1.1=10.0.1.2
"
	while IFS='|' read -r vals want; do
		rm -rf "$CCM_ROOT/run/ccm" && : > "$t/log" && : > "$t/initqueue"
		cmdline=$(printf '%s\n' "$vals" | tr ';' '\n' | sed 's/^/rd.ccm.instance=/')
		run_parse
		assertContains "[$vals] warning says why; $(shown)" "$(cat "$t/log")" "$want"
		assertContains "[$vals] off; $(shown)" "$(cat "$t/log")" "off for this boot"
		assertFalse "[$vals] no fragment" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
		assertFalse "[$vals] no instance on" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
		assertEquals "[$vals] nothing queued" "" "$(cat "$t/initqueue")"
	done <<-EOF
		Mirror;mirror|rd.ccm.instance=Mirror: 'Mirror' is not an instance name
		mirror,1x|rd.ccm.instance=mirror,1x: '1x' is not an instance name
		ctrl-b|'ctrl-b' is not an instance name
		../etc|'../etc' is not an instance name
		mirror,|rd.ccm.instance=mirror,: empty value
		mirror;|rd.ccm.instance=: empty value
		aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa|longer than 31 bytes
		state|'state' is the unnamed instance's
		mirror,ccm|'ccm' is the unnamed instance's
		metrics|'metrics' is the unnamed instance's
		mirror;mirror|instance 'mirror' is named twice
		absent|no /etc/ccm/absent.conf in the image
		nonode|instance 'nonode': no 'node-id' in /etc/ccm/nonode.conf
		nopartner|instance 'nopartner': no 'partner' in /etc/ccm/nopartner.conf
		mirror,$many|more than 16 instances
	EOF
	# links replace listen and partner in an instance's file too.
	args rd.ccm.instance=linked
	: > "$t/log"
	run_parse
	assertEquals "links suffice; $(shown)" "" "$(grep warn: "$t/log")"
	# With rd.ccm.required the boot stops at the unnamed one's connect step.
	args rd.ccm.instance=absent rd.ccm.required
	run_parse
	assertContains "required: the error is kept" "$(cat "$CCM_ROOT/run/ccm/cmdline.err" 2> /dev/null)" \
		"rd.ccm.instance=absent: no /etc/ccm/absent.conf"
	assertTrue "for the unnamed connect step" "[ -e '$CCM_ROOT/run/ccm/cmdline.conf' ]"
	fake_ccm 0
	run_connect
	assertEquals "which dies; $(shown)" 1 "$rc"
	assertEquals "without running ccm-early" "" "$(cat "$t/ccm-args")"
}

test_parse_instances_off_and_forgotten() {
	instance_conf mirror
	args rd.ccm.instance=mirror rd.ccm=0
	run_parse
	assertFalse "rd.ccm=0: mirror off too" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
	args rd.ccm.instance=mirror
	run_parse
	assertTrue "on" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
	: > "$CCM_ROOT/run/ccm/mirror/connect.done"
	args
	run_parse
	assertFalse "an earlier run's instance is forgotten" "[ -e '$CCM_ROOT/run/ccm/mirror/cmdline.conf' ]"
	assertFalse "with its marker" "[ -e '$CCM_ROOT/run/ccm/mirror/connect.done' ]"
	assertFalse "and its finished hook" "[ -e '$hookdir/initqueue/finished/ccm-early@mirror.sh' ]"
	assertFalse "and the list" "[ -e '$CCM_ROOT/run/ccm/cmdline.instances' ]"
}

# Named instances under dash: parsed, then connected side by side.
test_instances_under_dash() {
	command -v dash > /dev/null || { fail "dash is missing: scripts/deps.sh test installs it"; return; }
	fake_ccm 0
	rm "$CCM_ROOT/etc/ccm/ccm.conf"
	instance_conf mirror
	instance_conf ctrl_b
	cat > "$t/fakes.sh" <<-EOF
		getarg() { case \$1 in rd.ccm.timeout=) printf 9; return 0 ;; esac; return 1; }
		getargs() { case \$1 in rd.ccm.instance=) printf 'mirror,ctrl_b\n'; return 0 ;; esac; return 1; }
		getargbool() { return 1; }
		getcmdline() { printf 'rd.ccm.instance=mirror,ctrl_b rd.ccm.timeout=9'; }
		warn() { echo "warn: \$*" >> "$t/log"; }
		info() { echo "info: \$*" >> "$t/log"; }
		die() { echo "die: \$*" >> "$t/log"; exit 1; }
		ip() { echo "2: eth1    inet \$5/24 scope global eth1"; }
	EOF
	DRACUT_SYSTEMD=1 dash -c ". '$t/fakes.sh'; . '$mod/ccm-lib.sh'; . '$mod/parse-ccm.sh'" > "$t/out" 2>&1
	assertEquals "dash: parse status; $(shown)" 0 $?
	assertEquals "dash: no warning; $(shown)" "" "$(grep warn: "$t/log")"
	assertEquals "dash: mirror's fragment" "timeout = 9" "$(ifrag mirror | grep -v '^#')"
	dash -c ". '$t/fakes.sh'; . '$mod/ccm-lib.sh'; set -- settled; . '$mod/ccm-connect.sh'" > "$t/out" 2>&1
	assertEquals "dash: connect status; $(shown)" 0 $?
	assertEquals "dash: both connected; $(shown)" \
		"connect --instance ctrl_b --config $CCM_ROOT/etc/ccm/ctrl_b.conf --state-dir $CCM_ROOT/run/ccm/ctrl_b --timeout 9
connect --instance mirror --config $CCM_ROOT/etc/ccm/mirror.conf --state-dir $CCM_ROOT/run/ccm/mirror --timeout 9" \
		"$(sort "$t/ccm-args")"
}

# instance_on NAME [FRAGMENT]: instance NAME on, as parse-ccm.sh leaves it.
instance_on() {
	mkdir -p "$CCM_ROOT/run/ccm/$1"
	printf '# rd.ccm.instance\n%s' "${2:-}" > "$CCM_ROOT/run/ccm/$1/cmdline.conf"
	grep -qx "$1" "$CCM_ROOT/run/ccm/cmdline.instances" 2> /dev/null ||
		echo "$1" >> "$CCM_ROOT/run/ccm/cmdline.instances"
}

test_connect_instance() {
	fake_ccm 0
	instance_conf mirror
	instance_on mirror "timeout = 9
"
	run_connect --instance mirror
	assertEquals "status; $(shown)" 0 "$rc"
	assertEquals "options; $(shown)" \
		"connect --instance mirror --config $CCM_ROOT/etc/ccm/mirror.conf --state-dir $CCM_ROOT/run/ccm/mirror --timeout 9" \
		"$(cat "$t/ccm-args")"
	assertContains "its messages name it" "$(cat "$t/log")" "info: ccm@mirror: connected to node 2"
	assertTrue "its own marker" "[ -e '$CCM_ROOT/run/ccm/mirror/connect.done' ]"
	assertFalse "not the unnamed one's" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]"
	run_connect --instance mirror
	assertEquals "once" 1 "$(wc -l < "$t/ccm-args")"
	run_connect --instance other
	assertEquals "an instance not on: nothing; $(shown)" 1 "$(wc -l < "$t/ccm-args")"
	run_connect --instance ../x
	assertEquals "a bad name: usage" 2 "$rc"
	assertContains "says so" "$(cat "$t/log")" "ccm-connect: --instance: '../x' is not an instance name"
	fake_ccm 3
	rm "$CCM_ROOT/run/ccm/mirror/connect.done"
	args rd.ccm.required
	run_connect --instance mirror
	assertEquals "required: dies" 1 "$rc"
	assertContains "naming the instance" "$(cat "$t/log")" "die: ccm@mirror: rd.ccm.required: the partner did not answer"
}

# A fake ccm-early that takes a second: "start" and "end" lines with the
# state directory, in $t/order.
slow_ccm() {
	cat > "$t/bin/ccm-early" <<-EOF
		#!/bin/sh
		while [ \$# -gt 0 ]; do [ "\$1" = --state-dir ] && dir=\$2; shift; done
		echo "start \${dir##*/}" >> "$t/order"
		sleep 1
		printf "CCM_STATE='connected'\\nCCM_PARTNER_NODE='2'\\n" > "\$dir/state"
		echo "end \${dir##*/}" >> "$t/order"
		exit 0
	EOF
	chmod +x "$t/bin/ccm-early"
	export CCM_EARLY=$t/bin/ccm-early
}

# In dracut's init, the settled pass connects every instance whose
# addresses are up, side by side; one whose address is not up waits for a
# later pass without holding the others.
test_settled_connects_every_instance_side_by_side() {
	slow_ccm
	on_fragment
	instance_conf mirror
	instance_on mirror
	instance_conf late "node-id = 1
listen = 10.0.9.1:7472
partner = 10.0.9.2:7472
"
	instance_on late
	local_addrs=10.0.0.1/24
	run_connect settled
	assertEquals "status; $(shown)" 0 "$rc"
	assertEquals "both started before either ended; $(cat "$t/order")" "start start end end" \
		"$(cut -d' ' -f1 "$t/order" | tr '\n' ' ' | sed 's/ $//')"
	assertTrue "unnamed done" "[ -e '$CCM_ROOT/run/ccm/connect.done' ]"
	assertTrue "mirror done" "[ -e '$CCM_ROOT/run/ccm/mirror/connect.done' ]"
	assertFalse "late: its address is not up" "[ -e '$CCM_ROOT/run/ccm/late/connect.done' ]"
	assertContains "each said so" "$(cat "$t/log")" "info: ccm@mirror: connected to node 2"
	: > "$t/order"
	local_addrs="10.0.0.1/24 10.0.9.1/24"
	run_connect settled
	assertEquals "a later pass: only late; $(shown)" "start ccm/late
end ccm/late" "$(sed 's| | ccm/|' "$t/order")"
	assertTrue "late done" "[ -e '$CCM_ROOT/run/ccm/late/connect.done' ]"
}

# rd.ccm.rxe: the devices are the node's; one connect step makes them,
# whichever instance's it is.
test_rxe_made_once_for_every_instance() {
	fake_ccm 0
	on_fragment
	instance_conf mirror
	instance_on mirror
	mkdir -p "$CCM_ROOT/run/ccm" && printf 'eth0\neth1\n' > "$CCM_ROOT/run/ccm/cmdline.rxe"
	local_addrs=10.0.0.1/24
	run_connect settled
	assertEquals "status; $(shown)" 0 "$rc"
	assertEquals "each device made once; $(cat "$t/kcalls")" 2 "$(grep -c 'rdma link add' "$t/kcalls")"
	assertEquals "both connected" 2 "$(wc -l < "$t/ccm-args")"
	# A failure is every instance's.
	rm -rf "$CCM_ROOT/run/ccm/rxe.lock" "$CCM_ROOT/run/ccm/rxe.done" "$CCM_ROOT/run/ccm/connect.done" \
		"$CCM_ROOT/run/ccm/connect.queued" "$CCM_ROOT/run/ccm/mirror/connect.done" "$CCM_ROOT/run/ccm/mirror/connect.queued"
	: > "$t/log" && : > "$t/ccm-args"
	rdma_add_fails=eth1
	run_connect settled
	assertEquals "neither connected; $(shown)" 0 "$(wc -l < "$t/ccm-args")"
	assertContains "the unnamed one says why" "$(cat "$t/log")" "warn: ccm: rd.ccm.rxe: cannot create the Soft-RoCE device rxe1 on eth1"
	assertContains "so does mirror" "$(cat "$t/log")" "warn: ccm@mirror: rd.ccm.rxe: cannot create the Soft-RoCE device rxe1 on eth1"
}

# The generator wants ccm-early@NAME.service for each well-formed name of
# the command line; parse-ccm.sh decides the rest.
test_generator_wants_each_instance() {
	local g=$t/gen
	args "rd.ccm.instance=mirror,ctrl_b" rd.ccm.instance=Bad "rd.ccm.instance=x y" quiet
	(
		# shellcheck source=dracut/95ccm/ccm-lib.sh
		. "$mod/ccm-lib.sh"
		# shellcheck source=dracut/95ccm/ccm-generator.sh
		. "$mod/ccm-generator.sh" "$g"
	) > "$t/out" 2>&1
	assertEquals "wants; $(cat "$t/out")" "ccm-early@ctrl_b.service ccm-early@mirror.service" \
		"$(cd "$g/initrd.target.wants" 2> /dev/null && echo *)"
	assertEquals "the template" "@UNIT_DIR@/ccm-early@.service" "$(readlink "$g/initrd.target.wants/ccm-early@mirror.service")"
	rm -rf "$g"
	args rd.ccm.instance=mirror rd.ccm=0
	# shellcheck disable=SC1091 # followed above
	(. "$mod/ccm-lib.sh" && . "$mod/ccm-generator.sh" "$g") > "$t/out" 2>&1
	assertFalse "rd.ccm=0: none" "[ -e '$g' ]"
	args
	# shellcheck disable=SC1091
	(. "$mod/ccm-lib.sh" && . "$mod/ccm-generator.sh" "$g") > "$t/out" 2>&1
	assertFalse "no instance: none" "[ -e '$g' ]"
}

# --- module-setup.sh -----------------------------------------------------------------

# Load module-setup.sh with dracut's helpers faked; calls go to $t/calls.
# shellcheck disable=SC2317 # the fakes are called by module-setup.sh
load_module_setup() {
	export moddir=$mod initdir=$t/initdir dracutsysrootdir=$t/sysroot
	export systemdsystemunitdir=/usr/lib/systemd/system systemdutildir=/usr/lib/systemd SYSTEMCTL=fake_systemctl
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
	# shellcheck source=dracut/95ccm/module-setup.sh
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
	# A config with links: each one, in order, and the ip= for each partner.
	(
		load_module_setup
		sysroot_files
		cat > "$dracutsysrootdir/etc/ccm/ccm.conf" <<-'EOF'
			node-id = 2
			link = 10.0.1.2=10.0.1.1,device=rxe0
			link = "[fd02::2]:7000=[fd02::1]:7000,priority=3"
		EOF
		ip_params_for_remote_addr() { printf 'ip=ethX:dhcp(%s) ' "$1"; }
		cmdline
	) > "$t/out" 2>&1
	assertEquals "links from ccm.conf" \
		" rd.ccm.node=2 rd.ccm.link=10.0.1.2=10.0.1.1,device=rxe0 rd.ccm.link=[fd02::2]:7000=[fd02::1]:7000,priority=3 ip=ethX:dhcp(10.0.1.1) ip=ethX:dhcp(fd02::1)" \
		"$(cat "$t/out")"
}

# run_install [SETUP...]: module-setup.sh's install() against the host of
# sysroot_files, after the command SETUP (in the same subshell: it may set
# dracut's variables); its output and status in $t/out, its calls in
# $calls.
run_install() {
	(
		load_module_setup
		sysroot_files
		"$@"
		install
		echo "rc=$?"
	) > "$t/out" 2>&1
	calls=$(cat "$t/calls")
}

test_module_install() {
	run_install
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

# shellcheck disable=SC2034 # read by module-setup.sh
with_systemd() { included="systemd network"; }
# shellcheck disable=SC2034
with_systemd_and_hostonly_cmdline() { included="systemd network" hostonly_cmdline=yes; }

test_module_install_systemd_and_hostonly_cmdline() {
	run_install with_systemd_and_hostonly_cmdline
	assertContains "the unit; $calls" "$calls" \
		"inst_simple $mod/ccm-early.service /usr/lib/systemd/system/ccm-early.service"
	assertContains "enabled in the image" "$calls" "systemctl -q --root $t/initdir enable ccm-early.service"
	assertEquals "the host's rd.ccm arguments" \
		" rd.ccm.node=1 rd.ccm.listen=10.0.0.1 rd.ccm.partner=10.0.0.2:7471 rd.ccm.transport=rdma rd.ccm.timeout=120" \
		"$(cat "$t/initdir/etc/cmdline.d/95ccm.conf")"
}

test_module_install_missing_key_warns() {
	run_install rm "$t/sysroot/etc/ccm/psk"
	assertContains "dwarn; $calls" "$calls" \
		"dwarn ccm: psk-file /etc/ccm/psk (in /etc/ccm/ccm.conf) does not exist"
}

# Every named instance of the host goes into the image with its clients
# and key; the systemd parts when the image has systemd.
# instances_on_the_host: two named instances' files on the host of
# sysroot_files, a file that is not a name and one that is not a config.
instances_on_the_host() {
	local e=$dracutsysrootdir/etc/ccm
	printf 'node-id = 1\nlisten = 10.0.0.1:7472\npartner = 10.0.0.2:7472\npsk-file = /etc/ccm/mirror.key\n' > "$e/mirror.conf"
	mkdir -p "$e/mirror.clients.d" "$e/other"
	printf 'ports = 1\nport-size = 4K\n' > "$e/mirror.clients.d/nvmirror.conf"
	echo k > "$e/mirror.key" && chmod 644 "$e/mirror.key"
	printf 'node-id = 1\nclients = /etc/ccm/other\n' > "$e/ctrl_b.conf"
	printf 'ports = 1\n' > "$e/other/fmon.conf"
	echo x > "$e/Bad.conf"
	echo x > "$e/notes.txt"
	with_systemd
}

test_module_install_instances() {
	run_install instances_on_the_host
	assertContains "status; $(cat "$t/out")" "$(cat "$t/out")" "rc=0"
	assertContains "mirror.conf" "$calls" "inst_simple /etc/ccm/mirror.conf"
	assertContains "its clients" "$calls" "inst_simple /etc/ccm/mirror.clients.d/nvmirror.conf"
	assertContains "its key" "$calls" "inst_simple /etc/ccm/mirror.key"
	assertEquals "at 0600" 600 "$(stat -c %a "$t/initdir/etc/ccm/mirror.key")"
	assertContains "ctrl_b.conf" "$calls" "inst_simple /etc/ccm/ctrl_b.conf"
	assertContains "its clients directory, named in it" "$calls" "inst_simple /etc/ccm/other/fmon.conf"
	assertNotContains "not a name" "$calls" "Bad.conf"
	assertNotContains "not a config" "$calls" "notes.txt"
	assertEquals "ccm.conf once" 1 "$(grep -c 'inst_simple /etc/ccm/ccm.conf' "$t/calls")"
	assertContains "the template" "$calls" \
		"inst_simple $mod/ccm-early@.service /usr/lib/systemd/system/ccm-early@.service"
	local g=$t/initdir/usr/lib/systemd/system-generators/dracut-ccm-generator
	assertTrue "the generator, executable" "[ -x '$g' ]"
	assertContains "pointing at the template" "$(cat "$g")" '"/usr/lib/systemd/system/ccm-early@.service"'
	assertNotContains "filled in" "$(cat "$g")" "@UNIT_DIR@"
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
	# The template: the same, for instance %i.
	u=$mod/ccm-early@.service
	for line in DefaultDependencies=no KillMode=none Type=forking RemainAfterExit=yes \
		"ExecStart=/sbin/ccm-connect --instance %i" ConditionPathExists=/run/ccm/%i/cmdline.conf \
		Before=initrd.target IgnoreOnIsolate=yes Wants=network-online.target \
		"After=dracut-cmdline.service dracut-initqueue.service network-online.target"; do
		assertTrue "template: $line" "grep -qxF '$line' '$u'"
	done
	assertFalse "template: no Conflicts=" "grep -q '^Conflicts=' '$u'"
	assertFalse "template: not enabled by itself (the generator wants each)" "grep -q '^WantedBy=' '$u'"
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

# shellcheck disable=SC1091
. shunit2
