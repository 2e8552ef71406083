/* Decoding a CRIU image set for `ferry inspect` (inspect.h). */
#include "criu/inspect.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "proto/criu_images.pb-c.h"
#include "proto/snapshot.pb-c.h"

#define IMG_MAX	   (256U << 20)
#define PAGE	   4096U
#define PE_PRESENT 4U

typedef int (*entry_fn)(const uint8_t *p, size_t n, void *arg);

/* Every entry of DIR/NAME; 0 without calling fn when the image is absent. */
static int for_entries(const char *dir, const char *name, entry_fn fn, void *arg, ferr_t *err)
{
	char path[4200], *buf;
	size_t len, off = 8;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (access(path, F_OK) < 0)
		return 0;
	if (fs_read_all(path, &buf, &len, IMG_MAX, err) < 0)
		return -1;
	while (off + 4 <= len) {
		uint32_t sz;
		memcpy(&sz, buf + off, 4);
		off += 4;
		if (sz > len - off || fn((const uint8_t *)buf + off, sz, arg) < 0) {
			free(buf);
			return ferr_set(err, FX_INTEGRITY, "%s: an entry does not decode", path);
		}
		off += sz;
	}
	free(buf);
	return 0;
}

/* ---- files.img: id -> what ---- */

struct files {
	struct {
		uint32_t id;
		char what[300];
	} * v;
	size_t n;
};

static void describe(const FerryCrimg__FileEntry *f, char *out, size_t len)
{
	if (f->type == 1 && f->reg)
		snprintf(out, len, "file %s", f->reg->name ? f->reg->name : "?");
	else if (f->type == 2 || f->type == 3)
		snprintf(out, len, "%s", f->type == 2 ? "pipe" : "fifo");
	else if (f->type == 4 && f->isk)
		snprintf(out, len, "%s%s port %u%s%u state %u", f->isk->type == 1 ? "tcp" : "udp",
			 f->isk->family == 10 ? "6" : "", f->isk->src_port,
			 f->isk->dst_port ? " -> " : "", f->isk->dst_port, f->isk->state);
	else if (f->type == 5 && f->usk)
		snprintf(out, len, "unix %s%.*s",
			 f->usk->name.len && !f->usk->name.data[0] ? "@" : "",
			 f->usk->name.len ? (int)f->usk->name.len - !f->usk->name.data[0] : 0,
			 f->usk->name.len ? (const char *)f->usk->name.data + !f->usk->name.data[0]
					  : "");
	else
		snprintf(out, len, "fd type %u", f->type);
}

static int file_entry(const uint8_t *p, size_t n, void *arg)
{
	struct files *fs = arg;
	FerryCrimg__FileEntry *f = ferry_crimg__file_entry__unpack(NULL, n, p);
	void *nv;

	if (!f)
		return -1;
	if ((nv = realloc(fs->v, (fs->n + 1) * sizeof(*fs->v)))) {
		fs->v = nv;
		fs->v[fs->n].id = f->id;
		describe(f, fs->v[fs->n].what, sizeof(fs->v[fs->n].what));
		fs->n++;
	}
	ferry_crimg__file_entry__free_unpacked(f, NULL);
	return nv ? 0 : -1;
}

/* ---- pstree.img ---- */

static int pstree_entry(const uint8_t *p, size_t n, void *arg)
{
	struct insp *in = arg;
	FerryCrimg__PstreeEntry *e = ferry_crimg__pstree_entry__unpack(NULL, n, p);
	void *nv;

	if (!e)
		return -1;
	if ((nv = realloc(in->procs, (in->n_procs + 1) * sizeof(*in->procs)))) {
		struct insp_proc *pr;
		in->procs = nv;
		pr = &in->procs[in->n_procs++];
		memset(pr, 0, sizeof(*pr));
		pr->pid = e->pid;
		pr->ppid = e->ppid;
		pr->pgid = e->pgid;
		pr->sid = e->sid;
		pr->threads = (uint32_t)e->n_threads;
	}
	ferry_crimg__pstree_entry__free_unpacked(e, NULL);
	return nv ? 0 : -1;
}

/* ---- core-PID.img, mm-PID.img ---- */

struct task {
	struct insp_proc *pr;
	uint32_t files_id;
	bool has_files;
	uint64_t arg_start, arg_end;
};

static int core_entry(const uint8_t *p, size_t n, void *arg)
{
	struct task *t = arg;
	FerryCrimg__CoreEntry *c = ferry_crimg__core_entry__unpack(NULL, n, p);

	if (!c)
		return -1;
	if (c->tc && c->tc->comm)
		snprintf(t->pr->comm, sizeof(t->pr->comm), "%s", c->tc->comm);
	if (c->ids && c->ids->has_files_id) {
		t->files_id = c->ids->files_id;
		t->has_files = true;
	}
	ferry_crimg__core_entry__free_unpacked(c, NULL);
	return 0;
}

static int ids_entry(const uint8_t *p, size_t n, void *arg)
{
	struct task *t = arg;
	FerryCrimg__TaskKobjIds *k = ferry_crimg__task_kobj_ids__unpack(NULL, n, p);

	if (!k)
		return -1;
	if (k->has_files_id) {
		t->files_id = k->files_id;
		t->has_files = true;
	}
	ferry_crimg__task_kobj_ids__free_unpacked(k, NULL);
	return 0;
}

static int mm_entry(const uint8_t *p, size_t n, void *arg)
{
	struct task *t = arg;
	FerryCrimg__MmEntry *m = ferry_crimg__mm_entry__unpack(NULL, n, p);

	if (!m)
		return -1;
	t->arg_start = m->mm_arg_start;
	t->arg_end = m->mm_arg_end;
	for (size_t i = 0; i < m->n_vmas; i++)
		if (m->vmas[i]->end > m->vmas[i]->start)
			t->pr->vma_bytes += m->vmas[i]->end - m->vmas[i]->start;
	ferry_crimg__mm_entry__free_unpacked(m, NULL);
	return 0;
}

/* ---- the command line, from the dumped memory ---- */

struct pm {
	bool head;
	uint32_t pages_id;
	uint64_t want, off; /* address looked for; its offset in the pages image */
	bool found;
	uint64_t run_left; /* bytes of the run after want */
	uint64_t pages;	   /* bytes of present pages so far */
};

static int pm_entry(const uint8_t *p, size_t n, void *arg)
{
	struct pm *m = arg;

	if (m->head) {
		FerrySnap__PagemapHead *h = ferry_snap__pagemap_head__unpack(NULL, n, p);
		if (!h)
			return -1;
		m->pages_id = h->pages_id;
		m->head = false;
		ferry_snap__pagemap_head__free_unpacked(h, NULL);
		return 0;
	}
	FerrySnap__PagemapEntry *e = ferry_snap__pagemap_entry__unpack(NULL, n, p);
	if (!e)
		return -1;
	bool present = e->has_flags ? (e->flags & PE_PRESENT) : !e->in_parent;
	uint64_t len = (e->has_pages ? e->pages : (uint64_t)e->nr_pages) * PAGE;
	if (present && !m->found && m->want >= e->vaddr && m->want < e->vaddr + len) {
		m->found = true;
		m->off = m->pages + (m->want - e->vaddr);
		m->run_left = e->vaddr + len - m->want;
	}
	if (present)
		m->pages += len;
	ferry_snap__pagemap_entry__free_unpacked(e, NULL);
	return 0;
}

static void read_cmdline(const char *dir, struct task *t, ferr_t *err)
{
	struct pm m = {.head = true, .want = t->arg_start};
	char name[64], path[4200];
	uint64_t len = t->arg_end > t->arg_start ? t->arg_end - t->arg_start : 0;
	FILE *f;
	size_t got;

	snprintf(name, sizeof(name), "pagemap-%u.img", t->pr->pid);
	if (!len || for_entries(dir, name, pm_entry, &m, err) < 0 || !m.found)
		return;
	if (len > m.run_left)
		len = m.run_left;
	if (len > sizeof(t->pr->cmdline) - 1)
		len = sizeof(t->pr->cmdline) - 1;
	snprintf(path, sizeof(path), "%s/pages-%u.img", dir, m.pages_id);
	if (!(f = fopen(path, "rb")))
		return;
	if (fseeko(f, (off_t)m.off, SEEK_SET) == 0) {
		got = fread(t->pr->cmdline, 1, len, f);
		while (got > 0 && !t->pr->cmdline[got - 1])
			got--;
		for (size_t i = 0; i < got; i++)
			if (!t->pr->cmdline[i])
				t->pr->cmdline[i] = ' ';
		t->pr->cmdline[got] = 0;
	}
	fclose(f);
}

/* ---- fdinfo-ID.img ---- */

struct fdctx {
	struct insp_proc *pr;
	const struct files *fs;
};

static int fd_entry(const uint8_t *p, size_t n, void *arg)
{
	struct fdctx *c = arg;
	FerryCrimg__FdinfoEntry *e = ferry_crimg__fdinfo_entry__unpack(NULL, n, p);
	void *nv;

	if (!e)
		return -1;
	if ((nv = realloc(c->pr->fds, (c->pr->n_fds + 1) * sizeof(*c->pr->fds)))) {
		struct insp_fd *d;
		c->pr->fds = nv;
		d = &c->pr->fds[c->pr->n_fds++];
		d->fd = e->fd;
		snprintf(d->what, sizeof(d->what), "fd type %u", e->type);
		for (size_t i = 0; i < c->fs->n; i++)
			if (c->fs->v[i].id == e->id)
				snprintf(d->what, sizeof(d->what), "%s", c->fs->v[i].what);
	}
	ferry_crimg__fdinfo_entry__free_unpacked(e, NULL);
	return nv ? 0 : -1;
}

static int one_task(const char *dir, struct insp_proc *pr, const struct files *fs, ferr_t *err)
{
	struct task t = {.pr = pr};
	char name[64];

	snprintf(name, sizeof(name), "core-%u.img", pr->pid);
	if (for_entries(dir, name, core_entry, &t, err) < 0)
		return -1;
	snprintf(name, sizeof(name), "ids-%u.img", pr->pid); /* CRIU >= 3: ids apart */
	if (for_entries(dir, name, ids_entry, &t, err) < 0)
		return -1;
	snprintf(name, sizeof(name), "mm-%u.img", pr->pid);
	if (for_entries(dir, name, mm_entry, &t, err) < 0)
		return -1;
	read_cmdline(dir, &t, err);
	if (t.has_files) {
		struct fdctx c = {pr, fs};
		snprintf(name, sizeof(name), "fdinfo-%u.img", t.files_id);
		if (for_entries(dir, name, fd_entry, &c, err) < 0)
			return -1;
	}
	return 0;
}

static void pages_total(const char *dir, struct insp *in)
{
	char path[4200];
	DIR *d = opendir(dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		FILE *f;
		if (strncmp(de->d_name, "pages-", 6))
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if ((f = fopen(path, "rb"))) {
			if (fseeko(f, 0, SEEK_END) == 0)
				in->pages_bytes += (uint64_t)ftello(f);
			fclose(f);
		}
	}
	if (d)
		closedir(d);
}

int criu_inspect(const char *dir, struct insp *in, ferr_t *err)
{
	struct files fs = {0};
	char path[4200];
	int rc = 0;

	memset(in, 0, sizeof(*in));
	snprintf(path, sizeof(path), "%s/pstree.img", dir);
	if (access(path, F_OK) < 0)
		return ferr_set(err, FX_NOTFOUND, "%s holds no CRIU image set (no pstree.img)",
				dir);
	if (for_entries(dir, "pstree.img", pstree_entry, in, err) < 0 ||
	    for_entries(dir, "files.img", file_entry, &fs, err) < 0)
		rc = -1;
	for (size_t i = 0; rc == 0 && i < in->n_procs; i++)
		rc = one_task(dir, &in->procs[i], &fs, err);
	pages_total(dir, in);
	free(fs.v);
	if (rc < 0)
		criu_inspect_free(in);
	return rc;
}

void criu_inspect_free(struct insp *in)
{
	for (size_t i = 0; i < in->n_procs; i++)
		free(in->procs[i].fds);
	free(in->procs);
	memset(in, 0, sizeof(*in));
}
