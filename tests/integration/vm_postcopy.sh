#!/bin/bash
# VM post-copy (docs/vm.md, "Migration"): QEMU's own post-copy, its stream
# and its return path (the destination's page requests) both carried over
# ferry's page session (LZ4 + TLS). The tests' guest (every page of its
# memory counting) moves a -> b: one pre-copy pass while it runs, QEMU
# pauses before the switchover (the hold: the source can still resume),
# b's QEMU (started at BEGIN, postcopy-ram, fed the stream since) confirms,
# the decision is written, then the post-copy starts and b runs the VM
# while its memory is still coming. After the move exactly one host runs
# it, every page is consistent and the counter went on; the JSON has
# QEMU's figures (post-copy page requests included). Then the link fails
# in the post-copy phase (FERRY_FAULT=postcopy-cut: the page session is cut
# right after the commit): the source must not resume any more, and ferry
# does not drive QEMU's postcopy-recover, so the move fails saying the VM
# is lost, and no QEMU of it is left on either host. Then the source's
# `ferry migrate` is killed right after the commit (`migrate-continue`):
# recovery must not resume the source's QEMU once its post-copy started
# (ckpt.h handed), so the VM never runs on both hosts; killed once b
# confirmed it runs the VM, a's recovery ends a's QEMU. Prints the
# accelerator.
. "$TESTS_ROOT/lib/common.sh"
t_init vm_postcopy
. "$TESTS_ROOT/vm/vm.sh"
vm_require
. "$TESTS_ROOT/lib/mhosts.sh"
mh_postcopy_ok || t_skip "no userfaultfd on this host (ferry check)"

mh_setup vmpc
mh_serve a
mh_serve b
N=vmp-g1
Da="$T/state-a/tenants/$N"
Db="$T/state-b/tenants/$N"

mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" || t_fail "run --vm on a"
vm_wait_bees "$Da/console.log" 2
vm_memcheck "$Da/qmp.sock"
before=$VM_PASSES

t_log "post-copy a -> b"
mh_migrate a b $N --shared-storage --mode post-copy --json >"$T/m1.json" || {
	cat "$T/m1.json" "$MH_LOG_b"
	t_fail "post-copy a -> b failed"
}
cat "$T/m1.json"
python3 - "$T/m1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["moved"] and d["mode"] == "post-copy", d
b = d["backend"]  # QEMU's own figures
assert b["transferred_bytes"] > 0 and b["total_ms"] > 0 and "postcopy_requests" in b, b
print("QEMU: downtime %.0f ms, total %.0f ms, %d bytes, %d passes, %d post-copy requests; "
      "ferry: downtime %.0f ms, %d bytes on the wire" % (b["downtime_ms"], b["total_ms"],
      b["transferred_bytes"], b["passes"], b["postcopy_requests"], d["downtime_ms"],
      d["wire_bytes"]))
PY
vm_one_host $N b
vm_wait_bees "$Db/console.log" "$(vm_bees "$Db/console.log")"
vm_memcheck "$Db/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"

t_log "link cut after the commit, in the post-copy phase (b -> a)"
rc=0
mh_exec b env FERRY_FAULT=postcopy-cut FERRY_STATE_DIR="$T/state-b" "$FERRY" migrate $N \
	--shared-storage --to "$(mh_addr a):7000" --tls "$T/certs" --name b --peer a \
	--mode post-copy --timeout 5 >"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "post-copy with its link cut reported success"
grep -q "lost on both hosts" "$T/err" || t_fail "no word of the loss: $(cat "$T/err")"
n=50
while [ -n "$(vm_qemus $N)" ] && ((n-- > 0)); do sleep 0.2; done
[ -z "$(vm_qemus $N)" ] || t_fail "a QEMU of $N is left: $(vm_qemus $N)"
t_log "no QEMU of $N runs on either host (exit $rc)"

t_log "the source's ferry migrate killed in the post-copy phase (a -> b)"
N2=vmp-g2
mh_ferry a run $N2 --vm --memory ${VM_MIB}M --disk "$VM_IMG" || t_fail "run $N2 on a"
vm_wait_bees "$T/state-a/tenants/$N2/console.log" 2
rc=0
mh_exec a env FERRY_FAULT=src-crash-in-postcopy FERRY_STATE_DIR="$T/state-a" "$FERRY" migrate \
	$N2 --shared-storage --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
	--mode post-copy --timeout 5 >"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc == 137)) || t_fail "ferry migrate exited $rc, want 137 (killed)"
# Recovery on a. Either QEMU's post-copy had started (the devices' state
# left a): then a's QEMU must never run again (ckpt.h handed), b learns the
# commit but the pages went with the killed process's relay: the VM is
# lost, no QEMU of it may be left. Or sending the devices' state failed
# (the relay was gone): a's QEMU ran the VM again by itself, b never had
# it: it runs on a only. Never on both.
mh_ferry a -v ps >/dev/null 2>"$T/ps.log" || t_fail "ferry ps on a"
grep -h "handed over\|outcome\|frozen state" "$T/ps.log" "$MH_LOG_a" | tail -3 || true
sleep 3
mh_ferry a ps >/dev/null
if [ -n "$(vm_qemus $N2)" ]; then
	vm_one_host $N2 a
	vm_memcheck "$T/state-a/tenants/$N2/qmp.sock"
	t_log "the post-copy had not started: $N2 runs on a only"
else
	[ "$(mh_state a $N2)" != running ] || t_fail "a's record says $N2 runs, no QEMU does"
	t_log "handed over, then lost: no QEMU of $N2 on either host"
fi

t_log "the source's ferry migrate killed once b confirmed it runs the VM (a -> b)"
N3=vmp-g3
cp "$VM_IMG" "$T/guest3.img" # N2's QEMU may hold the image's lock
mh_ferry a run $N3 --vm --memory ${VM_MIB}M --disk "$T/guest3.img" || t_fail "run $N3 on a"
vm_wait_bees "$T/state-a/tenants/$N3/console.log" 2
rc=0
mh_exec a env FERRY_FAULT=src-crash-after-postcopy-commit FERRY_STATE_DIR="$T/state-a" \
	"$FERRY" migrate $N3 --shared-storage --to "$(mh_addr b):7000" --tls "$T/certs" --name a \
	--peer b --mode post-copy --timeout 5 >"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc == 137)) || t_fail "ferry migrate exited $rc, want 137 (killed)"
# a's QEMU was handed over (its post-copy started, or it completed): a's
# recovery ends it and never resumes it; b runs the VM if every page had
# arrived, else the VM is lost. Never on both.
mh_ferry a -v ps >/dev/null 2>"$T/ps.log" || t_fail "ferry ps on a"
grep -h "handed over\|outcome\|frozen state" "$T/ps.log" "$MH_LOG_a" | tail -3 || true
sleep 3
mh_ferry b ps >/dev/null
if [ -n "$(vm_qemus $N3)" ]; then
	vm_one_host $N3 b
	vm_memcheck "$T/state-b/tenants/$N3/qmp.sock"
	t_log "every page had arrived: $N3 runs on b only"
else
	t_log "lost: no QEMU of $N3 on either host"
fi
echo "PASS vm_postcopy ($VM_ACCEL)"
