#!/bin/bash
# VM live migration between two simulated hosts: the tests' guest (every
# page of its memory counting) moves a -> b and back with stop-copy, its
# state streamed over ferry's LZ4 + TLS channel; after each move exactly one
# host runs its QEMU, every page is consistent and the counter went on.
# Modes the QEMU backend lacks are refused before anything stops. Prints the
# accelerator used.
. "$TESTS_ROOT/lib/common.sh"
t_init vm_migrate
. "$TESTS_ROOT/vm/vm.sh"
vm_require
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup vmmig
mh_serve a
mh_serve b
N=vmm-g1
Da="$T/state-a/tenants/$N"
Db="$T/state-b/tenants/$N"

mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" || t_fail "run --vm on a"
vm_wait_bees "$Da/console.log" 2
vm_memcheck "$Da/qmp.sock"
before=$VM_PASSES

t_log "modes the QEMU backend lacks are refused, the VM runs on"
t_expect_fail 7 "no pre-copy rounds" mh_migrate a b $N --mode pre-copy
vm_one_host $N a

t_log "stop-copy a -> b"
mh_migrate a b $N --mode stop-copy --json >"$T/m1.json" || {
	cat "$T/m1.json" "$MH_LOG_b"
	t_fail "migration a -> b failed"
}
cat "$T/m1.json"
python3 - "$T/m1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["moved"] and d["mode"] == "stop-copy", d
assert d["downtime_ms"] > 0 and d["wire_bytes"] > 0, d
PY
vm_one_host $N b
marks=$(vm_bees "$Db/console.log")
vm_wait_bees "$Db/console.log" "$marks"
vm_memcheck "$Db/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
before=$VM_PASSES

t_log "auto (stop-copy for a VM) b -> a"
mh_migrate b a $N --mode auto || t_fail "migration b -> a failed"
vm_one_host $N a
vm_wait_bees "$Da/console.log" "$(vm_bees "$Da/console.log")"
vm_memcheck "$Da/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
echo "PASS vm_migrate ($VM_ACCEL)"
