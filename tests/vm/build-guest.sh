#!/bin/bash
# Build the VM tests' guest (guest.S): a 512-byte boot disk for
# `ferry run --vm --disk`. usage: build-guest.sh OUT MEM_MIB [DISK_SECTORS]
# With DISK_SECTORS the guest also writes its disk (guest.S) and the image
# is 1 MiB + DISK_SECTORS sectors, rounded up to a MiB. GUEST_RANDOM=1: the
# guest fills what it dirties with random-looking bytes (RANDOM_FILL).
set -euo pipefail
out=$1 mem=${2:-32} sectors=${3:-}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -DMEM_END="($mem << 20)" ${sectors:+-DDISK_SECTORS=$sectors} \
	${GUEST_RANDOM:+-DRANDOM_FILL} -o "$tmp/guest.o" "$here/guest.S"
ld -m elf_i386 -Ttext 0x7c00 -e _start -o "$tmp/guest.elf" "$tmp/guest.o"
objcopy -O binary -j .text "$tmp/guest.elf" "$tmp/guest.bin"
size=$(stat -c %s "$tmp/guest.bin")
[ "$size" = 512 ] || { echo "guest is $size bytes, not 512" >&2; exit 1; }
cp "$tmp/guest.bin" "$out"
if [ -n "$sectors" ]; then
	truncate -s $(((((sectors + 1) * 512 + (1 << 20) - 1) >> 20) << 20)) "$out"
fi
