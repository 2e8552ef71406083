#!/bin/bash
# The destination decides what it runs. A peer with a valid certificate
# (cli) sends crafted MIGRATE_BEGINs (and, for post-copy, a set whose
# manifest disagrees with its BEGIN) to an agent whose configuration allows
# roots under $T/roots and addresses in the hosts' subnet. Each is refused
# with a clear error before anything is frozen or restored, nothing is
# written where the peer pointed, nothing runs, and the agent goes on serving:
#  (1) roots: /, /etc, a symbolic link to /, a path outside the allowed
#      directories, a ../ escape;
#  (2) addresses: this host's own, its gateway's, outside the tenant subnets,
#      a network address; a broadcast MAC for the host side;
#  (3) kinds: a process tree is refused by default, accepted once the
#      configuration (reloaded on SIGHUP) enables it;
#  (4) the manifest names another root, tenant, kind or address than BEGIN;
#  (5) the in-doubt query is answered only to the certificate the migration
#      went to;
#  and a legitimate BEGIN (the host interface the peer named is not used)
#  is accepted, a legitimate HELLO answered within a second.
. "$TESTS_ROOT/lib/common.sh"
t_init peer_intake
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup peerintake 67
h_certs "$T/certs" srv cli evil
net=$H_NET
ip -n "$(h_ns a)" route add 10.250.0.0/16 via "$net.254"
mkdir -p "$T/roots/ok/bin" "$T/elsewhere/bin" "$T/set"
ln -s / "$T/roots/link"
head -c 4096 /dev/urandom >"$T/set/pages-1.img"
conf="$T/agent.conf"
printf 'allow * *\nrootfs-under %s\nsubnet %s.0/24\n' "$T/roots" "$net" >"$conf"
h_serve a "$T/state" "$T/certs" srv --config "$conf"
srvpid=$H_PID
to="$(h_addr a):7000"
n=0
# begin WANT KEY=VALUE...: a crafted BEGIN from cli; its answer must hold WANT
begin() {
	local want=$1
	shift
	n=$((n + 1))
	h_exec b "$WIRETOOL" begin "$to" "$T/certs" cli srv "pi$n$$" "$@" >"$T/out" 2>&1 || true
	t_log "$* -> $(cat "$T/out")"
	grep -qF -- "$want" "$T/out" || t_fail "BEGIN $*: expected '$want', got '$(cat "$T/out")'"
}
ok="$T/roots/ok"

# (1) roots
begin "host system directory: refused" rootfs=/
begin "host system directory: refused" rootfs=/etc
begin "host system directory: refused" rootfs="$T/roots/link"
begin "lies under no directory this agent allows" rootfs="$T/elsewhere"
begin "lies under no directory this agent allows" rootfs="$ok/../../elsewhere"
begin "lies under no directory this agent allows" rootfs="$T/roots"
begin "is missing on srv" rootfs="$T/roots/missing"
# (2) addresses
begin "this host's own address" rootfs="$ok" addr="$net.1/24"
begin "is a gateway of this host" rootfs="$ok" addr="$net.254/24"
begin "lies in no tenant subnet" rootfs="$ok" addr=10.77.0.5/24
begin "network or broadcast address" rootfs="$ok" addr="$net.0/24"
begin "not a unicast address" rootfs="$ok" addr="$net.50/24" mac=ff:ff:ff:ff:ff:ff
# (3) kinds: process trees are off by default
begin "takes no proctree tenants" kind=proctree
# a legitimate BEGIN is accepted; the host interface it named is not used
begin "accepted" rootfs="$ok" addr="$net.50/24" host_if=lo mac=02:00:00:00:00:01
ip -n "$(h_ns a)" link show | grep -q "fy-" && t_fail "a host interface outlived a failed migration"

# (4) the manifest must describe what BEGIN announced (post-copy: no pages)
common=(mode=post rootfs="$ok" files="$T/set")
begin "its root file system differs" "${common[@]}" mrootfs=/
begin "its tenant name differs" "${common[@]}" mtenant=victim
begin "its kind differs" "${common[@]}" mkind=proctree
begin "its address differs" "${common[@]}" maddr="$net.60/24"
[ -e /.ferry/console.log ] && t_fail "a console log was created in the host's root"
[ -e "$T/state/tenants/victim" ] && t_fail "the manifest's tenant got a directory"
ls "$T/state/migrations" 2>/dev/null | grep -q . && t_fail "a refused migration left files: $(ls "$T/state/migrations")"
h_exec a env FERRY_STATE_DIR="$T/state" "$FERRY" ps --json | grep -q '"name"' &&
	t_fail "a tenant was registered"

# (3) again: the configuration enables process trees (reloaded on SIGHUP)
echo "kinds container,proctree" >>"$conf"
kill -HUP "$srvpid"
sleep 0.5
begin "accepted" kind=proctree

# (5) the in-doubt query: only the destination the migration went to
qid=q$$x
mkdir -p "$T/state/migrations"
printf 'migration %s: aborted\n' "$qid" >"$T/state/migrations/$qid.aborted"
printf cli >"$T/state/migrations/$qid.peer"
h_exec b "$WIRETOOL" query "$to" "$T/certs" evil srv "$qid" >"$T/out" 2>&1 || true
grep -q "went to another peer: only it may query it" "$T/out" ||
	t_fail "evil learned the outcome of cli's migration: $(cat "$T/out")"
h_exec b "$WIRETOOL" query "$to" "$T/certs" cli srv "$qid" >"$T/out" 2>&1 || true
grep -q "verdict: 2" "$T/out" || t_fail "cli got no abort verdict: $(cat "$T/out")"
h_exec b "$WIRETOOL" query "$to" "$T/certs" evil srv "nosuch$$" >"$T/out" 2>&1 || true
grep -q "verdict: 4" "$T/out" || t_fail "an unknown migration is not 'unknown': $(cat "$T/out")"

# the agent still serves a legitimate peer at once
h_exec b "$WIRETOOL" hello "$to" "$T/certs" cli srv 1000 || t_fail "HELLO took longer than 1 s"
kill -0 "$srvpid" || t_fail "ferry serve died"
echo PASS
