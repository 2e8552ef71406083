#!/bin/bash
# Handover faults: whatever fails, the tenant ends up running on exactly one
# host (mh_assert_one_host: one process tree with its root on the machine),
# both registries agree, the destination keeps nothing (images, veth,
# route), and the tenant passes its self-check. Faults on the destination are
# injected with FERRY_FAULT on its agent (docs/migrate.md, testing hook).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_faults
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

export MH_SERVE_TIMEOUT=$(t_secs 5)
mh_setup flt
NAME=mig-flt
mkdir -p "$T/hide"
R="$T/hide/rootfs"
ADDR=10.204.0.60
mh_serve a
mh_serve b
CMD="/bin/wl_memory --mib 64 --dirty 4 --seed $((0x$MH_TOK))"
mh_start a "$NAME" "$R" --net "$ADDR/24" -- $CMD

# on_a: the tenant runs on a only, not stopped; b kept nothing of it.
on_a() {
	local pid n=150
	# a source killed mid-way leaves the record "frozen" only until `ferry
	# ps` (here) settles it (docs/migrate.md "Recovery")
	mh_assert_one_host "$NAME" a a
	pid=$(mh_pid a "$NAME")
	mh_exec a grep -q "State:.*[RS]" "/proc/$pid/status" || t_fail "tenant on a is stopped"
	while ((n-- > 0)); do
		[ -z "$(ls -A "$T/state-b/migrations" 2>/dev/null)" ] &&
			! ip -n "fym-$MH_ID-b" route show | grep -q "$ADDR" && break
		sleep 0.1
	done
	((n > 0)) || t_fail "b kept images or a route for $ADDR"
	t_log "b kept nothing of $NAME"
}

# fault FAULT PATTERN [ENV...]: restart b's agent with FERRY_FAULT=FAULT, the
# migration must fail saying PATTERN, the tenant stays on a.
fault() {
	local f=$1 pat=$2 rc=0
	shift 2
	t_log "fault: $f"
	mh_kill_serve b
	mh_serve b FERRY_FAULT="$f" "$@"
	mh_migrate a b "$NAME" --mode stop-copy --timeout "$(t_secs 5)" >"$T/out" 2>"$T/err" || rc=$?
	cat "$T/err"
	((rc != 0)) || t_fail "migration with fault $f succeeded"
	grep -Eq "$pat" "$T/err" || t_fail "fault $f: expected /$pat/"
	grep -q "runs on this host again\|keeps running here" "$T/err" ||
		t_fail "fault $f: the message does not say where the tenant is"
	if [[ "$f" == crash-* ]]; then
		# a new agent removes what the killed one left
		mh_kill_serve b
		mh_serve b
	fi
	on_a
}

fault crash-during-transfer "lost|closed|reset|failed"
fault crash-during-restore "lost|closed|reset|failed"
fault after-restore-disconnect "lost|closed|reset|failed"

# the name is taken on b: refused before anything is frozen
t_rootfs "$T/other"
mh_ferry b run "$NAME" --rootfs "$T/other" -- /bin/wl_counter >/dev/null
t_wait_file "$T/other/tmp/wl.ready" 20
mh_kill_serve b
mh_serve b
rc=0
mh_migrate a b "$NAME" --mode stop-copy 2>"$T/err" || rc=$?
cat "$T/err"
((rc == 4)) || t_fail "name taken: exit code $rc, want 4"
grep -q "already runs on b" "$T/err" || t_fail "name taken: message"
# (b runs another tenant of that name: one tree each, a's still running)
[ "$(mh_tree_roots "$R" | tail -n +2 | wc -l)" = 1 ] || t_fail "name taken: not one tree"
[ "$(mh_state a "$NAME")" = running ] || t_fail "name taken: not running on a"
# ... and when the restore itself finds it (after the freeze)
mh_kill_serve b
mh_serve b FERRY_FAULT=skip-precheck
rc=0
mh_migrate a b "$NAME" --mode stop-copy 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "restore over a running name succeeded"
grep -q "runs on this host again" "$T/err" || t_fail "name taken late: message"
n=50
while (($(mh_tree_roots "$R" | tail -n +2 | wc -l) != 1)) && ((n-- > 0)); do sleep 0.2; done
((n > 0)) || t_fail "name taken late: not one tree with the tenant's root"
[ "$(mh_state a "$NAME")" = running ] || t_fail "a: not running after a late refusal"
mh_ferry b kill "$NAME" >/dev/null
mh_ferry b rm "$NAME" >/dev/null

# the root file system is missing on b (hidden in its agent's mount namespace)
fault none "missing on b" -- unshare --mount sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$T/hide"
fault skip-precheck "root file system|missing" -- unshare --mount sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$T/hide"

# link cut during the transfer (a's egress slowed so that it is still going)
mh_kill_serve b
mh_serve b
mh_exec a tc qdisc replace dev lan0 root tbf rate 40mbit burst 64kb latency 400ms
rm -f "$T/state-a/tenants/$NAME/dump.log"
mh_bg_migrate a b "$NAME" --mode stop-copy --timeout "$(t_secs 5)"
# cut once the dump (and so the transfer) is under way: on a slow guest
# kernel (make check-kernels, TCG) a fixed wait cut it before the connection
t_wait_file "$T/state-a/tenants/$NAME/dump.log" 30
sleep 0.5
ip -n "fym-$MH_ID-a" link set lan0 down
rc=0
wait $MH_MIG || rc=$?
cat "$T/err"
ip -n "fym-$MH_ID-a" link set lan0 up
((rc != 0)) || t_fail "migration over a cut link succeeded"
grep -q "runs on this host again" "$T/err" || t_fail "link cut: message"
on_a

# the source `ferry migrate` killed mid-way: CRIU loses its peer, the dump
# aborts and the tenant resumes; b drops the session's images
mh_bg_migrate a b "$NAME" --mode stop-copy --timeout "$(t_secs 5)"
sleep 1
kill -9 "$MH_MIG_PID"
wait $MH_MIG 2>/dev/null || true
on_a
mh_exec a tc qdisc del dev lan0 root

# b drops the session right after RESTORED: the source has decided (commit)
# and delivers the decision on a new connection; the tenant runs on b
mh_kill_serve b
mh_serve b FERRY_FAULT=drop-after-restored
old=$(mh_pid a "$NAME")
mh_migrate a b "$NAME" --mode stop-copy --timeout "$(t_secs 5)" || t_fail "in-doubt commit was not resolved"
mh_assert_one_host "$NAME" a b "$old"
mh_verify b "$NAME" "$R"
