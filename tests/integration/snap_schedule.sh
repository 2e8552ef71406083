#!/bin/bash
# Periodic snapshots run by `ferry serve` (docs/snapshots.md): a schedule
# every 2s with --keep-last 2; the agent killed (-9) in the middle of a run
# and started again (the schedule survives, the tenant runs on, the store
# verifies); a failing run (key file gone) is recorded and the schedule goes
# on once the key is back; prune after each run keeps two snapshots.
. "$TESTS_ROOT/lib/common.sh"
t_init snap_schedule
. "$TESTS_ROOT/lib/cr.sh"
. "$TESTS_ROOT/lib/hosts.sh"
cr_require
cr_need_wl wl_memory
S=(--store "$T/store" --key-file "$T/key")
name=snap-sched r="$T/rootfs"
port=$((20000 + $(echo "$T" | cksum | cut -d' ' -f1) % 9000))

"$FERRY" snapshot init "${S[@]}" >/dev/null || t_fail "init failed"
h_certs "$T/certs" h1
mkdir -p "$r/bin" && cp "$WORKLOADS/wl_memory" "$r/bin/snapwl_sch"
cr_start "$name" "$r" -- /bin/snapwl_sch --mib 16
pid0=$(cr_pid "$name")

"$FERRY" snapshot schedule "$name" --every 2s --keep-last 2 "${S[@]}" || t_fail "schedule failed"
"$FERRY" snapshot schedule --list

AGENT=
agent_start() {
	"$FERRY" serve --listen "127.0.0.1:$port" --tls "$T/certs" --name h1 >>"$T/serve.log" 2>&1 &
	AGENT=$!
	t_defer "kill -9 $AGENT"
}
sched() { "$FERRY" snapshot schedule --list --json | python3 -c "import json,sys; s=json.load(sys.stdin)['schedules'][0]; print(s['$1'])"; }
wait_runs() { # wait_runs N: until the schedule has N runs
	local n=600
	while ((n-- > 0)); do
		(($(sched runs) >= $1)) && return 0
		sleep 0.1
	done
	cat "$T/serve.log"
	t_fail "the schedule did not reach $1 runs"
}
alive() { # the registry says "frozen" while a scheduled run dumps it
	[ "$(cr_pid "$name")" = "$pid0" ] && kill -0 "$pid0" &&
		[[ "$(cr_state "$name")" =~ ^(running|frozen)$ ]] ||
		t_fail "$*: the tenant does not run on"
	[ "$(awk '/^State:/ {print $2}' "/proc/$pid0/status")" != T ] || t_fail "$*: the tenant is stopped"
}

agent_start
wait_runs 2
[ "$(sched last_ok)" = True ] || t_fail "scheduled run failed: $(sched last_result)"
alive "two scheduled runs"

# kill the agent while a run holds the tenant's run lock
lock="$FERRY_STATE_DIR/schedules/$name.lock"
n=600
while ((n-- > 0)) && flock -n "$lock" true; do sleep 0.02; done
((n > 0)) || t_fail "no run seen in progress"
kill -9 "$AGENT"
wait "$AGENT" 2>/dev/null || true
runs=$(sched runs)
t_log "agent killed during run $((runs + 1))"
sleep 1
alive "agent killed mid-run"
agent_start
wait_runs $((runs + 2))
[ "$(sched last_ok)" = True ] || t_fail "run after the restart failed: $(sched last_result)"

# a failing run: recorded, and the schedule goes on
mv "$T/key" "$T/key.away"
f0=$(sched failures)
n=600
while ((n-- > 0)) && (($(sched failures) == f0)); do sleep 0.1; done
mv "$T/key.away" "$T/key"
((n > 0)) || t_fail "no failed run recorded"
t_log "failure recorded: $(sched last_result)"
runs=$(sched runs)
wait_runs $((runs + 2))
[ "$(sched last_ok)" = True ] || t_fail "the schedule did not recover: $(sched last_result)"
grep -q '"snapshot"\|snapshot' "$T/serve.log" || t_fail "the agent reported no snapshot event"
"$FERRY" snapshot schedule --list

kill "$AGENT"
wait "$AGENT" 2>/dev/null || true
n=$("$FERRY" snapshot list "${S[@]}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
t_log "$n snapshots in the store"
((n == 2)) || t_fail "$n snapshots after prune --keep-last 2"
"$FERRY" snapshot gc "${S[@]}"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after the schedule"
"$FERRY" snapshot schedule "$name" --off || t_fail "schedule --off"
alive "the end"
cr_verify "$name" "$r"
