#!/bin/bash
# Send an image set between two simulated hosts: certificates, TLS 1.3 mutual
# auth, the set arrives complete in STATE/sets/<peer>/<id>, a second send is a no-op,
# --no-compress and --json work.
. "$TESTS_ROOT/lib/common.sh"
t_init transport_basic
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup basic 11
h_certs "$T/certs" srv cli
for k in ca srv cli; do
	[ "$(stat -c %a "$T/certs/$k.key")" = 600 ] || t_fail "$k.key is not 0600"
done
t_expect_fail 4 'already exists' "$FERRY" cert init "$T/certs"

# an image set: random, zero and repetitive data, nested directory, empty file
mkdir -p "$T/set/sub"
head -c 3000000 /dev/urandom >"$T/set/pages-1.img"
head -c 5000000 /dev/zero >"$T/set/sub/zero.img"
{ yes ferry || true; } | head -c 2000000 >"$T/set/rep.img"
: >"$T/set/empty.img"
chmod 0640 "$T/set/rep.img"
id=$("$WIRETOOL" mkset "$T/set" web)

h_serve a "$T/state-a" "$T/certs" srv --json
srv=$(h_addr a)
h_exec b "$FERRY" send "$T/set" --to "$srv:7000" --tls "$T/certs" --name cli --peer srv \
	--json >"$T/send.json"
cat "$T/send.json"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["raw_bytes"]==10000000 and d["acked_bytes"]==10000000 and d["wire_bytes"]<d["raw_bytes"] and not d["already_present"], d' "$T/send.json"
diff -r "$T/set" "$T/state-a/sets/cli/$id" || t_fail "received set differs"
[ "$(stat -c %a "$T/state-a/sets/cli/$id/rep.img")" = 640 ] || t_fail "file mode not kept"
[ -z "$(ls -A "$T/state-a/incoming")" ] || t_fail "incoming not empty after commit"

# the same set again: nothing to send
h_exec b "$FERRY" send "$T/set" --to "$srv:7000" --tls "$T/certs" --name cli --peer srv \
	>"$T/send2.txt"
grep -q "already on the receiver" "$T/send2.txt" || t_fail "second send was not a no-op"

# uncompressed, and the server's IP certificate name via --to only
"$FERRY" cert issue "$T/certs" "$srv" >/dev/null
mkdir -p "$T/set2"
head -c 1000000 /dev/urandom >"$T/set2/a.img"
id2=$("$WIRETOOL" mkset "$T/set2" web2)
# several transfers at once
for i in 1 2 3; do
	mkdir -p "$T/c$i"
	head -c 4000000 /dev/urandom >"$T/c$i/pages.img"
	"$WIRETOOL" mkset "$T/c$i" "c$i" >"$T/c$i.id"
done
pids=()
for i in 1 2 3; do
	h_exec b "$FERRY" send "$T/c$i" --to "$srv:7000" --tls "$T/certs" --name cli --peer srv \
		>"$T/c$i.out" 2>&1 &
	pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || t_fail "a concurrent send failed"; done
for i in 1 2 3; do
	diff -r "$T/c$i" "$T/state-a/sets/cli/$(cat "$T/c$i.id")" || t_fail "concurrent set $i differs"
done

# SIGTERM: clean exit
kill "$H_PID"
wait "$H_PID" || t_fail "ferry serve did not exit cleanly on SIGTERM"
grep -q '"event":"transfer"' "$T/serve-a.log" || t_fail "no JSON transfer log line"

# abandoned incoming sets older than --keep-incoming hours go at start
mkdir -p "$T/state-a/incoming/0123456789abcdef0123456789abcdef" "$T/state-a/incoming/fresh"
touch -d '3 days ago' "$T/state-a/incoming/0123456789abcdef0123456789abcdef"
h_serve a "$T/state-a" "$T/certs" "$srv"
h_exec b "$FERRY" send "$T/set2" --to "$srv:7000" --tls "$T/certs" --name cli --no-compress
diff -r "$T/set2" "$T/state-a/sets/cli/$id2" || t_fail "uncompressed set differs"
grep -q "received set $id2" "$T/serve-a.log" || t_fail "no transfer log line"
[ ! -e "$T/state-a/incoming/0123456789abcdef0123456789abcdef" ] || t_fail "stale incoming kept"
[ -d "$T/state-a/incoming/fresh" ] || t_fail "fresh incoming removed"
echo PASS
