#!/bin/bash
# Faults while an image tenant's files cross to another host (separate state
# directories and stores): the link cut during the file-system copy; the
# destination's disk full during it (its state directory on a small tmpfs);
# the destination agent killed during it. Each time the tenant keeps running
# on the source only (mh_assert_one_host) and the destination keeps nothing
# (no tenant directory, no migration files, no image, no mount). Then the
# tenant moves for real and its workload (wl_fs) finds every file intact.
. "$TESTS_ROOT/lib/common.sh"
t_init rootfs_faults
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_fs
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup rff
mh_serve a
NAME=rff-fs
IMG=$T/img
t_rootfs "$IMG"
dd if=/dev/urandom of="$IMG/etc/blob" bs=1M count=12 status=none
root() { echo "$T/state-$1/tenants/$NAME/root"; }
SB=$T/state-b

ID=$(mh_ferry a image import "$IMG" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
mh_ferry a run "$NAME" --image "$ID" -- wl_fs >/dev/null || t_fail "run on a"
n=300
until mh_exec a test -e "$(root a)/tmp/wl.ready"; do
	((n-- > 0)) || t_fail "wl_fs not ready"
	sleep 0.1
done

# b_is_clean: nothing of the tenant on b (seen from b's mount namespace)
b_is_clean() {
	local left
	left=$(mh_exec b sh -c "ls -A '$SB/tenants' '$SB/images' 2>/dev/null; ls -A '$SB/migrations' 2>/dev/null | grep -v '\.committed\$\|\.aborted\$'; grep '$SB/' /proc/self/mounts | grep -v ' $SB tmpfs'" || true)
	[ -z "$left" ] || t_fail "b kept: $left"
}

# fails CODE_RE: the migration fails, the tenant stays on a, b is clean
fails() {
	local old
	old=$(mh_pid a "$NAME")
	mh_migrate a b "$NAME" --mode stop-copy --timeout 20 >"$T/out" 2>"$T/err" &&
		t_fail "the migration succeeded"
	cat "$T/err"
	grep -Eq "$1" "$T/err" || t_fail "expected /$1/ in the error"
	mh_assert_one_host "$NAME" a a
	[ "$(mh_pid a "$NAME")" = "$old" ] || t_fail "the tenant was restarted on a"
}

t_log "the link is cut during the file-system copy"
mh_serve b FERRY_FAULT=fs-link-cut
fails "file system|connection|peer|closed"
b_is_clean
mh_kill_serve b

t_log "the destination agent is killed during the copy"
mh_serve b FERRY_FAULT=fs-crash
fails "."
mh_kill_serve b
mh_serve b # an agent start removes what the killed one left
b_is_clean
mh_kill_serve b

t_log "the destination's disk fills up during the copy"
mkdir -p "$SB"
mh_exec b mount -t tmpfs -o size=6m tmpfs "$SB"
t_defer "mh_exec b umount -l '$SB'"
mh_serve b
fails "space|No space"
b_is_clean
mh_kill_serve b
mh_exec b umount -l "$SB"

t_log "then it moves, its files intact"
mh_serve b
old=$(mh_pid a "$NAME")
mh_migrate a b "$NAME" --mode stop-copy || t_fail "migration a -> b"
mh_assert_one_host "$NAME" a b "$old"
mh_exec b kill -USR1 "$(mh_pid b "$NAME")"
n=600
until mh_exec b test -e "$(root b)/tmp/wl.result"; do
	((n-- > 0)) || t_fail "no result"
	sleep 0.1
done
res=$(mh_exec b cat "$(root b)/tmp/wl.result")
t_log "$NAME on b: $res"
[ "$res" = PASS ] || t_fail "wl_fs: $res"
echo PASS
