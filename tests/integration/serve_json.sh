#!/bin/bash
# `ferry serve --json` prints one JSON object per line on stdout, whatever
# the agents do: both agents run with --json while a tenant moves a -> b in
# stop-copy, b -> a in post-copy, then a -> b with the source `ferry migrate`
# killed before COMMIT (b, in doubt, asks a's agent: a "query" on a, a
# "verdict" on b); a set is sent to b, and a plaintext client and an
# unsupported request are refused. Every line of both agents' stdout must
# parse as a JSON object with an "event", and the expected events are there.
. "$TESTS_ROOT/lib/common.sh"
t_init serve_json
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_memory
. "$TESTS_ROOT/lib/mhosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

export MH_SERVE_TIMEOUT=5 MH_SERVE_JSON=1
mh_setup sj
mh_serve a
mh_serve b
NAME=sj-mem
R="$T/rootfs"
CMD="/bin/wl_memory --mib 32 --dirty 2 --seed $((0x$MH_TOK + 7))"
mh_start a "$NAME" "$R" -- $CMD

# 1. stop-copy a -> b
old=$(mh_pid a "$NAME")
mh_migrate a b "$NAME" --mode stop-copy >/dev/null || {
	cat "$T/serve-b.log"
	t_fail "stop-copy a -> b failed"
}
mh_assert_one_host "$NAME" a b "$old"

# 2. post-copy b -> a
old=$(mh_pid b "$NAME")
mh_migrate b a "$NAME" --mode post-copy --tune-host >/dev/null || {
	cat "$T/serve-a.log"
	t_fail "post-copy b -> a failed"
}
mh_assert_one_host "$NAME" b a "$old"

# 3. a -> b, the source killed after CRIU killed its copy and before COMMIT:
#    b asks a's agent, which answers commit; the tenant runs on b
old=$(mh_pid a "$NAME")
rc=0
mh_exec a env FERRY_FAULT=src-crash-before-commit FERRY_STATE_DIR="$T/state-a" "$FERRY" \
	migrate "$NAME" --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
	--mode stop-copy --timeout 10 >/dev/null 2>"$T/err" || rc=$?
((rc == 137)) || { cat "$T/err"; t_fail "ferry migrate exited $rc, want 137 (killed)"; }
MH_ONE_WAIT=30 mh_assert_one_host "$NAME" a b "$old"

# 4. a set sent to b, a plaintext client, an unsupported request
mkdir -p "$T/set"
head -c 200000 /dev/urandom >"$T/set/pages-1.img"
"$WIRETOOL" mkset "$T/set" sj >/dev/null
mh_ferry a send "$T/set" --to "$(mh_addr b):7000" --tls "$T/certs" --name a --peer b \
	>/dev/null || t_fail "send failed"
mh_exec a timeout 5 bash -c "echo hi >/dev/tcp/$(mh_addr b)/7000" || true
mh_exec a "$WIRETOOL" evil-offer "$(mh_addr b):7000" "$T/certs" a b outoforder \
	>"$T/out" 2>&1 || { cat "$T/out"; t_fail "outoforder request was not refused"; }
sleep 0.5

mh_kill_serve a
mh_kill_serve b
for h in a b; do
	echo "--- agent $h, stdout"
	cat "$T/serve-$h.json"
done
python3 - "$T/serve-a.json" "$T/serve-b.json" <<'PY' || t_fail "agent output is not one JSON object per line"
import json, sys

def events(path):
    out = []
    for i, line in enumerate(open(path, encoding="utf-8"), 1):
        try:
            d = json.loads(line)
        except ValueError as e:
            sys.exit(f"{path}:{i}: not JSON ({e}): {line!r}")
        if not isinstance(d, dict) or not isinstance(d.get("event"), str):
            sys.exit(f"{path}:{i}: not an event object: {line!r}")
        out.append(d)
    return out

a, b = events(sys.argv[1]), events(sys.argv[2])
def find(evs, name, **kv):
    return [e for e in evs if e["event"] == name and all(e.get(k) == v for k, v in kv.items())]

for evs in (a, b):
    assert evs[0]["event"] == "listening" and evs[-1]["event"] == "stopped", evs
m = find(b, "migration", ok=True, mode="stop-copy")
assert len(m) == 2 and m[0]["tenant"] == "sj-mem" and m[0]["pid"] > 0, b
assert m[0]["restore_ms"] > 0 and m[0]["peer_name"] == "a", m
assert find(a, "migration", ok=True, mode="post-copy"), a
assert find(b, "verdict", verdict="commit"), b
assert find(a, "query", verdict="commit", peer_name="b"), a
t = find(b, "transfer", ok=True)
assert t and t[0]["files"] >= 1 and t[0]["peer_name"] == "a", b
assert find(b, "connection", ok=False), b
r = [e for e in find(b, "connection", ok=False) if "unsupported request" in e["error"]]
assert r, b
print(f"a: {len(a)} events, b: {len(b)} events, all JSON")
PY
mh_verify b "$NAME" "$R"
echo PASS
