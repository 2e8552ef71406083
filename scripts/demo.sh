#!/bin/bash
# The demo: live migration between two simulated hosts. A TCP server tenant
# with its own address runs on host a; a client on a third host c keeps one
# connection open and exchanges requests; `ferry migrate` moves the tenant to
# host b and back while the client goes on, without a reset or a lost answer.
# Hosts are network namespaces on one bridge (tests/lib/mhosts.sh), each with
# its own `ferry serve` and state directory; TLS 1.3 with mutual auth.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
export FERRY="$ROOT/build/ferry" WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests" TESTS_TMP=/tmp/ferry-demo
. "$TESTS_ROOT/lib/common.sh"
t_init demo
. "$TESTS_ROOT/lib/cr.sh"
cr_require
. "$TESTS_ROOT/lib/mhosts.sh"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
ps_both() {
	for h in a b; do
		echo "-- host $h:"
		mh_ferry "$h" ps
	done
}

say "host readiness (which migration modes this host supports)"
"$FERRY" check || true

say "three simulated hosts: a $(mh_addr a), b $(mh_addr b), client c $(mh_addr c)"
mh_setup demo
mh_serve a
mh_serve b
NAME=web
ADDR=10.204.0.80
mh_start a "$NAME" "$T/rootfs" --net "$ADDR/24" -- /bin/wl_tcp_server --port 8080
C="$T/client"
mh_client_start "$C" "$ADDR" 8080 20
CPID=$MH_CLIENT_PID
echo "client on c talks to $ADDR:8080 over one TCP connection"
ps_both

say "ferry migrate $NAME: a -> b (stop-and-copy, pages streamed, held handover)"
old=$(mh_pid a "$NAME")
mh_migrate a b "$NAME" --mode stop-copy
ps_both
mh_assert_one_host "$NAME" a b "$old"
sleep 2

say "and back: b -> a"
old=$(mh_pid b "$NAME")
mh_migrate b a "$NAME" --mode stop-copy
ps_both
mh_assert_one_host "$NAME" b a "$old"
sleep 1

say "the client's verdict (one connection, no lost or repeated answer)"
kill -USR1 "$CPID"
t_wait_file "$C/client.result" 20
res=$(cat "$C/client.result")
echo "tcp_client: $res"
mh_verify a "$NAME" "$T/rootfs"
if [[ "$res" == PASS* ]]; then
	say "the tenant moved twice; its client never noticed more than a pause"
else
	echo "demo FAILED: $res" >&2
	exit 1
fi
