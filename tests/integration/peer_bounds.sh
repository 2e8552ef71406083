#!/bin/bash
# Every count a peer sends is bounded before anything is allocated: an OFFER
# whose manifest lists 2 million empty argv entries (4 MB on the wire) is
# refused from its raw bytes, and the agent's peak memory stays small (it
# grew from 9 MB to 157 MB per such connection before).
. "$TESTS_ROOT/lib/common.sh"
t_init peer_bounds
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup peerbounds 65
h_certs "$T/certs" srv cli
h_serve a "$T/state" "$T/certs" srv
to="$(h_addr a):7000"
pid=$(pgrep -f -n "ferry serve --listen $(h_addr a):7000" || echo "$H_PID")
h_exec b "$WIRETOOL" evil-offer "$to" "$T/certs" cli srv manyargv | tee "$T/out" ||
	t_fail "the receiver did not refuse"
grep -q "argv entries (at most" "$T/out" || t_fail "no clear error for 2M argv entries"
hwm=$(awk '/VmHWM/ {print $2}' "/proc/$pid/status")
echo "agent peak memory: $hwm kB"
((hwm < 80000)) || t_fail "the agent's peak memory reached $hwm kB"
[ -z "$(ls -A "$T/state/incoming" 2>/dev/null)" ] || t_fail "the refused offer left data behind"
echo PASS
