#!/bin/bash
# POSIX locks on shared storage: the simulated hosts a and b share the
# tenant's root directory, as hosts share NFS or a disk. A tenant holding a
# fcntl lock on a file there (wl_lock) cannot be restored on b while the
# frozen source holds the lock (the restore used to wait for it until the
# migration timed out): `ferry migrate` refuses it before the freeze, exit 4,
# saying why and what to do, and the tenant goes on running on a, its lock
# intact (the workload's own check). The same workload with its lock on a
# file system of the tenant's own (its /dev tmpfs, saved with it) moves a ->
# b -> a in stop-copy, and keeps its lock through both moves.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_locks
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_lock
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup lck
mh_serve a
mh_serve b
R="$T/rootfs"
t_rootfs "$R"
# its own name: a test runner of another checkout on this machine may kill
# wl_* processes (tests/run.sh before 2a718ec did)
ln -sf wl_lock "$R/bin/lockholder"

# 1. the lock on the shared directory: refused before the freeze
mh_start a lk-shared "$R" -- /bin/lockholder --file /tmp/locked.data
old=$(mh_pid a lk-shared)
t_expect_fail 4 "holds a POSIX lock on .*/tmp/locked.data.*nothing was frozen" \
	mh_migrate a b lk-shared --mode stop-copy
mh_assert_one_host lk-shared a a
[ "$(mh_pid a lk-shared)" = "$old" ] || t_fail "lk-shared was restarted"
mh_verify a lk-shared "$R"
mh_ferry a rm lk-shared >/dev/null 2>&1 || mh_ferry a kill lk-shared >/dev/null 2>&1 || true

# 2. the lock on the tenant's own tmpfs: it moves, lock and all
R2="$T/rootfs2"
t_rootfs "$R2"
ln -sf wl_lock "$R2/bin/lockholder"
mh_start a lk-own "$R2" -- /bin/lockholder --file /dev/locked.data
at=a
for to in b a; do
	old=$(mh_pid "$at" lk-own)
	mh_migrate "$at" "$to" lk-own --mode stop-copy >/dev/null ||
		t_fail "lk-own (lock on its own tmpfs) did not move $at -> $to"
	mh_assert_one_host lk-own "$at" "$to" "$old"
	at=$to
done
mh_verify "$at" lk-own "$R2"
echo PASS
