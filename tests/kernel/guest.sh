#!/bin/bash
# A second kernel for the tests: Debian 12's stock kernel booted under QEMU
# with this machine's own root file system shared read-only (9p) under a tmpfs
# overlay, so the guest runs the same build, the same CRIU and the same test
# scripts (the approach of virtme-ng, which Debian 12 does not package).
#   tests/kernel/guest.sh [options] -- COMMAND [ARG...]
#     --out DIR       the one host directory the guest may write (default
#                     build/kernel/run); COMMAND's output goes to DIR/output.log
#                     (also shown here), the guest's console to DIR/console.log
#     --cwd DIR       where COMMAND starts in the guest (default: this repo)
#     --mem MIB       guest memory (default 4096)
#     --cpus N        vCPUs (default 2)
#     --timeout S     kill the guest after S seconds (default 3600)
#     --prepare       only build the kernel and initramfs (no boot)
# Exit code: COMMAND's exit code in the guest; 125 if the guest did not say
# (boot failure, timeout: see DIR/console.log).
#
# Everything is made from Debian packages fetched with apt-get download into
# build/kernel/ (kept as a cache): the kernel is the one Debian's
# linux-image-amd64 metapackage depends on (bookworm's current 6.1 ABI), or
# FERRY_KERNEL_PKG if set; busybox-static for the initramfs; kmod for depmod.
# Nothing on the host is written outside build/kernel/ and --out.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
KB="$ROOT/build/kernel"
OUT="$KB/run"
CWD="$ROOT"
MEM=4096
CPUS=2
TIMEOUT=3600
prepare_only=0
while (($#)); do
	case "$1" in
	--out) OUT=$2; shift 2 ;;
	--cwd) CWD=$2; shift 2 ;;
	--mem) MEM=$2; shift 2 ;;
	--cpus) CPUS=$2; shift 2 ;;
	--timeout) TIMEOUT=$2; shift 2 ;;
	--prepare) prepare_only=1; shift ;;
	--) shift; break ;;
	*) echo "guest.sh: unknown option $1" >&2; exit 2 ;;
	esac
done
((prepare_only || $# > 0)) || { echo "usage: guest.sh [options] -- COMMAND [ARG...]" >&2; exit 2; }

log() { echo "guest: $*" >&2; }

# kernel_pkg: the package name of the kernel to boot
kernel_pkg() {
	if [ -n "${FERRY_KERNEL_PKG:-}" ]; then
		echo "$FERRY_KERNEL_PKG"
		return
	fi
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '$1 == "Depends:" && $2 ~ /^linux-image-[0-9.]+-[0-9]+-amd64$/ { print $2; exit }'
}

# fetch PKG...: apt-get download into build/kernel/debs unless already there
fetch() {
	mkdir -p "$KB/debs"
	local p need=()
	for p in "$@"; do
		compgen -G "$KB/debs/${p}_*.deb" >/dev/null || need+=("$p")
	done
	((${#need[@]} == 0)) && return 0
	log "downloading ${need[*]}"
	# apt's sandbox user cannot write here; the download is checked by apt anyway
	(cd "$KB/debs" && apt-get download -o APT::Sandbox::User=root "${need[@]}" >/dev/null)
}

# prepare: kernel, modules with their modules.dep, busybox, the initramfs
prepare() {
	local pkg
	pkg=$(kernel_pkg)
	[ -n "$pkg" ] || { log "no Debian kernel package found (apt-cache depends linux-image-amd64)"; exit 1; }
	KVER=${pkg#linux-image-}
	local x="$KB/$KVER"
	if [ ! -f "$x/.ready" ]; then
		fetch "$pkg" busybox-static kmod
		rm -rf "$x" && mkdir -p "$x"
		local d
		for d in "$KB/debs/${pkg}"_*.deb "$KB"/debs/busybox-static_*.deb "$KB"/debs/kmod_*.deb; do
			dpkg -x "$d" "$x"
		done
		# the .deb has no modules.dep: Debian's kmod makes it
		(exec -a depmod "$x/bin/kmod" -b "$x" "$KVER")
		# the kernel asks for modules through this name (argv[0] picks kmod's tool)
		ln -sf kmod "$x/bin/modprobe"
		dpkg-deb -f "$KB/debs/${pkg}"_*.deb Version >"$x/VERSION"
		touch "$x/.ready"
	fi
	if [ ! -f "$x/initrd.gz" ] || [ "$ROOT/tests/kernel/init" -nt "$x/initrd.gz" ]; then
		make_initrd "$x"
	fi
	KERNEL="$x/boot/vmlinuz-$KVER"
	INITRD="$x/initrd.gz"
	MODDIR="$x/lib/modules/$KVER"
	MODPROBE="$x/bin/modprobe"
}

# make_initrd X: busybox, the modules that mount the root (in load order), init
make_initrd() {
	local x=$1 ir="$1/initrd" m
	rm -rf "$ir" && mkdir -p "$ir"/{bin,dev,proc,sys,mods,newroot,lower,upper}
	cp "$x/bin/busybox" "$ir/bin/busybox"
	ln -s busybox "$ir/bin/sh"
	: >"$ir/mods/order"
	for m in virtio_pci 9pnet_virtio 9p overlay; do
		(exec -a modprobe "$x/bin/kmod" -d "$x" -S "$KVER" --show-depends "$m") |
			awk '$1 == "insmod" { print $2 }'
	done | awk '!seen[$0]++' | while read -r m; do
		cp "$m" "$ir/mods/"
		echo "$(basename "$m")" >>"$ir/mods/order"
	done
	cp "$ROOT/tests/kernel/init" "$ir/init"
	chmod 755 "$ir/init"
	(cd "$ir" && find . | "$x/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$x/initrd.gz.tmp"
	mv "$x/initrd.gz.tmp" "$x/initrd.gz"
}

prepare
if ((prepare_only)); then
	echo "$KERNEL"
	exit 0
fi

mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/rc" "$OUT/output.log" "$OUT/console.log"
# the job: environment and command, run by the guest's stage 2 in CWD
{
	printf 'export FERRY_GUEST_KERNEL=%q FERRY_GUEST_CWD=%q\n' "$KVER" "$CWD"
	printf 'export FERRY_GUEST_MODPROBE=%q FERRY_GUEST_MODDIR=%q\n' "$MODPROBE" "$MODDIR"
	echo 'cd "$FERRY_GUEST_CWD" || exit 125'
	printf '%q ' "$@"
	echo
} >"$OUT/job.sh"

# ferry.* on the command line: short paths only (the line stops at 2048 bytes)
APPEND="console=ttyS0 panic=-1 quiet loglevel=4 rdinit=/init ferry.out=$OUT ferry.stage2=$ROOT/tests/kernel/stage2.sh"
log "booting $KVER ($(cat "$KB/$KVER/VERSION")) under QEMU/TCG, $CPUS vCPUs, $MEM MiB; console in $OUT/console.log"
touch "$OUT/output.log"
tail -n +1 -F "$OUT/output.log" 2>/dev/null &
tailpid=$!
rc=0
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 \
	-accel tcg,thread=multi -cpu max -smp "$CPUS" -m "$MEM" \
	-nodefaults -no-user-config -display none -no-reboot \
	-serial "file:$OUT/console.log" -monitor none -nic none \
	-kernel "$KERNEL" -initrd "$INITRD" -append "$APPEND" \
	-fsdev local,id=root,path=/,security_model=none,readonly=on,multidevs=remap \
	-device virtio-9p-pci,fsdev=root,mount_tag=root \
	-fsdev local,id=out,path="$OUT",security_model=passthrough \
	-device virtio-9p-pci,fsdev=out,mount_tag=out \
	</dev/null || rc=$?
sleep 0.3
kill "$tailpid" 2>/dev/null || true
wait "$tailpid" 2>/dev/null || true
if ((rc == 124 || rc == 137)); then
	log "timed out after ${TIMEOUT}s; console: $OUT/console.log"
	exit 125
fi
if [ ! -s "$OUT/rc" ]; then
	log "the guest gave no exit code (QEMU exit $rc); last console lines:"
	tail -n 20 "$OUT/console.log" >&2 || true
	exit 125
fi
exit "$(cat "$OUT/rc")"
