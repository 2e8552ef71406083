#!/bin/bash
# Snapshot benchmark (docs/snapshots.md): a container tenant with BENCH_MIB of
# touched memory (wl_memory; a third zero pages, a third pattern pages, a
# third random) that rewrites BENCH_BURST_PCT % of its pages (random ones)
# right before each snapshot (a SIGUSR2 burst, done when it says so), or,
# with BENCH_BURST_PCT=0, random pages at a steady BENCH_DIRTY MiB/s; BENCH_N
# snapshots into the store, BENCH_GAP seconds apart; after each, in the same
# run, the baselines: a plain CRIU dump to disk of the same tenant (`ferry
# dump --leave-running`: CRIU through the same backend, no store) for frozen
# time and bytes, and `restic backup` of that image directory (the same path
# each time) for deduplication. Then a rollback to the BENCH_N/2-th snapshot,
# which the workload checks.
#   BENCH_MIB (1024)  BENCH_N (10)  BENCH_BURST_PCT (1)  BENCH_DIRTY (MiB/s,
#   with no burst; default: 1% of the memory per BENCH_GAP)  BENCH_GAP (5)
#   BENCH_DIR (/tmp)
#   BENCH_PAGE_CHUNK (4 KiB: the store's page chunk)
#   BENCH_FILES_MIB (200): files of the tenant's own (1 MiB each, random),
#   1% of them rewritten before each snapshot
# With bursts, what changes between two snapshots is the burst (dirtied_est
# = its bytes); at a steady rate it is rate x the cycle's time (sleep +
# snapshot + baselines): each line says the cycle's seconds and that estimate.
# The tenant's files (its --rootfs tree) are in every snapshot; the plain
# dump has memory only (CRIU's baseline for frozen time), restic backs up the
# image directory and the tree (the dedup baseline for the same data).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FERRY="$ROOT/build/ferry"
WORKLOADS="$ROOT/build/tests/workloads"
MIB=${BENCH_MIB:-1024}
N=${BENCH_N:-10}
GAP=${BENCH_GAP:-5}
FILES=${BENCH_FILES_MIB:-200}
BURST=${BENCH_BURST_PCT:-1}
if ((BURST > 0)); then
	DIRTY=${BENCH_DIRTY:-0}
else
	DIRTY=${BENCH_DIRTY:-$(((MIB + 99) / 100 / GAP > 0 ? (MIB + 99) / 100 / GAP : 1))}
fi
W=$(mktemp -d "${BENCH_DIR:-/tmp}/ferry-bench-snap.XXXXXX")
export FERRY_STATE_DIR="$W/state" RESTIC_PASSWORD=bench TZ=UTC
R="$W/rootfs" name=bench-snap
S=(--store "$W/store" --key-file "$W/key")

cleanup() {
	set +e
	"$FERRY" kill "$name" >/dev/null 2>&1
	"$FERRY" rm "$name" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
[ -x "$FERRY" ] && [ -x "$WORKLOADS/wl_memory" ] || {
	echo "bench: build first (make test-bins)" >&2
	exit 1
}
command -v restic >/dev/null || { echo "bench: restic missing (make deps)" >&2; exit 1; }
mkdir -p "$R"/{bin,proc,dev,tmp,sys,etc,data}
for f in $(seq "$FILES"); do head -c 1048576 /dev/urandom >"$R/data/f$f"; done
cp /bin/busybox "$R/bin/busybox"
# its own name: a test runner elsewhere on the machine kills wl_* processes
cp "$WORKLOADS/wl_memory" "$R/bin/benchwl_snap"
"$FERRY" snapshot init "${S[@]}" --page-chunk "${BENCH_PAGE_CHUNK:-4}" >/dev/null
restic init --repo "$W/restic" -q
# isolated by default, with a 1G memory limit: room for the workload
"$FERRY" run "$name" --rootfs "$R" --memory "$((MIB + 512))M" -- /bin/benchwl_snap --mib "$MIB" --dirty "$DIRTY" \
	--burst-pct "$BURST" >/dev/null
for _ in $(seq 1800); do [ -e "$R/tmp/wl.ready" ] && break; sleep 0.1; done
[ -e "$R/tmp/wl.ready" ] || { echo "bench: workload not ready" >&2; exit 1; }
echo "bench: $MIB MiB tenant with $FILES MiB of files, $N snapshots ${GAP}s apart, dirtying" \
	"$BURST% of its memory before each and $DIRTY MiB/s"
wl_pid() {
	"$FERRY" ps --json | python3 -c 'import json,sys; print([t["pid"] for t in json.load(sys.stdin)["tenants"] if t["name"]==sys.argv[1]][0])' "$name"
}
# a burst of BURST% of the memory, waited for (the workload counts them)
burst() {
	((BURST > 0)) || return 0
	kill -USR2 "$(wl_pid)"
	for _ in $(seq 600); do
		[ "$(cat "$R/tmp/wl.bursts" 2>/dev/null)" = "$1" ] && return 0
		sleep 0.1
	done
	echo "bench: burst $1 not done" >&2
	exit 1
}

jget() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }
bytes() { du -sb "$1" | cut -f1; }
SETTLE=${BENCH_SETTLE:-3}
snap_run() {
	sync
	sleep "$SETTLE"
	"$FERRY" snapshot create "$name" "${S[@]}" --json >"$W/c.json"
	ids+=("$(jget "$W/c.json" id)")
	fr=$(jget "$W/c.json" frozen_ms) added=$(jget "$W/c.json" added)
	fsfr=$(jget "$W/c.json" fs_frozen_ms) fspre=$(jget "$W/c.json" fs_pre_ms)
	store_ms=$(jget "$W/c.json" store_ms)
	drain_ms=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['stream']['drain_ms'])" "$W/c.json")
	tenant_bytes=$(jget "$W/c.json" size)
	store=$(bytes "$W/store")
}
dump_run() {
	rm -rf "$W/img"
	sync
	sleep "$SETTLE"
	"$FERRY" dump "$name" --leave-running -D "$W/img" --json >"$W/d.json"
	cfr=$(jget "$W/d.json" frozen_ms) cbytes=$(jget "$W/d.json" size)
}
ids=() tenant_bytes=0 max_pct=0 sum_fr=0 sum_cr=0 prev_store=0 prev_restic=0
t_prev=$(date +%s.%N)
for i in $(seq "$N"); do
	sleep "$GAP"
	# 1% of the files change (whole files rewritten)
	for _ in $(seq $(((FILES + 99) / 100))); do
		((FILES > 0)) && head -c 1048576 /dev/urandom >"$R/data/f$((RANDOM % FILES + 1))"
	done
	burst "$i"
	now=$(date +%s.%N)
	cycle=$(python3 -c "print(round($now - $t_prev, 1))")
	t_prev=$now
	# Equal conditions for both dumps (docs/snapshots.md, "Frozen time"):
	# each starts from a clean page cache, BENCH_SETTLE s after the last
	# large free (a VM's freed memory is reported to its host after ~2 s and
	# costs a fault per page when touched again), and the order alternates.
	if ((i % 2)); then snap_run; dump_run; else dump_run; snap_run; fi
	restic backup --repo "$W/restic" -q "$W/img" "$R" >/dev/null
	rest=$(bytes "$W/restic")
	est=$(python3 -c "print(int($DIRTY * 1048576 * $cycle + $MIB * 1048576 * $BURST // 100))")
	echo "RESULT case=snapshot n=$i first=$([ $((i % 2)) = 1 ] && echo snapshot || echo criu_dump) frozen_ms=$fr fs_frozen_ms=$fsfr fs_pre_ms=$fspre store_ms=$store_ms drain_ms=$drain_ms added=$added store_disk_added=$((store - prev_store)) store_total=$store cycle_s=$cycle dirtied_est=$est"
	echo "RESULT case=criu_dump n=$i frozen_ms=$cfr bytes=$cbytes"
	echo "RESULT case=restic n=$i added=$((rest - prev_restic)) repo_total=$rest"
	if ((i > 1)); then
		pct=$(python3 -c "print(round(100.0 * $added / $tenant_bytes, 2))")
		max_pct=$(python3 -c "print(max($max_pct, $pct))")
		sum_fr=$(python3 -c "print($sum_fr + $fr)")
		sum_cr=$(python3 -c "print($sum_cr + $cfr)")
	fi
	prev_store=$store prev_restic=$rest
done
back=${ids[$((N / 2 - 1))]}
rm -f "$R/tmp/wl.result"
"$FERRY" snapshot restore "$back" "${S[@]}" --json >"$W/r.json"
pid=$(wl_pid)
sleep 1
kill -USR1 "$pid"
for _ in $(seq 600); do [ -s "$R/tmp/wl.result" ] && break; sleep 0.1; done
res=$(cat "$R/tmp/wl.result" 2>/dev/null || echo none)
echo "RESULT case=rollback snapshot=$((N / 2)) restore_ms=$(jget "$W/r.json" total_ms) selfcheck=$res"
ratio=$(python3 -c "print(round($sum_fr / $sum_cr, 2) if $sum_cr else 0)")
echo "RESULT case=summary tenant_bytes=$tenant_bytes max_incr_pct=$max_pct frozen_ratio_vs_criu=$ratio store_total=$prev_store restic_total=$prev_restic selfcheck=$res"
