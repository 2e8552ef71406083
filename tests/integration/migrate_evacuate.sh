#!/bin/bash
# ferry evacuate: every running tenant of a moves to b (two at a time); one
# that b cannot take (its name is taken there) fails and keeps running on a,
# the others move (each then on b only: mh_assert_one_host); the exit code
# says not all moved; --json lists each.
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_evacuate
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup ev
mh_serve b
for i in 1 2 3; do
	mh_start a "ev-$i" "$T/r$i" -- /bin/wl_counter --interval-ms 50
done
mh_start a ev-taken "$T/rt" -- /bin/wl_counter
mh_start b ev-taken "$T/rb" -- /bin/wl_counter
declare -A old
for n in ev-1 ev-2 ev-3 ev-taken; do
	old[$n]=$(mh_pid a "$n")
done
rc=0
mh_ferry a evacuate --mode stop-copy --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
	--parallel 2 --json >"$T/ev.json" || rc=$?
cat "$T/ev.json"
((rc == 1)) || t_fail "evacuate exit code $rc, want 1 (one tenant could not move)"
python3 - "$T/ev.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tenants"] == 4 and d["moved"] == 3 and d["failed"] == 1, d
bad = [r for r in d["results"] if not r["ok"]]
assert len(bad) == 1 and bad[0]["tenant"] == "ev-taken" and bad[0]["on_source"], bad
PY
for i in 1 2 3; do
	mh_assert_one_host "ev-$i" a b "${old[ev-$i]}"
	mh_verify b "ev-$i" "$T/r$i"
done
# refused before anything was frozen: ev-taken goes on on a as the same
# process, one tree with its root (b runs another tenant of that name)
[ "$(mh_state a ev-taken)" = running ] || t_fail "ev-taken does not run on a any more"
[ "$(mh_pid a ev-taken)" = "${old[ev-taken]}" ] || t_fail "ev-taken on a is another process"
[ "$(mh_tree_roots "$T/rt" | tail -n +2 | wc -l)" = 1 ] || t_fail "ev-taken: not one process tree"
mh_verify a ev-taken "$T/rt"
