#!/bin/bash
# One tenant (a TCP server) migrated back and forth 20 times between a and b
# while tcp_client on host c exchanges requests over ONE connection the whole
# time: no reset, no lost or repeated answer; after each move the tenant runs
# on exactly one host (mh_assert_one_host).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_pingpong
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_tcp_server tcp_client
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup pp
mh_serve a
mh_serve b
NAME=mig-pp
R="$T/rootfs"
ADDR=10.204.0.51
PORT=$((7100 + 0x$MH_TOK % 20000))
CMD="/bin/wl_tcp_server --port $PORT"
mh_start a "$NAME" "$R" --net "$ADDR/24" -- $CMD
C="$T/client"
mh_client_start "$C" "$ADDR" "$PORT" 10
CPID=$MH_CLIENT_PID

from=a to=b
for i in $(seq 1 20); do
	old=$(mh_pid "$from" "$NAME")
	mh_migrate "$from" "$to" "$NAME" --mode stop-copy --json >"$T/m.json" || {
		cat "$T/m.json"
		tail "$T/serve-$to.log"
		t_fail "migration $i ($from -> $to) failed"
	}
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("-- %2s %s->%s downtime %.0f ms total %.0f ms" % (sys.argv[2], sys.argv[3], sys.argv[4], d["downtime_ms"], d["total_ms"]))' \
		"$T/m.json" "$i" "$from" "$to"
	mh_assert_one_host "$NAME" "$from" "$to" "$old"
	kill -0 "$CPID" || t_fail "tcp_client died after move $i"
	sleep 0.7
	t=$from from=$to to=$t
done
sleep 0.5
mh_client_verdict "$CPID" "$C"
n=$(sed -n 's/.*n=\([0-9]*\).*/\1/p' "$C/client.result")
((n >= 20)) || t_fail "only $n answers over 20 moves: the connection did not keep up"
# every copy that moved away ended on its host: the agents that restored it
# reaped it (a long-lived agent must not collect zombies)
sleep 0.5
for h in a b; do
	eval "apid=\$MH_PID_$h"
	z=$(ps --ppid "$apid" -o stat= | grep -c '^Z' || true)
	((z == 0)) || t_fail "agent on $h has $z zombie children"
done
