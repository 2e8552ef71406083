#!/bin/bash
# Dump / restore benchmark: ferry against raw CRIU on the same kind of tenant.
# A container tenant (`ferry run`) with 1 GiB of touched memory (wl_memory)
# is dumped and restored by ferry; another one, started the same way, by the
# `criu` CLI with the same CRIU binary and the options ferry's container
# driver uses (--network-lock nftables --file-locks, log level 4, --root,
# detached restore). Frozen times come from CRIU's own stats-dump in both
# cases; restore times are wall clock of the restore request.
#   BENCH_MIB (1024)  memory of the tenant;  BENCH_ROUNDS (5)  rounds, median
#   BENCH_DIR (/tmp)  where images go (/dev/shm takes the disk out of the figures)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
FERRY="$ROOT/build/ferry"
WORKLOADS="$ROOT/build/tests/workloads"
MIB=${BENCH_MIB:-1024}
ROUNDS=${BENCH_ROUNDS:-5}
CRIU=${FERRY_CRIU:-$(cat "$ROOT/.deps/criu-path" 2>/dev/null || command -v criu)}
W=$(mktemp -d "${BENCH_DIR:-/tmp}/ferry-bench.XXXXXX")
export FERRY_STATE_DIR="$W/state"
R="$W/rootfs"
CLI_PIDS=()

cleanup() {
	set +e
	for n in bench-ferry bench-cli; do
		"$FERRY" kill "$n" >/dev/null 2>&1
		"$FERRY" rm "$n" >/dev/null 2>&1
	done
	for p in "${CLI_PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$W"
}
trap cleanup EXIT

[ -x "$FERRY" ] && [ -x "$WORKLOADS/wl_memory" ] || {
	echo "bench: build first (make test-bins)" >&2
	exit 1
}
mkdir -p "$R"/{bin,proc,dev,tmp,sys,etc}
cp /bin/busybox "$R/bin/busybox"
cp "$WORKLOADS/wl_memory" "$R/bin/"

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }

# frozen_ms FILE: frozen_time (field 2 of the dump entry) of a stats-dump
frozen_ms() {
	python3 - "$1" <<'PY'
import struct, sys
b = open(sys.argv[1], "rb").read()
n = struct.unpack("<I", b[8:12])[0]
p = b[12:12 + n]
def varint(p, i):
    v = s = 0
    while True:
        c = p[i]; i += 1; v |= (c & 0x7f) << s; s += 7
        if not c & 0x80:
            return v, i
def fields(p):
    i, out = 0, {}
    while i < len(p):
        k, i = varint(p, i)
        if k & 7 == 0:
            v, i = varint(p, i)
        else:  # length-delimited
            l, i = varint(p, i); v = p[i:i + l]; i += l
        out[k >> 3] = v
    return out
d = fields(fields(p)[1])
print("%.1f" % (d[2] / 1000.0))
PY
}

# start NAME: a fresh tenant with MIB of touched memory, ready
start() {
	rm -f "$R/tmp/wl.ready" "$R/tmp/wl.result"
	"$FERRY" kill "$1" >/dev/null 2>&1 || true
	"$FERRY" rm "$1" >/dev/null 2>&1 || true
	"$FERRY" run "$1" --rootfs "$R" -- /bin/wl_memory --mib "$MIB" >/dev/null
	for _ in $(seq 600); do [ -e "$R/tmp/wl.ready" ] && return 0; sleep 0.1; done
	echo "bench: $1 never got ready" >&2
	exit 1
}

pid_of() {
	"$FERRY" ps --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == sys.argv[1]: print(t["pid"])' "$1"
}

jget() { python3 -c 'import json,sys; print("%.1f" % json.load(open(sys.argv[1]))[sys.argv[2]])' "$@"; }

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# Both sides start from the same state: the previous images removed, dirty
# pages written back. The order alternates between rounds, and round 0 is a
# warm-up (this VM's first touch of 1 GiB of page cache is slow).
settle() {
	sync
	sleep 0.5
}

run_ferry() {
	start bench-ferry
	settle
	"$FERRY" dump bench-ferry -D "$W/f" --json >"$W/fd.json"
	settle
	"$FERRY" restore -D "$W/f" --json >"$W/fr.json"
	"$FERRY" kill bench-ferry >/dev/null
	rm -rf "$W/f"
}

run_cli() {
	start bench-cli
	local pid
	pid=$(pid_of bench-cli)
	mkdir -p "$W/c"
	settle
	t0=$(now_ms)
	"$CRIU" dump -t "$pid" -D "$W/c" --network-lock nftables --file-locks -v4 -o dump.log
	t1=$(now_ms)
	settle
	t2=$(now_ms)
	"$CRIU" restore -D "$W/c" --root "$R" -d --network-lock nftables --file-locks -v4 \
		-o restore.log --pidfile "$W/c/restored.pid"
	t3=$(now_ms)
	CLI_PIDS+=("$(cat "$W/c/restored.pid")")
	cli_frozen=$(frozen_ms "$W/c/stats-dump")
	kill -9 "$(cat "$W/c/restored.pid")"
	"$FERRY" rm bench-cli >/dev/null 2>&1 || true
	rm -rf "$W/c"
}

ff=() ft=() fr=() frt=() fv=() cf=() ct=() cr=()
for i in $(seq 0 "$ROUNDS"); do
	if ((i % 2)); then
		run_cli
		run_ferry
	else
		run_ferry
		run_cli
	fi
	line="ferry frozen $(jget "$W/fd.json" frozen_ms) ms, dump $(jget "$W/fd.json" total_ms) ms,"
	line+=" restore $(jget "$W/fr.json" criu_ms) ms (stage $(jget "$W/fr.json" restore_ms) ms,"
	line+=" verify $(jget "$W/fr.json" verify_ms) ms) | criu frozen $cli_frozen ms,"
	line+=" dump $(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}') ms,"
	line+=" restore $(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.1f", b-a}') ms"
	if ((i == 0)); then
		echo "warm-up: $line"
		continue
	fi
	echo "round $i: $line"
	ff+=("$(jget "$W/fd.json" frozen_ms)")
	ft+=("$(jget "$W/fd.json" total_ms)")
	fr+=("$(jget "$W/fr.json" criu_ms)")
	frt+=("$(jget "$W/fr.json" restore_ms)")
	fv+=("$(jget "$W/fr.json" verify_ms)")
	cf+=("$cli_frozen")
	ct+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN{printf "%.1f", b-a}')")
	cr+=("$(awk -v a="$t2" -v b="$t3" 'BEGIN{printf "%.1f", b-a}')")
done

F_FROZEN=$(median "${ff[@]}")
F_TOTAL=$(median "${ft[@]}")
F_REST=$(median "${fr[@]}")
F_RTOT=$(median "${frt[@]}")
F_VER=$(median "${fv[@]}")
C_FROZEN=$(median "${cf[@]}")
C_TOTAL=$(median "${ct[@]}")
C_REST=$(median "${cr[@]}")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.3f", a / b; else print "nan" }'; }
echo
echo "tenant: container, wl_memory --mib $MIB; CRIU: $("$CRIU" --version | head -1); median of $ROUNDS"
echo "ferry: frozen $F_FROZEN ms, dump stage $F_TOTAL ms (incl. SHA-256 of every image);" \
	"restore $F_REST ms (CRIU request), stage $F_RTOT ms (incl. verify $F_VER ms)"
echo "criu:  frozen $C_FROZEN ms, dump $C_TOTAL ms; restore $C_REST ms"
echo "RESULT case=dump ferry_frozen_ms=$F_FROZEN criu_frozen_ms=$C_FROZEN" \
	"ferry_restore_ms=$F_REST criu_restore_ms=$C_REST ratio=$(ratio "$F_FROZEN" "$C_FROZEN")" \
	"restore_ratio=$(ratio "$F_REST" "$C_REST")"
echo "RESULT case=stages ferry_dump_total_ms=$F_TOTAL criu_dump_ms=$C_TOTAL" \
	"ferry_restore_total_ms=$F_RTOT ferry_verify_ms=$F_VER" \
	"dump_total_ratio=$(ratio "$F_TOTAL" "$C_TOTAL") restore_total_ratio=$(ratio "$F_RTOT" "$C_REST")"
