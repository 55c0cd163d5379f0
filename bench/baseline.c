/* SPDX-License-Identifier: ISC */
/*
 * immidb-bench-baseline: the cheapest possible FastCGI responder, the yardstick
 * for bench/run.sh. It runs the same process model as immidb-fcgi (a parent
 * that pre-forks NPROC children, each in an FCGX_Accept_r loop on one shared
 * unix socket) and answers every request with the health endpoint's headers
 * and a fixed body, doing no work at all. Whatever the real health endpoint
 * costs beyond this is ImmiDB's own overhead.
 *
 *   immidb-bench-baseline SOCKET_PATH NPROC
 *
 * The socket is made mode 0666 so that nginx's unprivileged workers can
 * connect (a benchmark aid; the real server uses listen_mode/listen_group).
 * SIGTERM or SIGINT: the parent stops the children, removes the socket and
 * exits 0. A child that dies is replaced.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fcgiapp.h>

enum { MAX_PROC = 256, LISTEN_BACKLOG = 1024 };

static const char RESPONSE[] = "Status: 200 OK\r\n"
                               "Content-Type: application/json; charset=utf-8\r\n"
                               "Cache-Control: no-store\r\n"
                               "Content-Length: 15\r\n"
                               "\r\n"
                               "{\"status\":\"ok\"}";

static void die(const char *what)
{
	fprintf(stderr, "immidb-bench-baseline: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Parse a decimal in [1, MAX_PROC]; returns -1 if it is anything else. */
static int parse_nproc(const char *s)
{
	char *end = NULL;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 1 || v > MAX_PROC)
		return -1;
	return (int)v;
}

/* The child: answer requests until killed. Never returns. */
static void child_loop(int listen_fd)
{
	FCGX_Request req;
	sigset_t none;
	struct sigaction sa;

	/* Undo the parent's signal setup: default SIGTERM/SIGINT, and no death
	 * by SIGPIPE when nginx closes a connection early. */
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGCHLD, &sa, NULL);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	if (FCGX_InitRequest(&req, listen_fd, 0) != 0) {
		fputs("immidb-bench-baseline: FCGX_InitRequest failed\n", stderr);
		_exit(1);
	}
	while (FCGX_Accept_r(&req) >= 0) {
		/* A failed write means the peer went away; nothing to do. */
		(void)FCGX_PutStr(RESPONSE, (int)(sizeof RESPONSE - 1), req.out);
		FCGX_Finish_r(&req);
	}
	_exit(0);
}

static pid_t spawn(int listen_fd)
{
	pid_t pid = fork();

	if (pid < 0)
		die("fork");
	if (pid == 0)
		child_loop(listen_fd);
	return pid;
}

static void on_signal(int sig)
{
	(void)sig; /* only here so that SIGCHLD is not discarded; see main */
}

int main(int argc, char **argv)
{
	pid_t kids[MAX_PROC];
	const char *path;
	struct sigaction sa;
	struct stat st;
	sigset_t set;
	int nproc, fd, sig, i;

	if (argc != 3 || (nproc = parse_nproc(argv[2])) < 0) {
		fprintf(stderr, "usage: immidb-bench-baseline SOCKET_PATH NPROC (1..%d)\n", MAX_PROC);
		return 2;
	}
	path = argv[1];
	/* libfcgi reads "host:port" for anything with a colon in it. */
	if (path[0] != '/' || strchr(path, ':') != NULL) {
		fputs("immidb-bench-baseline: SOCKET_PATH must be an absolute path without ':'\n",
		      stderr);
		return 2;
	}
	/* A stale socket from an earlier run is replaced; anything else is not. */
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "immidb-bench-baseline: %s exists and is not a socket\n",
			        path);
			return 1;
		}
		if (unlink(path) != 0)
			die("unlink stale socket");
	}

	if (FCGX_Init() != 0) {
		fputs("immidb-bench-baseline: FCGX_Init failed\n", stderr);
		return 1;
	}
	fd = FCGX_OpenSocket(path, LISTEN_BACKLOG);
	if (fd < 0) {
		fprintf(stderr, "immidb-bench-baseline: cannot listen on %s\n", path);
		return 1;
	}
	if (chmod(path, 0666) != 0)
		die("chmod socket");

	/* The parent takes its signals synchronously with sigwait(). SIGCHLD
	 * has a do-nothing handler because a blocked signal whose action is
	 * "ignore" may be discarded rather than left pending. */
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	sa.sa_handler = on_signal;
	sigaction(SIGCHLD, &sa, NULL);
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	if (sigprocmask(SIG_BLOCK, &set, NULL) != 0)
		die("sigprocmask");

	for (i = 0; i < nproc; i++)
		kids[i] = spawn(fd);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGTERM || sig == SIGINT)
			break;
		/* SIGCHLD: replace every child that has gone. */
		for (;;) {
			int status;
			pid_t dead = waitpid(-1, &status, WNOHANG);

			if (dead <= 0)
				break;
			for (i = 0; i < nproc; i++)
				if (kids[i] == dead) {
					fprintf(stderr, "immidb-bench-baseline: child %ld exited, restarting\n",
					        (long)dead);
					kids[i] = spawn(fd);
				}
		}
	}

	for (i = 0; i < nproc; i++)
		kill(kids[i], SIGTERM);
	for (i = 0; i < nproc; i++)
		while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
			;
	close(fd);
	unlink(path);
	return 0;
}
