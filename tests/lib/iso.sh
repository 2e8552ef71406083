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
