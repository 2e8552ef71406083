#!/bin/bash
# A malicious or broken authenticated peer: manifests naming ../x, absolute
# paths or names with a NUL byte, an oversize frame, an unknown frame version,
# out-of-order messages and a truncated stream. The receiver refuses each with
# a clear error, writes nothing outside its state dir and keeps serving.
. "$TESTS_ROOT/lib/common.sh"
t_init transport_badpeer
. "$TESTS_ROOT/lib/hosts.sh"
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

hosts_setup badpeer 14
h_certs "$T/certs" srv cli
mkdir -p "$T/state"
h_serve a "$T/state/sub" "$T/certs" srv
to="$(h_addr a):7000"

declare -A want=(
	[dotdot]='invalid file entry|unsafe file name'
	[absolute]='invalid file entry|unsafe file name'
	[nul]='NUL byte'
	[oversize]='oversize frame'
	[badversion]='unsupported frame version'
	[outoforder]='unsupported request|protocol violation'
	[truncate]='closed unexpectedly|lost'
)
for kind in dotdot absolute nul oversize badversion outoforder truncate; do
	h_exec b "$WIRETOOL" evil-offer "$to" "$T/certs" cli srv "$kind" >"$T/out" 2>&1 ||
		{ cat "$T/out"; t_fail "$kind: receiver did not refuse"; }
	cat "$T/out"
	sleep 0.2
	tail -1 "$H_LOG" | grep -Eq "${want[$kind]}" || { cat "$H_LOG"; t_fail "$kind: log lacks /${want[$kind]}/"; }
done
# version negotiation: a newer peer is answered with our version; a peer that
# only speaks future versions is refused with a clear message
h_exec b "$WIRETOOL" evil-offer "$to" "$T/certs" cli srv newer | tee "$T/out"
grep -q "chose protocol version 2" "$T/out" || t_fail "no version chosen for a newer peer"
h_exec b "$WIRETOOL" evil-offer "$to" "$T/certs" cli srv future | tee "$T/out"
grep -q "no common protocol version" "$T/out" || t_fail "future-only peer not refused clearly"

[ ! -e "$T/state/x" ] && [ ! -e /tmp/x ] || t_fail "a peer's file name escaped the state dir"
[ -z "$(ls -A "$T/state/sub/incoming")" ] || t_fail "refused offers left data behind"
kill -0 "$H_PID" || t_fail "ferry serve died"

# still serving
mkdir -p "$T/set"
head -c 100000 /dev/urandom >"$T/set/p.img"
id=$("$WIRETOOL" mkset "$T/set" web)
h_exec b "$FERRY" send "$T/set" --to "$to" --tls "$T/certs" --name cli --peer srv
[ -f "$T/state/sub/sets/cli/$id/p.img" ] || t_fail "set missing after the bad peers"
echo PASS
