#!/bin/bash
# Network of a restored container: the host side is re-plumbed (veth up,
# /32 route); restoring a copy under another name while the original still
# holds the address is a conflict that starts nothing; once the original is
# gone the copy gets its own host interface.
. "$TESTS_ROOT/lib/common.sh"
t_init restore_net
. "$TESTS_ROOT/lib/cr.sh"
cr_require

ADDR=10.202.0.31
R="$T/rootfs"
t_defer "'$FERRY' kill rn-copy; '$FERRY' rm rn-copy"
cr_start rn-orig "$R" --net "$ADDR/24" --host-only -- /bin/wl_counter --interval-ms 50
"$FERRY" dump rn-orig -D "$T/img" --leave-running >/dev/null || t_fail "dump failed"

t_expect_fail 4 "$ADDR is already routed" "$FERRY" restore -D "$T/img" --name rn-copy
[ -z "$(cr_state rn-copy)" ] || t_fail "rn-copy got registered"
ip link show fy-rn-copy >/dev/null 2>&1 && t_fail "fy-rn-copy was created"

"$FERRY" kill rn-orig >/dev/null
"$FERRY" restore -D "$T/img" --name rn-copy || t_fail "restore of the copy failed"
ip link show fy-rn-copy | grep -q "state UP" || t_fail "fy-rn-copy is not up"
ip route show "$ADDR/32" | grep -q "dev fy-rn-copy" || t_fail "no /32 route to $ADDR via fy-rn-copy"
ip link show fy-rn-orig >/dev/null 2>&1 && t_fail "fy-rn-orig still exists"
# the copy restarted nothing: same incarnation, still counting
cr_verify rn-copy "$R"
