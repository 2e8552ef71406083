#!/bin/bash
# A failed incoming migration leaves nothing behind on the destination: no
# tenants/NAME directory (restore.log) when the restore itself failed after
# the freeze (an empty root file system there), no images, no
# record (the message says the quoted restore.log went with it); the tenant
# runs on its source again.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_dst_clean
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup clean
mh_serve a
NAME=dc-t
mkdir -p "$T/hide"
R="$T/hide/rootfs"
mh_start a "$NAME" "$R" -- /bin/wl_counter
pid=$(mh_pid a "$NAME")
# b's agent sees an empty root file system: CRIU's restore fails (it holds
# the tree's identity, .ferry/rootfs-id, so the migration gets past its check
# before the freeze; that refusal is tested in rootfs_migrate)
mh_serve b -- unshare --mount sh -c 'id=$(cat "$0/rootfs/.ferry/rootfs-id") && mount -t tmpfs none "$0" && mkdir -p "$0/rootfs/.ferry" && printf %s "$id" >"$0/rootfs/.ferry/rootfs-id" && exec "$@"' "$T/hide"
rc=0
mh_migrate a b "$NAME" --mode stop-copy --timeout 10 2>"$T/err" || rc=$?
cat "$T/err"
((rc != 0)) || t_fail "migration without a root file system on b succeeded"
grep -q "runs on this host again" "$T/err" || t_fail "message does not say where the tenant is"
grep -q "restore.log (removed with the failed migration" "$T/err" || t_fail "message does not say the log went"
mh_assert_one_host "$NAME" a a
n=50
while ((n-- > 0)) && [ -n "$(ls -A "$T/state-b/migrations" 2>/dev/null)" ]; do sleep 0.1; done
[ -z "$(ls -A "$T/state-b/migrations" 2>/dev/null)" ] || t_fail "b kept images: $(ls "$T/state-b/migrations")"
[ ! -e "$T/state-b/tenants/$NAME" ] || t_fail "b kept tenants/$NAME: $(ls -A "$T/state-b/tenants/$NAME")"
echo PASS
