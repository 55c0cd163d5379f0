/* SPDX-License-Identifier: ISC */
/*
 * One worker: accepts FastCGI connections on the shared listening socket,
 * turns each request into a struct idb_req, runs it through the library and
 * writes the struct idb_resp back. The listening socket is non-blocking; a
 * worker waits in epoll_pwait with SIGTERM unblocked only there, so a stop request
 * never interrupts a request in flight: it is seen before the next accept.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fcgiapp.h>

#include "api/api.h"
#include "audit/logq.h"
#include "core/util.h"
#include "fcgi.h"

static volatile sig_atomic_t stop;

static void
on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static const char *
status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 302: return "Found";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 409: return "Conflict";
	case 413: return "Payload Too Large";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

static const char *
param(FCGX_Request *r, const char *name)
{
	return FCGX_GetParam(name, r->envp);
}

/* Fills req from the FastCGI parameters and reads the body. */
static enum idb_err
build(FCGX_Request *r, struct idb_arena *a, struct idb_req *req)
{
	const char *uri, *q, *cl;
	long long len = 0;
	char *body;
	size_t got = 0;
	int n;

	memset(req, 0, sizeof(*req));
	req->arena = a;
	req->method = param(r, "REQUEST_METHOD");
	uri = param(r, "REQUEST_URI");
	if (req->method == NULL || uri == NULL)
		return IDB_E_BAD_REQUEST;
	q = strchr(uri, '?');
	req->path = q ? idb_arena_strndup(a, uri, (size_t)(q - uri)) : uri;
	req->query = q ? q + 1 : "";
	req->remote_addr = param(r, "REMOTE_ADDR");
	req->cookie = param(r, "HTTP_COOKIE");
	req->csrf_token = param(r, "HTTP_X_CSRF_TOKEN");
	req->forwarded_for = param(r, "HTTP_X_FORWARDED_FOR");
	req->access_reason = param(r, "HTTP_X_ACCESS_REASON");
	req->content_type = param(r, "CONTENT_TYPE");
	if (req->path == NULL)
		return IDB_E_NOMEM;
	cl = param(r, "CONTENT_LENGTH");
	if (cl != NULL && *cl != '\0' && idb_parse_ll(cl, 0, (long long)1 << 40, &len) != 0)
		return IDB_E_BAD_REQUEST;
	if (len > IDB_BODY_MAX)
		return IDB_E_PAYLOAD_TOO_LARGE;
	if ((body = idb_arena_alloc(a, (size_t)len + 1)) == NULL)
		return IDB_E_NOMEM;
	while (got < (size_t)len) {
		n = FCGX_GetStr(body + got, (int)((size_t)len - got), r->in);
		if (n <= 0)
			return IDB_E_BAD_REQUEST;
		got += (size_t)n;
	}
	body[got] = '\0';
	req->body = body;
	req->body_len = got;
	return IDB_OK;
}

static void
put(FCGX_Request *r, const char *s)
{
	FCGX_PutS(s, r->out);
}

static void
respond(FCGX_Request *r, const struct idb_resp *resp)
{
	char line[64];
	size_t i;

	snprintf(line, sizeof(line), "Status: %d %s\r\n", resp->status, status_text(resp->status));
	put(r, line);
	if (resp->status != 204) {
		put(r, "Content-Type: ");
		put(r, resp->content_type);
		put(r, "\r\n");
	}
	put(r, "Cache-Control: no-store\r\n");
	for (i = 0; i < resp->nhdr; i++) {
		put(r, resp->hdr[i].name);
		put(r, ": ");
		put(r, resp->hdr[i].value);
		put(r, "\r\n");
	}
	snprintf(line, sizeof(line), "Content-Length: %zu\r\n\r\n", resp->status == 204 ? (size_t)0 : resp->body.len);
	put(r, line);
	if (resp->status != 204 && resp->body.len > 0)
		FCGX_PutStr(resp->body.data, (int)resp->body.len, r->out);
}

/*
 * The requests a worker has in hand: one being handled, and others whose
 * answers wait for the group commit of their access-log entries (up to
 * IDB_LOGQ_PER_WORKER in all, one slot of the shared table each). While
 * one waits, the worker takes the next connection if one is already
 * there: more requests in flight make bigger group commits, and the CPUs
 * do not idle while a commit waits for the disk.
 */
struct inflight {
	FCGX_Request r;
	struct idb_arena arena;
	struct idb_req req;
	struct idb_resp resp;
	struct idb_ctx *waiting; /* NULL: free */
	enum idb_err built;
	unsigned long long seq; /* the order they came in: the oldest is waited for first */
};

/* Sends the answer and ends the connection. */
static void
reply(struct inflight *f, int local)
{
	int pending;

	respond(&f->r, &f->resp);
	/* Detached, the connection closes without the wait; only when nginx
	 * has nothing more on its way (a refused body keeps the drain). */
	if (local && f->built == IDB_OK && ioctl(f->r.ipcFd, FIONREAD, &pending) == 0 && pending == 0)
		FCGX_Detach(&f->r);
	FCGX_Finish_r(&f->r);
	idb_resp_free(&f->resp);
	idb_arena_reset(&f->arena);
	f->waiting = NULL;
}

/* Handles a request just accepted: answered at once, or left waiting. */
static void
start(struct idb_app *app, struct inflight *f, int local, unsigned long long seq)
{
	idb_resp_init(&f->resp);
	f->waiting = NULL;
	f->seq = seq;
	if ((f->built = build(&f->r, &f->arena, &f->req)) != IDB_OK)
		idb_resp_error(&f->resp, f->built, NULL);
	else if (!idb_app_start(app, &f->req, &f->resp, &f->waiting))
		return;
	reply(f, local);
}

/* Replies to the requests in hand whose entries are settled, without leading. */
static void
reply_settled(struct idb_app *app, struct inflight *f, int local)
{
	int i;

	for (i = 0; i < IDB_LOGQ_PER_WORKER; i++)
		if (f[i].waiting != NULL && idb_app_complete(app, f[i].waiting, IDB_COMPLETE_LOOK))
			reply(&f[i], local);
}

/* Whether a request in hand before i waits on the same org as i. */
static int
org_seen(const struct inflight *f, int i)
{
	int j;

	for (j = 0; j < i; j++)
		if (f[j].waiting != NULL && strcmp(f[j].waiting->org.id, f[i].waiting->org.id) == 0)
			return 1;
	return 0;
}

/*
 * Replies to the requests in hand whose entries are settled, first: their
 * answers go out before this worker spends a commit's time leading. Then,
 * for each org that still has entries of this worker waiting, leads the
 * org's commit if its queue is free (one try per org: a leader carries
 * every pending entry of the org), and replies to what that settled.
 * Returns how many are still in hand, with a free one's index in *free_i
 * and the oldest waiting one's in *oldest (-1: none).
 */
static int
answered(struct idb_app *app, struct inflight *f, int local, int *free_i, int *oldest)
{
	int i, n = 0;

	reply_settled(app, f, local);
	for (i = 0; i < IDB_LOGQ_PER_WORKER; i++)
		if (f[i].waiting != NULL && !org_seen(f, i) && idb_app_complete(app, f[i].waiting, IDB_COMPLETE_LEAD)) {
			reply(&f[i], local);
			reply_settled(app, f, local);
		}
	*free_i = *oldest = -1;
	for (i = 0; i < IDB_LOGQ_PER_WORKER; i++) {
		if (f[i].waiting == NULL) {
			if (*free_i < 0)
				*free_i = i;
			continue;
		}
		n++;
		if (*oldest < 0 || f[i].seq < f[*oldest].seq)
			*oldest = i;
	}
	return n;
}

void
idb_worker_run(const struct idb_conf *conf, const struct idb_master *m, int listen_fd)
{
	struct inflight f[IDB_LOGQ_PER_WORKER];
	struct sigaction sa;
	sigset_t blocked, waitmask;
	struct idb_app app;
	struct epoll_event ev;
	struct sockaddr_storage sa_listen;
	socklen_t sa_len = sizeof(sa_listen);
	unsigned long long seq = 0;
	enum idb_err e;
	int rc, local, ep, i, n, free_i, oldest;

	prctl(PR_SET_PDEATHSIG, SIGTERM);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	/* SIGTERM and SIGINT stay blocked except inside epoll_pwait. */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGTERM);
	sigaddset(&blocked, SIGINT);
	sigprocmask(SIG_SETMASK, &blocked, NULL);
	sigemptyset(&waitmask);
	if (getppid() == 1)
		_exit(0); /* the master died before prctl */

	if ((e = idb_app_init(&app, conf, m)) != IDB_OK) {
		fprintf(stderr, "immidb-fcgi[%ld]: cannot open the registry: %s\n", (long)getpid(), idb_err_str(e));
		_exit(3);
	}
	if (FCGX_Init() != 0) {
		fprintf(stderr, "immidb-fcgi[%ld]: FastCGI initialisation failed\n", (long)getpid());
		_exit(3);
	}
	memset(f, 0, sizeof(f));
	for (i = 0; i < IDB_LOGQ_PER_WORKER; i++) {
		if (FCGX_InitRequest(&f[i].r, listen_fd, FCGI_FAIL_ACCEPT_ON_INTR) != 0) {
			fprintf(stderr, "immidb-fcgi[%ld]: FastCGI initialisation failed\n", (long)getpid());
			_exit(3);
		}
		idb_arena_init(&f[i].arena, IDB_ARENA_MAX);
	}
	/* libfcgi ends a connection with a lingering close: shutdown, then a wait
	 * until nginx has closed its end, then close. That keeps TCP from
	 * resetting a connection whose answer nginx has not read yet, and holds
	 * this worker for a round trip through nginx on every request. A unix
	 * socket has no reset: what was written stays readable after close. */
	local = getsockname(listen_fd, (struct sockaddr *)&sa_listen, &sa_len) == 0 && sa_listen.ss_family == AF_UNIX;
	/* Exclusive: a new connection wakes one waiting worker, not all of them
	 * (with poll every idle worker woke, and all but one found nothing). */
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN | EPOLLEXCLUSIVE;
	ev.data.fd = listen_fd;
	if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, listen_fd, &ev) != 0) {
		fprintf(stderr, "immidb-fcgi[%ld]: cannot watch the listening socket\n", (long)getpid());
		_exit(3);
	}
	for (;;) {
		/* Answer what has been settled meanwhile (leading an org's commit if its queue is free). */
		n = answered(&app, f, local, &free_i, &oldest);
		if (stop && n == 0)
			break;
		/* A new connection: waited for when nothing is in hand, else only if one is there already. */
		if (!stop && free_i >= 0) {
			rc = epoll_pwait(ep, &ev, 1, n > 0 ? 0 : -1, &waitmask);
			if (rc > 0 && !stop && FCGX_Accept_r(&f[free_i].r) >= 0) {
				start(&app, &f[free_i], local, ++seq);
				continue;
			}
			if (n == 0)
				continue; /* another worker took it (EAGAIN), the peer left, or a signal */
		}
		/* Nothing new: wait for the oldest request in hand. */
		if (oldest >= 0 && idb_app_complete(&app, f[oldest].waiting, IDB_COMPLETE_WAIT))
			reply(&f[oldest], local);
	}
	for (i = 0; i < IDB_LOGQ_PER_WORKER; i++) {
		FCGX_Free(&f[i].r, 1);
		idb_arena_free(&f[i].arena);
	}
	idb_app_free(&app);
	exit(0); /* not _exit: LeakSanitizer checks the worker at exit */
}
