#!/bin/bash
# `ferry dump` saves established TCP connections by default (as `migrate`
# does): a TCP server tenant with one client connection on the host is dumped
# without any option, restored, and the client's connection goes on (no
# reset, nothing lost). --no-tcp-established opts out: the dump then fails
# with CRIU's reason and the tenant keeps running.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_dump_tcp
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_tcp_server tcp_client

NAME=bd-tcp
ADDR=10.202.0.41
R="$T/rootfs"
C="$T/client"
ip route add blackhole 10.202.0.40/30 2>/dev/null || true
t_defer "ip route del blackhole 10.202.0.40/30"

cr_start "$NAME" "$R" --net "$ADDR/24" --host-only -- /bin/wl_tcp_server --port 7000
mkdir -p "$C"
WL_DIR=$C "$WORKLOADS/tcp_client" --addr "$ADDR" --port 7000 --interval-ms 20 \
	>"$C/out" 2>"$C/err" </dev/null &
CPID=$!
t_defer "kill -9 $CPID"
t_wait_file "$C/client.ready" 20
sleep 0.3

t_log "--no-tcp-established: refused by CRIU, the tenant runs on"
pid=$(cr_pid "$NAME")
t_expect_fail '*' "dump" "$FERRY" dump "$NAME" -D "$T/img0" --no-tcp-established
grep -qi "established\|tcp" "$T/err" || t_fail "the refusal does not say it is about TCP"
[ "$(cr_state "$NAME")" = running ] && [ "$(cr_pid "$NAME")" = "$pid" ] || t_fail "tenant not running after a refused dump"

t_log "no option: the connection is saved"
cr_dump_restore "$NAME" "$T/img"
sleep 1
cr_verify "$NAME" "$R"
kill -USR1 "$CPID"
t_wait_file "$C/client.result" 20
res=$(cat "$C/client.result")
t_log "tcp_client: $res"
[[ "$res" == PASS* ]] || { cat "$C/err"; t_fail "tcp_client says '$res'"; }
echo PASS
