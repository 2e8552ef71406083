#!/bin/bash
# Every self-checking workload migrated a -> b in stop-copy and passing its
# self-check there: memory (256 MiB), file, pipe, unix, threads, timer.
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_workloads
. "$TESTS_ROOT/lib/cr.sh"
cr_require
WLS=${WLS:-"wl_memory wl_file wl_pipe wl_unix wl_threads wl_timer"}
cr_need_wl $WLS
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup wl
mh_serve a
mh_serve b
for w in $WLS; do
	args=()
	[ "$w" = wl_memory ] && args=(--mib 256 --dirty 8)
	mh_start a "mw-$w" "$T/r-$w" -- "/bin/$w" ${args[@]+"${args[@]}"}
done
sleep 0.5
for w in $WLS; do
	mh_migrate a b "mw-$w" --timeout ${MIG_TIMEOUT:-60} --json >"$T/$w.json" || {
		cat "$T/$w.json"
		tail -n 20 "$T/serve-b.log"
		t_fail "migration of $w failed"
	}
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("--", d["tenant"], "downtime_ms", round(d["downtime_ms"],1), "raw", d["raw_bytes"], "wire", d["wire_bytes"])' "$T/$w.json"
	mh_check_one b "mw-$w"
done
sleep 0.5
for w in $WLS; do
	mh_verify b "mw-$w" "$T/r-$w"
done
