#!/bin/bash
# wl_timer in a container tenant: dump (stops it), restore, it verifies itself.
. "$TESTS_ROOT/lib/common.sh"
t_init cr_timer
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_workload_test cr-timer wl_timer
