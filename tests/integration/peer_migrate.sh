#!/bin/bash
# Migration-scoped requests are bound to the peer that began the migration.
# Two certificates of one CA: cli begins migration X; evil (a valid
# certificate) then tries MIGRATE_RESOLVE with commit, MIG_REQ_PAGES and a
# MIGRATE_BEGIN of its own for X: each is refused as "another peer", before
# any handler sees it; cli itself still gets the handler's answer.
# A MIGRATE_BEGIN naming a tenant registered here, even one that is gone, is
# refused (the destination never overwrites a record).
. "$TESTS_ROOT/lib/common.sh"
t_init peer_migrate
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup peermig 63
h_certs "$T/certs" srv cli evil
h_serve a "$T/state" "$T/certs" srv
to="$(h_addr a):7000"
mig() { h_exec b "$WIRETOOL" mig "$to" "$T/certs" "$1" srv "$2" "$3" | tee "$T/out"; }
id=m$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

mig cli begin "$id"
grep -q "another peer" "$T/out" && t_fail "cli's own BEGIN was refused as another peer's"
mig evil resolve "$id"
grep -q "begun by another peer: only it may resolve it" "$T/out" || t_fail "evil resolved cli's migration"
mig evil pages "$id"
grep -q "begun by another peer" "$T/out" || t_fail "evil took the pages of cli's migration"
mig evil begin "$id"
grep -q "belongs to another peer" "$T/out" || t_fail "evil began cli's migration again"
mig cli resolve "$id"
grep -q "another peer" "$T/out" && t_fail "cli could not resolve its own migration"
grep -q "refused: " "$T/out" || t_fail "cli's resolve was not answered by the handler"

# a gone tenant's record is not overwritten
mkdir -p "$T/root/bin"
cp "$(dirname "$FERRY")/tests/workloads/wl_counter" "$T/root/bin/"
gid=g$(head -c 8 /dev/urandom | od -An -tx1 | tr -d ' \n')
h_exec a env FERRY_STATE_DIR="$T/state" "$FERRY" run "mig-$gid" --rootfs "$T/root" -- /bin/wl_counter ||
	t_fail "ferry run failed"
h_exec a env FERRY_STATE_DIR="$T/state" "$FERRY" kill "mig-$gid" || t_fail "ferry kill failed"
mig cli begin "$gid"
grep -q "is registered on srv (not running)" "$T/out" || t_fail "a gone tenant's name was taken over"
h_exec a env FERRY_STATE_DIR="$T/state" "$FERRY" rm "mig-$gid" || true
kill -0 "$H_PID" || t_fail "ferry serve died"
echo PASS
