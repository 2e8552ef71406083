#!/bin/bash
# Loopback is up in every tenant, with or without --net: a server that talks
# to itself on 127.0.0.1 (wl_loopback: a fresh connection before it is ready,
# a kept loopback connection, a fresh one at verify) checks itself after a
# local dump + restore and after a migration in each mode the host supports
# (stop-copy; post-copy where userfaultfd works, with --tune-host).
. "$TESTS_ROOT/lib/common.sh"
t_init busy_loopback
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_loopback
. "$TESTS_ROOT/lib/mhosts.sh"

lo_up() { # [mh_exec HOST] PID: lo of PID's network namespace is up
	local pid=${*: -1} out
	out=$("${@:1:$#-1}" nsenter -t "$pid" -n ip -o link show lo)
	grep -q '<[^>]*\bUP\b' <<<"$out" || t_fail "lo is down in the tenant (pid $pid): $out"
}

t_log "one host, no --net: lo up, dump + restore"
R="$T/rootfs"
cr_start bl-one "$R" -- /bin/wl_loopback
lo_up "$(cr_pid bl-one)"
sleep 0.3
cr_dump_restore bl-one "$T/img"
lo_up "$(cr_pid bl-one)"
cr_verify bl-one "$R"

MODES="stop-copy post-copy"
if ! mh_postcopy_ok; then
	t_log "post-copy not checked: no userfaultfd here (ferry check)"
	MODES=stop-copy
fi
mh_keep_pipe_sysctls

mh_setup lo
mh_serve a
mh_serve b
for mode in $MODES; do
	t_log "migrate, $mode"
	name=bl-$mode
	R="$T/$name"
	mh_start a "$name" "$R" -- /bin/wl_loopback
	old=$(mh_pid a "$name")
	lo_up mh_exec a "$old"
	extra=()
	[ "$mode" = post-copy ] && extra=(--tune-host)
	sleep 0.3
	mh_migrate a b "$name" --mode "$mode" ${extra[@]+"${extra[@]}"} || t_fail "$mode migration failed"
	mh_assert_one_host "$name" a b "$old"
	lo_up mh_exec b "$(mh_pid b "$name")"
	mh_verify b "$name" "$R"
done
echo PASS
