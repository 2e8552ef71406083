#!/bin/bash
# Snapshots of a VM tenant (docs/vm.md, docs/snapshots.md): the tests'
# guest (every page of its memory counting) is snapshotted twice while it
# runs (it runs on), the store verifies with --read-data, the first
# snapshot is restored in place (the running VM is replaced) and as a new
# tenant; every page is consistent each time and the guest goes on. Prints
# the accelerator.
. "$TESTS_ROOT/lib/common.sh"
t_init vm_snapshot
. "$TESTS_ROOT/vm/vm.sh"
vm_require

export FERRY_STATE_DIR="$T/state"
S=(--store "$T/store" --key-file "$T/key")
N=vms-g1
N2=vms-g2
D="$FERRY_STATE_DIR/tenants/$N"
t_defer "'$FERRY' rm --force $N >/dev/null 2>&1; '$FERRY' rm --force $N2 >/dev/null 2>&1"

"$FERRY" snapshot init "${S[@]}" || t_fail "snapshot init failed"
"$FERRY" run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" || t_fail "run --vm"
vm_wait_bees "$D/console.log" 1
pid0=$("$FERRY" ps --json | python3 -c 'import json,sys
print([t["pid"] for t in json.load(sys.stdin)["tenants"] if t["name"] == sys.argv[1]][0])' $N)

"$FERRY" snapshot create $N "${S[@]}" --tag first --json >"$T/c1.json" ||
	t_fail "first snapshot failed"
cat "$T/c1.json"
vm_memcheck "$D/qmp.sock"
snap_passes=$VM_PASSES # at most what the snapshot holds, plus the time since
kill -0 "$pid0" || t_fail "the VM's QEMU ended with the snapshot"
vm_wait_bees "$D/console.log" "$(vm_bees "$D/console.log")" 10
"$FERRY" snapshot create $N "${S[@]}" --json >"$T/c2.json" || t_fail "second snapshot failed"
cat "$T/c2.json"
python3 - "$T/c1.json" "$T/c2.json" <<'PY' || t_fail "snapshots"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print("first added %d of %d, second added %d of %d" % (a["added"], a["size"], b["added"], b["size"]))
assert b["parent"] == a["id"], "parent"
assert a["frozen_ms"] > 0
PY
id1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/c1.json")
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify --read-data failed"
vm_memcheck "$D/qmp.sock"
now=$VM_PASSES

t_log "restore in place: the running VM is replaced by the first snapshot"
"$FERRY" snapshot restore "$id1" "${S[@]}" --json | tee "$T/r1.json" || t_fail "restore failed"
grep -q '"replaced":true' "$T/r1.json" || t_fail "restore did not replace the running VM"
grep -q "State:.*[RS]" /proc/$pid0/status 2>/dev/null &&
	t_fail "the replaced QEMU (pid $pid0) still runs: $(grep State /proc/$pid0/status)"
vm_wait_bees "$D/console.log" "$(vm_bees "$D/console.log")" 10
vm_memcheck "$D/qmp.sock"
t_log "before the restore: $now passes; the snapshot at most $snap_passes; now $VM_PASSES"

# (the same disk image: QEMU's image lock lets one VM at a time use it)
t_log "restore as a new tenant $N2 once $N is gone"
"$FERRY" rm --force $N || t_fail "rm --force $N"
"$FERRY" snapshot restore "$id1" "${S[@]}" --name $N2 --json | tee "$T/r2.json" ||
	t_fail "restore --name failed"
D2="$FERRY_STATE_DIR/tenants/$N2"
vm_wait_bees "$D2/console.log" "$(vm_bees "$D2/console.log")" 10
vm_memcheck "$D2/qmp.sock"
echo "PASS vm_snapshot ($VM_ACCEL)"
