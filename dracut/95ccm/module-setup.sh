#!/bin/bash
# The ccm dracut module: runs ccm-early in the initramfs so that the HA
# partner is found, and the handoff written to /run/ccm, before the real
# root's services start.  Only included on request: dracut -a ccm.
#
# In the image:
#   /usr/sbin/ccm-early           the static binary (wherever it is on the host)
#   /lib/ccm-lib.sh               validators and config reader for the hooks
#   /sbin/ccm-connect             the connect step (initqueue jobs, or the unit)
#   cmdline/90-parse-ccm.sh       validates rd.ccm.* (see its header)
#   /etc/ccm/ccm.conf, the clients directory's *.conf, the psk-file (0600)
#   each named instance's /etc/ccm/NAME.conf, clients and psk-file the same
#     way: rd.ccm.instance=NAME brings it up (parse-ccm.sh)
#   systemd initramfs only: ccm-early.service, enabled in initrd.target.wants;
#     ccm-early@.service and dracut-ccm-generator, which wants
#     ccm-early@NAME.service for each rd.ccm.instance=NAME

# Where `make install` puts it ($PREFIX/sbin, PREFIX=/usr by default), then
# /usr/local, then $PATH.  CCM_EARLY_BIN overrides.
ccm_early_bin() {
    local _p
    for _p in ${CCM_EARLY_BIN:+"$CCM_EARLY_BIN"} /usr/sbin/ccm-early /usr/local/sbin/ccm-early; do
        if [[ -x "${dracutsysrootdir-}$_p" ]]; then
            echo "$_p"
            return 0
        fi
    done
    find_binary ccm-early 2> /dev/null
}

# called by dracut
check() {
    if ! ccm_early_bin > /dev/null; then
        require_binaries ccm-early # dracut's standard "will not be installed" line
        return 1
    fi
    # Only on request: the module turns a boot into one that looks for a
    # partner.
    return 255
}

# called by dracut
depends() {
    # ccm-early needs the interconnect's interface configured; "network"
    # picks network-legacy, network-manager or systemd-networkd, as 95nvmf
    # and 95iscsi do.  The systemd side needs no module of its own: install()
    # adds the unit when the image has dracut's systemd module.
    echo network
    return 0
}

# called by dracut
installkernel() {
    # rdma transport: verbs, the connection manager, the two providers the
    # static binary carries (mlx5, rxe).  instmods skips what the kernel
    # does not have.  hostonly="" so that a host-only image built on a
    # machine where they are not loaded still gets them.
    hostonly="" instmods ib_uverbs rdma_ucm rdma_cm ib_core mlx5_ib rdma_rxe crc32_generic
}

# ccm_conf_value KEY [CONF]: KEY of the host's /etc/ccm/ccm.conf, or of
# CONF (every value of it, one a line, for `link`).
ccm_conf_value() {
    (
        # shellcheck source=dracut/95ccm/ccm-lib.sh
        . "$moddir/ccm-lib.sh"
        ccm_conf_get_all "$1" "${dracutsysrootdir-}${2:-/etc/ccm/ccm.conf}"
    )
}

# ccm_install_conf CONF CLIENTS: an instance's config file, when the host
# has it, with what it names: its clients directory (the config's
# `clients`, else CLIENTS) and their *.conf, and its psk-file.
ccm_install_conf() {
    local _conf=$1 _clients=$2 _psk="" _f
    if [[ -f "${dracutsysrootdir-}$_conf" ]]; then
        inst_simple "$_conf"
        _f=$(ccm_conf_value clients "$_conf") && _clients=$_f
        _psk=$(ccm_conf_value psk-file "$_conf")
    fi
    inst_dir "$_clients"
    for _f in "${dracutsysrootdir-}$_clients"/*.conf; do
        [[ -f $_f ]] && inst_simple "${_f#"${dracutsysrootdir-}"}"
    done
    if [[ $_psk ]]; then
        if [[ -f "${dracutsysrootdir-}$_psk" ]]; then
            # ccm-early refuses a key readable by group or others.  dracut
            # writes the image itself with umask 077.
            inst_simple "$_psk"
            chmod 0600 "${initdir}$_psk"
        else
            dwarn "ccm: psk-file $_psk (in $_conf) does not exist; the partner will refuse this node"
        fi
    fi
}

# called by dracut: the rd.ccm.* arguments of the host's config, for
# host-only images (and `dracut --print-cmdline`).
cmdline() {
    local _v _l _links _partners=()
    _v=$(ccm_conf_value node-id) && printf ' rd.ccm.node=%s' "$_v"
    _v=$(ccm_conf_value listen) && printf ' rd.ccm.listen=%s' "$_v"
    _v=$(ccm_conf_value partner) && printf ' rd.ccm.partner=%s' "$_v" && _partners+=("$_v")
    _v=$(ccm_conf_value transport) && printf ' rd.ccm.transport=%s' "$_v"
    _v=$(ccm_conf_value device) && printf ' rd.ccm.device=%s' "$_v"
    _v=$(ccm_conf_value timeout) && printf ' rd.ccm.timeout=%s' "$_v"
    # Each interconnect, in order.
    if _links=$(ccm_conf_value link); then
        while IFS= read -r _l; do
            printf ' rd.ccm.link=%s' "$_l"
            _v=${_l%%,*}
            _partners+=("${_v#*=}")
        done <<< "$_links"
    fi
    # The ip= that reaches each partner address from this host, as 95iscsi
    # does for its target (dracut-functions.sh, when the network module is
    # around).
    declare -F ip_params_for_remote_addr > /dev/null || return 0
    for _l in "${_partners[@]}"; do
        _l=$(
            . "$moddir/ccm-lib.sh"
            ccm_addr_host "$_l"
        )
        _v=$(ip_params_for_remote_addr "$_l" 2> /dev/null) && [[ $_v ]] && printf ' %s' "${_v% }"
    done
    return 0
}

# called by dracut
install() {
    local _bin _f _name _args

    _bin=$(ccm_early_bin) || return 1
    # Static: nothing else to pull in.  One path in every image.
    inst_simple "$_bin" /usr/sbin/ccm-early
    # rdma: iproute2's, for rd.ccm.rxe (rdma link add); optional.
    inst_multiple -o ip rdma

    inst_simple "$moddir/ccm-lib.sh" /lib/ccm-lib.sh
    inst_script "$moddir/ccm-connect.sh" /sbin/ccm-connect
    inst_hook cmdline 90 "$moddir/parse-ccm.sh"

    ccm_install_conf /etc/ccm/ccm.conf /etc/ccm/clients.d
    # Every named instance's (lib/base/instance.h lays them out): which of
    # them come up is the command line's choice, rd.ccm.instance.
    for _f in "${dracutsysrootdir-}"/etc/ccm/*.conf; do
        _name=${_f##*/}
        _name=${_name%.conf}
        [[ -f $_f && $_name =~ ^[a-z][a-z0-9_]{0,30}$ && ! $_name =~ ^(ccm|state|metrics)$ ]] || continue
        ccm_install_conf "/etc/ccm/$_name.conf" "/etc/ccm/$_name.clients.d"
    done

    if [[ ${hostonly_cmdline-} == "yes" ]]; then
        _args=$(cmdline)
        if [[ $_args ]]; then
            mkdir -p "${initdir}/etc/cmdline.d"
            printf '%s\n' "$_args" >> "${initdir}/etc/cmdline.d/95ccm.conf"
        fi
    fi

    if dracut_module_included "systemd"; then
        inst_simple "$moddir/ccm-early.service" "${systemdsystemunitdir}/ccm-early.service"
        $SYSTEMCTL -q --root "$initdir" enable ccm-early.service
        inst_simple "$moddir/ccm-early@.service" "${systemdsystemunitdir}/ccm-early@.service"
        mkdir -p "${initdir}${systemdutildir}/system-generators"
        sed "s|@UNIT_DIR@|${systemdsystemunitdir}|" "$moddir/ccm-generator.sh" \
            > "${initdir}${systemdutildir}/system-generators/dracut-ccm-generator"
        chmod 0755 "${initdir}${systemdutildir}/system-generators/dracut-ccm-generator"
    fi
    dracut_need_initqueue
}
