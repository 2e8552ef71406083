#!/bin/bash
# `ferry kill` (KILL and TERM) and `ferry rm --force` end every process of a
# tenant, not only its init: a process tree (dumped by pid with --leave-running, so registered
# and still running) with children and grandchildren, and a container whose
# init has children and grandchildren.
. "$TESTS_ROOT/lib/common.sh"
t_init tenant_kill_tree
. "$TESTS_ROOT/lib/cr.sh"
cr_require

# descendants PID: PID and every process below it (all threads' children).
descendants() {
	local p=$1 c
	echo "$p"
	for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do
		descendants "$c"
	done
}

# gone PID...: none of them alive (a zombie counts as gone).
all_gone() {
	local p
	for p in "$@"; do
		[ -d "/proc/$p" ] || continue
		grep -q '^State:.*Z' "/proc/$p/status" 2>/dev/null && continue
		echo "pid $p ($(cat /proc/"$p"/comm 2>/dev/null)) survived"
		return 1
	done
}

# wait_tree PID N: PID's tree has at least N processes.
wait_tree() {
	local n=50
	while ((n-- > 0)); do
		(($(descendants "$1" | wc -l) >= $2)) && return 0
		sleep 0.1
	done
	t_fail "the tree of $1 has $(descendants "$1" | wc -l) processes, want $2"
}

# A shell whose children are shells with children of their own.
TREE='sleep 1000 & sh -c "sleep 1000 & sleep 1000 & wait" & sh -c "sh -c \"sleep 1000 & wait\" & wait" & wait'

# proctree NAME: a detached tree, registered running under NAME; prints its pids.
proctree() {
	local name=$1 d="$T/$1" pid
	mkdir -p "$d"
	(setsid sh -c "echo \$\$ >'$d/pid.tmp'; mv '$d/pid.tmp' '$d/pid'; $TREE" \
		</dev/null >"$d/out" 2>&1 &)
	t_wait_file "$d/pid" 20
	pid=$(cat "$d/pid")
	wait_tree "$pid" 8
	"$FERRY" dump --pid "$pid" --name "$name" -D "$d/img" --leave-running >&2 ||
		t_fail "dump --pid --leave-running of $name failed"
	[ "$(cr_state "$name")" = running ] || t_fail "$name is not registered running"
	descendants "$pid"
}

t_log "process tree: ferry kill"
PIDS=$(proctree kt-pt)
t_defer "kill -9 $(echo $PIDS); '$FERRY' rm --force kt-pt"
echo "tree: $(echo $PIDS)"
"$FERRY" kill kt-pt || t_fail "ferry kill kt-pt failed"
all_gone $PIDS || t_fail "ferry kill left processes of the process tree"
[ "$(cr_state kt-pt)" = gone ] || t_fail "kt-pt not marked gone"
"$FERRY" rm kt-pt

t_log "process tree: ferry rm --force"
PIDS=$(proctree kt-pt2)
t_defer "kill -9 $(echo $PIDS); '$FERRY' rm --force kt-pt2"
"$FERRY" rm --force kt-pt2 || t_fail "ferry rm --force kt-pt2 failed"
all_gone $PIDS || t_fail "ferry rm --force left processes of the process tree"
[ -z "$(cr_state kt-pt2)" ] || t_fail "kt-pt2 still registered"

t_log "process tree: ferry kill --signal TERM reaches every process"
PIDS=$(proctree kt-pt3)
t_defer "kill -9 $(echo $PIDS); '$FERRY' rm --force kt-pt3"
"$FERRY" kill --signal TERM kt-pt3 || t_fail "ferry kill --signal TERM kt-pt3 failed"
all_gone $PIDS || t_fail "ferry kill --signal TERM left processes of the process tree"
"$FERRY" rm kt-pt3

# ctr NAME: a container whose init has children and grandchildren; its pids.
ctr() {
	local name=$1 r="$T/$1-root" pid
	t_rootfs "$r"
	"$FERRY" run "$name" --rootfs "$r" -- sh -c "$TREE" >&2 || t_fail "ferry run $name failed"
	pid=$(cr_pid "$name")
	wait_tree "$pid" 8
	descendants "$pid"
}

t_log "container: ferry kill"
PIDS=$(ctr kt-ctr)
t_defer "kill -9 $(echo $PIDS); '$FERRY' rm --force kt-ctr"
echo "container: $(echo $PIDS)"
"$FERRY" kill kt-ctr || t_fail "ferry kill kt-ctr failed"
all_gone $PIDS || t_fail "ferry kill left processes of the container"
[ "$(cr_state kt-ctr)" = gone ] || t_fail "kt-ctr not marked gone"
"$FERRY" rm kt-ctr

t_log "container: ferry rm --force"
PIDS=$(ctr kt-ctr2)
t_defer "kill -9 $(echo $PIDS); '$FERRY' rm --force kt-ctr2"
"$FERRY" rm --force kt-ctr2 || t_fail "ferry rm --force kt-ctr2 failed"
all_gone $PIDS || t_fail "ferry rm --force left processes of the container"
[ -z "$(cr_state kt-ctr2)" ] || t_fail "kt-ctr2 still registered"
t_log "ok"
