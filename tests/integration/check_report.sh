#!/bin/bash
# ferry check: a truthful host report. JSON parses and holds every item and
# mode; the answers agree with what CRIU and the kernel say when asked directly;
# VM tenants are reported with the accelerator a probe guest really booted
# under (KVM, else TCG: an open /dev/kvm proves nothing), never as a bare
# "VM tenants can run and migrate"; a missing CRIU is a FAIL with exit code 7.
. "$TESTS_ROOT/lib/common.sh"
t_init check_report

CRIU=${FERRY_CRIU:-$(cat "$TESTS_ROOT/../.deps/criu-path" 2>/dev/null || true)}

t_log "text report"
rc=0
"$FERRY" check >"$T/check.txt" || rc=$?
cat "$T/check.txt"
grep -q "^Migration modes on this host:" "$T/check.txt" || t_fail "no modes section"
for id in criu criu-check dirty-tracking userfaultfd pipe-limits network-lock \
	tcp-established vm; do
	grep -Eq "^  (OK|WARN|FAIL) +$id " "$T/check.txt" || t_fail "item $id missing"
done
if grep -Eq "^  OK +vm " "$T/check.txt"; then
	grep -Eq "^  OK +vm +QEMU .*accelerator (kvm|tcg): " "$T/check.txt" ||
		t_fail "the vm item does not name its accelerator"
	grep -Eq "^  vm +yes +VM tenants run under (KVM|TCG)" "$T/check.txt" ||
		t_fail "the vm mode does not name its accelerator"
else
	grep -Eq "^  vm +no " "$T/check.txt" || t_fail "vm WARN but the mode is not 'no'"
fi
! grep -Eiq "VM tenants can|QEMU/KVM live migration" "$T/check.txt" ||
	t_fail "check claims VM support without saying how"

t_log "JSON report"
rc_json=0
"$FERRY" check --json >"$T/check.json" || rc_json=$?
python3 -m json.tool "$T/check.json" >/dev/null || t_fail "check --json is not JSON"
((rc == rc_json)) || t_fail "text and JSON exit codes differ ($rc, $rc_json)"

# what the host says when asked directly
feat() { [ -n "$CRIU" ] && "$CRIU" check --feature "$1" >/dev/null 2>&1 && echo 1 || echo 0; }
criu_ok=0
[ -n "$CRIU" ] && "$CRIU" check >/dev/null 2>&1 && criu_ok=1
pipes_ok=0
(($(cat /proc/sys/fs/pipe-user-pages-soft) == 0 && $(cat /proc/sys/fs/pipe-max-size) >= 16777216)) && pipes_ok=1

python3 - "$T/check.json" "$rc" "$criu_ok" "$(feat mem_dirty_track)" "$(feat uffd-noncoop)" \
	"$pipes_ok" <<'PY' || t_fail "report does not match the host"
import json, sys
d = json.load(open(sys.argv[1]))
rc, criu_ok, dirty, uffd, pipes = (int(x) for x in sys.argv[2:])
items = {i["id"]: i for i in d["items"]}
for i in d["items"]:
    assert i["status"] in ("OK", "WARN", "FAIL") and i["detail"], i
modes = {m["name"]: m for m in d["modes"]}
assert set(modes) == {"stop-copy", "pre-copy", "post-copy", "vm"}, modes
assert d["ready"] == bool(criu_ok) and rc == (0 if criu_ok else 7), (d["ready"], rc)
assert (items["criu-check"]["status"] == "OK") == bool(criu_ok)
if criu_ok:
    assert (items["dirty-tracking"]["status"] == "OK") == bool(dirty), items["dirty-tracking"]
    assert (items["userfaultfd"]["status"] == "OK") == bool(uffd), items["userfaultfd"]
    assert modes["pre-copy"]["available"] == bool(dirty)
    assert modes["post-copy"]["available"] == bool(uffd and pipes)
assert (items["pipe-limits"]["status"] == "OK") == bool(pipes)
assert modes["stop-copy"]["available"] == bool(criu_ok)
# VM tenants: available exactly when QEMU boots a probe guest; which
# accelerator is said
vm_ok = items["vm"]["status"] == "OK"
assert modes["vm"]["available"] == vm_ok, (items["vm"], modes["vm"])
if vm_ok:
    assert "accelerator kvm" in items["vm"]["detail"] or \
        "accelerator tcg" in items["vm"]["detail"], items["vm"]
assert "kvm" not in items and "qemu" not in items, items
print("report matches the host:", {m: modes[m]["available"] for m in modes})
PY

t_log "no CRIU"
rc=0
"$FERRY" check --criu /nonexistent >"$T/out" || rc=$?
cat "$T/out"
((rc == 7)) || t_fail "exit code $rc for a missing CRIU (want 7)"
grep -Eq "^  FAIL +criu +--criu /nonexistent" "$T/out" || t_fail "no FAIL for a missing CRIU"
rc=0
"$FERRY" --criu /nonexistent check --json >"$T/nocriu.json" || rc=$?
((rc == 7)) || t_fail "exit code $rc for a missing CRIU (want 7)"
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["ready"]; assert [i for i in d["items"] if i["id"]=="criu"][0]["status"]=="FAIL"' "$T/nocriu.json" ||
	t_fail "JSON for a missing CRIU"
echo PASS
