#!/bin/bash
# Runs in the test guest (tests/kernel/check-kernels.sh): the test suite
# through tests/run.sh once per CRIU that `make deps` installed
# (.deps/criu-versions; KERNEL_CRIU="4.2.1 ..." picks some), its logs
# written straight to the host (OUT/logs/criu-VERSION/), each verdict line
# tagged with the kernel and the CRIU version.
#   tests/kernel/in-guest.sh OUT PATTERN...
set -u
OUT=$1
shift
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
# a snapshot of the build and the tests in the guest's tmpfs overlay: the
# host may rebuild while the guest runs
for d in build/ferry build/ferry-criu-hook build/tests/workloads build/tests/unit \
	build/tests/tools tests; do
	[ -e "$d" ] || continue
	rm -rf "$d.snap" && cp -a "$d" "$d.snap" && rm -rf "$d" && mv "$d.snap" "$d"
done
# TCG moves pages at a few MB/s: the pre-copy tenants are sized for that (a
# 256 MiB tenant dirtying 8 MiB/s rewrites all its memory during one round)
export PRECOPY_MIB=${PRECOPY_MIB:-64} PRECOPY_DIRTY=${PRECOPY_DIRTY:-1} MIB=${MIB:-64}
export MIG_TIMEOUT=${MIG_TIMEOUT:-120} TEST_TIMEOUT=${TEST_TIMEOUT:-1800} TIMEOUT_SCALE=${TIMEOUT_SCALE:-4}

crius=()
if [ -s .deps/criu-versions ]; then
	while read -r v p; do
		[ -z "${KERNEL_CRIU:-}" ] || [[ " $KERNEL_CRIU " == *" $v "* ]] || continue
		crius+=("$v=$p")
	done <.deps/criu-versions
else
	p=$(cat .deps/criu-path 2>/dev/null || command -v criu)
	crius+=("$("$p" --version 2>/dev/null | awk '/^Version:/ { print $2 }')=$p")
fi
((${#crius[@]})) || { echo "in-guest: no CRIU to test with (KERNEL_CRIU=${KERNEL_CRIU:-})"; exit 1; }

rc=0
mkdir -p build/tests/logs
for c in "${crius[@]}"; do
	v=${c%%=*}
	export FERRY_CRIU=${c#*=}
	tag="kernel=$(uname -r) criu=$v"
	mkdir -p "$OUT/logs/criu-$v"
	mount --bind "$OUT/logs/criu-$v" build/tests/logs
	echo "== $tag: ${*:-every test}"
	# line by line as they come (awk would buffer its input)
	bash tests/run.sh "$@" 2>&1 | while IFS= read -r line; do
		case "$line" in
		PASS\ * | FAIL\ * | SKIP\ * | *" passed, "*" failed, "*)
			echo "$tag  $line" | tee -a "$OUT/verdicts.log" ;;
		*) echo "$line" ;;
		esac
	done
	((PIPESTATUS[0] == 0)) || rc=1
	umount build/tests/logs
done
exit $rc
