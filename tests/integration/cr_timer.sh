#!/bin/bash
# wl_timer in a container tenant: dump (stops it), restore, twice, then it
# verifies itself. Its parked timerfd is expired and unread at every dump:
# CRIU saves it with it_value 0 and, without ferry's fix-up, restores it
# disarmed (docs/dump-restore.md, "Timer fix-up"); the second cycle dumps
# a timer that the first restore re-armed.
. "$TESTS_ROOT/lib/common.sh"
t_init cr_timer
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_timer
r="$T/rootfs"
cr_start cr-timer "$r" -- /bin/wl_timer
for i in 1 2; do
	sleep 0.5
	cr_dump_restore cr-timer "$T/img$i"
	# the case this test is about did happen: CRIU saved a periodic timerfd
	# with nothing left until its next expiration
	grep -q 'timerfd: Dumping id .* it_value(0, 0) it_interval(0, 100000000)' \
		"$FERRY_STATE_DIR/tenants/cr-timer/dump.log" ||
		t_fail "cycle $i: no expired-unread timerfd in CRIU's dump log"
done
sleep 0.5
cr_verify cr-timer "$r"
