#!/bin/bash
# Pre-copy as the default: where the kernel tracks dirty memory, `--mode
# auto` is pre-copy, and the moves the other migration tests make in
# stop-copy pass through it: a TCP server moved back and forth a <-> b while
# tcp_client on c keeps ONE connection (no reset, no lost or repeated
# answer); `ferry evacuate --mode auto` of three tenants; the destination
# agent killed during the transfer (FERRY_FAULT=crash-during-transfer, in the
# first round) with the tenant left running on a. After each move the tenant
# runs on exactly one host (mh_assert_one_host) and the report says pre-copy.
# Needs soft-dirty (skips elsewhere, like migrate_precopy).
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_precopy_moves
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_tcp_server tcp_client wl_counter wl_memory
"$CR_CRIU" check --feature mem_dirty_track >/dev/null 2>&1 ||
	t_skip "pre-copy cannot run here: no soft-dirty memory tracking in this kernel ($(uname -r))"
. "$TESTS_ROOT/lib/mhosts.sh"

export MH_SERVE_TIMEOUT=20
mh_setup pcm
mh_serve a
mh_serve b
MOVES=${PRECOPY_MOVES:-6}

# is_precopy JSON: the report of a move that went through pre-copy rounds
is_precopy() {
	python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mode"] == "pre-copy" and d["moved"] and len(d["precopy"]["rounds"]) >= 1, d' "$1"
}

t_log "back and forth, auto (pre-copy), one TCP connection"
NAME=pcm-tcp
R="$T/rootfs"
ADDR=10.204.0.52
PORT=$((7100 + 0x$MH_TOK % 20000))
mh_start a "$NAME" "$R" --net "$ADDR/24" -- /bin/wl_tcp_server --port "$PORT"
C="$T/client"
mh_client_start "$C" "$ADDR" "$PORT" 10
CPID=$MH_CLIENT_PID
from=a to=b
for i in $(seq 1 "$MOVES"); do
	old=$(mh_pid "$from" "$NAME")
	# auto on purpose: on this host it must mean pre-copy
	mh_migrate "$from" "$to" "$NAME" --mode auto --timeout 60 --json >"$T/m.json" || {
		cat "$T/m.json"
		tail "$T/serve-$to.log"
		t_fail "move $i ($from -> $to) failed"
	}
	is_precopy "$T/m.json" || t_fail "move $i did not go through pre-copy"
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print("-- %2s %s->%s rounds %d downtime %.0f ms total %.0f ms" % (sys.argv[2], sys.argv[3], sys.argv[4], len(d["precopy"]["rounds"]), d["downtime_ms"], d["total_ms"]))' \
		"$T/m.json" "$i" "$from" "$to"
	mh_assert_one_host "$NAME" "$from" "$to" "$old"
	kill -0 "$CPID" || t_fail "tcp_client died after move $i"
	sleep 0.5
	t=$from from=$to to=$t
done
sleep 0.5
mh_client_verdict "$CPID" "$C"

t_log "evacuate, auto (pre-copy)"
declare -A old
for i in 1 2 3; do
	mh_start a "pcm-ev$i" "$T/r$i" -- /bin/wl_counter --interval-ms 50
	old[$i]=$(mh_pid a "pcm-ev$i")
done
mh_ferry a evacuate --mode auto --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
	--parallel 2 --timeout 60 --json >"$T/ev.json" || {
	cat "$T/ev.json"
	t_fail "evacuate failed"
}
python3 - "$T/ev.json" <<'PY' || t_fail "evacuate: not every tenant moved through pre-copy"
import json, sys
d = json.load(open(sys.argv[1]))
mine = [r for r in d["results"] if r["tenant"].startswith("pcm-ev")]
assert len(mine) == 3 and all(r["ok"] and r["mode"] == "pre-copy" for r in mine), d
PY
for i in 1 2 3; do
	mh_assert_one_host "pcm-ev$i" a b "${old[$i]}"
	mh_verify b "pcm-ev$i" "$T/r$i"
done

t_log "destination agent killed during the transfer (first round), auto"
NAME=pcm-mem
RM="$T/hide/mem"
mkdir -p "$T/hide"
mh_start a "$NAME" "$RM" -- /bin/wl_memory --mib 32 --dirty 1 --seed $((0x$MH_TOK))
mh_kill_serve b
mh_serve b FERRY_FAULT=crash-during-transfer
rc=0
mh_migrate a b "$NAME" --mode auto --timeout 20 >"$T/out" 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "the migration succeeded although its destination died"
grep -q "pre-copy round 1" "$T/err" || t_fail "not the first pre-copy round that failed"
grep -q "keeps running here" "$T/err" || t_fail "where the tenant runs is not said"
mh_kill_serve b
mh_serve b
mh_assert_one_host "$NAME" a a
n=150
while [ -n "$(find "$T/state-b/migrations" "$T/state-a/migrations" -mindepth 1 -maxdepth 1 -type d 2>/dev/null)" ] &&
	((n-- > 0)); do
	sleep 0.1
done
((n > 0)) || t_fail "a migration directory was left: $(ls "$T/state-a/migrations" "$T/state-b/migrations")"
mh_verify a "$NAME" "$RM"
