#!/bin/sh
# ccm-connect: the connect step of the ccm dracut module (/sbin/ccm-connect).
#
#   ccm-connect [--instance NAME]
#                          run `ccm-early connect` now, for the unnamed
#                          instance or instance NAME: ExecStart of
#                          ccm-early.service and ccm-early@NAME.service
#                          (systemd initramfs)
#   ccm-connect settled    initqueue/settled (dracut's init): for every
#                          instance on for this boot whose listen address
#                          (with links: every link's LOCAL) is configured,
#                          run its connect right there, once, side by side
#                          with the other instances ready in this pass
#   ccm-connect timeout    initqueue/timeout: the network did not bring the
#                          listen addresses up in time
#
# Settings: /etc/ccm/ccm.conf in the image, overridden by the rd.ccm.*
# arguments that parse-ccm.sh validated into /run/ccm/cmdline.conf (passed
# as options) and /run/ccm/cmdline.links (each line one --link, in order).
# The state directory is /run/ccm, the directory the real root inherits.
# The timeout is rd.ccm.timeout, else the config's, else 60 s.  Instance
# NAME (rd.ccm.instance) has /etc/ccm/NAME.conf, /run/ccm/NAME and
# /run/ccm/NAME/cmdline.conf instead, and its messages say "ccm@NAME:".
# Soft-RoCE devices first, from /run/ccm/cmdline.rxe (rd.ccm.rxe).
#
# ccm-early connect exits (README, "Exit codes of connect"):
#   0  connected                        info, boot on
#   3  timed out waiting for partner    warn "degraded", boot on; the keeper
#                                       keeps looking in the background
#   1  other failure    2  usage/configuration error
#   4  no common protocol version       5  authentication failed
#                                       warn with the meaning, boot on
# With rd.ccm.required every one but 0 is fatal: die (dracut-lib.sh) names
# the cause and stops the boot.  A fatal step does not mark itself done, so
# dracut's initqueue does not finish either.
#
# Exit status: 0, or 1 after die.  Runs once: /run/ccm/connect.done.
#
# The commands it runs besides ccm-early come from variables, so that the
# tests (tests/dracut) can stand in for them and never touch the host's
# kernel: CCM_MODPROBE (modprobe), CCM_RDMA (iproute2's rdma), CCM_CONSOLE
# (/dev/console: where ccm-early writes in a systemd initramfs, see
# ccm_run_early).

command -v getarg > /dev/null || . /lib/dracut-lib.sh
command -v ccm_valid_addr > /dev/null || . /lib/ccm-lib.sh

CCM_EARLY=${CCM_EARLY:-/usr/sbin/ccm-early}
CCM_MODPROBE=${CCM_MODPROBE:-modprobe}
CCM_RDMA=${CCM_RDMA:-rdma}
CCM_CONSOLE=${CCM_CONSOLE:-/dev/console}

ccm_required=0
getargbool 0 rd.ccm.required && ccm_required=1

# ccm_fail MESSAGE: fatal with rd.ccm.required, else a warning and on.
ccm_fail() {
    if [ "$ccm_required" = 1 ]; then
        die "$CCM_TAG: rd.ccm.required: $1"
        exit 1 # die exits; in case a fake or an old dracut does not
    fi
    warn "$CCM_TAG: $1; booting on without the cluster interconnect"
    : > "$CCM_DONE"
}

# The value of KEY in the handoff the run left behind ("" when none).
ccm_handoff() {
    [ -r "$CCM_RUN_DIR/state" ] || return 0
    # shellcheck disable=SC1091
    (. "$CCM_RUN_DIR/state" 2> /dev/null && eval "printf '%s' \"\${$1:-}\"")
}

# The local addresses ccm-early will listen on, one host a line: each
# link's LOCAL (rd.ccm.link, else ccm.conf's `link` lines), else the listen
# address.  Status 1 when there is none (ccm-early will say why).
ccm_local_hosts() {
    _ccm_links=
    if [ -s "$CCM_LINKS" ]; then
        _ccm_links=$(cat "$CCM_LINKS")
    elif ! ccm_conf_get listen "$CCM_FRAGMENT" > /dev/null; then
        _ccm_links=$(ccm_conf_get_all link "$CCM_CONF")
    fi
    if [ -z "$_ccm_links" ]; then
        _ccm_listen=$(ccm_setting listen) || return 1
        ccm_valid_addr "$_ccm_listen" || return 1
        ccm_addr_host "$_ccm_listen"
        echo
        return 0
    fi
    _ccm_any=1
    while IFS= read -r _ccm_l; do
        ccm_valid_link "$_ccm_l" || continue
        ccm_addr_host "${_ccm_l%%=*}"
        echo
        _ccm_any=0
    done << EOF
$_ccm_links
EOF
    return $_ccm_any
}

# ccm_all_local: every address ccm-early will listen on is configured
# (ccm-early binds them all as it starts).  When one is not: status 1, and
# ccm_missing names it.  Nothing to check: status 0.
ccm_all_local() {
    ccm_missing=
    _ccm_hosts=$(ccm_local_hosts) || return 0
    for _ccm_h in $_ccm_hosts; do
        if ! ccm_addr_is_local "$_ccm_h"; then
            ccm_missing=$_ccm_h
            return 1
        fi
    done
    return 0
}

# ccm_wait_listen SEC: wait until the listen addresses are configured, up
# to SEC seconds (0: forever).  Only in a systemd initramfs: there the unit
# is ordered after the network, and this covers a late address (IPv6
# duplicate address detection, a slow DHCP lease).  In dracut's init the
# settled hook does the waiting, outside the queue that brings the network
# up.
ccm_wait_listen() {
    ccm_waited=0
    # Up already: no time taken off the timeout (the clock has whole
    # seconds only).
    ccm_all_local && return 0
    _ccm_t0=$(ccm_now)
    until ccm_all_local; do
        ccm_waited=$(($(ccm_now) - _ccm_t0))
        if [ "$1" -gt 0 ] && [ "$ccm_waited" -ge "$1" ]; then
            return 1
        fi
        sleep 0.5 2> /dev/null || sleep 1
    done
    ccm_waited=$(($(ccm_now) - _ccm_t0))
    return 0
}

# ccm_add_rxe: rd.ccm.rxe: a Soft-RoCE device on each interface listed in
# /run/ccm/cmdline.rxe, named by position (rxe0 on the first, ...), unless
# the interface has one already.  crc32_generic first: rdma_rxe needs the
# crc32 crypto module, which the kernel cannot load on its own in an
# initramfs.  On failure ccm_why says what failed.
ccm_add_rxe() {
    ccm_why=
    "$CCM_MODPROBE" -q crc32_generic 2> /dev/null
    if ! "$CCM_MODPROBE" -q rdma_rxe; then
        ccm_why="cannot load rdma_rxe"
        return 1
    fi
    _ccm_i=0
    _ccm_have=$("$CCM_RDMA" link show 2> /dev/null)
    while IFS= read -r _ccm_nd; do
        [ -n "$_ccm_nd" ] || continue
        case "$_ccm_have" in
            *" netdev $_ccm_nd" | *" netdev $_ccm_nd"[!A-Za-z0-9_.-]*) ;;
            *)
                if ! "$CCM_RDMA" link add "rxe$_ccm_i" type rxe netdev "$_ccm_nd"; then
                    ccm_why="cannot create the Soft-RoCE device rxe$_ccm_i on $_ccm_nd (rdma link add failed)"
                    return 1
                fi
                info "ccm: Soft-RoCE device rxe$_ccm_i on $_ccm_nd (rd.ccm.rxe)" # the node's, whichever instance made it
                ;;
        esac
        _ccm_i=$((_ccm_i + 1))
    done < "$CCM_RXE"
    return 0
}

# ccm_rxe_once: ccm_add_rxe by the first connect step only.  The devices
# are the node's, and the connect steps of several instances run side by
# side: the one that takes the lock makes them and leaves its outcome in
# /run/ccm/rxe.done ("ok", or why not); the others wait for it, up to 30 s.
ccm_rxe_once() {
    _ccm_done=$CCM_TOP_RUN_DIR/rxe.done
    if mkdir "$CCM_TOP_RUN_DIR/rxe.lock" 2> /dev/null; then
        if ccm_add_rxe; then
            echo ok > "$_ccm_done.tmp"
        else
            printf '%s\n' "$ccm_why" > "$_ccm_done.tmp"
        fi
        mv -f "$_ccm_done.tmp" "$_ccm_done"
    else
        _ccm_n=0
        while [ ! -e "$_ccm_done" ]; do
            if [ "$_ccm_n" -ge 60 ]; then
                ccm_why="another connect step did not make the Soft-RoCE devices within 30 s"
                return 1
            fi
            sleep 0.5 2> /dev/null || sleep 1
            _ccm_n=$((_ccm_n + 1))
        done
    fi
    read -r ccm_why < "$_ccm_done"
    [ "$ccm_why" = ok ]
}

# ccm_run_early ARGS...: ccm-early connect.  In a systemd initramfs the
# unit's output is a stream to the initramfs' journald, which systemd stops
# at switch-root.  The keeper would inherit it, and everything it logs in
# the real root (partner lost, back, errors) would go nowhere: EPIPE, or
# worse, SIGPIPE if it ran without systemd's IgnoreSIGPIPE=yes default (seen
# in tests/boot: fd 2 a dead socket, the "lost" line missing).  So there it
# writes to the console, which outlives the initramfs, as under dracut's
# own init.
ccm_run_early() {
    if [ -n "${DRACUT_SYSTEMD:-}" ] && [ -w "$CCM_CONSOLE" ]; then
        "$CCM_EARLY" connect "$@" < /dev/null > "$CCM_CONSOLE" 2>&1
    else
        "$CCM_EARLY" connect "$@" < /dev/null
    fi
}

ccm_connect() {
    [ -e "$CCM_DONE" ] && return 0
    [ -e "$CCM_FRAGMENT" ] || return 0

    if [ -s "$CCM_CMDLINE_ERR" ]; then
        ccm_fail "the rd.ccm arguments are wrong: $(cat "$CCM_CMDLINE_ERR")"
        return 0
    fi

    ccm_timeout=$(ccm_setting timeout) || ccm_timeout=$CCM_DEFAULT_TIMEOUT
    if ccm_valid_uint "$ccm_timeout" 0 86400; then
        ccm_timeout=$ccm_value
    else
        ccm_timeout=$CCM_DEFAULT_TIMEOUT # ccm-early names the bad config line
    fi

    if [ -n "${DRACUT_SYSTEMD:-}" ]; then
        if ! ccm_wait_listen "$ccm_timeout"; then
            ccm_fail "the listen address $ccm_missing was not configured within ${ccm_timeout} s"
            return 0
        fi
        if [ "$ccm_timeout" -gt 0 ]; then
            ccm_timeout=$((ccm_timeout - ccm_waited))
            [ "$ccm_timeout" -ge 1 ] || ccm_timeout=1
        fi
    fi

    # rdma: the verbs and connection manager character devices
    # (/dev/infiniband/uverbs*, rdma_cm).  On a full system rdma-core's udev
    # rules load their modules; an initramfs has no such rules, and the
    # static ccm-early cannot load modules.
    if [ "$(ccm_setting transport)" = rdma ] || [ -s "$CCM_RXE" ]; then
        "$CCM_MODPROBE" -q -a ib_uverbs rdma_ucm 2> /dev/null
    fi
    if [ -s "$CCM_RXE" ] && ! ccm_rxe_once; then
        ccm_fail "rd.ccm.rxe: $ccm_why"
        return 0
    fi

    # The fragment's keys become options; they override ccm.conf.
    set --
    while IFS= read -r _ccm_l; do
        case $_ccm_l in
            '' | '#'* | 'timeout = '*) continue ;;
        esac
        set -- "$@" "--${_ccm_l%% = *}" "${_ccm_l#* = }"
    done < "$CCM_FRAGMENT"
    if [ -s "$CCM_LINKS" ]; then
        while IFS= read -r _ccm_l; do
            [ -n "$_ccm_l" ] && set -- "$@" --link "$_ccm_l"
        done < "$CCM_LINKS"
    fi
    [ -e "$CCM_CONF" ] && set -- --config "$CCM_CONF" "$@"
    [ -z "$CCM_INSTANCE" ] || set -- --instance "$CCM_INSTANCE" "$@"

    info "$CCM_TAG: looking for the partner (timeout ${ccm_timeout} s)"
    ccm_run_early "$@" --state-dir "$CCM_RUN_DIR" --timeout "$ccm_timeout"
    ccm_rc=$?

    case $ccm_rc in
        0)
            info "$CCM_TAG: connected to node $(ccm_handoff CCM_PARTNER_NODE) at $(ccm_handoff CCM_PARTNER_ADDR)"
            : > "$CCM_DONE"
            ;;
        3)
            if [ "$ccm_required" = 1 ]; then
                ccm_fail "the partner did not answer within ${ccm_timeout} s (exit 3: timed out)"
            else
                warn "$CCM_TAG: degraded: the partner did not answer within ${ccm_timeout} s (exit 3); the keeper keeps looking in the background"
                : > "$CCM_DONE"
            fi
            ;;
        1) ccm_fail "ccm-early connect failed (exit 1): $(ccm_handoff CCM_ERROR)" ;;
        2) ccm_fail "ccm-early connect: usage or configuration error (exit 2); see its message above" ;;
        4) ccm_fail "no protocol version in common with the partner (exit 4)" ;;
        5) ccm_fail "authentication failed (exit 5): the pre-shared keys differ, or only one side has one" ;;
        *) ccm_fail "ccm-early connect ended with unexpected status $ccm_rc" ;;
    esac
    return 0
}

# initqueue/settled: connect, right in the settled pass that finds every
# listen address up.  Not sooner: it would block the initqueue, and with it
# the jobs that bring the interconnect's interfaces up, for the whole
# timeout.  Not as a job queued for the next pass either: that waits for
# the initqueue's next turn, about 2 s of the boot under emulation
# (tests/boot, measured).
ccm_settled() {
    [ -e "$CCM_DONE" ] || [ -e "$CCM_QUEUED" ] && return 0
    [ -e "$CCM_FRAGMENT" ] || return 0
    if [ ! -s "$CCM_CMDLINE_ERR" ]; then
        ccm_all_local || return 0
    fi
    : > "$CCM_QUEUED"
    ccm_connect
}

# initqueue/timeout: dracut gave up waiting (two thirds of rd.retry).
ccm_gave_up() {
    [ -e "$CCM_DONE" ] && return 0
    [ -e "$CCM_FRAGMENT" ] || return 0
    [ -e "$CCM_QUEUED" ] && return 0 # the job runs, and bounds itself
    if ! ccm_all_local; then
        ccm_fail "the listen address $ccm_missing never came up (is rd.neednet/ip= set for the interconnect?)"
        return 0
    fi
    ccm_connect
}

# ccm_every_instance MODE: ccm_settled (settled) or ccm_gave_up (timeout)
# for every instance on for this boot, each in a subshell of its own (the
# paths are the instance's), side by side, and back when all are: one
# partner that takes its time delays no other.  Status 1 when one died.
ccm_every_instance() {
    ccm_instance_step "$1" "" &
    _ccm_pids=$!
    if [ -r "$CCM_INSTANCES" ]; then
        while IFS= read -r _ccm_i; do
            ccm_valid_instance "$_ccm_i" || continue
            ccm_instance_step "$1" "$_ccm_i" &
            _ccm_pids="$_ccm_pids $!"
        done < "$CCM_INSTANCES"
    fi
    _ccm_rc=0
    for _ccm_p in $_ccm_pids; do
        wait "$_ccm_p" || _ccm_rc=1
    done
    return $_ccm_rc
}

# ccm_instance_step MODE NAME: MODE's step for instance NAME ("": the
# unnamed one), in a subshell.
ccm_instance_step() (
    ccm_use_instance "$2"
    case $1 in
        settled) ccm_settled ;;
        timeout) ccm_gave_up ;;
    esac
)

case ${1:-} in
    '') ccm_connect ;;
    --instance)
        if ! ccm_valid_instance "${2:-}"; then
            warn "ccm-connect: --instance: $ccm_why"
            exit 2
        fi
        ccm_use_instance "$2"
        ccm_connect
        ;;
    settled | timeout) ccm_every_instance "$1" || exit 1 ;;
    *)
        warn "ccm-connect: unknown mode '$1'"
        exit 2
        ;;
esac
exit 0
