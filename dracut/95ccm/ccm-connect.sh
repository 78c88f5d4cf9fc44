#!/bin/sh
# ccm-connect: the connect step of the ccm dracut module (/sbin/ccm-connect).
#
#   ccm-connect            run `ccm-early connect` now: the one-time initqueue
#                          job (dracut's init), or ExecStart of
#                          ccm-early.service (systemd initramfs)
#   ccm-connect settled    initqueue/settled: once the listen address is
#                          configured, queue the one-time job
#   ccm-connect timeout    initqueue/timeout: the network did not bring the
#                          listen address up in time
#
# Settings: /etc/ccm/ccm.conf in the image, overridden by the rd.ccm.*
# arguments that parse-ccm.sh validated into /run/ccm/cmdline.conf (passed
# as options).  The state directory is always /run/ccm, the directory the
# real root inherits.  The timeout is rd.ccm.timeout, else ccm.conf's, else
# 60 s.
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

command -v getarg > /dev/null || . /lib/dracut-lib.sh
command -v ccm_valid_addr > /dev/null || . /lib/ccm-lib.sh

CCM_EARLY=${CCM_EARLY:-/usr/sbin/ccm-early}

ccm_required=0
getargbool 0 rd.ccm.required && ccm_required=1

# ccm_fail MESSAGE: fatal with rd.ccm.required, else a warning and on.
ccm_fail() {
    if [ "$ccm_required" = 1 ]; then
        die "ccm: rd.ccm.required: $1"
        exit 1 # die exits; in case a fake or an old dracut does not
    fi
    warn "ccm: $1; booting on without the cluster interconnect"
    : > "$CCM_DONE"
}

# The value of KEY in the handoff the run left behind ("" when none).
ccm_handoff() {
    [ -r "$CCM_RUN_DIR/state" ] || return 0
    # shellcheck disable=SC1091
    (. "$CCM_RUN_DIR/state" 2> /dev/null && eval "printf '%s' \"\${$1:-}\"")
}

ccm_listen_host() {
    _ccm_listen=$(ccm_setting listen) || return 1
    ccm_valid_addr "$_ccm_listen" || return 1
    ccm_addr_host "$_ccm_listen"
}

# ccm_wait_listen SEC: wait until the listen address is configured, up to
# SEC seconds (0: forever).  Only in a systemd initramfs: there the unit is
# ordered after the network, and this covers a late address (IPv6 duplicate
# address detection, a slow DHCP lease).  In dracut's init the settled hook
# does the waiting, outside the queue that brings the network up.
ccm_wait_listen() {
    ccm_waited=0
    _ccm_host=$(ccm_listen_host) || return 0
    _ccm_t0=$(ccm_now)
    until ccm_addr_is_local "$_ccm_host"; do
        ccm_waited=$(($(ccm_now) - _ccm_t0))
        if [ "$1" -gt 0 ] && [ "$ccm_waited" -ge "$1" ]; then
            return 1
        fi
        sleep 0.5 2> /dev/null || sleep 1
    done
    ccm_waited=$(($(ccm_now) - _ccm_t0))
    return 0
}

# ccm_add_rxe NETDEV: rd.ccm.rxe: Soft-RoCE device rxe0 on NETDEV, unless
# NETDEV has one already.  crc32_generic first: rdma_rxe needs the crc32
# crypto module, which the kernel cannot load on its own in an initramfs.
ccm_add_rxe() {
    case "$(rdma link show 2> /dev/null)" in
        *" netdev $1" | *" netdev $1"[!A-Za-z0-9_.-]*) return 0 ;;
    esac
    modprobe -q crc32_generic 2> /dev/null
    modprobe -q rdma_rxe || return 1
    rdma link add rxe0 type rxe netdev "$1" || return 1
    info "ccm: Soft-RoCE device rxe0 on $1 (rd.ccm.rxe)"
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
            ccm_fail "the listen address $(ccm_listen_host) was not configured within ${ccm_timeout} s"
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
        modprobe -q -a ib_uverbs rdma_ucm 2> /dev/null
    fi
    if [ -s "$CCM_RXE" ] && ! ccm_add_rxe "$(cat "$CCM_RXE")"; then
        ccm_fail "rd.ccm.rxe: cannot create the Soft-RoCE device on $(cat "$CCM_RXE") (rdma link add failed)"
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
    [ -e "$CCM_CONF" ] && set -- --config "$CCM_CONF" "$@"

    info "ccm: looking for the partner (timeout ${ccm_timeout} s)"
    "$CCM_EARLY" connect "$@" --state-dir "$CCM_RUN_DIR" --timeout "$ccm_timeout" < /dev/null
    ccm_rc=$?

    case $ccm_rc in
        0)
            info "ccm: connected to node $(ccm_handoff CCM_PARTNER_NODE) at $(ccm_handoff CCM_PARTNER_ADDR)"
            : > "$CCM_DONE"
            ;;
        3)
            if [ "$ccm_required" = 1 ]; then
                ccm_fail "the partner did not answer within ${ccm_timeout} s (exit 3: timed out)"
            else
                warn "ccm: degraded: the partner did not answer within ${ccm_timeout} s (exit 3); the keeper keeps looking in the background"
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

# initqueue/settled: queue the connect once its address exists.  Queueing
# it earlier would block the initqueue, and with it the jobs that bring the
# interconnect's interface up, for the whole timeout.
ccm_settled() {
    [ -e "$CCM_DONE" ] || [ -e "$CCM_QUEUED" ] && return 0
    [ -e "$CCM_FRAGMENT" ] || return 0
    if [ ! -s "$CCM_CMDLINE_ERR" ] && _ccm_host=$(ccm_listen_host); then
        ccm_addr_is_local "$_ccm_host" || return 0
    fi
    : > "$CCM_QUEUED"
    /sbin/initqueue --onetime --unique --name ccm-early /sbin/ccm-connect
}

# initqueue/timeout: dracut gave up waiting (two thirds of rd.retry).
ccm_gave_up() {
    [ -e "$CCM_DONE" ] && return 0
    [ -e "$CCM_FRAGMENT" ] || return 0
    [ -e "$CCM_QUEUED" ] && return 0 # the job runs, and bounds itself
    if _ccm_host=$(ccm_listen_host) && ! ccm_addr_is_local "$_ccm_host"; then
        ccm_fail "the listen address $_ccm_host never came up (is rd.neednet/ip= set for the interconnect?)"
        return 0
    fi
    ccm_connect
}

case ${1:-} in
    '') ccm_connect ;;
    settled) ccm_settled ;;
    timeout) ccm_gave_up ;;
    *)
        warn "ccm-connect: unknown mode '$1'"
        exit 2
        ;;
esac
exit 0
