#!/bin/bash
# A plain process tree ferry did not start (wl_pipe: parent and child talking
# over pipes), dumped by pid, registered as kind proctree, restored at its
# old pids, verified.
. "$TESTS_ROOT/lib/common.sh"
t_init cr_proctree
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_pipe

D="$T/wl"
mkdir -p "$D"
# Detached from this shell (setsid, stdio on files) like a daemon would be.
(WL_DIR=$D setsid "$WORKLOADS/wl_pipe" </dev/null >"$D/out" 2>"$D/err" &)
t_wait_file "$D/wl.ready" 20
PID=$(cat "$D/wl.ready")
t_defer "kill -9 $PID; '$FERRY' rm pt-pipe"
CHILD=$(cat /proc/$PID/task/$PID/children)
[ -n "$CHILD" ] || t_fail "wl_pipe has no child"
sleep 0.3

"$FERRY" dump --pid "$PID" --name pt-pipe -D "$T/img" --json >"$T/dump.json" || t_fail "dump --pid failed"
cat "$T/dump.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["kind"]=="proctree" and d["tenant"]=="pt-pipe", d' "$T/dump.json" ||
	t_fail "dump --json does not describe the proctree"
[ "$(cr_state pt-pipe)" = dumped ] || t_fail "pt-pipe not marked dumped"
cr_wait_gone "$PID"
cr_wait_gone "$CHILD"

"$FERRY" restore -D "$T/img" --json >"$T/restore.json" || t_fail "restore failed"
cat "$T/restore.json"
[ "$(cr_pid pt-pipe)" = "$PID" ] || t_fail "restored at pid $(cr_pid pt-pipe), want $PID"
t_log "restoring a copy while the tree runs at those pids"
t_expect_fail 1 "pid of the tree is in use" "$FERRY" restore -D "$T/img" --name pt-again
[ -z "$(cr_state pt-again)" ] || t_fail "pt-again got registered"
[ "$(cr_state pt-pipe)" = running ] || t_fail "pt-pipe disturbed by the failed copy"

sleep 0.5
kill -USR1 "$PID"
t_wait_file "$D/wl.result" 30
res=$(cat "$D/wl.result")
t_log "wl_pipe: $res"
[ "$res" = PASS ] || { cat "$D/err"; t_fail "wl_pipe says '$res'"; }
