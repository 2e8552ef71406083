#!/bin/bash
# The receiver's disk fills up: both ends report it clearly (the sender exits 8),
# the partial data is removed, nothing else in the state directory is harmed,
# and the receiver keeps serving.
. "$TESTS_ROOT/lib/common.sh"
t_init transport_nospace
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup nospace 16
h_certs "$T/certs" srv cli
mkdir -p "$T/state"
mount -t tmpfs -o size=16m tmpfs "$T/state"
t_defer umount "$T/state"
mkdir -p "$T/state/sets/older"
echo precious >"$T/state/sets/older/keep.img"
echo note >"$T/state/other.txt"
h_serve a "$T/state" "$T/certs" srv
to="$(h_addr a):7000"

mkdir -p "$T/big"
for i in 1 2 3; do head -c 8000000 /dev/urandom >"$T/big/pages-$i.img"; done
id=$("$WIRETOOL" mkset "$T/big" web)
t_expect_fail 8 'receiver: .*(No space|disk full)' h_exec b "$FERRY" send "$T/big" --to "$to" \
	--tls "$T/certs" --name cli --peer srv
sleep 0.3
grep -q "No space left" "$H_LOG" || { cat "$H_LOG"; t_fail "the receiver did not log the full disk"; }
[ ! -e "$T/state/incoming/cli/$id" ] || t_fail "partial data of the failed set was kept"
[ ! -e "$T/state/sets/cli/$id" ] || t_fail "an incomplete set was made visible"
[ "$(cat "$T/state/sets/older/keep.img")" = precious ] || t_fail "an older set was harmed"
[ "$(cat "$T/state/other.txt")" = note ] || t_fail "the state dir was harmed"
kill -0 "$H_PID" || t_fail "ferry serve died"

# the space is free again: a set that fits arrives
mkdir -p "$T/small"
head -c 4000000 /dev/urandom >"$T/small/p.img"
id2=$("$WIRETOOL" mkset "$T/small" web2)
h_exec b "$FERRY" send "$T/small" --to "$to" --tls "$T/certs" --name cli --peer srv
diff -r "$T/small" "$T/state/sets/cli/$id2" || t_fail "small set differs"
cat "$H_LOG"
echo PASS
