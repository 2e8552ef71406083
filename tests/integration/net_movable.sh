#!/bin/bash
# Addresses the network model cannot move are refused with a reason: `run
# --net` outside every host subnet (exit 7, names --host-only), a host's own
# address (exit 4); `migrate` of a host-only tenant is refused on the source,
# and on the destination (at MIGRATE_BEGIN) when the destination has no
# interface in the tenant's subnet; nothing is frozen, the tenant runs on.
. "$TESTS_ROOT/lib/common.sh"
t_init net_movable
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup movable
mh_serve a
mh_serve b
R="$T/rootfs"
t_rootfs "$R"

t_log "run: an address in no host subnet is refused, with what to do"
t_expect_fail 7 "10.206.0.5 is in no subnet of this host's interfaces \(.*lan0 10.204.0.1/24.*L2 segment.*proxy ARP.*gratuitous ARP.*--host-only" \
	mh_ferry a run nm-out --net 10.206.0.5/24 --rootfs "$R" -- /bin/wl_counter
[ ! -e "$T/state-a/tenants/nm-out" ] || t_fail "refused run left a record"
mh_exec a ip link show fy-nm-out >/dev/null 2>&1 && t_fail "refused run left an interface"
t_expect_fail 4 "10.204.0.1 is this host's own address" \
	mh_ferry a run nm-own --net 10.204.0.1/24 --rootfs "$R" -- /bin/wl_counter

t_log "migrate: a host-only tenant is refused on the source before the freeze"
mh_start a nm-ho "$R" --net 10.206.0.5/24 --host-only -- /bin/wl_counter
pid=$(mh_pid a nm-ho)
rc=0
mh_migrate a b nm-ho --mode stop-copy 2>"$T/err" || rc=$?
cat "$T/err"
((rc == 7)) || t_fail "host-only tenant: exit $rc, want 7"
grep -q "cannot move its address (nothing was frozen).*no subnet" "$T/err" || t_fail "source refusal: message"
[ "$(mh_state a nm-ho)" = running ] && [ "$(mh_pid a nm-ho)" = "$pid" ] || t_fail "tenant not running unchanged on a"
mh_assert_one_host nm-ho a a "$pid"
mh_ferry a kill nm-ho >/dev/null
mh_ferry a rm nm-ho >/dev/null

t_log "migrate: the destination has no interface in the tenant's subnet"
mh_exec a ip addr add 10.205.0.1/24 dev lan0
R2="$T/rootfs2"
mh_start a nm-dst "$R2" --net 10.205.0.50/24 -- /bin/wl_counter
pid=$(mh_pid a nm-dst)
rc=0
mh_migrate a b nm-dst --mode stop-copy 2>"$T/err" || rc=$?
cat "$T/err"
((rc == 4)) || t_fail "destination refusal: exit $rc, want 4"
grep -q "cannot get its address on b.*10.205.0.50 is in no subnet" "$T/err" || t_fail "destination refusal: message"
[ "$(mh_state a nm-dst)" = running ] && [ "$(mh_pid a nm-dst)" = "$pid" ] || t_fail "tenant not running unchanged on a"
mh_assert_one_host nm-dst a a "$pid"
[ ! -e "$T/state-b/tenants/nm-dst" ] || t_fail "refusal left a record on b"

t_log "... and once b has one, it moves"
mh_exec b ip addr add 10.205.0.2/24 dev lan0
mh_migrate a b nm-dst --mode stop-copy || t_fail "migration with both subnets failed"
mh_assert_one_host nm-dst a b "$pid"
echo PASS
