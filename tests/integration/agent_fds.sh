#!/bin/bash
# A serving agent keeps no file descriptor of a migration it received or
# sent: a small self-checking tenant (wl_counter, with an address of its
# own) moves a <-> b six times in stop-copy, and twice more in post-copy
# where the host can; the agents' open fds (/proc/PID/fd) after the 2nd
# move and after the last (the tenant on a both times) are the same in
# number. The tenant checks itself at the end.
. "$TESTS_ROOT/lib/common.sh"
t_init agent_fds
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_need_wl wl_counter
. "$TESTS_ROOT/lib/mhosts.sh"

mh_setup afd
mh_serve a
mh_serve b
NAME=afd-ctr
R="$T/rootfs"
mh_start a "$NAME" "$R" --net 10.204.0.58/24 -- /bin/wl_counter

# fds HOST: the number of HOST's agent's open fds once it settled (the
# connection that ended may take a moment to close: the same count three
# times 0.2 s apart, up to ~10 s); their targets go to $T/fds-HOST
fds() {
	local pid n prev=-1 same=0 i
	eval "pid=\$MH_PID_$1"
	for ((i = 0; i < 50; i++)); do
		n=$(ls "/proc/$pid/fd" | wc -l)
		if ((n == prev)); then
			((++same >= 2)) && break
		else
			same=0
		fi
		prev=$n
		sleep 0.2
	done
	ls -l "/proc/$pid/fd" | awk 'NR > 1 {print $NF}' | sort >"$T/fds-$1"
	echo "$n"
}

# move I FROM TO MODE [ARGS...]
move() {
	local i=$1 from=$2 to=$3 mode=$4 old
	shift 4
	old=$(mh_pid "$from" "$NAME")
	mh_migrate "$from" "$to" "$NAME" --mode "$mode" "$@" >"$T/m.out" 2>&1 || {
		cat "$T/m.out"
		tail "$T/serve-$to.log"
		t_fail "migration $i ($mode, $from -> $to) failed"
	}
	mh_assert_one_host "$NAME" "$from" "$to" "$old"
}

from=a to=b
for i in 1 2 3 4 5 6; do
	move "$i" "$from" "$to" stop-copy
	if ((i == 2)); then
		a2=$(fds a) b2=$(fds b)
		cp "$T/fds-a" "$T/fds2-a"
		cp "$T/fds-b" "$T/fds2-b"
	fi
	t=$from from=$to to=$t
done
last=6
if mh_postcopy_ok; then
	mh_keep_pipe_sysctls
	move 7 a b post-copy --tune-host
	move 8 b a post-copy --tune-host
	last=8
else
	t_log "no post-copy on this host: stop-copy moves only"
fi
aN=$(fds a) bN=$(fds b)
t_log "agent fds after move 2: a $a2, b $b2; after move $last: a $aN, b $bN"
for h in a b; do
	diff "$T/fds2-$h" "$T/fds-$h" | sed "s/^/   $h: /" || true
done
((a2 == aN && b2 == bN)) || t_fail "the agents' fds grew: a $a2 -> $aN, b $b2 -> $bN"
mh_verify a "$NAME" "$R"
echo PASS
