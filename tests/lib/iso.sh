# Helpers for the isolation tests (source after common.sh).
#
# iso_rootfs DIR: t_rootfs, plus every workload under a second name,
# /bin/iso-NAME (e.g. /bin/iso-wl_counter): run through it, a workload's
# process name does not start with "wl_", so no test runner of another
# worktree that kills every "wl_*" process of the machine as its leftover
# ends ours in the middle of a test.
iso_rootfs() {
	local r=$1 w
	t_rootfs "$r"
	for w in "$r"/bin/wl_*; do
		[ -f "$w" ] && ln -sf "$(basename "$w")" "$r/bin/iso-$(basename "$w")"
	done
}

# iso_cr_start / iso_mh_start: cr_start / mh_start on an iso_rootfs.
iso_cr_start() {
	iso_rootfs "$2"
	cr_start "$@"
}
iso_mh_start() {
	iso_rootfs "$3"
	mh_start "$@"
}

# iso_base NAME: the first user ID range ferry tries for a tenant NAME
# (userns_first_slot: FNV-1a of the name, 1024 slots of 65536 from 100000).
iso_base() {
	python3 -c '
import sys
h = 2166136261
for c in sys.argv[1].encode():
    h = ((h ^ c) * 16777619) & 0xffffffff
print(100000 + (h % 1024) * 65536)' "$1"
}

# iso_name_like NAME PREFIX: the first PREFIX-N whose first range is NAME's
# (to make two tenants want the same range).
iso_name_like() {
	python3 -c '
import sys
def slot(n):
    h = 2166136261
    for c in n.encode():
        h = ((h ^ c) * 16777619) & 0xffffffff
    return h % 1024
want = slot(sys.argv[1])
i = 0
while slot("%s-%d" % (sys.argv[2], i)) != want:
    i += 1
print("%s-%d" % (sys.argv[2], i))' "$1" "$2"
}
