#!/bin/bash
# Every refusal exits with the code docs/exit-codes.md ("Refusals and their
# codes") and `--help` give it, and a refused migration leaves the tenant
# running on its source and nothing of it on the destination.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_exit_codes
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup codes
mh_serve a
mh_serve b
R="$T/hide/rootfs" # hidden from b's agent below
mkdir -p "$T/hide"
t_rootfs "$R"

t_log "run"
t_expect_fail 2 "" mh_ferry a run --bogus
t_expect_fail 2 "" mh_ferry a run -bad --rootfs "$R" -- /bin/wl_counter
t_expect_fail 2 "bad address" mh_ferry a run ec-x --net 10.204.0.9 --rootfs "$R" -- /bin/wl_counter
t_expect_fail 3 "rootfs" mh_ferry a run ec-x --rootfs "$T/nowhere" -- /bin/wl_counter
t_expect_fail 4 "own address" mh_ferry a run ec-x --net 10.204.0.1/24 --rootfs "$R" -- /bin/wl_counter
t_expect_fail 7 "no subnet" mh_ferry a run ec-x --net 10.206.0.9/24 --rootfs "$R" -- /bin/wl_counter
mh_start a ec-run "$R" --net 10.204.0.61/24 -- /bin/wl_counter
t_expect_fail 4 "already exists" mh_ferry a run ec-run --rootfs "$R" -- /bin/wl_counter
t_expect_fail 4 "already routed" mh_ferry a run ec-y --net 10.204.0.61/24 --rootfs "$R" -- /bin/wl_counter

t_log "dump"
t_expect_fail 3 "" mh_ferry a dump ec-none -D "$T/img-none"
t_expect_fail 2 "" mh_ferry a dump ec-run

t_log "migrate"
t_expect_fail 3 "no tenant named ec-none" mh_migrate a b ec-none --mode stop-copy
pid=$(mh_pid a ec-run)
# a tenant of that name runs on b
R2="$T/rootfs2"
mh_start b ec-run "$R2" -- /bin/wl_counter
t_expect_fail 4 "already runs on b" mh_migrate a b ec-run --mode stop-copy
mh_ferry b kill ec-run >/dev/null
mh_ferry b rm ec-run >/dev/null
# its root file system is missing on b (hidden from b's agent)
mh_kill_serve b
mh_serve b -- unshare --mount sh -c 'mount -t tmpfs none "$0" && exec "$@"' "$T/hide"
t_expect_fail 4 "root file system .* is missing on b" mh_migrate a b ec-run --mode stop-copy
[ ! -e "$T/state-b/tenants/ec-run" ] || t_fail "a refusal left tenants/ec-run on b"
mh_kill_serve b
mh_serve b
# its address is in no subnet of b's interfaces
mh_exec a ip addr add 10.205.0.1/24 dev lan0
mh_start a ec-net "$T/rootfs3" --net 10.205.0.61/24 -- /bin/wl_counter
t_expect_fail 4 "cannot get its address on b" mh_migrate a b ec-net --mode stop-copy
# a host-only tenant cannot move its address
mh_start a ec-ho "$T/rootfs4" --net 10.207.0.61/24 --host-only -- /bin/wl_counter
t_expect_fail 7 "cannot move its address" mh_migrate a b ec-ho --mode stop-copy
# not running
mh_ferry a kill ec-ho >/dev/null
t_expect_fail 4 "not running" mh_migrate a b ec-ho --mode stop-copy
# the destination is unreachable
t_expect_fail 6 "" mh_ferry a migrate ec-run --to 10.204.0.3:7000 --tls "$T/certs" --name a --peer b --mode stop-copy --timeout 3
t_expect_fail 2 "" mh_ferry a migrate ec-run --mode stop-copy

mh_assert_one_host ec-run a a "$pid"
[ -z "$(ls -A "$T/state-b/tenants" 2>/dev/null)" ] || t_fail "b kept tenant state: $(ls "$T/state-b/tenants")"
echo PASS
