/* The incoming side of the QEMU backend (ckpt_qemu.h): the receiver of a
 * streamed save (sink) and the QEMU a migration's destination starts ahead
 * (prepare_load, at MIGRATE_BEGIN, ckpt.h load_follows_stream).
 *
 * With a prepared QEMU the sink feeds the stream into it as it arrives
 * (QMP `getfd` + `migrate-incoming fd:`): QEMU loads while the source
 * still sends, and the switchover costs what QEMU's own does. Without one
 * (a dump's set, a prepare that failed to start nothing), the stream goes
 * into DIR/vm.state and the load reads it from there.
 *
 * Post-copy (prepare_load with lazy): QEMU starts with the capability
 * postcopy-ram on a host whose userfaultfd works, and the sink is no
 * thread: the caller gets QEMU's end of the stream itself, a socket it
 * relays both ways (the stream in, QEMU's return path out: its page
 * requests to the source). */
#define LOG_PREFIX "qemu"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lib/fsutil.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tenant/ckpt.h"
#include "tenant/ckpt_qemu.h"
#include "tenant/vmprobe.h"

/* A QEMU started ahead with -incoming defer (or why it could not be). */
struct qemu_prepared {
	struct qemu_guard g;
	struct qmp *q;
	pid_t pid;
	bool failed; /* err says why */
	ferr_t err;
	bool fed;   /* the stream goes into it */
	bool taken; /* a load owns QEMU now */
	bool lazy;  /* post-copy: postcopy-ram set, the stream both ways */
};

/* What the load asks QEMU's binary (version, machine types) is
 * remembered: ask now, not while the VM is stopped. */
static void warm_up(void)
{
	char qemu[PATH_MAX], v[32], m[64];

	if (vm_qemu_locate(qemu, sizeof(qemu), NULL) == 0) {
		vm_qemu_version(qemu, v, sizeof(v), NULL);
		qemu_machine(qemu, m, sizeof(m), NULL);
	}
}

bool qemu_uffd_ok(void)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* Post-copy: this host's QEMU faults the guest's memory in through
 * userfaultfd; both QEMUs need the capability before the stream starts. */
static int lazy_ready(struct qemu_prepared *p, ferr_t *err)
{
	if (!qemu_uffd_ok())
		return ferr_set(err, FX_HOST,
				"post-copy of a VM needs userfaultfd, which this host does not "
				"offer: use --mode pre-copy or stop-copy");
	return qmp_exec(
	    p->q, "migrate-set-capabilities",
	    json_pack("{s:[{s:s, s:b}]}", "capabilities", "capability", "postcopy-ram", "state", 1),
	    -1, 5000, NULL, err);
}

void *qemu_prepare(const struct ckpt_env *env, const struct ckpt_target *t, bool lazy)
{
	struct qemu_prepared *p;

	if (!env->work_dir || !(p = calloc(1, sizeof(*p))))
		return NULL;
	p->g.fd = -1;
	p->lazy = lazy;
	warm_up();
	if (qemu_launch(env->work_dir, t->name, t->argc, t->argv, t->net, &p->g, &p->pid, &p->q,
			&p->err) < 0) {
		p->failed = true;
		pr_info("VM %s: the incoming QEMU did not start: %s", t->name, p->err.msg);
	} else if (lazy && lazy_ready(p, &p->err) < 0) {
		qemu_end(p->q, p->pid, 3000);
		qemu_guard_release(&p->g, false);
		qmp_close(p->q);
		p->q = NULL;
		p->failed = true;
		pr_info("VM %s: no post-copy here: %s", t->name, p->err.msg);
	}
	return p;
}

void qemu_prepared_free(void *arg)
{
	struct qemu_prepared *p = arg;

	if (!p)
		return;
	if (!p->taken && !p->failed) {
		qemu_end(p->q, p->pid, 3000);
		qemu_guard_release(&p->g, false);
	}
	if (!p->taken)
		qmp_close(p->q);
	free(p);
}

int qemu_prepared_take(void *arg, bool lazy, pid_t *pid, struct qmp **q, struct qemu_guard *g,
		       bool *fed, ferr_t *err)
{
	struct qemu_prepared *p = arg;

	if (!p->failed && p->lazy != lazy)
		return ferr_set(err, FX_FAIL, "the incoming QEMU was started for a %s load",
				p->lazy ? "post-copy" : "full");
	if (p->failed) {
		*err = p->err;
		return -1;
	}
	if (p->taken)
		return ferr_set(err, FX_FAIL, "the incoming QEMU was loaded already");
	p->taken = true;
	*pid = p->pid;
	*q = p->q;
	*g = p->g;
	*fed = p->fed;
	return 0;
}

/* The destination of a streamed save: into the prepared QEMU, or into
 * DIR/vm.state. */
struct ckpt_sink {
	pthread_t th;
	int in, out;
	int fd;	     /* thread: the caller's end of the socket pair (sink_close closes it) */
	bool sock;   /* out is QEMU's stream socket */
	bool direct; /* the caller has QEMU's socket itself, no thread */
	bool owned;  /* direct: sink_close closes that socket */
	bool failed, done;
	uint64_t bytes;
	char err[256];
};

static ssize_t put(struct ckpt_sink *s, const char *b, size_t n)
{
	return s->sock ? send(s->out, b, n, MSG_NOSIGNAL) : write(s->out, b, n);
}

static void *sink_main(void *arg)
{
	struct ckpt_sink *s = arg;
	enum { BUF = 1 << 16 };
	char *b = malloc(BUF);

	for (ssize_t n; b && !s->failed;) {
		n = read(s->in, b, BUF);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			/* the relay ends once our direction is closed too */
			shutdown(s->in, SHUT_WR);
			if (s->sock)
				shutdown(s->out, SHUT_WR);
			s->done = n == 0;
			if (n < 0)
				snprintf(s->err, sizeof(s->err), "read: %s", strerror(errno));
			break;
		}
		for (ssize_t w = 0; w < n;) {
			ssize_t k = put(s, b + w, (size_t)(n - w));
			if (k < 0 && errno == EINTR)
				continue;
			if (k < 0) {
				snprintf(s->err, sizeof(s->err), "%s: %s",
					 s->sock ? "the incoming QEMU" : "write", strerror(errno));
				s->failed = true;
				break;
			}
			w += k;
		}
		s->bytes += (uint64_t)n;
	}
	free(b);
	return NULL;
}

/* Hand QEMU its end of the stream and start its load. */
static int sink_qemu(struct qemu_prepared *p, struct ckpt_sink *s, ferr_t *err)
{
	int qv[2];

	if (p->failed) {
		*err = p->err;
		return -1;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, qv) < 0)
		return ferr_sys(err, FX_FAIL, "socketpair");
	int r = qmp_exec(p->q, "getfd", json_pack("{s:s}", "fdname", QEMU_MIG_FD), qv[1], 5000,
			 NULL, err);
	close(qv[1]);
	if (r == 0)
		r = qmp_exec(p->q, "migrate-incoming", json_pack("{s:s}", "uri", "fd:" QEMU_MIG_FD),
			     -1, 10000, NULL, err);
	if (r < 0) {
		close(qv[0]);
		return ferr_wrap(err, "the incoming QEMU");
	}
	s->out = qv[0];
	s->sock = true;
	p->fed = true;
	return 0;
}

int qemu_sink_open(const struct ckpt_env *env, const char *dir, const char *prev, void *prepared,
		   struct ckpt_sink **out, int *fd, ferr_t *err)
{
	char path[PATH_MAX];
	int sv[2];
	struct ckpt_sink *s = calloc(1, sizeof(*s));

	(void)env;
	if (!s)
		return ferr_set(err, FX_FAIL, "out of memory");
	if (prev && *prev)
		pr_warn("the QEMU backend ignores an earlier round (%s)", prev);
	if (prepared) {
		if (sink_qemu(prepared, s, err) < 0) {
			free(s);
			return -1;
		}
		/* the caller writes into QEMU's socket itself: no copy by a
		 * thread in between (post-copy: both ways, and the caller owns
		 * it; otherwise sink_close closes it) */
		s->direct = true;
		s->owned = !((struct qemu_prepared *)prepared)->lazy;
		*fd = s->out;
		*out = s;
		return 0;
	} else if (xsnprintf_path(path, sizeof(path), dir, QEMU_STATE_FILE) < 0 ||
		   (s->out = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0) {
		free(s);
		return ferr_sys(err, FX_FAIL, "%s/%s", dir, QEMU_STATE_FILE);
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		close(s->out);
		free(s);
		return ferr_sys(err, FX_FAIL, "socketpair");
	}
	s->in = sv[1];
	s->fd = sv[0];
	if (pthread_create(&s->th, NULL, sink_main, s) != 0) {
		close(sv[0]);
		close(sv[1]);
		close(s->out);
		free(s);
		return ferr_set(err, FX_FAIL, "cannot start the stream's receiver");
	}
	*fd = sv[0];
	*out = s;
	return 0;
}

int qemu_sink_close(struct ckpt_sink *s, bool failed, ferr_t *err)
{
	int r = 0;

	if (!s)
		return 0;
	/* direct: QEMU's load says whether it had the whole stream; a
	 * post-copy's socket (not owned) is the caller's, which ends it and
	 * may have closed it by now (ckpt.h) */
	if (s->direct) {
		if (s->owned && failed)
			shutdown(s->out, SHUT_RDWR);
		if (s->owned)
			close(s->out);
		free(s);
		return 0;
	}
	if (failed) {
		s->failed = true;
		shutdown(s->in, SHUT_RDWR);
		if (s->sock)
			shutdown(s->out, SHUT_RDWR);
	}
	pthread_join(s->th, NULL);
	if (!failed && (!s->done || s->err[0]))
		r = ferr_set(err, FX_PEER, "VM state stream: %s",
			     s->err[0] ? s->err : "ended early");
	if (!failed && r == 0 && !s->sock && fsync(s->out) < 0)
		r = ferr_sys(err, FX_FAIL, "VM state");
	close(s->fd);
	close(s->in);
	close(s->out);
	free(s);
	return r;
}
