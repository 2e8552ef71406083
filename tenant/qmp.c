/* QMP client (qmp.h). QEMU writes one JSON object per line. */
#include "tenant/qmp.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define QMP_EVENTS 16

struct qmp {
	int fd;
	char buf[65536];
	size_t len;
	char *events[QMP_EVENTS];
	size_t n_events;
	unsigned id;
};

int qmp_parse_line(const char *line, size_t len, json_t **ret, const char **event, json_t **msg,
		   ferr_t *err)
{
	json_error_t je;
	json_t *o = json_loadb(line, len, 0, &je), *v;

	if (ret)
		*ret = NULL;
	if (msg)
		*msg = NULL;
	if (!o || !json_is_object(o)) {
		json_decref(o);
		return ferr_set(err, FX_FAIL, "QMP: bad reply from QEMU (%s)", je.text);
	}
	if ((v = json_object_get(o, "event")) && json_is_string(v)) {
		if (event)
			*event = json_string_value(v);
		if (msg)
			*msg = o;
		else
			json_decref(o);
		return 1;
	}
	if ((v = json_object_get(o, "error"))) {
		const char *d = json_string_value(json_object_get(v, "desc"));
		const char *c = json_string_value(json_object_get(v, "class"));
		ferr_set(err, FX_FAIL, "QEMU: %s (%s)", d ? d : "error", c ? c : "?");
		json_decref(o);
		return -1;
	}
	if (ret) {
		v = json_object_get(o, "return");
		*ret = json_incref(v ? v : json_object_get(o, "QMP"));
	}
	if (msg)
		*msg = o;
	else
		json_decref(o);
	return 0;
}

/* The next line into *line (len without the newline), waiting up to the
 * deadline (monotonic ns). */
static int read_line(struct qmp *q, uint64_t deadline, char **line, size_t *len, ferr_t *err)
{
	for (;;) {
		char *nl = memchr(q->buf, '\n', q->len);
		if (nl) {
			*line = q->buf;
			*len = (size_t)(nl - q->buf);
			return 0;
		}
		if (q->len == sizeof(q->buf))
			return ferr_set(err, FX_FAIL, "QMP: a reply longer than %zu bytes",
					sizeof(q->buf));
		uint64_t now = now_ns();
		if (now >= deadline)
			return ferr_set(err, FX_FAIL, "QMP: QEMU did not answer in time");
		struct pollfd p = {.fd = q->fd, .events = POLLIN};
		int r = poll(&p, 1, (int)((deadline - now) / 1000000 + 1));
		if (r < 0 && errno != EINTR)
			return ferr_sys(err, FX_FAIL, "QMP: poll");
		if (r <= 0)
			continue;
		ssize_t n = read(q->fd, q->buf + q->len, sizeof(q->buf) - q->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferr_sys(err, FX_FAIL, "QMP: read");
		if (n == 0)
			return ferr_set(err, FX_FAIL, "QMP: QEMU closed its monitor (it exited?)");
		q->len += (size_t)n;
	}
}

static void consume(struct qmp *q, size_t len)
{
	size_t used = len + 1;

	memmove(q->buf, q->buf + used, q->len - used);
	q->len -= used;
}

static void keep_event(struct qmp *q, const char *ev)
{
	char *s = strdup(ev);

	if (!s)
		return;
	if (q->n_events == QMP_EVENTS) {
		free(q->events[0]);
		memmove(q->events, q->events + 1, sizeof(char *) * (QMP_EVENTS - 1));
		q->n_events--;
	}
	q->events[q->n_events++] = s;
}

bool qmp_event_seen(const struct qmp *q, const char *event)
{
	for (size_t i = 0; i < q->n_events; i++)
		if (!strcmp(q->events[i], event))
			return true;
	return false;
}

/* The next reply (to the command with id want; 0: any), events kept aside,
 * late replies to earlier commands (that timed out) skipped. */
static int read_reply(struct qmp *q, unsigned want, int timeout_ms, json_t **ret, ferr_t *err)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

	for (;;) {
		char *line = NULL;
		size_t len = 0;
		const char *ev = NULL;
		json_t *msg = NULL;
		if (read_line(q, deadline, &line, &len, err) < 0)
			return -1;
		int r = qmp_parse_line(line, len, ret, &ev, &msg, err);
		consume(q, len);
		if (r == 1)
			keep_event(q, ev);
		json_t *id = msg ? json_object_get(msg, "id") : NULL;
		bool stale = r == 0 && want && id && json_integer_value(id) != (json_int_t)want;
		json_decref(msg);
		if (stale && ret) {
			json_decref(*ret);
			*ret = NULL;
		}
		if (r <= 0 && !stale)
			return r;
	}
}

static int send_all(struct qmp *q, const char *s, size_t len, int fd, ferr_t *err)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = {.iov_base = (void *)s, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	memset(cbuf, 0, sizeof(cbuf));
	if (fd >= 0) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(c), &fd, sizeof(int));
	}
	while (iov.iov_len > 0) {
		ssize_t n = sendmsg(q->fd, &mh, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return ferr_sys(err, FX_FAIL, "QMP: send");
		iov.iov_base = (char *)iov.iov_base + n;
		iov.iov_len -= (size_t)n;
		mh.msg_control = NULL;
		mh.msg_controllen = 0;
	}
	return 0;
}

int qmp_exec(struct qmp *q, const char *cmd, json_t *args, int fd, int timeout_ms, json_t **ret,
	     ferr_t *err)
{
	json_t *o = json_pack("{s:s, s:I}", "execute", cmd, "id", (json_int_t)++q->id);
	char *s;
	int r;

	if (o && args)
		json_object_set(o, "arguments", args);
	json_decref(args);
	s = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!s)
		return ferr_set(err, FX_FAIL, "QMP: out of memory");
	size_t len = strlen(s);
	char *line = realloc(s, len + 2);
	if (!line) {
		free(s);
		return ferr_set(err, FX_FAIL, "QMP: out of memory");
	}
	memcpy(line + len, "\n", 2);
	r = send_all(q, line, len + 1, fd, err);
	free(line);
	if (r < 0)
		return -1;
	if (read_reply(q, q->id, timeout_ms, ret, err) < 0)
		return ferr_wrap(err, "%s", cmd);
	return 0;
}

int qmp_attach(int fd, int timeout_ms, struct qmp **out, ferr_t *err)
{
	struct qmp *q = calloc(1, sizeof(*q));
	json_t *greet = NULL;

	if (!q) {
		close(fd);
		return ferr_set(err, FX_FAIL, "out of memory");
	}
	q->fd = fd;
	if (read_reply(q, 0, timeout_ms, &greet, err) < 0 ||
	    qmp_exec(q, "qmp_capabilities", NULL, -1, timeout_ms, NULL, err) < 0) {
		json_decref(greet);
		qmp_close(q);
		return -1;
	}
	json_decref(greet);
	*out = q;
	return 0;
}

int qmp_open(const char *path, int timeout_ms, struct qmp **out, ferr_t *err)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000;

	if (strlen(path) >= sizeof(a.sun_path))
		return ferr_set(err, FX_FAIL, "QMP socket path too long: %s", path);
	strcpy(a.sun_path, path);
	for (;;) {
		int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0)
			return ferr_sys(err, FX_FAIL, "socket");
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			return qmp_attach(fd, timeout_ms, out, err);
		int e = errno;
		close(fd);
		if ((e != ENOENT && e != ECONNREFUSED) || now_ns() >= deadline) {
			errno = e;
			return ferr_sys(err, FX_FAIL, "QMP socket %s", path);
		}
		struct timespec ts = {0, 20 * 1000000};
		nanosleep(&ts, NULL);
	}
}

void qmp_close(struct qmp *q)
{
	if (!q)
		return;
	close(q->fd);
	for (size_t i = 0; i < q->n_events; i++)
		free(q->events[i]);
	free(q);
}
