#!/bin/bash
# The initramfs of the VM tests' Linux guest: Debian's stock kernel as
# unpacked by tests/kernel/guest.sh (KDIR: its busybox-static, kmod and
# modules), the virtio network driver and its dependencies, a static
# TCP server, and an init (below) that sets the address ferry put on the
# command line (ip=ADDR::::NAME:eth0:off), starts the server and reports
# on the serial port.
#   linux-initrd.sh KDIR SERVER_BINARY OUT.gz
set -euo pipefail
kdir=$1 srv=$2 out=$3
kver=$(basename "$(ls -d "$kdir"/lib/modules/*/ | head -1)")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ir="$tmp/ir"
mkdir -p "$ir"/{bin,dev,proc,sys,mods,tmp}
cp "$kdir/bin/busybox" "$ir/bin/busybox"
ln -s busybox "$ir/bin/sh"
cp "$srv" "$ir/bin/srv"
: >"$ir/mods/order"
for m in virtio_pci virtio_net; do
	(exec -a modprobe "$kdir/bin/kmod" -d "$kdir" -S "$kver" --show-depends "$m") |
		awk '$1 == "insmod" { print $2 }'
done | awk '!seen[$0]++' | while read -r m; do
	cp "$m" "$ir/mods/"
	basename "$m" >>"$ir/mods/order"
done
cat >"$ir/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in $(cat /mods/order); do insmod /mods/$m || echo "ferry-guest: insmod $m failed"; done
addr=
for a in $(cat /proc/cmdline); do
	case "$a" in ip=*) addr=${a#ip=}; addr=${addr%%:*} ;; esac
done
ip link set lo up
ip link set eth0 up
ip addr add "$addr/32" dev eth0
ip route add default dev eth0
WL_DIR=/tmp /bin/srv --port 7000 >/tmp/srv.out 2>&1 &
while [ ! -e /tmp/wl.ready ]; do sleep 0.1; done
echo "ferry-guest: server up on $addr:7000" >/dev/ttyS0
while :; do sleep 5; done
INIT
chmod 755 "$ir/init"
(cd "$ir" && find . | "$kdir/bin/busybox" cpio -o -H newc 2>/dev/null | gzip -1) >"$out"
