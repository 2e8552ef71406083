/* The tenant's files in a snapshot (snap_fs.h). */
#define LOG_PREFIX "snap"
#include "snapshot/snap_fs.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/image.h"
#include "tenant/registry.h"
#include "tenant/rootfs.h"
#include "tenant/treepack.h"

/* A change within a clock tick of a capture does not show in ctime. */
#define TICK_NS 20000000LL

static int64_t realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Which files of the tenant a snapshot keeps: into fs->root and m. */
static int find_files(struct snapfs *fs, snapm_t *m, const char *state_dir, const char *name,
		      ferr_t *err)
{
	struct tenant_rec rec = {0};
	int rc = 0;

	if (registry_load(state_dir, name, &rec, err) < 0)
		return err->code == FX_NOTFOUND ? (ferr_clear(err), 0) : -1;
	if (rec.kind == TK_CONTAINER && rec.image[0]) {
		rc = rootfs_upper(state_dir, name, fs->root, sizeof(fs->root), err);
		m->rootfs_kind = strdup("layer");
		m->image_id = strdup(rec.image);
	} else if (rec.kind == TK_CONTAINER && rec.rootfs[0] && strcmp(rec.rootfs, "/")) {
		snprintf(fs->root, sizeof(fs->root), "%s", rec.rootfs);
		m->rootfs_kind = strdup("tree");
		m->rootfs = strdup(rec.rootfs);
	}
	tenant_rec_free(&rec);
	if (rc == 0 && fs->root[0] && !m->rootfs_kind)
		rc = ferr_set(err, FX_FAIL, "out of memory");
	return rc;
}

/* The image a layer lies on, while the tenant runs (it never changes, so
 * after the first snapshot its files are found unchanged and not read): a
 * host that lacks it can restore the snapshot. */
static int add_image(struct snapfs *fs, const char *state_dir, const char *id,
		     const struct repo_tree_opts *lo, ferr_t *err)
{
	struct repo_tree_opts o = *lo;
	struct repo_tree_stats ts;
	char root[PATH_MAX];

	o.part = FERRY_SNAP__FILE_PART__PART_IMAGE;
	if (image_root(state_dir, id, root, sizeof(root), err) < 0)
		return -1;
	return repo_add_tree(fs->repo, fs->m, root, &o, &fs->img_st, &ts, err);
}

int snapfs_begin(struct snapfs *fs, struct repo *r, snapm_t *m, const char *state_dir,
		 const char *name, const snapm_t *parent, ferr_t *err)
{
	memset(fs, 0, sizeof(*fs));
	fs->repo = r;
	fs->m = m;
	if (find_files(fs, m, state_dir, name, err) < 0 || !fs->root[0])
		return err->code ? -1 : 0;
	/* the parent's entries were taken while it was frozen, at fs_time_ns */
	struct repo_tree_opts o = {
	    .part = FERRY_SNAP__FILE_PART__PART_ROOTFS,
	    .cache = parent && parent->rootfs_kind && parent->has_fs_time_ns ? parent : NULL,
	    .trust_before_ns = parent && parent->has_fs_time_ns ? parent->fs_time_ns - TICK_NS : 0};
	uint64_t t = now_ns();

	if (!(fs->pre = snapm_new(name, "pre")))
		return ferr_set(err, FX_FAIL, "out of memory");
	fs->pre_start_ns = realtime_ns();
	if (repo_add_tree(r, fs->pre, fs->root, &o, &fs->pre_st, &fs->pre_ts, err) < 0)
		return ferr_wrap(err, "the files of %s (while it ran)", name);
	if (m->image_id && add_image(fs, state_dir, m->image_id, &o, err) < 0)
		return ferr_wrap(err, "the image of %s", name);
	fs->pre_ms = ms_since(t);
	pr_info("%s: files while running: %u entries, %u unchanged, %llu bytes read in %.1f ms",
		name, fs->pre_ts.entries, fs->pre_ts.reused,
		(unsigned long long)fs->pre_ts.read_bytes, fs->pre_ms);
	return 0;
}

int snapfs_on_event(enum ckpt_event ev, pid_t pid, void *arg, ferr_t *err)
{
	struct snapfs *fs = arg;
	(void)pid;

	if (ev != CKPT_EV_SAVED || !fs->root[0] || fs->done)
		return 0;
	/* the tenant is frozen and its memory saved: its files now */
	struct repo_tree_opts o = {.part = FERRY_SNAP__FILE_PART__PART_ROOTFS,
				   .cache = fs->pre,
				   .trust_before_ns = fs->pre_start_ns - TICK_NS};
	uint64_t t = now_ns();

	fs->m->has_fs_time_ns = 1;
	fs->m->fs_time_ns = realtime_ns();
	if (repo_add_tree(fs->repo, fs->m, fs->root, &o, &fs->st, &fs->ts, err) < 0)
		return ferr_wrap(err, "the files of %s (frozen)", fs->m->tenant);
	fs->frozen_ms = ms_since(t);
	fs->done = true;
	return 0;
}

int snapfs_finish(struct snapfs *fs, struct repo_stats *st, ferr_t *err)
{
	snapm_t *m = fs->m;

	if (!fs->root[0])
		return 0;
	if (!fs->done)
		return ferr_set(err, FX_FAIL,
				"the backend never reached the point where %s's files are "
				"taken (frozen)",
				m->tenant);
	m->timings->has_fs_pre_ms = m->timings->has_fs_frozen_ms = 1;
	m->timings->fs_pre_ms = fs->pre_ms;
	m->timings->fs_frozen_ms = fs->frozen_ms;
	m->has_fs_entries = m->has_fs_reused = 1;
	m->fs_entries = fs->ts.entries;
	m->fs_reused = fs->ts.reused;
	st->size += fs->st.size + fs->img_st.size;
	st->chunks += fs->st.chunks + fs->img_st.chunks;
	st->added += fs->pre_st.added + fs->st.added + fs->img_st.added;
	st->added_ch += fs->pre_st.added_ch + fs->st.added_ch + fs->img_st.added_ch;
	pr_info("%s: files frozen: %u entries, %u unchanged, %llu bytes read in %.1f ms", m->tenant,
		fs->ts.entries, fs->ts.reused, (unsigned long long)fs->ts.read_bytes,
		fs->frozen_ms);
	return 0;
}

void snapfs_free(struct snapfs *fs)
{
	snapm_free_built(fs->pre);
	fs->pre = NULL;
}

/* ---- restore ---- */

/* A fresh directory beside dest: PARENT/.NAME.PREFIX-XXXXXX. */
static int beside(const char *dest, const char *prefix, char *out, ferr_t *err)
{
	char a[PATH_MAX], b[PATH_MAX];

	snprintf(a, sizeof(a), "%s", dest);
	snprintf(b, sizeof(b), "%s", dest);
	const char *dir = dirname(a), *base = basename(b);
	if (fs_mkdir_p(dir, 0700, err) < 0 ||
	    xsnprintf(out, PATH_MAX, err, "%s/.%s.%s-XXXXXX", dir, base, prefix) < 0)
		return -1;
	if (!mkdtemp(out))
		return ferr_sys(err, FX_FAIL, "create %s", out);
	return 0;
}

/* The tree of this host's --rootfs tenant name (0), or -1. */
static int tree_of(const char *state_dir, const char *name, char *out, size_t len)
{
	struct tenant_rec rec = {0};
	ferr_t e = {0};
	int rc = -1;

	if (registry_load(state_dir, name, &rec, &e) < 0)
		return -1;
	if (rec.kind == TK_CONTAINER && !rec.image[0] && rec.rootfs[0] == '/' && rec.rootfs[1])
		rc = xsnprintf(out, len, NULL, "%s", rec.rootfs);
	tenant_rec_free(&rec);
	return rc;
}

/* The snapshot's copy of its image into this host's image store (its
 * content id must be the one the snapshot names). */
static int adopt_image(struct repo *r, const snapm_t *m, const char *state_dir, ferr_t *err)
{
	char sd[PATH_MAX], tmp[PATH_MAX], src[64];
	struct treepack_stats st = {0};
	struct image_info in;
	bool existed;

	if (!repo_has_part(m, FERRY_SNAP__FILE_PART__PART_IMAGE))
		return ferr_set(err, FX_NOTFOUND,
				"image %.12s of snapshot %s is not in this host's image store "
				"and the snapshot does not carry it: 'ferry image import' it first",
				m->image_id, m->id);
	if (fs_mkdir_p(state_dir, 0700, err) < 0 || !realpath(state_dir, sd))
		return ferr_sys(err, FX_FAIL, "%s", state_dir);
	if (xsnprintf(tmp, sizeof(tmp), err, "%s/images", sd) < 0 ||
	    fs_mkdir_p(tmp, 0700, err) < 0 ||
	    xsnprintf(tmp, sizeof(tmp), err, "%s/images/.snap-XXXXXX", sd) < 0)
		return -1;
	if (!mkdtemp(tmp))
		return ferr_sys(err, FX_FAIL, "create %s", tmp);
	for (size_t i = 0; i < m->n_files; i++)
		if (m->files[i]->part == FERRY_SNAP__FILE_PART__PART_IMAGE) {
			st.entries++;
			st.bytes += m->files[i]->size;
		}
	snprintf(src, sizeof(src), "snapshot %s", m->id);
	if (chmod(tmp, 0755) < 0 ||
	    repo_extract_tree(r, m, FERRY_SNAP__FILE_PART__PART_IMAGE, tmp, err) < 0 ||
	    image_adopt(sd, tmp, src, &st, &in, &existed, err) < 0) {
		fs_rm_rf(tmp, NULL);
		return ferr_wrap(err, "image %.12s from snapshot %s", m->image_id, m->id);
	}
	if (strcmp(in.id, m->image_id)) {
		if (!existed)
			image_remove(sd, in.id, NULL);
		return ferr_set(err, FX_INTEGRITY,
				"snapshot %s: its image has content id %.12s, not %.12s", m->id,
				in.id, m->image_id);
	}
	pr_info("image %.12s adopted from snapshot %s", in.id, m->id);
	return 0;
}

static int restore_dest(struct snapfs_restore *fr, struct repo *r, const snapm_t *m,
			const char *state_dir, const char *name, ferr_t *err)
{
	fr->layer = !strcmp(m->rootfs_kind, "layer");
	fr->tree = !strcmp(m->rootfs_kind, "tree");
	if (fr->layer) {
		if (!m->image_id || !image_id_valid(m->image_id))
			return ferr_set(err, FX_INTEGRITY, "snapshot %s names no valid image",
					m->id);
		if (!image_present(state_dir, m->image_id) && adopt_image(r, m, state_dir, err) < 0)
			return -1;
		return rootfs_upper(state_dir, name, fr->dest, sizeof(fr->dest), err);
	}
	if (!fr->tree || !m->rootfs || m->rootfs[0] != '/')
		return ferr_set(err, FX_INTEGRITY, "snapshot %s: unknown kind of files '%s'", m->id,
				m->rootfs_kind);
	if (tree_of(state_dir, name, fr->dest, sizeof(fr->dest)) == 0)
		; /* this host's tenant of that name: its tree is rolled back */
	else if (registry_tenant_dir(state_dir, name, fr->dest, sizeof(fr->dest), err) < 0 ||
		 strlen(fr->dest) + 8 >= sizeof(fr->dest))
		return -1;
	else /* no such tenant here: the path it had may be another's tree */
		strcat(fr->dest, "/rootfs");
	snprintf(fr->rootfs, sizeof(fr->rootfs), "%s", fr->dest);
	return 0;
}

int snapfs_restore_prepare(struct snapfs_restore *fr, struct repo *r, const snapm_t *m,
			   const char *state_dir, const char *name, ferr_t *err)
{
	memset(fr, 0, sizeof(*fr));
	if (!m->rootfs_kind)
		return 0;
	if (restore_dest(fr, r, m, state_dir, name, err) < 0 ||
	    beside(fr->dest, "snap", fr->stage, err) < 0)
		return -1;
	if (chmod(fr->stage, 0755) < 0)
		return ferr_sys(err, FX_FAIL, "chmod %s", fr->stage);
	return repo_extract_tree(r, m, FERRY_SNAP__FILE_PART__PART_ROOTFS, fr->stage, err);
}

int snapfs_restore_commit(struct snapfs_restore *fr, const char *state_dir, const char *name,
			  ferr_t *err)
{
	char p[PATH_MAX], old[PATH_MAX];
	struct stat st;

	if (!fr->stage[0])
		return 0;
	if (fr->layer) { /* the overlay goes; a restore mounts it again */
		if (rootfs_root(state_dir, name, p, sizeof(p), err) < 0 ||
		    rootfs_umount(p, err) < 0)
			return -1;
		/* overlayfs's work directory goes with the layer it served */
		if (registry_tenant_dir(state_dir, name, p, sizeof(p), err) < 0 ||
		    strlen(p) + 6 >= sizeof(p))
			return -1;
		strcat(p, "/work");
		if (fs_rm_rf(p, err) < 0)
			return -1;
	}
	old[0] = 0;
	if (lstat(fr->dest, &st) == 0) {
		if (beside(fr->dest, "old", old, err) < 0 || rename(fr->dest, old) < 0)
			return ferr_sys(err, FX_FAIL, "move %s aside", fr->dest);
	}
	if (rename(fr->stage, fr->dest) < 0)
		return ferr_sys(err, FX_FAIL, "move the snapshot's files to %s", fr->dest);
	fr->stage[0] = 0;
	if (old[0] && fs_rm_rf(old, err) < 0)
		pr_warn("%s: %s", fr->dest, err->msg);
	ferr_clear(err);
	return 0;
}

void snapfs_restore_cleanup(struct snapfs_restore *fr)
{
	if (fr->stage[0])
		fs_rm_rf(fr->stage, NULL);
	fr->stage[0] = 0;
}
