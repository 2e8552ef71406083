#!/bin/bash
# In-flight connections never fail a migration: a busy server
# (wl_storm_server, preforked: 3 workers that drop privileges to uid 65534,
# as web servers do; issue 9) under a connection storm (tcp_storm on host c:
# RATE new connections a second, 1000 = one every millisecond, one request
# each) moves a <-> b ROUNDS (20) times in stop-copy and 20 times
# in post-copy (where userfaultfd works; --tune-host) and in pre-copy (where
# the kernel tracks dirty memory; MODES picks), every migration must
# succeed and leave the tenant on exactly one host (mh_assert_one_host).
# Connections not yet accepted at the freeze are skipped by CRIU
# (--skip-in-flight, always on) and dropped by the network lock; their
# clients' SYN retries reach the destination, or they are refused. Every
# request is answered exactly once or refused, never half-answered
# (tcp_storm's verdict), and the server checks itself at the end (every
# worker alive, still under uid 65534, no failure). WORKERS=0: the server is
# one process as root. SECOND=1 (make soak-storm-workers): a second tenant,
# wl_workers (setuid workers on pipes), moves along every round and checks
# itself at the end too. The client's 30 s timeout is scaled by TIMEOUT_SCALE
# (the second kernel's guest runs under TCG, 4 by default: its freezes last
# seconds, and a SYN or request the destination's full listen queue dropped
# waits for the client's backed-off retransmission).
. "$TESTS_ROOT/lib/common.sh"
t_init busy_storm
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_storm_server tcp_storm
. "$TESTS_ROOT/lib/mhosts.sh"

ROUNDS=${ROUNDS:-20}
RATE=${RATE:-1000}
if [ -z "${MODES:-}" ]; then
	MODES="stop-copy post-copy"
	mh_precopy_ok && MODES="$MODES pre-copy" || t_log "no pre-copy on this host (soft-dirty)"
fi
if [[ " $MODES " == *" post-copy "* ]] && ! mh_postcopy_ok; then
	t_log "post-copy not checked: no userfaultfd here (ferry check)"
	MODES=${MODES/post-copy/}
fi
mh_keep_pipe_sysctls

mh_setup storm
mh_serve a
mh_serve b
NAME=storm
R="$T/rootfs"
ADDR=10.204.0.90
prefork=()
[ "${WORKERS:-1}" = 1 ] && prefork=(--workers 3 --uid 65534)
mh_start a "$NAME" "$R" --net "$ADDR/24" -- /bin/wl_storm_server --port 7200 ${prefork[@]+"${prefork[@]}"}
TENANTS=$NAME
if [ "${SECOND:-0}" = 1 ]; then
	cr_need_wl wl_workers
	mh_start a storm-web "$T/rweb" -- /bin/wl_workers --workers 3 --uid 65534
	TENANTS="$NAME storm-web"
fi

C="$T/client"
mkdir -p "$C"
ip netns exec "fym-$MH_ID-c" env WL_DIR="$C" "$WORKLOADS/tcp_storm" --addr "$ADDR" --port 7200 \
	--rate "$RATE" --timeout-s "$(t_secs 30)" >"$C/out" 2>"$C/err" </dev/null &
CPID=$!
t_defer "kill -9 $CPID 2>/dev/null"
t_wait_file "$C/storm.ready" 20
sleep 0.5

at=a
moves=0
for mode in $MODES; do
	extra=()
	[ "$mode" = post-copy ] && extra=(--tune-host)
	for i in $(seq "$ROUNDS"); do
		to=$([ "$at" = a ] && echo b || echo a)
		for n in $TENANTS; do
			old=$(mh_pid "$at" "$n")
			mh_migrate "$at" "$to" "$n" --mode "$mode" ${extra[@]+"${extra[@]}"} --json \
				>"$T/m.json" 2>"$T/m.err" || {
				cat "$T/m.json" "$T/m.err"
				tail -n 30 "$T/serve-$to.log"
				t_fail "$mode migration $i of $n ($at -> $to) under the storm failed"
			}
			python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("--", sys.argv[2], sys.argv[3], d["mode"], "downtime_ms", round(d["downtime_ms"],1), "held", d.get("held_segments"), "replayed", d.get("replayed_segments"), "lost", d.get("replay_lost_segments"), "stages_ms", " ".join("%s=%.0f" % (k, v) for k, v in d.get("stages_ms", {}).items()))' "$T/m.json" "$i" "$n"
			mh_assert_one_host "$n" "$at" "$to" "$old"
			# the hold's blackhole route (tenant/net.h) went with the move
			bh=$(ip -n "fym-$MH_ID-$at" route show type blackhole)
			[ -z "$bh" ] || t_fail "a blackhole route is left on $at after move $i: $bh"
			# a request lost in the storm: stop here, with the move it happened at
			[ -s "$C/err" ] && { cat "$C/err"; t_fail "tcp_storm lost a request by $mode migration $i"; }
		done
		at=$to
		moves=$((moves + 1))
		sleep 0.2
	done
done

kill -USR1 "$CPID"
t_wait_file "$C/storm.result" 60
res=$(cat "$C/storm.result")
t_log "tcp_storm after $moves migrations: $res"
[[ "$res" == PASS* ]] || { cat "$C/err"; t_fail "tcp_storm says '$res'"; }
mh_verify "$at" "$NAME" "$R"
[ "${SECOND:-0}" = 1 ] && mh_verify "$at" storm-web "$T/rweb"
echo PASS
