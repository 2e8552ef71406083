#!/bin/bash
# The escape workload (wl_escape) runs as root in an --isolate tenant next
# to a neighbour tenant and tries to get out: mknod + read the host's disk,
# mount, write /proc/sys and sysrq-trigger, load a module, kexec, bpf, perf,
# keyrings, see or signal the neighbour, reach its abstract UNIX socket,
# raise its limits. Every attempt must fail, before and after a stop-copy
# migration to another host (where its isolation is CRIU's restore of it:
# capabilities, no_new_privs, seccomp, masks, user namespace, and the
# cgroup limits read back from the destination's files). The neighbour
# checks that no one ever reached its socket.
. "$TESTS_ROOT/lib/common.sh"
t_init iso_escape
. "$TESTS_ROOT/lib/cr.sh"
. "$TESTS_ROOT/lib/iso.sh"
cr_require
cr_need_wl wl_escape
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup isoe
mh_serve a
mh_serve b
SOCK=esc-$MH_TOK
RP="$T/rpeer" RE="$T/resc"
iso_rootfs "$RP"
ln -sf wl_escape "$RP/bin/iso-peer" # its own name in /proc/PID/comm
iso_mh_start a esc-peer "$RP" --isolate -- /bin/iso-peer --serve "$SOCK"
ppid=$(mh_pid a esc-peer)
iso_mh_start a esc "$RE" --isolate --memory 128M --pids 100 -- \
	/bin/iso-wl_escape --peer-pid "$ppid" --peer-comm iso-peer --abstract "$SOCK"
grep '^escape' "$RE/.ferry/console.log" | sed 's/^/   /'
grep -q '^escape: 0 of the attempts got through' "$RE/.ferry/console.log" || t_fail "an escape worked on a"
pid=$(mh_pid a esc)

# status_of HOST PID FIELD: a line of the tenant init's /proc status on HOST
status_of() { mh_exec "$1" cat "/proc/$2/status" | awk -v f="$3:" '$1 == f {print $2}'; }
caps=$(status_of a "$pid" CapBnd) nnp=$(status_of a "$pid" NoNewPrivs) sc=$(status_of a "$pid" Seccomp)
t_log "on a: CapBnd $caps NoNewPrivs $nnp Seccomp $sc"
[ "$caps" = 00000000a80425fb ] && [ "$nnp" = 1 ] && [ "$sc" = 2 ] || t_fail "not restricted on a"

t_log "stop-copy a -> b"
mh_migrate a b esc --mode stop-copy || t_fail "migration failed"
mh_assert_one_host esc a b "$pid"
pid=$(mh_pid b esc)
caps=$(status_of b "$pid" CapBnd) nnp=$(status_of b "$pid" NoNewPrivs) sc=$(status_of b "$pid" Seccomp)
t_log "on b: CapBnd $caps NoNewPrivs $nnp Seccomp $sc"
[ "$caps" = 00000000a80425fb ] && [ "$nnp" = 1 ] && [ "$sc" = 2 ] || t_fail "CRIU did not restore the restrictions on b"
# the limits, from b's own cgroup files
mh_ferry b ps --json >"$T/ps-b.json"
read -r mem pids < <(python3 -c '
import json, sys
t = [t for t in json.load(open(sys.argv[1]))["tenants"] if t["name"] == "esc"][0]["isolation"]
c = t["cgroups"]
print(*((c["unified"], c["unified"]) if "unified" in c else (c["memory"], c["pids"])))' "$T/ps-b.json")
case "$mem" in */ferry-esc-p*) ;; *) t_fail "b's cgroup $mem is not b's own" ;; esac
if [ -f "/sys/fs/cgroup$mem/memory.max" ]; then # cgroup v2 (the second kernel's guest)
	[ "$(cat "/sys/fs/cgroup$mem/memory.max")" = $((128 << 20)) ] || t_fail "memory.max on b"
	[ "$(cat "/sys/fs/cgroup$pids/pids.max")" = 100 ] || t_fail "pids.max on b"
	mh_exec b cat "/sys/fs/cgroup$pids/cgroup.procs" | grep -qx "$pid" || t_fail "the init is not in b's cgroup"
else
	[ "$(cat "/sys/fs/cgroup/memory$mem/memory.limit_in_bytes")" = $((128 << 20)) ] || t_fail "memory limit on b"
	[ "$(cat "/sys/fs/cgroup/pids$pids/pids.max")" = 100 ] || t_fail "pids.max on b"
	mh_exec b cat "/sys/fs/cgroup/pids$pids/cgroup.procs" | grep -qx "$pid" || t_fail "the init is not in b's cgroup"
fi
t_log "limits on b: memory $mem pids $pids"

mh_verify b esc "$RE"
grep '^escape' "$RE/.ferry/console.log" | tail -n 16 | sed 's/^/   /'
mh_verify a esc-peer "$RP"
echo PASS
