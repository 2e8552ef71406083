#!/bin/bash
# Mutual authentication: the server refuses clients whose certificate comes
# from another CA, is self-signed, or is missing, and plaintext clients; the
# client refuses a server whose name does not match. Nothing is written on the
# server for a refused client, and it keeps serving.
. "$TESTS_ROOT/lib/common.sh"
t_init transport_auth
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup auth 12
h_certs "$T/certs" srv cli
h_certs "$T/other" cli
mkdir -p "$T/set"
head -c 200000 /dev/urandom >"$T/set/pages.img"
id=$("$WIRETOOL" mkset "$T/set" web)
h_serve a "$T/state" "$T/certs" srv
srv=$(h_addr a)

# a client whose certificate comes from another CA (it trusts our CA though)
mkdir -p "$T/foreign"
cp "$T/certs/ca.pem" "$T/foreign/ca.pem"
cp "$T/other/cli.pem" "$T/other/cli.key" "$T/foreign/"
t_expect_fail 6 'TLS|closed|lost' h_exec b "$FERRY" send "$T/set" --to "$srv:7000" \
	--tls "$T/foreign" --name cli --peer srv

# a self-signed client certificate
mkdir -p "$T/self"
cp "$T/certs/ca.pem" "$T/self/ca.pem"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
	-subj /CN=cli -keyout "$T/self/cli.key" -out "$T/self/cli.pem" 2>/dev/null
t_expect_fail 6 'TLS|closed|lost' h_exec b "$FERRY" send "$T/set" --to "$srv:7000" \
	--tls "$T/self" --name cli --peer srv

# no client certificate at all, and a plaintext client
echo hi | h_exec b timeout 5 openssl s_client -connect "$srv:7000" -tls1_3 \
	-CAfile "$T/certs/ca.pem" -quiet >/dev/null 2>&1 || true
h_exec b timeout 5 bash -c "echo hi >/dev/tcp/$srv/7000" || true
h_exec b timeout 5 socat -u - "TCP:$srv:7000" < <(head -c 100000 /dev/urandom) || true

# the client refuses a server whose certificate is for another name
t_expect_fail 6 'not for that name' h_exec b "$FERRY" send "$T/set" --to "$srv:7000" \
	--tls "$T/certs" --name cli --peer wrongname
t_expect_fail 6 'not for that name' h_exec b "$FERRY" send "$T/set" --to "$srv:7000" \
	--tls "$T/certs" --name cli

sleep 0.5
kill -0 "$H_PID" || t_fail "ferry serve died"
n=$(grep -c 'failed' "$H_LOG" || true)
((n >= 5)) || { cat "$H_LOG"; t_fail "server logged $n refused connections, want >= 5"; }
[ -z "$(ls -A "$T/state/incoming")" ] || t_fail "a refused client left data in incoming"
[ ! -e "$T/state/sets" ] || [ -z "$(ls -A "$T/state/sets")" ] || t_fail "a refused client made a set"

# and a proper client still gets through
h_exec b "$FERRY" send "$T/set" --to "$srv:7000" --tls "$T/certs" --name cli --peer srv
[ -f "$T/state/sets/cli/$id/pages.img" ] || t_fail "valid client's set missing"
cat "$H_LOG"
echo PASS
