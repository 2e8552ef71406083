#!/bin/bash
# Stage 2 of the test guest (tests/kernel/guest.sh), PID 1 in the host's root
# under a tmpfs overlay: the mounts, modules and settings the tests need, then
# OUT/job.sh; its output goes to OUT/output.log, its exit code to OUT/rc.
OUT=$1
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LANG=C.UTF-8
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
exec </dev/null >>"$OUT/output.log" 2>&1
eval "$(grep '^export ' "$OUT/job.sh")"
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
# a fresh /tmp, unless the checkout or the output directory lives under the
# host's /tmp (a CI clone may): a tmpfs there would hide them
fresh_tmp=1
for d in "$FERRY_GUEST_CWD" "$OUT"; do
	case "$d/" in /tmp/*) fresh_tmp=0 ;; esac
done
[ "$fresh_tmp" = 0 ] || mount -t tmpfs -o mode=1777 tmp /tmp
mount -t tmpfs -o mode=755 run /run
mkdir -p /run/netns
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null ||
	{ mount -t tmpfs cgroup /sys/fs/cgroup && mkdir -p /sys/fs/cgroup/unified &&
		mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified; }
# the tests' scratch space on tmpfs: CRIU and overlayfs disagree on dev:ino
# in /proc/PID/maps (HOST-NOTES, "A second kernel")
mkdir -p "$FERRY_GUEST_CWD/build/tests/tmp"
mount -t tmpfs -o mode=755 tests-tmp "$FERRY_GUEST_CWD/build/tests/tmp" 2>/dev/null || true
# the kernel's own modules, and its own modprobe (Debian's kmod)
mkdir -p "/lib/modules/$FERRY_GUEST_KERNEL"
mount --bind "$FERRY_GUEST_MODDIR" "/lib/modules/$FERRY_GUEST_KERNEL"
echo "$FERRY_GUEST_MODPROBE" >/proc/sys/kernel/modprobe
for m in tun veth bridge nf_tables nft_ct nft_chain_nat nft_compat nf_conntrack \
	inet_diag tcp_diag udp_diag raw_diag unix_diag netlink_diag packet_diag af_packet_diag; do
	"$FERRY_GUEST_MODPROBE" "$m" 2>/dev/null || true
done
# post-copy needs the pipe limits lifted, as on the hosts (HOST-NOTES, CRIU)
sysctl -qw fs.pipe-user-pages-soft=0 fs.pipe-max-size=16777216 2>/dev/null || true
# Debian's kernel backs anonymous memory with huge pages ("always"): soft-dirty
# then marks a whole 2 MiB page dirty for one written byte, and a tenant
# writing here and there re-sends all its memory every round (measured:
# docs/kernels.md). Like a host tuned for pre-copy, the guest uses madvise.
echo madvise >/sys/kernel/mm/transparent_hugepage/enabled
hostname ferry-guest
ip link set lo up
echo "guest: $(uname -r) up after $(cut -d' ' -f1 /proc/uptime)s"
rc=0
bash "$OUT/job.sh" || rc=$?
echo "$rc" >"$OUT/rc.tmp" && mv "$OUT/rc.tmp" "$OUT/rc"
sync
echo o >/proc/sysrq-trigger 2>/dev/null
poweroff -f
