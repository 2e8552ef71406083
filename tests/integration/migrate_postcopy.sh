#!/bin/bash
# Post-copy: the tenant resumes on b before its memory arrived; pages follow
# on demand (and in the background) over a second authenticated session from
# CRIU's lazy page server on a. Cases:
#  - the pipe sysctls at their defaults and no --tune-host: exit 7 before
#    anything is frozen;
#  - the restore fails on b (root file system missing, found only by the
#    restore): the tenant runs on a again, network included, and its TCP
#    client on c keeps its connection;
#  - a 256 MiB memory tenant and a TCP server (client on c) move a -> b and
#    pass their self-checks; a keeps no route.
# After each attempt exactly one host runs each tenant (mh_assert_one_host).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_postcopy
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory wl_tcp_server tcp_client
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup pc
# restart_b [ARGS of mh_serve]: a new agent on b once the old one is gone
# (mh_kill_serve cannot wait for a process that is not the shell's child)
restart_b() {
	local old=$MH_PID_b n=200
	mh_kill_serve b
	while ((n-- > 0)) && kill -0 "$old" 2>/dev/null; do sleep 0.05; done
	kill -0 "$old" 2>/dev/null && t_fail "b's agent (pid $old) does not stop"
	mh_serve b "$@"
}
mh_serve a
mh_serve b
mkdir -p "$T/hide"
RM="$T/hide/mem"
RT="$T/hide/tcp"
ADDR=10.204.0.70
CMD="/bin/wl_memory --mib 256 --dirty 4 --seed $((0x$MH_TOK))"
mh_start a mig-pcm "$RM" -- $CMD
mh_start a mig-pct "$RT" --net "$ADDR/24" -- /bin/wl_tcp_server --port 7000

C="$T/client"
mh_client_start "$C" "$ADDR" 7000 20
CPID=$MH_CLIENT_PID

# 1. the kernel's default pipe limits, no --tune-host: a clear error, nothing frozen
SOFT=$(cat /proc/sys/fs/pipe-user-pages-soft)
t_defer "echo $SOFT >/proc/sys/fs/pipe-user-pages-soft"
echo 16384 >/proc/sys/fs/pipe-user-pages-soft
rc=0
mh_migrate a b mig-pcm --mode post-copy 2>"$T/err" || rc=$?
cat "$T/err"
echo "$SOFT" >/proc/sys/fs/pipe-user-pages-soft
((rc == 7)) || t_fail "post-copy without the pipe sysctls: exit $rc, want 7"
grep -q "pipe-user-pages-soft.*--tune-host" "$T/err" || t_fail "no-sysctl: message"
mh_assert_one_host mig-pcm a a

# 2. the restore fails on b after the freeze: the tenant runs on a again
restart_b FERRY_FAULT=skip-precheck -- unshare --mount sh -c \
	'mount -t tmpfs none "$0" && exec "$@"' "$T/hide"
rc=0
mh_migrate a b mig-pct --mode post-copy --tune-host --timeout "$(t_secs 10)" >"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "post-copy onto a missing root file system succeeded"
grep -q "runs on this host again" "$T/err" || t_fail "failed restore: message"
mh_assert_one_host mig-pct a a
ip -n "fym-$MH_ID-a" route show | grep -q "^$ADDR " || t_fail "a lost the route to $ADDR"
mh_exec a grep -q "State:.*[RS]" "/proc/$(mh_pid a mig-pct)/status" || t_fail "tenant on a is stopped"
n=100
while ((n-- > 0)) && [ -n "$(ls -A "$T/state-b/migrations" 2>/dev/null)" ]; do sleep 0.1; done
((n > 0)) || t_fail "b kept images of the failed migration"

# 3. both tenants move a -> b in post-copy
restart_b
for name in mig-pct mig-pcm; do
	old=$(mh_pid a "$name")
	mh_migrate a b "$name" --mode post-copy --tune-host --json >"$T/$name.json" \
		2>"$T/err" || {
		cat "$T/$name.json" "$T/err"
		t_fail "post-copy migration of $name failed"
	}
	python3 - "$T/$name.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["moved"] and d["mode"] == "post-copy", d
assert d["downtime_ms"] > 0 and d["pages_done_ms"] >= 0, d
assert d["pages_raw_bytes"] > 0, d
print("--", d["tenant"], "downtime_ms", d["downtime_ms"], "pages_done_ms", d["pages_done_ms"],
      "pages", d["pages_raw_bytes"], "files", d["files_raw_bytes"])
PY
	mh_assert_one_host "$name" a b "$old"
done
# seen once (not reproduced): CRIU wrote the memory into the images instead of
# serving it lazily; the migration still worked. Reported, not failed.
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["pages_raw_bytes"] > 200 << 20, d' \
	"$T/mig-pcm.json" 2>/dev/null || t_log "NOTE: the memory did not come as lazy pages"
mh_verify b mig-pcm "$RM"
! ip -n "fym-$MH_ID-a" route show | grep -q "^$ADDR " || t_fail "a kept its route to $ADDR"
sleep 0.5
mh_client_verdict "$CPID" "$C"
mh_verify b mig-pct "$RT"
