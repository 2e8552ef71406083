#!/bin/bash
# Where ferry's VM downtime goes (docs/vm.md, "Downtime"): the tests' guest
# (tests/vm/guest.S, BENCH_VMD_MIB (64) MiB, rewriting all its memory) moves
# back and forth between two simulated hosts BENCH_VMD_MOVES (10) times in
# pre-copy with --max-downtime BENCH_VMD_MAX (100). Per move: ferry's
# downtime (the VM stopped on the source -> running on the destination),
# QEMU's own, and ferry's stages (`ferry migrate --json` stages_ms):
#   dump      QEMU's stop until ferry saw its migration completed
#   transfer  the stream's last pass crossing ferry's relay and loading on
#             the destination, then vm.json and the manifest
#   restore   the destination's load ends (QEMU completed), its checks
#   handover  RESTORED -> COMMIT (the decision written, the source's QEMU
#             killed)
#   resume    COMMIT -> running on the destination (`cont`)
# Ends with one RESULT line per move and one with the medians.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY="$ROOT/build/ferry" WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests" TESTS_TMP=${BENCH_DIR:-/dev/shm}/ferry-bench-vmd
MOVES=${BENCH_VMD_MOVES:-10}
MAX=${BENCH_VMD_MAX:-100}
. "$TESTS_ROOT/lib/common.sh"
t_init bench-vm-downtime
VM_MIB=${BENCH_VMD_MIB:-64}
. "$TESTS_ROOT/vm/vm.sh"
vm_require
. "$TESTS_ROOT/lib/mhosts.sh"
mh_setup bvmd
mh_serve a
mh_serve b
N=bvmd-g1
mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" >/dev/null
vm_wait_bees "$T/state-a/tenants/$N/console.log" 2
from=a
to=b
for i in $(seq 1 "$MOVES"); do
	mh_migrate $from $to $N --shared-storage --mode pre-copy --max-downtime "$MAX" --json \
		>"$T/m$i.json" || { cat "$T/m$i.json"; t_fail "move $i failed"; }
	t=$from
	from=$to
	to=$t
	sleep 1
done
python3 - "$T" "$MOVES" "$MAX" <<'PY'
import json, statistics, sys
d, n, mx = sys.argv[1], int(sys.argv[2]), sys.argv[3]
keys = ["dump", "transfer", "restore", "handover", "resume"]
rows = []
for i in range(1, n + 1):
    m = json.load(open("%s/m%d.json" % (d, i)))
    r = {"downtime_ms": m["downtime_ms"], "qemu_downtime_ms": m["backend"]["downtime_ms"]}
    r.update({k + "_ms": m["stages_ms"][k] for k in keys})
    r["ferry_extra_ms"] = r["downtime_ms"] - r["qemu_downtime_ms"]
    rows.append(r)
    print("RESULT case=move%d max_downtime_ms=%s %s" % (i, mx,
          " ".join("%s=%.1f" % kv for kv in r.items())))
print("RESULT case=median moves=%d max_downtime_ms=%s %s" % (n, mx, " ".join(
    "%s=%.1f" % (k, statistics.median(r[k] for r in rows)) for k in rows[0])))
PY
