#!/bin/bash
# A real Linux guest migrates with its TCP connection (issue 15): Debian's
# stock kernel (unpacked into build/kernel/ by tests/kernel/guest.sh
# --prepare; skipped without it) boots a busybox initramfs the test builds
# (tests/vm/linux-initrd.sh) that runs wl_tcp_server on the VM's address
# (--net). tcp_client on host c talks to it over one connection while the
# VM moves a -> b with pre-copy, then back b -> a with post-copy: after each
# move it runs on one host only, and the client's verdict says no answer
# was lost or repeated and the connection never had to be made again.
# Prints the accelerator and where ferry's downtime went (stages_ms).
. "$TESTS_ROOT/lib/common.sh"
t_init vm_linux
. "$TESTS_ROOT/vm/vm.sh"
vm_require
. "$TESTS_ROOT/lib/mhosts.sh"

ROOT=$(cd "$TESTS_ROOT/.." && pwd)
KDIR=${FERRY_TEST_KERNEL_DIR:-}
if [ -z "$KDIR" ]; then
	for d in "$ROOT"/build/kernel/*/; do
		[ -f "$d/.ready" ] && compgen -G "$d/boot/vmlinuz-*" >/dev/null && KDIR=${d%/}
	done
fi
[ -n "$KDIR" ] || t_skip "no unpacked Debian kernel in build/kernel (tests/kernel/guest.sh --prepare)"
KERNEL=$(ls "$KDIR"/boot/vmlinuz-* | head -1)
t_log "kernel: $KERNEL"
gcc -static -O2 -D_GNU_SOURCE -I"$TESTS_ROOT/workloads" -o "$T/srv" "$TESTS_ROOT/workloads/wl_tcp_server.c" ||
	t_fail "building the static server"
bash "$TESTS_ROOT/vm/linux-initrd.sh" "$KDIR" "$T/srv" "$T/initrd.gz" || t_fail "initramfs"

mh_setup vmlnx
mh_serve a
mh_serve b
N=vml-g1
ADDR=10.204.0.73
Da="$T/state-a/tenants/$N"
Db="$T/state-b/tenants/$N"
mh_ferry a run $N --vm --memory 256M --kernel "$KERNEL" --initrd "$T/initrd.gz" \
	--append "console=ttyS0 quiet rdinit=/init" --net $ADDR/24 || t_fail "run --vm on a"
n=1200
until grep -q "ferry-guest: server up" "$Da/console.log" 2>/dev/null; do
	((n-- > 0)) || { tail -20 "$Da/console.log"; t_fail "the guest's server did not come up in 120 s"; }
	sleep 0.1
done
t_log "$(grep -a "ferry-guest" "$Da/console.log")"

mh_client_start "$T/cl" $ADDR 7000 20
sleep 2
t_log "pre-copy a -> b while the client talks to the guest"
mh_migrate a b $N --mode pre-copy --max-downtime 300 --json >"$T/m.json" || {
	cat "$T/m.json" "$MH_LOG_b"
	t_fail "migration a -> b failed"
}
cat "$T/m.json"
stages() {
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
print("%s: ferry downtime %.0f ms, QEMU own %.0f ms; stages %s" % (d["mode"], d["downtime_ms"],
      d["backend"]["downtime_ms"], d["stages_ms"]))' "$1"
}
stages "$T/m.json"
vm_one_host $N b
sleep 2
if mh_postcopy_ok; then
	t_log "post-copy b -> a while the client talks to the guest"
	mh_migrate b a $N --mode post-copy --json >"$T/m2.json" || {
		cat "$T/m2.json" "$MH_LOG_a"
		t_fail "post-copy b -> a failed"
	}
	cat "$T/m2.json"
	stages "$T/m2.json"
	vm_one_host $N a
fi
sleep 2
mh_client_verdict "$MH_CLIENT_PID" "$T/cl"
echo "PASS vm_linux ($VM_ACCEL)"
