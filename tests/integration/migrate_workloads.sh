#!/bin/bash
# Every self-checking workload migrated a -> b in every mode this host
# supports, passing its self-check there: memory, file, pipe, unix, threads,
# timer; after each move exactly one host runs it (mh_assert_one_host).
# Stop-copy always; post-copy where userfaultfd works (with
# --tune-host: the pipe sysctls are put back when the test ends); pre-copy
# has its own test (migrate_precopy).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_workloads
. "$TESTS_ROOT/lib/cr.sh"
cr_require
WLS=${WLS:-"wl_memory wl_file wl_pipe wl_unix wl_threads wl_timer"}
cr_need_wl $WLS
. "$TESTS_ROOT/lib/mhosts.sh"

MODES=${MODES:-"stop-copy post-copy"}
if [[ " $MODES " == *" post-copy "* ]] && ! mh_postcopy_ok; then
	t_log "post-copy not checked: no userfaultfd here (ferry check)"
	MODES=${MODES/post-copy/}
fi
mh_keep_pipe_sysctls

mh_setup wl
mh_serve a
mh_serve b

# one round: start every workload on a (name prefix $1), move each to b in
# mode $2, then ask each for its self-check on b
round() {
	local p=$1 mode=$2 w args extra=()
	[ "$mode" = post-copy ] && extra=(--tune-host)
	for w in $WLS; do
		args=()
		[ "$w" = wl_memory ] && args=(--mib "${MIB:-256}" --dirty 8)
		mh_start a "$p-$w" "$T/$p-$w" -- "/bin/$w" ${args[@]+"${args[@]}"}
	done
	sleep 0.5
	for w in $WLS; do
		old=$(mh_pid a "$p-$w")
		mh_migrate a b "$p-$w" --mode "$mode" ${extra[@]+"${extra[@]}"} \
			--timeout ${MIG_TIMEOUT:-60} --json >"$T/$p-$w.json" || {
			cat "$T/$p-$w.json"
			tail -n 20 "$T/serve-b.log"
			t_fail "$mode migration of $w failed"
		}
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("--", d["mode"], d["tenant"], "downtime_ms", round(d["downtime_ms"],1), "raw", d["raw_bytes"], "wire", d["wire_bytes"])' "$T/$p-$w.json"
		mh_assert_one_host "$p-$w" a b "$old"
	done
	sleep 0.5
	for w in $WLS; do
		mh_verify b "$p-$w" "$T/$p-$w"
	done
}

for mode in $MODES; do
	case $mode in
	stop-copy) round mw stop-copy ;;
	post-copy) round pc post-copy ;;
	*) t_fail "unknown mode $mode" ;;
	esac
done
