#!/bin/bash
# VM migration benchmark between two simulated hosts (tests/lib/mhosts.sh):
# a guest with BENCH_VM_MIB (1024) MiB of memory whose workload (the tests'
# guest, tests/vm/guest.S, built with RANDOM_FILL) keeps rewriting its first
# BENCH_VM_DIRTY (64) MiB with random-looking bytes (they do not compress),
# migrated a -> b
#   - by `ferry migrate` in pre-copy (QEMU's own passes), stop-copy and
#     post-copy (QEMU's, where userfaultfd works), the stream over ferry's
#     LZ4 + mutual TLS 1.3 channel;
#   - in the same run and the same accelerator, by QEMU's native migration
#     (`migrate tcp:`) without and with QEMU's TLS (`tls-creds-x509`).
# Each case: downtime (ferry: frozen -> running on b; QEMU native: QEMU's
# own downtime), total time, bytes on the wire (lan0 of host a, both
# directions), the accelerator. Ends with one line per case:
#   RESULT case=... accel=... downtime_ms=... total_ms=... wire_bytes=...
# and ratios against QEMU native with TLS (goals, issue 15: total <= 1.0x,
# bytes <= 0.6x, downtime within --max-downtime BENCH_VM_MAX_DOWNTIME, 300).
# A QEMU native migration that has not converged after BENCH_VM_CONVERGE_S
# (60) s gets a downtime limit of 100 s, which ends it: forced=1 in its row
# (its downtime is then whatever the last pass took).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY="$ROOT/build/ferry" WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests" TESTS_TMP=${BENCH_DIR:-/dev/shm}/ferry-bench-vm
MIB=${BENCH_VM_MIB:-1024}
DIRTY=${BENCH_VM_DIRTY:-64}
MAXDOWN=${BENCH_VM_MAX_DOWNTIME:-300}
CONVERGE_S=${BENCH_VM_CONVERGE_S:-60} # QEMU native: then its stop is forced
QMPCMD="$ROOT/build/tests/vm/qmpcmd"
. "$TESTS_ROOT/lib/common.sh"
t_init bench-vm
VM_MIB=$((DIRTY + 1))
. "$TESTS_ROOT/vm/vm.sh"
vm_require
GUEST_RANDOM=1 bash "$TESTS_ROOT/vm/build-guest.sh" "$VM_IMG" "$VM_MIB" ||
	t_fail "building the random-filling guest"
. "$TESTS_ROOT/lib/mhosts.sh"
ACCEL=$(python3 -c 'import json,sys
for i in json.load(open(sys.argv[1]))["items"]:
    if i["id"] == "vm": print("kvm" if "accelerator kvm" in i["detail"] else "tcg")' "$T/check.json")
ACCEL_ARG=tcg,thread=multi
[ "$ACCEL" = kvm ] && ACCEL_ARG=kvm

mh_setup bvm
mh_serve a
mh_serve b
wire() { ip netns exec "fym-$MH_ID-a" sh -c 'echo $(($(cat /sys/class/net/lan0/statistics/tx_bytes) + $(cat /sys/class/net/lan0/statistics/rx_bytes)))'; }
jget() { python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."): d = d[k]
print(d)' "$1" "$2"; }
declare -A DOWN TOTAL BYTES FORCED

# ferry MODE: a fresh VM on a, migrated to b
ferry_case() {
	local mode=$1 n=bv-$1 w0 w1
	mh_ferry a run "$n" --vm --memory "${MIB}M" --disk "$VM_IMG" >/dev/null
	vm_wait_bees "$T/state-a/tenants/$n/console.log" 1 60
	w0=$(wire)
	mh_migrate a b "$n" --shared-storage --mode "$mode" --max-downtime "$MAXDOWN" --json >"$T/$mode.json" ||
		{ cat "$T/$mode.json"; t_fail "ferry $mode failed"; }
	w1=$(wire)
	DOWN[ferry-$mode]=$(jget "$T/$mode.json" downtime_ms)
	TOTAL[ferry-$mode]=$(jget "$T/$mode.json" total_ms)
	BYTES[ferry-$mode]=$((w1 - w0))
	echo "ferry $mode: QEMU's own downtime $(jget "$T/$mode.json" backend.downtime_ms) ms," \
		"$(jget "$T/$mode.json" backend.passes) passes"
	mh_ferry b kill "$n" >/dev/null
	mh_ferry b rm "$n" >/dev/null
}

# QEMU's own machine, as ferry would start it, on HOST; extra args after
qemu_start() {
	local h=$1 name=$2
	shift 2
	mkdir -p "$T/q-$name"
	mh_exec "$h" qemu-system-x86_64 -name "$name" -machine pc -cpu qemu64 -m "${MIB}M" -smp 1 \
		-nodefaults -no-user-config -display none -accel "$ACCEL_ARG" \
		-drive "file=$VM_IMG,format=raw,if=ide,index=0,media=disk" \
		-serial "file:$T/q-$name/console.log" -qmp "unix:$T/q-$name/qmp.sock,server=on,wait=off" \
		"$@" </dev/null >"$T/q-$name/qemu.log" 2>&1 &
	local qpid
	qpid=$(mh_child $!) # nsenter forks: QEMU is its child
	t_defer "kill $qpid 2>/dev/null"
	local n=100
	while [ ! -S "$T/q-$name/qmp.sock" ] && ((n-- > 0)); do sleep 0.1; done
}

# QEMU native TLS: a CA, b's server certificate (its address), a's client one
qemu_certs() {
	local d=$T/qtls
	mkdir -p "$d/server" "$d/client"
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=bench-ca -keyout "$d/ca-key.pem" \
		-out "$d/ca-cert.pem" 2>/dev/null
	for who in server client; do
		openssl req -newkey rsa:2048 -nodes -subj "/CN=$who" -keyout "$d/$who/$who-key.pem" \
			-out "$d/$who.csr" 2>/dev/null
		openssl x509 -req -in "$d/$who.csr" -CA "$d/ca-cert.pem" -CAkey "$d/ca-key.pem" \
			-CAcreateserial -days 2 -out "$d/$who/$who-cert.pem" \
			-extfile <(printf 'subjectAltName=IP:%s\n' "$(mh_addr b)") 2>/dev/null
		cp "$d/ca-cert.pem" "$d/$who/"
	done
}

# QEMU native: migrate tcp: a -> b (TLS when $1 = tls)
qemu_case() {
	local tls=$1 src=qs-$1 dst=qd-$1 port=7101 w0 w1 st t0
	FORCED[qemu-$tls]=0
	[ "$tls" = tls ] && port=7102
	if [ "$tls" = tls ]; then
		qemu_start a "$src" -object "tls-creds-x509,id=tls0,dir=$T/qtls/client,endpoint=client"
		qemu_start b "$dst" -object "tls-creds-x509,id=tls0,dir=$T/qtls/server,endpoint=server" \
			-incoming defer
		"$QMPCMD" "$T/q-$dst/qmp.sock" migrate-set-parameters '{"tls-creds":"tls0"}' >/dev/null
		"$QMPCMD" "$T/q-$src/qmp.sock" migrate-set-parameters '{"tls-creds":"tls0"}' >/dev/null
		"$QMPCMD" "$T/q-$dst/qmp.sock" migrate-incoming "{\"uri\":\"tcp:$(mh_addr b):$port\"}" >/dev/null
	else
		qemu_start a "$src"
		qemu_start b "$dst" -incoming "tcp:$(mh_addr b):$port"
	fi
	vm_wait_bees "$T/q-$src/console.log" 1 60
	"$QMPCMD" "$T/q-$src/qmp.sock" migrate-set-parameters \
		"{\"max-bandwidth\":10737418240,\"downtime-limit\":$MAXDOWN}" >/dev/null
	"$QMPCMD" "$T/q-$src/qmp.sock" migrate-set-capabilities \
		'{"capabilities":[{"capability":"auto-converge","state":true}]}' >/dev/null
	sleep 0.5
	w0=$(wire)
	"$QMPCMD" "$T/q-$src/qmp.sock" migrate "{\"uri\":\"tcp:$(mh_addr b):$port\"}" >/dev/null
	t0=$SECONDS
	while :; do
		if ((SECONDS - t0 > CONVERGE_S)) && [ "${FORCED[qemu-$tls]}" = 0 ]; then
			FORCED[qemu-$tls]=1
			"$QMPCMD" "$T/q-$src/qmp.sock" migrate-set-parameters '{"downtime-limit":100000}' >/dev/null
		fi
		"$QMPCMD" "$T/q-$src/qmp.sock" query-migrate >"$T/qm.json"
		st=$(jget "$T/qm.json" status)
		[ "$st" = completed ] && break
		[ "$st" = failed ] && { cat "$T/qm.json" "$T/q-$dst/qemu.log"; t_fail "QEMU native ($tls) failed"; }
		sleep 0.05
	done
	w1=$(wire)
	DOWN[qemu-$tls]=$(jget "$T/qm.json" downtime)
	TOTAL[qemu-$tls]=$(jget "$T/qm.json" total-time)
	BYTES[qemu-$tls]=$((w1 - w0))
	"$QMPCMD" "$T/q-$src/qmp.sock" quit >/dev/null 2>&1 || true
	"$QMPCMD" "$T/q-$dst/qmp.sock" quit >/dev/null 2>&1 || true
}

qemu_certs
ferry_case pre-copy
ferry_case stop-copy
CASES="ferry-pre-copy ferry-stop-copy"
if mh_postcopy_ok; then
	ferry_case post-copy
	CASES="$CASES ferry-post-copy"
fi
qemu_case plain
qemu_case tls
for c in $CASES qemu-plain qemu-tls; do
	echo "RESULT case=$c accel=$ACCEL mem_mib=$MIB dirty_mib=$DIRTY downtime_ms=${DOWN[$c]}" \
		"total_ms=${TOTAL[$c]} wire_bytes=${BYTES[$c]} forced=${FORCED[$c]:-0}"
done
python3 - "${TOTAL[ferry-pre-copy]}" "${TOTAL[qemu-tls]}" "${BYTES[ferry-pre-copy]}" \
	"${BYTES[qemu-tls]}" "${DOWN[ferry-pre-copy]}" "$MAXDOWN" "$ACCEL" <<'PY'
import sys
ft, qt, fb, qb, fd, md, acc = sys.argv[1:]
print("RESULT case=ratio accel=%s total_vs_qemu_tls=%.2f wire_vs_qemu_tls=%.2f "
      "downtime_ms=%s max_downtime_ms=%s" % (acc, float(ft) / float(qt), float(fb) / float(qb), fd, md))
PY
