/* ferry image: the image store (tenant/image.h). */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "cmd/opts.h"
#include "lib/json.h"
#include "lib/util.h"
#include "tenant/image.h"

struct image_args {
	bool json;
};

static const struct opt image_opts[] = {
    OPTS_JSON(struct image_args, json),
    {0},
};

static const struct cmd_spec image_spec = {
    .name = "image",
    .args = "import PATH | ls | rm ID",
    .min_args = 1,
    .max_args = 2,
    .about = "import  add a root file system to this host's image store, once: PATH is a\n"
	     "        directory or a tar archive (plain, gzip, zstd, lz4, xz, bzip2). Names\n"
	     "        with '..' or absolute names, hard links out of the tree and relative\n"
	     "        symbolic links that climb above its root are refused (exit 5).\n"
	     "        Prints its content id (SHA-256 over the tree, docs/rootfs.md).\n"
	     "ls      list the images of the store\n"
	     "rm      remove an image (ID or a unique prefix of 8+ characters); refused\n"
	     "        while a tenant of this host uses it (exit 4)\n",
    .notes = "Images live in STATE_DIR/images/ID/rootfs; `ferry run --image` starts a\n"
	     "tenant on an overlay of one (docs/rootfs.md).\n",
    .opts = image_opts,
};

static void info_json(struct jw *w, const char *key, const struct image_info *in, int existed)
{
	jw_obj_begin(w, key);
	jw_str(w, "id", in->id);
	jw_int(w, "created", in->created);
	jw_uint(w, "entries", in->entries);
	jw_uint(w, "bytes", in->bytes);
	jw_str(w, "source", in->source);
	if (existed >= 0)
		jw_bool(w, "existed", existed);
	jw_obj_end(w);
}

static int do_import(const struct global_opts *g, const char *path, bool json)
{
	struct image_info in;
	bool existed;
	ferr_t err = {0};
	char sz[32];

	if (image_import(g->state_dir, path, &in, &existed, &err) < 0)
		return cmd_report("image import", &err);
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		info_json(&w, NULL, &in, existed);
		jw_finish(&w);
	} else
		printf("%s %s (%llu entries, %s)\n", existed ? "present" : "imported", in.id,
		       (unsigned long long)in.entries, fmt_bytes(in.bytes, sz, sizeof(sz)));
	return FX_OK;
}

static int do_ls(const struct global_opts *g, bool json)
{
	struct image_info *v;
	size_t n;
	ferr_t err = {0};
	char sz[32];

	if (image_list(g->state_dir, &v, &n, &err) < 0)
		return cmd_report("image ls", &err);
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_arr_begin(&w, "images");
		for (size_t i = 0; i < n; i++)
			info_json(&w, NULL, &v[i], -1);
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_finish(&w);
	} else {
		printf("%-16s %10s %10s  %s\n", "ID", "ENTRIES", "SIZE", "SOURCE");
		for (size_t i = 0; i < n; i++)
			printf("%-16.16s %10llu %10s  %s\n", v[i].id,
			       (unsigned long long)v[i].entries,
			       fmt_bytes(v[i].bytes, sz, sizeof(sz)), v[i].source);
	}
	free(v);
	return FX_OK;
}

static int do_rm(const struct global_opts *g, const char *ref, bool json)
{
	char id[IMAGE_ID_LEN + 1];
	ferr_t err = {0};

	if (image_find(g->state_dir, ref, id, &err) < 0 || image_remove(g->state_dir, id, &err) < 0)
		return cmd_report("image rm", &err);
	if (json) {
		struct jw w;
		jw_init(&w, stdout);
		jw_obj_begin(&w, NULL);
		jw_str(&w, "removed", id);
		jw_obj_end(&w);
		jw_finish(&w);
	} else
		printf("removed %s\n", id);
	return FX_OK;
}

int cmd_image(int argc, char **argv, const struct global_opts *g)
{
	struct image_args a = {0};
	int pos, rc;

	if ((rc = opts_parse(&image_spec, &a, argc, argv, &pos)) != OPTS_RUN)
		return rc;
	argc -= pos;
	argv += pos;
	if (argc == 2 && !strcmp(argv[0], "import"))
		return do_import(g, argv[1], a.json);
	if (argc == 1 && !strcmp(argv[0], "ls"))
		return do_ls(g, a.json);
	if (argc == 2 && !strcmp(argv[0], "rm"))
		return do_rm(g, argv[1], a.json);
	return opts_usage_error(&image_spec, "want import PATH, ls or rm ID");
}
