#!/bin/sh
# ccm-lib.sh: helpers shared by parse-ccm.sh, ccm-connect and module-setup.sh
# (installed in the initramfs as /lib/ccm-lib.sh).  POSIX sh, no external
# commands except `ip` in ccm_addr_is_local.
#
# The validators accept exactly what ccm-early accepts (lib/tp/addr.c,
# lib/conf/config.c), so a value the command line lets through is never refused
# later by the binary, and the other way round:
#
#   ccm_valid_addr ADDR[:PORT]    1.2.3.4  1.2.3.4:7471  ::1  [::1]  [::1]:7471
#                                 numeric only (no resolver in an initramfs),
#                                 no zone ids, port 1..65535
#   ccm_valid_uint VALUE MIN MAX  decimal digits only (no sign, no blanks),
#                                 MIN..MAX; the canonical value (leading
#                                 zeros dropped) is left in ccm_value
#   ccm_valid_transport VALUE     tcp | rdma
#   ccm_valid_device VALUE        [A-Za-z0-9_.-], 1..63 bytes, not . or ..
#   ccm_valid_link VALUE          LOCAL=PARTNER[,device=DEV][,priority=N]:
#                                 two addresses as above, DEV as above, N
#                                 0..255; options in any order, a repeated
#                                 one wins, empty ones skipped; at most 255
#                                 bytes (ccm-early's --link)
#   ccm_valid_netdevs LIST        NETDEV[,NETDEV...]: 1..CCM_LINKS_MAX
#                                 distinct device names (rd.ccm.rxe)
#   ccm_valid_instance NAME       an instance name as ccm-early takes it
#                                 (lib/base/instance.c): [a-z][a-z0-9_]*,
#                                 at most 31 bytes, not ccm, state or
#                                 metrics (the unnamed instance's files)
#
# Each returns 0 or 1; on 1, ccm_why holds a short reason for the message.
#
# Paths: CCM_ROOT prefixes every absolute path (tests only; empty at boot).
# shellcheck disable=SC2034 # the variables are for the scripts that source this

# What every instance shares: the Soft-RoCE devices are the node's.
CCM_TOP_RUN_DIR=${CCM_ROOT:-}/run/ccm
CCM_RXE=$CCM_TOP_RUN_DIR/cmdline.rxe           # rd.ccm.rxe=: the netdevs to put Soft-RoCE on, one a line
CCM_INSTANCES=$CCM_TOP_RUN_DIR/cmdline.instances # rd.ccm.instance=: the named instances on for this boot, one a line

# ccm_use_instance [NAME]: the paths below become instance NAME's (none or
# "": the unnamed instance's), as ccm-early lays them out
# (lib/base/instance.h): /etc/ccm/NAME.conf, state in /run/ccm/NAME.
ccm_use_instance() {
    CCM_INSTANCE=${1:-}
    CCM_TAG=ccm${CCM_INSTANCE:+@$CCM_INSTANCE} # what the messages start with
    if [ -n "$CCM_INSTANCE" ]; then
        CCM_RUN_DIR=$CCM_TOP_RUN_DIR/$CCM_INSTANCE
        CCM_CONF=${CCM_ROOT:-}/etc/ccm/$CCM_INSTANCE.conf
    else
        CCM_RUN_DIR=$CCM_TOP_RUN_DIR
        CCM_CONF=${CCM_ROOT:-}/etc/ccm/ccm.conf
    fi
    CCM_FRAGMENT=$CCM_RUN_DIR/cmdline.conf   # the validated rd.ccm.* settings: "on for this boot"
    CCM_CMDLINE_ERR=$CCM_RUN_DIR/cmdline.err # why they are not valid (rd.ccm.required)
    CCM_LINKS=$CCM_RUN_DIR/cmdline.links     # rd.ccm.link= values, one a line
    CCM_DONE=$CCM_RUN_DIR/connect.done       # the connect step has run (initqueue finished hook)
    CCM_QUEUED=$CCM_RUN_DIR/connect.queued   # the settled hook started the connect
}
ccm_use_instance ""
CCM_DEFAULT_TIMEOUT=60
CCM_DEFAULT_PORT=7471
CCM_LINKS_MAX=4 # lib/base/limits.h
CCM_BOOT_INSTANCES_MAX=16 # named instances one boot brings up (rd.ccm.instance)

ccm_why=
ccm_value=

# The blanks the config file lexer trims: ccm_trimmed is S without them at
# either end.  It sets a variable rather than print, so that a caller needs
# no subshell: under TCG each costs milliseconds, and reading ccm.conf once
# took a few dozen of them per line.
ccm_trim_set() {
    ccm_trimmed=${1#"${1%%[! 	]*}"}
    ccm_trimmed=${ccm_trimmed%"${ccm_trimmed##*[! 	]}"}
}

# A carriage return, as a DOS line end leaves it.
ccm_cr=$(printf '\r')

ccm_valid_uint() {
    ccm_why='' ccm_value=''
    case $1 in
        '') ccm_why="empty value"; return 1 ;;
        *[!0-9]*) ccm_why="'$1' is not a decimal number (digits only: no sign, no blanks)"; return 1 ;;
    esac
    ccm_value=${1#"${1%%[!0]*}"}
    [ -n "$ccm_value" ] || ccm_value=0
    # Longer than 10 digits is beyond any range here, and beyond what test(1)
    # compares safely everywhere.
    if [ ${#ccm_value} -gt 10 ] || [ "$ccm_value" -lt "$2" ] || [ "$ccm_value" -gt "$3" ]; then
        ccm_why="'$1' is not in $2..$3"
        ccm_value=
        return 1
    fi
    return 0
}

ccm_valid_port() {
    case $1 in
        '' | *[!0-9]* | ??????*) return 1 ;;
    esac
    [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# Dotted quad as inet_pton(AF_INET) takes it: four parts, 0..255, no
# leading zeros.
ccm_valid_ipv4() {
    _ccm_s=$1
    case $_ccm_s in
        '' | *[!0-9.]* | .* | *. | *..*) return 1 ;;
    esac
    _ccm_n=0
    while :; do
        _ccm_p=${_ccm_s%%.*}
        case $_ccm_p in
            '' | 0?* | ????*) return 1 ;;
        esac
        [ "$_ccm_p" -le 255 ] || return 1
        _ccm_n=$((_ccm_n + 1))
        case $_ccm_s in
            *.*) _ccm_s=${_ccm_s#*.} ;;
            *) break ;;
        esac
    done
    [ "$_ccm_n" -eq 4 ]
}

# IPv6 text form as inet_pton(AF_INET6) takes it: up to 8 groups of 1..4 hex
# digits, one "::" standing for at least one group, an optional dotted quad
# as the last two groups.
ccm_valid_ipv6() {
    _ccm_a=$1
    case $_ccm_a in
        '' | *[!0-9A-Fa-f:.]* | *:::* | *::*::*) return 1 ;;
        :[!:]* | *[!:]: | :) return 1 ;;
    esac
    _ccm_dbl=0
    case $_ccm_a in *::*) _ccm_dbl=1 ;; esac
    case $_ccm_a in
        *.*)
            _ccm_v4=${_ccm_a##*:}
            ccm_valid_ipv4 "$_ccm_v4" || return 1
            _ccm_a=${_ccm_a%"$_ccm_v4"}0:0
            ;;
    esac
    _ccm_n=0
    while :; do
        _ccm_g=${_ccm_a%%:*}
        if [ -n "$_ccm_g" ]; then
            case $_ccm_g in
                ? | ?? | ??? | ????) ;;
                *) return 1 ;;
            esac
            _ccm_n=$((_ccm_n + 1))
        fi
        case $_ccm_a in
            *:*) _ccm_a=${_ccm_a#*:} ;;
            *) break ;;
        esac
    done
    if [ "$_ccm_dbl" = 1 ]; then
        [ "$_ccm_n" -le 7 ]
    else
        [ "$_ccm_n" -eq 8 ]
    fi
}

ccm_valid_addr() {
    ccm_why=
    case $1 in
        '')
            ccm_why="empty value"
            return 1
            ;;
        '['*)
            _ccm_h=${1#?}
            case $_ccm_h in
                *']'*) ;;
                *) ccm_why="missing ']'"; return 1 ;;
            esac
            _ccm_rest=${_ccm_h#*]}
            _ccm_h=${_ccm_h%%]*}
            case $_ccm_rest in
                '') ;;
                :*)
                    ccm_valid_port "${_ccm_rest#:}" || {
                        ccm_why="port '${_ccm_rest#:}' is not a number in 1..65535"
                        return 1
                    }
                    ;;
                *) ccm_why="expected ':PORT' after ']'"; return 1 ;;
            esac
            ccm_valid_ipv6 "$_ccm_h" || {
                ccm_why="'$_ccm_h' is not a numeric IPv6 address"
                return 1
            }
            ;;
        *:*:*)
            ccm_valid_ipv6 "$1" || {
                ccm_why="'$1' is not a numeric IPv6 address (write [ADDR]:PORT for a port)"
                return 1
            }
            ;;
        *:*)
            ccm_valid_ipv4 "${1%%:*}" || {
                ccm_why="'${1%%:*}' is not a numeric IPv4 address (host names are not resolved)"
                return 1
            }
            ccm_valid_port "${1#*:}" || {
                ccm_why="port '${1#*:}' is not a number in 1..65535"
                return 1
            }
            ;;
        *)
            ccm_valid_ipv4 "$1" || {
                ccm_why="'$1' is not a numeric IPv4 address (host names are not resolved)"
                return 1
            }
            ;;
    esac
    return 0
}

ccm_valid_transport() {
    ccm_why=
    case $1 in
        tcp | rdma) return 0 ;;
        '') ccm_why="empty value" ;;
        *) ccm_why="'$1' is neither tcp nor rdma" ;;
    esac
    return 1
}

ccm_valid_device() {
    ccm_why=
    case $1 in
        '') ccm_why="empty value"; return 1 ;;
        . | .. | *[!A-Za-z0-9_.-]*)
            ccm_why="'$1' is not a device name ([A-Za-z0-9_.-])"
            return 1
            ;;
    esac
    if [ ${#1} -gt 63 ]; then
        ccm_why="device name longer than 63 bytes"
        return 1
    fi
    return 0
}

# ccm_valid_link VALUE: one --link value, as lib/conf/config.c set_link takes
# it, plus the checks of config_check on the one link (LOCAL and PARTNER
# the same).  Compared as text: ccm-early, which compares the parsed
# addresses, catches the rest.
ccm_valid_link() {
    ccm_why=
    if [ ${#1} -gt 255 ]; then
        ccm_why="longer than 255 bytes"
        return 1
    fi
    _ccm_head=${1%%,*}
    case $_ccm_head in
        *=*) ;;
        *)
            ccm_why="expected LOCAL=PARTNER[,device=DEV][,priority=N]"
            return 1
            ;;
    esac
    ccm_valid_addr "${_ccm_head%%=*}" || {
        ccm_why="local address: $ccm_why"
        return 1
    }
    ccm_valid_addr "${_ccm_head#*=}" || {
        ccm_why="partner address: $ccm_why"
        return 1
    }
    if [ "$(ccm_addr_key "${_ccm_head%%=*}")" = "$(ccm_addr_key "${_ccm_head#*=}")" ]; then
        ccm_why="LOCAL and PARTNER are the same address"
        return 1
    fi
    _ccm_opts=
    case $1 in *,*) _ccm_opts=${1#*,} ;; esac
    while [ -n "$_ccm_opts" ]; do
        _ccm_o=${_ccm_opts%%,*}
        case $_ccm_opts in
            *,*) _ccm_opts=${_ccm_opts#*,} ;;
            *) _ccm_opts= ;;
        esac
        case $_ccm_o in
            '') ;;
            device=*)
                ccm_valid_device "${_ccm_o#device=}" || {
                    ccm_why="device: $ccm_why"
                    return 1
                }
                ;;
            priority=*)
                ccm_valid_uint "${_ccm_o#priority=}" 0 255 || {
                    ccm_why="priority: $ccm_why"
                    return 1
                }
                ;;
            *)
                ccm_why="unknown option '$_ccm_o' (device=, priority=)"
                return 1
                ;;
        esac
    done
    return 0
}

# ccm_valid_netdevs LIST: rd.ccm.rxe's comma-separated interfaces.
ccm_valid_netdevs() {
    ccm_why=
    case $1 in
        '') ccm_why="empty value"; return 1 ;;
        ,* | *, | *,,*) ccm_why="an empty interface name in '$1'"; return 1 ;;
    esac
    _ccm_nds=$1 _ccm_seen=, _ccm_nnd=0
    while [ -n "$_ccm_nds" ]; do
        _ccm_d=${_ccm_nds%%,*}
        case $_ccm_nds in
            *,*) _ccm_nds=${_ccm_nds#*,} ;;
            *) _ccm_nds= ;;
        esac
        ccm_valid_device "$_ccm_d" || return 1
        case $_ccm_seen in
            *",$_ccm_d,"*) ccm_why="'$_ccm_d' is named twice"; return 1 ;;
        esac
        _ccm_seen="$_ccm_seen$_ccm_d,"
        _ccm_nnd=$((_ccm_nnd + 1))
    done
    if [ "$_ccm_nnd" -gt "$CCM_LINKS_MAX" ]; then
        ccm_why="more than $CCM_LINKS_MAX interfaces"
        return 1
    fi
    return 0
}

ccm_valid_instance() {
    ccm_why=
    case $1 in
        '') ccm_why="empty value" ;;
        [!a-z]* | *[!a-z0-9_]*) ccm_why="'$1' is not an instance name ([a-z][a-z0-9_]*)" ;;
        ccm | state | metrics) ccm_why="'$1' is the unnamed instance's (/etc/ccm/ccm.conf, /run/ccm/state, /run/ccm/metrics)" ;;
        *)
            [ ${#1} -le 31 ] && return 0
            ccm_why="'$1' is longer than 31 bytes"
            ;;
    esac
    return 1
}

# The host part of a valid ADDR[:PORT], without brackets.
ccm_addr_host() {
    case $1 in
        '['*) _ccm_h=${1#?}; printf '%s' "${_ccm_h%%]*}" ;;
        *:*:*) printf '%s' "$1" ;;
        *) printf '%s' "${1%%:*}" ;;
    esac
}

# The port of a valid ADDR[:PORT] (the default when none is written).
ccm_addr_port() {
    case $1 in
        '['*']:'*) printf '%s' "${1##*]:}" ;;
        '['* | *:*:*) printf '%s' "$CCM_DEFAULT_PORT" ;;
        *:*) printf '%s' "${1#*:}" ;;
        *) printf '%s' "$CCM_DEFAULT_PORT" ;;
    esac
}

# HOST PORT of a valid ADDR[:PORT], for comparisons (the port without
# leading zeros).
ccm_addr_key() {
    _ccm_p=$(ccm_addr_port "$1")
    _ccm_p=${_ccm_p#"${_ccm_p%%[!0]*}"}
    printf '%s %s' "$(ccm_addr_host "$1")" "$_ccm_p"
}

# ccm_conf_get KEY FILE: the value of KEY in a ccm-early config file (the
# same lexer rules: blanks trimmed, '#' starts a comment line, one pair of
# double quotes dropped).  Status 1 when the file or the key is missing.
ccm_conf_get() {
    _ccm_v=$(ccm_conf_get_all "$1" "$2") || return 1
    printf '%s\n' "${_ccm_v%%
*}"
}

# ccm_conf_get_all KEY FILE: every value of KEY, one a line (`link` is a
# list; ccm-early refuses any other key twice).
ccm_conf_get_all() {
    [ -r "$2" ] || return 1
    _ccm_found=1
    while IFS= read -r _ccm_l || [ -n "$_ccm_l" ]; do
        ccm_trim_set "${_ccm_l%"$ccm_cr"}"
        _ccm_l=$ccm_trimmed
        case $_ccm_l in
            '' | '#'*) continue ;;
            *=*) ;;
            *) continue ;;
        esac
        ccm_trim_set "${_ccm_l%%=*}"
        [ "$ccm_trimmed" = "$1" ] || continue
        ccm_trim_set "${_ccm_l#*=}"
        _ccm_v=$ccm_trimmed
        case $_ccm_v in
            \"*\") _ccm_v=${_ccm_v#\"} _ccm_v=${_ccm_v%\"} ;;
        esac
        printf '%s\n' "$_ccm_v"
        _ccm_found=0
    done < "$2"
    return $_ccm_found
}

# ccm_setting KEY: the value ccm-early will use for KEY, from the command
# line fragment first, then the config file.  Status 1 when neither has it.
ccm_setting() {
    ccm_conf_get "$1" "$CCM_FRAGMENT" || ccm_conf_get "$1" "$CCM_CONF"
}

# ccm_addr_is_local HOST: HOST is an address of this machine, usable now
# (not tentative).  Without `ip` we cannot tell: say yes and let ccm-early
# report a listen failure.
ccm_addr_is_local() {
    command -v ip > /dev/null 2>&1 || return 0
    case $(ip -o addr show to "$1" 2> /dev/null) in
        '' | *tentative*) return 1 ;;
    esac
    return 0
}

# Seconds since boot (no date(1) in a small initramfs).
ccm_now() {
    read -r _ccm_up _ccm_idle < /proc/uptime
    printf '%s' "${_ccm_up%%.*}"
}
