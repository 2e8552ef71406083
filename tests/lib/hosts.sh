# Simulated hosts for integration tests (source after common.sh and t_init).
# Two hosts "a" and "b", each its own network namespace, joined by a veth pair:
#   hosts_setup ID X         netns ferry-ID-TAG-a / ferry-ID-TAG-b, veth
#                            fy<X>TAGa / fy<X>TAGb, addresses 10.203.X.1/24 (a)
#                            and 10.203.X.2/24 (b); X (1..254) must be unique
#                            per test. TAG (4 hex digits of the test's tmp dir)
#                            keeps worktrees that run the same test at the same
#                            time apart. Cleanup is registered with t_defer
#                            (processes, netns, veths).
#   h_addr HOST              the host's address
#   h_ns HOST                the host's netns name
#   h_exec [--pidns] HOST CMD...  run CMD inside HOST; --pidns adds its own PID
#                            and mount namespaces (unshare --pid --mount --fork
#                            --mount-proc), for restoring process trees at their
#                            old PIDs
#   h_spawn [--pidns] HOST LOG CMD...  same, in the background, output to LOG;
#                            sets H_PID; killed at cleanup
#   h_link_down / h_link_up  cut / restore the link (both veth ends)
#   h_rate HOST RATE         shape HOST's egress (tc tbf), e.g. 40mbit
# Transfer helpers (ferry's transport):
#   h_certs DIR NAME...      a CA in DIR and a certificate per NAME
#   h_serve HOST STATE CERTS NAME [ARGS...]  start `ferry serve` in HOST on port
#                            7000, state dir STATE; waits until it listens;
#                            sets H_PID and H_LOG
set -euo pipefail

hosts_setup() {
	local id=$1 x=$2
	H_ID="$id-$(echo "$T" | md5sum | cut -c1-4)"
	H_X=$x
	H_NET="10.203.$x"
	H_VA="fy${x}${H_ID: -4}a"
	H_VB="fy${x}${H_ID: -4}b"
	hosts_teardown # leftovers of an interrupted earlier run
	t_defer hosts_teardown
	ip netns add "ferry-$H_ID-a"
	ip netns add "ferry-$H_ID-b"
	ip link add "$H_VA" type veth peer name "$H_VB"
	ip link set "$H_VA" netns "ferry-$H_ID-a"
	ip link set "$H_VB" netns "ferry-$H_ID-b"
	ip -n "ferry-$H_ID-a" addr add "$H_NET.1/24" dev "$H_VA"
	ip -n "ferry-$H_ID-b" addr add "$H_NET.2/24" dev "$H_VB"
	for h in a b; do
		ip -n "ferry-$H_ID-$h" link set lo up
	done
	ip -n "ferry-$H_ID-a" link set "$H_VA" up
	ip -n "ferry-$H_ID-b" link set "$H_VB" up
}

hosts_teardown() {
	local h ns
	for h in a b; do
		ns="ferry-$H_ID-$h"
		ip netns list 2>/dev/null | grep -qw "$ns" || continue
		local pids
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
	ip link del "$H_VA" 2>/dev/null || true
}

h_ns() { echo "ferry-$H_ID-$1"; }

h_addr() {
	case $1 in
	a) echo "$H_NET.1" ;;
	b) echo "$H_NET.2" ;;
	*) t_fail "unknown host $1" ;;
	esac
}

# _h_prefix PIDNS HOST: the command prefix that enters HOST (into H_CMD).
# `ip netns exec` mounts a sysfs of the network namespace over /sys (in a
# mount namespace of its own), which hides the cgroup hierarchies: mount
# them again there (the same ones), as mhosts.sh does, so that a tenant run
# in a simulated host gets its cgroup (the default isolation's limits).
_h_cgroups() {
	awk '{ split($0, a, " - "); split(a[2], b, " ");
	       if ((b[1] == "cgroup" && b[3] !~ /name=/) || b[1] == "cgroup2") print $5, b[1], b[3] }' \
		/proc/self/mountinfo
}

_h_prefix() {
	[ -n "${_H_CG+x}" ] || _H_CG=$(_h_cgroups)
	H_CMD=(ip netns exec "ferry-$H_ID-$2" sh -c '
		mount -t tmpfs -o mode=755 cgroups /sys/fs/cgroup 2>/dev/null &&
		echo "$0" | while read -r mp ty o; do
			mkdir -p "$mp" && mount -t "$ty" -o "$o" "$ty" "$mp"
		done
		exec "$@"' "$_H_CG")
	if (($1)); then
		H_CMD+=(unshare --pid --mount --fork --mount-proc --kill-child)
	fi
}

h_exec() {
	local pidns=0
	[ "$1" = --pidns ] && { pidns=1; shift; }
	_h_prefix "$pidns" "$1"
	shift
	"${H_CMD[@]}" "$@"
}

h_spawn() {
	local pidns=0
	[ "$1" = --pidns ] && { pidns=1; shift; }
	local h=$1 log=$2
	shift 2
	_h_prefix "$pidns" "$h"
	"${H_CMD[@]}" "$@" >"$log" 2>&1 &
	H_PID=$!
	t_defer "kill $H_PID; wait $H_PID"
}

h_link_down() {
	ip -n "ferry-$H_ID-a" link set "$H_VA" down
	ip -n "ferry-$H_ID-b" link set "$H_VB" down
}

h_link_up() {
	ip -n "ferry-$H_ID-a" link set "$H_VA" up
	ip -n "ferry-$H_ID-b" link set "$H_VB" up
}

h_rate() {
	local h=$1 rate=$2 dev
	[ "$h" = a ] && dev=$H_VA || dev=$H_VB
	ip netns exec "ferry-$H_ID-$h" tc qdisc replace dev "$dev" root tbf rate "$rate" \
		burst 64kb latency 200ms
}

h_certs() {
	local dir=$1
	shift
	"$FERRY" cert init "$dir" >/dev/null
	for n in "$@"; do
		"$FERRY" cert issue "$dir" "$n" >/dev/null
	done
}

h_serve() {
	local h=$1 state=$2 certs=$3 name=$4
	shift 4
	H_LOG="$T/serve-$h.log"
	h_spawn "$h" "$H_LOG" env FERRY_STATE_DIR="$state" "$FERRY" serve \
		--listen "$(h_addr "$h"):7000" --tls "$certs" --name "$name" "$@"
	local n=100
	while ((n-- > 0)); do
		grep -q "listening on" "$H_LOG" 2>/dev/null && return 0
		kill -0 "$H_PID" 2>/dev/null || break
		sleep 0.05
	done
	cat "$H_LOG" >&2
	t_fail "ferry serve did not start in host $h"
}
