#!/bin/bash
# wl_memory with 256 MiB of touched memory in a container tenant: dump,
# restore, every page verified; the manifest lists the pages' images.
. "$TESTS_ROOT/lib/common.sh"
t_init cr_memory
. "$TESTS_ROOT/lib/cr.sh"
cr_require
cr_workload_test cr-memory wl_memory --mib 256
size=$(du -sm "$T/img" | cut -f1)
t_log "image set: $size MiB"
((size >= 200)) || t_fail "image set of $size MiB is too small for 256 MiB of memory"
