#!/bin/bash
# A TCP server inside a container tenant with its own address; tcp_client on
# the host keeps ONE connection open across dump and restore
# (--tcp-established, network locked through nftables, veth re-plumbed).
. "$TESTS_ROOT/lib/common.sh"
t_init cr_tcp
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_tcp_server tcp_client

NAME=cr-tcp
ADDR=10.202.0.21
R="$T/rootfs"
C="$T/client"
# While the tenant is dumped its /32 route is gone: keep the client's
# retransmissions on this host instead of the default route.
ip route add blackhole 10.202.0.0/24 2>/dev/null || true
t_defer "ip route del blackhole 10.202.0.0/24"

cr_start "$NAME" "$R" --net "$ADDR/24" --host-only -- /bin/wl_tcp_server --port 7000
mkdir -p "$C"
WL_DIR=$C "$WORKLOADS/tcp_client" --addr "$ADDR" --port 7000 --interval-ms 20 \
	>"$C/out" 2>"$C/err" </dev/null &
CPID=$!
t_defer "kill -9 $CPID"
t_wait_file "$C/client.ready" 20
sleep 0.5

cr_dump_restore "$NAME" "$T/img" --tcp-established
sleep 1
cr_verify "$NAME" "$R"
kill -USR1 "$CPID"
t_wait_file "$C/client.result" 20
res=$(cat "$C/client.result")
t_log "tcp_client: $res"
[[ "$res" == PASS* ]] || { cat "$C/err"; t_fail "tcp_client says '$res'"; }
