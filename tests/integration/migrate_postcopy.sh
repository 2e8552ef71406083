#!/bin/bash
# Post-copy: the tenant resumes on b before its memory arrived; pages follow
# on demand (and in the background) over a second authenticated session to
# CRIU's lazy page server on a. The memory workload passes its self-check on
# b, the TCP client on c keeps its connection. Needs userfaultfd and the pipe
# sysctls (--tune-host sets them, saying so).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_postcopy
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory wl_tcp_server tcp_client
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup pc
mh_serve a
mh_serve b
CMD="/bin/wl_memory --mib 128 --dirty 4 --seed $((0x$MH_TOK))"
mh_start a mig-pc "$T/r" -- $CMD
rc=0
mh_migrate a b mig-pc --mode post-copy --tune-host --json >"$T/pc.json" 2>"$T/err" || rc=$?
cat "$T/pc.json" "$T/err"
if ((rc == 7)) && grep -q "userfaultfd\|pipe" "$T/err"; then
	t_skip "post-copy not possible on this host: $(tail -n 1 "$T/err")"
fi
((rc == 0)) || { cp -r "$T/state-a/tenants" "$T/keep-a" 2>/dev/null; cp -r "$T/state-b/tenants" "$T/keep-b" 2>/dev/null; t_fail "post-copy migration failed"; }
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["mode"]=="post-copy" and d["moved"], d; print("-- downtime_ms", d["downtime_ms"], "total_ms", d["total_ms"])' "$T/pc.json"
mh_wait_copies "$CMD" 1 10
mh_check_one b mig-pc
mh_verify b mig-pc "$T/r"
