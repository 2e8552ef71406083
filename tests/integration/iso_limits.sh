#!/bin/bash
# A cgroup per tenant, beneath ferry's own: a memory hog is killed inside
# its tenant only (its init, a neighbour tenant and the host go on), a fork
# bomb stops at pids.max; the tenant sees its cgroup as its root (cgroup
# namespace); `ferry ps --json` shows limits and usage. After a dump the
# test removes the tenants' cgroups: the restore makes them again from the
# record, the limits are read back from the cgroup files, and both trials
# are stopped once more.
. "$TESTS_ROOT/lib/common.sh"
t_init iso_limits
. "$TESTS_ROOT/lib/cr.sh"
. "$TESTS_ROOT/lib/iso.sh"
cr_require
cr_need_wl wl_limits wl_counter
[ -d /sys/fs/cgroup/memory ] && [ -d /sys/fs/cgroup/pids ] || t_skip "no v1 memory and pids hierarchies (cgroup v2 hosts: not covered by this test yet)"

HOG=il-hog-$$ BOMB=il-bomb-$$ NB=il-nb-$$
iso_cr_start "$NB" "$T/rn" -- /bin/iso-wl_counter
iso_cr_start "$HOG" "$T/rh" --userns --memory 64M --pids 64 --cpus 0.5 -- /bin/iso-wl_limits --hog-mb 256
iso_cr_start "$BOMB" "$T/rb" --userns --pids 32 -- /bin/iso-wl_limits --forkbomb 1000
grep -E "^(hog|forkbomb):" "$T/rh/.ferry/console.log" "$T/rb/.ferry/console.log" | sed 's/^/   /'

# cg_dir NAME CTRL: the tenant's cgroup directory in hierarchy CTRL
cg_dir() {
	local rel
	rel=$("$FERRY" ps --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == sys.argv[1]:
        print(t["isolation"]["cgroups"][sys.argv[2]])' "$1" "$2")
	[ -n "$rel" ] || t_fail "$1: no cgroup in ferry ps --json"
	echo "/sys/fs/cgroup/$2$rel"
}

# check_limits: the limits as files of the tenants' cgroups
check_limits() {
	local d
	d=$(cg_dir "$HOG" memory)
	[ "$(cat "$d/memory.limit_in_bytes")" = $((64 << 20)) ] || t_fail "$HOG: memory limit $(cat "$d/memory.limit_in_bytes")"
	[ "$(cat "$(cg_dir "$HOG" pids)/pids.max")" = 64 ] || t_fail "$HOG: pids.max"
	[ "$(cat "$(cg_dir "$HOG" cpu)/cpu.cfs_quota_us")" = 50000 ] || t_fail "$HOG: cpu quota"
	[ "$(cat "$(cg_dir "$BOMB" pids)/pids.max")" = 32 ] || t_fail "$BOMB: pids.max"
	grep -qx "$(cr_pid "$HOG")" "$(cg_dir "$HOG" memory)/cgroup.procs" || t_fail "$HOG's init is not in its memory cgroup"
	# beneath ferry's own memory cgroup
	own=$(sed -n 's/^[0-9]*:memory://p' /proc/self/cgroup)
	case "$d" in "/sys/fs/cgroup/memory${own%/}/ferry-$HOG"*) ;; *) t_fail "$d is not beneath ferry's cgroup $own" ;; esac
	t_log "limits in force: $d"
}
check_limits
"$FERRY" ps --json | python3 -c '
import json, sys
t = [t for t in json.load(sys.stdin)["tenants"] if t["name"] == sys.argv[1]][0]["isolation"]
u = t["usage"]
assert t["memory_max"] == 64 << 20 and t["pids_max"] == 64 and t["cpu_milli"] == 500, t
assert u["memory_max"] == 64 << 20 and u["oom_kills"] >= 1 and u["pids"] >= 1, u
print("   ps:", u)' "$HOG" || t_fail "ferry ps --json"
# the tenant sees its cgroup as its root
pid=$(cr_pid "$HOG")
[ "$(readlink /proc/$pid/ns/cgroup)" != "$(readlink /proc/self/ns/cgroup)" ] || t_fail "no cgroup namespace"
nsenter -t "$pid" -U -C -m -p -r -w cat /proc/1/cgroup >"$T/cg-inside" || t_fail "cannot read the tenant's /proc/1/cgroup"
grep -q '^[0-9]*:memory:/$' "$T/cg-inside" || { cat "$T/cg-inside"; t_fail "the tenant does not see its memory cgroup as /"; }

t_log "dump, remove the cgroups, restore"
cr_dump_restore_hook() { :; }
for n in "$HOG" "$BOMB"; do
	dirs=$(for c in memory pids cpu cpuacct devices blkio; do cg_dir "$n" "$c"; done)
	"$FERRY" dump "$n" -D "$T/img-$n" || t_fail "dump of $n failed"
	for d in $dirs; do rmdir "$d" 2>/dev/null || true; done
	[ ! -d "$(echo "$dirs" | head -1)" ] || t_fail "cgroup of $n still there"
	"$FERRY" restore -D "$T/img-$n" || t_fail "restore of $n failed"
done
check_limits
cr_verify "$HOG" "$T/rh"
cr_verify "$BOMB" "$T/rb"
grep -E "^(hog|forkbomb):" "$T/rh/.ferry/console.log" "$T/rb/.ferry/console.log" | sed 's/^/   /'
cr_verify "$NB" "$T/rn"
echo PASS
