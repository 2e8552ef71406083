#!/bin/bash
# Image sets are bound to their content and to the peer that sent them. Two
# certificates of one CA: cli (the legitimate sender) and evil.
# (1) evil uploads its own files under cli's set id first: cli's `ferry send`
#     still sends (no "already on the receiver") and the receiver holds cli's
#     files under cli's scope, evil's under evil's;
# (2) one peer offering another manifest under an id it already holds is
#     refused, never told "already there";
# (3) evil's OFFER of the id cli is transferring does not disconnect cli;
# (4) a peer holds at most 32 unfinished sets; the others' are not limited by it.
. "$TESTS_ROOT/lib/common.sh"
t_init peer_sets
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup peersets 62
h_certs "$T/certs" srv cli evil
h_serve a "$T/state" "$T/certs" srv --json
srvpid=$H_PID
to="$(h_addr a):7000"
send() { # NAME DIR [ARGS]
	local n=$1 d=$2
	shift 2
	h_exec b "$FERRY" send "$d" --to "$to" --tls "$T/certs" --name "$n" --peer srv "$@"
}

mkdir -p "$T/set" "$T/evil"
head -c 300000 /dev/urandom >"$T/set/pages.img"
id=$("$WIRETOOL" mkset "$T/set" web)
echo "attacker's pages" >"$T/evil/pages.img"
[ "$("$WIRETOOL" forge "$T/set" "$T/evil")" = "$id" ] || t_fail "forge did not reuse the id"

# (1) poisoning first
send evil "$T/evil" | tee "$T/out.evil"
send cli "$T/set" | tee "$T/out.cli"
grep -q "already on the receiver" "$T/out.cli" && t_fail "cli was told evil's set is its own"
diff -r "$T/set" "$T/state/sets/cli/$id" || t_fail "cli's set is not what cli sent"
cmp -s "$T/evil/pages.img" "$T/state/sets/evil/$id/pages.img" || t_fail "evil's set not in evil's scope"
# a second identical send is a no-op, as before
send cli "$T/set" | tee "$T/out.cli2"
grep -q "already on the receiver" "$T/out.cli2" || t_fail "an identical resend was sent again"

# (2) the same id with another manifest, from the same peer: refused
if send cli "$T/evil" >"$T/out.cli3" 2>&1; then
	cat "$T/out.cli3"
	t_fail "another manifest under a held id was accepted"
fi
cat "$T/out.cli3"
grep -q "another manifest" "$T/out.cli3" || t_fail "no clear error for a conflicting manifest"
diff -r "$T/set" "$T/state/sets/cli/$id" || t_fail "cli's set changed"

# (3) evil offers the id cli is busy transferring
mkdir -p "$T/big" "$T/evil2"
head -c 30000000 /dev/urandom >"$T/big/pages.img"
bid=$("$WIRETOOL" mkset "$T/big" web)
echo x >"$T/evil2/pages.img"
"$WIRETOOL" forge "$T/big" "$T/evil2" >/dev/null
before=$(wc -l <"$T/serve-a.log")
h_rate b 40mbit # ~5 MB/s: cli's transfer takes a few seconds
h_spawn b "$T/big.out" "$FERRY" send "$T/big" --to "$to" --tls "$T/certs" --name cli --peer srv
spid=$H_PID
sleep 1.5
send evil "$T/evil2" || t_fail "evil's own set was refused"
wait "$spid" || { cat "$T/big.out"; t_fail "cli's transfer failed"; }
cat "$T/big.out"
grep -q reconnect "$T/big.out" && t_fail "evil's OFFER disconnected cli's transfer"
cmp -s "$T/big/pages.img" "$T/state/sets/cli/$bid/pages.img" || t_fail "cli's big set differs"
tail -n +$((before + 1)) "$T/serve-a.log" | grep '"peer_name":"cli"' | grep -q '"ok":false' && t_fail "a transfer of cli's failed on the agent"

# (4) 32 abandoned incoming sets of evil (as interrupted transfers leave them)
for i in $(seq 1 32); do mkdir -p "$T/state/incoming/evil/$(printf '%032x' "$i")"; done
mkdir -p "$T/q"
echo q >"$T/q/p.img"
"$WIRETOOL" mkset "$T/q" web >/dev/null
if send evil "$T/q" >"$T/out.q" 2>&1; then
	cat "$T/out.q"
	t_fail "a 33rd unfinished set of one peer was accepted"
fi
cat "$T/out.q"
grep -q "unfinished sets here (at most 32)" "$T/out.q" || t_fail "no clear error for the quota"
send cli "$T/q" || t_fail "evil's quota refused cli"
kill -0 "$srvpid" || t_fail "ferry serve died"
echo PASS
