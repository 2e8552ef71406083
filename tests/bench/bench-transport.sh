#!/bin/bash
# Transport benchmark: a ~2 GiB image set (pages of a dumped python3 process
# with zero, repeated and random pages, plus random data) sent between two
# simulated hosts by
#   1. ferry send / ferry serve (LZ4 + TLS 1.3, mutual auth, pipelined),
#   2. the baseline tar | lz4 | openssl s_client -> openssl s_server | lz4 -d | tar -x
#      (same certificates, TLS 1.3),
#   3. a raw TCP copy (tar | socat -> socat | tar -x), the ceiling.
# Receivers write to a tmpfs (the transport is measured, not the disk).
# Prints throughput, bytes on the wire (veth counters) and ferry's peak RSS,
# then one line: RESULT case=transport ferry_mbps=... baseline_mbps=... ...
#   BENCH_MIB=2048 (total size)   BENCH_KEEP=1 (keep the image set in build/)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY="$ROOT/build/ferry" TESTS_ROOT="$ROOT/tests" TESTS_TMP="$ROOT/build/bench"
WIRETOOL="$ROOT/build/tests/tools/wiretool"
. "$TESTS_ROOT/lib/common.sh"
t_init transport
. "$TESTS_ROOT/lib/hosts.sh"
TOTAL_MIB=${BENCH_MIB:-2048}
CRIU=${FERRY_CRIU:-$(cat "$ROOT/.deps/criu-path")}

hosts_setup bench 90
h_certs "$T/certs" srv cli
srv=$(h_addr a)

# ---- the image set (cached in build/bench/set-MIB for later runs) ----
SET="$ROOT/build/bench/set-$TOTAL_MIB"
mkdir -p "$T/dst"
if [ ! -f "$SET/manifest.ferry" ]; then
	rm -rf "$SET"
	mkdir -p "$SET"
	PROC_MIB=$((TOTAL_MIB * 5 / 8)) # process pages; the rest is random data
	t_log "dumping a python3 process with ${PROC_MIB} MiB of zero, repeated, text and random pages"
	cat >"$T/mem.py" <<'PY'
import os, sys, time
mib = int(sys.argv[1]); q = mib // 4
zero = bytearray(q << 20)
for i in range(0, len(zero), 4096):
    zero[i] = 0                       # touched zero pages
pat = os.urandom(4096)
rep = bytearray(pat * ((q << 20) // 4096))  # one page repeated
rnd = bytearray(os.urandom(q << 20))  # random pages
text = bytearray(b"".join(b"page %08d of a text-like heap, some structure\n" % i
                          for i in range(((q << 20)) // 48)))
open(sys.argv[2], "w").write(str(os.getpid()))
while True:
    time.sleep(1)
PY
	python3 "$T/mem.py" "$PROC_MIB" "$T/py.ready" &
	pypid=$!
	disown "$pypid" # criu dump ends it: no job notice
	t_defer "kill -9 $pypid"
	t_wait_file "$T/py.ready" 120
	sleep 0.5
	"$CRIU" dump -t "$pypid" -D "$SET" --shell-job -o dump.log >/dev/null 2>&1 ||
		{ tail -20 "$SET/dump.log"; t_fail "criu dump failed"; }
	rm -f "$SET/dump.log"
	have=$(du -sm "$SET" | cut -f1)
	rest=$((TOTAL_MIB - have))
	((rest > 0)) && head -c $((rest << 20)) /dev/urandom >"$SET/random.img"
	"$WIRETOOL" mkset "$SET" bench >/dev/null
fi
RAW=$(du -sb --exclude=manifest.ferry "$SET" | cut -f1)
t_log "image set: $(du -sh "$SET" | cut -f1), $RAW bytes, $(ls "$SET" | wc -l) files"
cat "$SET"/* >/dev/null # warm the page cache for every method alike

mount -t tmpfs -o size=$((TOTAL_MIB * 3))m tmpfs "$T/dst"
t_defer "umount -l $T/dst"
# The first write to fresh memory is slow on a VM (the hypervisor backs guest
# pages on first touch): touch as much as one received set needs before any
# method runs, so the first method measured does not pay for the others.
head -c $((TOTAL_MIB + 256))M /dev/zero >"$T/dst/warm"
rm -f "$T/dst/warm"

wire() { # bytes sent + received on host b's veth
	local d=/sys/class/net/$H_VB/statistics
	echo $(($(h_exec b cat $d/tx_bytes) + $(h_exec b cat $d/rx_bytes)))
}
now() { date +%s.%N; }
mbps() { awk -v b="$1" -v t="$2" 'BEGIN{printf "%.1f", b / t / 1e6}'; }

# Each method runs BENCH_RUNS times (default 3), in rotation, and the median
# time counts: the machine may be shared, single runs vary by +-20%.
RUNS=${BENCH_RUNS:-3}
SEND_RSS=0 SERVE_RSS=0

run_ferry() { # seconds in DT, wire bytes in W
	h_serve a "$T/dst/ferry-state" "$T/certs" srv --json
	local spid=$H_PID w0 t0 t1 w1 r s
	w0=$(wire)
	t0=$(now)
	h_exec b /usr/bin/time -v -o "$T/send.time" "$FERRY" send "$SET" --to "$srv:7000" \
		--tls "$T/certs" --name cli --peer srv --json >"$T/send.json"
	t1=$(now)
	w1=$(wire)
	s=$(awk '/VmHWM/{print $2}' /proc/$spid/status)
	r=$(awk -F': ' '/Maximum resident/{print $2}' "$T/send.time")
	((r > SEND_RSS)) && SEND_RSS=$r
	((s > SERVE_RSS)) && SERVE_RSS=$s
	local id
	id=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["set_id"])' "$T/send.json")
	cmp -s "$SET/pages-1.img" "$T/dst/ferry-state/sets/cli/$id/pages-1.img" || t_fail "ferry: set differs"
	kill "$spid"
	wait "$spid" || true
	rm -rf "$T/dst/ferry-state"
	W=$((w1 - w0))
	DT=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
}

run_base() { # tar | lz4 | openssl s_client -> s_server | lz4 -d | tar -x
	local w0 t0 t1 w1 bpid
	mkdir -p "$T/dst/base"
	h_spawn a "$T/base-srv.log" bash -c "openssl s_server -accept 7001 -tls1_3 -naccept 1 \
		-quiet -cert '$T/certs/srv.pem' -key '$T/certs/srv.key' -CAfile '$T/certs/ca.pem' \
		-Verify 1 < <(sleep 100000) | lz4 -d | tar -x -C '$T/dst/base'"
	bpid=$H_PID
	sleep 0.5
	w0=$(wire)
	t0=$(now)
	# s_client drops what it has not written yet when its input ends: hold the
	# input open 0.5 s after the data (subtracted from the time below)
	h_exec b bash -c "{ tar -c -C '$SET' . | lz4 -1; sleep 0.5; } | openssl s_client \
		-connect $srv:7001 -tls1_3 -cert '$T/certs/cli.pem' -key '$T/certs/cli.key' \
		-CAfile '$T/certs/ca.pem' -verify_hostname srv -quiet -no_ign_eof -nocommands \
		>/dev/null 2>'$T/base-cli.log'"
	wait "$bpid" || true
	t1=$(now)
	w1=$(wire)
	cmp -s "$SET/pages-1.img" "$T/dst/base/pages-1.img" || t_fail "baseline: set differs"
	rm -rf "$T/dst/base"
	W=$((w1 - w0))
	DT=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a-0.5}')
}

run_raw() { # tar | socat -> socat | tar -x: the ceiling
	local w0 t0 t1 w1 rpid
	mkdir -p "$T/dst/raw"
	h_spawn a "$T/raw-srv.log" bash -c "socat -b 1048576 -u TCP-LISTEN:7002,reuseaddr - | \
		tar -x -b 512 -C '$T/dst/raw'"
	rpid=$H_PID
	sleep 0.5
	w0=$(wire)
	t0=$(now)
	h_exec b bash -c "tar -c -b 512 -C '$SET' . | socat -b 1048576 -u - TCP:$srv:7002"
	wait "$rpid" || true
	t1=$(now)
	w1=$(wire)
	cmp -s "$SET/pages-1.img" "$T/dst/raw/pages-1.img" || t_fail "raw: set differs"
	rm -rf "$T/dst/raw"
	W=$((w1 - w0))
	DT=$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')
}

median() { tr ' ' '\n' | sort -n | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }

F_T=() B_T=() R_T=()
for ((i = 1; i <= RUNS; i++)); do
	run_ferry
	F_T+=("$DT") FERRY_WIRE=$W
	run_base
	B_T+=("$DT") BASE_WIRE=$W
	run_raw
	R_T+=("$DT") RAW_WIRE=$W
	t_log "run $i: ferry ${F_T[-1]} s, baseline ${B_T[-1]} s, raw ${R_T[-1]} s"
done
FERRY_S=$(echo "${F_T[*]}" | median)
BASE_S=$(echo "${B_T[*]}" | median)
RAW_S=$(echo "${R_T[*]}" | median)
FERRY_MBPS=$(mbps "$RAW" "$FERRY_S")
BASE_MBPS=$(mbps "$RAW" "$BASE_S")
RAW_MBPS=$(mbps "$RAW" "$RAW_S")
cat "$T/send.json"

RSS_KB=$((SEND_RSS > SERVE_RSS ? SEND_RSS : SERVE_RSS))
RSS_MIB=$(awk -v k="$RSS_KB" 'BEGIN{printf "%.1f", k/1024}')
printf '%-10s %9s %10s %14s\n' method seconds MB/s wire_bytes
printf '%-10s %9.2f %10s %14s\n' ferry "$FERRY_S" "$FERRY_MBPS" "$FERRY_WIRE"
printf '%-10s %9.2f %10s %14s\n' baseline "$BASE_S" "$BASE_MBPS" "$BASE_WIRE"
printf '%-10s %9.2f %10s %14s\n' raw-tcp "$RAW_S" "$RAW_MBPS" "$RAW_WIRE"
echo "ferry peak RSS (VmHWM / max RSS): send $((SEND_RSS / 1024)) MiB, serve $((SERVE_RSS / 1024)) MiB"
awk -v f="$FERRY_MBPS" -v b="$BASE_MBPS" -v r="$RAW_MBPS" \
	'BEGIN{printf "ferry/baseline %.2fx (goal >= 1.5), ferry/raw %.2fx (goal >= 0.8)\n", f/b, f/r}'
echo "RESULT case=transport ferry_mbps=$FERRY_MBPS baseline_mbps=$BASE_MBPS raw_mbps=$RAW_MBPS wire_bytes=$FERRY_WIRE rss_mib=$RSS_MIB"
[ -n "${BENCH_KEEP:-}" ] && KEEP_TMP=1
exit 0
