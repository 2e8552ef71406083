#!/bin/bash
# Modes: where the source lacks soft-dirty tracking (as `ferry check`
# reports), an explicit pre-copy is refused with exit code 7 and the reason
# before anything is frozen or any host setting is touched, the tenant keeps
# running, and auto picks stop-copy; where the source has it, auto picks
# pre-copy (the rounds themselves: migrate_precopy). Post-copy and its
# refusal without the pipe sysctls: migrate_postcopy.
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_modes
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup md
mh_serve b
NAME=mig-mode
mh_start a "$NAME" "$T/r" -- /bin/wl_counter --interval-ms 50
soft=$(cat /proc/sys/fs/pipe-user-pages-soft)
max=$(cat /proc/sys/fs/pipe-max-size)
precopy=$("$FERRY" check --json | python3 -c '
import json, sys
for m in json.load(sys.stdin)["modes"]:
    if m["name"] == "pre-copy":
        print("yes" if m["available"] else "no: " + m["note"])')

if [[ "$precopy" == no* ]]; then
	rc=0
	mh_migrate a b "$NAME" --mode pre-copy 2>"$T/err" || rc=$?
	cat "$T/err"
	((rc == 7)) || t_fail "pre-copy: exit code $rc, want 7"
	grep -q "soft-dirty" "$T/err" || t_fail "pre-copy: the reason is not stated"
	t_log "pre-copy refused (${precopy#no: })"
	want=stop-copy
else
	want=pre-copy
fi
[ "$(cat /proc/sys/fs/pipe-user-pages-soft)" = "$soft" ] &&
	[ "$(cat /proc/sys/fs/pipe-max-size)" = "$max" ] || t_fail "a refused mode changed host settings"
mh_assert_one_host "$NAME" a a
mh_verify a "$NAME" "$T/r"

# auto: pre-copy where the source tracks dirty memory, else stop-copy. This
# is the test of auto itself, on purpose: every other migration test names
# the mode it means (mh_migrate requires --mode).
mh_start a mig-auto "$T/r2" -- /bin/wl_counter --interval-ms 50
old=$(mh_pid a mig-auto)
mh_migrate a b mig-auto --mode auto --json >"$T/auto.json" || t_fail "auto failed"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["mode"]==sys.argv[2] and d["moved"], d' \
	"$T/auto.json" "$want" || t_fail "auto did not pick $want"
t_log "auto picked $want"
mh_assert_one_host mig-auto a b "$old"
mh_verify b mig-auto "$T/r2"
