/* Tenant registry: STATE_DIR/tenants/NAME/record holds one tenant as
 * "key=value" lines (values escaped: \\, \n, \xHH), written atomically.
 * Locks live apart from the records (STATE_DIR/locks/NAME.lock) so that
 * removing a tenant's directory never races with a lock holder. */
#define LOG_PREFIX "registry"
#include "tenant/registry.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/rootfs.h"

#define RECORD_FILE  "record"
#define RECORD_MAGIC "ferry-tenant 1"
#define RECORD_MAX   (1u << 20)

static const char *const kind_names[] = {
    [TK_CONTAINER] = "container", [TK_PROCTREE] = "proctree", [TK_VM] = "vm"};
static const char *const state_names[] = {
    [TS_RUNNING] = "running", [TS_FROZEN] = "frozen", [TS_DUMPED] = "dumped", [TS_GONE] = "gone"};

const char *tenant_kind_str(enum tenant_kind k)
{
	return (k >= TK_CONTAINER && k <= TK_VM) ? kind_names[k] : "unknown";
}

Ferry__TenantKind tenant_kind_to_pb(enum tenant_kind k)
{
	switch (k) {
	case TK_CONTAINER:
		return FERRY__TENANT_KIND__TENANT_CONTAINER;
	case TK_PROCTREE:
		return FERRY__TENANT_KIND__TENANT_PROCTREE;
	case TK_VM:
		return FERRY__TENANT_KIND__TENANT_VM;
	}
	return FERRY__TENANT_KIND__TENANT_UNKNOWN;
}

int tenant_kind_from_pb(Ferry__TenantKind p, enum tenant_kind *k)
{
	switch (p) {
	case FERRY__TENANT_KIND__TENANT_CONTAINER:
		*k = TK_CONTAINER;
		return 0;
	case FERRY__TENANT_KIND__TENANT_PROCTREE:
		*k = TK_PROCTREE;
		return 0;
	case FERRY__TENANT_KIND__TENANT_VM:
		*k = TK_VM;
		return 0;
	default:
		return -1;
	}
}

const char *tenant_state_str(enum tenant_state s)
{
	return (s >= TS_RUNNING && s <= TS_GONE) ? state_names[s] : "unknown";
}

void tenant_rec_free(struct tenant_rec *r)
{
	if (!r->argv)
		return;
	for (int i = 0; i < r->argc; i++)
		free(r->argv[i]);
	free(r->argv);
	r->argv = NULL;
	r->argc = 0;
}

int tenant_rec_set_argv(struct tenant_rec *r, int argc, char *const *argv, ferr_t *err)
{
	char **v = calloc((size_t)argc + 1, sizeof(*v));

	if (!v)
		return ferr_set(err, FX_FAIL, "out of memory");
	for (int i = 0; i < argc; i++) {
		v[i] = strdup(argv[i]);
		if (!v[i]) {
			for (int j = 0; j < i; j++)
				free(v[j]);
			free(v);
			return ferr_set(err, FX_FAIL, "out of memory");
		}
	}
	tenant_rec_free(r);
	r->argv = v;
	r->argc = argc;
	return 0;
}

/* ---- coding ---- */

struct sbuf {
	char *p;
	size_t len, cap;
	bool oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 1024;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *np = realloc(b->p, cap);
		if (!np) {
			b->oom = true;
			return;
		}
		b->p = np;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void sb_val(struct sbuf *b, const char *key, const char *val)
{
	sb_put(b, key, strlen(key));
	sb_put(b, "=", 1);
	for (const unsigned char *s = (const unsigned char *)val; *s; s++) {
		char esc[5];
		if (*s == '\\')
			sb_put(b, "\\\\", 2);
		else if (*s == '\n')
			sb_put(b, "\\n", 2);
		else if (*s < 0x20 || *s == 0x7f) {
			snprintf(esc, sizeof(esc), "\\x%02x", *s);
			sb_put(b, esc, 4);
		} else
			sb_put(b, (const char *)s, 1);
	}
	sb_put(b, "\n", 1);
}

static void sb_int(struct sbuf *b, const char *key, int64_t v)
{
	char num[32];

	snprintf(num, sizeof(num), "%" PRId64, v);
	sb_val(b, key, num);
}

int tenant_rec_encode(const struct tenant_rec *r, char **buf, size_t *len, ferr_t *err)
{
	struct sbuf b = {0};
	char num[32];

	sb_put(&b, RECORD_MAGIC "\n", strlen(RECORD_MAGIC) + 1);
	sb_val(&b, "name", r->name);
	sb_val(&b, "kind", tenant_kind_str(r->kind));
	sb_val(&b, "state", tenant_state_str(r->state));
	sb_int(&b, "init_pid", r->init_pid);
	snprintf(num, sizeof(num), "%" PRIu64, r->init_start);
	sb_val(&b, "init_start", num);
	sb_val(&b, "rootfs", r->rootfs);
	if (r->image[0])
		sb_val(&b, "image", r->image);
	sb_val(&b, "net_addr", r->net.addr);
	sb_val(&b, "net_host_if", r->net.host_if);
	sb_val(&b, "net_tenant_if", r->net.tenant_if);
	sb_int(&b, "created", r->created);
	sb_int(&b, "updated", r->updated);
	sb_val(&b, "last_dump", r->last_dump);
	sb_int(&b, "id_base", r->iso.id_base);
	sb_int(&b, "id_count", r->iso.id_count);
	sb_int(&b, "mem_max", r->iso.mem_max);
	sb_int(&b, "pids_max", r->iso.pids_max);
	sb_int(&b, "cpu_milli", r->iso.cpu_milli);
	sb_int(&b, "io_weight", r->iso.io_weight);
	sb_int(&b, "hardened", r->iso.hardened);
	sb_int(&b, "argc", r->argc);
	for (int i = 0; i < r->argc; i++)
		sb_val(&b, "arg", r->argv[i]);
	if (b.oom) {
		free(b.p);
		return ferr_set(err, FX_FAIL, "out of memory encoding tenant %s", r->name);
	}
	*buf = b.p;
	*len = b.len;
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Unescape in place; -1 on a bad escape. */
static int unescape(char *s)
{
	char *w = s;

	for (char *r = s; *r; r++) {
		if (*r != '\\') {
			*w++ = *r;
			continue;
		}
		r++;
		if (*r == '\\')
			*w++ = '\\';
		else if (*r == 'n')
			*w++ = '\n';
		else if (*r == 'x' && hexval(r[1]) >= 0 && hexval(r[2]) >= 0) {
			int c = hexval(r[1]) * 16 + hexval(r[2]);
			if (c == 0)
				return -1;
			*w++ = (char)c;
			r += 2;
		} else
			return -1;
	}
	*w = '\0';
	return 0;
}

static int parse_i64(const char *v, int64_t *out)
{
	char *end;

	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno || end == v || *end)
		return -1;
	*out = x;
	return 0;
}

static int copy_field(char *dst, size_t cap, const char *v)
{
	return snprintf(dst, cap, "%s", v) >= (int)cap ? -1 : 0;
}

static int lookup(const char *const *names, int lo, int hi, const char *v)
{
	for (int i = lo; i <= hi; i++)
		if (!strcmp(names[i], v))
			return i;
	return -1;
}

/* An isolation field: true when k is one. */
static bool decode_iso(struct tenant_iso *iso, const char *k, int64_t n)
{
	if (!strcmp(k, "id_base"))
		iso->id_base = (uint32_t)n;
	else if (!strcmp(k, "id_count"))
		iso->id_count = (uint32_t)n;
	else if (!strcmp(k, "mem_max"))
		iso->mem_max = n;
	else if (!strcmp(k, "pids_max"))
		iso->pids_max = n;
	else if (!strcmp(k, "cpu_milli"))
		iso->cpu_milli = n;
	else if (!strcmp(k, "io_weight"))
		iso->io_weight = n;
	else if (!strcmp(k, "hardened"))
		iso->hardened = n != 0;
	else
		return false;
	return true;
}

/* One "key=value" line into r; argi counts "arg" lines. */
static int decode_line(struct tenant_rec *r, const char *k, const char *v, int *argi)
{
	int64_t n;
	int e;

	if (!strcmp(k, "name"))
		return copy_field(r->name, sizeof(r->name), v);
	if (!strcmp(k, "kind")) {
		if ((e = lookup(kind_names, TK_CONTAINER, TK_VM, v)) < 0)
			return -1;
		r->kind = (enum tenant_kind)e;
		return 0;
	}
	if (!strcmp(k, "state")) {
		if ((e = lookup(state_names, TS_RUNNING, TS_GONE, v)) < 0)
			return -1;
		r->state = (enum tenant_state)e;
		return 0;
	}
	if (!strcmp(k, "rootfs"))
		return copy_field(r->rootfs, sizeof(r->rootfs), v);
	if (!strcmp(k, "image"))
		return copy_field(r->image, sizeof(r->image), v);
	if (!strcmp(k, "net_addr"))
		return copy_field(r->net.addr, sizeof(r->net.addr), v);
	if (!strcmp(k, "net_host_if"))
		return copy_field(r->net.host_if, sizeof(r->net.host_if), v);
	if (!strcmp(k, "net_tenant_if"))
		return copy_field(r->net.tenant_if, sizeof(r->net.tenant_if), v);
	if (!strcmp(k, "last_dump"))
		return copy_field(r->last_dump, sizeof(r->last_dump), v);
	if (!strcmp(k, "init_start")) {
		char *end;
		errno = 0;
		r->init_start = strtoull(v, &end, 10);
		return (errno || end == v || *end) ? -1 : 0;
	}
	if (!strcmp(k, "arg")) {
		if (!r->argv || *argi >= r->argc || !(r->argv[*argi] = strdup(v)))
			return -1;
		(*argi)++;
		return 0;
	}
	if (parse_i64(v, &n) < 0)
		return strcmp(k, "init_pid") && strcmp(k, "created") && strcmp(k, "updated") &&
			       strcmp(k, "argc")
			   ? 0 /* unknown key from a newer ferry: ignore */
			   : -1;
	if (decode_iso(&r->iso, k, n))
		return 0;
	if (!strcmp(k, "init_pid"))
		r->init_pid = (pid_t)n;
	else if (!strcmp(k, "created"))
		r->created = n;
	else if (!strcmp(k, "updated"))
		r->updated = n;
	else if (!strcmp(k, "argc")) {
		if (r->argv || n < 0 || n > 65536 ||
		    !(r->argv = calloc((size_t)n + 1, sizeof(char *))))
			return -1;
		r->argc = (int)n;
	}
	return 0;
}

int tenant_rec_decode(const char *buf, struct tenant_rec *out, ferr_t *err)
{
	char *copy = strdup(buf), *save = NULL;
	int argi = 0, line = 1;

	memset(out, 0, sizeof(*out));
	if (!copy)
		return ferr_set(err, FX_FAIL, "out of memory");
	char *l = strtok_r(copy, "\n", &save);
	if (!l || strcmp(l, RECORD_MAGIC)) {
		free(copy);
		return ferr_set(err, FX_INTEGRITY, "not a ferry tenant record (bad first line)");
	}
	while ((l = strtok_r(NULL, "\n", &save))) {
		char *eq = strchr(l, '=');
		line++;
		if (!eq)
			goto bad;
		*eq = '\0';
		if (unescape(eq + 1) < 0 || decode_line(out, l, eq + 1, &argi) < 0)
			goto bad;
	}
	free(copy);
	if (!out->name[0] || !out->kind || !out->state || argi != out->argc) {
		tenant_rec_free(out);
		return ferr_set(err, FX_INTEGRITY, "incomplete tenant record");
	}
	return 0;
bad:
	free(copy);
	tenant_rec_free(out);
	return ferr_set(err, FX_INTEGRITY, "bad tenant record line %d", line);
}

/* ---- processes ---- */

int proc_start_time(pid_t pid, uint64_t *start, ferr_t *err)
{
	char path[64], *buf = NULL;
	unsigned long long st = 0;
	char state = 0;

	if (pid <= 0)
		return ferr_set(err, FX_NOTFOUND, "no process %d", (int)pid);
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (fs_read_all(path, &buf, NULL, 4096, err) < 0)
		return -1;
	/* comm may contain spaces and parentheses: parse after the last ')' */
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1,
			 " %c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d "
			 "%*d %*d %*d %llu",
			 &state, &st) != 2) {
		free(buf);
		return ferr_set(err, FX_FAIL, "cannot parse %s", path);
	}
	free(buf);
	if (state == 'Z' || state == 'X')
		return ferr_set(err, FX_NOTFOUND, "process %d is a zombie", (int)pid);
	*start = st;
	return 0;
}

bool tenant_pid_alive(pid_t pid, uint64_t start)
{
	uint64_t st;

	if (proc_start_time(pid, &st, NULL) < 0)
		return false;
	return start == 0 || st == start;
}

/* ---- store ---- */

int registry_tenant_dir(const char *state_dir, const char *name, char *out, size_t len, ferr_t *err)
{
	if (!tenant_name_valid(name))
		return ferr_set(
		    err, FX_USAGE,
		    "invalid tenant name '%s': use 1-63 of [A-Za-z0-9_.-], not starting "
		    "with '.' or '-'",
		    name);
	return xsnprintf(out, len, err, "%s/tenants/%s", state_dir, name);
}

static int record_path(const char *state_dir, const char *name, char *out, size_t len, ferr_t *err)
{
	char dir[PATH_MAX];

	if (registry_tenant_dir(state_dir, name, dir, sizeof(dir), err) < 0)
		return -1;
	return xsnprintf(out, len, err, "%s/" RECORD_FILE, dir);
}

int registry_init(const char *state_dir, ferr_t *err)
{
	char p[PATH_MAX];

	if (xsnprintf(p, sizeof(p), err, "%s/tenants", state_dir) < 0 ||
	    fs_mkdir_p(p, 0700, err) < 0)
		return ferr_wrap(err, "state directory %s", state_dir);
	if (xsnprintf(p, sizeof(p), err, "%s/locks", state_dir) < 0 || fs_mkdir_p(p, 0700, err) < 0)
		return ferr_wrap(err, "state directory %s", state_dir);
	return 0;
}

int registry_load(const char *state_dir, const char *name, struct tenant_rec *out, ferr_t *err)
{
	char p[PATH_MAX], *buf = NULL;

	memset(out, 0, sizeof(*out));
	if (record_path(state_dir, name, p, sizeof(p), err) < 0)
		return -1;
	if (fs_read_all(p, &buf, NULL, RECORD_MAX, err) < 0) {
		if (err && err->code == FX_NOTFOUND)
			return ferr_set(err, FX_NOTFOUND, "no tenant '%s' (see 'ferry ps')", name);
		return -1;
	}
	int r = tenant_rec_decode(buf, out, err);
	free(buf);
	if (r < 0)
		return ferr_wrap(err, "%s", p);
	if (strcmp(out->name, name)) {
		tenant_rec_free(out);
		return ferr_set(err, FX_INTEGRITY, "%s: record names tenant '%s'", p, out->name);
	}
	return 0;
}

int registry_save(const char *state_dir, const struct tenant_rec *rec, ferr_t *err)
{
	char dir[PATH_MAX], p[PATH_MAX], *buf;
	size_t len;

	if (registry_tenant_dir(state_dir, rec->name, dir, sizeof(dir), err) < 0 ||
	    registry_init(state_dir, err) < 0 || fs_mkdir_p(dir, 0700, err) < 0 ||
	    xsnprintf(p, sizeof(p), err, "%s/" RECORD_FILE, dir) < 0)
		return -1;
	if (tenant_rec_encode(rec, &buf, &len, err) < 0)
		return -1;
	int r = fs_write_atomic(p, buf, len, 0600, err);
	free(buf);
	return r < 0 ? ferr_wrap(err, "save tenant %s", rec->name) : 0;
}

int registry_remove(const char *state_dir, const char *name, ferr_t *err)
{
	char dir[PATH_MAX], p[PATH_MAX];

	if (registry_tenant_dir(state_dir, name, dir, sizeof(dir), err) < 0 ||
	    xsnprintf(p, sizeof(p), err, "%s/" RECORD_FILE, dir) < 0)
		return -1;
	if (access(p, F_OK) < 0)
		return ferr_set(err, FX_NOTFOUND, "no tenant '%s' (see 'ferry ps')", name);
	/* the record goes first: a crash half-way leaves no half tenant */
	if (unlink(p) < 0)
		return ferr_sys(err, FX_FAIL, "remove %s", p);
	/* an image tenant's overlay (rootfs.h), if still mounted */
	if (xsnprintf(p, sizeof(p), err, "%s/root", dir) < 0 || rootfs_umount(p, err) < 0)
		return -1;
	return fs_rm_rf(dir, err);
}

static int cmp_rec(const void *a, const void *b)
{
	return strcmp(((const struct tenant_rec *)a)->name, ((const struct tenant_rec *)b)->name);
}

int registry_list(const char *state_dir, struct tenant_rec **recs, size_t *n, ferr_t *err)
{
	char p[PATH_MAX];
	struct tenant_rec *v = NULL;
	size_t cnt = 0, cap = 0;
	struct dirent *de;
	DIR *d;

	*recs = NULL;
	*n = 0;
	if (xsnprintf(p, sizeof(p), err, "%s/tenants", state_dir) < 0)
		return -1;
	d = opendir(p);
	if (!d)
		return errno == ENOENT ? 0 : ferr_sys(err, FX_FAIL, "open %s", p);
	while ((de = readdir(d))) {
		ferr_t e = {0};
		if (!tenant_name_valid(de->d_name))
			continue;
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			struct tenant_rec *nv = realloc(v, cap * sizeof(*v));
			if (!nv) {
				ferr_set(err, FX_FAIL, "out of memory listing tenants");
				goto fail;
			}
			v = nv;
		}
		if (registry_load(state_dir, de->d_name, &v[cnt], &e) < 0) {
			if (e.code != FX_NOTFOUND) /* a directory being created or removed */
				pr_warn("skipping tenant %s: %s", de->d_name, e.msg);
			continue;
		}
		cnt++;
	}
	closedir(d);
	if (cnt)
		qsort(v, cnt, sizeof(*v), cmp_rec);
	*recs = v;
	*n = cnt;
	return 0;
fail:
	closedir(d);
	for (size_t i = 0; i < cnt; i++)
		tenant_rec_free(&v[i]);
	free(v);
	return -1;
}

int registry_lock(const char *state_dir, const char *name, ferr_t *err)
{
	char p[PATH_MAX];
	int fd;

	if (!tenant_name_valid(name))
		return registry_tenant_dir(state_dir, name, p, sizeof(p), err);
	if (registry_init(state_dir, err) < 0 ||
	    xsnprintf(p, sizeof(p), err, "%s/locks/%s.lock", state_dir, name) < 0)
		return -1;
	fd = open(p, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return ferr_sys(err, FX_FAIL, "open lock %s", p);
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;
		close(fd);
		if (e == EWOULDBLOCK)
			return ferr_set(err, FX_CONFLICT,
					"tenant '%s' is busy: another ferry command works on it",
					name);
		errno = e;
		return ferr_sys(err, FX_FAIL, "lock %s", p);
	}
	return fd;
}

int registry_refresh(const char *state_dir, struct tenant_rec *rec, ferr_t *err)
{
	if (rec->state != TS_RUNNING && rec->state != TS_FROZEN)
		return 0;
	if (tenant_pid_alive(rec->init_pid, rec->init_start))
		return 0;
	pr_info("tenant %s: init %d is gone", rec->name, (int)rec->init_pid);
	rec->state = TS_GONE;
	rec->init_pid = 0;
	rec->init_start = 0;
	rec->updated = wall_time();
	return registry_save(state_dir, rec, err);
}

/* ---- has CRIU let go of the tenant? ---- */

static unsigned long long status_field(const char *buf, const char *key, int base)
{
	const char *p = strstr(buf, key);

	return p ? strtoull(p + strlen(key), NULL, base) : 0;
}

/* Alive and free (not traced, not stopped, no SIGKILL on its way), gone,
 * or still in CRIU's hands. */
static enum tenant_settle settle_once(pid_t pid, uint64_t start)
{
	char path[64], *buf = NULL;
	enum tenant_settle s = SETTLE_ALIVE;

	if (!tenant_pid_alive(pid, start))
		return SETTLE_GONE;
	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if (fs_read_all(path, &buf, NULL, 1 << 16, NULL) < 0)
		return SETTLE_GONE;
	const char *st = strstr(buf, "\nState:");
	char state = 0;
	if (st) {
		st += strlen("\nState:");
		state = st[strspn(st, " \t")];
	}
	unsigned long long kill_bit = 1ULL << (SIGKILL - 1);
	if (status_field(buf, "\nTracerPid:", 10) != 0 || state == 't' || state == 'T' ||
	    (status_field(buf, "\nSigPnd:", 16) & kill_bit) ||
	    (status_field(buf, "\nShdPnd:", 16) & kill_bit))
		s = SETTLE_BUSY;
	free(buf);
	return s;
}

/* Two free looks 50 ms apart make "alive"; at most wait_ms. */
enum tenant_settle tenant_settle(pid_t pid, uint64_t start, int wait_ms)
{
	uint64_t t0 = now_ns();
	int free_seen = 0;

	for (;;) {
		enum tenant_settle s = settle_once(pid, start);
		if (s == SETTLE_GONE)
			return s;
		free_seen = s == SETTLE_ALIVE ? free_seen + 1 : 0;
		if (free_seen >= 2)
			return SETTLE_ALIVE;
		if (ms_since(t0) > wait_ms)
			return SETTLE_BUSY;
		struct timespec ts = {0, 50 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

bool tenant_still_alive(pid_t pid, uint64_t start, int wait_ms)
{
	return tenant_settle(pid, start, wait_ms) != SETTLE_GONE;
}
