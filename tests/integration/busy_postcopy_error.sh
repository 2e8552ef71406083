#!/bin/bash
# A failed post-copy migration says why as stop-copy does: CRIU's own error
# lines and the path of its dump.log (which exists), and the tenant runs on
# its source again. The failure is real: wl_iouring holds an io_uring fd,
# which CRIU cannot dump.
. "$TESTS_ROOT/lib/common.sh"
t_init busy_postcopy_error
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_iouring
. "$TESTS_ROOT/lib/mhosts.sh"

mh_postcopy_ok ||
	t_skip "no userfaultfd here: no post-copy"
mh_keep_pipe_sysctls
mh_setup pcerr
mh_serve a
mh_serve b
NAME=pe-t
R="$T/rootfs"
mh_start a "$NAME" "$R" -- /bin/wl_iouring
pid=$(mh_pid a "$NAME")

for mode in stop-copy post-copy; do
	extra=()
	[ "$mode" = post-copy ] && extra=(--tune-host)
	rc=0
	mh_migrate a b "$NAME" --mode "$mode" ${extra[@]+"${extra[@]}"} --timeout 10 2>"$T/err-$mode" || rc=$?
	cat "$T/err-$mode"
	((rc != 0)) || t_fail "$mode: the dump of an io_uring succeeded?"
	grep -q "runs on this host again" "$T/err-$mode" || t_fail "$mode: does not say where the tenant is"
	grep -Eq "Error \(criu/[a-z_./-]+:[0-9]+\)" "$T/err-$mode" || t_fail "$mode: no CRIU error line quoted"
	log=$(sed -n 's/.*full log: \([^ ;)]*dump\.log\).*/\1/p' "$T/err-$mode" | head -1)
	[ -n "$log" ] || t_fail "$mode: no path of CRIU's log"
	[ -s "$log" ] || t_fail "$mode: the log $log does not exist"
	mh_assert_one_host "$NAME" a a "$pid"
done
mh_verify a "$NAME" "$R"
echo PASS
