#!/bin/bash
# ferry check and pre-copy: where CRIU says the kernel tracks dirty memory
# (`criu check --feature mem_dirty_track`), ferry check's dirty-tracking item
# is OK and the pre-copy mode is listed as available (text and JSON); in the
# test guest of `make check-kernels` (Debian 12's kernel, which has
# soft-dirty) this must hold, never skip. Elsewhere the test skips.
. "$TESTS_ROOT/lib/common.sh"
t_init check_precopy
. "$TESTS_ROOT/lib/cr.sh"
cr_require

if ! "$CR_CRIU" check --feature mem_dirty_track >/dev/null 2>&1; then
	[ -z "${FERRY_GUEST_KERNEL:-}" ] ||
		t_fail "in the test guest ($FERRY_GUEST_KERNEL) CRIU says mem_dirty_track is unsupported"
	t_skip "no soft-dirty memory tracking in this kernel ($(uname -r)): pre-copy is not available here"
fi
"$FERRY" check >"$T/check.txt" || true
cat "$T/check.txt"
grep -Eq '^  OK +dirty-tracking ' "$T/check.txt" || t_fail "dirty-tracking is not OK"
grep -Eq '^  pre-copy +yes ' "$T/check.txt" || t_fail "pre-copy is not listed as available"
"$FERRY" check --json >"$T/check.json" || true
python3 - "$T/check.json" <<'PY' || t_fail "JSON report does not say pre-copy is available"
import json, sys
d = json.load(open(sys.argv[1]))
items = {i["id"]: i["status"] for i in d["items"]}
assert items["dirty-tracking"] == "OK", items
modes = {m["name"]: m["available"] for m in d["modes"]}
assert modes["pre-copy"] is True, d["modes"]
PY
t_log "pre-copy available on $(uname -r)"
