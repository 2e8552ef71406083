#include "criu/locate.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"

#ifndef FERRY_DEPS_DIR
#define FERRY_DEPS_DIR ".deps"
#endif

static int set_out(char *out, size_t len, const char *path)
{
	if (snprintf(out, len, "%s", path) >= (int)len)
		return -1;
	return 0;
}

int criu_locate(const char *opt, char *out, size_t len, const char **source, ferr_t *err)
{
	const char *env = getenv("FERRY_CRIU");
	char *rec = NULL;

	if (opt && *opt) {
		if (access(opt, X_OK) < 0)
			return ferr_sys(err, FX_HOST, "--criu %s is not executable", opt);
		if (source)
			*source = "--criu";
		return set_out(out, len, opt);
	}
	if (env && *env) {
		if (access(env, X_OK) < 0)
			return ferr_sys(err, FX_HOST, "FERRY_CRIU=%s is not executable", env);
		if (source)
			*source = "FERRY_CRIU";
		return set_out(out, len, env);
	}
	if (fs_read_all(FERRY_DEPS_DIR "/criu-path", &rec, NULL, PATH_MAX, NULL) == 0) {
		rec[strcspn(rec, "\n")] = '\0';
		if (*rec && access(rec, X_OK) == 0) {
			if (source)
				*source = "make deps";
			int r = set_out(out, len, rec);
			free(rec);
			return r;
		}
		free(rec);
	}
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
	char *dup = strdup(path), *save = NULL;
	for (char *d = strtok_r(dup, ":", &save); d; d = strtok_r(NULL, ":", &save)) {
		char cand[PATH_MAX];
		if (snprintf(cand, sizeof(cand), "%s/criu", d) >= (int)sizeof(cand))
			continue;
		if (access(cand, X_OK) == 0) {
			free(dup);
			if (source)
				*source = "PATH";
			return set_out(out, len, cand);
		}
	}
	free(dup);
	return ferr_set(err, FX_HOST,
			"CRIU not found: run 'make deps', or pass --criu PATH / set FERRY_CRIU");
}
