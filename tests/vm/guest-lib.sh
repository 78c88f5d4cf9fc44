# shellcheck shell=sh disable=SC2154  # $role comes from /init
# /etc/lab/lib.sh in the lab's guests (busybox sh): helpers for scenario
# scripts. Source it: . /etc/lab/lib.sh   (also named by $LAB_LIB)
#
# The share /out is the same host directory in both guests (9p, no cache),
# so a file one guest writes there is soon seen by the other: the cheapest
# rendezvous between a and b.

# lab_wait_file FILE [SECS=30]: wait until FILE exists.
lab_wait_file() {
	_n=0
	while [ ! -e "$1" ]; do
		_n=$((_n + 1))
		[ $_n -le $((${2:-30} * 10)) ] || { echo "lab: timed out waiting for $1" >&2; return 1; }
		sleep 0.1
	done
}

# lab_wait_listen PORT [SECS=30]: wait until a local TCP socket listens on PORT.
lab_wait_listen() {
	_n=0
	until netstat -ltn 2>/dev/null | grep -q "[:.]$1 "; do
		_n=$((_n + 1))
		[ $_n -le $((${2:-30} * 10)) ] || { echo "lab: nothing listens on TCP $1" >&2; return 1; }
		sleep 0.1
	done
}

# lab_mark NAME: create /out/ROLE.NAME (for the partner's lab_wait_file).
lab_mark() { : >"/out/$role.$1"; }

# lab_retry TRIES DELAY CMD...: run CMD until it succeeds, TRIES times at most.
lab_retry() {
	_t=$1 _d=$2
	shift 2
	while :; do
		"$@" && return 0
		_t=$((_t - 1))
		[ $_t -gt 0 ] || return 1
		sleep "$_d"
	done
}

# lab_uptime: seconds since the guest's kernel started.
lab_uptime() { cut -d' ' -f1 /proc/uptime; }
