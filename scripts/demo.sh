#!/bin/bash
# The demo: a tenant that counts, dumped and restored, going on from where it
# stopped. (Live migration between two simulated hosts replaces this once
# `ferry migrate` exists.)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
FERRY="$ROOT/build/ferry"
WORK=$(mktemp -d /tmp/ferry-demo.XXXXXX)
export FERRY_STATE_DIR="$WORK/state"
NAME=demo-counter
R="$WORK/rootfs"

cleanup() {
	"$FERRY" kill "$NAME" >/dev/null 2>&1 || true
	"$FERRY" rm "$NAME" >/dev/null 2>&1 || true
	rm -rf "$WORK"
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "host readiness"
"$FERRY" check || true

say "a minimal root file system with a counting tenant"
mkdir -p "$R"/{bin,proc,dev,tmp,sys,etc}
cp /bin/busybox "$R/bin/busybox"
for a in sh sleep cat; do ln -sf busybox "$R/bin/$a"; done
cp "$ROOT/build/tests/workloads/wl_counter" "$R/bin/"

"$FERRY" run "$NAME" --rootfs "$R" -- /bin/wl_counter --interval-ms 200
"$FERRY" ps
sleep 2
before=$(cat "$R/tmp/counter")
echo "counter before the dump: $before"

say "stage 1: dump (the tenant is frozen, serialized and stopped)"
"$FERRY" dump "$NAME" -D "$WORK/images"
sleep 1
echo "counter while dumped (nothing runs): $(cat "$R/tmp/counter")"

say "stage 3: restore"
"$FERRY" restore -D "$WORK/images"
sleep 2
after=$(cat "$R/tmp/counter")
echo "counter after the restore: $after"
"$FERRY" ps

if ((after > before)); then
	say "the tenant went on from where it stopped ($before -> $after)"
else
	echo "demo FAILED: counter did not go on ($before -> $after)" >&2
	exit 1
fi
