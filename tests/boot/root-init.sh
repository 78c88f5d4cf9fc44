#!/bin/sh
# tests/boot/root-init.sh: /sbin/init of the boot proof's real root (busybox
# sh, PID 1 after dracut's switch_root).  What a real root's service manager
# would do with handoff/ccm-fmon.service, by hand, and a report to the host.
#
# In the systemd real root (tests/boot/lib.sh, boot_root_systemd) it is
# ccmlab-report.service instead, not PID 1: systemd mounted /proc, /sys and
# /dev, and ccm-fmon.service runs the monitor, logging to /run/ccm-fmon.log.
#
# Kernel command line words it reads (unknown to the kernel, so they reach
# PID 1's environment; read from /proc/cmdline to be sure):
#   boot_name=NAME    file prefix in the share (a, b, b2, ...)
#   boot_peer=NAME    hold until the share has PEER.up (the partner's root is
#                     up), then boot_hold more seconds; at most boot_max s
#   boot_hold=SEC     (default 5)
#   boot_max=SEC      (default 90)
#   boot_wait=FILE    also hold until the share has FILE (the host's say-so)
#   boot_restart=1    (under systemd) once held, `ccm-early stop --restart`,
#                     then wait (up to 30 s) for ccm-fmon.service to have
#                     been started again and be active: NAME.restart
#   boot_settle=SEC   before NAME.final, wait (up to SEC s, default 30) for
#                     the keeper's handoff to say connected: the final
#                     report is of the pair at rest, not of a recovery in
#                     progress (a TCG guest on a busy host can stand still
#                     for 10 s, and its partner then has to reconnect: see
#                     tests/vm/test_freeze.sh); FINAL_SETTLE_S says how long
#   boot_sync=0|1     after NAME.final, wait (up to 60 s) for PEER.final, so
#                     that both final reports are taken with both guests up
#                     (default 1; 0 for a guest that is to go away first)
#   boot_after=SEC    then wait (up to 60 s) for PEER.done, the partner
#                     going away, and SEC s more, and write NAME.after: the
#                     keeper lived through its "partner lost" (a log line
#                     and a handoff write, both after switch_root)
#
# Files written to the share (/out, 9p, the host's directory):
#   NAME.boot     at once: uptime at this init, the dmesg time of "Run /init",
#                 the initramfs' handoff as it was left (state), the keeper's
#                 pid, argv[0] and RSS, ls of /run/ccm; under systemd also
#                 PID 1's name, ccm-fmon.service's state, the keeper's cgroup
#   NAME.up       once ccm-fmon has been started
#   NAME.fmon     ccm-fmon -v's log (its hooks append TAKEOVER/GIVEBACK lines)
#   NAME.journal  (under systemd) the keeper's journal entries, as -o json
#   NAME.status   `ccm-early status` once a second (the latest)
#   NAME.restart  (boot_restart) the stop's exit status and output, and
#                 ccm-fmon.service's restarts before and after, and state
#   NAME.final    at the end: state, keeper pid and RSS again
#   NAME.after    (boot_after) the same, once the partner has gone
#   NAME.done     the last thing before power-off
PATH=/bin:/sbin:/usr/bin:/usr/sbin
export PATH
read -r up _ </proc/uptime
unit=''
if [ $$ = 1 ]; then
	mount -t proc proc /proc 2>/dev/null
	mount -t sysfs sys /sys 2>/dev/null
	mount -t devtmpfs dev /dev 2>/dev/null
else
	unit=ccm-fmon.service
fi
mkdir -p /out /tmp
mount -t tmpfs tmp /tmp

# The 9p share: the initramfs loaded its modules (tests/boot/lib.sh,
# 99ccmlab); this root has a copy for an initramfs without them.  Loading
# modules here, with the keeper connected, stalled the guest long enough
# (TCG) for the partner's queue pair to give up on us.
if [ ! -d /sys/module/9p ]; then
	while read -r m; do insmod "/lib/ccmlab/$m" 2>/dev/null; done </lib/ccmlab/order
fi
mount -t 9p -o trans=virtio,version=9p2000.L out /out || {
	echo "root-init: cannot mount the share" >/dev/console
	poweroff -f
}

name=x peer='' hold=5 max=90 waitfile='' sync=1 after='' settle=30 restart=0 instance=''
# shellcheck disable=SC2013 # words, not lines
for w in $(cat /proc/cmdline); do
	case $w in
	boot_name=*) name=${w#*=} ;;
	boot_peer=*) peer=${w#*=} ;;
	boot_hold=*) hold=${w#*=} ;;
	boot_max=*) max=${w#*=} ;;
	boot_wait=*) waitfile=${w#*=} ;;
	boot_sync=*) sync=${w#*=} ;;
	boot_after=*) after=${w#*=} ;;
	boot_settle=*) settle=${w#*=} ;;
	boot_restart=*) restart=${w#*=} ;;
	rd.ccm.instance=*) instance=${w#*=} ;;
	esac
done
o=/out/$name

# The keeper: the process whose argv[0] starts with '@'.  VIEW: the copy of
# its handoff to report when its root is ours (default: read it now);
# PROM: the copy of its metrics-dir file to report (default: read it now).
keeper() {
	view=${1:-}
	prom=${2:-/var/lib/ccm-metrics/ccm-early.prom}
	for p in /proc/[0-9]*; do
		a=$(tr "\\0" " " 2>/dev/null <"$p/cmdline")
		case $a in *" --instance "*) continue ;; esac
		case $a in @*)
			echo "KEEPER_PID=${p#/proc/}"
			echo "KEEPER_ARGV='$a'"
			echo "KEEPER_RSS_KB=$(awk '/^VmRSS/ { print $2 }' "$p/status")"
			echo "KEEPER_SID=$(cut -d' ' -f6 "$p/stat")"
			echo "KEEPER_CWD=$(readlink "$p/cwd")"
			echo "KEEPER_CGROUP=$(cut -d: -f3 "$p/cgroup" | head -1)"
			# Where its log goes (fd 2), and the signals it ignores (hex).
			echo "KEEPER_FD2=$(readlink "$p/fd/2")"
			echo "KEEPER_SIGIGN=$(awk '/^SigIgn/ { print $2 }' "$p/status")"
			# The keeper's root stays the initramfs' (switch_root changes
			# only PID 1's): what it wrote at /run/ccm/state, as it sees it.
			# shellcheck disable=SC3013 # busybox test has -ef
			echo "KEEPER_ROOT_IS_OURS=$([ "$p/root/" -ef / ] && echo yes || echo no)"
			# shellcheck disable=SC3013
			[ -n "$view" ] && [ "$p/root/" -ef / ] || view=$p/root/run/ccm/state
			echo "KEEPER_VIEW_STATE=$(sed -n "s/^CCM_STATE='\(.*\)'\$/\1/p" "$view" 2>/dev/null)"
			echo "KEEPER_VIEW_PARTNER_EPOCH=$(sed -n "s/^CCM_PARTNER_EPOCH='\(.*\)'\$/\1/p" "$view" 2>/dev/null)"
			# metrics-dir: written only from the real root.
			echo "METRICS_PARTNER_UP=$(sed -n 's/^ccm_partner_up{instance="default"} //p' "$prom" 2>/dev/null)"
			return 0 ;;
		esac
	done
	echo "KEEPER_PID="
}

# instance_report: the named instance (rd.ccm.instance=NAME): its keeper
# (the '@' process started with --instance NAME), its handoff as the real
# root sees it, and under systemd the real root's ccm-early@NAME.service.
instance_report() {
	[ -n "$instance" ] || return 0
	k=''
	for p in /proc/[0-9]*; do
		a=$(tr "\\0" " " 2>/dev/null <"$p/cmdline")
		case $a in "@"*" --instance $instance "*) k=${p#/proc/} ;; esac
	done
	echo "INSTANCE_KEEPER_PID=$k"
	echo "INSTANCE_STATE=$(sed -n "s/^CCM_STATE='\(.*\)'\$/\1/p" "/run/ccm/$instance/state" 2>/dev/null)"
	echo "INSTANCE_PARTNER_EPOCH=$(sed -n "s/^CCM_PARTNER_EPOCH='\(.*\)'\$/\1/p" "/run/ccm/$instance/state" 2>/dev/null)"
	echo "INSTANCE_EPOCH=$(sed -n "s/^CCM_EPOCH='\(.*\)'\$/\1/p" "/run/ccm/$instance/state" 2>/dev/null)"
	if [ -n "$unit" ]; then
		echo "INSTANCE_UNIT='$(systemctl show -p LoadState -p ActiveState ccm-early@"$instance".service | tr '\n' ' ')'"
		echo "INSTANCE_UNIT_MAINPID=$(systemctl show -p MainPID --value ccm-early@"$instance".service)"
	fi
}

# Under systemd: ccm-fmon.service's log, as the by-hand monitor's.
fmon_log() {
	[ -z "$unit" ] || cp /run/ccm-fmon.log "$o.fmon" 2>/dev/null
}

# Under systemd: the keeper's journal entries (JSON, one per line).
journal_log() {
	[ -z "$unit" ] || journalctl --no-pager -o json SYSLOG_IDENTIFIER=ccm-early >"$o.journal" 2>/dev/null
}

{
	echo "ROOT_UPTIME=$up"
	echo "PID1=$(cat /proc/1/comm)"
	if [ -n "$unit" ]; then
		n=0
		# Type=exec: active once ccm-early exec runs.
		while [ "$(systemctl is-active "$unit")" = activating ] && [ $n -lt 20 ]; do sleep 1; n=$((n + 1)); done
		echo "FMON_UNIT=$(systemctl is-active "$unit")"
		# The initramfs' unit, as this systemd took it over.
		echo "KEEPER_UNIT='$(systemctl show -p LoadState -p ActiveState -p SubState ccm-early.service | tr '\n' ' ')'"
		echo "KEEPER_UNIT_MAINPID=$(systemctl show -p MainPID --value ccm-early.service)"
	fi
	echo "INIT_AT=$(dmesg | sed -n 's/^\[ *\([0-9.]*\)\] Run \/init as init process.*/\1/p' | head -1)"
	keeper
	instance_report
	echo "---- /run/ccm"
	ls -la /run/ccm 2>&1
	echo "---- state"
	cat /run/ccm/state 2>&1
} >"$o.boot.tmp"
mv "$o.boot.tmp" "$o.boot"

if [ -z "$unit" ] && [ -S /run/ccm/ccm.sock ]; then
	# handoff/ccm-fmon.service's ExecStart, with hooks that log.
	ccm-early exec fmon -- ccm-fmon --client fmon -v --interval 100 --dead-after 1000 \
		--takeover "echo TAKEOVER \$CCM_FMON_REASON >>$o.fmon" \
		--giveback "echo GIVEBACK \$CCM_FMON_REASON >>$o.fmon" >>"$o.fmon" 2>&1 &
fi
: >"$o.up"

t0=$(cut -d. -f1 /proc/uptime)
seen=''
while :; do
	now=$(cut -d. -f1 /proc/uptime)
	ccm-early status >"$o.status.tmp" 2>&1
	mv "$o.status.tmp" "$o.status"
	fmon_log
	[ $((now - t0)) -ge "$max" ] && break
	if [ -z "$seen" ]; then
		if [ -z "$peer" ] || [ -e "/out/$peer.up" ]; then seen=$now; fi
	fi
	if [ -n "$seen" ] && [ $((now - seen)) -ge "$hold" ]; then
		[ -z "$waitfile" ] || [ -e "/out/$waitfile" ] && break
	fi
	sleep 1
done

# The keeper restarts in place; its TERMINATING says so, fmon exits 1, and
# the shipped unit's Restart=on-failure brings it back.
if [ -n "$unit" ] && [ "$restart" = 1 ]; then
	n0=$(systemctl show -p NRestarts --value "$unit")
	ccm-early stop --restart >/tmp/restart.out 2>&1
	rc=$?
	n=0
	while [ $n -lt 30 ] && { [ "$(systemctl show -p NRestarts --value "$unit")" = "$n0" ] ||
		[ "$(systemctl is-active "$unit")" != active ]; }; do
		sleep 1
		n=$((n + 1))
	done
	{
		echo "RESTART_RC=$rc"
		echo "RESTART_OUT='$(tr -d "'\n" </tmp/restart.out)'"
		echo "FMON_NRESTARTS_BEFORE=$n0"
		echo "FMON_NRESTARTS=$(systemctl show -p NRestarts --value "$unit")"
		echo "FMON_UNIT=$(systemctl is-active "$unit")"
	} >"$o.restart.tmp"
	mv "$o.restart.tmp" "$o.restart"
	fmon_log
	journal_log
fi

# One copy of the handoff is both what was waited for and what is reported:
# read twice, a partner's restart between the reads (b's, above, while a
# takes its own final report) made the state say connected and the clients
# say none.  The same for the metrics-dir file, which the keeper writes just
# after the handoff: a copy of the state taken in between said connected
# while the metrics still said not.
settled() {
	cp /run/ccm/state /tmp/final.state 2>/dev/null
	cp /var/lib/ccm-metrics/ccm-early.prom /tmp/final.prom 2>/dev/null || : >/tmp/final.prom
	grep -qx "CCM_STATE='connected'" /tmp/final.state || return 1
	# Only once the keeper writes the metrics-dir (tests/boot/lib.sh).
	[ ! -s /tmp/final.prom ] || grep -qx 'ccm_partner_up{instance="default"} 1' /tmp/final.prom || return 1
	[ -z "$instance" ] || grep -qx "CCM_STATE='connected'" "/run/ccm/$instance/state"
}
waited=0
while ! settled && [ $waited -lt "$settle" ]; do
	sleep 1
	waited=$((waited + 1))
done
{
	echo "FINAL_SETTLE_S=$waited"
	keeper /tmp/final.state /tmp/final.prom
	instance_report
	[ -z "$unit" ] || echo "FMON_UNIT=$(systemctl is-active "$unit")"
	echo "---- state"
	cat /tmp/final.state 2>&1
} >"$o.final.tmp"
mv "$o.final.tmp" "$o.final"
fmon_log
journal_log
if [ "$sync" = 1 ] && [ -n "$peer" ]; then
	n=0
	while [ ! -e "/out/$peer.final" ] && [ $n -lt 60 ]; do sleep 1; n=$((n + 1)); done
fi
if [ -n "$after" ] && [ -n "$peer" ]; then
	n=0
	while [ ! -e "/out/$peer.done" ] && [ $n -lt 60 ]; do sleep 1; n=$((n + 1)); done
	sleep "$after"
	{
		keeper
		instance_report
		echo "---- state"
		cat /run/ccm/state 2>&1
	} >"$o.after.tmp"
	mv "$o.after.tmp" "$o.after"
	fmon_log
	journal_log
fi
: >"$o.done"
sync
# Under systemd a clean power-off: the shutdown stops ccm-early.service,
# whose ExecStop= tells the partner (tests/boot/test_boot.sh checks that it
# heard).  Without systemd, or should that fail, at once.
if [ -n "$unit" ]; then
	echo "root-init: systemctl poweroff" >/dev/console
	systemctl poweroff && exit 0
fi
poweroff -f
