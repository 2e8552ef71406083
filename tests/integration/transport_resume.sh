#!/bin/bash
# Resume: (1) the link is cut in the middle of a transfer (veth down, then up):
# ferry send reconnects and continues from the receiver's durable point;
# (2) the sender is killed mid-transfer: a second `ferry send` resumes.
. "$TESTS_ROOT/lib/common.sh"
t_init transport_resume
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup resume 15
h_certs "$T/certs" srv cli
h_rate b 40mbit # ~5 MB/s: the transfer takes a few seconds
h_serve a "$T/state" "$T/certs" srv --timeout 3 --json
srv_pid=$H_PID
to="$(h_addr a):7000"

mkset() { # DIR: 3 files of 6 MB random data
	mkdir -p "$1"
	for i in 1 2 3; do head -c 6000000 /dev/urandom >"$1/pages-$i.img"; done
	"$WIRETOOL" mkset "$1" web
}

# (1) link cut
id=$(mkset "$T/set1")
h_spawn b "$T/send1.json" "$FERRY" send "$T/set1" --to "$to" --tls "$T/certs" --name cli \
	--peer srv --timeout 2 --retry-for 40 --json
spid=$H_PID
sleep 1.5
t_log "cutting the link"
h_link_down
sleep 4
h_link_up
t_log "link restored"
wait "$spid" || { cat "$T/send1.json"; t_fail "send did not survive the link cut"; }
cat "$T/send1.json"
python3 - "$T/send1.json" <<'PY' || t_fail "no reconnect/resume recorded"
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["reconnects"] >= 1 and d["resumed_bytes"] > 0, d
assert d["raw_bytes"] < 2 * d["total_bytes"], d
PY
diff -r "$T/set1" "$T/state/sets/cli/$id" || t_fail "set differs after the link cut"

# (2) sender killed, then sent again
id=$(mkset "$T/set2")
h_spawn b "$T/send2.log" "$FERRY" send "$T/set2" --to "$to" --tls "$T/certs" --name cli \
	--peer srv
sleep 1.5
kill -9 "$H_PID"
wait "$H_PID" || true
sleep 0.5
[ -d "$T/state/incoming/cli/$id" ] || t_fail "the receiver dropped the partial set"
h_exec b "$FERRY" send "$T/set2" --to "$to" --tls "$T/certs" --name cli --peer srv \
	--json >"$T/send3.json"
cat "$T/send3.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["resumed_bytes"]>0, d' \
	"$T/send3.json" || t_fail "second send did not resume"
diff -r "$T/set2" "$T/state/sets/cli/$id" || t_fail "set differs after resume"
[ -z "$(ls -A "$T/state/incoming")" ] || t_fail "incoming not empty"
cat "$H_LOG"

# (3) the receiver crashes (kill -9) and restarts: the running sender
# reconnects and continues from what the receiver had synced
id=$(mkset "$T/set3")
h_spawn b "$T/send4.json" "$FERRY" send "$T/set3" --to "$to" --tls "$T/certs" --name cli \
	--peer srv --timeout 2 --retry-for 40 --json
spid=$H_PID
sleep 2
kill -9 "$srv_pid"
wait "$srv_pid" 2>/dev/null || true
t_log "receiver killed"
sleep 0.5
H_LOG_OLD=$H_LOG
h_serve a "$T/state" "$T/certs" srv --timeout 3 --json
wait "$spid" || { cat "$T/send4.json"; t_fail "send did not survive the receiver's crash"; }
cat "$T/send4.json"
python3 - "$T/send4.json" <<'PY' || t_fail "no resume after the receiver's crash"
import json, sys
d = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
assert d["reconnects"] >= 1 and d["resumed_bytes"] > 0, d
PY
diff -r "$T/set3" "$T/state/sets/cli/$id" || t_fail "set differs after the receiver's crash"
echo PASS
