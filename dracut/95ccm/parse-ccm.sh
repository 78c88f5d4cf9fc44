#!/bin/sh
# parse-ccm.sh: cmdline hook (90) of the ccm dracut module.
#
# Accepted arguments (each overrides the same key of /etc/ccm/ccm.conf in
# the image; the connect step passes them to ccm-early as options):
#
#   rd.ccm=0                      off for this boot (also rd.ccm=no, rd.ccm=off)
#   rd.ccm.node=N                 node-id: 1..4294967294
#   rd.ccm.listen=ADDR[:PORT]     listen: numeric IPv4 or IPv6, as ccm-early
#   rd.ccm.partner=ADDR[:PORT]      takes them: 10.0.0.1, 10.0.0.1:7471,
#                                   fd00::1, [fd00::1], [fd00::1]:7471;
#                                   no host names, no zone ids, port 1..65535
#   rd.ccm.transport=tcp|rdma     transport
#   rd.ccm.device=NAME            device: [A-Za-z0-9_.-], at most 63 bytes
#   rd.ccm.timeout=SEC            timeout: 0..86400 (0 waits for the partner
#                                   forever, and so does the boot); without it
#                                   and without `timeout` in ccm.conf: 60
#   rd.ccm.required               boolean (getargbool: rd.ccm.required=0 is
#                                   false): a failure stops the boot instead of
#                                   booting on degraded
#   rd.ccm.rxe=NETDEV[,NETDEV...] before connecting, load rdma_rxe and create
#                                   one Soft-RoCE device per interface, in
#                                   order: rxe0 on the first, rxe1 on the
#                                   second, ... (`rdma link add`; an interface
#                                   that has one already is left alone): for
#                                   hosts without an RDMA NIC, and for the qemu
#                                   lab (tests/boot); each NETDEV as
#                                   rd.ccm.device, distinct, at most 4;
#                                   stored in /run/ccm/cmdline.rxe, one a line
#   rd.ccm.link=LOCAL=PARTNER[,device=DEV][,priority=N]
#                                 repeatable, up to 4: one interconnect each,
#                                   passed in order as ccm-early's --link (link
#                                   i pairs with the partner's link i); LOCAL
#                                   and PARTNER as rd.ccm.listen, DEV as
#                                   rd.ccm.device, N 0..255; stored in
#                                   /run/ccm/cmdline.links, one a line.  It
#                                   replaces listen/partner/device: with it,
#                                   neither rd.ccm.listen/partner/device nor
#                                   those keys in ccm.conf may be given (and
#                                   rd.ccm.listen/partner/device not with
#                                   `link` lines in ccm.conf)
#   rd.ccm.instance=NAME[,NAME...]
#                                 repeatable: also bring up named instance
#                                   NAME (ccm-early(8), INSTANCES), from
#                                   /etc/ccm/NAME.conf in the image, which
#                                   must give its node-id and its links or
#                                   listen and partner; NAME as ccm-early
#                                   takes it ([a-z][a-z0-9_]*, at most 31
#                                   bytes, not ccm, state or metrics),
#                                   distinct, at most 16.  Its state
#                                   directory is /run/ccm/NAME.  Of the other
#                                   arguments only rd.ccm.timeout and
#                                   rd.ccm.required apply to it: the others
#                                   are the unnamed instance's.  With it, the
#                                   unnamed instance comes up only when
#                                   /etc/ccm/ccm.conf is in the image or an
#                                   rd.ccm.node/listen/partner/transport/
#                                   device/link argument is given.  Stored in
#                                   /run/ccm/cmdline.instances, one a line
#
# Numbers are decimal digits only: no sign, no blanks, no hex.  Any other
# rd.ccm.* argument is warned about (a typo must not pass silently).
#
# A wrong value is warned about, naming the argument and the value, and the
# boot goes on with ccm off.  With rd.ccm.required the errors also go to
# /run/ccm/cmdline.err and the connect step dies on them.
#
# Output: /run/ccm/cmdline.conf, a config fragment (`key = value`, the keys
# of ccm.conf) holding what the command line set; its presence means "ccm is
# on for this boot".  /run/ccm/NAME/cmdline.conf the same for each named
# instance.  /etc/cmdline.d/95ccm-neednet.conf asks the network modules for
# the network (rd.neednet=1).
#
# Scheduling (dracut's own init; in a systemd initramfs ccm-early.service
# and ccm-early@NAME.service do the connect after dracut-initqueue.service
# and network-online.target, and ccm-generator wants the latter):
#   initqueue/finished  [ -e /run/ccm/connect.done ] (and one for each
#                       instance, /run/ccm/NAME/connect.done): the initqueue,
#                       and so the switch to the real root, waits for every
#                       connect step
#   initqueue/settled   ccm-connect settled: in a pass that finds an
#                       instance's listen addresses configured, runs its
#                       connect step, side by side with every other instance
#                       ready in that pass
#   initqueue/timeout   ccm-connect timeout: the network never came up

command -v getarg > /dev/null || . /lib/dracut-lib.sh
command -v ccm_valid_addr > /dev/null || . /lib/ccm-lib.sh

ccm_errors=

# ccm_bad ARG VALUE REASON: one wrong argument.
ccm_bad() {
    warn "ccm: $1=$2: $3"
    ccm_errors="${ccm_errors:+$ccm_errors; }$1=$2: $3"
}

# ccm_mentions NAME: the command line (ccm_cmdline, read once by
# ccm_parse_cmdline) has NAME=... or NAME.  Only then is getarg asked: it
# reads the command line again and runs dracut-getarg at every call, in
# subshells, which under TCG costs a noticeable part of a second each.
ccm_mentions() {
    case $ccm_cmdline in
        *" $1="* | *" $1 "*) return 0 ;;
    esac
    return 1
}

# ccm_arg NAME KEY CHECK [ARGS...]: validate rd.ccm.NAME= and add it to the
# fragment as KEY.
ccm_arg() {
    _ccm_name=$1 _ccm_key=$2 _ccm_check=$3
    shift 3
    ccm_mentions "$_ccm_name" || return 0
    _ccm_val=$(getarg "$_ccm_name=") || return 0
    if "$_ccm_check" "$_ccm_val" "$@"; then
        [ -n "$ccm_value" ] && [ "$_ccm_check" = ccm_valid_uint ] && _ccm_val=$ccm_value
        ccm_fragment="$ccm_fragment$_ccm_key = $_ccm_val
"
    else
        ccm_bad "$_ccm_name" "$_ccm_val" "${ccm_why:-invalid value}"
    fi
}

# ccm-early takes links or listen/partner/device, never both (lib/conf/config.c
# config_check): say so here, naming what clashes, rather than let the
# connect step end in a usage error.
ccm_check_links_exclusive() {
    for _ccm_k in listen partner device; do
        if [ -n "$ccm_links" ]; then
            if ccm_mentions "rd.ccm.$_ccm_k" && _ccm_av=$(getarg "rd.ccm.$_ccm_k="); then
                ccm_bad "rd.ccm.$_ccm_k" "$_ccm_av" "not with rd.ccm.link, which replaces rd.ccm.listen, rd.ccm.partner and rd.ccm.device"
            elif ccm_conf_get "$_ccm_k" "$CCM_CONF" > /dev/null; then
                ccm_bad rd.ccm.link "${ccm_links%%
*}" "it replaces listen, partner and device, but ${CCM_CONF#"${CCM_ROOT:-}"} sets '$_ccm_k'"
            fi
        elif ccm_mentions "rd.ccm.$_ccm_k" && _ccm_av=$(getarg "rd.ccm.$_ccm_k=") &&
            ccm_conf_get link "$CCM_CONF" > /dev/null; then
            ccm_bad "rd.ccm.$_ccm_k" "$_ccm_av" "${CCM_CONF#"${CCM_ROOT:-}"} has 'link' lines, which replace $_ccm_k"
        fi
    done
}

# ccm_forget_instance [NAME]: nothing of an earlier run of this hook for
# the instance counts.
ccm_forget_instance() {
    ccm_use_instance "${1:-}"
    rm -f -- "$CCM_FRAGMENT" "$CCM_CMDLINE_ERR" "$CCM_LINKS" "$CCM_DONE" "$CCM_QUEUED" \
        "$hookdir/initqueue/finished/ccm-early${1:+@$1}.sh"
}

# ccm_parse_instances: rd.ccm.instance=, into ccm_instances (the valid
# names, one a line).  ccm_instances_given: whether any was given at all.
ccm_parse_instances() {
    ccm_instances='' ccm_instances_given=''
    ccm_mentions rd.ccm.instance || return 0
    ccm_instances_given=1
    _ccm_n=0
    for _ccm_iv in $(getargs rd.ccm.instance=) ''; do
        [ -n "$_ccm_iv" ] || continue
        _ccm_rest=$_ccm_iv,
        while [ -n "$_ccm_rest" ]; do
            _ccm_i=${_ccm_rest%%,*}
            _ccm_rest=${_ccm_rest#*,}
            _ccm_n=$((_ccm_n + 1))
            _ccm_c=${CCM_ROOT:-}/etc/ccm/$_ccm_i.conf
            if ! ccm_valid_instance "$_ccm_i"; then
                ccm_bad rd.ccm.instance "$_ccm_iv" "$ccm_why"
            elif [ "$_ccm_n" -gt "$CCM_BOOT_INSTANCES_MAX" ]; then
                [ "$_ccm_n" -gt $((CCM_BOOT_INSTANCES_MAX + 1)) ] ||
                    ccm_bad rd.ccm.instance "$_ccm_iv" "more than $CCM_BOOT_INSTANCES_MAX instances"
            else
                case "
$ccm_instances" in
                    *"
$_ccm_i
"*)
                        ccm_bad rd.ccm.instance "$_ccm_iv" "instance '$_ccm_i' is named twice"
                        continue
                        ;;
                esac
                if [ ! -e "$_ccm_c" ]; then
                    ccm_bad rd.ccm.instance "$_ccm_iv" "no ${_ccm_c#"${CCM_ROOT:-}"} in the image"
                    continue
                fi
                # What ccm-early cannot do without (nothing on the command
                # line is the instance's but its timeout).
                for _ccm_k in node-id listen partner; do
                    if [ "$_ccm_k" != node-id ] && ccm_conf_get link "$_ccm_c" > /dev/null; then
                        continue
                    fi
                    ccm_conf_get "$_ccm_k" "$_ccm_c" > /dev/null ||
                        ccm_bad rd.ccm.instance "$_ccm_iv" "instance '$_ccm_i': no '$_ccm_k' in ${_ccm_c#"${CCM_ROOT:-}"}"
                done
                ccm_instances="$ccm_instances$_ccm_i
"
            fi
        done
    done
    return 0
}

# ccm_unnamed_wanted: the unnamed instance comes up: always without
# rd.ccm.instance, and with it only when the image or the command line
# configures it.
ccm_unnamed_wanted() {
    [ -z "$ccm_instances_given" ] && return 0
    [ -e "${CCM_ROOT:-}/etc/ccm/ccm.conf" ] && return 0
    for _ccm_k in node listen partner transport device link; do
        ccm_mentions "rd.ccm.$_ccm_k" && return 0
    done
    return 1
}

ccm_parse_cmdline() {
    ccm_errors='' ccm_fragment='' ccm_links=''
    ccm_cmdline=" $(getcmdline) "

    # A fresh start: nothing of an earlier run of this hook counts.
    if [ -r "$CCM_INSTANCES" ]; then
        while IFS= read -r _ccm_i; do
            ccm_valid_instance "$_ccm_i" && ccm_forget_instance "$_ccm_i"
        done < "$CCM_INSTANCES"
    fi
    ccm_forget_instance
    rm -f -- "$CCM_RXE" "$CCM_INSTANCES" "$CCM_TOP_RUN_DIR/rxe.done"
    rmdir -- "$CCM_TOP_RUN_DIR/rxe.lock" 2> /dev/null

    if ccm_mentions rd.ccm && ! getargbool 1 rd.ccm; then
        info "ccm: off (rd.ccm=0)"
        return 0
    fi

    # One value a line, whatever it holds: no field splitting on blanks, no
    # globbing.
    _ccm_ifs=$IFS
    IFS='
'
    set -f
    ccm_parse_instances
    IFS=$_ccm_ifs
    set +f
    ccm_unnamed=1
    ccm_unnamed_wanted || ccm_unnamed=''

    ccm_arg rd.ccm.node node-id ccm_valid_uint 1 4294967294
    ccm_arg rd.ccm.listen listen ccm_valid_addr
    ccm_arg rd.ccm.partner partner ccm_valid_addr
    ccm_arg rd.ccm.transport transport ccm_valid_transport
    ccm_arg rd.ccm.device device ccm_valid_device
    ccm_arg rd.ccm.timeout timeout ccm_valid_uint 0 86400
    ccm_rxe=''
    if ccm_mentions rd.ccm.rxe && _ccm_val=$(getarg rd.ccm.rxe=); then
        if ccm_valid_netdevs "$_ccm_val"; then
            ccm_rxe=$_ccm_val
        else
            ccm_bad rd.ccm.rxe "$_ccm_val" "${ccm_why:-invalid value}"
        fi
    fi

    # One value a line, whatever it holds: no field splitting on blanks, no
    # globbing.
    _ccm_ifs=$IFS
    IFS='
'
    set -f
    _ccm_nlinks=0 _ccm_locals='' _ccm_given=''
    ccm_mentions rd.ccm.link && _ccm_given=$(getargs rd.ccm.link=)
    for _ccm_l in $_ccm_given; do
        _ccm_nlinks=$((_ccm_nlinks + 1))
        if [ "$_ccm_nlinks" -gt "$CCM_LINKS_MAX" ]; then
            ccm_bad rd.ccm.link "$_ccm_l" "more than $CCM_LINKS_MAX links"
        elif ! ccm_valid_link "$_ccm_l"; then
            ccm_bad rd.ccm.link "$_ccm_l" "$ccm_why"
        else
            _ccm_k=$(ccm_addr_key "${_ccm_l%%=*}")
            case $_ccm_locals in
                *"|$_ccm_k|"*)
                    ccm_bad rd.ccm.link "$_ccm_l" "another rd.ccm.link listens on ${_ccm_l%%=*} too"
                    continue
                    ;;
            esac
            _ccm_locals="$_ccm_locals|$_ccm_k|"
            ccm_links="$ccm_links$_ccm_l
"
        fi
    done
    IFS=$_ccm_ifs
    ccm_check_links_exclusive

    # A typo must not fall back to ccm.conf silently.  getargs drops an
    # empty rd.ccm.link= or rd.ccm.instance=; the words show it.
    for _ccm_w in $ccm_cmdline; do
        if [ "$_ccm_w" = rd.ccm.link= ]; then
            _ccm_nlinks=$((_ccm_nlinks + 1))
            ccm_bad rd.ccm.link "" "empty value"
        fi
        [ "$_ccm_w" = rd.ccm.instance= ] && ccm_bad rd.ccm.instance "" "empty value"
        case ${_ccm_w%%=*} in
            rd.ccm | rd.ccm.node | rd.ccm.listen | rd.ccm.partner | rd.ccm.transport | \
                rd.ccm.device | rd.ccm.timeout | rd.ccm.required | rd.ccm.link | rd.ccm.rxe | \
                rd.ccm.instance) ;;
            rd.ccm.*) warn "ccm: unknown argument '$_ccm_w' ignored" ;;
        esac
    done
    set +f

    # What ccm-early cannot do without, from the command line or ccm.conf:
    # a node id, and links or a listen and a partner address.  A wrong
    # rd.ccm.link has been named already: no "listen not given" on top.
    _ccm_need=node-id:rd.ccm.node
    if [ -z "$ccm_unnamed" ]; then
        _ccm_need=''
    elif [ "$_ccm_nlinks" = 0 ] && ! ccm_conf_get link "$CCM_CONF" > /dev/null; then
        _ccm_need="$_ccm_need listen:rd.ccm.listen partner:rd.ccm.partner"
    fi
    for _ccm_k in $_ccm_need; do
        case $ccm_fragment in
            "${_ccm_k%%:*} = "* | *"
${_ccm_k%%:*} = "*) continue ;;
        esac
        case $ccm_errors in *"${_ccm_k#*:}="*) continue ;; esac
        ccm_conf_get "${_ccm_k%%:*}" "$CCM_CONF" > /dev/null && continue
        ccm_bad "${_ccm_k#*:}" "" "not given, and no '${_ccm_k%%:*}' in ${CCM_CONF#"${CCM_ROOT:-}"}"
    done

    mkdir -p -- "$CCM_RUN_DIR"
    if [ -n "$ccm_errors" ]; then
        if ccm_mentions rd.ccm.required && getargbool 0 rd.ccm.required; then
            # The unnamed instance's connect step (ccm-early.service in a
            # systemd initramfs) is the one that dies on them.
            warn "ccm: rd.ccm.required is set and the rd.ccm arguments are wrong: the boot will stop at the ccm connect step"
            printf '%s\n' "$ccm_errors" > "$CCM_CMDLINE_ERR"
            ccm_unnamed=1 ccm_instances=''
        else
            warn "ccm: off for this boot because of the errors above; booting on without the cluster interconnect"
            return 0
        fi
    fi

    if [ -n "$ccm_unnamed" ]; then
        {
            echo "# rd.ccm.* settings from the kernel command line (parse-ccm.sh)"
            printf '%s' "$ccm_fragment"
        } > "$CCM_FRAGMENT"
        [ -n "$ccm_links" ] && printf '%s' "$ccm_links" > "$CCM_LINKS"
    else
        info "ccm: only the named instances (rd.ccm.instance): no /etc/ccm/ccm.conf and no rd.ccm settings of the unnamed one"
    fi
    # A named instance's fragment: only the timeout is the command line's.
    if [ -n "$ccm_instances" ]; then
        printf '%s' "$ccm_instances" > "$CCM_INSTANCES"
        _ccm_t=''
        case $ccm_fragment in
            *"timeout = "*) _ccm_t="timeout = ${ccm_fragment##*timeout = }" _ccm_t=${_ccm_t%%
*} ;;
        esac
        while IFS= read -r _ccm_i; do
            mkdir -p -- "$CCM_TOP_RUN_DIR/$_ccm_i"
            {
                echo "# rd.ccm.instance=$_ccm_i (parse-ccm.sh)"
                [ -z "$_ccm_t" ] || echo "$_ccm_t"
            } > "$CCM_TOP_RUN_DIR/$_ccm_i/cmdline.conf"
        done < "$CCM_INSTANCES"
    fi
    if [ -n "$ccm_rxe" ]; then
        _ccm_ifs=$IFS
        IFS=,
        # shellcheck disable=SC2086 # split on the commas: validated names
        printf '%s\n' $ccm_rxe > "$CCM_RXE"
        IFS=$_ccm_ifs
    fi

    mkdir -p -- "${CCM_ROOT:-}/etc/cmdline.d"
    echo "rd.neednet=1" > "${CCM_ROOT:-}/etc/cmdline.d/95ccm-neednet.conf"

    # systemd: ccm-early.service (ConditionPathExists=/run/ccm/cmdline.conf).
    [ -n "${DRACUT_SYSTEMD:-}" ] && return 0

    mkdir -p -- "$hookdir/initqueue/finished"
    [ -z "$ccm_unnamed" ] || echo "[ -e '${CCM_DONE}' ]" > "$hookdir/initqueue/finished/ccm-early.sh"
    if [ -n "$ccm_instances" ]; then
        while IFS= read -r _ccm_i; do
            echo "[ -e '$CCM_TOP_RUN_DIR/$_ccm_i/connect.done' ]" > "$hookdir/initqueue/finished/ccm-early@$_ccm_i.sh"
        done < "$CCM_INSTANCES"
    fi
    /sbin/initqueue --settled --unique --name ccm-early-settled /sbin/ccm-connect settled
    /sbin/initqueue --timeout --onetime --unique --name ccm-early-timeout /sbin/ccm-connect timeout
    return 0
}

ccm_parse_cmdline
