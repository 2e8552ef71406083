# Migration topology for integration tests (source after common.sh, t_init
# and cr.sh). Three simulated hosts a, b (tenant hosts) and c (a client), each
# its own network namespace, on one L2 segment: a bridge in a fourth "lan"
# namespace. Addresses in 10.204.0.0/24 only:
#   a 10.204.0.1, b 10.204.0.2, c 10.204.0.3 (interface lan0 in each host)
# Tenant hosts forward and answer ARP for their tenants' addresses (proxy ARP
# on lan0; the /32 route to the tenant's veth is ferry's own plumbing).
# Each tenant host has its own PID and mount namespaces too (a small init,
# `unshare --pid --mount --fork --mount-proc`, that every command of the host
# enters with nsenter: pids in `ferry ps` are that host's), its own state
# directory ($T/state-HOST) and its own `ferry serve` (port 7000,
# certificates a, b, client names in $T/certs). Host c is a network namespace
# only.
#   mh_setup ID               namespaces (fym-ID-TOKEN-HOST, TOKEN unique
#                             per run: $MH_TOK), bridge, veths, certificates; cleanup
#                             (tenants of both hosts, agents, namespaces)
#                             registered with t_defer
#   mh_exec HOST CMD...       run CMD inside HOST (a, b: its net, PID and
#                             mount namespaces; c: its netns)
#   mh_child PID              the (first) child of PID, e.g. of mh_exec's nsenter
#   mh_ferry HOST ARGS...     ferry with HOST's state directory, inside HOST
#   mh_serve HOST [ENV=V...] [-- WRAPPER...]  start HOST's agent; MH_PID_<HOST>
#                             gets its pid, MH_LOG_<HOST> its log (stdout and
#                             stderr); with MH_SERVE_JSON=1 the agent runs with
#                             --json and its stdout goes to $T/serve-HOST.json
#                             The agent runs with --config $T/agent-HOST.conf:
#                             every peer may make every request, tenants' roots
#                             under $T (the test's files), kinds container and
#                             vm; MH_SERVE_CONF=FILE gives another file
#   mh_kill_serve HOST        stop HOST's agent
#   mh_migrate FROM TO NAME --mode MODE [ARGS...]  ferry migrate from host
#                             FROM to TO; this and mh_bg_migrate refuse to run
#                             without --mode: a test names the mode it means
#                             (auto picks pre-copy on a host with soft-dirty)
#   mh_pid HOST NAME / mh_state HOST NAME   from HOST's `ferry ps --json`
#   mh_assert_one_host NAME SRC DST [OLDPID]  proves that exactly one host,
#                             DST, runs the tenant after a migration from SRC
#                             (SRC = DST: it failed); see below
#   mh_tree_roots ROOTFS      the live process trees of the machine whose root
#                             is ROOTFS (tests/lib/onehost.py)
set -euo pipefail

MH_NET=10.204.0

mh_setup() {
	# unique per run: other worktrees may run the same test at the same time
	MH_TOK=$(printf %04x $(($$ % 65536)))
	MH_ID=$1-$MH_TOK
	mh_teardown
	t_defer mh_teardown
	ip netns add "fym-$MH_ID-lan"
	ip -n "fym-$MH_ID-lan" link add br0 type bridge
	ip -n "fym-$MH_ID-lan" link set br0 up
	local i=1 h
	for h in a b c; do
		ip netns add "fym-$MH_ID-$h"
		ip link add "fy${MH_TOK}$h" type veth peer name "fy${MH_TOK}${h}p"
		ip link set "fy${MH_TOK}$h" netns "fym-$MH_ID-$h"
		ip link set "fy${MH_TOK}${h}p" netns "fym-$MH_ID-lan"
		ip -n "fym-$MH_ID-$h" link set "fy${MH_TOK}$h" name lan0
		ip -n "fym-$MH_ID-lan" link set "fy${MH_TOK}${h}p" master br0 up
		ip -n "fym-$MH_ID-$h" addr add "$MH_NET.$i/24" dev lan0
		ip -n "fym-$MH_ID-$h" link set lo up
		ip -n "fym-$MH_ID-$h" link set lan0 up
		i=$((i + 1))
	done
	for h in a b; do
		ip netns exec "fym-$MH_ID-$h" sysctl -qw net.ipv4.ip_forward=1
		ip netns exec "fym-$MH_ID-$h" sysctl -qw net.ipv4.conf.lan0.proxy_arp=1
		_mh_init "$h"
	done
	"$FERRY" cert init "$T/certs" >/dev/null
	for h in a b client; do
		"$FERRY" cert issue "$T/certs" "$h" >/dev/null
	done
}

mh_child() {
	local n=500 c
	while ((n-- > 0)); do
		c=$(cat "/proc/$1/task/$1/children" 2>/dev/null || true)
		[ -n "$c" ] && {
			echo "${c%% *}"
			return 0
		}
		sleep 0.02
	done
	return 1
}

# The host's cgroup hierarchies, "MOUNTPOINT TYPE OPTIONS" (v1 ones with
# controllers, and cgroup2): `ip netns exec` mounts a sysfs of the network
# namespace over /sys, which hides them; each simulated host mounts them
# again (the same hierarchies) so that tenants get their cgroups there.
_mh_cgroups() {
	awk '{ split($0, a, " - "); split(a[2], b, " ");
	       if ((b[1] == "cgroup" && b[3] !~ /name=/) || b[1] == "cgroup2") print $5, b[1], b[3] }' \
		/proc/self/mountinfo
}

# _mh_init HOST: the host's init, pid 1 of its PID namespace (reaps orphans).
_mh_init() {
	local h=$1 u cg
	cg=$(_mh_cgroups) # not in the background command (mh_child would find it)
	ip netns exec "fym-$MH_ID-$h" unshare --pid --mount --fork --mount-proc \
		--propagation private sh -c '
		mount -t tmpfs -o mode=755 cgroups /sys/fs/cgroup 2>/dev/null &&
		echo "$0" | while read -r mp ty o; do
			mkdir -p "$mp" && mount -t "$ty" -o "$o" "$ty" "$mp"
		done
		trap "" TERM INT HUP; while :; do sleep 3600 & wait; done' "$cg" \
		</dev/null >/dev/null 2>&1 &
	u=$!
	eval "MH_INIT_$h=$(mh_child "$u")"
}

mh_teardown() {
	[ -n "${MH_ID:-}" ] || return 0
	local h
	for h in a b; do
		[ -d "$T/state-$h" ] || continue
		ip netns list 2>/dev/null | grep -qw "fym-$MH_ID-$h" || continue
		for n in $(mh_ferry "$h" ps --json 2>/dev/null |
			python3 -c 'import json,sys; [print(t["name"]) for t in json.load(sys.stdin)["tenants"]]' \
				2>/dev/null); do
			mh_ferry "$h" kill "$n" >/dev/null 2>&1 || true
			mh_ferry "$h" rm "$n" >/dev/null 2>&1 || true
		done
	done
	for h in a b; do
		local init
		eval "init=\${MH_INIT_$h:-}"
		[ -n "$init" ] && kill -9 "$init" 2>/dev/null || true
	done
	for h in a b c lan; do
		local ns="fym-$MH_ID-$h" pids
		ip netns list 2>/dev/null | grep -qw "$ns" || continue
		pids=$(ip netns pids "$ns" 2>/dev/null || true)
		[ -n "$pids" ] && kill -9 $pids 2>/dev/null || true
		ip netns del "$ns" 2>/dev/null || true
	done
}

mh_addr() {
	case $1 in
	a) echo "$MH_NET.1" ;;
	b) echo "$MH_NET.2" ;;
	c) echo "$MH_NET.3" ;;
	*) t_fail "unknown host $1" ;;
	esac
}

# _mh_prefix HOST: the command prefix that enters HOST, in MH_CMD (usable
# with & so that $! is the entering process, whose child is the command).
_mh_prefix() {
	local init
	eval "init=\${MH_INIT_$1:-}"
	if [ -n "$init" ]; then
		MH_CMD=(nsenter -t "$init" -p -m -n --)
	else
		MH_CMD=(ip netns exec "fym-$MH_ID-$1")
	fi
}

mh_exec() {
	local h=$1
	shift
	_mh_prefix "$h"
	"${MH_CMD[@]}" "$@"
}

mh_ferry() {
	local h=$1
	shift
	mh_exec "$h" env FERRY_STATE_DIR="$T/state-$h" "$FERRY" "$@"
}

# mh_serve HOST [VAR=VALUE...] [-- WRAPPER...]: the agent of HOST.
mh_serve() {
	local h=$1 envs=() wrap=()
	shift
	while (($#)) && [ "$1" != -- ]; do
		envs+=("$1")
		shift
	done
	(($#)) && { shift; wrap=("$@"); }
	local log="$T/serve-$h.log" addr out json=() conf=${MH_SERVE_CONF:-$T/agent-$h.conf}
	: >"$log"
	if [ -z "${MH_SERVE_CONF:-}" ]; then
		printf 'allow * *\nrootfs-under %s\n' "$T" >"$conf"
		# post-copy into a tenant's user namespace (the default isolation)
		# needs vm.unprivileged_userfaultfd=1: the agent may set it; the
		# old value comes back when the test ends
		if [ "${MH_SERVE_TUNE:-1}" = 1 ]; then
			echo 'tune-host userfaultfd' >>"$conf"
			mh_keep_uffd_sysctl
		fi
	fi
	out=$log
	if [ "${MH_SERVE_JSON:-}" = 1 ]; then
		json=(--json)
		out="$T/serve-$h.json"
	fi
	_mh_prefix "$h"
	# no command substitution in the background command: its subshell would
	# be the first child mh_child finds
	addr=$(mh_addr "$h")
	"${MH_CMD[@]}" env FERRY_STATE_DIR="$T/state-$h" ${envs[@]+"${envs[@]}"} \
		${wrap[@]+"${wrap[@]}"} "$FERRY" serve --listen "$addr:7000" \
		--tls "$T/certs" --name "$h" --timeout "${MH_SERVE_TIMEOUT:-20}" --config "$conf" ${json[@]+"${json[@]}"} \
		>>"$out" 2>>"$log" &
	local pid
	pid=$(mh_child $!) || t_fail "no agent process in host $h"
	eval "MH_PID_$h=$pid"
	eval "MH_LOG_$h=$log"
	t_defer "kill $pid 2>/dev/null; wait $pid 2>/dev/null"
	# up to 15 s: on a loaded machine entering the namespaces can be slow
	local n=300
	while ((n-- > 0)); do
		grep -q "listening on" "$log" 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	cat "$log" >&2
	mh_exec "$h" ss -ltnp 2>/dev/null | grep ":7000 " >&2 || true
	t_fail "ferry serve did not start in host $h"
}

mh_kill_serve() {
	local pid
	eval "pid=\${MH_PID_$1:-}"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	# The agent is nsenter's child, not ours: `wait` cannot reap it. Wait
	# until it is gone, or a restarted agent finds the port still taken.
	# Not just a zombie: a zombie leader whose other threads are still
	# exiting (slow under load) holds the listening socket; nsenter reaps
	# it as soon as the whole process is gone.
	local n=200
	while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
	n=200
	while ((n-- > 0)) && kill -0 "$pid" 2>/dev/null; do
		sleep 0.05
	done
	wait "$pid" 2>/dev/null || true
	# A zombie leader can still have threads holding the listening socket:
	# wait until the port is free, or the next agent fails to bind.
	n=200
	while ((n-- > 0)) && [ -n "$(ip netns exec "fym-$MH_ID-$1" ss -Hltn 'sport = :7000' 2>/dev/null)" ]; do
		sleep 0.05
	done
}

# _mh_need_mode ARGS...: the test names the mode it means (--mode M). The
# default, auto, picks pre-copy on a host with soft-dirty and stop-copy on
# one without: a test that omits it tests another path on another host.
_mh_need_mode() {
	local a
	for a in "$@"; do
		[[ "$a" == --mode || "$a" == --mode=* ]] && return 0
	done
	t_fail "ferry migrate $*: name the mode (--mode stop-copy, ..., or --mode auto on purpose)"
}

# mh_postcopy_ok: true when this host can run post-copy (ferry check says
# userfaultfd works).
mh_postcopy_ok() {
	"$FERRY" check --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
sys.exit(0 if any(i["id"] == "userfaultfd" and i["status"] == "OK" for i in d["items"]) else 1)'
}

# mh_precopy_ok: true when this host can run pre-copy (ferry check lists
# the mode as available: the kernel tracks dirty memory).
mh_precopy_ok() {
	"$FERRY" check --json | python3 -c '
import json, sys
sys.exit(0 if any(m["name"] == "pre-copy" and m["available"] for m in json.load(sys.stdin)["modes"]) else 1)'
}

# mh_keep_pipe_sysctls: put the pipe sysctls back when the test ends
# (post-copy with --tune-host changes them).
mh_keep_pipe_sysctls() {
	local f
	for f in pipe-user-pages-soft pipe-max-size; do
		t_defer "echo $(cat /proc/sys/fs/$f) >/proc/sys/fs/$f"
	done
}

# mh_keep_uffd_sysctl: put vm.unprivileged_userfaultfd back when the test
# ends (once per test; an agent with 'tune-host userfaultfd' may set it).
mh_keep_uffd_sysctl() {
	[ -n "${_MH_UFFD_KEPT:-}" ] && return 0
	_MH_UFFD_KEPT=1
	t_defer "echo $(cat /proc/sys/vm/unprivileged_userfaultfd) >/proc/sys/vm/unprivileged_userfaultfd"
}

# mh_migrate FROM TO NAME --mode MODE [ARGS...]
mh_migrate() {
	local from=$1 to=$2 name=$3
	shift 3
	_mh_need_mode "$@"
	mh_ferry "$from" migrate "$name" --to "$(mh_addr "$to"):7000" --tls "$T/certs" \
		--name "$from" --peer "$to" "$@"
}

mh_pid() {
	mh_ferry "$1" ps --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == sys.argv[1]:
        print(t["pid"] or "")
' "$2"
}

mh_state() {
	mh_ferry "$1" ps --json | python3 -c '
import json, sys
for t in json.load(sys.stdin)["tenants"]:
    if t["name"] == sys.argv[1]:
        print(t["state"])
' "$2"
}

# mh_tree_roots ROOTFS: every live process tree on the whole machine whose
# root directory is ROOTFS, compared by device and inode (tests/lib/onehost.py):
# "want DEV:INO", then "PID NSPID..." per tree.
mh_tree_roots() {
	python3 "$TESTS_ROOT/lib/onehost.py" trees "$1"
}

# _mh_one_host_why NAME SRC DST OLDPID OTHER: why the tenant does not (yet)
# run on DST only, or "ok: HOW IT WAS SEEN" when it does.
_mh_one_host_why() {
	local name=$1 src=$2 dst=$3 old=$4 other=$5 out seen
	local -a r
	mh_ferry "$dst" ps --json >"$T/one-$dst.json" 2>"$T/one.err" ||
		{ echo "ferry ps on $dst failed: $(cat "$T/one.err")"; return; }
	mh_ferry "$other" ps --json >"$T/one-$other.json" 2>"$T/one.err" ||
		{ echo "ferry ps on $other failed: $(cat "$T/one.err")"; return; }
	# the root as DST sees it: an image tenant's overlay is mounted there only
	local root want
	root=$(python3 -c 'import json,sys; print(next((t.get("rootfs") or "" for t in json.load(open(sys.argv[1]))["tenants"] if t["name"] == sys.argv[2]), ""))' "$T/one-$dst.json" "$name")
	want=$([ -n "$root" ] && mh_exec "$dst" stat -L -c %d:%i "$root" 2>/dev/null || true)
	out=$(ONEHOST_WANT=$want python3 "$TESTS_ROOT/lib/onehost.py" check "$name" "$dst" \
		"$T/one-$dst.json" "$other" "$T/one-$other.json") || out="why: onehost.py failed (see above)"
	[[ "$out" == ok\ * ]] || { echo "${out#why: }"; return; }
	read -ra r <<<"$out" # ok DEV:INO PID MPID
	if [ "$src" != "$dst" ] && mh_exec "$src" test -e "/proc/$old"; then
		echo "the old init (pid $old) still exists on $src:" \
			"$(mh_exec "$src" grep -h '^State' "/proc/$old/status" 2>/dev/null)"
		return
	fi
	seen=$(mh_exec "$dst" stat -L -c %d:%i "/proc/${r[2]}/root" 2>/dev/null || true)
	[ "$seen" = "${r[1]}" ] || { echo "pid ${r[2]} on $dst has the root '$seen', not ${r[1]}"; return; }
	echo "ok: pid ${r[2]} on $dst (${r[3]} here), the only process tree with the root ${r[1]}"
}

# mh_assert_one_host NAME SRC DST [OLDPID]: proves that exactly one host, DST,
# runs tenant NAME (a container) after a migration from SRC; SRC = DST for a
# migration that failed (the tenant stays on SRC, the other tenant host must
# have nothing). Proof: (a) SRC != DST: OLDPID (its init's pid on SRC before
# the migration) is gone in SRC's PID namespace; (b) exactly one live process
# tree on the whole machine has the tenant's root (device and inode of its
# root file system), its init is the pid DST's registry names, and that pid
# in DST's PID namespace has this root; (c) the registries agree (`ferry ps
# --json`): running on DST, no record on the other host. Waits up to
# MH_ONE_WAIT seconds (15) for it to settle (a recovery decides in the
# background), then fails saying what does not hold.
mh_assert_one_host() {
	local name=$1 src=$2 dst=$3 old=${4:-} other why n
	[ "$dst" = a ] && other=b || other=a
	[ "$src" = "$dst" ] || [ -n "$old" ] || t_fail "mh_assert_one_host $*: the old pid on $src?"
	n=$((${MH_ONE_WAIT:-15} * 5))
	while :; do
		why=$(_mh_one_host_why "$name" "$src" "$dst" "$old" "$other")
		[[ "$why" == ok:* ]] && break
		((n-- > 0)) || t_fail "$name does not run on exactly one host ($dst): $why"
		sleep 0.2
	done
	if [ "$src" = "$dst" ]; then
		t_log "$name runs on $dst only: ${why#ok: }; $other has no record"
	else
		t_log "$name runs on $dst only: ${why#ok: }; $src: old pid $old gone, no record"
	fi
}

# mh_verify HOST NAME ROOTFS: the workload's self-check (SIGUSR1, PASS).
mh_verify() {
	local h=$1 name=$2 r=$3 pid res
	pid=$(mh_pid "$h" "$name")
	[ -n "$pid" ] || t_fail "$name has no pid on $h"
	rm -f "$r/tmp/wl.result"
	mh_exec "$h" kill -USR1 "$pid"
	t_wait_file "$r/tmp/wl.result" 60
	res=$(cat "$r/tmp/wl.result")
	t_log "$name on $h: $res"
	[ "$res" = PASS ] || {
		tail -n 20 "$r/.ferry/console.log" 2>/dev/null || true
		t_fail "$name: workload says '$res'"
	}
}

# mh_start HOST NAME ROOTFS [ferry run options] -- CMD...
mh_start() {
	local h=$1 name=$2 r=$3
	shift 3
	t_rootfs "$r"
	rm -f "$r/tmp/wl.ready" "$r/tmp/wl.result"
	mh_ferry "$h" run "$name" --rootfs "$r" "$@" || t_fail "ferry run $name on $h failed"
	t_wait_file "$r/tmp/wl.ready" 30
}

# mh_bg_migrate FROM TO NAME --mode MODE [ARGS...]: ferry migrate in the background, its
# output in $T/out and $T/err; MH_MIG gets the waitable pid, MH_MIG_PID the
# migrate process itself (root PID namespace: for kill and /proc).
mh_bg_migrate() {
	local from=$1 to=$2 name=$3 addr
	shift 3
	_mh_need_mode "$@"
	_mh_prefix "$from"
	addr=$(mh_addr "$to") # not in the background command (see mh_serve)
	"${MH_CMD[@]}" env FERRY_STATE_DIR="$T/state-$from" "$FERRY" migrate "$name" \
		--to "$addr:7000" --tls "$T/certs" --name "$from" --peer "$to" "$@" \
		>"$T/out" 2>"$T/err" &
	MH_MIG=$!
	MH_MIG_PID=$(mh_child "$MH_MIG")
}

# mh_client_start DIR ADDR PORT INTERVAL_MS: a tcp_client on host c talking
# to ADDR:PORT over one connection (protocol directory DIR, its output in
# DIR/out and DIR/err); waits until it is connected. Sets MH_CLIENT_PID.
mh_client_start() {
	local dir=$1 addr=$2 port=$3 ms=$4
	mkdir -p "$dir"
	ip netns exec "fym-$MH_ID-c" env WL_DIR="$dir" "$WORKLOADS/tcp_client" --addr "$addr" \
		--port "$port" --interval-ms "$ms" >"$dir/out" 2>"$dir/err" </dev/null &
	MH_CLIENT_PID=$!
	t_defer "kill -9 $MH_CLIENT_PID 2>/dev/null"
	t_wait_file "$dir/client.ready" 20
}

# mh_client_verdict PID DIR: ask the tcp_client PID (protocol directory DIR,
# its stderr in DIR/err) for its verdict; the test fails unless it is PASS.
mh_client_verdict() {
	local cpid=$1 dir=$2 res
	kill -USR1 "$cpid"
	t_wait_file "$dir/client.result" 20
	res=$(cat "$dir/client.result")
	t_log "tcp_client: $res"
	[[ "$res" == PASS* ]] || {
		cat "$dir/err"
		t_fail "tcp_client says '$res'"
	}
}
