#!/bin/sh
# mkdeb.sh - turn a `make install DESTDIR=STAGE PREFIX=/usr` tree into the
# Debian package OUTDIR/ccm-early_VERSION_ARCH.deb, with dpkg-deb.
#
# Usage: scripts/mkdeb.sh STAGE OUTDIR        (make deb runs it)
#
# STAGE is changed in place: the man pages are gzipped (-9n), the copyright
# file and changelog.Debian.gz are added under /usr/share/doc/ccm-early,
# modes and timestamps are normalised and STAGE/DEBIAN is written.  The
# package holds everything `make install` staged, so whatever the install
# target gains goes into the package without a change here.
#
# VERSION is the one the staged binary prints (`ccm-early --version`), with
# the Debian revision DEB_REVISION (default 1).  libccm.pc must say the same
# version.  ARCH is dpkg's (`dpkg --print-architecture`): the binaries were
# built on this machine.  Environment:
#   DEB_MAINTAINER     "Name <address>"; default: the author of the last
#                      commit (git log -1)
#   DEB_REVISION       default 1
#   SOURCE_DATE_EPOCH  the time of every file and of the changelog entry;
#                      default: the last commit's time (else now)
# Prints the path of the package.
set -eu

[ $# -eq 2 ] || { echo "usage: $0 STAGE OUTDIR" >&2; exit 1; }
stage=$1
outdir=$2
top=$(cd "$(dirname "$0")/.." && pwd)
pkg=ccm-early
doc=$stage/usr/share/doc/$pkg

die() { echo "mkdeb: $*" >&2; exit 1; }

[ -x "$stage/usr/sbin/ccm-early" ] || die "no $stage/usr/sbin/ccm-early: stage with make install first"
[ ! -e "$stage/DEBIAN" ] || die "$stage/DEBIAN exists: stage into an empty directory"

# --- version, architecture, maintainer, date ---------------------------------
# "ccm-early 0.1.0 (protocol versions 1-1)"
upstream=$("$stage/usr/sbin/ccm-early" --version | awk 'NR == 1 && $1 == "ccm-early" { print $2 }')
case $upstream in
	[0-9]*) ;;
	*) die "cannot read a version from ccm-early --version" ;;
esac
pc_version=$(sed -n 's/^Version: *//p' "$stage/usr/lib/pkgconfig/libccm.pc")
[ "$pc_version" = "$upstream" ] ||
	die "libccm.pc says version '$pc_version', ccm-early says '$upstream' (handoff/libccm.pc.in)"
version=$upstream-${DEB_REVISION:-1}
arch=$(dpkg --print-architecture)

git_top() { git -C "$top" "$@" 2>/dev/null; }
maintainer=${DEB_MAINTAINER:-$(git_top log -1 --format='%an <%ae>' || true)}
case $maintainer in
	?*' <'?*@?*'>') ;;
	*) die "no maintainer: set DEB_MAINTAINER='Name <address>'" ;;
esac
: "${SOURCE_DATE_EPOCH:=$(git_top log -1 --format=%ct || date +%s)}"
export SOURCE_DATE_EPOCH    # dpkg-deb dates the archive's members with it

# --- /usr/share/doc/ccm-early -------------------------------------------------
mkdir -p "$doc"
# The tree states no license (no LICENSE or COPYING file, no notice or SPDX
# line in a source), so none is claimed here.  Lintian wants the file to
# exist and to carry a copyright notice.
year=$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y)
cat >"$doc/copyright" <<EOF
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ccm-early
Comment: The source tree from which this package was built states no
 license: it has no LICENSE or COPYING file and no license notice in its
 sources.  This file therefore grants no rights; ask the authors.

Files: *
Copyright: $year the ccm-early authors
License: none-stated
 The authors have not stated a license for ccm-early.
EOF
LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH" >/dev/null || die "bad SOURCE_DATE_EPOCH"
{
	printf '%s (%s) unstable; urgency=medium\n\n' "$pkg" "$version"
	printf '  * Built from the source tree with make deb.\n\n'
	printf ' -- %s  %s\n' "$maintainer" "$(LC_ALL=C date -u -R -d "@$SOURCE_DATE_EPOCH")"
} | gzip -9n >"$doc/changelog.Debian.gz"

# --- lintian: the static binaries are the design, not an accident --------------
mkdir -p "$stage/usr/share/lintian/overrides"
cat >"$stage/usr/share/lintian/overrides/$pkg" <<'EOF'
# ccm-early runs in the initramfs before the real root is mounted, and its
# clients start before the system's libraries can be relied on: all three
# are linked statically (musl, rdma-core's verbs with the rxe and mlx5
# providers, libsodium) on purpose.
statically-linked-binary [usr/sbin/ccm-early]
statically-linked-binary [usr/sbin/ccm-fmon]
statically-linked-binary [usr/sbin/ccm-nvmirror]
EOF

# --- man pages: gzip -9n (policy 12.1) ----------------------------------------
if [ -d "$stage/usr/share/man" ]; then
	find "$stage/usr/share/man" -type f ! -name '*.gz' -exec gzip -9nf {} +
fi

# --- modes and times ------------------------------------------------------------
# Whatever the umask was: directories 0755, files 0755 or 0644.
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f -perm /111 -exec chmod 0755 {} +
find "$stage" -type f ! -perm /111 -exec chmod 0644 {} +
find "$stage" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +

# --- DEBIAN/ --------------------------------------------------------------------
# Installed-Size as dpkg-gencontrol counts it: KiB per file, rounded up, and
# one per directory and symlink.
installed_size=$(find "$stage" -mindepth 1 \( -type f -printf '%s\n' \) -o -printf '1024\n' |
	awk '{ n += int(($1 + 1023) / 1024) } END { print n }')
mkdir -p "$stage/DEBIAN"
cat >"$stage/DEBIAN/control" <<EOF
Package: $pkg
Version: $version
Architecture: $arch
Maintainer: $maintainer
Installed-Size: $installed_size
Recommends: dracut-core, dracut-network
Suggests: dracut, pacemaker, resource-agents
Section: admin
Priority: optional
Description: early-boot cluster connection manager for HA storage pairs
 ccm-early runs early in boot, in the initramfs, on both servers of a
 high-availability pair.  Each node finds its partner over a cluster
 interconnect (RDMA or TCP), proves that the partner is alive, checks a
 pre-shared key, trades client descriptors, creates the clients'
 communication ports and hands the result to the real root in a handoff
 file; a keeper process then serves the partner and the local clients.
 .
 This package holds the statically linked ccm-early and its two clients,
 ccm-fmon (a failover monitor) and ccm-nvmirror (an NVRAM log mirror),
 their systemd units (and templates for named instances), ccm-state, the
 dracut module "ccm" (dracut -a ccm), the Pacemaker resource agent
 ocf:ccm:ccm (node attributes for node-health-strategy; it needs
 resource-agents' ocf-shellfuncs), the man pages, the bash completion and
 the client library libccm (static library, header and pkg-config file).
EOF
(cd "$stage" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' |
	LC_ALL=C sort -z | xargs -0r md5sum) >"$stage/DEBIAN/md5sums"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"
chmod 0755 "$stage/DEBIAN"
touch -h -d "@$SOURCE_DATE_EPOCH" "$stage/DEBIAN" "$stage/DEBIAN/control" "$stage/DEBIAN/md5sums"

mkdir -p "$outdir"
deb=$outdir/${pkg}_${version}_${arch}.deb
dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
