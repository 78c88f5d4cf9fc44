# bash completion for ccm-early, ccm-fmon and ccm-nvmirror    -*- shell-script -*-
#
# Installed by `make install` into bash-completion's directory as ccm-early,
# with ccm-fmon and ccm-nvmirror as links to it.  It completes:
#
#   - ccm-early's commands, and each command's options (and those of the
#     two clients);
#   - a file or directory where an option takes one, tcp|rdma,
#     balance|standby, and RDMA device names (/sys/class/infiniband);
#   - instance names, for --instance: each NAME.conf in /etc/ccm (but
#     ccm.conf) and each /run/ccm/NAME with a handoff in it;
#   - client names, for `exec` and `dump` and the clients' --client: the
#     descriptors (NAME.conf) in the clients directory that the instance's
#     config file names (`clients = DIR`; the unnamed instance's is
#     /etc/ccm/ccm.conf, default /etc/ccm/clients.d; instance I's is
#     /etc/ccm/I.conf, default /etc/ccm/I.clients.d), and the clients with
#     ports in the handoff (CCM_CLIENTS in STATE-DIR/state; STATE-DIR is the
#     line's --state-dir, else the instance's: /run/ccm or /run/ccm/I).  The
#     instance is the line's --instance, else $CCM_INSTANCE;
#   - after `exec CLIENT --`, the command to run, as a command line of its
#     own.
#
# $CCM_CONF_DIR and $CCM_RUN_DIR replace /etc/ccm and /run/ccm, as for the
# programs.  CCM_COMPLETION_CONFIG, when set, is read instead of the
# instance's config file for the clients directory (the tests use it).
#
# The option lists below are checked against each program's --help by
# tests/cli/test_completion.sh.

_ccm_early_commands='connect status check metrics events exec stop reload-keys dump keygen devices version help'

# _ccm_early_opts COMMAND: the options of ccm-early COMMAND.
_ccm_early_opts()
{
    case $1 in
        connect)
            echo --node-id --listen --partner --transport --device --clients \
                --state-dir --psk-file --psk-accept-file --cluster --timeout \
                --proto-versions --config --heartbeat-ms --heartbeat-misses \
                --link --link-policy --link-heartbeat-ms --link-misses \
                --link-damp-ms --msg-hold-ms --metrics-dir --partner-node \
                --instance --once --foreground --verbose -v --help -h
            ;;
        status) echo --state-dir --instance --json --help -h ;;
        check | metrics | exec | reload-keys) echo --state-dir --instance --help -h ;;
        events) echo --state-dir --instance --now --json --help -h ;;
        stop) echo --state-dir --instance --restart --grace --help -h ;;
        dump) echo --state-dir --instance --port --payload --verbose -v --help -h ;;
        keygen) echo --force --help -h ;;
        devices) echo --help -h ;;
    esac
}

# The options of ccm-fmon and ccm-nvmirror.
_ccm_early_fmon_opts='--client --state-dir --instance --port --interval --dead-after --fast --takeover
--giveback --fence --fence-retry --verbose -v --help -h'
_ccm_early_nvmirror_opts='--log --client --state-dir --instance --port --interval --max-record --once
--verbose -v --help -h'

# _ccm_early_takes_arg OPTION: 0 when OPTION takes a value (of any program).
_ccm_early_takes_arg()
{
    case $1 in
        --node-id | --listen | --partner | --transport | --device | --clients | \
            --state-dir | --psk-file | --psk-accept-file | --cluster | --timeout | \
            --proto-versions | --config | --heartbeat-ms | --heartbeat-misses | \
            --link | --link-policy | --link-heartbeat-ms | --link-misses | \
            --link-damp-ms | --msg-hold-ms | --metrics-dir | --partner-node | --instance | \
            --grace | --port | --client | --interval | --dead-after | --takeover | \
            --giveback | --fence | --fence-retry | --log | --max-record)
            return 0
            ;;
    esac
    return 1
}

# _ccm_early_clients STATE-DIR: the client names, one a line.
_ccm_early_conf_dir() { printf '%s' "${CCM_CONF_DIR:-/etc/ccm}"; }
_ccm_early_run_dir() { printf '%s' "${CCM_RUN_DIR:-/run/ccm}"; }

# _ccm_early_instances: the instance names of this node, one a line.
_ccm_early_instances()
{
    local f
    for f in "$(_ccm_early_conf_dir)"/*.conf "$(_ccm_early_run_dir)"/*/state; do
        [[ -f $f ]] || continue
        if [[ $f == */state ]]; then
            f=${f%/state}
        else
            f=${f%.conf}
        fi
        f=${f##*/}
        [[ $f != ccm && $f =~ ^[a-z][a-z0-9_]{0,30}$ ]] && printf '%s\n' "$f"
    done
}

# _ccm_early_instance: the --instance given on the line so far, else
# $CCM_INSTANCE; empty for the unnamed instance.
_ccm_early_instance()
{
    local i name=${CCM_INSTANCE-}
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --instance) name=${words[i + 1]-} ;;
            --instance=*) name=${words[i]#*=} ;;
        esac
    done
    [[ $name =~ ^[a-z][a-z0-9_]{0,30}$ ]] || name=
    printf '%s' "$name"
}

# _ccm_early_clients [STATE-DIR]: the client names of the line's instance.
_ccm_early_clients()
{
    local inst etc run conf dir line key val f state
    inst=$(_ccm_early_instance)
    etc=$(_ccm_early_conf_dir)
    run=$(_ccm_early_run_dir)
    if [[ -n $inst ]]; then
        conf=$etc/$inst.conf dir=$etc/$inst.clients.d state=${1:-$run/$inst}/state
    else
        conf=$etc/ccm.conf dir=$etc/clients.d state=${1:-$run}/state
    fi
    conf=${CCM_COMPLETION_CONFIG:-$conf}

    # ccm.conf's `clients = DIR` (blanks trimmed, one pair of quotes).
    if [[ -r $conf ]]; then
        while IFS= read -r line || [[ -n $line ]]; do
            line=${line%$'\r'}
            [[ $line == *=* ]] || continue
            key=${line%%=*}
            key=${key#"${key%%[![:blank:]]*}"}
            key=${key%"${key##*[![:blank:]]}"}
            [[ $key == clients ]] || continue
            val=${line#*=}
            val=${val#"${val%%[![:blank:]]*}"}
            val=${val%"${val##*[![:blank:]]}"}
            [[ $val == \"*\" ]] && val=${val:1:${#val}-2}
            [[ -n $val ]] && dir=$val
        done <"$conf"
    fi
    for f in "$dir"/*.conf; do
        [[ -f $f ]] || continue
        f=${f##*/}
        f=${f%.conf}
        [[ $f =~ ^[a-z][a-z0-9_]{0,30}$ ]] && printf '%s\n' "$f"
    done
    # The handoff is read, never sourced: CCM_CLIENTS='name name ...'.
    if [[ -r $state ]]; then
        while IFS= read -r line; do
            [[ $line =~ ^CCM_CLIENTS=\'([a-z0-9_ ]*)\'$ ]] || continue
            for f in ${BASH_REMATCH[1]}; do
                printf '%s\n' "$f"
            done
        done <"$state"
    fi
}

# _ccm_early_state_dir: the --state-dir given on the line so far, if any.
_ccm_early_state_dir()
{
    local i dir=
    for ((i = 1; i < cword; i++)); do
        case ${words[i]} in
            --state-dir) dir=${words[i + 1]-} ;;
            --state-dir=*) dir=${words[i]#*=} ;;
        esac
    done
    # A leading ~ as the shell would expand it.
    [[ $dir == '~'* ]] && dir=$HOME${dir#'~'}
    printf '%s' "$dir"
}

# _ccm_early_value OPTION: complete the value of OPTION; 1 when OPTION takes
# none.
_ccm_early_value()
{
    local names
    case $1 in
        --clients | --state-dir | --metrics-dir)
            _filedir -d
            ;;
        --psk-file | --psk-accept-file | --config | --log)
            _filedir
            ;;
        --transport)
            mapfile -t COMPREPLY < <(compgen -W 'tcp rdma' -- "$cur")
            ;;
        --link-policy)
            mapfile -t COMPREPLY < <(compgen -W 'balance standby' -- "$cur")
            ;;
        --device)
            names=$(
                shopt -s nullglob
                for d in /sys/class/infiniband/*; do printf '%s ' "${d##*/}"; done
            )
            mapfile -t COMPREPLY < <(compgen -W "$names" -- "$cur")
            ;;
        --instance)
            mapfile -t COMPREPLY < <(compgen -W "$(_ccm_early_instances)" -- "$cur")
            ;;
        --client)
            mapfile -t COMPREPLY < <(compgen -W "$(_ccm_early_clients "$(_ccm_early_state_dir)")" -- "$cur")
            ;;
        --takeover | --giveback | --fence)
            # A command for /bin/sh -c: a program, or a script's path.
            if [[ $cur == */* ]]; then
                _filedir
            else
                mapfile -t COMPREPLY < <(compgen -c -- "$cur")
            fi
            ;;
        *)
            _ccm_early_takes_arg "$1" || return 1
            # A number or an address: nothing to offer.
            ;;
    esac
    return 0
}

_ccm_early()
{
    local cur prev words cword split
    _init_completion -s || return

    local prog=${words[0]##*/} cmd opts first=2 i npos=0 dashdash=0

    case $prog in
        ccm-fmon) opts=$_ccm_early_fmon_opts first=1 ;;
        ccm-nvmirror) opts=$_ccm_early_nvmirror_opts first=1 ;;
        *)
            if ((cword == 1)); then
                if [[ $cur == -* ]]; then
                    mapfile -t COMPREPLY < <(compgen -W '--help --version' -- "$cur")
                else
                    mapfile -t COMPREPLY < <(compgen -W "$_ccm_early_commands" -- "$cur")
                fi
                return
            fi
            cmd=${words[1]}
            opts=$(_ccm_early_opts "$cmd")
            ;;
    esac

    # exec: after CLIENT --, the command's own completion.
    if [[ ${cmd-} == exec ]]; then
        for ((i = first; i < cword; i++)); do
            if [[ ${words[i]} == -- ]]; then
                dashdash=$i
                break
            fi
        done
        if ((dashdash)); then
            _command_offset $((dashdash + 1))
            return
        fi
    fi

    # An option's value (--opt VALUE, or --opt=VALUE split by -s above).
    if [[ $prev == -* ]] && { $split || ((cword - 1 >= first)); } && _ccm_early_value "$prev"; then
        return
    fi
    $split && return

    # The positional arguments before this word (option values skipped).
    for ((i = first; i < cword; i++)); do
        if [[ ${words[i]} == -* ]]; then
            [[ ${words[i]} != *=* ]] && _ccm_early_takes_arg "${words[i]}" && ((i++))
        else
            ((npos++))
        fi
    done

    # exec's options end at CLIENT; then comes --.
    if [[ ${cmd-} == exec ]] && ((npos > 0)); then
        ((npos == 1)) && mapfile -t COMPREPLY < <(compgen -W '--' -- "$cur")
        return
    fi
    if [[ $cur == -* ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$opts" -- "$cur")
        return
    fi

    case ${cmd-} in
        exec)
            mapfile -t COMPREPLY < <(compgen -W "$(_ccm_early_clients "$(_ccm_early_state_dir)")" -- "$cur")
            ;;
        dump)
            ((npos == 0)) &&
                mapfile -t COMPREPLY < <(compgen -W "$(_ccm_early_clients "$(_ccm_early_state_dir)")" -- "$cur")
            ;;
        keygen)
            ((npos == 0)) && _filedir
            ;;
    esac
}
complete -F _ccm_early ccm-early ccm-fmon ccm-nvmirror

# ex: filetype=sh
