#!/bin/bash
# The contract with the dump/restore stage: a container started by 'ferry run'
# can be dumped and restored by the CRIU CLI as
#   criu dump -t PID -D DIR --network-lock nftables
#   criu restore -D DIR --root ROOTFS -d [--external netdev[eth0]:fz-NAME]
# and goes on where it stopped (a counter), with and without --net. A
# tenant has a user namespace of its own (the default), from which CRIU
# cannot create a veth pair reaching into the host's network namespace
# (--veth-pair fails, "Can't restore link: -95"): as ferry's restore does,
# the pair is made first (HOSTIF <-> fz-NAME) and CRIU moves its end in.
. "$TESTS_ROOT/lib/common.sh"
t_init tenant_criu_smoke

CRIU=${FERRY_CRIU:-$(cat "$TESTS_ROOT/../.deps/criu-path" 2>/dev/null || true)}
[ -n "$CRIU" ] && [ -x "$CRIU" ] || t_skip "no CRIU (run 'make deps' or set FERRY_CRIU)"
"$CRIU" check >/dev/null 2>&1 || t_skip "criu check fails on this host"

R="$T/rootfs"
t_rootfs "$R"
COUNTER='i=0; while true; do i=$((i+1)); echo $i; sleep 0.1; done'

pid_of() { sed -n 's/^init_pid=//p' "$FERRY_STATE_DIR/tenants/$1/record"; }
last() { tail -n1 "$R/.ferry/console.log"; }
wait_past() { # wait until the counter passes $1
	for i in $(seq 100); do (($(last) > $1)) && return 0; sleep 0.1; done
	t_fail "counter stuck at $(last) (wanted > $1)"
}
gone() { [ ! -d "/proc/$1" ] || grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# dump_restore NAME [HOSTIF]: dump the tenant, check it stopped, restore it
dump_restore() {
	local name=$1 hostif=${2:-} pid img="$T/img-$1"
	pid=$(pid_of "$name")
	wait_past 3
	mkdir -p "$img"
	"$CRIU" dump -t "$pid" -D "$img" --network-lock nftables -o dump.log ||
		{ tail -20 "$img/dump.log"; t_fail "criu dump of $name failed"; }
	for i in $(seq 50); do gone "$pid" && break; sleep 0.1; done
	gone "$pid" || t_fail "tenant still running after dump"
	STOPPED=$(last)
	sleep 0.5
	[ "$(last)" = "$STOPPED" ] || t_fail "counter moved while dumped"
	local extra=()
	if [ -n "$hostif" ]; then
		ip link add "$hostif" type veth peer name "fz${hostif#fy}"
		extra=(--external "netdev[eth0]:fz${hostif#fy}")
	fi
	"$CRIU" restore -D "$img" --root "$R" -d --pidfile "$img/restored.pid" -o restore.log \
		--network-lock nftables "${extra[@]}" ||
		{ tail -20 "$img/restore.log"; t_fail "criu restore of $name failed"; }
	RESTORED=$(cat "$img/restored.pid")
	t_defer "kill -9 $RESTORED"
	wait_past "$STOPPED"
	local first
	first=$(grep -n "^$STOPPED\$" "$R/.ferry/console.log" | tail -1 | cut -d: -f1)
	[ "$(sed -n "$((first + 1))p" "$R/.ferry/console.log")" = "$((STOPPED + 1))" ] ||
		t_fail "counter did not go on from $STOPPED"
	t_log "$name: dumped at $STOPPED, restored as pid $RESTORED, now $(last)"
}

t_log "plain container, holding a pty master of its devpts"
N1=cs1-$$
t_defer "$FERRY rm --force $N1"
"$FERRY" run "$N1" --rootfs "$R" -- sh -c "exec 3<>/dev/ptmx; $COUNTER"
dump_restore "$N1"
kill -9 "$RESTORED"
for i in $(seq 50); do gone "$RESTORED" && break; sleep 0.1; done

t_log "container with --net"
: >"$R/.ferry/console.log"
N2=cs2-$$
HOSTIF=fy-$N2
t_defer "$FERRY rm --force $N2"
t_defer "ip link del $HOSTIF"
"$FERRY" run "$N2" --rootfs "$R" --net 10.201.1.2/24 --host-only -- sh -c "$COUNTER"
busybox ping -c1 -W2 10.201.1.2 >/dev/null || t_fail "no ping before dump"
dump_restore "$N2" "$HOSTIF"
# CRIU moved the pair's end in; the host side is re-plumbed by ferry's restore stage
# (net_host_plumb); the same steps by hand here:
ip link set "$HOSTIF" up
echo 1 >"/proc/sys/net/ipv4/conf/$HOSTIF/proxy_arp"
ip route replace 10.201.1.2/32 dev "$HOSTIF"
busybox ping -c1 -W2 10.201.1.2 >/dev/null || t_fail "no ping after restore"
kill -9 "$RESTORED"
echo PASS
