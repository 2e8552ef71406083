#!/bin/bash
# ferry evacuate of image tenants between simulated hosts that share nothing
# (separate state directories and image stores, each overlay in its host's
# mount namespace). Three wl_fs tenants: two on image X, one on image Y.
# a -> b in stop-copy, all three at once (--parallel 3): b lacks both images
# and receives each once (the second tenant on X waits for the first's copy
# instead of sending X again). Then a's store drops both images and the
# tenants go back b -> a in post-copy (where the host supports it, else
# stop-copy), two at a time: each image again sent once. Every tenant runs
# on exactly one host after each evacuation, the source keeps nothing of
# it, and wl_fs's self-check of its files passes at the end. First, a fault:
# b's agent cuts every session 1 MiB into its image copy, so all three fail
# (on X, a second migration that waited for the first's failed copy receives
# X itself and is cut as well); each keeps running on a as the same process,
# b keeps nothing.
. "$TESTS_ROOT/lib/common.sh"
t_init rootfs_evacuate
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_fs
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup rfe
mh_serve a
mh_serve b FERRY_FAULT=fs-link-cut
NAMES="rfe-1 rfe-2 rfe-3"
root() { echo "$T/state-$1/tenants/$2/root"; }

t_rootfs "$T/imgx"
dd if=/dev/urandom of="$T/imgx/etc/blob" bs=1M count=3 status=none
t_rootfs "$T/imgy"
echo "image y" >"$T/imgy/etc/which"
dd if=/dev/urandom of="$T/imgy/etc/blob" bs=1M count=2 status=none
import() { mh_ferry a image import "$1" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }
X=$(import "$T/imgx")
Y=$(import "$T/imgy")
[ "$X" != "$Y" ] || t_fail "two images, one id"
declare -A img=([rfe-1]=$X [rfe-2]=$X [rfe-3]=$Y)
for n in $NAMES; do
	mh_ferry a run "$n" --image "${img[$n]}" -- wl_fs >/dev/null || t_fail "run $n on a"
done
for n in $NAMES; do
	k=300
	until mh_exec a test -e "$(root a "$n")/tmp/wl.ready"; do
		((k-- > 0)) || t_fail "$n not ready"
		sleep 0.1
	done
done
sleep 0.5

# evacuate FROM TO MODE PARALLEL
evacuate() {
	local from=$1 to=$2 mode=$3 par=$4 n rc=0
	declare -A old
	for n in $NAMES; do
		old[$n]=$(mh_pid "$from" "$n")
	done
	mh_ferry "$from" evacuate --mode "$mode" --to "$(mh_addr "$to"):7000" --tls "$T/certs" \
		--name "$from" --peer "$to" --parallel "$par" --json >"$T/ev-$from.json" || rc=$?
	((rc == 0)) || {
		cat "$T/ev-$from.json"
		tail -n 30 "$T/serve-$to.log"
		t_fail "evacuate $from -> $to ($mode): exit $rc"
	}
	python3 - "$T/ev-$from.json" "$X" "$Y" <<'PY' || t_fail "report of evacuate $from -> $to"
import json, sys
d = json.load(open(sys.argv[1]))
x, y = sys.argv[2], sys.argv[3]
assert d["tenants"] == 3 and d["moved"] == 3 and d["failed"] == 0, d
img = {"rfe-1": x, "rfe-2": x, "rfe-3": y}
sent = {x: 0, y: 0}
for r in d["results"]:
    fs = r["rootfs"]
    print(r["tenant"], "downtime_ms:", r["downtime_ms"], "rootfs:", fs)
    assert r["ok"] and r["moved"], r
    assert fs["raw_bytes"] > 0, fs
    sent[img[r["tenant"]]] += fs["image_sent"]
assert sent == {x: 1, y: 1}, ("each image sent once", sent)
PY
	for n in $NAMES; do
		mh_assert_one_host "$n" "$from" "$to" "${old[$n]}"
		[ ! -e "$T/state-$from/tenants/$n" ] || t_fail "$from kept its directory of $n"
		mh_exec "$to" grep -q " $(root "$to" "$n") overlay " /proc/self/mounts ||
			t_fail "no overlay of $n on $to"
	done
	! mh_exec "$from" grep -q "/tenants/rfe-" /proc/self/mounts || t_fail "$from kept a mount"
	for h in "$from" "$to"; do
		[ -z "$(ls -A "$T/state-$h/migrations" | grep -v '\.committed$\|\.aborted$' || true)" ] ||
			t_fail "$h kept migration files: $(ls -A "$T/state-$h/migrations")"
	done
	[ -d "$T/state-$to/images/$X/rootfs" ] && [ -d "$T/state-$to/images/$Y/rootfs" ] ||
		t_fail "$to lacks an image"
	sleep 0.5
}

t_log "b cuts every link during the image copies: nothing moves"
declare -A first
for n in $NAMES; do
	first[$n]=$(mh_pid a "$n")
done
rc=0
mh_ferry a evacuate --mode stop-copy --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
	--parallel 3 --timeout 20 --json >"$T/ev-fault.json" || rc=$?
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["moved"] == 0 and d["failed"] == 3 and all(r["on_source"] for r in d["results"]), d' \
	"$T/ev-fault.json" || t_fail "report of the failed evacuation (exit $rc)"
((rc == 1)) || t_fail "evacuate exit code $rc, want 1"
for n in $NAMES; do
	mh_assert_one_host "$n" a a
	[ "$(mh_pid a "$n")" = "${first[$n]}" ] || t_fail "$n was restarted on a"
done
left=$(ls -A "$T/state-b/tenants" "$T/state-b/images" 2>/dev/null
	ls -A "$T/state-b/migrations" 2>/dev/null | grep -v '\.committed$\|\.aborted$' || true)
[ -z "$left" ] || t_fail "b kept: $left"
mh_kill_serve b
mh_serve b

t_log "evacuate a -> b, stop-copy, three at a time"
evacuate a b stop-copy 3
t_log "a's store drops both images (no tenant uses them there any more)"
mh_ferry a image rm "$X" >/dev/null || t_fail "image rm X on a"
mh_ferry a image rm "$Y" >/dev/null || t_fail "image rm Y on a"
MODE=stop-copy
if mh_postcopy_ok; then
	MODE=post-copy
else
	t_log "post-copy not available here: back in stop-copy"
fi
t_log "evacuate b -> a, $MODE, two at a time"
evacuate b a "$MODE" 2

for n in $NAMES; do
	r=$(root a "$n")
	mh_exec a kill -USR1 "$(mh_pid a "$n")"
	k=600
	until mh_exec a test -e "$r/tmp/wl.result"; do
		((k-- > 0)) || t_fail "no result from $n"
		sleep 0.1
	done
	res=$(mh_exec a cat "$r/tmp/wl.result")
	t_log "$n on a: $res"
	[ "$res" = PASS ] || {
		mh_exec a tail -n 20 "$r/.ferry/console.log"
		t_fail "wl_fs of $n: $res"
	}
done
[ "$(mh_exec a cat "$(root a rfe-3)/etc/which")" = "image y" ] || t_fail "rfe-3 is not on image y"
echo PASS
