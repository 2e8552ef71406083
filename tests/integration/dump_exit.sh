#!/bin/bash
# A tenant that exits while it is being dumped: either the dump completes
# (state dumped, a complete set) or it fails with a clear error and the
# registry says gone (never frozen, never running for a dead init), and no
# half-written set is left behind. Several tries with different timings:
#  - the init is SIGKILLed after a delay while `ferry dump` runs;
#  - the init exits by itself after a short delay.
. "$TESTS_ROOT/lib/common.sh"
t_init dump_exit
. "$TESTS_ROOT/lib/cr.sh"
cr_require

R="$T/rootfs"
t_rootfs "$R"
ok=0 failed=0

# check_outcome NAME DIR RC: the invariants above
check_outcome() {
	local name=$1 dir=$2 rc=$3 st
	st=$(cr_state "$name")
	if ((rc == 0)); then
		ok=$((ok + 1))
		[ "$st" = dumped ] || t_fail "$name: dump succeeded but state is $st"
		"$FERRY" restore --verify-only -D "$dir" >/dev/null || t_fail "$name: set incomplete"
	else
		failed=$((failed + 1))
		cat "$T/err"
		grep -Eq "exited during the dump|is not running" "$T/err" ||
			t_fail "$name: unclear error: $(cat "$T/err")"
		[ "$st" = gone ] || t_fail "$name: dump failed but state is $st"
		[ ! -e "$dir/manifest.ferry" ] || t_fail "$name: a manifest was left in $dir"
		[ -z "$(ls -A "$dir" 2>/dev/null)" ] || t_fail "$name: files left in $dir"
	fi
}

i=0
for delay in 0 0.01 0.02 0.03 0.05 0.08; do
	i=$((i + 1))
	name=de-kill$i
	t_defer "'$FERRY' kill $name; '$FERRY' rm $name"
	"$FERRY" run "$name" --rootfs "$R" -- /bin/sleep 1000 >/dev/null || t_fail "run $name"
	pid=$(cr_pid "$name")
	"$FERRY" dump "$name" -D "$T/img-$name" >"$T/out" 2>"$T/err" &
	dpid=$!
	sleep "$delay"
	kill -9 "$pid" 2>/dev/null || true
	rc=0
	wait "$dpid" || rc=$?
	t_log "$name: killed after ${delay}s: dump exit $rc"
	check_outcome "$name" "$T/img-$name" "$rc"
done

for delay in 0.05 0.1 0.15; do
	i=$((i + 1))
	name=de-exit$i
	t_defer "'$FERRY' kill $name; '$FERRY' rm $name"
	"$FERRY" run "$name" --rootfs "$R" -- /bin/sleep "$delay" >/dev/null || t_fail "run $name"
	rc=0
	"$FERRY" dump "$name" -D "$T/img-$name" >"$T/out" 2>"$T/err" || rc=$?
	t_log "$name: exits after ${delay}s: dump exit $rc"
	check_outcome "$name" "$T/img-$name" "$rc"
done
t_log "$ok dumps completed, $failed failed cleanly"
((failed > 0)) || t_fail "no try hit the exit: the test did not test anything"
