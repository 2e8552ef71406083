#!/bin/bash
# A server whose workers drop privileges (wl_workers: root parent, workers
# under uid 65534), issue 9. By default a tenant has a user namespace of its
# own, whose owner (ferry's root) reads its processes' rlimits even where
# root lacks CAP_SYS_RESOURCE (the project's machines): it moves a -> b in
# stop-copy, b -> a in post-copy (the agents may set
# vm.unprivileged_userfaultfd, 'tune-host userfaultfd'), and in pre-copy
# where the host has it, then checks itself. `ferry check` names neither it
# nor its workers. The same server started --privileged (workers in the
# host's user namespace): where this host cannot dump a process of another
# user, `ferry check` says so and names the tenant, and `ferry dump` and
# `ferry migrate` refuse it before the freeze (exit 7, the reason): it keeps
# running, its workers never stopped. Where the host can, it moves.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_other_uid
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_workers
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup uid
mh_serve a
mh_serve b
mh_keep_pipe_sysctls

# 1. the default: a user namespace of its own
NAME=ou-web
R="$T/rootfs"
mh_start a "$NAME" "$R" -- /bin/wl_workers --workers 3 --uid 65534
pid=$(mh_pid a "$NAME")
w=$(mh_exec a cat "/proc/$pid/task/$pid/children" | awk '{print $1}')
wuid=$(mh_exec a awk '/^Uid:/ {print $2}' "/proc/$w/status")
((wuid > 65534)) || t_fail "worker $w runs as host uid $wuid (no user namespace?)"
mh_ferry a check --json >"$T/check.json" || true
grep -q "$NAME (uid" "$T/check.json" && t_fail "ferry check names $NAME among other users' tenants"
# post-copy into its user namespace: ferry check names it while the host
# does not allow userfaultfd there (vm.unprivileged_userfaultfd)
python3 - "$T/check.json" "$NAME" <<'PY' || t_fail "ferry check's userfaultfd-userns item"
import json, sys
it = [i for i in json.load(open(sys.argv[1]))["items"] if i["id"] == "userfaultfd-userns"][0]
print("userfaultfd-userns:", it["status"], it["detail"])
if "vm.unprivileged_userfaultfd=1" in it["detail"]:
    assert it["status"] == "OK", it
else:
    assert it["status"] == "WARN" and sys.argv[2] in it["detail"], it
PY
at=a
modes="stop-copy"
mh_postcopy_ok && modes="$modes post-copy" || t_log "no post-copy on this host"
mh_precopy_ok && modes="$modes pre-copy" || t_log "no pre-copy on this host (soft-dirty)"
for mode in $modes; do
	to=$([ "$at" = a ] && echo b || echo a)
	old=$(mh_pid "$at" "$NAME")
	extra=()
	[ "$mode" = post-copy ] && extra=(--tune-host)
	t_log "$mode $at -> $to (workers host uid $wuid)"
	mh_migrate "$at" "$to" "$NAME" --mode "$mode" ${extra[@]+"${extra[@]}"} ||
		t_fail "$mode migration $at -> $to failed"
	mh_assert_one_host "$NAME" "$at" "$to" "$old"
	at=$to
done
mh_verify "$at" "$NAME" "$R"

# 2. --privileged: its workers are host uid 65534
NAME=ou-priv
R="$T/rpriv"
mh_start a "$NAME" "$R" --privileged -- /bin/wl_workers --workers 3 --uid 65534
pid=$(mh_pid a "$NAME")
mh_ferry a check --json >"$T/check.json" || true
st=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
it = [i for i in d["items"] if i["id"] == "other-users"][0]
print(it["status"]); print(it["detail"], file=sys.stderr)' "$T/check.json")
if [ "$st" = OK ]; then
	t_log "this host dumps processes of other users: migrate and verify"
	mh_migrate a b "$NAME" --mode stop-copy || t_fail "migration failed"
	mh_assert_one_host "$NAME" a b "$pid"
	mh_verify b "$NAME" "$R"
	echo PASS
	exit 0
fi
[ "$st" = WARN ] || t_fail "other-users: $st"
grep -q "$NAME (uid 65534)" "$T/check.json" || t_fail "ferry check does not name $NAME"
mh_ferry a check | grep -q "Except tenants with processes of other users" ||
	t_fail "ferry check's verdict does not mention them"

t_log "dump refuses the --privileged one before the freeze"
t_expect_fail 7 "tenant $NAME cannot be dumped on this host: its process [0-9]+ runs as another user \(uid 65534\).*CAP_SYS_RESOURCE.*nothing was frozen" \
	mh_ferry a dump "$NAME" -D "$T/img"
[ "$(mh_state a "$NAME")" = running ] && [ "$(mh_pid a "$NAME")" = "$pid" ] || t_fail "not running after the refused dump"
[ -z "$(ls -A "$T/img" 2>/dev/null)" ] || t_fail "the refused dump wrote images"

t_log "migrate refuses it before the freeze"
t_expect_fail 7 "runs as another user \(uid 65534\).*nothing was frozen" \
	mh_migrate a b "$NAME" --mode stop-copy
mh_assert_one_host "$NAME" a a "$pid"
# never frozen: no CRIU log of a dump
[ ! -e "$T/state-a/tenants/$NAME/dump.log" ] || t_fail "a dump was attempted (dump.log exists)"
mh_verify a "$NAME" "$R"
echo PASS
