#!/bin/bash
# Build the VM tests' guest (guest.S): a 512-byte boot disk for
# `ferry run --vm --disk`. usage: build-guest.sh OUT MEM_MIB
set -euo pipefail
out=$1 mem=${2:-32}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
gcc -m32 -c -DMEM_END="($mem << 20)" -o "$tmp/guest.o" "$here/guest.S"
ld -m elf_i386 -Ttext 0x7c00 -e _start -o "$tmp/guest.elf" "$tmp/guest.o"
objcopy -O binary -j .text "$tmp/guest.elf" "$tmp/guest.bin"
size=$(stat -c %s "$tmp/guest.bin")
[ "$size" = 512 ] || { echo "guest is $size bytes, not 512" >&2; exit 1; }
cp "$tmp/guest.bin" "$out"
