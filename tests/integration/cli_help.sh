#!/bin/bash
# Every command's --help comes from its option table (cmd/opts.h): it exits
# 0 with "usage: ferry CMD" on stdout and lists every option of its synopsis;
# an unknown option is a usage error (exit code 2) with the synopsis on
# stderr. The command list is the one `ferry --help` prints.
. "$TESTS_ROOT/lib/common.sh"
t_init cli_help

cmds=$("$FERRY" --help | awk '/^Commands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { exit }')
[ -n "$cmds" ] || t_fail "no command list in ferry --help"
for c in $cmds; do
	[ "$c" = criu-hook ] && continue # CRIU's action script, not for people
	"$FERRY" "$c" --help >"$T/help" || t_fail "ferry $c --help: exit code $?"
	head -1 "$T/help" | grep -q "^usage: ferry $c" || t_fail "ferry $c --help: no usage line"
	# every --option of the synopsis is described below it
	for o in $(sed -n '1,/^$/p' "$T/help" | grep -o -- '--[a-z][a-z-]*' | sort -u); do
		grep -Eq "^  (-[a-zA-Z], )?$o( |$)" "$T/help" || t_fail "ferry $c --help: $o not described"
	done
	t_expect_fail 2 "^usage: ferry $c" "$FERRY" "$c" --no-such-option
done
echo PASS
