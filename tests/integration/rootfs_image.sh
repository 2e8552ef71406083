#!/bin/bash
# Images and image tenants on one host, and a dump that carries the tenant's
# files to a host that never saw it (a second state dir, its own store):
# ferry image import (directory, tar, gzip, zstd, lz4: one content id),
# ls, rm (refused while used); unsafe archives refused at import; ferry run
# --image (overlay root, the image untouched); dump --with-rootfs
# --with-image; restore in the other state dir; wl_fs checks its files
# (log, a file it rewrites with its fd open, deletions in its dir and of an
# image file, hard link, symlink, sparse file, FIFO); nothing left mounted.
. "$TESTS_ROOT/lib/common.sh"
. "$TESTS_ROOT/lib/cr.sh"
t_init rootfs_image
cr_require
cr_need_wl wl_fs
command -v zstd >/dev/null && command -v lz4 >/dev/null || t_skip "zstd and lz4 needed"

NAME=rfi-$$
S1=$FERRY_STATE_DIR
S2=$T/state2
t_defer "FERRY_STATE_DIR='$S2' '$FERRY' rm --force $NAME"
t_defer "FERRY_STATE_DIR='$S1' '$FERRY' rm --force $NAME"

t_log "an image with every kind of entry"
IMG=$T/img
t_rootfs "$IMG"
echo "delete me" >"$IMG/etc/wl-fs-delete"
echo data >"$IMG/etc/a"
ln "$IMG/etc/a" "$IMG/etc/a-link"
ln -s ../etc/a "$IMG/root/rel-link"
ln -s /etc/a "$IMG/root/abs-link"
truncate -s 16M "$IMG/root/sparse"
echo tail | dd of="$IMG/root/sparse" bs=1 seek=8000000 conv=notrunc status=none
mkfifo "$IMG/root/fifo"
mknod "$IMG/root/null" c 1 3
mkdir "$IMG/root/owned" && chown 1234:5678 "$IMG/root/owned" && chmod 2750 "$IMG/root/owned"
python3 -c 'import os,sys; os.setxattr(sys.argv[1], "user.ferry", b"x1")' "$IMG/etc/a"
touch -d '2021-02-03 04:05:06' "$IMG/etc/a"

"$FERRY" image import "$IMG" --json >"$T/imp.json"
ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/imp.json")
[ ${#ID} = 64 ] || t_fail "no content id: $(cat "$T/imp.json")"
R=$S1/images/$ID/rootfs
[ "$(stat -c %h:%i "$R/etc/a")" = "$(stat -c 2:%i "$R/etc/a-link")" ] || t_fail "hard link lost"
[ "$(readlink "$R/root/rel-link")" = ../etc/a ] || t_fail "symlink lost"
[ "$(readlink "$R/root/abs-link")" = /etc/a ] || t_fail "absolute symlink lost"
[ "$(stat -c %s "$R/root/sparse")" = 16777216 ] || t_fail "sparse size"
(($(stat -c %b "$R/root/sparse") < 1024)) || t_fail "sparse file filled"
[ -p "$R/root/fifo" ] && [ -c "$R/root/null" ] || t_fail "fifo or device lost"
[ "$(stat -c %u:%g:%a "$R/root/owned")" = 1234:5678:2750 ] || t_fail "owner/mode lost"
[ "$(stat -c %Y "$R/etc/a")" = "$(stat -c %Y "$IMG/etc/a")" ] || t_fail "mtime lost"
python3 -c 'import os,sys; assert os.getxattr(sys.argv[1], "user.ferry") == b"x1"' "$R/etc/a" ||
	t_fail "xattr lost"

t_log "the same tree as tar, gzip, zstd, lz4: the same id, stored once"
tar --xattrs --xattrs-include='*' -C "$IMG" -cf "$T/img.tar" .
gzip -c "$T/img.tar" >"$T/img.tar.gz"
zstd -q -c "$T/img.tar" >"$T/img.tar.zst"
lz4 -q -c "$T/img.tar" >"$T/img.tar.lz4"
for f in img.tar img.tar.gz img.tar.zst img.tar.lz4; do
	"$FERRY" image import "$T/$f" >"$T/out"
	grep -q "^present $ID " "$T/out" || t_fail "$f: $(cat "$T/out") (want present $ID)"
done
[ "$(ls "$S1/images" | wc -l)" = 1 ] || t_fail "store: $(ls -a "$S1/images")"
"$FERRY" image ls --json | python3 -c '
import json, sys
v = json.load(sys.stdin)["images"]
assert len(v) == 1 and v[0]["id"] == sys.argv[1] and v[0]["entries"] > 10, v' "$ID" ||
	t_fail "image ls --json"

t_log "unsafe archives are refused at import"
python3 - "$T" <<'PY'
import io, sys, tarfile
def mk(name, kind, path, target=None):
    with tarfile.open(f"{sys.argv[1]}/{name}.tar", "w") as t:
        ok = tarfile.TarInfo("ok"); ok.size = 1; t.addfile(ok, io.BytesIO(b"x"))
        ti = tarfile.TarInfo(path)
        if kind == "f":
            ti.size = 1; t.addfile(ti, io.BytesIO(b"x")); return
        ti.type = tarfile.SYMTYPE if kind == "s" else tarfile.LNKTYPE
        ti.linkname = target; t.addfile(ti)
mk("dotdot", "f", "a/../../evil")
mk("abs", "f", "/tmp/evil")
mk("symesc", "s", "a/b", "../../../etc/shadow")
mk("hardesc", "h", "x", "../../etc/shadow")
PY
t_expect_fail 5 "'\.\.' component" "$FERRY" image import "$T/dotdot.tar"
t_expect_fail 5 "absolute name" "$FERRY" image import "$T/abs.tar"
t_expect_fail 5 "points out of the root" "$FERRY" image import "$T/symesc.tar"
t_expect_fail 5 "hard link target" "$FERRY" image import "$T/hardesc.tar"
[ "$(ls -A "$S1/images" | wc -l)" = 1 ] || t_fail "a refused import left something: $(ls -A "$S1/images")"
[ ! -e /tmp/evil ] || t_fail "/tmp/evil was written"

t_log "run --image: an overlay, the image untouched"
"$FERRY" run "$NAME" --image "${ID:0:12}" -- wl_fs --delete /etc/wl-fs-delete >/dev/null
ROOT1=$S1/tenants/$NAME/root
t_wait_file "$ROOT1/tmp/wl.ready" 30
grep -q " $ROOT1 overlay " /proc/self/mounts || t_fail "no overlay at $ROOT1"
[ -e "$R/etc/wl-fs-delete" ] && [ ! -e "$R/tmp/fs" ] || t_fail "the tenant wrote into the image"
[ -c "$S1/tenants/$NAME/upper/etc/wl-fs-delete" ] || t_fail "no whiteout in the upper layer"
grep -q "^image=$ID" "$S1/tenants/$NAME/record" || t_fail "record lacks the image"
t_expect_fail 4 "used by tenant" "$FERRY" image rm "$ID"
t_expect_fail 2 "either --rootfs DIR or --image" "$FERRY" run x-$$ --image "$ID" --rootfs "$IMG" -- sh
t_expect_fail 3 "no image" "$FERRY" run x-$$ --image deadbeefdead -- sh
t_expect_fail 2 "with --with-rootfs" "$FERRY" dump "$NAME" -D "$T/bad" --with-image
sleep 0.5

t_log "dump --with-rootfs --with-image, restore on a host that never saw it"
"$FERRY" dump "$NAME" -D "$T/set" --with-rootfs --with-image
for f in rootfs-layer.tar rootfs-image.tar; do
	grep -q "$f" <(strings "$T/set/manifest.ferry") ||
		t_fail "$f not in the manifest"
done
FERRY_STATE_DIR=$S2 "$FERRY" restore -D "$T/set" || t_fail "restore in the other state dir"
ROOT2=$S2/tenants/$NAME/root
[ -d "$S2/images/$ID/rootfs" ] || t_fail "the image did not come with the set"
grep -q " $ROOT2 overlay " /proc/self/mounts || t_fail "no overlay at $ROOT2"
FERRY_STATE_DIR=$S2 cr_verify "$NAME" "$ROOT2"

t_log "a corrupt layer is caught by the manifest"
cp -r "$T/set" "$T/set-bad"
printf 'X' | dd of="$T/set-bad/rootfs-layer.tar" bs=1 seek=700 conv=notrunc status=none
t_expect_fail 5 "" env FERRY_STATE_DIR="$T/state3" "$FERRY" restore -D "$T/set-bad"
[ ! -d "$T/state3/tenants/$NAME/upper" ] || t_fail "a refused restore left a layer"

t_log "rm unmounts and drops the layer; then the image can go"
FERRY_STATE_DIR=$S2 "$FERRY" rm --force "$NAME"
"$FERRY" rm --force "$NAME"
! grep -q " $T/" /proc/self/mounts || t_fail "mounts left: $(grep " $T/" /proc/self/mounts)"
[ ! -e "$S1/tenants/$NAME" ] && [ ! -e "$S2/tenants/$NAME" ] || t_fail "tenant dirs left"
"$FERRY" image rm "$ID" >/dev/null
[ -z "$(ls -A "$S1/images")" ] || t_fail "image not removed"
echo PASS
