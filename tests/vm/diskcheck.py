#!/usr/bin/env python3
"""The disk of the tests' guest built with DISK_SECTORS (guest.S): sector
1 + (P / 16) mod N holds P in every 32-bit word for each P = 16, 32, ...
it wrote. usage: diskcheck.py IMAGE N [PASSES]
Checks that no sector is torn, each holds a value of its own slot, and the
written values are every multiple of 16 up to the highest one within the
last N (none lost); with PASSES (the guest stopped, its pass counter) the
highest is PASSES rounded down to 16 (or one write less, if it stopped
in the middle of one). Prints "writes=W last=P"."""
import struct
import sys

img, n = sys.argv[1], int(sys.argv[2])
passes = int(sys.argv[3]) if len(sys.argv) > 3 else None
with open(img, "rb") as f:
    f.seek(512)
    data = f.read(512 * n)
vals = []
for s in range(n):
    sec = data[512 * s:512 * (s + 1)]
    w = struct.unpack("<128I", sec)
    if len(set(w)) != 1:
        sys.exit("sector %d is torn: %s" % (s + 1, sorted(set(w))[:4]))
    v = w[0]
    if v and (v % 16 or (v // 16) % n != s):
        sys.exit("sector %d holds %d, not a write of its own slot" % (s + 1, v))
    vals.append(v)
last = max(vals)
if last == 0:
    sys.exit("the guest wrote nothing to its disk")
for s in range(n):
    # the newest write of slot s no later than last
    k = last // 16 - ((last // 16 - s) % n)
    want = 16 * k if k >= 1 else 0
    if vals[s] != want:
        sys.exit("sector %d holds %d, want %d (last write %d): a write was lost" %
                 (s + 1, vals[s], want, last))
if passes is not None and last not in (passes // 16 * 16, passes // 16 * 16 - 16):
    sys.exit("the disk's last write is %d, the guest's counter %d" % (last, passes))
print("writes=%d last=%d" % (last // 16, last))
