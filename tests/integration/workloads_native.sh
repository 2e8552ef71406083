#!/bin/bash
# The workload protocol (tests/workloads/README.md) without CRIU: each
# workload runs as a plain process, gets ready, is asked to verify and must
# say PASS; where it is cheap, its state is broken from outside first and it
# must say FAIL. This proves the workloads' own logic, which every
# dump/restore test relies on.
. "$TESTS_ROOT/lib/common.sh"
t_init workloads_native

[ -x "$WORKLOADS/wl_counter" ] || t_skip "workloads not built (make test-bins)"

# wl_start NAME DIR [ARGS...]: start workload NAME with WL_DIR=DIR; sets PID.
wl_start() {
	local name=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	rm -f "$dir"/wl.ready "$dir"/wl.result
	WL_DIR=$dir "$WORKLOADS/$name" "$@" >"$dir/out" 2>"$dir/err" </dev/null &
	PID=$!
	t_defer "kill -9 $PID"
	t_wait_file "$dir/wl.ready" 20
	[ "$(cat "$dir/wl.ready")" = "$PID" ] || t_fail "$name: wl.ready does not hold its pid $PID"
}

# wl_verify NAME DIR PID WANT: ask for verification; WANT is PASS or FAIL.
wl_verify() {
	local name=$1 dir=$2 pid=$3 want=$4 rc=0
	kill -USR1 "$pid"
	wait "$pid" || rc=$?
	local res
	res=$(cat "$dir/wl.result" 2>/dev/null || echo "(no wl.result)")
	t_log "$name: $res (exit $rc)"
	grep -q '^READY$' "$dir/out" || t_fail "$name: no READY on stdout"
	if [ "$want" = PASS ]; then
		[ "$res" = PASS ] && ((rc == 0)) || { cat "$dir/err"; t_fail "$name: expected PASS, got '$res' exit $rc"; }
	else
		[[ "$res" == "FAIL: "* ]] && ((rc == 1)) || { cat "$dir/err"; t_fail "$name: expected FAIL, got '$res' exit $rc"; }
	fi
	grep -qxF "$res" "$dir/out" || t_fail "$name: result not printed on stdout"
}

# wl_run NAME WAIT_S [ARGS...]: start, let it work WAIT_S seconds, expect PASS.
wl_run() {
	local name=$1 wait_s=$2
	shift 2
	wl_start "$name" "$T/$name" "$@"
	sleep "$wait_s"
	wl_verify "$name" "$T/$name" "$PID" PASS
}

# Verification asked at once after ready, and after some running.
wl_run wl_memory 0 --mib 64
wl_run wl_memory 1 --mib 64 --dirty 20
wl_run wl_counter 0.5 --interval-ms 50

# Broken states must FAIL.
t_log "wl_memory: one byte changed through /proc/PID/mem"
wl_start wl_memory "$T/mem-broken" --mib 16
base=$(sed -n 's/^wl_memory: .* at 0x\([0-9a-f]*\)$/\1/p' "$T/mem-broken/err")
[ -n "$base" ] || t_fail "wl_memory did not print its base address"
printf 'X' | dd of=/proc/$PID/mem bs=1 seek=$((16#$base + 16 * 4096 + 100)) conv=notrunc status=none
wl_verify wl_memory "$T/mem-broken" "$PID" FAIL

t_log "wl_counter: started again in the same directory (a restart)"
wl_start wl_counter "$T/counter-restart" --interval-ms 50
wl_verify wl_counter "$T/counter-restart" "$PID" PASS
wl_start wl_counter "$T/counter-restart" --interval-ms 50
wl_verify wl_counter "$T/counter-restart" "$PID" FAIL
