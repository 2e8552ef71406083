#!/bin/bash
# Tenants in their own user namespace (--userns) migrate between simulated
# hosts and keep their ID map: a server whose workers setuid() to the
# tenant's uid 65534 (issue #9: on these hosts, where root lacks
# CAP_SYS_RESOURCE, only a user namespace makes it movable). The destination
# re-maps it when one of its own tenants holds its range (a free range of
# its own, the files shifted to it, the source's unchanged) and says so in
# its DONE, also when the session dropped after RESTORED (the answer to the
# source's MIGRATE_RESOLVE): `ferry migrate` reports it (--json
# id_range_remapped, a line on stderr in text mode; neither without a
# re-map); the move works
# in stop-copy and (where the host can) post-copy back, and the workload
# checks itself at the end (a verified workload ends).
# A memory hog and a fork bomb (wl_limits) move in stop-copy with their
# limits: read back from b's cgroup files, and stopped there again; a hog
# without a user namespace the same in post-copy (where the host can).
. "$TESTS_ROOT/lib/common.sh"
t_init iso_migrate
. "$TESTS_ROOT/lib/cr.sh"
. "$TESTS_ROOT/lib/iso.sh"
cr_require
cr_need_wl wl_workers wl_counter wl_limits
. "$TESTS_ROOT/lib/mhosts.sh"

MH_SERVE_TUNE=0 # the refusal without vm.unprivileged_userfaultfd is tested below
mh_setup isom
mh_serve a
mh_serve b
NAME=isom-web
R="$T/rootfs"
# b's own tenant holds the range isom-web tries first (hosts allocate on
# their own: a name's search starts at a slot of its own, iso_base)
BASE=$(iso_base "$NAME")
OWN=$(iso_name_like "$NAME" isom-own)
iso_mh_start b "$OWN" "$T/rb" --userns -- /bin/iso-wl_counter
iso_mh_start a "$NAME" "$R" --userns -- /bin/iso-wl_workers --workers 3 --uid 65534
pid=$(mh_pid a "$NAME")
map=$(mh_exec a cat "/proc/$pid/uid_map" | awk 'NR==1 {print $1, $2, $3}')
[ "$map" = "0 $BASE 65536" ] || t_fail "map on a: '$map'"

iso_mh_start a isom-hog "$T/rh" --userns --memory 48M --pids 40 --cpus 0.5 -- /bin/iso-wl_limits --hog-mb 200
iso_mh_start a isom-bomb "$T/rbo" --userns --pids 24 -- /bin/iso-wl_limits --forkbomb 1000

# cg_file HOST NAME CTRL FILE: a file of the tenant's cgroup on HOST (v1
# file names; on a cgroup v2 host, as in the second kernel's guest, the
# unified hierarchy's file of the same meaning)
cg_file() {
	local rel f=$4
	rel=$(mh_ferry "$1" ps --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == sys.argv[1]:
        c = t["isolation"]["cgroups"]
        print(c.get("unified") or c[sys.argv[2]])' "$2" "$3")
	[ -n "$rel" ] || t_fail "$2 has no $3 cgroup on $1"
	if [ -f "/sys/fs/cgroup$rel/cgroup.procs" ]; then
		case $f in
		memory.limit_in_bytes) f=memory.max ;;
		cpu.cfs_quota_us) f=cpu.max ;;
		esac
		echo "/sys/fs/cgroup$rel/$f"
	else
		echo "/sys/fs/cgroup/$3$rel/$f"
	fi
}
# cg_val ...: cg_file's first word (cpu.max is "QUOTA PERIOD")
cg_val() { awk '{print $1}' "$(cg_file "$@")"; }
t_log "hog and fork bomb: stop-copy a -> b, limits read back on b"
for n in isom-hog isom-bomb; do
	p=$(mh_pid a "$n")
	mh_migrate a b "$n" --mode stop-copy --json >"$T/$n.json" || t_fail "migration of $n failed"
	mh_assert_one_host "$n" a b "$p"
	# a range free on b: nothing re-mapped, nothing said
	python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["moved"] and "id_range_remapped" not in d, d' \
		"$T/$n.json" || t_fail "$n: id_range_remapped without a re-map"
done
[ "$(cg_val b isom-hog memory memory.limit_in_bytes)" = $((48 << 20)) ] || t_fail "hog: memory limit on b"
[ "$(cg_val b isom-hog pids pids.max)" = 40 ] || t_fail "hog: pids.max on b"
[ "$(cg_val b isom-hog cpu cpu.cfs_quota_us)" = 50000 ] || t_fail "hog: cpu quota on b"
[ "$(cg_val b isom-bomb pids pids.max)" = 24 ] || t_fail "bomb: pids.max on b"
case "$(cg_file b isom-bomb pids pids.max)" in */ferry-isom-bomb-p*) ;; *) t_fail "not b's own cgroup" ;; esac
mh_verify b isom-hog "$T/rh"
mh_verify b isom-bomb "$T/rbo"
grep -h -E "^(hog|forkbomb):" "$T/rh/.ferry/console.log" "$T/rbo/.ferry/console.log" | sed 's/^/   /'

if mh_postcopy_ok; then
	t_log "post-copy a -> b of a hog without a user namespace, limits read back on b"
	mh_keep_pipe_sysctls
	iso_mh_start a isom-pc "$T/rpc" --privileged --memory 48M --pids 40 -- /bin/iso-wl_limits --hog-mb 200
	p=$(mh_pid a isom-pc)
	mh_migrate a b isom-pc --mode post-copy --tune-host || t_fail "post-copy of isom-pc failed"
	mh_assert_one_host isom-pc a b "$p"
	[ "$(cg_val b isom-pc memory memory.limit_in_bytes)" = $((48 << 20)) ] ||
		t_fail "post-copy: memory limit on b"
	[ "$(cg_val b isom-pc pids pids.max)" = 40 ] || t_fail "post-copy: pids.max on b"
	mh_verify b isom-pc "$T/rpc"
fi

t_log "a restore on b that fails after the shift: the shared tree is shifted back, a resumes"
mh_kill_serve b
mh_serve b FERRY_FAULT=remap-after-shift
rc=0
mh_migrate a b "$NAME" --mode stop-copy >"$T/fault.out" 2>&1 || rc=$?
cat "$T/fault.out"
((rc != 0)) && grep -q "remap-after-shift" "$T/fault.out" || t_fail "the injected failure did not fail the move (rc $rc)"
mh_assert_one_host "$NAME" a a "$pid"
[ "$(stat -c %u "$R/bin/wl_workers")" = "$BASE" ] || t_fail "the tree was not shifted back to $BASE"
[ -z "$(ls -A "$T/state-b/userns-claims" 2>/dev/null)" ] || t_fail "claims left on b: $(ls "$T/state-b/userns-claims")"
[ ! -e "$T/state-b/tenants/$NAME/idmap-images" ] || t_fail "b kept the rewritten images of a failed restore"
mh_kill_serve b
# and b drops the session right after RESTORED: the source learns the
# re-map from the answer to its MIGRATE_RESOLVE (the outcome b remembered)
mh_serve b FERRY_FAULT=drop-after-restored

t_log "b re-maps $NAME: the range it has is b's tenant $OWN's (DONE via MIGRATE_RESOLVE)"
mh_migrate a b "$NAME" --mode stop-copy --timeout "$(t_secs 5)" --json >"$T/remap.json" ||
	t_fail "migration a -> b onto a taken range failed"
mh_assert_one_host "$NAME" a b "$pid"
pid=$(mh_pid b "$NAME")
map2=$(mh_exec b cat "/proc/$pid/uid_map" | awk 'NR==1 {print $1, $2, $3}')
base2=$(echo "$map2" | awk '{print $2}')
t_log "map on a: $map, on b: $map2"
[ "$map2" = "0 $base2 65536" ] && [ "$base2" != "$BASE" ] || t_fail "map on b: '$map2' (a: '$map')"
# the source learns it from b: --json says from which range to which
python3 - "$T/remap.json" "$BASE" "$base2" <<'PY' || t_fail "migrate --json: id_range_remapped"
import json, sys
d = json.load(open(sys.argv[1]))
r = d.get("id_range_remapped")
print("   id_range_remapped:", r)
assert r == {"from": int(sys.argv[2]), "to": int(sys.argv[3]), "count": 65536}, d
PY
mh_ferry b ps --json | grep -q "\"id_base\": *$base2" || t_fail "b's ps does not show the new range"
grep -q "id range re-mapped from $BASE to $base2" "$T/serve-b.log" || t_fail "b's agent does not say it re-mapped the range"
# its files under the new range, b's own tenant's as they were
[ "$(stat -c %u "$R/bin/wl_workers")" = "$base2" ] || t_fail "the tenant's files are not under $base2"
[ "$(stat -c %u "$T/rb/bin/wl_counter")" = "$BASE" ] || t_fail "$OWN's files changed owner"
# the new range was claimed until b's record held it: no claim is left
[ -z "$(ls -A "$T/state-b/userns-claims" 2>/dev/null)" ] || t_fail "claims left on b: $(ls "$T/state-b/userns-claims")"
mh_ferry b kill "$OWN" >/dev/null
mh_ferry b rm "$OWN" >/dev/null
map=$map2
mh_kill_serve b
mh_serve b

t_log "an image tenant re-mapped on b: its layer travels and is shifted there"
N2=isom-img OWN2=$(iso_name_like isom-img isom-own2)
iso_rootfs "$T/img"
id=$(mh_ferry a image import "$T/img" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
iso_mh_start b "$OWN2" "$T/rb2" --userns -- /bin/iso-wl_counter
mh_ferry a run "$N2" --image "$id" -- /bin/iso-wl_counter >/dev/null || t_fail "run $N2 on a"
t_wait_file "$T/state-a/tenants/$N2/upper/tmp/wl.ready" 30
p=$(mh_pid a "$N2")
ib() { mh_ferry "$1" ps --json | python3 -c 'import json, sys
print([t for t in json.load(sys.stdin)["tenants"] if t["name"] == sys.argv[1]][0]["isolation"]["id_base"])' "$2"; }
ba=$(ib a "$N2") bo=$(ib b "$OWN2")
[ "$ba" = "$bo" ] || t_fail "$N2 ($ba on a) and $OWN2 ($bo on b) do not collide: the test proves nothing"
mh_migrate a b "$N2" --mode stop-copy 2>"$T/img.err" || {
	cat "$T/img.err"
	t_fail "migration of image tenant $N2 onto a taken range failed"
}
mh_assert_one_host "$N2" a b "$p"
bb=$(ib b "$N2")
t_log "$N2: $ba on a, $bb on b"
# text mode: one line on stderr says the new range
want="tenant $N2 runs under IDs $bb-$((bb + 65535)) on $(mh_addr b):7000 (its range $ba-$((ba + 65535)) there was taken)"
grep -qxF "$want" "$T/img.err" || {
	cat "$T/img.err"
	t_fail "ferry migrate does not say the re-map: want '$want'"
}
t_log "ferry migrate: $want"
[ "$bb" != "$ba" ] && [ "$(mh_exec b cat "/proc/$(mh_pid b "$N2")/uid_map" | awk 'NR==1 {print $2}')" = "$bb" ] ||
	t_fail "$N2 on b: range $bb"
[ "$(stat -c %u "$T/state-b/tenants/$N2/upper/bin/busybox")" = "$bb" ] || t_fail "$N2's layer on b is not under $bb"
[ "$(stat -c %u "$T/state-b/images/$id/rootfs/bin/busybox")" = 0 ] || t_fail "b's copy of the image changed owner"
mh_verify b "$N2" "$T/state-b/tenants/$N2/upper"
mh_ferry b kill "$OWN2" >/dev/null
mh_ferry b rm "$OWN2" >/dev/null

if ! mh_postcopy_ok; then
	t_log "no post-copy on this host: stop-copy only"
elif [ "$(cat /proc/sys/vm/unprivileged_userfaultfd)" != 1 ]; then
	t_log "post-copy b -> a: refused before the freeze (userfaultfd in a user namespace)"
	mh_keep_pipe_sysctls
	t_expect_fail 4 "post-copy of a tenant in a user namespace needs .*vm.unprivileged_userfaultfd=1.*stop-copy" \
		mh_migrate b a "$NAME" --mode post-copy --tune-host
	mh_assert_one_host "$NAME" b b "$pid"
else
	t_log "post-copy b -> a"
	mh_keep_pipe_sysctls
	mh_migrate b a "$NAME" --mode post-copy --tune-host || t_fail "post-copy b -> a failed"
	mh_assert_one_host "$NAME" b a "$pid"
	pid=$(mh_pid a "$NAME")
	map3=$(mh_exec a cat "/proc/$pid/uid_map" | awk 'NR==1 {print $1, $2, $3}')
	[ "$map3" = "$map" ] || t_fail "map on a after post-copy: '$map3'"
	mh_verify a "$NAME" "$R"
	echo PASS
	exit 0
fi
mh_verify b "$NAME" "$R"
echo PASS
