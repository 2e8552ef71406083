#!/bin/bash
# Snapshots of a running container tenant (docs/snapshots.md): init (key
# 0600), two creates while it runs (the second adds little), list/show,
# verify --read-data, a known memory pattern in no store file, rollback in
# place (the rolled-back tenant passes its self-check), rm + gc, prune.
. "$TESTS_ROOT/lib/common.sh"
t_init snap_basic
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory
export TZ=UTC
S=(--store "$T/store" --key-file "$T/key")
name=snap-basic r="$T/rootfs"

"$FERRY" snapshot init "${S[@]}" || t_fail "snapshot init failed"
[ "$(stat -c %a "$T/key")" = 600 ] || t_fail "key file mode $(stat -c %a "$T/key")"
t_expect_fail 4 "already" "$FERRY" snapshot init "${S[@]}"

# the workload under a name of its own: a test runner elsewhere on the machine
# kills every process called wl_* when one of its tests ends
mkdir -p "$r/bin" && cp "$WORKLOADS/wl_memory" "$r/bin/snapwl_mem"
cr_start "$name" "$r" -- /bin/snapwl_mem --mib 64
pid0=$(cr_pid "$name")
# a file of the tenant's tree with a known pattern: in the snapshots too
python3 -c 'import sys; open(sys.argv[1], "wb").write(b"ferry-basic-file-pattern-0123456" * 4096)' \
	"$r/tmp/secret"
sleep 0.5
"$FERRY" snapshot create "$name" "${S[@]}" --tag first --json >"$T/c1.json" ||
	t_fail "first snapshot failed"
cat "$T/c1.json"
id1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/c1.json")
[ "$(cr_pid "$name")" = "$pid0" ] && kill -0 "$pid0" || t_fail "tenant stopped by the snapshot"
[ "$(cr_state "$name")" = running ] || t_fail "tenant not running after create"
sleep 1
"$FERRY" snapshot create "$name" "${S[@]}" --json >"$T/c2.json" || t_fail "second snapshot failed"
cat "$T/c2.json"
python3 - "$T/c1.json" "$T/c2.json" <<'PY' || t_fail "second snapshot is not incremental"
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
print("first added %d of %d, second added %d of %d" % (a["added"], a["size"], b["added"], b["size"]))
assert b["parent"] == a["id"], "parent"
assert b["added"] < a["size"] / 50, "second snapshot added too much"
assert a["frozen_ms"] > 0
# the memory came through CRIU's page server into the store, no pages image staged
for x in (a, b):
    assert x["stream"]["pages"] * 4096 > 60 << 20, x["stream"]
    assert x["stream"]["header_bytes"] in (24, 32), x["stream"]
assert b["stream"]["known_chunks"] > b["stream"]["pages"] * 9 // 10, b["stream"]
PY

"$FERRY" snapshot list "${S[@]}"
n=$("$FERRY" snapshot list "$name" "${S[@]}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
((n == 2)) || t_fail "list shows $n snapshots, want 2"
"$FERRY" snapshot show "${id1:0:8}" "${S[@]}" | tee "$T/show" | head -12
grep -q "pages-[0-9]*.img.*(pages)" "$T/show" || t_fail "show: no page-chunked pages image"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify --read-data failed"
# inspect: the process tree decoded from CRIU's images inside the snapshot
"$FERRY" inspect "$id1" "${S[@]}" || t_fail "inspect failed"
"$FERRY" inspect "$id1" "${S[@]}" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
p = [x for x in v["processes"] if x["comm"] == "snapwl_mem"]
assert p and p[0]["cmdline"] == "/bin/snapwl_mem --mib 64", v["processes"]
assert v["tenant"] == "snap-basic" and v["memory_dumped"] > 32 << 20 and v["frozen_ms"] > 0, v
' || t_fail "inspect did not decode the tenant's process"

# encrypted at rest: wl_memory's pattern pages are in the tenant's memory,
# never in a store file (32 bytes of the 64-bit pattern, little-endian);
# nor is the pattern of the tenant's file (which the snapshot holds)
python3 - "$T/store" <<'PY' || t_fail "a pattern is in the store in clear"
import os, struct, sys
pats = [struct.pack("<Q", 0x6665727279a55a5b) * 4, b"ferry-basic-file-pattern-0123456"]
hits = []
for d, _, files in os.walk(sys.argv[1]):
    for f in files:
        with open(os.path.join(d, f), "rb") as fh:
            data = fh.read()
            hits += [f for p in pats if p in data]
print("files with a pattern:", len(hits))
assert not hits, hits[:5]
PY
"$FERRY" snapshot show "$id1" "${S[@]}" --json | python3 -c '
import json, sys
v = json.load(sys.stdin)
assert v["rootfs_kind"] == "tree" and v["fs_entries"] > 10, v
assert any(f["path"] == "tmp/secret" and f["part"] == "rootfs" and f["size"] == 131072 for f in v["files"]), v
' || t_fail "the tenant's file is not in the snapshot"
mem=$(python3 -c '
import struct,sys
pat = struct.pack("<Q", 0x6665727279a55a5b) * 4
pid = int(sys.argv[1]); found = False
for line in open("/proc/%d/maps" % pid):
    a, b = (int(x, 16) for x in line.split()[0].split("-"))
    if "rw" not in line.split()[1] or b - a < (1 << 20): continue
    with open("/proc/%d/mem" % pid, "rb") as m:
        m.seek(a)
        if pat in m.read(min(b - a, 4 << 20)): found = True; break
print(found)' "$pid0")
[ "$mem" = True ] || t_fail "pattern not found in the tenant's memory: the check proves nothing"

# rm + gc, prune
id2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/c2.json")
before=$(find "$T/store/chunks" -type f | wc -l)
"$FERRY" snapshot rm "$id2" "${S[@]}" || t_fail "rm failed"
"$FERRY" snapshot gc "${S[@]}" || t_fail "gc failed"
after=$(find "$T/store/chunks" -type f | wc -l)
t_log "chunks: $before before rm+gc, $after after"
((after < before)) || t_fail "gc removed nothing"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after gc failed"
"$FERRY" snapshot create "$name" "${S[@]}" || t_fail "third snapshot failed"
"$FERRY" snapshot prune "$name" --keep-last 1 --dry-run "${S[@]}" | tee "$T/prune"
grep -q '^keep .*last' "$T/prune" && grep -q '^remove' "$T/prune" || t_fail "prune --dry-run output"
"$FERRY" snapshot prune "$name" --keep-last 1 "${S[@]}" || t_fail "prune failed"
n=$("$FERRY" snapshot list "${S[@]}" --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["snapshots"]))')
((n == 1)) || t_fail "$n snapshots after prune --keep-last 1"
"$FERRY" snapshot verify --all --read-data "${S[@]}" || t_fail "verify after prune failed"
id1=$("$FERRY" snapshot list "${S[@]}" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["snapshots"][0]["id"])')

# rollback in place to the snapshot left
"$FERRY" snapshot restore "$id1" "${S[@]}" --json | tee "$T/r.json" || t_fail "restore failed"
grep -q '"replaced":true' "$T/r.json" || t_fail "restore did not replace the running tenant"
cr_wait_gone "$pid0" 10
sleep 0.5
cr_verify "$name" "$r"

