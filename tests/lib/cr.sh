# Helpers for dump/restore tests (source after common.sh and t_init).
# A workload runs as a container tenant (`ferry run`) in a minimal rootfs;
# the workload protocol (tests/workloads/README.md) goes through ROOTFS/tmp.

# cr_require: skip unless root, CRIU and the workloads are there.
cr_require() {
	(($(id -u) == 0)) || t_skip "needs root"
	[ -x "$WORKLOADS/wl_counter" ] || t_skip "workloads not built (make test-bins)"
	"$FERRY" check >/dev/null 2>&1 || true
	local c=${FERRY_CRIU:-}
	[ -n "$c" ] || c=$(cat "$TESTS_ROOT/../.deps/criu-path" 2>/dev/null || command -v criu || true)
	[ -n "$c" ] && "$c" check >/dev/null 2>&1 || t_skip "no working CRIU (make deps)"
	CR_CRIU=$c
}

# cr_need_wl NAME...: skip unless these workloads are built
cr_need_wl() {
	for w in "$@"; do
		[ -x "$WORKLOADS/$w" ] || t_skip "workload $w not built"
	done
}

# cr_pid NAME: the tenant's init pid on the host, from `ferry ps --json`.
cr_pid() {
	"$FERRY" ps --json | python3 -c '
import json, sys
name = sys.argv[1]
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == name:
        print(t["pid"] or "")
' "$1"
}

# cr_state NAME: the tenant's state in the registry ("" if none).
cr_state() {
	"$FERRY" ps --json | python3 -c '
import json, sys
name = sys.argv[1]
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == name:
        print(t["state"])
' "$1"
}

# cr_start NAME ROOTFS [ferry run options] -- CMD...: a fresh rootfs with the
# workloads, the tenant started, its cleanup registered, ready awaited.
cr_start() {
	local name=$1 r=$2
	shift 2
	t_rootfs "$r"
	rm -f "$r/tmp/wl.ready" "$r/tmp/wl.result"
	t_defer "'$FERRY' kill '$name'; '$FERRY' rm '$name'"
	"$FERRY" run "$name" --rootfs "$r" "$@" || t_fail "ferry run $name failed"
	t_wait_file "$r/tmp/wl.ready" 30
}

# cr_verify NAME ROOTFS: SIGUSR1 to the (restored) init, wait for PASS.
cr_verify() {
	local name=$1 r=$2 pid res
	pid=$(cr_pid "$name")
	[ -n "$pid" ] || t_fail "$name has no pid in ferry ps"
	kill -0 "$pid" || t_fail "$name: pid $pid is not alive"
	kill -USR1 "$pid"
	t_wait_file "$r/tmp/wl.result" 60
	res=$(cat "$r/tmp/wl.result")
	t_log "$name: $res"
	[ "$res" = PASS ] || {
		tail -n 20 "$r/.ferry/console.log" 2>/dev/null || true
		t_fail "$name: workload says '$res'"
	}
}

# cr_dump_restore NAME DIR [dump options]: dump (which stops the tenant),
# check the registry, restore, check it runs again under a new pid.
cr_dump_restore() {
	local name=$1 dir=$2 old new
	shift 2
	old=$(cr_pid "$name")
	"$FERRY" dump "$name" -D "$dir" "$@" || t_fail "dump of $name failed"
	[ -f "$dir/manifest.ferry" ] || t_fail "no manifest in $dir"
	[ "$(cr_state "$name")" = dumped ] || t_fail "$name not marked dumped: $(cr_state "$name")"
	"$FERRY" restore -D "$dir" || t_fail "restore of $name failed"
	[ "$(cr_state "$name")" = running ] || t_fail "$name not running after restore"
	new=$(cr_pid "$name")
	[ -n "$new" ] && kill -0 "$new" || t_fail "$name: restored pid '$new' not alive"
	t_log "$name: pid $old -> $new"
}

# cr_wait_gone PID [SECONDS]: until the pid is free again (our PID 1 reaps
# orphans late, and a plain tree is restored at its old pids).
cr_wait_gone() {
	local pid=$1 n=$((${2:-10} * 10))
	while ((n-- > 0)); do
		[ -d "/proc/$pid" ] || return 0
		sleep 0.1
	done
	t_fail "pid $pid still exists"
}

# cr_workload_test NAME WORKLOAD [ARGS...]: the whole cycle for one workload
# in a container: start, let it work, dump, restore, verify.
cr_workload_test() {
	local name=$1 wl=$2 r="$T/rootfs"
	shift 2
	cr_need_wl "$wl"
	cr_start "$name" "$r" -- "/bin/$wl" "$@"
	sleep 0.5
	cr_dump_restore "$name" "$T/img"
	sleep 0.5
	cr_verify "$name" "$r"
}
