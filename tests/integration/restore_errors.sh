#!/bin/bash
# Restore refuses bad input with a clear error and starts nothing: a flipped
# byte in a pages image, a truncated manifest, a manifest of a newer version,
# a missing set, a name that is running. The registry stays consistent.
. "$TESTS_ROOT/lib/common.sh"
t_init restore_errors
. "$TESTS_ROOT/lib/cr.sh"
cr_require

R="$T/rootfs"
cr_start re-src "$R" -- /bin/wl_counter --interval-ms 50
"$FERRY" dump re-src -D "$T/good" >/dev/null || t_fail "dump failed"

# copy_set NAME: a fresh copy of the good set in $T/NAME
copy_set() {
	rm -rf "${T:?}/$1"
	cp -a "$T/good" "$T/$1"
}

# nothing_started NAME: no record, no process for that name
nothing_started() {
	[ -z "$(cr_state "$1")" ] || t_fail "$1 got registered: $(cr_state "$1")"
}

t_log "a flipped byte in a pages image"
copy_set bad-pages
pages=$(cd "$T/bad-pages" && ls pages-*.img | head -1)
[ -n "$pages" ] || t_fail "no pages image in the set"
off=$(($(stat -c %s "$T/bad-pages/$pages") / 2))
printf '\x5a' | dd of="$T/bad-pages/$pages" bs=1 seek=$off conv=notrunc status=none
cmp -s "$T/good/$pages" "$T/bad-pages/$pages" && {
	printf '\xa5' | dd of="$T/bad-pages/$pages" bs=1 seek=$off conv=notrunc status=none
}
t_expect_fail 5 "$pages is corrupt" "$FERRY" restore -D "$T/bad-pages" --name re-pages
nothing_started re-pages

t_log "a truncated manifest"
copy_set bad-trunc
sz=$(stat -c %s "$T/bad-trunc/manifest.ferry")
truncate -s $((sz / 2)) "$T/bad-trunc/manifest.ferry"
t_expect_fail 5 "manifest is truncated" "$FERRY" restore -D "$T/bad-trunc" --name re-trunc
nothing_started re-trunc

t_log "a manifest of a newer version"
copy_set bad-version
printf '\x00\x00\x00\x63' | dd of="$T/bad-version/manifest.ferry" bs=1 seek=4 conv=notrunc status=none
t_expect_fail 5 "version 99 is newer" "$FERRY" restore -D "$T/bad-version" --name re-version
nothing_started re-version

t_log "a missing image file"
copy_set bad-missing
rm -f "$T/bad-missing/$pages"
t_expect_fail 5 "$pages is missing" "$FERRY" restore -D "$T/bad-missing" --name re-missing
nothing_started re-missing

t_log "no image set at all"
t_expect_fail 3 "no-such-dir" "$FERRY" restore -D "$T/no-such-dir"
t_expect_fail 2 "usage" "$FERRY" restore

t_log "the good set restores; again under the same running name is a conflict"
"$FERRY" restore -D "$T/good" || t_fail "restore of the good set failed"
pid=$(cr_pid re-src)
t_expect_fail 4 "re-src is already running" "$FERRY" restore -D "$T/good"
[ "$(cr_pid re-src)" = "$pid" ] && [ "$(cr_state re-src)" = running ] ||
	t_fail "the running tenant's record changed"
# one live process tree with the tenant's root: the restored one (the dumped
# source's init is a zombie at most); other tests' processes do not count
# (waits up to 5 s: the dumped init may still be dying)
for _ in $(seq 50); do
	mapfile -t trees < <(python3 "$TESTS_ROOT/lib/onehost.py" trees "$R")
	((${#trees[@]} == 2)) && break
	sleep 0.1
done
((${#trees[@]} == 2)) || t_fail "$((${#trees[@]} - 1)) live trees with the root $R, want 1: ${trees[*]}"
[ "${trees[1]%% *}" = "$pid" ] || t_fail "the live tree is ${trees[1]}, not the restored pid $pid"
cr_verify re-src "$R"
