#!/bin/bash
# Pre-copy faults during the rounds (docs/migrate.md "Pre-copy", "Testing
# hooks"), each with round 1 in and round 2 under way: the source `ferry
# migrate` killed; the destination agent killed; the link between the hosts
# cut; and the source host's agent restarted (its start-up cleanup must leave
# the running migration's rounds alone: that migration then succeeds). After
# each fault the tenant runs on exactly one host (mh_assert_one_host), not
# stopped or traced, and neither host keeps a directory of the attempt (the
# source's pre-ID/ and out-ID/, the destination's ID/) once recovery ran; at
# the end, moved to b, it passes its self-check.
# Needs soft-dirty (skips elsewhere, like migrate_precopy).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_precopy_faults
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory
"$CR_CRIU" check --feature mem_dirty_track >/dev/null 2>&1 ||
	t_skip "pre-copy cannot run here: no soft-dirty memory tracking in this kernel ($(uname -r))"
. "$TESTS_ROOT/lib/mhosts.sh"

export MH_SERVE_TIMEOUT=20
mh_setup pcf
mh_serve a
mh_serve b
mkdir -p "$T/hide"
R="$T/hide/rootfs"
NAME=pcf-mem
ADDR=10.204.0.70
# a tenant that dirties a little memory: several rounds
mh_start a "$NAME" "$R" --net "$ADDR/24" -- /bin/wl_memory --mib 64 --dirty 8 --seed $((0x$MH_TOK))

# no_dirs: neither host keeps a directory of a migration (the destination's
# agent may still be reaping its page server: up to 15 s)
no_dirs() {
	local h n=150
	for h in a b; do
		while [ -n "$(find "$T/state-$h/migrations" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ] &&
			((n-- > 0)); do
			sleep 0.1
		done
		[ -z "$(find "$T/state-$h/migrations" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ] || {
			ls -la "$T/state-$h/migrations"
			t_fail "$h kept migration directories"
		}
	done
	[ -z "$(find "$T/state-a/migrations" -name '*.src' 2>/dev/null)" ] ||
		t_fail "a kept an in-flight record"
}

# on_a: the tenant runs on a only, running (not stopped, not traced); its
# self-check comes once at the end (a workload exits after it)
on_a() {
	local pid
	mh_assert_one_host "$NAME" a a
	pid=$(mh_pid a "$NAME")
	mh_exec a grep -q "State:.*[RS]" "/proc/$pid/status" || t_fail "tenant on a is stopped"
	mh_exec a grep -q "TracerPid:.0" "/proc/$pid/status" || t_fail "tenant on a is traced"
	no_dirs
}

# src_migrate FAULT [ARGS...]: ferry migrate a -> b in pre-copy with
# FERRY_FAULT=FAULT in its environment, in the background (MH_MIG)
src_migrate() {
	local f=$1
	shift
	_mh_prefix a
	"${MH_CMD[@]}" env FERRY_FAULT="$f" FERRY_FAULT_PAUSE_MS="${PAUSE_MS:-4000}" \
		FERRY_STATE_DIR="$T/state-a" "$FERRY" migrate "$NAME" --to "$(mh_addr b):7000" \
		--tls "$T/certs" --name a --peer b --mode pre-copy --precopy-rounds 4 \
		--precopy-shrink 100 --timeout 20 "$@" >"$T/out" 2>"$T/err" &
	MH_MIG=$!
}

t_log "source killed during round 2"
src_migrate src-crash-during-round
rc=0
wait "$MH_MIG" || rc=$?
cat "$T/err"
((rc == 137)) || t_fail "source fault: ferry migrate exited $rc, want 137 (killed)"
# before recovery: the rounds are there (what the fix must remove)
compgen -G "$T/state-a/migrations/pre-*" >/dev/null || t_fail "no pre-ID/ after the kill?"
on_a # its `ferry ps` settles the killed migration
t_log "source killed: tenant on a, nothing left"

t_log "destination agent killed during round 2"
mh_kill_serve b
mh_serve b FERRY_FAULT=crash-during-round
rc=0
mh_migrate a b "$NAME" --mode pre-copy --precopy-rounds 4 --precopy-shrink 100 --timeout 20 \
	>"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "destination killed: the migration succeeded"
grep -q "keeps running here" "$T/err" || t_fail "destination killed: where the tenant runs is not said"
mh_kill_serve b
mh_serve b # its start-up cleanup removes what the killed agent left
on_a
t_log "destination killed: tenant on a, nothing left"

# in_round_2: wait until round 1 is in and the source pauses in round 2
in_round_2() {
	local n=1200
	until grep -q "FERRY_FAULT=src-pause-during-round: pausing" "$T/err" 2>/dev/null; do
		kill -0 "$MH_MIG" 2>/dev/null || { cat "$T/err"; t_fail "ferry migrate ended before round 2"; }
		((n-- > 0)) || t_fail "round 2 never came"
		sleep 0.1
	done
}

t_log "link cut during round 2"
PAUSE_MS=3000 src_migrate src-pause-during-round
in_round_2
ip -n "fym-$MH_ID-a" link set lan0 down
rc=0
wait "$MH_MIG" || rc=$?
ip -n "fym-$MH_ID-a" link set lan0 up
cat "$T/err"
((rc != 0 && rc != 137)) || t_fail "link cut: ferry migrate exited $rc"
grep -q "keeps running here" "$T/err" || t_fail "link cut: where the tenant runs is not said"
grep -q "pre-copy round 2" "$T/err" || t_fail "link cut: not round 2 that failed"
on_a
t_log "link cut: tenant on a, nothing left"

t_log "source host's agent restarted during round 2: the migration goes on"
old=$(mh_pid a "$NAME")
PAUSE_MS=8000 src_migrate src-pause-during-round --json
in_round_2
compgen -G "$T/state-a/migrations/pre-*/round-1" >/dev/null || t_fail "round 1 not there yet"
mh_kill_serve a
mh_serve a
rc=0
wait "$MH_MIG" || rc=$?
cat "$T/err"
((rc == 0)) || {
	cat "$T/out"
	t_fail "the agent's restart broke the migration (exit $rc)"
}
mh_assert_one_host "$NAME" a b "$old"
no_dirs
mh_verify b "$NAME" "$R"
