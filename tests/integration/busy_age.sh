#!/bin/bash
# A tenant's creation time (and so its age in `ferry ps`) is kept across
# moves: a stop-copy and a post-copy migration (where userfaultfd works) and
# a local dump + restore; `updated` moves on.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_age
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_keep_pipe_sysctls
mh_setup age
mh_serve a
mh_serve b
NAME=ag-t
R="$T/rootfs"
mh_start a "$NAME" "$R" -- /bin/wl_counter

field() { # HOST KEY
	mh_ferry "$1" ps --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == sys.argv[1]:
        print(t[sys.argv[2]])' "$NAME" "$2"
}
created=$(field a created)
[ -n "$created" ] && ((created > 0)) || t_fail "no creation time on a"
sleep 3
check() { # HOST WHAT
	local c age
	c=$(field "$1" created)
	age=$(field "$1" age_s)
	t_log "$2: created $c (was $created), age ${age}s"
	[ "$c" = "$created" ] || t_fail "$2: created $c, was $created"
	((age >= 3)) || t_fail "$2: age ${age}s, the tenant is older"
	mh_ferry "$1" ps | grep "^$NAME\b\|\b$NAME\b" | grep -qv '\b[0-2]s\b' || t_fail "$2: ps shows a fresh age"
}
mh_migrate a b "$NAME" --mode stop-copy >/dev/null || t_fail "stop-copy migration failed"
check b "after stop-copy"
mh_ferry b dump "$NAME" -D "$T/img" >/dev/null || t_fail "dump on b failed"
mh_ferry b restore -D "$T/img" >/dev/null || t_fail "restore on b failed"
check b "after dump + restore"
if mh_postcopy_ok; then
	mh_migrate b a "$NAME" --mode post-copy --tune-host >/dev/null || t_fail "post-copy migration failed"
	check a "after post-copy"
	mh_verify a "$NAME" "$R"
else
	mh_verify b "$NAME" "$R"
fi
echo PASS
