#!/bin/bash
# VM migration faults: whatever fails, the VM runs on exactly one host
# (vm_one_host: one QEMU of it on the whole machine, the one the registry of
# that host names), it is not left paused (its serial port shows progress)
# and its memory is consistent. Faults: the destination's QEMU fails to
# start, the destination agent is killed during the transfer and during the
# restore (the guard of the incoming QEMU ends it), the link is cut
# mid-migration, the session drops after RESTORED (commit still resolved),
# the source's `ferry migrate` killed (SIGKILL) mid-stream in stop-copy and
# pre-copy, paused before the switchover, after RESTORE was sent, after the
# commit marker: recovery (reconcile.c, the backend's resume: cancel QEMU's
# migration, `cont`) leaves the VM running on the source.
. "$TESTS_ROOT/lib/common.sh"
t_init vm_faults
. "$TESTS_ROOT/vm/vm.sh"
vm_require
. "$TESTS_ROOT/lib/mhosts.sh"

export MH_SERVE_TIMEOUT=5
mh_setup vmflt
mh_serve a
mh_serve b
N=vmf-g1
Da="$T/state-a/tenants/$N"
mh_ferry a run $N --vm --memory ${VM_MIB}M --disk "$VM_IMG" || t_fail "run --vm on a"
vm_wait_bees "$Da/console.log" 1

# wait_stream: a's registry says frozen (its dump, the stream, runs)
wait_stream() {
	local n=200
	while ((n-- > 0)); do
		[ "$(mh_state a $N)" = frozen ] && { sleep 0.3; return 0; }
		sleep 0.05
	done
	t_fail "the migration's stream did not start"
}

# on_a: the VM runs on a only, making progress, memory consistent
on_a() {
	vm_one_host $N a
	vm_wait_bees "$Da/console.log" "$(vm_bees "$Da/console.log")" 10
	vm_memcheck "$Da/qmp.sock"
}

# fault FAULT PATTERN [ENV...]: b's agent with FERRY_FAULT=FAULT; the
# migration fails saying PATTERN; the VM stays on a.
fault() {
	local f=$1 pat=$2 rc=0
	shift 2
	t_log "fault: $f"
	mh_kill_serve b
	mh_serve b FERRY_FAULT="$f" "$@"
	mh_migrate a b $N --shared-storage --mode stop-copy --timeout 5 >"$T/out" 2>"$T/err" || rc=$?
	cat "$T/err"
	((rc != 0)) || t_fail "migration with fault $f succeeded"
	grep -Eq "$pat" "$T/err" || t_fail "fault $f: expected /$pat/"
	grep -q "runs on this host again" "$T/err" || t_fail "fault $f: where is the VM?"
	if [[ "$f" == crash-* ]]; then
		mh_kill_serve b
		mh_serve b
	fi
	on_a
}

# the destination's QEMU starts but fails on the incoming stream's machine
cat >"$T/bad-qemu" <<'SH'
#!/bin/sh
for a; do [ "$a" = -incoming ] && { echo "bad-qemu: refusing to start (test)" >&2; exit 1; }; done
exec qemu-system-x86_64 "$@"
SH
chmod +x "$T/bad-qemu"
# (started at MIGRATE_BEGIN now: refused before the source stopped anything)
t_log "fault: the destination's QEMU fails to start"
mh_kill_serve b
mh_serve b FERRY_QEMU="$T/bad-qemu"
rc=0
mh_migrate a b $N --shared-storage --mode stop-copy --timeout 5 >"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "migration to a QEMU that does not start succeeded"
grep -q "QEMU exited while starting: bad-qemu: refusing" "$T/err" || t_fail "bad-qemu: message"
grep -q "it keeps running here" "$T/err" || t_fail "bad-qemu: where is the VM?"
on_a
fault crash-during-transfer "lost|closed|reset|failed"
fault crash-during-restore "lost|closed|reset|failed"
fault after-restore-disconnect "lost|closed|reset|failed"

t_log "link cut mid-migration (a's egress slowed so that it is still going)"
mh_kill_serve b
mh_serve b
mh_exec a tc qdisc replace dev lan0 root tbf rate 1mbit burst 32kb latency 400ms
mh_bg_migrate a b $N --shared-storage --mode stop-copy --timeout 5
wait_stream
ip -n "fym-$MH_ID-a" link set lan0 down
rc=0
wait $MH_MIG || rc=$?
cat "$T/err"
ip -n "fym-$MH_ID-a" link set lan0 up
mh_exec a tc qdisc del dev lan0 root
((rc != 0)) || t_fail "migration over a cut link succeeded"
grep -q "runs on this host again" "$T/err" || t_fail "link cut: message"
on_a

t_log "the session drops after RESTORED: the commit is resolved, the VM runs on b"
mh_kill_serve b
mh_serve b FERRY_FAULT=drop-after-restored
before=$VM_PASSES
mh_migrate a b $N --shared-storage --mode stop-copy --timeout 5 || t_fail "in-doubt commit was not resolved"
vm_one_host $N b
Db="$T/state-b/tenants/$N"
vm_wait_bees "$Db/console.log" "$(vm_bees "$Db/console.log")" 10
vm_memcheck "$Db/qmp.sock"
((VM_PASSES > before)) || t_fail "the counter did not go on: $before then $VM_PASSES"
# src_kill HOW MODE: the source's `ferry migrate` dies (SIGKILL): HOW is a
# FERRY_FAULT point, or "stream" (killed by the test while the stream goes
# over a slowed link). Recovery (`ferry ps` on a, and b asking a's agent)
# leaves the VM running on a, its memory consistent.
src_kill() {
	local how=$1 mode=$2 rc=0
	t_log "source ferry migrate killed: $how ($mode)"
	mh_kill_serve b
	mh_serve b
	if [ "$how" = stream ]; then
		mh_exec a tc qdisc replace dev lan0 root tbf rate 1mbit burst 32kb latency 400ms
		mh_bg_migrate a b $N --shared-storage --mode "$mode" --timeout 5
		wait_stream
		kill -9 "$MH_MIG_PID" 2>/dev/null || t_fail "the migration was over already"
		wait $MH_MIG || rc=$?
		mh_exec a tc qdisc del dev lan0 root
	else
		mh_exec a env FERRY_FAULT="$how" FERRY_STATE_DIR="$T/state-a" "$FERRY" migrate $N --shared-storage \
			--to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b --mode "$mode" \
			--max-downtime 200 --timeout 5 >"$T/out" 2>"$T/err" || rc=$?
		cat "$T/err"
	fi
	((rc == 137)) || t_fail "$how: ferry migrate exited $rc, want 137 (killed)"
	: >"$T/ps.log"
	mh_ferry a -v ps >/dev/null 2>"$T/ps.log" || t_fail "ferry ps on a after $how"
	grep -h "outcome\|cancelling\|was left\|could not resume" "$T/ps.log" "$MH_LOG_a" | tail -4 || true
	on_a
	[ "$(mh_state a $N)" = running ] || t_fail "$how: a's record says $(mh_state a $N)"
}
t_log "back to a"
mh_kill_serve b
mh_serve b
mh_migrate b a $N --shared-storage --mode stop-copy --timeout 5 >/dev/null || t_fail "b -> a failed"
on_a
src_kill stream stop-copy
src_kill stream pre-copy
src_kill src-crash-at-switchover pre-copy
src_kill src-crash-after-restore-sent stop-copy
src_kill src-crash-after-marker stop-copy

echo "PASS vm_faults ($VM_ACCEL)"
