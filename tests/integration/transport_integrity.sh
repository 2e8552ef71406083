#!/bin/bash
# A file changed after the manifest was written: the sender reports it by file
# name (exit 5), and the receiver never makes the set visible.
. "$TESTS_ROOT/lib/common.sh"
t_init transport_integrity
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup integ 13
h_certs "$T/certs" srv cli
mkdir -p "$T/set"
head -c 2000000 /dev/urandom >"$T/set/a.img"
head -c 3000000 /dev/zero >"$T/set/pages-2.img"
id=$("$WIRETOOL" mkset "$T/set" web)
# flip one byte in the middle of pages-2.img
printf '\x01' | dd of="$T/set/pages-2.img" bs=1 seek=1500000 conv=notrunc status=none
h_serve a "$T/state" "$T/certs" srv
t_expect_fail 5 'pages-2.img.*does not match the manifest' h_exec b "$FERRY" send "$T/set" \
	--to "$(h_addr a):7000" --tls "$T/certs" --name cli --peer srv
sleep 0.3
[ ! -e "$T/state/sets/cli/$id" ] || t_fail "a corrupt set was made visible"
[ ! -e "$T/state/incoming/cli/$id" ] || t_fail "partial data of a corrupt set was kept"
grep -q "failed" "$H_LOG" || t_fail "server did not log the failed transfer"
# a size change is caught too
head -c 10 /dev/zero >>"$T/set/a.img"
t_expect_fail 5 'a.img' h_exec b "$FERRY" send "$T/set" --to "$(h_addr a):7000" \
	--tls "$T/certs" --name cli --peer srv
[ ! -e "$T/state/sets/cli/$id" ] || t_fail "a corrupt set was made visible"
cat "$H_LOG"
echo PASS
