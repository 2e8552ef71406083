/* Source host facts for the manifest. */
#include "tenant/hostinfo.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "criu/rpc.h"
#include "lib/fsutil.h"

void hostinfo_parse_cpu_model(const char *cpuinfo, char *out, size_t len)
{
	const char *p = cpuinfo;

	out[0] = '\0';
	while (p && *p) {
		const char *eol = strchr(p, '\n');
		size_t l = eol ? (size_t)(eol - p) : strlen(p);
		if (!strncmp(p, "model name", 10)) {
			const char *colon = memchr(p, ':', l);
			if (colon) {
				const char *v = colon + 1;
				while (v < p + l && isspace((unsigned char)*v))
					v++;
				size_t vl = (size_t)(p + l - v);
				if (vl >= len)
					vl = len - 1;
				memcpy(out, v, vl);
				out[vl] = '\0';
				return;
			}
		}
		p = eol ? eol + 1 : NULL;
	}
}

int hostinfo_collect(const char *criu_path, struct hostinfo *h, ferr_t *err)
{
	struct utsname u;
	char *cpu = NULL;

	memset(h, 0, sizeof(*h));
	if (gethostname(h->hostname, sizeof(h->hostname) - 1) < 0)
		return ferr_sys(err, FX_FAIL, "gethostname");
	if (uname(&u) < 0)
		return ferr_sys(err, FX_FAIL, "uname");
	snprintf(h->kernel, sizeof(h->kernel), "%s %s %s %s", u.sysname, u.release, u.version,
		 u.machine);
	if (fs_read_all("/proc/cpuinfo", &cpu, NULL, 4 << 20, NULL) == 0) {
		hostinfo_parse_cpu_model(cpu, h->cpu_model, sizeof(h->cpu_model));
		free(cpu);
	}
	if (criu_path) {
		struct criu_version v;
		if (criu_get_version(criu_path, &v, err) < 0)
			return -1;
		snprintf(h->criu_version, sizeof(h->criu_version), "%s", v.text);
	}
	return 0;
}
