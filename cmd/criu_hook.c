/* ferry criu-hook: CRIU's action script of a post-copy `ferry migrate` when
 * the static build/ferry-criu-hook is missing (run by a shell script for
 * post-dump only, see migrate/migrate_postcopy.c). The logic is criu/hook.c,
 * the same as that program's. */
#include <stdio.h>

#include "cmd/cmd.h"
#include "criu/hook.h"

int cmd_criu_hook(int argc, char **argv, const struct global_opts *g)
{
	enum criu_hook_result r = criu_hook_run();

	(void)argc;
	(void)argv;
	(void)g;
	if (r == CRIU_HOOK_USAGE) {
		fprintf(stderr, "ferry criu-hook: only CRIU runs this, during `ferry migrate`\n");
		return FX_USAGE;
	}
	return r == CRIU_HOOK_OK ? FX_OK : FX_FAIL;
}
