#!/bin/bash
# ferry run / ps / kill / rm on a busybox container tenant: life cycle, name
# conflict, invalid names, a missing rootfs, and no processes left behind.
. "$TESTS_ROOT/lib/common.sh"
t_init tenant_run

R="$T/rootfs"
t_rootfs "$R"
NAME=tr-$$
t_defer "$FERRY rm --force $NAME"

pid_of() { sed -n 's/^init_pid=//p' "$FERRY_STATE_DIR/tenants/$1/record"; }

t_log "run"
"$FERRY" run "$NAME" --rootfs "$R" -- sh -c 'while true; do echo tick; sleep 0.2; done' >"$T/run.out"
cat "$T/run.out"
grep -q "^$NAME running, pid [0-9]" "$T/run.out" || t_fail "unexpected run output"
PID=$(pid_of "$NAME")
[ -d "/proc/$PID" ] || t_fail "init $PID is not running"
[ "$(readlink "/proc/$PID/ns/pid")" != "$(readlink /proc/self/ns/pid)" ] || t_fail "no own PID ns"
[ "$(readlink "/proc/$PID/ns/net")" != "$(readlink /proc/self/ns/net)" ] || t_fail "no own net ns"
# PID 1 inside, session leader, hostname, only stdio open, stdio inside the rootfs
grep -q '^NSpid:.*[[:space:]]1$' "/proc/$PID/status" || t_fail "init is not PID 1 in its namespace"
[ "$(awk '{print $6}' "/proc/$PID/stat")" = "$PID" ] || t_fail "init is not a session leader"
[ "$(nsenter -t "$PID" -u hostname)" = "$NAME" ] || t_fail "hostname is not the tenant name"
[ "$(ls "/proc/$PID/fd" | sort | tr '\n' ' ')" = "0 1 2 " ] || t_fail "unexpected fds: $(ls -l /proc/$PID/fd)"
[ "$(readlink "/proc/$PID/fd/1")" = "/.ferry/console.log" ] || t_fail "stdout not the console log"
[ "$(readlink "/proc/$PID/fd/0")" = "/dev/null" ] || t_fail "stdin not /dev/null"
mounts=$(cat "/proc/$PID/mounts")
echo "$mounts"
for m in "proc /proc proc" "tmpfs /dev tmpfs" "devpts /dev/pts devpts"; do
	grep -q "^$m " <<<"$mounts" || t_fail "no '$m' mount in the tenant"
done
# the default isolation adds a read-only /sys, masked and read-only /proc
# paths and the /dev nodes bound from the rootfs (docs/isolation.md):
# anything else is a host mount that leaked
leaked=$(awk '$2 != "/" && $2 != "/proc" && $2 != "/sys" && $2 != "/dev" &&
	$2 !~ "^/proc/(kcore|keys|latency_stats|timer_list|timer_stats|sched_debug|acpi|asound|scsi|bus|fs|irq|sys|sysrq-trigger)$" &&
	$2 != "/sys/firmware" && $2 !~ "^/dev/(null|zero|full|random|urandom|tty|pts)$"' <<<"$mounts")
[ -z "$leaked" ] || t_fail "unexpected mounts in the tenant (host mounts leaked?): $leaked"
for d in null zero random urandom tty; do
	[ -c "/proc/$PID/root/dev/$d" ] || t_fail "no /dev/$d in the tenant"
done
t_wait_file "$FERRY_STATE_DIR/tenants/$NAME/console.log" 5
for i in $(seq 50); do grep -q tick "$FERRY_STATE_DIR/tenants/$NAME/console.log" && break; sleep 0.1; done
grep -q tick "$FERRY_STATE_DIR/tenants/$NAME/console.log" || t_fail "no output in console.log"

t_log "ps"
"$FERRY" ps | tee "$T/ps.out"
grep -Eq "^$NAME +container +running +$PID " "$T/ps.out" || t_fail "ps does not list the tenant"
"$FERRY" ps --json >"$T/ps.json"
python3 -m json.tool "$T/ps.json" >/dev/null || t_fail "ps --json is not JSON"
python3 - "$T/ps.json" "$NAME" "$PID" <<'PY' || t_fail "ps --json content"
import json, sys
d = json.load(open(sys.argv[1]))
t = [x for x in d["tenants"] if x["name"] == sys.argv[2]]
assert len(t) == 1 and t[0]["state"] == "running" and t[0]["pid"] == int(sys.argv[3]), t
assert t[0]["kind"] == "container" and t[0]["argv"][0] == "sh", t
PY

t_log "conflicts and bad input"
t_expect_fail 4 "already exists" "$FERRY" run "$NAME" --rootfs "$R" -- sh
t_expect_fail 2 "invalid tenant name" "$FERRY" run "../x" --rootfs "$R" -- sh
t_expect_fail 2 "invalid tenant name" "$FERRY" run "has space" --rootfs "$R" -- sh
t_expect_fail 2 "host's own root" "$FERRY" run tr-root-$$ --rootfs / -- sh
t_expect_fail 2 "not a directory" "$FERRY" run tr-file-$$ --rootfs "$R/etc/passwd" -- sh
t_expect_fail 3 "rootfs .*nope" "$FERRY" run tr-missing-$$ --rootfs "$T/nope" -- sh
[ ! -e "$FERRY_STATE_DIR/tenants/tr-missing-$$" ] || t_fail "failed run left a record"
t_expect_fail 1 "cannot run 'no-such-cmd'" "$FERRY" run tr-nocmd-$$ --rootfs "$R" -- no-such-cmd
[ ! -e "$FERRY_STATE_DIR/tenants/tr-nocmd-$$" ] || t_fail "failed run left a record"
t_expect_fail 3 "no tenant" "$FERRY" kill nosuch
t_expect_fail 3 "no tenant" "$FERRY" rm nosuch
t_expect_fail 4 "is running" "$FERRY" rm "$NAME"

t_log "kill"
"$FERRY" kill "$NAME"
[ ! -d "/proc/$PID" ] || grep -q '^State:.*Z' "/proc/$PID/status" || t_fail "init $PID survived kill"
"$FERRY" ps | grep -Eq "^$NAME +container +gone " || t_fail "killed tenant is not gone"
t_expect_fail 4 "not running" "$FERRY" kill "$NAME"

t_log "a gone tenant's name can be reused; a dead init is noticed"
"$FERRY" run "$NAME" --rootfs "$R" -- sleep 1000 >/dev/null
PID2=$(pid_of "$NAME")
kill -9 "$PID2"
for i in $(seq 50); do [ -d "/proc/$PID2" ] && ! grep -q '^State:.*Z' "/proc/$PID2/status" 2>/dev/null || break; sleep 0.1; done
"$FERRY" ps | grep -Eq "^$NAME +container +gone " || t_fail "dead init not noticed by ps"

t_log "rm"
"$FERRY" rm "$NAME"
[ ! -e "$FERRY_STATE_DIR/tenants/$NAME" ] || t_fail "rm left the tenant dir"
"$FERRY" ps | grep -q "^$NAME " && t_fail "ps still lists removed tenant"

t_log "run --json, --help"
"$FERRY" run "$NAME" --json --rootfs "$R" -- sleep 1000 >"$T/run.json"
python3 - "$T/run.json" "$NAME" <<'PY' || t_fail "run --json content"
import json, os, sys
d = json.load(open(sys.argv[1]))
assert d["name"] == sys.argv[2] and d["state"] == "running" and d["pid"] > 1, d
assert d["address"] is None and os.path.islink(d["console"]), d
PY
"$FERRY" rm --force "$NAME"
for c in run ps kill rm check; do
	"$FERRY" "$c" --help | grep -q "^usage: ferry $c" || t_fail "ferry $c --help"
done
t_expect_fail 2 "" "$FERRY" kill
t_expect_fail 2 "unknown signal" "$FERRY" kill "$NAME" --signal NOPE

t_log "kill --signal: TERM works for an init that handles it, else a clear error"
"$FERRY" run "$NAME" --rootfs "$R" -- sh -c 'trap "exit 0" TERM; while true; do sleep 0.1; done' >/dev/null
"$FERRY" kill --signal TERM "$NAME"
"$FERRY" ps | grep -Eq "^$NAME +container +gone " || t_fail "TERM did not end the tenant"
"$FERRY" rm "$NAME"
"$FERRY" run "$NAME" --rootfs "$R" -- sleep 1000 >/dev/null
t_expect_fail 1 "still alive" "$FERRY" kill --signal SIGTERM --timeout 1 "$NAME"
"$FERRY" ps | grep -Eq "^$NAME +container +running " || t_fail "tenant should still run"
"$FERRY" kill "$NAME"
"$FERRY" rm "$NAME"

t_log "rm --force kills"
"$FERRY" run "$NAME" --rootfs "$R" -- sleep 1000 >/dev/null
PID3=$(pid_of "$NAME")
"$FERRY" rm --force "$NAME"
[ ! -d "/proc/$PID3" ] || grep -q '^State:.*Z' "/proc/$PID3/status" || t_fail "rm --force left $PID3"

t_log "no leftover processes"
pgrep -f "while true; do echo tick" && t_fail "leftover tenant processes"
echo PASS
