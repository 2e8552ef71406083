#!/bin/bash
# ferry run --net: the tenant gets eth0 with its address inside its own network
# namespace; the host reaches it through the veth (ping, TCP with busybox nc);
# kill removes the host side and its route. Addresses: 10.201.x.y, which live
# only in the tenant's namespace and on the veth.
. "$TESTS_ROOT/lib/common.sh"
t_init tenant_net

R="$T/rootfs"
t_rootfs "$R"
ln -sf busybox "$R/bin/nc"
NAME=tn-$$
ADDR=10.201.0.2
HOSTIF=fy-$NAME
t_defer "$FERRY rm --force $NAME"
t_defer "ip link del $HOSTIF"

# the tenant answers every TCP connection on port 7000 with a line
"$FERRY" run "$NAME" --net "$ADDR/24" --host-only --rootfs "$R" -- \
	sh -c 'while true; do echo "hello from $(hostname)" | nc -l -p 7000; done' >"$T/run.out"
cat "$T/run.out"
PID=$(sed -n 's/^init_pid=//p' "$FERRY_STATE_DIR/tenants/$NAME/record")

t_log "host side"
ip -br link show "$HOSTIF" | grep -q UP || t_fail "$HOSTIF is not up"
[ "$(cat "/proc/sys/net/ipv4/conf/$HOSTIF/proxy_arp")" = 1 ] || t_fail "no proxy_arp on $HOSTIF"
[ "$(cat "/proc/sys/net/ipv4/neigh/$HOSTIF/proxy_delay")" = 0 ] || t_fail "proxied ARP replies on $HOSTIF are delayed"
ip route show "$ADDR/32" | grep -q "dev $HOSTIF" || t_fail "no /32 route via $HOSTIF"

t_log "tenant side"
nsenter -t "$PID" -n ip -br addr show eth0 | grep -q "$ADDR/24" || t_fail "eth0 lacks $ADDR/24"
nsenter -t "$PID" -n ip -br link show lo | grep -q UP || nsenter -t "$PID" -n ip -br link show lo | grep -q UNKNOWN || t_fail "lo is down"
nsenter -t "$PID" -n ip route show default | grep -q "dev eth0" || t_fail "no default route"

t_log "traffic"
busybox ping -c1 -W2 "$ADDR" || t_fail "ping $ADDR failed"
for i in $(seq 50); do
	out=$(busybox nc -w 2 "$ADDR" 7000 </dev/null 2>/dev/null || true)
	[ -n "$out" ] && break
	sleep 0.1
done
[ "$out" = "hello from $NAME" ] || t_fail "TCP to $ADDR:7000 gave '$out'"

t_log "a second tenant with the same host interface name is refused"
"$FERRY" rm --force "$NAME"
ip link show "$HOSTIF" >/dev/null 2>&1 && t_fail "rm --force left $HOSTIF"
ip link add "$HOSTIF" type veth peer name "tp-$$"
t_expect_fail 4 "host interface $HOSTIF already exists" \
	"$FERRY" run "$NAME" --net "$ADDR/24" --host-only --rootfs "$R" -- sleep 100
[ ! -e "$FERRY_STATE_DIR/tenants/$NAME" ] || t_fail "failed run left a record"
ip link del "$HOSTIF"

t_log "an address already routed on this host is refused"
N2=tn2-$$
t_defer "$FERRY rm --force $N2"
"$FERRY" run "$N2" --net "$ADDR/24" --host-only --rootfs "$R" -- sleep 1000 >/dev/null
t_expect_fail 4 "address $ADDR is already routed to fy-$N2" \
	"$FERRY" run "$NAME" --net "$ADDR/24" --host-only --rootfs "$R" -- sleep 100
[ ! -e "$FERRY_STATE_DIR/tenants/$NAME" ] || t_fail "failed run left a record"
"$FERRY" rm --force "$N2"

t_log "bad address"
t_expect_fail 2 "bad address" "$FERRY" run "$NAME" --net 10.201.0.2 --rootfs "$R" -- sleep 100
t_expect_fail 2 "bad address" "$FERRY" run "$NAME" --net nonsense/24 --rootfs "$R" -- sleep 100

t_log "kill removes the veth and the route"
"$FERRY" run "$NAME" --net "$ADDR/24" --host-only --rootfs "$R" -- sleep 1000 >/dev/null
ip link show "$HOSTIF" >/dev/null || t_fail "no $HOSTIF"
"$FERRY" kill "$NAME"
ip link show "$HOSTIF" >/dev/null 2>&1 && t_fail "kill left $HOSTIF"
ip route show "$ADDR/32" | grep -q . && t_fail "kill left the route"
"$FERRY" rm "$NAME"
echo PASS
