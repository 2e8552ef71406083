#!/bin/bash
# Stop-and-copy live migration between two simulated hosts: a TCP server
# tenant moves from a to b while a client on a third host c keeps one
# connection and sees no reset and no lost or repeated answer; afterwards
# exactly one host runs it (mh_assert_one_host); then back to a. --json
# report fields.
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_basic
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_tcp_server tcp_client
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup basic
mh_serve a
mh_serve b
NAME=mig-tcp
R="$T/rootfs"
ADDR=10.204.0.50
mh_start a "$NAME" "$R" --net "$ADDR/24" -- /bin/wl_tcp_server --port 7000

C="$T/client"
mh_client_start "$C" "$ADDR" 7000 20
CPID=$MH_CLIENT_PID
sleep 0.3

old=$(mh_pid a "$NAME")
mh_migrate a b "$NAME" --mode stop-copy --json >"$T/m1.json" || {
	cat "$T/m1.json" "$T/serve-b.log"
	t_fail "migration a -> b failed"
}
cat "$T/m1.json"
python3 - "$T/m1.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["ok"] and d["moved"] and d["mode"] == "stop-copy", d
assert d["downtime_ms"] > 0 and d["total_ms"] >= d["downtime_ms"], d
assert d["pages_raw_bytes"] > 0 and d["wire_bytes"] > 0, d
for k in ("freeze", "dump", "transfer", "restore", "resume", "network", "cleanup"):
    assert k in d["stages_ms"], k
PY
mh_assert_one_host "$NAME" a b "$old"
# b answers the tenant's ARP for its peers at once (it must resolve them again)
hif=$(ip -n "fym-$MH_ID-b" route show "$ADDR/32" | sed -n 's/.* dev \([^ ]*\).*/\1/p')
[ -n "$hif" ] || t_fail "b has no /32 route to $ADDR"
[ "$(ip netns exec "fym-$MH_ID-b" cat "/proc/sys/net/ipv4/neigh/$hif/proxy_delay")" = 0 ] ||
	t_fail "proxied ARP replies on b's $hif are delayed"
sleep 1
mh_migrate a b "$NAME" --mode stop-copy 2>"$T/err" && t_fail "migrating a tenant a no longer has worked"
grep -q "no tenant named" "$T/err" || { cat "$T/err"; t_fail "wrong message"; }

old=$(mh_pid b "$NAME")
mh_migrate b a "$NAME" --mode stop-copy || t_fail "migration b -> a failed"
mh_assert_one_host "$NAME" b a "$old"

# the proof is not vacuous: a second process tree with the tenant's root (a
# chroot into it on b), or the registry of the wrong host, makes it fail
# (the decoy may take a while to start on a slow machine: up to 5 s, scaled)
mh_exec b chroot "$R" /bin/busybox sleep "$(t_secs 3)" &
decoy=$!
for ((i = 0; i < $(t_secs 50); i++)); do
	sleep 0.1
	(MH_ONE_WAIT=0 mh_assert_one_host "$NAME" a a) >"$T/neg" 2>&1 || break
	((i + 1 < $(t_secs 50))) || t_fail "a second tree passed"
done
grep -q "2 live process trees" "$T/neg" || { cat "$T/neg"; t_fail "a second tree: message"; }
wait $decoy || true
(MH_ONE_WAIT=0 mh_assert_one_host "$NAME" a b "$old") >"$T/neg" 2>&1 && t_fail "the wrong host passed"
grep -q "b's registry says 'no record'" "$T/neg" || { cat "$T/neg"; t_fail "wrong host: message"; }
mh_assert_one_host "$NAME" b a "$old"
sleep 1
mh_client_verdict "$CPID" "$C"
mh_verify a "$NAME" "$R"

