#!/bin/bash
# The file system's part of a migration, against the baseline a user would
# script (P.Haul's way): `rsync -a` of the tenant's root while it runs, then
# `rsync -a --delete` while it is frozen, both over the network to an rsync
# daemon on the other simulated host (tests/lib/mhosts.sh).
# A tenant on an image of BENCH_IMG_MIB (1024) MiB with BENCH_OWN_MIB (200)
# MiB of its own files (copies of this machine's /usr files: real data, LZ4
# compresses it as it would a distribution's), rewriting BENCH_CHANGE_MIB (2)
# MiB of files in a loop while it moves:
#   first: a -> b, b lacks the image;  back: b -> a, a has the image.
# Baselines in the same run, for the same trees: rsync to an empty directory
# (first) and to one that holds the image's files already (back).
# Ends with one line per case:
#   RESULT case=first downtime_ms=... total_ms=... fs_copy_ms=... (while
#     running) fs_delta_ms=... (source: scan, pack, send while frozen)
#     fs_apply_ms=... (destination: what its restore waited for the delta's
#     deletions + extraction, which run while the images arrive; its agent's
#     log) fs_downtime_ms=... (the two) fs_wire_bytes=...
#     rsync_final_ms=... rsync_bytes=... delta_vs_rsync=... bytes_vs_rsync=...
#     img_mib=... own_mib=...
# Goals (issue 11): fs_downtime_ms <= 50; delta_vs_rsync <= 0.5 (the frozen
# part, fs_downtime_ms, vs the final rsync); bytes_vs_rsync <= 0.5.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
export FERRY="$ROOT/build/ferry" WORKLOADS="$ROOT/build/tests/workloads"
export TESTS_ROOT="$ROOT/tests" TESTS_TMP=${BENCH_DIR:-/var/tmp}/ferry-bench-rootfs
IMG_MIB=${BENCH_IMG_MIB:-1024}
OWN_MIB=${BENCH_OWN_MIB:-200}
CHG_MIB=${BENCH_CHANGE_MIB:-2}
. "$TESTS_ROOT/lib/common.sh"
t_init bench
. "$TESTS_ROOT/lib/cr.sh"
cr_require
command -v rsync >/dev/null || t_skip "rsync not installed (scripts/deps.sh)"
. "$TESTS_ROOT/lib/mhosts.sh"

now_ms() { date +%s%N | awk '{printf "%.1f", $1 / 1e6}'; }

# fill DIR MIB SEED: copies of /usr files until DIR holds MIB MiB
fill() {
	python3 - "$1" "$2" "$3" <<'PY'
import os, random, shutil, sys
dst, want, seed = sys.argv[1], int(sys.argv[2]) << 20, int(sys.argv[3])
files = []
for top in ("/usr/lib", "/usr/share", "/usr/bin"):
    for d, _, fs in os.walk(top):
        for f in fs:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                files.append(p)
random.Random(seed).shuffle(files)
got = 0
for i, p in enumerate(files):
    if got >= want:
        break
    try:
        n = os.path.getsize(p)
        if n == 0 or n > (8 << 20):
            continue
        sub = os.path.join(dst, "d%03d" % (i % 97))
        os.makedirs(sub, exist_ok=True)
        shutil.copyfile(p, os.path.join(sub, "%06d-%s" % (i, os.path.basename(p))))
        got += n
    except OSError:
        pass
PY
}

mh_setup bench
# info-level logs (FERRY_DEBUG: a handful of lines) say where the frozen
# delta's time goes on each end
mh_serve a FERRY_DEBUG=1
mh_serve b FERRY_DEBUG=1
NAME=bench-fs
IMG=$T/img
t_rootfs "$IMG"
ln -sf busybox "$IMG/bin/dd"
ln -sf busybox "$IMG/bin/mkdir"
fill "$IMG/usr" "$IMG_MIB" 1
ID=$(mh_ferry a image import "$IMG" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
CHG_KIB=$((CHG_MIB * 1024 / 8))
mh_ferry a run "$NAME" --image "$ID" -- sh -c \
	"mkdir -p /tmp/chg; n=0; while :; do dd if=/dev/urandom of=/tmp/chg/f\$((n % 8)) bs=1024 count=$CHG_KIB 2>/dev/null; n=\$((n + 1)); sleep 0.1; done" >/dev/null
RA=$T/state-a/tenants/$NAME/root
# own files: written through the tenant's overlay on a (its mount namespace)
mh_exec a bash -c "$(declare -f fill); fill '$RA/data' $OWN_MIB 2"
sleep 1

# ---- ferry ----
fmove() { # FROM TO CASE
	local from=$1 to=$2 c=$3
	FERRY_DEBUG=1 mh_migrate "$from" "$to" "$NAME" --mode stop-copy --json >"$T/$c.json" \
		2>"$T/$c.err" || { cat "$T/$c.json" "$T/$c.err"; t_fail "ferry migrate $from -> $to"; }
	grep -h "file system sent\|file-system delta" "$T/$c.err" "$T/serve-$to.log" | sed "s/^/$c: /"
	# the destination's part of the delta in the downtime: it is applied
	# while the images arrive; what the restore still waits for it
	local apply
	apply=$(sed -n 's/.*file-system delta applied in .* ms (waited \([0-9.]*\) ms for it).*/\1/p' \
		"$T/serve-$to.log" | tail -n 1)
	python3 - "$T/$c.json" "${apply:-0}" >"$T/$c.vals" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f = d["rootfs"]
print(d["downtime_ms"], d["total_ms"], f["delta_ms"], f["wire_bytes"] + f["delta_wire_bytes"],
      1 if f["image_sent"] else 0, sys.argv[2], f["copy_ms"])
PY
	sleep 1
}
fmove a b first
fmove b a back

# ---- baseline: an rsync daemon on b, the rsync client on a ----
mkdir -p "$T/rs-first" "$T/rs-back"
cp -a "$T/state-a/images/$ID/rootfs/." "$T/rs-back/" # "back": the image is there
printf '%s\n' "pid file = $T/rsyncd.pid" "use chroot = no" \
	"[first]" "path = $T/rs-first" "read only = false" "uid = root" "gid = root" \
	"[back]" "path = $T/rs-back" "read only = false" "uid = root" "gid = root" >"$T/rsyncd.conf"
mh_exec b rsync --daemon --no-detach --config="$T/rsyncd.conf" --port 8730 &
t_defer "kill \$(cat '$T/rsyncd.pid' 2>/dev/null) 2>/dev/null"
sleep 1
# the tenant's processes on a, to freeze them as the baseline's user would
tenant_pids() {
	mh_exec a sh -c "want=\$(stat -L -c %d:%i '$RA'); for p in /proc/[0-9]*; do [ \"\$(stat -L -c %d:%i \$p/root 2>/dev/null)\" = \"\$want\" ] && echo \${p#/proc/}; done; true"
}
sent() { sed -n 's/^Total bytes sent: \([0-9,]*\).*/\1/p' "$1" | tr -d ,; }
baseline() { # MODULE -> RS_FINAL_MS RS_BYTES
	local m=$1 t0 b1 b2 pids
	mh_exec a rsync -a --stats "$RA/" "rsync://$MH_NET.2:8730/$m/" >"$T/rs1-$m" ||
		t_fail "rsync $m"
	pids=$(tenant_pids | tr "\n" " ")
	[ -n "$pids" ] || t_fail "no tenant processes on a"
	# the tenant's init first: its children (short-lived dd, sleep) may be gone
	mh_exec a sh -c "for p in $pids; do kill -STOP \$p 2>/dev/null; done; true"
	t0=$(now_ms)
	mh_exec a rsync -a --delete --stats "$RA/" "rsync://$MH_NET.2:8730/$m/" >"$T/rs2-$m" ||
		t_fail "rsync --delete $m"
	RS_FINAL_MS=$(awk -v a="$t0" -v b="$(now_ms)" 'BEGIN {printf "%.1f", b - a}')
	mh_exec a sh -c "for p in $pids; do kill -CONT \$p 2>/dev/null; done; true"
	b1=$(sent "$T/rs1-$m")
	b2=$(sent "$T/rs2-$m")
	RS_BYTES=$((b1 + b2))
	sleep 1
}
for c in first back; do
	baseline "$c"
	read -r down total delta bytes isent apply copy <"$T/$c.vals"
	awk -v c="$c" -v down="$down" -v total="$total" -v delta="$delta" -v bytes="$bytes" \
		-v isent="$isent" -v rf="$RS_FINAL_MS" -v rb="$RS_BYTES" -v im="$IMG_MIB" -v om="$OWN_MIB" \
		-v apply="$apply" -v copy="$copy" \
		'BEGIN {printf "RESULT case=%s image_sent=%d downtime_ms=%.1f total_ms=%.1f fs_copy_ms=%.1f fs_delta_ms=%.1f fs_apply_ms=%.1f fs_downtime_ms=%.1f fs_wire_bytes=%d rsync_final_ms=%.1f rsync_bytes=%d delta_vs_rsync=%.3f bytes_vs_rsync=%.3f img_mib=%d own_mib=%d\n", c, isent, down, total, copy, delta, apply, delta + apply, bytes, rf, rb, (delta + apply) / rf, bytes / rb, im, om}'
done
