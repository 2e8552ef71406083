# Helpers for the VM tests (source after common.sh and t_init).
#   vm_require              QEMU present (else skip); builds the guest into
#                           $VM_IMG (tests/vm/guest.S, $VM_MIB MiB, default 32)
#                           and prints the accelerator ferry picks here
#   vm_memcheck SOCK [--stopped]  the guest's memory is consistent: prints
#                           "passes=P boundary=ADDR"; VM_PASSES gets P
#   vm_qmp DIR              the VM's QMP socket in a tenant state dir
#   vm_bees LOG             how many progress marks (B) the serial log holds
#   vm_wait_bees LOG N [S]  wait until it holds more than N
#   vm_qemus NAME           pids of the QEMUs (whole machine) running tenant
#                           NAME of this test: "-name NAME" and $T in their
#                           command line
VM_MIB=${VM_MIB:-32}
VM_MEMCHECK="$(dirname "$FERRY")/tests/vm/memcheck"

vm_require() {
	command -v qemu-system-x86_64 >/dev/null || [ -n "${FERRY_QEMU:-}" ] ||
		t_skip "no qemu-system-x86_64"
	[ -x "$VM_MEMCHECK" ] || t_fail "no $VM_MEMCHECK: make test-bins"
	VM_IMG="$T/guest.img"
	bash "$TESTS_ROOT/vm/build-guest.sh" "$VM_IMG" "$VM_MIB" || t_fail "building the guest"
	"$FERRY" check --json >"$T/check.json" 2>/dev/null || true
	VM_ACCEL=$(python3 -c '
import json, sys
for i in json.load(open(sys.argv[1]))["items"]:
    if i["id"] == "vm":
        print(i["detail"])
' "$T/check.json")
	t_log "accelerator: $VM_ACCEL"
}

vm_qmp() { echo "$1/qmp.sock"; }

vm_memcheck() {
	local out
	out=$("$VM_MEMCHECK" "$1" "$VM_MIB" "$T/mem.bin" ${2:-}) ||
		t_fail "guest memory: $out"
	echo "$out"
	VM_PASSES=$(sed -n 's/^passes=\([0-9]*\).*/\1/p' <<<"$out")
}

vm_bees() { tr -cd B <"$1" 2>/dev/null | wc -c; }

vm_wait_bees() {
	local n=$((${3:-20} * 10))
	while ((n-- > 0)); do
		(($(vm_bees "$1") > $2)) && return 0
		sleep 0.1
	done
	t_fail "the guest made no progress in $1 (still $(vm_bees "$1") marks)"
}

vm_qemus() {
	local p
	for p in /proc/[0-9]*; do
		{ tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null | grep -q -- "-name $1 .*$T/" &&
			echo "${p#/proc/}"
	done
	true
}

# _vm_one_why NAME HOST: why tenant NAME does not run on HOST only, or "ok".
_vm_one_why() {
	local N=$1 h=$2 o q pid
	[ "$h" = a ] && o=b || o=a
	q=$(vm_qemus "$N")
	[ "$(wc -w <<<"$q")" = 1 ] || { echo "QEMUs of $N on the machine: '$q'"; return; }
	{ tr '\0' ' ' <"/proc/$q/cmdline"; } 2>/dev/null | grep -q "$T/state-$h/" ||
		{ echo "the one QEMU of $N (pid $q) is not $h's"; return; }
	[ "$(mh_state "$h" "$N")" = running ] || { echo "$h's registry: '$(mh_state "$h" "$N")'"; return; }
	pid=$(mh_pid "$h" "$N")
	mh_exec "$h" sh -c "tr '\\0' ' ' </proc/$pid/cmdline" 2>/dev/null | grep -q -- "-name $N " ||
		{ echo "$h's pid $pid is not the VM's QEMU"; return; }
	[ -z "$(mh_state "$o" "$N")" ] || { echo "$o still has a record: $(mh_state "$o" "$N")"; return; }
	echo "ok QEMU pid $q, $pid in $h"
}

# vm_one_host NAME HOST (with mhosts.sh): exactly one QEMU of tenant NAME
# on the machine, the one HOST's registry names (in HOST's PID namespace),
# running there; no record on the other host. Waits up to 15 s to settle.
vm_one_host() {
	local why n=75
	while :; do
		why=$(_vm_one_why "$1" "$2")
		[[ "$why" == ok* ]] && break
		((n-- > 0)) || t_fail "$1 does not run on exactly one host ($2): $why"
		sleep 0.2
	done
	t_log "$1 runs on $2 only (${why#ok })"
}
