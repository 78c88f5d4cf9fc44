# tests/vm/suite.sh: the shunit2 plumbing every lab suite shares.  Source
# it after tests/lib/common.sh and tests/vm/lib.sh; set LAB_ADD first to
# put more files into the guests (an array of --add SRC:DST pairs).
#
# Without qemu (after tests/vm/setup.sh) every test fails when CI=true and
# is skipped loudly otherwise; a test's body starts with `lab_ready || return 0`.
# shellcheck shell=bash disable=SC2154  # _shunit_test_ comes from shunit2

declare -p LAB_ADD >/dev/null 2>&1 || LAB_ADD=()

lab_missing=""

oneTimeSetUp() {
	# setup.sh installs the host packages and the kernel (idempotent, fast
	# when done); as a non-root user it can only say what is missing.
	"$VM_TOP/tests/vm/setup.sh" >&2 || true
	if ! vm_available; then
		lab_missing="no qemu or no lab kernel after tests/vm/setup.sh"
		return 0
	fi
	: "${CCM_STATIC:=$VM_TOP/ccm-early}"
	if [ ! -x "$CCM_STATIC" ]; then
		(cd "$VM_TOP" && make ccm-early >&2) || true
	fi
	[ -x "$CCM_STATIC" ] || { lab_missing="no static ccm-early at $CCM_STATIC (make ccm-early failed)"; return 0; }
	export CCM_STATIC
	VM_INITRD=$SHUNIT_TMPDIR/lab.cpio  # used by lib.sh
	export VM_INITRD
	local s=$SECONDS
	# shellcheck disable=SC2119
	vm_prepare "${LAB_ADD[@]}" >&2 || lab_missing="building the guest initramfs failed"
	echo "# initramfs built in $((SECONDS - s))s" >&2
}

setUp() {
	ccm_begin_test
	if [ -n "$lab_missing" ]; then
		if [ "${CI:-}" = true ]; then
			fail "RDMA lab unavailable: $lab_missing"
		else
			echo "" >&2
			echo "#### SKIP ${_shunit_test_}: RDMA lab unavailable: $lab_missing ####" >&2
			echo "" >&2
		fi
		startSkipping
	fi
}

# In a test's first line: when the lab is missing, setUp has already failed
# it (CI) or said SKIP loudly; the body does not run.
lab_ready() { [ -z "$lab_missing" ]; }

# A failed test's story: what the keepers logged about losing links and
# partners, on lines tests/run shows with the failure (CI keeps no guest
# files).
failure_story() {
	local f
	# shellcheck disable=SC2154  # from shunit2
	[ "${__shunit_testSuccess}" != "${SHUNIT_TRUE}" ] || return 0
	for f in "$t"/share/*.log; do
		[ -s "$f" ] || continue
		grep -E 'lost|unreachable|link [0-9]+.*(down|failed)|not scheduled|error|cannot|giving up|terminat' "$f" |
			tail -n 12 | sed "s|^|# story $(basename "$f"): |" >&2
	done
}

tearDown() {
	failure_story
	vm_kill_all
	ccm_report
}

# lab VM_RUN-ARGS...: vm_run, report the guests' times; on failure the
# harness has printed the serial and log tails.
lab() {
	local r rc
	vm_run "$@"
	rc=$?
	for r in $VM_ROLES; do
		eval "echo \"# ${_shunit_test_}: guest $r qemu \$VM_QEMU_RC_$r scenario \$VM_RC_$r in \${VM_SECS_$r}s\"" >&2
	done
	return $rc
}

