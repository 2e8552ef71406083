#!/bin/bash
# wl_file in a container tenant: dump (stops it), restore, it verifies itself.
. "$TESTS_ROOT/lib/common.sh"
t_init cr_file
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_workload_test cr-file wl_file
