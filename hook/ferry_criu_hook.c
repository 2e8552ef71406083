/* ferry-criu-hook: CRIU's action script during a post-copy `ferry migrate`,
 * a small static program built next to build/ferry. The logic is
 * criu/hook.c (shared with `ferry criu-hook`, the fallback): see
 * criu/hook.h. */
#include <stdio.h>

#include "criu/hook.h"

int main(void)
{
	enum criu_hook_result r = criu_hook_run();

	if (r == CRIU_HOOK_USAGE)
		fputs("ferry-criu-hook: only CRIU runs this, during `ferry migrate`\n", stderr);
	return (int)r;
}
