#!/bin/bash
# restore --to HOST:PORT (docs/snapshots.md): a snapshot copied into another
# host's store over mutual TLS and restored there; the receiving store
# shares the key. A second snapshot of the same tenant sends only the chunks
# the receiver lacks and replaces the incarnation there; the tenant here
# runs on untouched. A receiver with another key refuses before any chunk.
. "$TESTS_ROOT/lib/common.sh"
t_init snap_remote
. "$TESTS_ROOT/lib/cr.sh"
. "$TESTS_ROOT/lib/hosts.sh"
cr_require
cr_need_wl wl_memory
S=(--store "$T/store" --key-file "$T/key")
name=snap-remote r="$T/rootfs"
B="$T/state-b"

hosts_setup snaprm 214
h_certs "$T/certs" a b c
"$FERRY" snapshot init "${S[@]}" >/dev/null || t_fail "init failed"
mkdir -p "$B" && cp "$T/key" "$B/snapshot.key"
FERRY_STATE_DIR="$B" "$FERRY" snapshot init >/dev/null || t_fail "init on b"
mkdir -p "$r/bin" && cp "$WORKLOADS/wl_memory" "$r/bin/snapwl_rem"
cr_start "$name" "$r" -- /bin/snapwl_rem --mib 16
pid0=$(cr_pid "$name")
t_defer "FERRY_STATE_DIR='$B' '$FERRY' kill '$name'; FERRY_STATE_DIR='$B' '$FERRY' rm '$name'"
h_serve b "$B" "$T/certs" b

push() {
	h_exec a "$FERRY" snapshot restore "$1" "${S[@]}" --to "$(h_addr b):7000" \
		--tls "$T/certs" --tls-name a --peer b --json
}
bpid() { FERRY_STATE_DIR="$B" cr_pid "$name"; }

"$FERRY" snapshot create "$name" "${S[@]}" --json >"$T/c1.json" || t_fail "create 1"
id1=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/c1.json")
push "$id1" | tee "$T/p1.json" || { cat "$H_LOG"; t_fail "restore --to failed"; }
python3 - "$T/p1.json" <<'PY' || t_fail "first push"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["sent"] == p["chunks"] > 0 and p["pid"] > 0 and not p["replaced"], p
PY
p1=$(bpid)
[ -n "$p1" ] && kill -0 "$p1" || t_fail "no tenant running on b"
[ "$(cr_pid "$name")" = "$pid0" ] && kill -0 "$pid0" || t_fail "the tenant here was touched"

sleep 0.5
"$FERRY" snapshot create "$name" "${S[@]}" --json >"$T/c2.json" || t_fail "create 2"
id2=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["id"])' "$T/c2.json")
push "$id2" | tee "$T/p2.json" || { cat "$H_LOG"; t_fail "second restore --to failed"; }
python3 - "$T/p2.json" <<'PY' || t_fail "second push sent too much"
import json, sys
p = json.load(open(sys.argv[1]))
print("second push: sent %d of %d chunks, %d bytes" % (p["sent"], p["chunks"], p["sent_bytes"]))
assert p["sent"] * 20 < p["chunks"] and p["replaced"], p
PY
# the old incarnation on b is gone (a zombie until its parent reaps it)
for _ in $(seq 100); do
	st=$(awk '/^State:/ {print $2}' "/proc/$p1/status" 2>/dev/null || true)
	[ -z "$st" ] || [ "$st" = Z ] && break
	sleep 0.1
done
[ -z "$st" ] || [ "$st" = Z ] || t_fail "the old incarnation on b ($p1) still runs"
FERRY_STATE_DIR="$B" "$FERRY" snapshot verify --all --read-data || t_fail "verify on b"

# the workload restored on b passes its self-check
# b had no tenant of that name: its files went to b's state directory
p2=$(bpid) rb=$B/tenants/$name/rootfs
[ -x "$rb/bin/snapwl_rem" ] || t_fail "the tenant's tree is not on b ($rb)"
rm -f "$rb/tmp/wl.result"
kill -USR1 "$p2"
t_wait_file "$rb/tmp/wl.result" 60
[ "$(cat "$rb/tmp/wl.result")" = PASS ] || t_fail "the tenant on b says $(cat "$rb/tmp/wl.result")"
FERRY_STATE_DIR="$B" "$FERRY" kill "$name" >/dev/null 2>&1 || true # it ends after its check

# a receiver whose store has another key refuses at once
C="$T/state-c"
mkdir -p "$C"
FERRY_STATE_DIR="$C" "$FERRY" snapshot init >/dev/null
kill "$H_PID"
while kill -0 "$H_PID" 2>/dev/null; do sleep 0.1; done
rm -f "$H_LOG" # h_serve waits for "listening" in it
h_serve b "$C" "$T/certs" b
t_expect_fail 5 "another key" h_exec a "$FERRY" snapshot restore "$id2" "${S[@]}" \
	--to "$(h_addr b):7000" --tls "$T/certs" --tls-name a --peer b
[ -z "$(ls "$C/snapshots/snapshots")" ] || t_fail "the refusing receiver stored a snapshot"
[ "$(cr_pid "$name")" = "$pid0" ] && kill -0 "$pid0" || t_fail "the tenant here was touched"
