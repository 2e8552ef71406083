/* Tenant kinds and checkpoint backends (tenant/kind.h, tenant/ckpt.h):
 * lookup by enum, name and manifest kind; every kind fills every op and has
 * a complete backend; what each kind tells its backend and its manifest;
 * ktree_kill ends every process of a tree (children and grandchildren),
 * ktree_signal reaches all of them; the QEMU backend's sink into a file
 * (no load prepared) closes every fd it opened, the caller's end too
 * (tenant/ckpt.h: the sink owns *fd). */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tenant/kind.h"
#include "tenant/kind_tree.h"
#include "unit.h"

static void test_lookup(void)
{
	enum tenant_kind k = 0;
	ferr_t e = {0};

	CHECK(kind_find(TK_CONTAINER) == &kind_container);
	CHECK(kind_find(TK_PROCTREE) == &kind_proctree);
	CHECK(kind_find(TK_VM) == &kind_vm);
	CHECK(kind_find((enum tenant_kind)99) == NULL);
	CHECK(kind_by_name("container") == &kind_container);
	CHECK(kind_by_name("proctree") == &kind_proctree);
	CHECK(kind_by_name("vm") == &kind_vm && kind_by_name("xen") == NULL &&
	      kind_by_name(NULL) == NULL);
	CHECK(kind_get((enum tenant_kind)99, "v1", &e) == NULL && e.code == FX_HOST &&
	      strstr(e.msg, "no driver"));
	CHECK(kind_from_manifest(FERRY__TENANT_KIND__TENANT_PROCTREE, &k, NULL) == 0 &&
	      k == TK_PROCTREE);
	CHECK(kind_from_manifest(FERRY__TENANT_KIND__TENANT_VM, &k, NULL) == 0 && k == TK_VM);
	ferr_clear(&e);
	CHECK(kind_from_manifest((Ferry__TenantKind)77, &k, &e) < 0 && e.code == FX_INTEGRITY);
	for (enum tenant_kind i = TK_CONTAINER; i <= TK_VM; i++) {
		const struct tenant_kind_ops *o = kind_find(i);
		CHECK(o && o->kind == i && !strcmp(o->name, tenant_kind_str(i)));
	}
}

static void test_complete(void)
{
	const struct tenant_kind_ops *kinds[] = {&kind_container, &kind_proctree, &kind_vm};

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const struct tenant_kind_ops *o = kinds[i];
		CHECK(o->start && o->kill && o->plumb && o->cut && o->unplumb && o->precheck &&
		      o->prepare_load && o->registered && o->target && o->describe);
		CHECK(o->ckpt && o->ckpt->name && o->ckpt->save && o->ckpt->load &&
		      o->ckpt->probe && o->ckpt->fixup && o->ckpt->prepare_load &&
		      o->ckpt->prepared_free && o->ckpt->sink_open && o->ckpt->sink_close);
	}
}

static void test_targets(void)
{
	struct tenant_rec r = {.init_pid = 42};
	struct ckpt_target t = {0};
	manifest_t *m;

	snprintf(r.name, sizeof(r.name), "t1");
	snprintf(r.rootfs, sizeof(r.rootfs), "/srv/t1");
	snprintf(r.net.addr, sizeof(r.net.addr), "10.0.0.2/24");
	snprintf(r.net.host_if, sizeof(r.net.host_if), "fy-t1");
	kind_container.target(&r, &t);
	CHECK(t.pid == 42 && t.root && !strcmp(t.root, "/srv/t1") && t.net == &r.net);
	CHECK(t.own_mounts && !t.host_session);
	memset(&t, 0, sizeof(t));
	kind_proctree.target(&r, &t);
	CHECK(t.pid == 42 && !t.root && !t.net && t.host_session && !t.own_mounts);

	m = manifest_new("t1", tenant_kind_to_pb(TK_CONTAINER));
	kind_container.describe(&r, m);
	CHECK(m->rootfs && !strcmp(m->rootfs, "/srv/t1") && m->net &&
	      !strcmp(m->net->host_if, "fy-t1"));
	manifest_free(m);
	m = manifest_new("t1", tenant_kind_to_pb(TK_PROCTREE));
	kind_proctree.describe(&r, m);
	CHECK(!m->rootfs && !m->net);
	manifest_free(m);
	/* a process tree has no host network of its own */
	CHECK(kind_proctree.plumb(&r.net, NULL) == 0 && kind_proctree.unplumb(&r.net, NULL) == 0);
}

/* A child with two children, one of which has a child: 4 processes. */
static pid_t tree(int ready[2])
{
	pid_t root = fork();

	if (root != 0)
		return root;
	close(ready[0]);
	setpgid(0, 0);
	if (fork() == 0) {
		if (fork() == 0) {
			close(ready[1]);
			for (;;)
				pause();
		}
		close(ready[1]);
		for (;;)
			pause();
	}
	if (fork() == 0) {
		close(ready[1]);
		for (;;)
			pause();
	}
	usleep(100000);
	close(ready[1]);
	for (;;)
		pause();
}

static int count_alive(pid_t root, pid_t *pids, int max)
{
	char path[96];
	int n = 0, alive = 0;
	FILE *f;

	pids[n++] = root;
	for (int i = 0; i < n && n < max; i++) {
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pids[i], pids[i]);
		if (!(f = fopen(path, "r")))
			continue;
		while (n < max && fscanf(f, "%d", &pids[n]) == 1)
			n++;
		fclose(f);
	}
	for (int i = 0; i < n; i++)
		alive += ktree_alive(pids[i]);
	return alive;
}

static void test_kill_tree(void)
{
	int ready[2];
	pid_t pids[16], root;
	char c;

	CHECK(pipe(ready) == 0);
	root = tree(ready);
	close(ready[1]);
	CHECK(read(ready[0], &c, 1) == 0); /* every process closed its end */
	usleep(20000);
	close(ready[0]);
	CHECK(count_alive(root, pids, 16) == 4);
	int n = 4;
	CHECK(ktree_kill(root, SIGKILL, 5000, NULL) == 0);
	waitpid(root, NULL, WNOHANG);
	for (int i = 0; i < n; i++)
		CHECK(!ktree_alive(pids[i]));
	CHECK(ktree_kill(root, SIGKILL, 100, NULL) == 0); /* gone: nothing to do */
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	for (struct dirent *e; d && (e = readdir(d));)
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n;
}

/* Each round: the stream's bytes land in DIR/vm.state; after sink_close
 * this process has the fds it had before sink_open. */
static void test_sink_fds(void)
{
	char dir[] = "/tmp/ferry-sink-XXXXXX", path[64];
	struct ckpt_env env = {.tool = "qemu", .work_dir = dir};
	struct stat st;

	CHECK(mkdtemp(dir) != NULL);
	int before = open_fds();
	for (int i = 0; i < 3; i++) {
		struct ckpt_sink *s = NULL;
		ferr_t e = {0};
		int fd = -1;
		CHECK(ckpt_qemu.sink_open(&env, dir, NULL, NULL, &s, &fd, &e) == 0 && fd >= 0);
		CHECK(write(fd, "ferry-state", 11) == 11);
		shutdown(fd, SHUT_WR); /* as the relay does at the stream's end */
		CHECK(ckpt_qemu.sink_close(s, false, &e) == 0);
	}
	CHECK(open_fds() == before);
	snprintf(path, sizeof(path), "%s/vm.state", dir);
	CHECK(stat(path, &st) == 0 && st.st_size == 11);
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	RUN(test_lookup);
	RUN(test_complete);
	RUN(test_targets);
	RUN(test_kill_tree);
	RUN(test_sink_fds);
	UNIT_DONE();
}
