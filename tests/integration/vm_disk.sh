#!/bin/bash
# A VM's local disk migrates with it (docs/vm.md, "Disks"): each simulated
# host has its own tmpfs at the same path (its own mount namespace), the
# VM's raw disk image only on a. The tests' guest built with DISK_SECTORS
# writes a sector of its disk every 16 passes (tests/vm/guest.S), during
# the migration too. Without --shared-storage the image travels inside
# QEMU's stream (block migration) over ferry's channel into a file b
# creates; after the move (pre-copy, --max-downtime 200) the VM runs on b
# only, its memory is consistent and b's disk holds every write up to the
# one its counter says (tests/vm/diskcheck.py). A destination that has a
# file at that path refuses the copy before anything stops (exit 4). Prints
# the accelerator.
. "$TESTS_ROOT/lib/common.sh"
t_init vm_disk
. "$TESTS_ROOT/vm/vm.sh"
vm_require
. "$TESTS_ROOT/lib/mhosts.sh"

SECTORS=2048
DISKCHECK="$TESTS_ROOT/vm/diskcheck.py"
mh_setup vmdsk
mh_serve a
mh_serve b
N=vmd-g1
Db="$T/state-b/tenants/$N"
mkdir -p "$T/disk"
for h in a b; do
	mh_exec $h mount -t tmpfs -o size=16m,mode=0700 fy-vmdisk "$T/disk" ||
		t_fail "tmpfs on $h"
done
bash "$TESTS_ROOT/vm/build-guest.sh" "$T/guest-disk.img" "$VM_MIB" $SECTORS ||
	t_fail "building the disk-writing guest"
mh_exec a cp "$T/guest-disk.img" "$T/disk/guest.img"
mh_exec b test ! -e "$T/disk/guest.img" || t_fail "b sees a's disk: no mount namespace"

mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$T/disk/guest.img" || t_fail "run --vm on a"
vm_wait_bees "$T/state-a/tenants/$N/console.log" 2
mh_exec a python3 "$DISKCHECK" "$T/disk/guest.img" $SECTORS || t_fail "a's disk"

t_log "a file at the disk's path on b: the copy is refused, nothing stops"
mh_exec b touch "$T/disk/guest.img"
t_expect_fail 4 "exists on b.*--shared-storage" mh_migrate a b $N --mode pre-copy
mh_exec b rm "$T/disk/guest.img"
vm_one_host $N a

t_log "pre-copy a -> b with the disk (the guest writes it all along)"
mh_migrate a b $N --mode pre-copy --max-downtime 200 --json >"$T/m.json" || {
	cat "$T/m.json" "$MH_LOG_b"
	t_fail "migration a -> b with the disk failed"
}
cat "$T/m.json"
vm_one_host $N b
vm_wait_bees "$Db/console.log" "$(vm_bees "$Db/console.log")" 10
vm_memcheck "$Db/qmp.sock" --stopped
out=$(mh_exec b python3 "$DISKCHECK" "$T/disk/guest.img" $SECTORS "$VM_PASSES") ||
	t_fail "b's disk: $out"
t_log "b's disk: $out (the guest's counter: $VM_PASSES)"
mh_ferry b rm --force $N || t_fail "rm on b"

t_log "shared storage: evacuate a -> b without copying the disk"
N2=vmd-g2
mkdir -p "$T/shared"
cp "$T/guest-disk.img" "$T/shared/guest.img"
mh_ferry a run $N2 --vm --memory ${VM_MIB}M --disk "$T/shared/guest.img" || t_fail "run $N2 on a"
vm_wait_bees "$T/state-a/tenants/$N2/console.log" 2
evac() {
	mh_ferry a evacuate --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b "$@"
}
evac --mode pre-copy >"$T/e1.out" 2>&1 && t_fail "evacuate copied a disk over the shared image"
grep -q "exists on b.*--shared-storage" "$T/e1.out" || t_fail "evacuate: $(cat "$T/e1.out")"
vm_one_host $N2 a
evac --mode pre-copy --shared-storage --json >"$T/e2.json" || {
	cat "$T/e2.json" "$MH_LOG_b"
	t_fail "evacuate --shared-storage failed"
}
vm_one_host $N2 b
Db2="$T/state-b/tenants/$N2"
vm_wait_bees "$Db2/console.log" "$(vm_bees "$Db2/console.log")" 10
vm_memcheck "$Db2/qmp.sock" --stopped
out=$(python3 "$DISKCHECK" "$T/shared/guest.img" $SECTORS "$VM_PASSES") ||
	t_fail "the shared disk: $out"
t_log "the shared disk: $out (the guest's counter: $VM_PASSES)"
echo "PASS vm_disk ($VM_ACCEL)"
