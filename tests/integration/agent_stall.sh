#!/bin/bash
# No one can stall the agent without a certificate: idle TCP connections and a
# ClientHello trickled a byte a second, from one address and from many, while
# a legitimate peer's HELLO is answered within a second and `ferry send` goes
# through; the unauthenticated connections are dropped at the absolute
# handshake deadline (10 s), whatever they trickle.
. "$TESTS_ROOT/lib/common.sh"
t_init agent_stall
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup stall 61
h_certs "$T/certs" srv cli
h_serve a "$T/state" "$T/certs" srv --max-conns 8
to="$(h_addr a):7000"
mkdir -p "$T/set"
head -c 200000 /dev/urandom >"$T/set/p.img"
id=$("$WIRETOOL" mkset "$T/set" web)

legit_hello() {
	h_exec b "$WIRETOOL" hello "$to" "$T/certs" cli srv 1000 || t_fail "$1: HELLO not served within a second"
}

# 1. one address (the agent's own host) floods: 12 idle, 4 trickling
h_exec a "$WIRETOOL" hold "$to" 12 14 idle >"$T/idle1" &
idle1=$!
h_exec a "$WIRETOOL" hold "$to" 4 14 trickle >"$T/trickle1" &
trickle1=$!
sleep 1.5
legit_hello "one address"

# 2. many addresses (extra addresses on b): 3 idle and 2 trickling each
for i in 3 4 5 6 7 8; do
	ip -n "$(h_ns b)" addr add "$H_NET.$i/24" dev "$H_VB"
done
pids=()
for i in 3 4 5 6 7 8; do
	h_exec b "$WIRETOOL" hold "$to" 3 13 idle "$H_NET.$i" >"$T/idle.$i" &
	pids+=($!)
	h_exec b "$WIRETOOL" hold "$to" 2 13 trickle "$H_NET.$i" >"$T/trickle.$i" &
	pids+=($!)
done
sleep 1.5
legit_hello "many addresses"
t0=$(date +%s%N)
h_exec b "$FERRY" send "$T/set" --to "$to" --tls "$T/certs" --name cli --peer srv
ms=$((($(date +%s%N) - t0) / 1000000))
echo "ferry send took $ms ms under the flood"
((ms < 5000)) || t_fail "ferry send took $ms ms while unauthenticated peers held connections"
[ -f "$T/state/sets/cli/$id/p.img" ] || t_fail "the set did not arrive"

# 3. nothing unauthenticated outlives the handshake deadline, not even a
# connection that keeps trickling
wait "$idle1" "$trickle1" "${pids[@]}"
cat "$T"/idle* "$T"/trickle*
! grep -q open "$T"/idle* "$T"/trickle* || t_fail "an unauthenticated connection outlived the handshake deadline"
grep -q "closed after" "$T/trickle1" || t_fail "no trickling connection was held at all"
kill -0 "$H_PID" || t_fail "ferry serve died"
legit_hello "after the flood"
echo PASS
