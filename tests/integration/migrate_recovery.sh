#!/bin/bash
# Recovery (docs/migrate.md "Recovery"): the source `ferry migrate` killed
# with SIGKILL at every point of the handover (with and without an agent on
# the source), and the destination agent killed after the resume. Each case
# ends with the tenant running on exactly one host, where the decision put it
# (mh_assert_one_host: the old init gone when it moved, one process tree with
# the tenant's root on the whole machine, both registries agreeing: a running
# record on that host, none on the other), passing its self-check, its TCP
# client on c still connected.
# Source faults: FERRY_FAULT in the source `ferry migrate`'s environment.
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_recovery
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory wl_tcp_server tcp_client
. "$TESTS_ROOT/lib/mhosts.sh"

export MH_SERVE_TIMEOUT=$(t_secs 5)
mh_setup rcv
mh_serve a
mh_serve b
mkdir -p "$T/hide"
RM="$T/hide/mem"
RT="$T/hide/tcp"
ADDR=10.204.0.80
PORT=$((20000 + 0x$MH_TOK % 20000))
MEM="/bin/wl_memory --mib 64 --dirty 4 --seed $((0x$MH_TOK))"
TCP="/bin/wl_tcp_server --port $PORT"
mh_start a rcv-mem "$RM" -- $MEM
mh_start a rcv-tcp "$RT" --net "$ADDR/24" -- $TCP

C="$T/client"
mh_client_start "$C" "$ADDR" "$PORT" 20
CPID=$MH_CLIENT_PID

# restart HOST [ARGS of mh_serve]: a new agent once the old one is gone
restart() {
	local h=$1 old n=200
	shift
	eval "old=\$MH_PID_$h"
	mh_kill_serve "$h"
	while ((n-- > 0)) && kill -0 "$old" 2>/dev/null; do sleep 0.05; done
	mh_serve "$h" "$@"
}

# src_fault FAULT FROM TO NAME --mode MODE [ARGS]: ferry migrate with
# FERRY_FAULT=FAULT in its own environment; it must die by SIGKILL (exit 137).
# OLD gets the tenant's init pid on FROM before.
src_fault() {
	local f=$1 from=$2 to=$3 name=$4 rc=0
	shift 4
	t_log "source fault $f: $name $from -> $to $*"
	OLD=$(mh_pid "$from" "$name")
	mh_exec "$from" env FERRY_FAULT="$f" FERRY_STATE_DIR="$T/state-$from" "$FERRY" migrate \
		"$name" --to "$(mh_addr "$to"):7000" --tls "$T/certs" --name "$from" --peer "$to" \
		--timeout "$(t_secs 10)" "$@" >"$T/out" 2>"$T/err" || rc=$?
	cat "$T/err"
	((rc == 137)) || t_fail "$f: ferry migrate exited $rc, want 137 (killed)"
}

# (self-checks at the end: a workload exits after it)
# ends_on FROM HOST NAME OLDPID: the migration FROM -> ... of NAME (its init
# OLDPID on FROM before) ended with NAME on HOST only (mh_assert_one_host),
# not stopped or traced; the other host's agent keeps no images of it.
ends_on() {
	local from=$1 h=$2 name=$3 old=$4 other n=150 pid
	[ "$h" = a ] && other=b || other=a
	MH_ONE_WAIT=20 mh_assert_one_host "$name" "$from" "$h" "$old"
	pid=$(mh_pid "$h" "$name")
	mh_exec "$h" grep -q "State:.*[RS]" "/proc/$pid/status" || t_fail "$name on $h is stopped"
	mh_exec "$h" grep -q "TracerPid:.0" "/proc/$pid/status" || t_fail "$name on $h is traced"
	n=150
	while ((n-- > 0)); do
		[ -z "$(find "$T/state-$other/migrations" -mindepth 1 -maxdepth 1 -type d \
			2>/dev/null)" ] && break
		sleep 0.1
	done
	((n > 0)) || t_fail "$other kept migration images: $(ls "$T/state-$other/migrations")"
	mh_assert_one_host "$name" "$from" "$h" "$old"
	# the killed source's packet-hold blackhole route is gone with its recovery
	local bh
	bh=$(ip -n "fym-$MH_ID-$from" route show type blackhole)
	[ -z "$bh" ] || t_fail "blackhole route left on $from: $bh"
}

# net_on HOST: the tenant's /32 route is on HOST only, its veth up there
net_on() {
	local h=$1 other n=100
	[ "$h" = a ] && other=b || other=a
	while ((n-- > 0)); do
		ip -n "fym-$MH_ID-$h" route show | grep -q "^$ADDR dev" &&
			! ip -n "fym-$MH_ID-$other" route show | grep -q "^$ADDR " && break
		sleep 0.1
	done
	((n > 0)) || t_fail "route to $ADDR: $h: '$(ip -n "fym-$MH_ID-$h" route show | grep "$ADDR")', $other: '$(ip -n "fym-$MH_ID-$other" route show | grep "$ADDR")'"
}

# the client must still be connected (it ends and reports at once on a reset)
client_alive() {
	kill -0 "$CPID" 2>/dev/null || t_fail "tcp_client died: $(cat "$C/err")"
	[ -s "$C/client.result" ] && t_fail "tcp_client ended: $(cat "$C/client.result")"
	t_log "tcp_client still connected"
}

# 1. stop-copy, killed during the transfer (a's egress slowed): CRIU loses its
#    peer and resumes the tenant; `ferry ps` on a settles the record (running).
mh_exec a tc qdisc replace dev lan0 root tbf rate 40mbit burst 64kb latency 400ms
OLD=$(mh_pid a rcv-mem)
mh_bg_migrate a b rcv-mem --mode stop-copy --timeout "$(t_secs 5)"
sleep 1
kill -9 "$MH_MIG_PID"
wait $MH_MIG 2>/dev/null || true
mh_exec a tc qdisc del dev lan0 root
ends_on a a rcv-mem "$OLD"

# 2. stop-copy, killed right after writing the commit marker, before CRIU got
#    "ok": CRIU resumes the source copy. b, in doubt, asks a's agent, which
#    sees the tenant alive: abort. b discards its copy.
src_fault src-crash-after-marker a b rcv-mem --mode stop-copy
ends_on a a rcv-mem "$OLD"
grep -q "source's agent says: abort" "$T/serve-b.log" || t_fail "b did not ask a's agent"
ls "$T/state-a/migrations/"*.aborted >/dev/null || t_fail "a keeps no abort decision"

# 3. stop-copy, killed after CRIU killed the source copy, before COMMIT: a's
#    agent answers commit (marker, tenant gone), b resumes it; a's record goes.
src_fault src-crash-before-commit a b rcv-mem --mode stop-copy
ends_on a b rcv-mem "$OLD"
grep -q "source's agent says: commit" "$T/serve-b.log" || t_fail "b did not ask a's agent"

# 4. the destination agent killed after the resume, before CRIU returned (its
#    record was written before the resume): the tenant runs on a, detached;
#    the restarted agent registers it running and confirms the source's retry.
restart a FERRY_FAULT=crash-after-resume
OLD=$(mh_pid b rcv-mem)
mh_bg_migrate b a rcv-mem --mode stop-copy --timeout "$(t_secs 10)"
n=200
while ((n-- > 0)) && kill -0 "$MH_PID_a" 2>/dev/null; do sleep 0.05; done
kill -0 "$MH_PID_a" 2>/dev/null && t_fail "a's agent did not crash"
restart a
rc=0
wait $MH_MIG || rc=$?
cat "$T/err"
((rc == 0)) || t_fail "b -> a with a's agent killed after the resume: exit $rc"
ends_on b a rcv-mem "$OLD"

# post-copy needs the pipe sysctls (--tune-host sets them; put back after)
SOFT=$(cat /proc/sys/fs/pipe-user-pages-soft)
MAXSZ=$(cat /proc/sys/fs/pipe-max-size)
t_defer "echo $SOFT >/proc/sys/fs/pipe-user-pages-soft; echo $MAXSZ >/proc/sys/fs/pipe-max-size"

# 5. post-copy, killed after the marker, before the source copy was killed:
#    CRIU's page server loses its peer and resumes the tenant, whose network
#    was cut; a's agent (asked by b) answers abort and plumbs it again.
src_fault src-crash-after-marker a b rcv-tcp --mode post-copy --tune-host
ends_on a a rcv-tcp "$OLD"
net_on a
client_alive

# 5b. post-copy, killed during the restore on b (RESTORE sent, CRIU not yet
#    answered): the same outcome, decided before any marker; b's session
#    ends before RESTORED and it discards its copy by itself.
src_fault src-crash-after-restore-sent a b rcv-tcp --mode post-copy --tune-host
ends_on a a rcv-tcp "$OLD"
net_on a
client_alive

# 6. stop-copy of the TCP tenant, killed after the source copy died: it runs
#    on b, the address with it (a's agent named explicitly this time).
src_fault src-crash-before-commit a b rcv-tcp --mode stop-copy \
	--source-agent "$(mh_addr a):7000"
ends_on a b rcv-tcp "$OLD"
net_on b
client_alive

# 7. no agent on the source (stopped: it forgets STATE/agent.addr, so the
#    migration names none): b cannot ask, holds its copy for its in-doubt
#    time (3 s here) and discards it; `ferry ps` on a alone settles a's
#    record (the tenant runs there again).
restart b FERRY_MIGRATE_INDOUBT_S=3
mh_kill_serve a
[ ! -e "$T/state-a/agent.addr" ] || t_fail "a stopped agent left its address behind"
src_fault src-crash-after-marker a b rcv-mem --mode stop-copy
ends_on a a rcv-mem "$OLD"
grep -q "source's agent says" "$T/serve-b.log" && t_fail "b asked an agent that does not run"
mh_serve a

sleep 0.5
mh_client_verdict "$CPID" "$C"
mh_verify b rcv-tcp "$RT"
# the workloads exit after their self-check: only now
mh_verify a rcv-mem "$RM"
