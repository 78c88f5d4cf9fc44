#!/bin/sh
# ccm-generator: a systemd generator of the ccm dracut module, in a systemd
# initramfs only (installed as dracut-ccm-generator in the image's
# system-generators).  For each rd.ccm.instance=NAME of the command line it
# wants ccm-early@NAME.service from initrd.target: systemd starts units from
# what exists when it computes the boot transaction, which is before the
# cmdline hooks run, so parse-ccm.sh could not add them itself.  Only a
# name's shape is checked here; parse-ccm.sh validates the rest and writes
# /run/ccm/NAME/cmdline.conf, the unit's condition, for the instances it
# accepts.  rd.ccm=0 wants none.
#
#   dracut-ccm-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
#
# The template's path in the image, @UNIT_DIR@, is filled in by
# module-setup.sh.

command -v getarg > /dev/null || . /lib/dracut-lib.sh
command -v ccm_valid_instance > /dev/null || . /lib/ccm-lib.sh

ccm_generate() {
    _ccm_dir=${1:-/run/systemd/generator}
    getargbool 1 rd.ccm || return 0
    _ccm_ifs=$IFS
    IFS='
'
    set -f
    for _ccm_v in $(getargs rd.ccm.instance=); do
        _ccm_rest=$_ccm_v,
        while [ -n "$_ccm_rest" ]; do
            _ccm_i=${_ccm_rest%%,*}
            _ccm_rest=${_ccm_rest#*,}
            ccm_valid_instance "$_ccm_i" || continue
            mkdir -p -- "$_ccm_dir/initrd.target.wants"
            ln -sf "@UNIT_DIR@/ccm-early@.service" "$_ccm_dir/initrd.target.wants/ccm-early@$_ccm_i.service"
        done
    done
    IFS=$_ccm_ifs
    set +f
    return 0
}

ccm_generate "$@"
