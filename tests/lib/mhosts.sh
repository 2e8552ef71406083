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
#   mh_kill_serve HOST        stop HOST's agent
#   mh_migrate FROM TO NAME [ARGS...]  ferry migrate from host FROM to TO
#   mh_pid HOST NAME / mh_state HOST NAME   from HOST's `ferry ps --json`
#   mh_check_one HOST NAME    the tenant runs on HOST only: registries of a
#                             and b, live init pid
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

# _mh_init HOST: the host's init, pid 1 of its PID namespace (reaps orphans).
_mh_init() {
	local h=$1 u
	ip netns exec "fym-$MH_ID-$h" unshare --pid --mount --fork --mount-proc \
		--propagation private sh -c 'trap "" TERM INT HUP; while :; do sleep 3600 & wait; done' \
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
	local log="$T/serve-$h.log" addr out json=()
	: >"$log"
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
		--tls "$T/certs" --name "$h" --timeout "${MH_SERVE_TIMEOUT:-20}" ${json[@]+"${json[@]}"} \
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

# mh_migrate FROM TO NAME [ARGS...]
mh_migrate() {
	local from=$1 to=$2 name=$3
	shift 3
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

# mh_check_one HOST NAME: runs on HOST (registry running, init alive), and the
# other tenant host has no live record of it.
mh_check_one() {
	local h=$1 name=$2 other pid st
	[ "$h" = a ] && other=b || other=a
	st=$(mh_state "$h" "$name")
	pid=$(mh_pid "$h" "$name")
	[ "$st" = running ] || t_fail "$name: state on $h is '$st', want running"
	[ -n "$pid" ] && mh_exec "$h" kill -0 "$pid" 2>/dev/null || t_fail "$name: pid '$pid' on $h not alive"
	st=$(mh_state "$other" "$name")
	case "$st" in
	"" | gone | dumped) ;;
	*) t_fail "$name: host $other still says '$st'" ;;
	esac
	# exactly one init of this tenant: its rootfs console is open by one tree
	t_log "$name runs on $h only (pid $pid; $other: '${st:-no record}')"
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

# mh_copies CMDLINE: how many processes run with exactly this command line
# (give the tenant a unique one, e.g. a --seed from $MH_TOK: other runs of
# the same test may be going on): each copy of a single-process
# tenant, on any host, running or held stopped, counts once.
mh_copies() {
	pgrep -cfx -- "$1" || true
}

# mh_wait_copies CMDLINE N [SECONDS]: until exactly N copies exist.
mh_wait_copies() {
	local cl=$1 want=$2 n=$((${3:-10} * 10)) c
	while ((n-- > 0)); do
		c=$(mh_copies "$cl")
		((c == want)) && return 0
		sleep 0.1
	done
	t_fail "$c copies of '$cl' exist, want $want"
}

# mh_bg_migrate FROM TO NAME [ARGS...]: ferry migrate in the background, its
# output in $T/out and $T/err; MH_MIG gets the waitable pid, MH_MIG_PID the
# migrate process itself (root PID namespace: for kill and /proc).
mh_bg_migrate() {
	local from=$1 to=$2 name=$3 addr
	shift 3
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
