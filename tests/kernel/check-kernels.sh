#!/bin/bash
# make check-kernels: the migration tests on a second kernel. Boots Debian
# 12's stock kernel (which has soft-dirty, so pre-copy runs for real) in the
# test guest of tests/kernel/guest.sh and runs the tests there through
# tests/run.sh; simulated hosts are namespaces inside the guest as on this
# machine; once per CRIU that `make deps` installed (.deps/criu-versions).
# Every verdict line names the kernel and CRIU; the guest's console and the
# tests' logs come back to build/kernel/check/ (logs/criu-VERSION/NAME.log).
#   tests/kernel/check-kernels.sh [PATTERN...]   (default: KERNEL_TESTS)
# KERNEL_TESTS: the tests to run (run.sh patterns), default every migration
# test plus check_precopy; `KERNEL_TESTS=precopy` is the pre-copy set.
# KERNEL_CRIU: the CRIU versions to run with (default: all installed).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
pats=("$@")
((${#pats[@]})) || read -r -a pats <<<"${KERNEL_TESTS:-check_precopy migrate_}"
[ -x build/ferry ] || { echo "check-kernels: build/ferry missing (make test-bins)" >&2; exit 1; }
OUT="$ROOT/build/kernel/check"
rm -rf "$OUT"
mkdir -p "$OUT"
t0=$(date +%s)
rc=0
# the guest starts with a clean environment: pass on the knobs that are set
envs=()
for v in KERNEL_CRIU PRECOPY_MIB PRECOPY_DIRTY MIB MIG_TIMEOUT TEST_TIMEOUT TIMEOUT_SCALE KEEP_TMP MODES ROUNDS RATE; do
	[ -n "${!v:-}" ] && envs+=("$v=${!v}")
done
bash tests/kernel/guest.sh --out "$OUT" --timeout "${KERNEL_TIMEOUT:-3600}" -- \
	env ${envs[@]+"${envs[@]}"} bash tests/kernel/in-guest.sh "$OUT" "${pats[@]}" || rc=$?
echo "check-kernels: guest run took $(($(date +%s) - t0))s (exit $rc); console: $OUT/console.log, logs: $OUT/logs/"
echo "check-kernels: verdicts:"
cat "$OUT/verdicts.log" 2>/dev/null
grep -q ' passed, .* failed, ' "$OUT/verdicts.log" 2>/dev/null ||
	{ echo "check-kernels: the guest never finished the tests" >&2; exit 1; }
exit "$rc"
