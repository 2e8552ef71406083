#!/bin/bash
# VM tenants on one host: `ferry run --vm` boots the tests' guest
# (tests/vm/guest.S, counting in every page of its memory), ps/logs/kill/rm
# treat it as any tenant, `ferry dump` stores QEMU's migration stream with
# vm.json and the manifest, `ferry restore` brings it back: every page
# consistent and the counter went on. Errors: bad options, a missing disk, a
# host QEMU older than the dump's (exit 7). Prints the accelerator used.
. "$TESTS_ROOT/lib/common.sh"
t_init vm_basic
. "$TESTS_ROOT/vm/vm.sh"
vm_require

N=vmb-g1
D="$FERRY_STATE_DIR/tenants/$N"
t_defer "'$FERRY' rm --force $N"

t_log "option errors"
t_expect_fail 2 "either --kernel FILE or --disk IMAGE" "$FERRY" run $N --vm
t_expect_fail 2 "either --kernel FILE or --disk IMAGE" \
	"$FERRY" run $N --vm --disk "$VM_IMG" --kernel "$VM_IMG"
t_expect_fail 2 "are for VMs" "$FERRY" run $N --disk "$VM_IMG" --rootfs / -- /bin/true
t_expect_fail 2 "are for containers" "$FERRY" run $N --vm --disk "$VM_IMG" --pids 100
t_expect_fail 2 "whole number" "$FERRY" run $N --vm --disk "$VM_IMG" --cpus 0.5
t_expect_fail 3 "no-such.img" "$FERRY" run $N --vm --disk "$T/no-such.img"

t_log "run, ps, logs"
"$FERRY" run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" --json >"$T/run.json" ||
	t_fail "ferry run --vm failed"
cat "$T/run.json"
python3 - "$T/run.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["kind"] == "vm" and d["state"] == "running" and d["pid"] > 0, d
PY
pid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/run.json")
[ "$(vm_qemus $N)" = "$pid" ] || t_fail "QEMU of $N: '$(vm_qemus $N)', ferry says $pid"
"$FERRY" ps | grep -E "^$N +vm +running +$pid" || t_fail "ps does not show the VM"
vm_wait_bees "$D/console.log" 2
"$FERRY" logs $N >"$T/logs.out" || t_fail "ferry logs failed"
(($(vm_bees "$T/logs.out") >= 3)) || t_fail "ferry logs shows no serial output"
vm_memcheck "$(vm_qmp "$D")"
before=$VM_PASSES

t_log "dump"
"$FERRY" dump $N -D "$T/set" || t_fail "dump failed"
ls -l "$T/set"
[ -s "$T/set/vm.state" ] && [ -s "$T/set/vm.json" ] || t_fail "no VM state in the set"
python3 - "$T/set/vm.json" "$VM_MIB" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["kind"] == "vm" and d["qemu_version"], d
assert d["machine"].startswith("pc-i440fx-") and d["cpu"] == "qemu64", d
assert d["memory"] == sys.argv[2] + "M" and len(d["disks"]) == 1, d
PY
[ -z "$(vm_qemus $N)" ] || t_fail "QEMU still runs after the dump"
"$FERRY" ps | grep -E "^$N +vm +dumped" || t_fail "ps does not show it dumped"
marks=$(vm_bees "$D/console.log")

t_log "restore refused by an older QEMU"
cat >"$T/old-qemu" <<SH
#!/bin/sh
[ "\$1" = -version ] && { echo "QEMU emulator version 6.0.0"; exit 0; }
exec qemu-system-x86_64 "\$@"
SH
chmod +x "$T/old-qemu"
FERRY_QEMU="$T/old-qemu" t_expect_fail 7 "older than the source's" "$FERRY" restore -D "$T/set"
[ -z "$(vm_qemus $N)" ] || t_fail "a refused restore started QEMU"

t_log "restore"
"$FERRY" restore -D "$T/set" || t_fail "restore failed"
pid=$(vm_qemus $N)
[ -n "$pid" ] && [ "$(wc -w <<<"$pid")" = 1 ] || t_fail "QEMUs of $N after restore: '$pid'"
"$FERRY" ps | grep -E "^$N +vm +running +$pid" || t_fail "ps: not running as $pid"
vm_wait_bees "$D/console.log" "$marks"
vm_memcheck "$(vm_qmp "$D")"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"

t_log "kill, rm"
"$FERRY" kill $N || t_fail "kill failed"
[ -z "$(vm_qemus $N)" ] || t_fail "QEMU still runs after kill"
"$FERRY" ps | grep -E "^$N +vm +gone" || t_fail "ps: not gone"
"$FERRY" rm $N || t_fail "rm failed"
"$FERRY" ps | grep -q "^$N " && t_fail "rm left the record"
echo "PASS vm_basic ($VM_ACCEL)"
