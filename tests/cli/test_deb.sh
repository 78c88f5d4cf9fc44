#!/usr/bin/env bash
# The Debian package of `make deb` (build/ccm-early_VERSION_ARCH.deb; DEB=
# another one to test that instead of building): its name and control
# fields, lintian with no error (and lintian failing on a copy that lacks
# its copyright file, so that the check can fail), then installed with
# `dpkg --root` into a fresh directory: the binaries run there and print the
# package's version, every file is where it belongs, dracut lists the
# module, and `dpkg -r` removes all of it.
#
# The host is never touched: dpkg's database is the fresh directory's own
# (--root), its log is the test's (--log: dpkg 1.21 would otherwise append
# to the host's /var/log/dpkg.log), and the package has no maintainer
# scripts (checked here); were one added, dpkg, without
# --force-script-chrootless, would chroot into the fresh directory to run
# it, where there is no shell, and fail instead of running it on the host.
#
# dracut: `dracut --list-modules` lists $dracutbasedir/modules.d, and
# dracutbasedir must also hold dracut's own scripts (dracut-init.sh).  The
# fresh directory has only the package, so dracutbasedir is a tree of
# symlinks: the host's /usr/lib/dracut (dracut-core) with, in modules.d,
# the host's modules (minus any ccm of the host's own) and the installed
# tree's 95ccm.  The same tree without 95ccm must not list ccm.
set -u
# shellcheck disable=SC2154  # t comes from common.sh
# shellcheck source=tests/lib/common.sh
. "$(dirname "$0")/../lib/common.sh"

top=$(cd "$(dirname "$0")/../.." && pwd)
arch=$(dpkg --print-architecture)

# The package, built once for all the tests (make deb) unless DEB names one.
oneTimeSetUp() {
	deb_why=""
	if [ -z "${DEB:-}" ]; then
		if ! make -s -C "$top" deb >"${SHUNIT_TMPDIR}/make-deb.log" 2>&1; then
			deb_why="make deb failed: $(tail -20 "${SHUNIT_TMPDIR}/make-deb.log")"
			return 0
		fi
		DEB=$(tail -1 "${SHUNIT_TMPDIR}/make-deb.log")
		case ${DEB} in /*) ;; *) DEB=$top/${DEB} ;; esac
	fi
	[ -f "${DEB}" ] || deb_why="no package at '${DEB}'"
}

setUp() {
	ccm_begin_test
	root=$t/root
	host_log_lines=$(host_log_count)
	host_status=$(host_status)
}

tearDown() {
	if [ -n "${t:-}" ]; then
		assertEquals "the host's dpkg log got no ccm-early lines" \
			"${host_log_lines}" "$(host_log_count)"
		assertEquals "ccm-early's status in the host's dpkg database" \
			"${host_status}" "$(host_status)"
	fi
	ccm_end_test
}

# Every test starts with: have_deb || return
have_deb() {
	[ -z "${deb_why}" ] && return 0
	fail "${deb_why}"
	return 1
}

# Lines of the host's dpkg log about ccm-early, and the host's record of
# the package (other packages may be installed on the host meanwhile).
host_log_count() {
	grep -c ' ccm-early:' /var/log/dpkg.log 2>/dev/null || true
}
host_status() {
	dpkg-query -W -f='${Status} ${Version}' ccm-early 2>/dev/null || true
}

# A field of the package's control file.
deb_field() {
	dpkg-deb -f "${DEB}" "$1"
}

# dpkg_root ARGS...: dpkg on the fresh directory $root, its output in
# $t/dpkg.out.  --path-include: a host whose dpkg.cfg.d excludes
# /usr/share/man or /usr/share/doc (as container images do) must not
# change what gets installed.  --force-not-root: the test may run as any user.
dpkg_root() {
	dpkg --root="$root" --log="$t/dpkg.log" --force-not-root \
		--path-include='/*' "$@" >"$t/dpkg.out" 2>&1
}

# A fresh directory with an empty dpkg database, and the package in it.
install_fresh() {
	mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
	: >"$root/var/lib/dpkg/status"
	: >"$root/var/lib/dpkg/available"
	dpkg_root -i "${DEB}"
	rc=$?
	assertEquals "dpkg -i exit status: $(cat "$t/dpkg.out")" 0 "$rc"
	assertEquals "status in the fresh directory" "install ok installed" \
		"$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' ccm-early 2>&1)"
}

# Files the package must install (man pages: one per doc/*.scd).
expected_files() {
	local s n
	printf '%s\n' usr/sbin/ccm-early usr/sbin/ccm-fmon usr/sbin/ccm-nvmirror \
		usr/bin/ccm-state usr/lib/ocf/resource.d/ccm/ccm \
		usr/include/ccm.h usr/lib/libccm.a usr/lib/pkgconfig/libccm.pc \
		usr/lib/systemd/system/ccm-fmon.service usr/lib/systemd/system/ccm-nvmirror.service \
		usr/lib/systemd/system/ccm-early.service usr/lib/systemd/system/ccm-early@.service \
		usr/lib/systemd/system/ccm-fmon@.service usr/lib/systemd/system/ccm-nvmirror@.service \
		usr/lib/dracut/modules.d/95ccm/module-setup.sh \
		usr/lib/dracut/modules.d/95ccm/parse-ccm.sh \
		usr/lib/dracut/modules.d/95ccm/ccm-connect.sh \
		usr/lib/dracut/modules.d/95ccm/ccm-lib.sh \
		usr/lib/dracut/modules.d/95ccm/ccm-generator.sh \
		usr/lib/dracut/modules.d/95ccm/ccm-early.service \
		usr/lib/dracut/modules.d/95ccm/ccm-early@.service \
		usr/share/bash-completion/completions/ccm-early \
		usr/share/doc/ccm-early/copyright usr/share/doc/ccm-early/changelog.Debian.gz
	for s in "$top"/doc/*.scd; do
		n=$(basename "$s" .scd)
		printf 'usr/share/man/man%s/%s.gz\n' "${n##*.}" "$n"
	done
}

test_package_name_and_control() {
	have_deb || return
	local version upstream
	version=$(deb_field Version)
	assertEquals "package" ccm-early "$(deb_field Package)"
	assertEquals "architecture" "$arch" "$(deb_field Architecture)"
	assertEquals "file name" "ccm-early_${version}_${arch}.deb" "$(basename "${DEB}")"
	dpkg-deb -x "${DEB}" "$t/x"
	upstream=$("$t/x/usr/sbin/ccm-early" --version | awk '{ print $2; exit }')
	assertEquals "version: the binary's, with a Debian revision" "${upstream}" "${version%-*}"
	assertNotEquals "a Debian revision" "${version}" "${version%-*}"
	for f in Maintainer Section Priority Description Installed-Size; do
		assertNotEquals "$f" "" "$(deb_field "$f")"
	done
	assertEquals "no Depends: the binaries are static" "" "$(deb_field Depends)"
	assertContains "dracut is recommended" "$(deb_field Recommends)" dracut
	# Nothing runs at install or removal: only control and md5sums.
	dpkg-deb -e "${DEB}" "$t/control"
	assertEquals "the control archive" "control md5sums" "$(cd "$t/control" && echo *)"
	# Owned by root, nothing writable but by its owner.
	assertEquals "entries not owned by root/root" "" \
		"$(dpkg-deb -c "${DEB}" | awk '$2 != "root/root"')"
	assertEquals "entries writable by group or others" "" \
		"$(dpkg-deb -c "${DEB}" | awk '$1 !~ /^l/ && $1 ~ /^.....w|^........w/')"
}

test_lintian_finds_no_error() {
	have_deb || return
	lintian --fail-on error "${DEB}" >"$t/lintian.out" 2>&1
	rc=$?
	assertEquals "lintian --fail-on error: $(cat "$t/lintian.out")" 0 "$rc"
	assertEquals "no E: line" "" "$(grep '^E:' "$t/lintian.out")"
}

# The lintian check can fail: the package without its copyright file.
test_lintian_catches_a_missing_copyright() {
	have_deb || return
	dpkg-deb -R "${DEB}" "$t/tree"
	rm "$t/tree/usr/share/doc/ccm-early/copyright"
	sed -i '\| usr/share/doc/ccm-early/copyright$|d' "$t/tree/DEBIAN/md5sums"
	dpkg-deb --root-owner-group -b "$t/tree" "$t/broken.deb" >/dev/null
	lintian --fail-on error "$t/broken.deb" >"$t/lintian.out" 2>&1
	rc=$?
	assertNotEquals "lintian's exit status on the broken package" 0 "$rc"
	assertContains "$(cat "$t/lintian.out")" "E: ccm-early: no-copyright-file"
}

test_installs_into_a_fresh_root() {
	have_deb || return
	install_fresh
	local f missing="" version out
	version=$(deb_field Version)
	assertEquals "ccm-early --version there" "ccm-early ${version%-*}" \
		"$("$root/usr/sbin/ccm-early" --version | awk '{ print $1, $2; exit }')"
	for f in ccm-fmon ccm-nvmirror; do
		"$root/usr/sbin/$f" --help >"$t/$f.help" 2>&1
		rc=$?
		assertEquals "$f --help runs there: $(head -5 "$t/$f.help")" 0 "$rc"
	done
	while read -r f; do
		[ -f "$root/$f" ] || missing="$missing $f"
	done < <(expected_files)
	assertEquals "missing files" "" "${missing}"
	# dpkg knows every file it put there, and put nothing else.
	assertEquals "files in the tree that dpkg -L does not list" "" \
		"$(LC_ALL=C comm -23 \
			<(cd "$root" && find . -path ./var -prune -o ! -type d -print | sed 's|^\.||' | LC_ALL=C sort) \
			<(dpkg-query --admindir="$root/var/lib/dpkg" -L ccm-early | LC_ALL=C sort))"
	# Man pages: gzip -9n, the pages make built.
	for f in "$root"/usr/share/man/man*/*; do
		case $f in *.gz) ;; *) fail "not gzipped: $f"; continue ;; esac
		gzip -t "$f" || fail "bad gzip: $f"
		# -n: no file name (flag 0x08) and no time in the header.
		assertEquals "gzip header of $f (-n)" "1f8b0800000000000203" \
			"$(head -c 10 "$f" | od -An -tx1 | tr -d ' \n')"
		if [ -f "$top/build/man/$(basename "$f" .gz)" ]; then
			cmp -s <(zcat "$f") "$top/build/man/$(basename "$f" .gz)" ||
				fail "$f is not build/man's page"
		fi
	done
	# Executables: the programs, ccm-state, the OCF agent, the dracut module's scripts.
	for f in usr/sbin/ccm-early usr/sbin/ccm-fmon usr/sbin/ccm-nvmirror usr/bin/ccm-state \
		usr/lib/ocf/resource.d/ccm/ccm \
		usr/lib/dracut/modules.d/95ccm/{module-setup,parse-ccm,ccm-connect,ccm-lib}.sh; do
		[ -x "$root/$f" ] || fail "not executable: $f"
	done
	# The completion, for all three programs.
	assertEquals "completion symlinks" "ccm-early ccm-early" \
		"$(readlink "$root/usr/share/bash-completion/completions/ccm-fmon") $(readlink \
			"$root/usr/share/bash-completion/completions/ccm-nvmirror")"
	assertContains "completion registers" \
		"$(bash -c '. "$1" && complete -p ccm-early ccm-fmon ccm-nvmirror' _ \
			"$root/usr/share/bash-completion/completions/ccm-early" 2>&1)" "-F _ccm_early ccm-nvmirror"
	# The units run the installed programs.
	assertContains "ccm-fmon.service" "$(cat "$root/usr/lib/systemd/system/ccm-fmon.service")" \
		"ExecStart=/usr/sbin/ccm-early exec fmon -- /usr/sbin/ccm-fmon"
	assertContains "ccm-early@.service" "$(cat "$root/usr/lib/systemd/system/ccm-early@.service")" \
		"ExecStart=/usr/sbin/ccm-early connect --instance %i "
	# Every unit, the templates instantiated, as systemd reads them (an
	# unknown key or a bad value is a warning there); only the programs'
	# paths are not this machine's: they are in the scratch root.
	out=$(SYSTEMD_UNIT_PATH="$root/usr/lib/systemd/system:" systemd-analyze verify --man=no \
		ccm-early.service ccm-fmon.service ccm-nvmirror.service \
		ccm-early@x.service ccm-fmon@x.service ccm-nvmirror@x.service 2>&1 |
		grep -v ': Command /usr/sbin/ccm-early is not executable: No such file or directory$')
	assertEquals "systemd-analyze verify of the units" "" "$out"
	# pkg-config finds the header and the library through libccm.pc.
	assertEquals "pkg-config --cflags --libs libccm" "-I$root/usr/include -L$root/usr/lib -lccm" \
		"$(PKG_CONFIG_SYSROOT_DIR=$root PKG_CONFIG_LIBDIR=$root/usr/lib/pkgconfig \
			pkg-config --cflags --libs libccm 2>&1 | sed 's/ *$//')"
	assertEquals "libccm.pc's version" "${version%-*}" \
		"$(PKG_CONFIG_LIBDIR=$root/usr/lib/pkgconfig pkg-config --modversion libccm 2>&1)"
}

# dracut_base DIR WITH-CCM: a dracutbasedir in DIR: the host's dracut, its
# modules, and the installed 95ccm when WITH-CCM is yes.
dracut_base() {
	local d=$1 f
	mkdir -p "$d/modules.d"
	for f in /usr/lib/dracut/*; do
		[ "${f##*/}" = modules.d ] || ln -s "$f" "$d/"
	done
	for f in /usr/lib/dracut/modules.d/*; do
		case ${f##*/} in ??ccm) continue ;; esac
		ln -s "$f" "$d/modules.d/"
	done
	[ "$2" = yes ] && ln -s "$root/usr/lib/dracut/modules.d/95ccm" "$d/modules.d/95ccm"
	return 0
}

# list_modules DRACUTBASEDIR: dracut --list-modules, stdout in $t/list,
# stderr in $t/list.err.  No kernel (a container has no /lib/modules) and
# none of the host's dracut.conf.
list_modules() {
	mkdir -p "$t/confdir" "$t/tmp"
	: >"$t/dracut.conf"
	dracutbasedir=$1 dracut --list-modules --no-kernel --tmpdir "$t/tmp" \
		--conf "$t/dracut.conf" --confdir "$t/confdir" >"$t/list" 2>"$t/list.err"
}

test_dracut_lists_the_module() {
	have_deb || return
	command -v dracut >/dev/null ||
		{ fail "no dracut: install dracut-core (scripts/deps.sh test)"; return; }
	[ -f /usr/lib/dracut/dracut-init.sh ] || { fail "no /usr/lib/dracut/dracut-init.sh"; return; }
	install_fresh
	dracut_base "$t/dracut" yes
	list_modules "$t/dracut"
	rc=$?
	assertEquals "dracut --list-modules exit status: $(cat "$t/list.err")" 0 "$rc"
	assertEquals "ccm listed" ccm "$(grep -x ccm "$t/list")"
	assertEquals "with the host's modules" base "$(grep -x base "$t/list")"
	# Without the package's module: not listed, so the check above can fail.
	dracut_base "$t/dracut-without" no
	list_modules "$t/dracut-without"
	rc=$?
	assertEquals "exit status without the module: $(cat "$t/list.err")" 0 "$rc"
	assertEquals "ccm not listed without the package" "" "$(grep -x ccm "$t/list")"
	# The module's check() finds the installed binary: 255 (on request only).
	(
		dracutsysrootdir=$root
		# shellcheck source=dracut/95ccm/module-setup.sh
		. "$root/usr/lib/dracut/modules.d/95ccm/module-setup.sh"
		check
	) >"$t/check.out" 2>&1
	rc=$?
	assertEquals "check() of the installed module: $(cat "$t/check.out")" 255 "$rc"
}

test_removes_cleanly() {
	have_deb || return
	install_fresh
	dpkg_root -r ccm-early
	rc=$?
	assertEquals "dpkg -r exit status: $(cat "$t/dpkg.out")" 0 "$rc"
	assertEquals "status after -r" "" \
		"$(dpkg-query --admindir="$root/var/lib/dpkg" -W -f='${Status}' ccm-early 2>/dev/null |
			grep -v '^unknown ok not-installed$\|^deinstall ok not-installed$')"
	# No conffiles: nothing is left but dpkg's own database.
	assertEquals "left in the fresh directory" "$(printf '.\n./var\n./var/lib')" \
		"$(cd "$root" && find . -path ./var/lib/dpkg -prune -o -print | LC_ALL=C sort)"
	assertEquals "left in dpkg's info directory" "" \
		"$(find "$root/var/lib/dpkg/info" -name 'ccm-early*')"
	dpkg_root -P ccm-early
	rc=$?
	assertEquals "dpkg -P after -r: $(cat "$t/dpkg.out")" 0 "$rc"
}

. shunit2
