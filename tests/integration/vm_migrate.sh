#!/bin/bash
# VM live migration between two simulated hosts: the tests' guest (every
# page of its memory counting) moves a -> b with stop-copy, back with
# pre-copy (QEMU's iterative passes, --max-downtime, paused before the
# switchover for ferry's handover) and again with auto, its state streamed
# over ferry's LZ4 + TLS channel; after each move exactly one host runs its
# QEMU, every page is consistent and the counter went on; its tap device's
# /32 route and proxy ARP (--net) move with it. Post-copy: vm_postcopy.sh.
# Prints the accelerator.
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

ADDR=10.204.0.71
mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" --net $ADDR/24 ||
	t_fail "run --vm on a"

# route_on HOST: the /32 route to the VM's address is on HOST (via its tap,
# proxy ARP on) and not on the other one
route_on() {
	local h=$1 o dev
	[ "$h" = a ] && o=b || o=a
	dev=$(ip -n "fym-$MH_ID-$h" route show "$ADDR/32" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
	[ -n "$dev" ] || t_fail "$h has no /32 route to $ADDR"
	[ "$(ip netns exec "fym-$MH_ID-$h" cat "/sys/class/net/$dev/tun_flags" 2>/dev/null)" ] ||
		t_fail "$h's route to $ADDR goes through $dev, not a tap"
	[ "$(ip netns exec "fym-$MH_ID-$h" cat "/proc/sys/net/ipv4/conf/$dev/proxy_arp")" = 1 ] ||
		t_fail "no proxy ARP on $h's $dev"
	[ -z "$(ip -n "fym-$MH_ID-$o" route show "$ADDR/32")" ] || t_fail "$o still routes $ADDR"
	t_log "$ADDR routed on $h through tap $dev"
}
vm_wait_bees "$Da/console.log" 2
vm_memcheck "$Da/qmp.sock"
before=$VM_PASSES
route_on a

t_log "stop-copy a -> b"
mh_migrate a b $N --shared-storage --mode stop-copy --json >"$T/m1.json" || {
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
route_on b
marks=$(vm_bees "$Db/console.log")
vm_wait_bees "$Db/console.log" "$marks"
vm_memcheck "$Db/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
before=$VM_PASSES

t_log "pre-copy b -> a, at most 200 ms stopped"
mh_migrate b a $N --shared-storage --mode pre-copy --max-downtime 200 --json >"$T/m2.json" || {
	cat "$T/m2.json"
	t_fail "migration b -> a failed"
}
cat "$T/m2.json"
python3 - "$T/m2.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["moved"] and d["mode"] == "pre-copy", d
b = d["backend"]  # QEMU's own figures
assert b["transferred_bytes"] > 0 and b["passes"] >= 1 and b["total_ms"] > 0, b
assert 0 <= b["downtime_ms"] <= b["total_ms"], b
print("QEMU: downtime %.0f ms (max 200 asked), total %.0f ms, %d bytes, %d passes, "
      "dirty rate %d pages/s" % (b["downtime_ms"], b["total_ms"], b["transferred_bytes"],
      b["passes"], b["dirty_pages_rate"]))
PY
vm_one_host $N a
route_on a
vm_wait_bees "$Da/console.log" "$(vm_bees "$Da/console.log")"
vm_memcheck "$Da/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
before=$VM_PASSES

t_log "auto (pre-copy for a VM) a -> b"
mh_migrate a b $N --shared-storage --mode auto --json >"$T/m3.json" || t_fail "migration a -> b (auto) failed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["mode"] == "pre-copy", d' "$T/m3.json"
vm_one_host $N b
route_on b
vm_wait_bees "$Db/console.log" "$(vm_bees "$Db/console.log")"
vm_memcheck "$Db/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
echo "PASS vm_migrate ($VM_ACCEL)"
