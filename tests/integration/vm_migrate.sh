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

# vm_one_host HOST: exactly one QEMU of the tenant on the machine, the one
# HOST's registry names (in HOST's PID namespace), running; none elsewhere
vm_one_host() {
	local h=$1 o q pid
	[ "$h" = a ] && o=b || o=a
	q=$(vm_qemus $N)
	[ "$(wc -w <<<"$q")" = 1 ] || t_fail "QEMUs of $N on the machine: '$q'"
	tr '\0' ' ' <"/proc/$q/cmdline" | grep -q "$T/state-$h/" ||
		t_fail "the one QEMU of $N (pid $q) is not $h's"
	pid=$(mh_pid "$h" $N)
	[ "$(mh_state "$h" $N)" = running ] || t_fail "$h's registry: $(mh_state "$h" $N)"
	mh_exec "$h" tr '\0' ' ' <"/dev/null" >/dev/null
	mh_exec "$h" sh -c "tr '\\0' ' ' </proc/$pid/cmdline" | grep -q -- "-name $N " ||
		t_fail "$h's pid $pid is not the VM's QEMU"
	[ -z "$(mh_state "$o" $N)" ] || t_fail "$o still has a record: $(mh_state "$o" $N)"
	t_log "$N runs on $h only (QEMU pid $q, $pid in $h)"
}

mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" || t_fail "run --vm on a"
vm_wait_bees "$Da/console.log" 2
vm_memcheck "$Da/qmp.sock"
before=$VM_PASSES

t_log "modes the QEMU backend lacks are refused, the VM runs on"
t_expect_fail 7 "no pre-copy rounds" mh_migrate a b $N --mode pre-copy
vm_one_host a

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
vm_one_host b
marks=$(vm_bees "$Db/console.log")
vm_wait_bees "$Db/console.log" "$marks"
vm_memcheck "$Db/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
before=$VM_PASSES

t_log "auto (stop-copy for a VM) b -> a"
mh_migrate b a $N --mode auto || t_fail "migration b -> a failed"
vm_one_host a
vm_wait_bees "$Da/console.log" "$(vm_bees "$Da/console.log")"
vm_memcheck "$Da/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
echo "PASS vm_migrate ($VM_ACCEL)"
