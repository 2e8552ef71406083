#!/bin/bash
# Dump refuses bad requests with a clear error and leaves the registry and
# the tenant as they were: unknown tenant or pid, a directory that already
# holds an image set or anything else, a tenant that is not running.
. "$TESTS_ROOT/lib/common.sh"
t_init dump_errors
. "$TESTS_ROOT/lib/cr.sh"
cr_require

t_expect_fail 3 "no tenant named nosuch" "$FERRY" dump nosuch -D "$T/x1"
t_expect_fail 3 "no running process with pid" "$FERRY" dump --pid 999999 -D "$T/x2"
t_expect_fail 2 "usage" "$FERRY" dump -D "$T/x3"
t_expect_fail 2 "usage" "$FERRY" dump de-a
t_expect_fail 2 "not both" "$FERRY" dump de-a --pid 1 -D "$T/x4"

R="$T/rootfs"
cr_start de-a "$R" -- /bin/wl_counter --interval-ms 50
pid=$(cr_pid de-a)

mkdir -p "$T/full"
echo hello >"$T/full/something"
t_expect_fail 4 "is not empty" "$FERRY" dump de-a -D "$T/full"
[ "$(cr_state de-a)" = running ] && kill -0 "$pid" || t_fail "de-a disturbed by a refused dump"

t_log "a frozen state left by an interrupted dump does not block the next one"
sed -i 's/^state=running$/state=frozen/' "$FERRY_STATE_DIR/tenants/de-a/record"
grep -q '^state=frozen$' "$FERRY_STATE_DIR/tenants/de-a/record" ||
	t_fail "could not fake a stale frozen state"
"$FERRY" dump de-a -D "$T/set" --leave-running >/dev/null || t_fail "dump --leave-running failed"
[ "$(cr_state de-a)" = running ] && [ "$(cr_pid de-a)" = "$pid" ] ||
	t_fail "de-a not running after --leave-running"
t_expect_fail 4 "already holds an image set" "$FERRY" dump de-a -D "$T/set"
[ "$(cr_state de-a)" = running ] || t_fail "de-a not running after a refused dump"
cr_verify de-a "$R"

t_log "a tenant that is not running any more"
"$FERRY" kill de-a >/dev/null 2>&1 || true
t_expect_fail 4 "de-a is not running" "$FERRY" dump de-a -D "$T/after-kill"
[ "$(cr_state de-a)" = gone ] || t_fail "de-a is $(cr_state de-a), want gone"
