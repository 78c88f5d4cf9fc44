#!/bin/bash
# deps.sh - install the Debian packages this project needs (Debian 12).
#
# Usage: scripts/deps.sh [build|test|all]     (default: all)
#   build  toolchain for the static musl binary and its dependency builds
#   test   build + clang/libFuzzer/ASan, glibc dev libraries, test tools
#   all    same as test
# Fast and silent when everything is installed (dpkg-query only). Otherwise
# runs "apt-get update" once and installs what is missing. When not root and
# something is missing, prints the apt-get command to run and exits 2.
set -eu

# Package sets - extend here.
BUILD_PKGS="build-essential musl-tools cmake ninja-build pkg-config python3 file
ca-certificates autoconf automake libtool scdoc dpkg gzip"
# autoconf/automake/libtool: Debian's libsodium orig tarball is a git export
# without a generated configure script (autogen.sh must run first).
# scdoc: the man pages (doc/*.scd), which `make` builds.
# dpkg (dpkg-deb, dpkg --print-architecture) and gzip: `make deb`
# (scripts/mkdeb.sh); both are essential, listed to say so.
TEST_PKGS="clang libclang-rt-14-dev libibverbs-dev librdmacm-dev libsodium-dev
shunit2 iproute2 procps shellcheck dash util-linux busybox-static nftables
prometheus prometheus-node-exporter man-db bash-completion lintian dracut-core
pacemaker pacemaker-cli-utils corosync resource-agents libxml2-utils"
# prometheus: for promtool, which checks the metrics; it and node_exporter
# are read by tests/twonode (on a machine with systemd, installing them
# also enables their services).
# man-db (man, and col through bsdextrautils) renders the man pages and
# bash-completion is the completion's framework: tests/cli/test_man.sh and
# test_completion.sh.
# lintian checks the package of `make deb`, and dracut-core's dracut lists
# the module it installs: tests/cli/test_deb.sh.
# pacemaker, pacemaker-cli-utils (crm_mon, cibadmin, crm_attribute,
# attrd_updater), corosync, resource-agents (ocf-tester, ocf-shellfuncs)
# and libxml2-utils (xmllint, with which ocf-tester checks the meta-data;
# resource-agents only recommends it): tests/cluster/test_pacemaker.sh runs
# the OCF agent handoff/ocf/ccm under ocf-tester and in a real one-node
# cluster (on a machine with systemd, installing them also enables their
# services).

usage() { echo "usage: $0 [build|test|all]" >&2; exit 1; }
[ $# -le 1 ] || usage
case ${1:-all} in
    build) want=$BUILD_PKGS ;;
    test | all) want="$BUILD_PKGS $TEST_PKGS" ;;
    *) usage ;;
esac

# One dpkg-query call; packages it does not know are simply not listed.
# shellcheck disable=SC2086
installed=" $(dpkg-query -W -f='${Package} ${db:Status-Status}\n' $want 2>/dev/null |
    awk '$2 == "installed" { printf "%s ", $1 }')"
missing=
for p in $want; do
    case $installed in
        *" $p "*) ;;
        *) missing="$missing $p" ;;
    esac
done
missing=${missing# }
[ -n "$missing" ] || exit 0

cmd="apt-get install -y --no-install-recommends $missing"
if [ "$(id -u)" -ne 0 ]; then
    echo "deps: missing packages: $missing" >&2
    echo "deps: run as root:" >&2
    echo "  DEBIAN_FRONTEND=noninteractive apt-get update && DEBIAN_FRONTEND=noninteractive $cmd" >&2
    exit 2
fi

export DEBIAN_FRONTEND=noninteractive
echo "deps: installing: $missing"
apt-get -o DPkg::Lock::Timeout=600 update -qq
# shellcheck disable=SC2086
apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends $missing

# corosync and pacemaker are test tools here, not this machine's cluster:
# where systemd runs, installing them starts them with Debian's default
# corosync.conf (and at every boot after), and tests/cluster/test_pacemaker.sh
# will not touch a cluster that runs.  Just installed, they are stopped and
# disabled again; a machine that had them before keeps them as they were.
if [ -d /run/systemd/system ]; then
    for s in pacemaker corosync; do
        case " $missing " in
            *" $s "*) systemctl disable --now "$s.service" >/dev/null 2>&1 &&
                echo "deps: $s was just installed as a test tool: stopped and disabled" ;;
        esac
    done
fi
