/* ferry logs: a tenant's console, as `podman logs` shows a container's: a
 * VM's serial port, a container's console log (both STATE_DIR/tenants/NAME/
 * console.log). With -f it follows the log until the tenant is gone or
 * ferry is interrupted. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "lib/util.h"
#include "tenant/registry.h"

struct logs_args {
	bool follow;
};

static const struct opt logs_opts[] = {
    {.name = "follow",
     .short_name = 'f',
     .type = OPT_FLAG,
     .off = offsetof(struct logs_args, follow),
     .help = "keep printing what the tenant writes until it is gone (or Ctrl-C)"},
    {0},
};

static const struct cmd_spec logs_spec = {
    .name = "logs",
    .args = "NAME",
    .min_args = 1,
    .max_args = 1,
    .about = "Print a tenant's console: a VM's serial port, a container's console log\n"
	     "(its stdout and stderr). The log lives in the tenant's state directory.\n",
    .opts = logs_opts,
};

/* Copy what fd holds from here on to stdout; < 0 on a read error. */
static int drain(int fd)
{
	char buf[65536];
	ssize_t n;

	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			return -1;
	fflush(stdout);
	return n < 0 ? -1 : 0;
}

/* Is the tenant still there (running or frozen)? */
static bool alive(const struct global_opts *g, const char *name)
{
	struct tenant_rec rec;

	if (registry_load(g->state_dir, name, &rec, NULL) < 0)
		return false;
	registry_refresh(g->state_dir, &rec, NULL);
	bool on = rec.state == TS_RUNNING || rec.state == TS_FROZEN;
	tenant_rec_free(&rec);
	return on;
}

static int do_logs(const struct global_opts *g, const char *name, bool follow, ferr_t *err)
{
	char dir[PATH_MAX], path[PATH_MAX];
	struct tenant_rec rec;
	int fd;

	if (registry_load(g->state_dir, name, &rec, err) < 0)
		return -1;
	tenant_rec_free(&rec);
	if (registry_tenant_dir(g->state_dir, name, dir, sizeof(dir), err) < 0 ||
	    xsnprintf(path, sizeof(path), err, "%s/console.log", dir) < 0)
		return -1;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
		return ferr_sys(err, errno == ENOENT ? FX_NOTFOUND : FX_FAIL,
				"console log of tenant %s", name);
	int r = drain(fd);
	while (r == 0 && follow) {
		bool on = alive(g, name);
		struct timespec ts = {0, 200 * 1000000};
		nanosleep(&ts, NULL);
		r = drain(fd);
		if (!on)
			break;
	}
	close(fd);
	if (r < 0)
		return ferr_sys(err, FX_FAIL, "console log of tenant %s", name);
	return 0;
}

int cmd_logs(int argc, char **argv, const struct global_opts *g)
{
	struct logs_args a = {0};
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&logs_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (do_logs(g, argv[pos], a.follow, &err) < 0)
		return cmd_report("logs", &err);
	return 0;
}
