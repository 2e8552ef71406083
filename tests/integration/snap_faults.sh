#!/bin/bash
# Faults of the snapshot store (docs/snapshots.md): a wrong key and a key
# readable by others; a flipped byte in one chunk (verify --read-data names
# the snapshot and file; restore refuses before touching the running
# tenant); a missing chunk; two creates at once; prune while a restore reads
# the snapshot it removes; a store on a small tmpfs
# that fills (in the staged dump, and while chunks are written): the
# snapshot fails cleanly, the tenant runs on, the store stays usable.
. "$TESTS_ROOT/lib/common.sh"
t_init snap_faults
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory
S=(--store "$T/store" --key-file "$T/key")
name=snap-faults r="$T/rootfs"

"$FERRY" snapshot init "${S[@]}" >/dev/null || t_fail "init failed"
# the workload under a name of its own (a runner elsewhere kills wl_*)
mkdir -p "$r/bin" && cp "$WORKLOADS/wl_memory" "$r/bin/snapwl_flt"
# in a user namespace (the default): the restore under another name below
# runs a copy beside the original, re-mapped to a range of its own
cr_start "$name" "$r" -- /bin/snapwl_flt --mib 16
pid0=$(cr_pid "$name")
alive() {
	[ "$(cr_pid "$name")" = "$pid0" ] && kill -0 "$pid0" && [ "$(cr_state "$name")" = running ] ||
		t_fail "$*: the tenant (pid $pid0) does not run on"
}
"$FERRY" snapshot create "$name" "${S[@]}" || t_fail "create failed"
id=$("$FERRY" snapshot list "${S[@]}" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')

# wrong key, key readable by others
"$FERRY" snapshot init --store "$T/other" --key-file "$T/key2" >/dev/null
t_expect_fail 5 "does not open" "$FERRY" snapshot list --store "$T/store" --key-file "$T/key2"
t_expect_fail 5 "does not open" "$FERRY" snapshot restore "$id" --store "$T/store" --key-file "$T/key2"
cp "$T/key" "$T/key644" && chmod 644 "$T/key644"
t_expect_fail 2 "readable by others" "$FERRY" snapshot list --store "$T/store" --key-file "$T/key644"

# a flipped byte in the largest chunk
big=$(find "$T/store/chunks" -type f -printf '%s %p\n' | sort -n | tail -1 | cut -d' ' -f2)
cp "$big" "$T/chunk.bak"
python3 - "$big" <<'PY'
import sys
p = sys.argv[1]; b = bytearray(open(p, "rb").read()); b[len(b) // 2] ^= 0x40
open(p, "wb").write(b)
PY
"$FERRY" snapshot verify --all "${S[@]}" || t_fail "verify without --read-data reads no data: should pass"
t_expect_fail 5 "broken" "$FERRY" snapshot verify --all --read-data "${S[@]}"
grep -Eq "^BROKEN snapshot $id \(tenant $name\) file [A-Za-z0-9._/-]+: .*does not authenticate" "$T/out" ||
	t_fail "verify did not name the snapshot and file"
"$FERRY" snapshot verify "$id" --read-data --json "${S[@]}" >"$T/v.json" || true
python3 - "$T/v.json" "$id" <<'PY' || t_fail "verify --json"
import json, sys
v = json.load(open(sys.argv[1]))
assert v["broken_snapshots"] == 1 and v["broken"][0]["snapshot"] == sys.argv[2], v
assert v["broken"][0]["file"], v  # an image or a file of the tenant
PY
t_expect_fail 5 "nothing was stopped or started" "$FERRY" snapshot restore "$id" "${S[@]}"
alive "restore of a corrupt snapshot"
cp "$T/chunk.bak" "$big"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after repair"

# a missing chunk
mv "$big" "$T/chunk.moved"
t_expect_fail 5 "broken" "$FERRY" snapshot verify --all "${S[@]}"
grep -q "is missing" "$T/out" || t_fail "verify did not say the chunk is missing"
t_expect_fail 5 "nothing was stopped.*is missing" "$FERRY" snapshot restore "$id" "${S[@]}"
alive "restore with a missing chunk"
mv "$T/chunk.moved" "$big"

# two creates at once on one tenant: one may lose (conflict), none corrupts
"$FERRY" snapshot create "$name" "${S[@]}" >"$T/c1" 2>&1 &
p1=$!
"$FERRY" snapshot create "$name" "${S[@]}" >"$T/c2" 2>&1 &
p2=$!
rc1=0 rc2=0
wait $p1 || rc1=$?
wait $p2 || rc2=$?
cat "$T/c1" "$T/c2"
t_log "two creates: exit codes $rc1 $rc2"
((rc1 == 0 || rc2 == 0)) || t_fail "both concurrent creates failed"
for rc in $rc1 $rc2; do ((rc == 0 || rc == 4)) || t_fail "a concurrent create failed with $rc"; done
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after concurrent creates"
alive "concurrent creates"

# prune while a reader reads the snapshots it removes: the reader holds the
# store's shared lock (restore takes it the same way), prune waits for it
"$FERRY" snapshot verify --all --read-data "${S[@]}" >"$T/v2" 2>&1 &
pv=$!
sleep 0.05
"$FERRY" snapshot prune "$name" --keep-last 1 "${S[@]}" || t_fail "prune failed"
wait $pv || { cat "$T/v2"; t_fail "a verify running during prune failed"; }
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after prune"

# prune while a restore reads the very snapshot it removes: the restore
# holds the store's shared lock from its start to its end, prune waits for
# it; the restore (as another tenant) succeeds, then the snapshot is gone
"$FERRY" snapshot create "$name" "${S[@]}" >/dev/null || t_fail "create before prune+restore"
old=$("$FERRY" snapshot list "$name" "${S[@]}" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')
t_defer "'$FERRY' kill '$name-pr'; '$FERRY' rm '$name-pr'"
"$FERRY" snapshot restore "$old" --name "$name-pr" "${S[@]}" >"$T/pr" 2>&1 &
prp=$!
sleep 0.2
t0=$(date +%s%N)
"$FERRY" snapshot prune "$name" --keep-last 1 "${S[@]}" >"$T/prune" || t_fail "prune during a restore failed"
t_log "prune returned after $((($(date +%s%N) - t0) / 1000000)) ms"
wait $prp || { cat "$T/pr"; t_fail "a restore running during prune failed"; }
cat "$T/pr"
grep -q "^remove $old" "$T/prune" || { cat "$T/prune"; t_fail "prune did not remove $old"; }
[ "$(cr_state "$name-pr")" = running ] || t_fail "the tenant restored during prune does not run"
# beside its running original: a range of its own, its own files under it
grep -q "^id range re-mapped from " "$T/pr" || t_fail "the copy was not re-mapped"
b0=$(awk 'NR==1 {print $2}' "/proc/$pid0/uid_map")
b1=$(awk 'NR==1 {print $2}' "/proc/$(cr_pid "$name-pr")/uid_map")
t_log "ID ranges: original $b0, copy $b1"
[ -n "$b1" ] && [ "$b1" != "$b0" ] || t_fail "the copy's range ($b1) is the original's ($b0)"
cr_root=$FERRY_STATE_DIR/tenants/$name-pr/rootfs
[ "$(stat -c %u "$cr_root/bin/snapwl_flt")" = "$b1" ] || t_fail "the copy's files are not under its range"
[ "$(stat -c %u "$r/bin/snapwl_flt")" = "$b0" ] || t_fail "the original's files changed owner"
"$FERRY" snapshot list "$name" "${S[@]}" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)["snapshots"]
assert len(v) == 1 and v[0]["id"] != sys.argv[1], v' "$old" || t_fail "snapshots after prune+restore"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after prune+restore"
"$FERRY" kill "$name-pr" >/dev/null
alive "prune during a restore"

# a store on a small tmpfs: full while the tenant's files are stored before
# the dump (6 MiB), and while the streamed memory's chunks are written into
# a pack after the dump (15 MiB: the files fit, 12 MiB did not)
for size in 6 15; do
	d="$T/small$size"
	mkdir -p "$d"
	mount -t tmpfs -o size=${size}m tmpfs "$d" || t_skip "cannot mount a tmpfs"
	t_defer "umount '$d'"
	"$FERRY" snapshot init --store "$d/store" --key-file "$T/key" >/dev/null || t_fail "init on tmpfs"
	rc=0
	"$FERRY" snapshot create "$name" --store "$d/store" --key-file "$T/key" >"$T/out" 2>"$T/err" || rc=$?
	cat "$T/out" "$T/err"
	((rc != 0)) || t_fail "a snapshot fitted in ${size} MiB: the test proves nothing"
	((rc == 8)) || t_fail "store full (${size} MiB): exit code $rc, want 8"
	alive "store full (${size} MiB)"
	n=$("$FERRY" snapshot list --store "$d/store" --key-file "$T/key" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
	((n == 0)) || t_fail "a half snapshot is visible"
	"$FERRY" snapshot gc --store "$d/store" --key-file "$T/key" || t_fail "gc on the full store"
	[ -z "$(ls -A "$d/store/tmp")" ] || t_fail "gc left staged files"
	[ -z "$(find "$d/store/chunks" "$d/store/packs" -type f 2>/dev/null)" ] ||
		t_fail "gc left orphan chunks or packs"
	"$FERRY" snapshot verify --all --store "$d/store" --key-file "$T/key" || t_fail "verify of the full store"
done
# the tenant is intact after all of it
cr_verify "$name" "$r"
