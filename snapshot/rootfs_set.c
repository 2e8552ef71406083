/* A tenant's file system in an image set (rootfs_set.h). */
#define LOG_PREFIX "rootfs"
#include "snapshot/rootfs_set.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/image.h"
#include "tenant/rootfs.h"
#include "tenant/treepack.h"

int rootfs_set_pack(const char *state_dir, const struct tenant_rec *rec, const char *dir,
		    bool with_image, manifest_t *m, ferr_t *err)
{
	char upper[PATH_MAX], out[PATH_MAX], img[PATH_MAX];
	struct treepack_stats st;

	if (!rec->image[0])
		return ferr_set(err, FX_USAGE,
				"tenant %s was not started from an image (--rootfs %s): "
				"--with-rootfs carries image tenants' own layers only",
				rec->name, rec->rootfs);
	if (rootfs_upper(state_dir, rec->name, upper, sizeof(upper), err) < 0 ||
	    xsnprintf(out, sizeof(out), err, "%s/" ROOTFS_SET_LAYER, dir) < 0)
		return -1;
	if (treepack_pack_layer(upper, out, -1, &st, err) < 0)
		return ferr_wrap(err, "pack the layer of tenant %s", rec->name);
	pr_info("tenant %s: own layer packed (%llu entries, %llu bytes)", rec->name,
		(unsigned long long)st.entries, (unsigned long long)st.bytes);
	manifest_set_str(&m->rootfs_layer, ROOTFS_SET_LAYER);
	if (!with_image)
		return 0;
	if (image_root(state_dir, rec->image, img, sizeof(img), err) < 0 ||
	    xsnprintf(out, sizeof(out), err, "%s/" ROOTFS_SET_IMAGE, dir) < 0)
		return -1;
	if (treepack_pack(img, out, -1, &st, err) < 0)
		return ferr_wrap(err, "pack image %.12s", rec->image);
	manifest_set_str(&m->image_file, ROOTFS_SET_IMAGE);
	return 0;
}

/* A file the manifest names: one plain name inside the set. */
static int set_file(const char *dir, const char *name, char *out, ferr_t *err)
{
	if (!fs_name_is_safe(name, strlen(name)))
		return ferr_set(err, FX_INTEGRITY, "the manifest names a bad file '%s'", name);
	return xsnprintf(out, PATH_MAX, err, "%s/%s", dir, name);
}

static int adopt_image(const char *state_dir, const manifest_t *m, const char *dir, ferr_t *err)
{
	char file[PATH_MAX], tmp[PATH_MAX];
	struct image_info in;
	bool existed;

	if (!m->image_file)
		return ferr_set(err, FX_NOTFOUND,
				"image %.12s of tenant %s is not in this host's store and the set "
				"does not carry it: 'ferry image import' it, or dump with "
				"--with-image",
				m->image_id, m->tenant_name);
	/* libarchive's disk writer refuses symbolic links on its way down */
	if (set_file(dir, m->image_file, file, err) < 0 || fs_mkdir_p(state_dir, 0700, err) < 0)
		return -1;
	char sd[PATH_MAX];
	if (!realpath(state_dir, sd) || xsnprintf(tmp, sizeof(tmp), err, "%s/images", sd) < 0 ||
	    fs_mkdir_p(tmp, 0700, err) < 0 ||
	    xsnprintf(tmp, sizeof(tmp), err, "%s/images/.set-XXXXXX", sd) < 0)
		return -1;
	if (!mkdtemp(tmp))
		return ferr_sys(err, FX_FAIL, "create %s", tmp);
	struct treepack_stats st;
	if (treepack_extract_file(file, tmp, &st, err) < 0 ||
	    image_adopt(sd, tmp, file, &st, &in, &existed, err) < 0) {
		fs_rm_rf(tmp, NULL);
		return ferr_wrap(err, "image of the set");
	}
	if (strcmp(in.id, m->image_id)) {
		ferr_set(err, FX_INTEGRITY, "the set's image has content id %.12s, not %.12s",
			 in.id, m->image_id);
		if (!existed)
			image_remove(sd, in.id, NULL);
		return -1;
	}
	return 0;
}

/* The tenant's layer from the set, replacing this host's. */
static int unpack_layer(const char *state_dir, const manifest_t *m, const char *dir,
			const struct tenant_rec *rec, ferr_t *err)
{
	char file[PATH_MAX], tdir[PATH_MAX], p[PATH_MAX];
	static const char *const subs[] = {"upper", "work"};

	if (set_file(dir, m->rootfs_layer, file, err) < 0 ||
	    registry_tenant_dir(state_dir, rec->name, tdir, sizeof(tdir), err) < 0 ||
	    rootfs_umount(rec->rootfs, err) < 0)
		return -1;
	for (int i = 0; i < 2; i++)
		if (xsnprintf(p, sizeof(p), err, "%s/%s", tdir, subs[i]) < 0 ||
		    fs_rm_rf(p, err) < 0)
			return -1;
	if (rootfs_upper(state_dir, rec->name, p, sizeof(p), err) < 0 ||
	    fs_mkdir_p(p, 0755, err) < 0)
		return -1;
	char real[PATH_MAX];
	if (!realpath(p, real))
		return ferr_sys(err, FX_FAIL, "%s", p);
	if (treepack_extract_file(file, real, NULL, err) < 0)
		return ferr_wrap(err, "layer of tenant %s", rec->name);
	return 0;
}

int rootfs_set_unpack(const char *state_dir, const manifest_t *m, const char *dir,
		      struct tenant_rec *rec, ferr_t *err)
{
	char p[PATH_MAX];
	struct stat st;

	if (!m->image_id)
		return 0;
	if (!image_id_valid(m->image_id))
		return ferr_set(err, FX_INTEGRITY, "the manifest's image id '%s' is not one",
				m->image_id);
	snprintf(rec->image, sizeof(rec->image), "%s", m->image_id);
	if (rootfs_root(state_dir, rec->name, rec->rootfs, sizeof(rec->rootfs), err) < 0)
		return -1;
	if (!image_present(state_dir, m->image_id) && adopt_image(state_dir, m, dir, err) < 0)
		return -1;
	if (m->rootfs_layer)
		return unpack_layer(state_dir, m, dir, rec, err);
	if (rootfs_upper(state_dir, rec->name, p, sizeof(p), err) < 0)
		return -1;
	if (stat(p, &st) < 0)
		return ferr_set(err, FX_NOTFOUND,
				"tenant %s's own file-system layer is not on this host and the "
				"set does not carry it (dump with --with-rootfs)",
				rec->name);
	return 0;
}

void rootfs_set_discard(const char *state_dir, const char *name)
{
	static const char *const subs[] = {"upper", "work", "root"};
	char tdir[PATH_MAX], p[PATH_MAX];

	if (rootfs_root(state_dir, name, p, sizeof(p), NULL) < 0 || rootfs_umount(p, NULL) < 0 ||
	    registry_tenant_dir(state_dir, name, tdir, sizeof(tdir), NULL) < 0)
		return;
	for (int i = 0; i < 3; i++)
		if (xsnprintf(p, sizeof(p), NULL, "%s/%s", tdir, subs[i]) == 0)
			fs_rm_rf(p, NULL);
}
