#!/bin/bash
# What clients see of a live migration (tests/lib/mhosts.sh hosts a, b, c).
# One container tenant serves two kinds of client on host c at once:
#   keep-alive  tcp_client: one connection, a request every BENCH_INTERVAL_MS
#               (10) ms; its longest gap between two answers;
#   per-request tcp_storm: a new connection per request, BENCH_RATE (200) a
#               second; its longest connect-to-answer time (max_wait_ms).
# The keep-alive client runs through every migration (the server accepts one
# connection) and logs each gap of GAP_LOG (25) ms or more as it ends; the
# connection-per-request client starts fresh for each migration: what they
# report belongs to that migration. BENCH_MOVES (5) stop-copy migrations a <-> b with the held
# segments replayed (tenant/pkthold.h, the default) and as many without
# (FERRY_PACKET_REPLAY=0: the clients' own retransmissions, the old
# behaviour), alternating, in the same run. Post-copy too where this host
# has userfaultfd (BENCH_MODES, default "stop-copy post-copy").
# One line per migration:
#   RESULT mode=M replay=on|off move=I downtime_ms=D keepalive_gap_ms=G
#     keepalive_over_ms=G-D connect_wait_ms=W connect_over_ms=W-D replayed=N
# and per mode and setting, the worst over the moves against the goals
# (kept-alive <= downtime + 50 ms, connect-per-request <= downtime + 250 ms):
#   RESULT mode=M replay=on|off moves=N keepalive_max_over_ms=...
#     connect_max_over_ms=... goals_met=yes|no
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY="$ROOT/build/ferry" WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests" TESTS_TMP=${BENCH_DIR:-/dev/shm}/ferry-bench-clients
MOVES=${BENCH_MOVES:-5}
INTERVAL=${BENCH_INTERVAL_MS:-10}
RATE=${BENCH_RATE:-200}
MODES=${BENCH_MODES:-"stop-copy post-copy"}
. "$TESTS_ROOT/lib/common.sh"
t_init bench_clients
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_tcp_server wl_storm_server tcp_client tcp_storm
. "$TESTS_ROOT/lib/mhosts.sh"
if [[ " $MODES " == *" post-copy "* ]] && ! mh_postcopy_ok; then
	echo "post-copy not measured: no userfaultfd here (ferry check)"
	MODES=${MODES/post-copy/}
fi
mh_keep_pipe_sysctls

mh_setup bcli
mh_serve a
mh_serve b
NAME=clients
R="$T/rootfs"
ADDR=10.204.0.95
# the servers under names of their own: a test runner of another checkout on
# this machine may kill wl_* processes (tests/run.sh before 2a718ec did)
t_rootfs "$R"
ln -sf wl_storm_server "$R/bin/srv_storm"
ln -sf wl_tcp_server "$R/bin/srv_keepalive"
mh_start a "$NAME" "$R" --net "$ADDR/24" -- /bin/sh -c \
	'/bin/srv_storm --port 7201 </dev/null & exec /bin/srv_keepalive --port 8081'
at=a
GAP_LOG=25
K="$T/k"
mkdir -p "$K"
ip netns exec "fym-$MH_ID-c" env WL_DIR="$K" "$WORKLOADS/tcp_client" --addr "$ADDR" --port 8081 \
	--interval-ms "$INTERVAL" --gap-log-ms "$GAP_LOG" >"$K/out" 2>"$K/err" </dev/null &
KPID=$!
t_defer "kill -9 $KPID 2>/dev/null"
t_wait_file "$K/client.ready" 20

kv() { sed -n "s/.*\\b$1=\\([0-9.]*\\).*/\\1/p" "$2"; }

# move MODE REPLAY I: one migration with fresh clients; prints its RESULT line
# and appends "over_keepalive over_connect" to $T/over-MODE-REPLAY.
move() {
	local mode=$1 rep=$2 i=$3 to S="$T/s" extra=() spid seen gap
	to=$([ "$at" = a ] && echo b || echo a)
	[ "$mode" = post-copy ] && extra=(--tune-host)
	rm -rf "$S"
	mkdir -p "$S"
	ip netns exec "fym-$MH_ID-c" env WL_DIR="$S" "$WORKLOADS/tcp_storm" --addr "$ADDR" \
		--port 7201 --rate "$RATE" >"$S/out" 2>"$S/err" </dev/null &
	spid=$!
	t_defer "kill -9 $spid 2>/dev/null"
	t_wait_file "$S/storm.ready" 20
	sleep 0.5
	seen=$(grep -c '^GAP' "$K/err" || true)
	FERRY_PACKET_REPLAY=$([ "$rep" = on ] && echo 1 || echo 0) \
		mh_migrate "$at" "$to" "$NAME" --mode "$mode" ${extra[@]+"${extra[@]}"} --json \
		>"$T/m.json" 2>"$T/m.err" || {
		cat "$T/m.json" "$T/m.err" >&2
		t_fail "$mode migration $at -> $to failed"
	}
	at=$to
	sleep 0.5
	kill -USR1 "$spid"
	t_wait_file "$S/storm.result" 60
	grep -q PASS "$S/storm.result" || t_fail "tcp_storm: $(cat "$S/storm.result")"
	wait "$spid" 2>/dev/null || true
	# the longest gap logged during this migration (none: under GAP_LOG)
	gap=$(grep '^GAP' "$K/err" | tail -n +$((seen + 1)) | awk -v g="$GAP_LOG" \
		'BEGIN { m = g } $2 > m { m = $2 } END { print m }')
	python3 - "$T/m.json" "$gap" \
		"$(kv max_wait_ms "$S/storm.result")" "$mode" "$rep" "$i" "$T/over-$mode-$rep" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
down, gap, wait = d["downtime_ms"], float(sys.argv[2]), float(sys.argv[3])
mode, rep, i, out = sys.argv[4:8]
print("RESULT mode=%s replay=%s move=%s downtime_ms=%.1f keepalive_gap_ms=%.0f "
      "keepalive_over_ms=%.1f connect_wait_ms=%.0f connect_over_ms=%.1f replayed=%d"
      % (mode, rep, i, down, gap, gap - down, wait, wait - down, d.get("replayed_segments", -1)))
open(out, "a").write("%.1f %.1f\n" % (gap - down, wait - down))
EOF
}

for mode in $MODES; do
	for i in $(seq "$MOVES"); do
		move "$mode" on "$i"
		move "$mode" off "$i"
	done
done
kill -USR1 "$KPID"
t_wait_file "$K/client.result" 30
grep -q PASS "$K/client.result" || t_fail "tcp_client: $(cat "$K/client.result")"
echo "tcp_client over all moves: $(cat "$K/client.result")"
mh_verify "$at" "$NAME" "$R"
for mode in $MODES; do
	for rep in on off; do
		awk -v m="$mode" -v r="$rep" -v n="$MOVES" '
			{ if (NR == 1 || $1 > k) k = $1; if (NR == 1 || $2 > c) c = $2 }
			END { printf "RESULT mode=%s replay=%s moves=%d keepalive_max_over_ms=%.1f " \
				"connect_max_over_ms=%.1f goals_met=%s\n", m, r, n, k, c,
				(k <= 50 && c <= 250) ? "yes" : "no" }' "$T/over-$mode-$rep"
	done
done
