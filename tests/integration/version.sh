#!/bin/bash
# The version is the build's: `ferry --version` prints what the Makefile
# stamped (`git describe --always --dirty`, or its VERSION outside git), it
# names a commit of this checkout when built from git, and every dump's
# manifest carries it as source.ferry_version.
. "$TESTS_ROOT/lib/common.sh"
t_init version
ROOT=$TESTS_ROOT/..
SHOW=$(dirname "$FERRY")/tests/tools/manifest_show

t_log "ferry --version"
out=$("$FERRY" --version)
echo "$out"
[[ "$out" =~ ^ferry\ ([^[:space:]]+)$ ]] || t_fail "unexpected --version output: $out"
v=${BASH_REMATCH[1]}
stamped=$(sed -n 's/^#define FERRY_VERSION "\(.*\)"$/\1/p' "$(dirname "$FERRY")/lib/version.h")
[ "$v" = "$stamped" ] || t_fail "--version says $v, the build stamped $stamped"
if [ -e "$ROOT/.git" ] && git -C "$ROOT" rev-parse HEAD >/dev/null 2>&1; then
	# TAG-N-gHASH[-dirty] or HASH[-dirty]: the hash is a commit here
	h=${v%-dirty}
	h=${h##*-g}
	git -C "$ROOT" cat-file -e "$h^{commit}" 2>/dev/null ||
		t_fail "version $v names no commit of this checkout"
fi

. "$TESTS_ROOT/lib/cr.sh"
cr_require
t_log "a dump's manifest carries the version"
R="$T/rootfs"
t_rootfs "$R"
NAME=ver-$$
t_defer "'$FERRY' kill $NAME; '$FERRY' rm $NAME"
"$FERRY" run "$NAME" --rootfs "$R" -- sleep 1000 >/dev/null
"$FERRY" dump "$NAME" -D "$T/img" >/dev/null
"$SHOW" "$T/img" >"$T/manifest.json"
cat "$T/manifest.json"
python3 - "$T/manifest.json" "$v" "$NAME" <<'PY' || t_fail "manifest does not carry the version"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["tenant"] == sys.argv[3], d
assert d["source"]["ferry_version"] == sys.argv[2], d["source"]
PY
echo PASS
