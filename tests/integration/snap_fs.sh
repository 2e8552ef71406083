#!/bin/bash
# A snapshot holds the tenant's files with its memory, of one frozen instant
# (docs/snapshots.md): an image tenant running wl_fs (a log it appends to, a
# file it rewrites, files it creates and deletes every 50 ms, hard link,
# symlink, sparse file, FIFO, a whiteout) is snapshotted twice (the second
# reads only what changed), inspect shows the file-system changes, a known
# pattern in one of its files is in no store file, and rollbacks in place
# and as another tenant pass wl_fs's self-check (memory and files agree);
# a host whose image store lacks the image takes it from the snapshot.
# Then a --rootfs tenant: its whole tree, rolled back in place.
. "$TESTS_ROOT/lib/common.sh"
t_init snap_fs
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_fs
S=(--store "$T/store" --key-file "$T/key")
NAME=snapfs-$$ NEW=snapfs-new-$$
t_defer "'$FERRY' rm --force $NEW"
t_defer "'$FERRY' rm --force $NAME"
jget() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

"$FERRY" snapshot init "${S[@]}" >/dev/null || t_fail "snapshot init failed"
IMG=$T/img
t_rootfs "$IMG"
echo "delete me" >"$IMG/etc/wl-fs-delete"
ID=$("$FERRY" image import "$IMG" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
# in a user namespace (the default): the restore under another name below
# runs a copy beside the original, re-mapped to a range of its own
"$FERRY" run "$NAME" --image "$ID" -- wl_fs --delete /etc/wl-fs-delete >/dev/null ||
	t_fail "run --image failed"
ROOT=$FERRY_STATE_DIR/tenants/$NAME/root UPPER=$FERRY_STATE_DIR/tenants/$NAME/upper
t_wait_file "$ROOT/tmp/wl.ready" 30
# a file of the tenant's own layer with a known pattern (256 KiB)
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"ferry-snapfs-pattern-0123456789-" * 8192)' \
	"$ROOT/tmp/secret"
sleep 0.5

t_log "two snapshots: the second reads only what changed"
"$FERRY" snapshot create "$NAME" "${S[@]}" --json >"$T/c1.json" || t_fail "first snapshot failed"
cat "$T/c1.json"
sleep 1
"$FERRY" snapshot create "$NAME" "${S[@]}" --json >"$T/c2.json" || t_fail "second snapshot failed"
cat "$T/c2.json"
python3 - "$T/c1.json" "$T/c2.json" <<'PY' || t_fail "files not in the snapshots as expected"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
for x in (a, b):
    assert x["fs_entries"] > 10, x
    assert x["fs_frozen_ms"] > 0 and x["frozen_ms"] > 0, x
# the frozen pass found most entries unchanged since the pass while running,
# the second snapshot's pass while running most since the first snapshot
assert b["fs_reused"] >= 4, b  # secret, sparse, hl1, wl.ready
assert b["added"] < a["added"] / 4, (a["added"], b["added"])
print("files: %d entries, frozen pass %.1f ms / %.1f ms; added %d then %d bytes" %
      (b["fs_entries"], a["fs_frozen_ms"], b["fs_frozen_ms"], a["added"], b["added"]))
PY
id1=$(jget "$T/c1.json" id) id2=$(jget "$T/c2.json" id)
"$FERRY" snapshot show "$id2" "${S[@]}" | grep -q "rootfs  layer $ID" || t_fail "show: no layer"
"$FERRY" inspect "$id2" "${S[@]}" | tee "$T/insp" | grep -A5 "^  files" || t_fail "inspect failed"
"$FERRY" inspect "$id2" "${S[@]}" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)["files"]
ch = {c["path"]: c["change"] for c in v["changes"]}
assert v["kind"] == "layer" and v["parent"], v
assert ch.get("tmp/fs/log") == "~", ch
assert any(p.startswith("tmp/fs/f.") and c == "+" for p, c in ch.items()), ch
assert any(p.startswith("tmp/fs/f.") and c == "-" for p, c in ch.items()), ch
assert "tmp/secret" not in ch, ch
' || t_fail "inspect: file-system changes"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify --read-data failed"

t_log "encrypted at rest: the file's pattern is in no store file"
grep -q "ferry-snapfs-pattern" "$UPPER/tmp/secret" || t_fail "no pattern in the layer: proves nothing"
if grep -rl "ferry-snapfs-pattern" "$T/store"; then t_fail "the pattern is in the store in clear"; fi

t_log "rollback in place to the first snapshot: memory and files of one instant"
pid0=$(cr_pid "$NAME")
touch "$ROOT/tmp/after-snapshot"
"$FERRY" snapshot restore "$id1" "${S[@]}" --json | tee "$T/r1.json" || t_fail "restore failed"
grep -q '"replaced":true' "$T/r1.json" || t_fail "restore did not replace the running tenant"
cr_wait_gone "$pid0" 10
[ ! -e "$ROOT/tmp/after-snapshot" ] || t_fail "a file made after the snapshot survived the rollback"
[ -c "$UPPER/etc/wl-fs-delete" ] || t_fail "the whiteout did not come back"
grep -q " $ROOT overlay " /proc/self/mounts || t_fail "no overlay at $ROOT after the rollback"
cr_verify "$NAME" "$ROOT"

t_log "restore --name: another tenant with its own copy of the files"
"$FERRY" snapshot restore "$id2" --name "$NEW" "${S[@]}" --json | tee "$T/rn.json" ||
	t_fail "restore --name failed"
ROOTN=$FERRY_STATE_DIR/tenants/$NEW/root
grep -q " $ROOTN overlay " /proc/self/mounts || t_fail "no overlay at $ROOTN"
cmp -s "$ROOTN/tmp/secret" "$UPPER/tmp/secret" || t_fail "the new tenant's file differs"
# beside its original (its record holds the range, the workload ended at
# its check above): a range of its own, its own layer under it, the
# original's files as they were
id_base() {
	"$FERRY" ps --json | python3 -c 'import json, sys
print([t for t in json.load(sys.stdin)["tenants"] if t["name"] == sys.argv[1]][0]["isolation"]["id_base"])' "$1"
}
b0=$(id_base "$NAME") b1=$(id_base "$NEW")
[ "$(awk 'NR==1 {print $2}' "/proc/$(cr_pid "$NEW")/uid_map")" = "$b1" ] ||
	t_fail "the copy does not run under the range of its record ($b1)"
t_log "ID ranges: original $b0, copy $b1"
python3 -c 'import json,sys; v=json.load(open(sys.argv[1]))["id_remap"]
assert v == {"from": int(sys.argv[2]), "to": int(sys.argv[3])}, v' "$T/rn.json" "$b0" "$b1" ||
	t_fail "restore --json does not say the range was re-mapped"
for f in tmp/fs/log tmp/wl.ready etc/passwd; do
	[ "$(stat -c %u "$ROOTN/$f")" = "$b1" ] || t_fail "$f of the copy is not under its range $b1"
	[ "$(stat -c %u "$ROOT/$f")" = "$b0" ] || t_fail "$f of the original is not under its range $b0"
done
[ "$(stat -c %u "$FERRY_STATE_DIR/images/$ID/rootfs/etc/passwd")" = 0 ] || t_fail "the image changed owner"
cr_verify "$NEW" "$ROOTN"
"$FERRY" kill "$NEW" >/dev/null 2>&1 || true

t_log "a host whose image store lacks the image: it comes from the snapshot"
S2=$T/state2
t_defer "FERRY_STATE_DIR='$S2' '$FERRY' rm --force $NAME"
FERRY_STATE_DIR=$S2 "$FERRY" snapshot restore "$id2" "${S[@]}" || t_fail "restore on a host without the image"
[ -d "$S2/images/$ID/rootfs" ] || t_fail "the image was not adopted from the snapshot"
ROOT2=$S2/tenants/$NAME/root
grep -q " $ROOT2 overlay " /proc/self/mounts || t_fail "no overlay at $ROOT2"
FERRY_STATE_DIR=$S2 cr_verify "$NAME" "$ROOT2"

t_log "a --rootfs tenant: its whole tree"
N2=snapfs-tree-$$ R2=$T/tree
cr_start "$N2" "$R2" -- /bin/wl_fs
sleep 0.5
"$FERRY" snapshot create "$N2" "${S[@]}" --json >"$T/t1.json" || t_fail "tree snapshot failed"
python3 -c 'import json,sys; v=json.load(open(sys.argv[1])); assert v["fs_entries"] > 20, v' \
	"$T/t1.json" || t_fail "tree snapshot without the tree"
"$FERRY" snapshot show "$(jget "$T/t1.json" id)" "${S[@]}" | grep -q "rootfs  tree $R2" ||
	t_fail "show: no tree"
sleep 1
pid0=$(cr_pid "$N2")
echo later >"$R2/tmp/after-snapshot"
"$FERRY" snapshot restore "$(jget "$T/t1.json" id)" "${S[@]}" || t_fail "tree restore failed"
cr_wait_gone "$pid0" 10
[ ! -e "$R2/tmp/after-snapshot" ] || t_fail "a file made after the tree snapshot survived"
[ -z "$(ls -a "$T" | grep '^\.tree\.')" ] || t_fail "staged trees left: $(ls -a "$T")"
cr_verify "$N2" "$R2"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify at the end failed"
