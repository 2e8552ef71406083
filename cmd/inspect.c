/* ferry inspect: what an image set or a snapshot holds, decoded from CRIU's
 * images (criu/inspect.h) and ferry's manifest. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "criu/inspect.h"
#include "lib/fsutil.h"
#include "lib/json.h"
#include "lib/util.h"
#include "proto/manifest.h"
#include "snapshot/repo.h"
#include "snapshot/repo_tree.h"
#include "tenant/registry.h"

struct inspect_args {
	const char *store, *key_file;
	bool json;
	char store_buf[4200], key_buf[4200];
};

static const struct opt inspect_opts[] = {
    {.name = "store",
     .type = OPT_STR,
     .off = offsetof(struct inspect_args, store),
     .arg = "DIR",
     .help = "the snapshot store, for an ID (default STATE/snapshots)"},
    {.name = "key-file",
     .type = OPT_STR,
     .off = offsetof(struct inspect_args, key_file),
     .arg = "FILE",
     .help = "the store's key (default STATE/snapshot.key)"},
    OPTS_JSON(struct inspect_args, json),
    {0},
};

static const struct cmd_spec inspect_spec = {
    .name = "inspect",
    .args = "ID|DIR",
    .min_args = 1,
    .max_args = 1,
    .about = "What an image set (a directory from `ferry dump` or a transfer) or a snapshot\n"
	     "of the store holds: tenant, process tree with PIDs, names and command lines\n"
	     "decoded from CRIU's images, each process's open files and sockets, memory,\n"
	     "timings; for a snapshot of a tenant with files of its own, the file-system\n"
	     "changes since the tenant's previous snapshot (+ new, ~ changed, - gone).\n",
    .opts = inspect_opts,
};

/* A snapshot's files and the parent they are compared with. */
struct fsview {
	const snapm_t *m, *parent;
	struct jw *w;
	unsigned n;
};

static const char *ftype(const FerrySnap__File *f)
{
	static const char *const t[] = {"file", "dir", "symlink", "chardev", "blockdev", "fifo"};

	return f->type < 6 ? (f->hardlink ? "hardlink" : t[f->type]) : "?";
}

static void change_text(char kind, const FerrySnap__File *f, void *arg)
{
	struct fsview *v = arg;

	if (v->n++ < 200)
		printf("    %c %-8s %s%s%s\n", kind, ftype(f), f->path, f->link ? " -> " : "",
		       f->link ? f->link : "");
}

static void change_json(char kind, const FerrySnap__File *f, void *arg)
{
	struct fsview *v = arg;
	char k[2] = {kind, 0};

	v->n++;
	jw_obj_begin(v->w, NULL);
	jw_str(v->w, "change", k);
	jw_str(v->w, "path", f->path);
	jw_str(v->w, "type", ftype(f));
	jw_uint(v->w, "size", f->size);
	jw_obj_end(v->w);
}

static void fs_text(struct fsview *v)
{
	const snapm_t *m = v->m;

	if (!m || !m->rootfs_kind) {
		printf("  files   none of its own (the tenant's files are not in the snapshot)\n");
		return;
	}
	printf("  files   %s %s: %u entries, changes since %s:\n", m->rootfs_kind,
	       m->image_id ? m->image_id
	       : m->rootfs ? m->rootfs
			   : "",
	       m->fs_entries, v->parent ? v->parent->id : "nothing (first snapshot)");
	repo_tree_diff(v->parent, m, change_text, v, NULL);
	if (v->n > 200)
		printf("    ... %u changes in all\n", v->n);
}

static void fs_json(struct fsview *v, struct jw *w)
{
	const snapm_t *m = v->m;

	if (!m || !m->rootfs_kind)
		return;
	v->w = w;
	jw_obj_begin(w, "files");
	jw_str(w, "kind", m->rootfs_kind);
	jw_str(w, "image", m->image_id);
	jw_str(w, "rootfs", m->rootfs);
	jw_uint(w, "entries", m->fs_entries);
	jw_str(w, "parent", v->parent ? v->parent->id : NULL);
	jw_arr_begin(w, "changes");
	repo_tree_diff(v->parent, m, change_json, v, NULL);
	jw_arr_end(w);
	jw_obj_end(w);
}

static void text(const char *what, const manifest_t *m, const struct insp *in, struct fsview *fv)
{
	char b[32];

	printf("%s\n", what);
	if (m) {
		enum tenant_kind k;
		printf("  tenant  %s (%s), set %s\n", m->tenant_name,
		       tenant_kind_from_pb(m->kind, &k) < 0 ? "unknown kind" : tenant_kind_str(k),
		       m->set_id);
		if (m->timings)
			printf("  timings freeze %.1f ms, frozen %.1f ms (memory dump %.1f, write "
			       "%.1f), dump %.1f ms\n",
			       m->timings->freeze_ms, m->timings->frozen_ms,
			       m->timings->mem_dump_ms, m->timings->mem_write_ms,
			       m->timings->total_ms);
	}
	printf("  memory  %s dumped\n", fmt_bytes(in->pages_bytes, b, sizeof(b)));
	printf("  %-7s %-7s %-7s %-16s %s\n", "PID", "PPID", "THREADS", "COMM", "CMDLINE");
	for (size_t i = 0; i < in->n_procs; i++) {
		const struct insp_proc *p = &in->procs[i];
		printf("  %-7u %-7u %-7u %-16s %s\n", p->pid, p->ppid, p->threads, p->comm,
		       p->cmdline);
		for (size_t f = 0; f < p->n_fds; f++)
			printf("          fd %-4u %s\n", p->fds[f].fd, p->fds[f].what);
	}
	if (fv)
		fs_text(fv);
}

static void json(const char *id, const char *dir, const manifest_t *m, const struct insp *in,
		 struct fsview *fv)
{
	struct jw w;

	jw_init(&w, stdout);
	jw_obj_begin(&w, NULL);
	jw_str(&w, "snapshot", id);
	jw_str(&w, "dir", dir);
	jw_str(&w, "tenant", m ? m->tenant_name : NULL);
	jw_uint(&w, "memory_dumped", in->pages_bytes);
	if (m && m->timings) {
		jw_double(&w, "freeze_ms", m->timings->freeze_ms);
		jw_double(&w, "frozen_ms", m->timings->frozen_ms);
		jw_double(&w, "dump_ms", m->timings->total_ms);
	}
	jw_arr_begin(&w, "processes");
	for (size_t i = 0; i < in->n_procs; i++) {
		const struct insp_proc *p = &in->procs[i];
		jw_obj_begin(&w, NULL);
		jw_int(&w, "pid", p->pid);
		jw_int(&w, "ppid", p->ppid);
		jw_int(&w, "pgid", p->pgid);
		jw_int(&w, "sid", p->sid);
		jw_int(&w, "threads", p->threads);
		jw_str(&w, "comm", p->comm);
		jw_str(&w, "cmdline", p->cmdline);
		jw_uint(&w, "vma_bytes", p->vma_bytes);
		jw_arr_begin(&w, "fds");
		for (size_t f = 0; f < p->n_fds; f++) {
			jw_obj_begin(&w, NULL);
			jw_int(&w, "fd", p->fds[f].fd);
			jw_str(&w, "what", p->fds[f].what);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
	}
	jw_arr_end(&w);
	if (fv)
		fs_json(fv, &w);
	jw_obj_end(&w);
	jw_finish(&w);
}

static int show_dir(const struct inspect_args *a, const char *id, const char *dir,
		    struct fsview *fv, ferr_t *err)
{
	manifest_t *m = NULL;
	struct insp in;
	char what[4300];

	if (criu_inspect(dir, &in, err) < 0)
		return -1;
	if (manifest_read(dir, &m, NULL) < 0)
		m = NULL;
	snprintf(what, sizeof(what), id ? "snapshot %s" : "image set %s", id ? id : dir);
	if (a->json)
		json(id, id ? NULL : dir, m, &in, fv);
	else
		text(what, m, &in, fv);
	manifest_free(m);
	criu_inspect_free(&in);
	return 0;
}

static int show_snapshot(struct inspect_args *a, const char *prefix, ferr_t *err)
{
	char id[REPO_ID_LEN + 1], dir[4200] = "";
	struct repo r;
	snapm_t *m = NULL, *parent = NULL;
	int rc = -1;

	if (repo_open(&r, a->store, a->key_file, err) < 0)
		return -1;
	if (repo_lock(&r, false, err) == 0 && repo_resolve(&r, prefix, id, err) == 0 &&
	    repo_read_manifest(&r, id, &m, err) == 0 &&
	    repo_tmpdir(&r, "inspect", dir, sizeof(dir), err) == 0 &&
	    repo_extract(&r, m, FERRY_SNAP__FILE_PART__PART_IMAGES, dir, err) == 0) {
		/* a parent removed since: compared with nothing */
		if (m->parent && repo_read_manifest(&r, m->parent, &parent, NULL) < 0)
			parent = NULL;
		struct fsview fv = {.m = m, .parent = parent};
		rc = show_dir(a, id, dir, &fv, err);
	}
	if (dir[0])
		fs_rm_rf(dir, NULL);
	snapm_free(parent);
	snapm_free(m);
	repo_close(&r);
	return rc;
}

int cmd_inspect(int argc, char **argv, const struct global_opts *g)
{
	struct inspect_args a = {0};
	struct stat st;
	ferr_t err = {0};
	int pos, rc;

	if ((rc = opts_parse(&inspect_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	if (!a.store) {
		snprintf(a.store_buf, sizeof(a.store_buf), "%s/snapshots", g->state_dir);
		a.store = a.store_buf;
	}
	if (!a.key_file) {
		snprintf(a.key_buf, sizeof(a.key_buf), "%s/snapshot.key", g->state_dir);
		a.key_file = a.key_buf;
	}
	if (stat(argv[pos], &st) == 0 && S_ISDIR(st.st_mode))
		rc = show_dir(&a, NULL, argv[pos], NULL, &err);
	else
		rc = show_snapshot(&a, argv[pos], &err);
	return rc < 0 ? cmd_report("inspect", &err) : FX_OK;
}
