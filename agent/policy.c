/* The agent's configuration file (policy.h). */
#include "agent/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/dst_check.h"

#define POLICY_LINE_MAX 4096

struct rule {
	char request[32];
	char peer[254];
};

struct policy {
	struct rule *r;
	size_t n;
	struct dst_policy intake; /* kinds, rootfs-under, subnet lines */
	bool kinds_set;		  /* a kinds line replaced the default */
};

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->r);
	free(p);
}

static bool known(const char *req, const char *const *names, size_t n)
{
	if (!strcmp(req, "*"))
		return true;
	for (size_t i = 0; i < n; i++)
		if (!strcmp(req, names[i]))
			return true;
	return false;
}

static int add_rule(struct policy *p, const char *req, const char *peer, ferr_t *err)
{
	struct rule *v = realloc(p->r, (p->n + 1) * sizeof(*v));

	if (!v)
		return ferr_set(err, FX_FAIL, "out of memory");
	p->r = v;
	snprintf(v[p->n].request, sizeof(v[p->n].request), "%s", req);
	snprintf(v[p->n].peer, sizeof(v[p->n].peer), "%s", peer);
	p->n++;
	return 0;
}

/* One "allow REQS PEERS" line (already split in words). */
static int parse_allow(struct policy *p, char *reqs, char *peers, const char *const *names,
		       size_t n_names, ferr_t *err)
{
	char *s1 = NULL, *s2 = NULL;

	for (char *r = strtok_r(reqs, ",", &s1); r; r = strtok_r(NULL, ",", &s1)) {
		if (!known(r, names, n_names) || strlen(r) >= sizeof(p->r->request))
			return ferr_set(err, FX_USAGE, "unknown request '%s'", r);
		char pcopy[POLICY_LINE_MAX];
		snprintf(pcopy, sizeof(pcopy), "%s", peers);
		for (char *q = strtok_r(pcopy, ",", &s2); q; q = strtok_r(NULL, ",", &s2)) {
			if (strlen(q) >= sizeof(p->r->peer))
				return ferr_set(err, FX_USAGE, "peer name too long");
			if (add_rule(p, r, q, err) < 0)
				return -1;
		}
	}
	return 0;
}

/* "kinds LIST", "rootfs-under DIR..." or "subnet CIDR..." (dst_check.h). */
static int parse_intake(struct policy *p, char **w, int n, ferr_t *err)
{
	int r = 0;

	if (n < 2)
		return ferr_set(err, FX_USAGE, "%s: expected a value", w[0]);
	if (!strcmp(w[0], "kinds") && !p->kinds_set) {
		p->intake.kinds = 0;
		p->kinds_set = true;
	}
	for (int i = 1; i < n && r == 0; i++) {
		if (!strcmp(w[0], "kinds"))
			r = dst_policy_add_kinds(&p->intake, w[i], err);
		else if (!strcmp(w[0], "rootfs-under"))
			r = dst_policy_add_root(&p->intake, w[i], err);
		else
			r = dst_policy_add_subnet(&p->intake, w[i], err);
	}
	return r;
}

#define POLICY_WORDS 40

static int parse_line(struct policy *p, char *line, const char *const *names, size_t n_names,
		      ferr_t *err)
{
	char *save = NULL, *w[POLICY_WORDS] = {0};
	int n = 0;

	line[strcspn(line, "#\n")] = '\0';
	for (char *t = strtok_r(line, " \t\r", &save); t; t = strtok_r(NULL, " \t\r", &save)) {
		if (n == POLICY_WORDS)
			return ferr_set(err, FX_USAGE, "too many words");
		w[n++] = t;
	}
	if (n == 0)
		return 0;
	if (!strcmp(w[0], "kinds") || !strcmp(w[0], "rootfs-under") || !strcmp(w[0], "subnet"))
		return parse_intake(p, w, n, err);
	if (!strcmp(w[0], "tune-host")) { /* the host settings the agent may change */
		if (n != 2 || strcmp(w[1], "userfaultfd"))
			return ferr_set(err, FX_USAGE, "expected 'tune-host userfaultfd'");
		p->intake.tune_uffd = true;
		return 0;
	}
	if (n != 3 || strcmp(w[0], "allow"))
		return ferr_set(
		    err, FX_USAGE,
		    "expected 'allow REQUEST[,...] PEER[,...]', 'kinds KIND[,...]', "
		    "'rootfs-under DIR...', 'subnet CIDR...' or 'tune-host userfaultfd'");
	return parse_allow(p, w[1], w[2], names, n_names, err);
}

struct policy *policy_load(const char *path, const char *const *names, size_t n_names, ferr_t *err)
{
	struct policy *p = calloc(1, sizeof(*p));
	char line[POLICY_LINE_MAX];
	FILE *f = fopen(path, "re");
	int no = 0;

	if (p)
		dst_policy_default(&p->intake);
	if (!p || !f) {
		if (!p)
			ferr_set(err, FX_FAIL, "out of memory");
		else
			ferr_sys(err, FX_USAGE, "open the agent configuration %s", path);
		goto fail;
	}
	while (fgets(line, sizeof(line), f)) {
		no++;
		if (!strchr(line, '\n') && !feof(f)) {
			ferr_set(err, FX_USAGE, "line too long");
			goto bad;
		}
		if (parse_line(p, line, names, n_names, err) < 0)
			goto bad;
	}
	fclose(f);
	return p;
bad:
	ferr_wrap(err, "%s:%d", path, no);
fail:
	if (f)
		fclose(f);
	policy_free(p);
	return NULL;
}

bool policy_allows(const struct policy *p, const char *request, const char *peer)
{
	if (!p)
		return true;
	for (size_t i = 0; i < p->n; i++)
		if ((!strcmp(p->r[i].request, "*") || !strcmp(p->r[i].request, request)) &&
		    (!strcmp(p->r[i].peer, "*") || !strcmp(p->r[i].peer, peer)))
			return true;
	return false;
}

size_t policy_rules(const struct policy *p)
{
	return p ? p->n : 0;
}

const struct dst_policy *policy_intake(const struct policy *p)
{
	return &p->intake;
}
