#!/bin/bash
# Tenants in a user namespace that ferry creates (--userns): root of the
# tenant is host UID/GID base (100000 + 65536 per tenant), two tenants get
# disjoint ranges, the rootfs is owned by the range. A plain counter and a
# server whose workers setuid() to another user (wl_workers: the tenant's
# uid 65534, host uid base+65534) are dumped and restored with ferry's CRIU,
# then migrate between simulated hosts, keeping their maps.
. "$TESTS_ROOT/lib/common.sh"
t_init iso_userns
. "$TESTS_ROOT/lib/cr.sh"
. "$TESTS_ROOT/lib/iso.sh"
cr_require
cr_need_wl wl_counter wl_workers

# map_of PID: "inside outside count" of its uid_map (first line)
map_of() { awk 'NR==1 {print $1, $2, $3}' "/proc/$1/uid_map"; }

R1="$T/r1" R2="$T/r2"
iso_cr_start iu-count-$$ "$R1" --userns -- /bin/iso-wl_counter
iso_cr_start iu-work-$$ "$R2" --userns -- /bin/iso-wl_workers --workers 3 --uid 65534
p1=$(cr_pid iu-count-$$)
p2=$(cr_pid iu-work-$$)
m1=$(map_of "$p1") m2=$(map_of "$p2")
t_log "maps: $m1 / $m2"
set -- $m1
b1=$2
set -- $m2
b2=$2
[ "$1" = 0 ] && [ "$3" = 65536 ] || t_fail "tenant 2's map is '$m2'"
((b1 >= 100000 && b2 >= 100000 && (b1 - b2 >= 65536 || b2 - b1 >= 65536))) ||
	t_fail "ranges overlap or are privileged: $b1 $b2"
[ "$(stat -c %u "$R1/bin")" = "$b1" ] || t_fail "rootfs of tenant 1 is not owned by $b1"
[ "$(awk '/^Uid:/ {print $2}' /proc/$p1/status)" = "$b1" ] || t_fail "init of tenant 1 is not host uid $b1"
# a worker runs as the tenant's 65534: host base+65534
w=$(cat "/proc/$p2/task/$p2/children" | awk '{print $1}')
[ "$(awk '/^Uid:/ {print $2}' "/proc/$w/status")" = $((b2 + 65534)) ] || t_fail "worker $w is not host uid $((b2 + 65534))"

t_log "two concurrent runs that want the same range get two"
C1=$(iso_name_like iu-count-$$ iu-c) C2=$(iso_name_like iu-count-$$ iu-d)
for c in "$C1" "$C2"; do
	iso_rootfs "$T/$c"
	t_defer "'$FERRY' kill '$c'; '$FERRY' rm '$c'"
done
"$FERRY" run "$C1" --rootfs "$T/$C1" -- /bin/iso-wl_counter >"$T/c1.out" 2>&1 &
j1=$!
"$FERRY" run "$C2" --rootfs "$T/$C2" -- /bin/iso-wl_counter >"$T/c2.out" 2>&1 &
j2=$!
wait $j1 || t_fail "ferry run $C1: $(cat "$T/c1.out")"
wait $j2 || t_fail "ferry run $C2: $(cat "$T/c2.out")"
c1=$(map_of "$(cr_pid "$C1")") c2=$(map_of "$(cr_pid "$C2")")
t_log "$C1: $c1, $C2: $c2 (both try $(iso_base "$C1") first, as $m1 did)"
[ "${c1#0 }" != "$c1" ] && [ "${c2#0 }" != "$c2" ] || t_fail "maps: '$c1' '$c2'"
[ "$c1" != "$c2" ] && [ "$c1" != "$m1" ] && [ "$c2" != "$m1" ] || t_fail "two tenants share a range"
# their records hold the ranges now: no claim is left
[ -z "$(ls -A "$FERRY_STATE_DIR/userns-claims")" ] || t_fail "claims left: $(ls "$FERRY_STATE_DIR/userns-claims")"

t_log "dump and restore"
cr_dump_restore iu-count-$$ "$T/img1"
cr_dump_restore iu-work-$$ "$T/img2"
[ "$(map_of "$(cr_pid iu-count-$$)")" = "$m1" ] || t_fail "tenant 1 lost its map on restore"
[ "$(map_of "$(cr_pid iu-work-$$)")" = "$m2" ] || t_fail "tenant 2 lost its map on restore"

t_log "a dump restored under another name beside its original"
# a --rootfs tree: the copy would share the original's files, refused
"$FERRY" dump iu-count-$$ -D "$T/img3" --leave-running >/dev/null || t_fail "dump --leave-running failed"
t_expect_fail 4 "is tenant iu-count-$$'s root file system: a copy under another ID range cannot share its files" \
	"$FERRY" restore -D "$T/img3" --name iu-copy-$$
[ -z "$(cr_state iu-copy-$$)" ] || t_fail "the refused copy has a record"
[ "$(stat -c %u "$R1/bin/busybox")" = "$b1" ] || t_fail "the refused copy changed the original's files"
# an image tenant whose set carries its layer, dumped (its record holds
# the range): the copy gets a range and a layer of its own; the set stays
# as it was, and the original comes back from it under its own range
R3=$T/r3 C=iu-copy-img-$$
iso_rootfs "$R3"
img=$("$FERRY" image import "$R3" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
t_defer "'$FERRY' kill '$C'; '$FERRY' rm '$C'"
t_defer "'$FERRY' kill iu-img-$$; '$FERRY' rm iu-img-$$"
"$FERRY" run iu-img-$$ --image "$img" -- /bin/iso-wl_counter >/dev/null || t_fail "run --image failed"
RI=$FERRY_STATE_DIR/tenants/iu-img-$$/root RC=$FERRY_STATE_DIR/tenants/$C/root
t_wait_file "$RI/tmp/wl.ready" 30
bi=$(map_of "$(cr_pid iu-img-$$)" | awk '{print $2}')
"$FERRY" dump iu-img-$$ -D "$T/img4" --with-rootfs >/dev/null || t_fail "dump --with-rootfs failed"
"$FERRY" restore -D "$T/img4" --name "$C" | tee "$T/r4" || t_fail "restore --name of an image tenant failed"
bc=$(map_of "$(cr_pid "$C")" | awk '{print $2}')
grep -q "^id range re-mapped from $bi-$((bi + 65535)) to $bc-$((bc + 65535))" "$T/r4" ||
	t_fail "restore did not say it re-mapped $bi to $bc"
[ "$(stat -c %u "$RC/bin/busybox")" = "$bc" ] || t_fail "the copy's files are not under $bc"
[ "$(stat -c %u "$FERRY_STATE_DIR/tenants/iu-img-$$/upper/bin/busybox")" = "$bi" ] ||
	t_fail "the original's layer is not under $bi any more"
"$FERRY" restore --verify-only -D "$T/img4" >/dev/null || t_fail "the dump's set changed"
"$FERRY" restore -D "$T/img4" >/dev/null || t_fail "the original does not come back from its set"
[ "$(map_of "$(cr_pid iu-img-$$)")" = "0 $bi 65536" ] || t_fail "the original lost its range"
[ -z "$(ls -A "$FERRY_STATE_DIR/userns-claims")" ] || t_fail "claims left: $(ls "$FERRY_STATE_DIR/userns-claims")"
cr_verify "$C" "$RC"
cr_verify iu-img-$$ "$RI"

cr_verify iu-count-$$ "$R1"
cr_verify iu-work-$$ "$R2"
echo PASS
