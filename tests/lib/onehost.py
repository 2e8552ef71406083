#!/usr/bin/env python3
"""Where a tenant runs, seen from the whole machine (tests/lib/mhosts.sh).

  onehost.py trees ROOTFS
      "want DEV:INO", then one line per live process tree whose root
      directory is ROOTFS: "PID NSPID...".
  onehost.py check NAME DST DST_PS_JSON OTHER OTHER_PS_JSON
      "ok DEV:INO PID MPID" when DST's registry (`ferry ps --json`) lists NAME
      running with init PID (in DST's PID namespace), OTHER's has no record of
      it, and exactly one live process tree on the machine has the tenant's
      root, with init MPID here and PID in its host; else "why: REASON".

Roots are compared by device and inode: a restored tenant's /proc/PID/root
reads as "/", so its path says nothing. A tree's root is a process with that
root whose parent has another. Zombies have no root: they do not count.
"""
import json
import os
import sys


def root_of(pid):
    try:
        s = os.stat("/proc/%s/root" % pid)
    except OSError:  # gone, or a zombie
        return None
    return (s.st_dev, s.st_ino)


def status(pid, key):
    try:
        with open("/proc/%s/status" % pid) as f:
            for line in f:
                if line.startswith(key + ":"):
                    return line.split()[1:]
    except OSError:
        pass
    return []


def trees(rootfs):
    # ONEHOST_WANT=DEV:INO: the root as its host sees it (an image tenant's
    # overlay is mounted in that host's mount namespace only)
    w = os.environ.get("ONEHOST_WANT", "")
    if w:
        want = tuple(int(x) for x in w.split(":"))
    else:
        st = os.stat(rootfs)
        want = (st.st_dev, st.st_ino)
    found = []
    for p in os.listdir("/proc"):
        if not p.isdigit() or root_of(p) != want:
            continue
        pp = (status(p, "PPid") or ["0"])[0]
        if pp != "0" and root_of(pp) == want:
            continue
        found.append([p] + status(p, "NSpid"))
    return "%d:%d" % want, found


def record(path, name):
    with open(path) as f:
        for t in json.load(f)["tenants"]:
            if t["name"] == name:
                return t
    return None


def check(name, dst, dst_json, other, other_json):
    r = record(dst_json, name)
    if not r or r["state"] != "running":
        return "%s's registry says '%s', want running" % (dst, r["state"] if r else "no record")
    o = record(other_json, name)
    if o:
        return "%s's registry still has a record ('%s')" % (other, o["state"])
    if not r.get("pid"):
        return "%s's registry names no pid" % dst
    if not r.get("rootfs"):
        return "%s's registry names no root file system (not a container)" % dst
    try:
        want, found = trees(r["rootfs"])
    except OSError as e:
        return "cannot stat %s: %s" % (r["rootfs"], e)
    if len(found) != 1:
        return "%d live process trees have the root %s (%s): %s" % (
            len(found), want, r["rootfs"], found)
    t = found[0]
    if len(t) < 3 or t[2] != str(r["pid"]):
        return "the one tree's init is %s (NSpid), %s's registry says pid %s" % (t[1:], dst, r["pid"])
    return "ok %s %s %s" % (want, r["pid"], t[0])


def main(argv):
    if len(argv) == 3 and argv[1] == "trees":
        want, found = trees(argv[2])
        print("want", want)
        for t in found:
            print(*t)
        return 0
    if len(argv) == 7 and argv[1] == "check":
        res = check(*argv[2:])
        print(res if res.startswith("ok ") else "why: " + res)
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
