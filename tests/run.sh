#!/bin/bash
# Test runner: unit tests (build/tests/unit/test_*), then integration tests
# (tests/integration/*.sh). Each test's output goes to build/tests/logs/NAME.log;
# a failing test's log tail is printed. Exit code 77 means skipped.
#   tests/run.sh [--unit] [PATTERN...]   run tests whose name contains a PATTERN
# Closes with the plain line "N passed, N failed, N skipped".
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
LOGS="$ROOT/build/tests/logs"
mkdir -p "$LOGS"
export FERRY="$ROOT/build/ferry"
export WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests"
export TESTS_TMP="$ROOT/build/tests/tmp"
TIMEOUT=${TEST_TIMEOUT:-600}

unit_only=0
pats=()
for a in "$@"; do
	case "$a" in
	--unit) unit_only=1 ;;
	*) pats+=("$a") ;;
	esac
done

selected() {
	((${#pats[@]} == 0)) && return 0
	for p in "${pats[@]}"; do [[ "$1" == *"$p"* ]] && return 0; done
	return 1
}

tests=()
for t in build/tests/unit/test_*; do
	[ -x "$t" ] && tests+=("$t")
done
if ((!unit_only)); then
	for t in tests/integration/*.sh; do
		[ -f "$t" ] && tests+=("$t")
	done
fi

# leftovers NAME: a test must not leave workload processes behind (they would
# confuse the tests after it); name and kill any that are still alive. Only
# processes of this checkout's tests count (their program or their root
# mount lies under build/): another checkout's test run is not ours.
leftovers() {
	local p exe root left=()
	for p in $(pgrep '^wl_'); do
		[ "$(ps -o stat= -p "$p" 2>/dev/null | cut -c1)" = Z ] && continue
		# a tenant's /proc/PID/root reads "/": its root mount names the directory
		exe=$(readlink "/proc/$p/exe" 2>/dev/null)
		root=$(awk '$5 == "/" { print $4; exit }' "/proc/$p/mountinfo" 2>/dev/null)
		[[ "$exe" == "$ROOT/build/"* || "$root" == "$ROOT/build/"* ]] || continue
		left+=("$p($(cat "/proc/$p/comm" 2>/dev/null))")
		kill -9 "$p" 2>/dev/null
	done
	((${#left[@]} == 0)) || echo "NOTE  $1 left workload processes running (killed): ${left[*]}"
}

pass=0 fail=0 skip=0 failed=()
start_all=$(date +%s)
for t in "${tests[@]}"; do
	name=$(basename "$t" .sh)
	selected "$name" || continue
	log="$LOGS/$name.log"
	t0=$(date +%s.%N)
	if [[ "$t" == *.sh ]]; then
		timeout -k 10 "$TIMEOUT" bash "$t" >"$log" 2>&1
	else
		timeout -k 10 "$TIMEOUT" "$t" >"$log" 2>&1
	fi
	rc=$?
	[[ "$t" == *.sh ]] && leftovers "$name"
	dt=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
	if ((rc == 0)); then
		pass=$((pass + 1))
		echo "PASS  $name (${dt}s)"
	elif ((rc == 77)); then
		skip=$((skip + 1))
		echo "SKIP  $name: $(grep -m1 '^SKIP' "$log" | cut -c1-200)"
	else
		fail=$((fail + 1))
		failed+=("$name")
		echo "FAIL  $name (rc=$rc, ${dt}s), last lines of $log:"
		tail -n 25 "$log" | sed 's/^/    | /'
	fi
done
echo "tests took $(($(date +%s) - start_all))s"
((fail)) && echo "failed: ${failed[*]}"
echo "$pass passed, $fail failed, $skip skipped"
((fail == 0))
