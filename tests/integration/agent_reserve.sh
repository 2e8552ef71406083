#!/bin/bash
# Capacity is kept for the requests of migrations in flight: with every
# working slot of --max-conns taken by transfers, a new transfer is refused
# as busy, while a MIGRATE_RESOLVE (the recovery of a migration in doubt)
# still reaches its handler.
. "$TESTS_ROOT/lib/common.sh"
t_init agent_reserve
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup reserve 66
h_certs "$T/certs" srv cli
h_serve a "$T/state" "$T/certs" srv --max-conns 2
to="$(h_addr a):7000"
h_rate b 40mbit # ~5 MB/s: each 20 MB transfer takes a few seconds
pids=()
for i in 1 2; do
	mkdir -p "$T/s$i"
	head -c 20000000 /dev/urandom >"$T/s$i/pages.img"
	"$WIRETOOL" mkset "$T/s$i" web >/dev/null
	h_exec b "$FERRY" send "$T/s$i" --to "$to" --tls "$T/certs" --name cli --peer srv \
		>"$T/s$i.out" 2>&1 &
	pids+=($!)
done
sleep 1.5
mkdir -p "$T/s3"
echo x >"$T/s3/p.img"
"$WIRETOOL" mkset "$T/s3" web >/dev/null
if h_exec b "$FERRY" send "$T/s3" --to "$to" --tls "$T/certs" --name cli --peer srv \
	--retry-for 0 >"$T/s3.out" 2>&1; then
	cat "$T/s3.out"
	t_fail "a third transfer ran beyond --max-conns 2 (are the first two still running?)"
fi
cat "$T/s3.out"
grep -q "agent is busy" "$T/s3.out" || t_fail "no clear busy error"
h_exec b "$WIRETOOL" mig "$to" "$T/certs" cli srv resolve m0123456789abcdef | tee "$T/r.out"
grep -q "busy" "$T/r.out" && t_fail "a resolve found no capacity while transfers filled the agent"
grep -q "unknown here" "$T/r.out" || t_fail "the resolve did not reach its handler"
for p in "${pids[@]}"; do wait "$p" || t_fail "a running transfer failed"; done
echo PASS
