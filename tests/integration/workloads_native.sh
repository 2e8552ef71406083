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
wl_run wl_file 0.5
wl_run wl_pipe 0.5
wl_run wl_unix 0.5
wl_run wl_threads 0.3 --threads 6
wl_run wl_timer 0.5

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

t_log "wl_file: file truncated from outside"
wl_start wl_file "$T/file-broken"
truncate -s 1000 "$T/file-broken/wl_file.data"
wl_verify wl_file "$T/file-broken" "$PID" FAIL

for w in wl_pipe wl_unix; do
	t_log "$w: child killed"
	wl_start $w "$T/$w-broken"
	child=$(pgrep -P "$PID")
	[ -n "$child" ] || t_fail "$w has no child"
	kill -9 "$child"
	sleep 0.2
	wl_verify $w "$T/$w-broken" "$PID" FAIL
done

# tcp: server + client on loopback, the server frozen for a while in the
# middle (as during a dump); verified in both orders.
PORT=$((17000 + RANDOM % 1000))
# tcp_start DIR: server then client in DIR; sets SPID, CPID.
tcp_start() {
	local dir=$1
	wl_start wl_tcp_server "$dir" --port $PORT
	SPID=$PID
	rm -f "$dir"/client.*
	WL_DIR=$dir "$WORKLOADS/tcp_client" --addr 127.0.0.1 --port $PORT --interval-ms 5 \
		>"$dir/cout" 2>"$dir/cerr" </dev/null &
	CPID=$!
	t_defer "kill -9 $CPID"
	t_wait_file "$dir/client.ready" 20
	grep -q '^READY$' "$dir/cout" || t_fail "tcp_client: no READY on stdout"
}

# client_verify DIR WANT
client_verify() {
	local dir=$1 want=$2 rc=0 res
	kill -USR1 $CPID
	wait $CPID || rc=$?
	res=$(cat "$dir/client.result" 2>/dev/null || echo "(no client.result)")
	t_log "tcp_client: $res (exit $rc)"
	grep -qxF "$res" "$dir/cout" || t_fail "tcp_client: result not printed on stdout"
	if [ "$want" = PASS ]; then
		[[ "$res" =~ ^PASS\ n=[1-9][0-9]*\ max_gap_ms=[0-9]+$ ]] && ((rc == 0)) ||
			{ cat "$dir/cerr"; t_fail "tcp_client: expected PASS, got '$res' exit $rc"; }
	else
		[[ "$res" == "FAIL: "* ]] && ((rc == 1)) || t_fail "tcp_client: expected FAIL, got '$res'"
	fi
}

t_log "tcp: server frozen 1 s, then client verified first"
tcp_start "$T/tcp1"
sleep 0.3
kill -STOP $SPID
sleep 1
kill -CONT $SPID
sleep 0.3
client_verify "$T/tcp1" PASS
gap=$(sed -n 's/.*max_gap_ms=//p' "$T/tcp1/client.result")
((gap >= 900)) || t_fail "tcp_client: max_gap_ms=$gap does not show the 1 s freeze"
wl_verify wl_tcp_server "$T/tcp1" $SPID PASS

t_log "tcp: server verified first"
tcp_start "$T/tcp2"
sleep 0.3
wl_verify wl_tcp_server "$T/tcp2" $SPID PASS
client_verify "$T/tcp2" PASS

t_log "tcp: a second connection (a reconnecting client) fails the server"
tcp_start "$T/tcp3"
exec 7<>/dev/tcp/127.0.0.1/$PORT
sleep 0.2
exec 7>&-
wl_verify wl_tcp_server "$T/tcp3" $SPID FAIL
client_verify "$T/tcp3" FAIL # the failed server left without BYE

t_log "tcp: client --duration-s 1 ends by itself and says BYE"
wl_start wl_tcp_server "$T/tcp5" --port $PORT
SPID=$PID
rc=0
WL_DIR=$T/tcp5 "$WORKLOADS/tcp_client" --addr 127.0.0.1 --port $PORT --duration-s 1 \
	>"$T/tcp5/cout" 2>&1 </dev/null || rc=$?
res=$(cat "$T/tcp5/client.result")
t_log "tcp_client: $res (exit $rc)"
[[ "$res" == "PASS n="* ]] && ((rc == 0)) || t_fail "tcp_client --duration-s: '$res' exit $rc"
wl_verify wl_tcp_server "$T/tcp5" $SPID PASS

t_log "tcp: the server dies: the client fails"
tcp_start "$T/tcp4"
kill -9 $SPID
sleep 0.2
client_verify "$T/tcp4" FAIL

# As PID 1 of a PID namespace (as in a container): only SIGUSR1 with a
# handler reaches it from outside, and it must reap its own children.
for w in wl_pipe wl_threads; do
	t_log "$w as PID 1 of a new PID namespace"
	dir=$T/pid1-$w
	mkdir -p "$dir"
	WL_DIR=$dir unshare --pid --fork --mount-proc --kill-child "$WORKLOADS/$w" \
		>"$dir/out" 2>"$dir/err" </dev/null &
	U=$!
	t_defer "kill -9 $U"
	t_wait_file "$dir/wl.ready" 20
	[ "$(cat "$dir/wl.ready")" = 1 ] || t_fail "$w: not PID 1 in its namespace"
	P=$(pgrep -P $U)
	kill -USR1 "$P"
	rc=0
	wait $U || rc=$?
	res=$(cat "$dir/wl.result" 2>/dev/null || echo "(no wl.result)")
	t_log "$w: $res (exit $rc)"
	[ "$res" = PASS ] && ((rc == 0)) || { cat "$dir/err"; t_fail "$w as PID 1: '$res' exit $rc"; }
done
