#!/bin/bash
# Live-migration benchmark between two simulated hosts (tests/lib/mhosts.sh).
# A container tenant with BENCH_MIB (1024) MiB of memory (wl_memory, rewriting
# BENCH_DIRTY (8) MiB/s) is migrated a -> b by `ferry migrate` in every mode
# this host supports; baseline in the same run: `criu dump` to a tmpfs,
# `tar | lz4 | openssl s_client` to the other host (a small TLS receiver
# | lz4 -d | tar there), `criu restore` (its downtime is all of that). Peak RSS of
# ferry on both ends (VmHWM: the `ferry migrate` process; the destination
# agent's growth during the migration).
# Ends with lines: RESULT mode=... downtime_ms=... total_ms=...
#   baseline_downtime_ms=... src_rss_mib=... dst_rss_mib=... [pages_done_ms=...]
# (post-copy: downtime is freeze -> running on b, its goal <= 150 ms for
# 1 GiB; pages_done_ms: running on b -> last page sent, in the background).
# BENCH_MODES="post-copy" measures only those modes; BENCH_BASELINE=0 skips
# the baseline and staged runs (their ratios are then not printed);
# BENCH_LOGS=DIR keeps each mode's JSON report and the destination's CRIU logs.
# When stop-copy and pre-copy both ran, a row compares them (same run):
#   RESULT mode=pre-copy downtime_ms=... stopcopy_downtime_ms=... total_ms=...
#   rounds=... round_bytes=B1,B2,... final_bytes=... kernel=...
# Where this kernel cannot pre-copy (no soft-dirty), that row is measured in
# the test guest of `make check-kernels` (tests/kernel/guest.sh: Debian 12's
# kernel under QEMU/TCG), stop-copy and pre-copy in the same guest run, with a
# tenant sized for TCG's few MB/s: BENCH_GUEST_MIB (256) MiB rewriting
# BENCH_GUEST_DIRTY (1) MiB/s; BENCH_GUEST=0 skips it.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY="$ROOT/build/ferry" WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests" TESTS_TMP=${BENCH_DIR:-/dev/shm}/ferry-bench-migrate
MIB=${BENCH_MIB:-1024}
DIRTY=${BENCH_DIRTY:-8}
. "$TESTS_ROOT/lib/common.sh"
t_init bench
. "$TESTS_ROOT/lib/cr.sh"
cr_require
. "$TESTS_ROOT/lib/mhosts.sh"
CRIU=$CR_CRIU

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
rss_kib() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"; }

mh_setup bench
mh_serve a
mh_serve b
CMD=(/bin/wl_memory --mib "$MIB" --dirty "$DIRTY" --seed $((0x$MH_TOK)))

# one ferry migration a -> b of a fresh tenant; sets DOWN TOTAL SRC_MIB DST_MIB
ferry_run() {
	local mode=$1 name=bm-$1 r="$T/r-$1" base pid mpid peak=0 h old
	mh_start a "$name" "$r" -- "${CMD[@]}"
	old=$(mh_pid a "$name")
	sleep 1
	base=$(rss_kib "$MH_PID_b")
	mh_bg_migrate a b "$name" --mode "$mode" --tune-host --json
	mpid=$MH_MIG_PID
	while kill -0 "$mpid" 2>/dev/null; do
		h=$(hwm_kib "$mpid")
		((h > peak)) && peak=$h
		sleep 0.005
	done
	local rc=0
	wait "$MH_MIG" || rc=$?
	cp "$T/out" "$T/$mode.json"
	cp "$T/err" "$T/$mode.err"
	((rc == 0)) || {
		cat "$T/$mode.err" >&2
		return 1
	}
	mh_assert_one_host "$name" a b "$old" # (after the measurement)
	ROUNDS=$(python3 -c 'import json,sys; p=json.load(open(sys.argv[1])).get("precopy")
print("%d %s %d" % (len(p["rounds"]), ",".join(str(r["raw_bytes"]) for r in p["rounds"]), p["final"]["raw_bytes"]) if p else "- - -")' "$T/$mode.json")
	DOWN=$(jget "$T/$mode.json" downtime_ms)
	TOTAL=$(jget "$T/$mode.json" total_ms)
	# post-copy: when the last page reached the destination (after the resume)
	PDONE=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("pages_done_ms", "-"))' "$T/$mode.json")
	SRC_MIB=$(awk -v k="$peak" 'BEGIN {printf "%.1f", k / 1024}')
	DST_MIB=$(awk -v h="$(hwm_kib "$MH_PID_b")" -v b="$base" 'BEGIN {printf "%.1f", (h - b) / 1024}')
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("   stages_ms", d["stages_ms"], "raw", d["raw_bytes"], "wire", d["wire_bytes"])' "$T/$mode.json"
	# pre-copy: each round's bytes and time, the final dump's, why the rounds stopped
	python3 -c 'import json,sys; p=json.load(open(sys.argv[1])).get("precopy")
if p: print("   precopy rounds", [(r["raw_bytes"], round(r["ms"])) for r in p["rounds"]], "final", p["final"]["raw_bytes"], "stop", p["stop_reason"])' "$T/$mode.json"
	if [ -n "${BENCH_LOGS:-}" ]; then
		mkdir -p "$BENCH_LOGS"
		cp "$T/$mode.json" "$BENCH_LOGS/" || true
		cp "$T/state-b/tenants/$name/"*.log "$BENCH_LOGS/" 2>/dev/null || true
	fi
	mh_ferry b kill "$name" >/dev/null
	mh_ferry b rm "$name" >/dev/null
}

# baseline: criu dump to tmpfs, tar | lz4 | openssl to b, criu restore there
baseline() {
	local r="$T/r-base" pid img="$T/base-img" rx="$T/base-rx" t0 t1
	mh_start a bm-base "$r" -- "${CMD[@]}"
	pid=$(mh_pid a bm-base)
	mkdir -p "$img" "$rx"
	sleep 1
	# receiver: TLS server (mutual auth) writing what arrives to stdout
	cat >"$T/rx.py" <<'PY'
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[2], sys.argv[3])
ctx.load_verify_locations(sys.argv[4])
ctx.verify_mode = ssl.CERT_REQUIRED
ls = socket.create_server((sys.argv[1], 7443))
c, _ = ls.accept()
s = ctx.wrap_socket(c, server_side=True)
out = sys.stdout.buffer
while True:
    try:
        b = s.recv(1 << 20)
    except ssl.SSLEOFError:
        break
    if not b:
        break
    out.write(b)
out.flush()
PY
	mh_exec b sh -c "python3 '$T/rx.py' $(mh_addr b) '$T/certs/b.pem' '$T/certs/b.key' \
		'$T/certs/ca.pem' | lz4 -d -q | tar -x -C '$rx'" &
	local spid=$!
	sleep 0.5
	t0=$(now_ms)
	mh_exec a "$CRIU" dump -t "$pid" -D "$img" --network-lock nftables --file-locks -v4 -o dump.log
	tar -C "$img" -cf - . | lz4 -1 -q | mh_exec a openssl s_client -connect "$(mh_addr b):7443" \
		-quiet -no_ign_eof -nocommands -cert "$T/certs/a.pem" -key "$T/certs/a.key" \
		-CAfile "$T/certs/ca.pem" >/dev/null 2>&1
	wait "$spid"
	mh_exec b "$CRIU" restore -D "$rx" --root "$r" -d --network-lock nftables --file-locks \
		-v4 -o restore.log --pidfile "$rx/restored.pid"
	t1=$(now_ms)
	BASE=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	mh_exec b kill -9 "$(cat "$rx/restored.pid")"
	mh_ferry a rm bm-base >/dev/null 2>&1 || true
	rm -rf "$img" "$rx"
}

# alternative: ferry's own stages one after the other, memory staged on the
# source (ferry dump to tmpfs, ferry send, ferry restore): what streaming saves
staged() {
	local r="$T/r-staged" img="$T/staged-img" t0 t1 id
	mh_start a bm-staged "$r" -- "${CMD[@]}"
	sleep 1
	t0=$(now_ms)
	mh_ferry a dump bm-staged -D "$img" --tcp-established --json >"$T/staged.json"
	mh_ferry a send "$img" --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
		>/dev/null
	id=$(jget "$T/staged.json" set_id)
	mh_ferry b restore -D "$T/state-b/sets/$id" >/dev/null
	t1=$(now_ms)
	STAGED=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	mh_ferry b kill bm-staged >/dev/null
	mh_ferry b rm bm-staged >/dev/null
	rm -rf "$T/state-b/sets/$id"
	mh_ferry a rm bm-staged >/dev/null 2>&1 || true
	rm -rf "$img"
}

echo "tenant: container, wl_memory --mib $MIB --dirty $DIRTY; CRIU $("$CRIU" --version | head -1)"
# ferry first: a restore right after another 1 GiB tenant was torn down ran
# several times slower here, whichever tool came second
results=()
for mode in ${BENCH_MODES:-stop-copy pre-copy post-copy}; do
	if ! ferry_run "$mode" 2>"$T/why"; then
		why=$(tail -n 1 "$T/$mode.err" 2>/dev/null || cat "$T/why")
		echo "$mode: not available here: $why"
		echo "RESULT mode=$mode skipped=1"
		mh_ferry a kill "bm-$mode" >/dev/null 2>&1 || true
		mh_ferry a rm "bm-$mode" >/dev/null 2>&1 || true
		continue
	fi
	echo "$mode: downtime $DOWN ms, total $TOTAL ms;" \
		"peak RSS: source ferry $SRC_MIB MiB, destination agent +$DST_MIB MiB"
	results+=("$mode $DOWN $TOTAL $SRC_MIB $DST_MIB $PDONE $ROUNDS")
done
BASE=- STAGED=-
if [ "${BENCH_BASELINE:-1}" != 0 ]; then
	baseline
	echo "baseline (criu dump + tar|lz4|openssl + criu restore): downtime = total = $BASE ms"
	staged
	echo "staged ferry stages (dump to tmpfs, send, restore): downtime = total = $STAGED ms"
fi
sc_down=- pc_row=
for line in "${results[@]}"; do
	read -r mode d t s ds pd nr rb fb <<<"$line"
	[ "$mode" = stop-copy ] && sc_down=$d
	[ "$mode" = pre-copy ] && pc_row="downtime_ms=$d STOPCOPY total_ms=$t rounds=$nr round_bytes=$rb final_bytes=$fb"
	ratio=$(awk -v d="$d" -v b="$BASE" 'BEGIN {if (b + 0 > 0) printf "%.2f", d / b; else print "-"}')
	echo "RESULT mode=$mode downtime_ms=$d total_ms=$t baseline_downtime_ms=$BASE ratio=$ratio" \
		"staged_downtime_ms=$STAGED src_rss_mib=$s dst_rss_mib=$ds" \
		"$([ "$pd" = - ] || echo "pages_done_ms=$pd")"
done
if [ -n "$pc_row" ] && [ "$sc_down" != - ]; then
	echo "RESULT mode=pre-copy ${pc_row/STOPCOPY/stopcopy_downtime_ms=$sc_down} kernel=$(uname -r)"
elif [ -z "$pc_row" ] && [ -z "${BENCH_IN_GUEST:-}" ] && [ "${BENCH_GUEST:-1}" != 0 ]; then
	# no pre-copy here: its row from the second kernel, against stop-copy there
	echo "pre-copy: measured in the test guest (Debian 12's kernel, QEMU/TCG)"
	bash "$ROOT/tests/kernel/guest.sh" --out "$ROOT/build/kernel/bench" --timeout 3600 -- \
		env BENCH_IN_GUEST=1 BENCH_MODES="stop-copy pre-copy" BENCH_BASELINE=0 \
		BENCH_MIB="${BENCH_GUEST_MIB:-256}" BENCH_DIRTY="${BENCH_GUEST_DIRTY:-1}" \
		bash tests/bench/bench-migrate.sh 2>&1 | tee "$T/guest.out" | sed -u 's/^/   guest| /' || true
	grep '^RESULT mode=pre-copy .*kernel=' "$T/guest.out" ||
		echo "RESULT mode=pre-copy skipped=1 (the guest run failed: build/kernel/bench/)"
fi
