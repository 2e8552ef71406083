#!/bin/bash
# Local hardening (no network peer):
# (1) the post-copy action socket: a local user's post-dump is refused by the
#     listener's SO_PEERCRED check, and the action script does not speak to a
#     listener of another user;
# (2) the console log ferry creates as root inside a tenant's root: a link the
#     tenant planted (.ferry -> outside, or console.log -> a host file) never
#     makes ferry create or write anything outside that root;
# (3) atomic writes never follow a link planted at their temporary name.
# (Private key modes: peer_authz.)
. "$TESTS_ROOT/lib/common.sh"
t_init peer_local
WIRETOOL=$(dirname "$FERRY")/tests/tools/wiretool

# (1)
"$WIRETOOL" hookcred || t_fail "the post-copy action socket trusts a local user"

# (2)
mkdir -p "$T/ok" "$T/r1" "$T/r2/.ferry" "$T/outside"
"$WIRETOOL" inroot "$T/ok" || t_fail "a plain root was not prepared"
[ -f "$T/ok/.ferry/console.log" ] || t_fail "no console log in a plain root"
ln -s "$T/outside" "$T/r1/.ferry"
"$WIRETOOL" inroot "$T/r1" || true
[ -z "$(ls -A "$T/outside")" ] || t_fail "ferry created a file outside the tenant's root through .ferry"
echo precious >"$T/outside/victim"
ln -s "$T/outside/victim" "$T/r2/.ferry/console.log"
"$WIRETOOL" inroot "$T/r2" && t_fail "a console log that is a link was accepted"
[ "$(cat "$T/outside/victim")" = precious ] || t_fail "ferry wrote through a planted link"
[ "$(stat -c %a "$T/outside/victim")" = 644 ] || t_fail "the victim's mode changed"

# (3)
mkdir -p "$T/atomic"
"$WIRETOOL" atomic "$T/atomic" || t_fail "an atomic write followed a planted link"
echo PASS
