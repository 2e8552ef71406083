#!/bin/bash
# Authorization, not just authentication. Two certificates of one CA, cli and
# evil, against an agent with a configuration file:
# (1) a request the file does not allow a peer is refused, others served;
# (2) the file is reloaded when it changes (and on SIGHUP); a broken one
#     leaves the old one in force;
# (3) `ferry cert revoke` writes DIR/crl.pem, the agent reloads it and refuses
#     the revoked certificate while serving the others;
# (4) certificates last 90 days by default; `ferry cert renew` replaces one
#     (the agent's own: reloaded without a restart);
# (5) a private key readable by group or others is refused on load.
. "$TESTS_ROOT/lib/common.sh"
t_init peer_authz
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup peerauthz 64
h_certs "$T/certs" srv cli evil
conf="$T/agent.conf"
cat >"$conf" <<'CONF'
# who may do what (docs/security.md)
allow send-set,migrate cli
allow resolve,pages,query *
CONF
h_serve a "$T/state" "$T/certs" srv --config "$conf"
srvpid=$H_PID
to="$(h_addr a):7000"
n=0
send() { # NAME: send a fresh set as NAME
	n=$((n + 1))
	mkdir -p "$T/s$n"
	head -c 10000 /dev/urandom >"$T/s$n/p.img"
	"$WIRETOOL" mkset "$T/s$n" web >"$T/s$n.id"
	h_exec b "$FERRY" send "$T/s$n" --to "$to" --tls "$T/certs" --name "$1" --peer srv \
		--retry-for 0 >"$T/out" 2>&1
	local rc=$?
	cat "$T/out"
	return $rc
}
wait_log() { # PATTERN
	local i=50
	while ((i-- > 0)); do
		grep -q "$1" "$H_LOG" && return 0
		sleep 0.1
	done
	cat "$H_LOG"
	t_fail "the agent did not log /$1/"
}

# (1)
send cli || t_fail "cli may send sets"
send evil && t_fail "evil sent a set the configuration does not allow it"
grep -q "may not make request send-set" "$T/out" || t_fail "no clear refusal for evil"
[ -z "$(ls -A "$T/state/sets/evil" 2>/dev/null)" ] || t_fail "evil's refused set was stored"

# (2) reload on change; a broken file keeps the old one
echo "allow send-set evil" >>"$conf"
wait_log "reloaded the config"
send evil || t_fail "evil may send sets after the reload"
echo "allow nonsense cli" >>"$conf"
wait_log "cannot reload the config"
send cli || t_fail "a broken configuration file replaced the good one"
# SIGHUP reloads too (the file written in place, its mtime may not move)
printf 'allow send-set cli\nallow resolve,pages,query *\n' >"$conf"
kill -HUP "$srvpid"
sleep 0.5
send evil && t_fail "evil still allowed after the configuration withdrew it"

# (3) revoke evil (allowed again by the file, refused by the CRL)
echo "allow * *" >"$conf"
kill -HUP "$srvpid"
sleep 0.5
send evil || t_fail "evil refused before the revocation"
"$FERRY" cert revoke "$T/certs" evil || t_fail "cert revoke failed"
[ -f "$T/certs/crl.pem" ] || t_fail "no crl.pem"
wait_log "reloaded the crl"
send evil && t_fail "a revoked certificate was accepted"
grep -qi "revoked\|certificate" "$T/out" || t_fail "no clear error for the revoked certificate"
send cli || t_fail "cli refused after evil's revocation"

# (4) lifetimes and renewal
openssl x509 -in "$T/certs/cli.pem" -noout -checkend $((91 * 86400)) >/dev/null &&
	t_fail "a new certificate lasts more than 90 days"
openssl x509 -in "$T/certs/cli.pem" -noout -checkend $((89 * 86400)) >/dev/null ||
	t_fail "a new certificate lasts less than 89 days"
old=$(openssl x509 -in "$T/certs/cli.pem" -noout -serial)
"$FERRY" cert renew "$T/certs" cli --days 30 || t_fail "cert renew failed"
[ "$(openssl x509 -in "$T/certs/cli.pem" -noout -serial)" != "$old" ] || t_fail "renew kept the certificate"
[ "$(stat -c %a "$T/certs/cli.key")" = 600 ] || t_fail "renewed key not 0600"
send cli || t_fail "the renewed certificate was refused"
# the agent's own certificate renewed: reloaded without a restart
"$FERRY" cert renew "$T/certs" srv --days 20 || t_fail "cert renew srv failed"
wait_log "reloaded the certificate"
end=$(openssl x509 -in "$T/certs/srv.pem" -noout -enddate | cut -d= -f2)
got=$(echo | ip netns exec "$(h_ns b)" openssl s_client -connect "$to" -cert "$T/certs/cli.pem" \
	-key "$T/certs/cli.key" -CAfile "$T/certs/ca.pem" 2>/dev/null |
	openssl x509 -noout -enddate | cut -d= -f2)
[ "$got" = "$end" ] || t_fail "the agent still presents its old certificate ($got, want $end)"
send cli || t_fail "cli refused after the agent's renewal"

# (5) key modes
chmod 640 "$T/certs/cli.key"
send cli && t_fail "a group-readable private key was used"
grep -q "readable by group or others" "$T/out" || t_fail "no clear error for the key mode"
chmod 600 "$T/certs/cli.key"
kill -0 "$srvpid" || t_fail "ferry serve died"
echo PASS
