# Shared helpers for integration tests (source it). Every test:
#   . "$TESTS_ROOT/lib/common.sh"; t_init NAME
# gets a private tmp dir ($T), its own state dir (FERRY_STATE_DIR) and a trap
# that runs the registered cleanups (t_defer) even when the test fails.
set -euo pipefail

: "${FERRY:?run through tests/run.sh}"
: "${TESTS_TMP:=/tmp/ferry-tests}"

_T_CLEANUPS=()

t_defer() { _T_CLEANUPS+=("$*"); }

_t_cleanup() {
	local rc=$?
	set +e
	for ((i = ${#_T_CLEANUPS[@]} - 1; i >= 0; i--)); do
		eval "${_T_CLEANUPS[$i]}" >/dev/null 2>&1
	done
	if ((rc == 0)) && [ -n "${T:-}" ] && [ -z "${KEEP_TMP:-}" ]; then
		umount -R "$T" 2>/dev/null
		rm -rf "$T"
	fi
	exit $rc
}

t_init() {
	T_NAME=$1
	T="$TESTS_TMP/$T_NAME"
	if [ -d "$T" ]; then
		umount -R "$T" 2>/dev/null || true
		rm -rf "$T"
	fi
	mkdir -p "$T"
	export FERRY_STATE_DIR="$T/state"
	trap _t_cleanup EXIT
	trap 'exit 130' INT TERM
	echo "== $T_NAME"
}

t_fail() {
	echo "FAIL: $*" >&2
	exit 1
}

t_skip() {
	echo "SKIP: $*"
	exit 77
}

t_log() { echo "-- $*"; }

# t_secs N: N seconds scaled by TIMEOUT_SCALE (default 1), for the short
# timeouts fault tests use to see a stall quickly; the slow test guest of
# make check-kernels (TCG) sets a larger scale.
t_secs() { echo $(($1 * ${TIMEOUT_SCALE:-1})); }

# t_expect_fail RC_WANTED PATTERN CMD...: CMD must fail with exit code RC_WANTED
# (or any non-zero if RC_WANTED is '*') and print PATTERN (grep -E) on stderr.
t_expect_fail() {
	local want=$1 pat=$2 rc=0
	shift 2
	"$@" >"$T/out" 2>"$T/err" || rc=$?
	cat "$T/out" "$T/err"
	((rc != 0)) || t_fail "expected failure from: $*"
	[ "$want" = '*' ] || ((rc == want)) || t_fail "expected exit code $want, got $rc from: $*"
	grep -Eq "$pat" "$T/err" || t_fail "expected message /$pat/ from: $*"
}

# t_wait_file FILE [SECONDS]: wait until FILE exists.
t_wait_file() {
	local f=$1 n=$((${2:-20} * 10))
	while ((n-- > 0)); do
		[ -e "$f" ] && return 0
		sleep 0.1
	done
	t_fail "timed out waiting for $f"
}

# t_rootfs DIR: a minimal root file system: static busybox, the static test
# workloads in /bin, empty /proc /dev /tmp /sys /etc.
t_rootfs() {
	local r=$1
	mkdir -p "$r"/{bin,proc,dev,tmp,sys,etc,root}
	cp /bin/busybox "$r/bin/busybox"
	for a in sh sleep cat echo ls ps kill true false; do
		ln -sf busybox "$r/bin/$a"
	done
	if [ -d "$WORKLOADS" ]; then
		cp "$WORKLOADS"/* "$r/bin/" 2>/dev/null || true
	fi
	echo "root:x:0:0:root:/root:/bin/sh" >"$r/etc/passwd"
}
