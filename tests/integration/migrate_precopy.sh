#!/bin/bash
# Pre-copy: every self-checking workload (memory 256 MiB with a writer that
# keeps dirtying 8 MiB/s of it, PRECOPY_MIB and PRECOPY_DIRTY: 64 and 1 in the
# test guest of make check-kernels, where TCG moves pages at a few MB/s; file,
# pipe, unix, threads, timer) migrated a -> b with
# --mode pre-copy (CRIU pre-dump rounds while it runs, then the final dump
# with the last round as parent) passes its self-check on b; the report has
# per-round figures that add up; the memory tenant's rounds shrink (its
# second round and its final dump under half its first); the memory tenant moves back b -> a with
# --precopy-rounds 2; --precopy-rounds 1 does one round; auto picks
# pre-copy; no round directory is left on either host.
# Where soft-dirty is missing: FERRY_FAULT=precopy-skip-check gets past
# ferry's check so that CRIU refuses round 1 itself; the tenant must keep
# running on a with nothing left on either host; then the test skips.
# Needs soft-dirty memory tracking on the source. Where the kernel lacks it
# (`ferry check`'s dirty-tracking item, and `criu check --feature
# mem_dirty_track`, which must agree) the test skips with that reason; the
# refusal itself is tested by migrate_modes.
. "$TESTS_ROOT/lib/common.sh"
t_init migrate_precopy
. "$TESTS_ROOT/lib/cr.sh"
cr_require
WLS=${WLS:-"wl_memory wl_file wl_pipe wl_unix wl_threads wl_timer"}
cr_need_wl $WLS wl_counter

ferry_says=$("$FERRY" check --json | python3 -c '
import json, sys
for i in json.load(sys.stdin)["items"]:
    if i["id"] == "dirty-tracking":
        print("yes" if i["status"] == "OK" else "no: " + i["detail"])')
if "$CR_CRIU" check --feature mem_dirty_track >/dev/null 2>&1; then criu_says=yes; else criu_says=no; fi
[ "${ferry_says%%:*}" = "$criu_says" ] ||
	t_fail "ferry check ($ferry_says) and criu check --feature mem_dirty_track ($criu_says) disagree"

. "$TESTS_ROOT/lib/mhosts.sh"
mh_setup pre
mh_serve b

# no_leftovers: no round or image directory of a finished migration (the
# destination may still be reaping its page server: up to 5 s)
no_leftovers() {
	local h n=50
	for h in a b; do
		while compgen -G "$T/state-$h/migrations/*" >/dev/null && ((n-- > 0)); do
			sleep 0.1
		done
		if compgen -G "$T/state-$h/migrations/*" >/dev/null; then
			ls -la "$T/state-$h/migrations"
			t_fail "migration directories left on $h"
		fi
	done
}

if [ "$criu_says" != yes ]; then
	# The rounds cannot run. What can: ferry's check skipped (test hook), so
	# that CRIU itself refuses the first round; the tenant must keep running
	# on a, and neither host may keep anything of the attempt.
	mh_start a pc-refused "$T/pc-refused" -- /bin/wl_counter --interval-ms 50
	rc=0
	FERRY_FAULT=precopy-skip-check mh_migrate a b pc-refused --mode pre-copy \
		>"$T/refused.out" 2>&1 || rc=$?
	cat "$T/refused.out"
	((rc == 1)) || t_fail "refused round: exit code $rc, want 1"
	grep -q "pre-copy round 1" "$T/refused.out" || t_fail "the failed round is not named"
	grep -q "keeps running here" "$T/refused.out" || t_fail "where the tenant runs is not said"
	grep -q "Tracking memory is not available" "$T/refused.out" ||
		t_fail "CRIU's reason is not passed on"
	mh_assert_one_host pc-refused a a
	mh_verify a pc-refused "$T/pc-refused"
	no_leftovers
	t_skip "pre-copy cannot run here: no soft-dirty memory tracking in this kernel (ferry check: dirty-tracking not OK; criu check --feature mem_dirty_track fails); checked only: a round CRIU refuses leaves the tenant running and nothing behind"
fi

mh_serve a

# check_report JSON: pre-copy, moved, at least one round, the rounds and the
# final dump add up to the page bytes, a stated reason for stopping
check_report() {
	python3 - "$1" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["mode"] == "pre-copy" and d["moved"], d
p = d["precopy"]
rounds = p["rounds"]
assert len(rounds) >= 1, p
assert [r["round"] for r in rounds] == list(range(1, len(rounds) + 1)), p
assert p["stop_reason"] in ("max-rounds", "dirty-set-small", "not-shrinking"), p
assert rounds[0]["raw_bytes"] > 0, p
total = sum(r["raw_bytes"] for r in rounds) + p["final"]["raw_bytes"]
assert total == d["pages_raw_bytes"], (total, d["pages_raw_bytes"])
print("--", d["tenant"], "rounds", [(r["pages"], r["raw_bytes"], round(r["ms"])) for r in rounds],
      "final", p["final"]["raw_bytes"], "stop", p["stop_reason"],
      "downtime_ms", round(d["downtime_ms"], 1))
EOF
}

for w in $WLS; do
	args=()
	[ "$w" = wl_memory ] && args=(--mib "${PRECOPY_MIB:-${MIB:-256}}" --dirty "${PRECOPY_DIRTY:-8}")
	mh_start a "pc-$w" "$T/pc-$w" -- "/bin/$w" ${args[@]+"${args[@]}"}
done
sleep 0.5
for w in $WLS; do
	old=$(mh_pid a "pc-$w")
	mh_migrate a b "pc-$w" --mode pre-copy --timeout ${MIG_TIMEOUT:-60} --json \
		>"$T/pc-$w.json" || {
		cat "$T/pc-$w.json"
		tail -n 20 "$T/serve-b.log"
		t_fail "pre-copy migration of $w failed"
	}
	check_report "$T/pc-$w.json" || t_fail "report of $w"
	mh_assert_one_host "pc-$w" a b "$old"
done
# the point of pre-copy: the frozen dump sends much less than the memory
python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))["precopy"]
b = [r["raw_bytes"] for r in d["rounds"]]
first, final = b[0], d["final"]["raw_bytes"]
assert len(b) >= 2 or d["stop_reason"] == "dirty-set-small", d
assert len(b) < 2 or b[1] < first / 2, ("round 2 did not shrink", b)
assert final < first / 2, (first, final)
print("-- wl_memory: bytes per round", b, "final", final)' "$T/pc-wl_memory.json" ||
	t_fail "wl_memory: the rounds did not shrink (see the figures above)"
sleep 0.5
# (a workload exits after its self-check: the memory tenant's comes after
# its move back)
for w in $WLS; do
	[ "$w" = wl_memory ] || mh_verify b "pc-$w" "$T/pc-$w"
done
no_leftovers

# back, with at most two rounds
if [[ " $WLS " == *" wl_memory "* ]]; then
	old=$(mh_pid b pc-wl_memory)
	mh_migrate b a pc-wl_memory --mode pre-copy --precopy-rounds 2 --json >"$T/back.json" ||
		t_fail "pre-copy b -> a failed"
	check_report "$T/back.json" || t_fail "report of the move back"
	python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["precopy"]["rounds"]) <= 2' \
		"$T/back.json" || t_fail "--precopy-rounds 2 not kept"
	mh_assert_one_host pc-wl_memory b a "$old"
	mh_verify a pc-wl_memory "$T/pc-wl_memory"
fi

# one round exactly; and auto takes pre-copy on a host that tracks dirty memory
mh_start a pc-one "$T/pc-one" -- /bin/wl_counter --interval-ms 50
old=$(mh_pid a pc-one)
mh_migrate a b pc-one --mode pre-copy --precopy-rounds 1 --json >"$T/one.json" ||
	t_fail "--precopy-rounds 1 failed"
python3 -c '
import json, sys
p = json.load(open(sys.argv[1]))["precopy"]
assert len(p["rounds"]) == 1 and p["stop_reason"] in ("max-rounds", "dirty-set-small"), p' \
	"$T/one.json" || t_fail "--precopy-rounds 1: not one round"
mh_assert_one_host pc-one a b "$old"
mh_verify b pc-one "$T/pc-one"
mh_start a pc-auto "$T/pc-auto" -- /bin/wl_counter --interval-ms 50
old=$(mh_pid a pc-auto)
# auto on purpose (also in migrate_modes): on this host it must mean pre-copy
mh_migrate a b pc-auto --mode auto --json >"$T/auto.json" || t_fail "auto failed"
check_report "$T/auto.json" || t_fail "auto did not take pre-copy"
mh_assert_one_host pc-auto a b "$old"
mh_verify b pc-auto "$T/pc-auto"
no_leftovers
