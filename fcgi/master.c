/* SPDX-License-Identifier: ISC */
/*
 * The master: opens the listening socket, pre-forks the workers, restarts
 * one that dies (backing off when they die in a loop), stops gracefully on
 * SIGTERM/SIGINT and, on SIGHUP, re-reads the configuration and replaces the
 * workers one at a time: the new one starts before the old one is asked to
 * finish, so the pool never has fewer workers accepting than configured.
 * Signals are blocked and taken synchronously with sigtimedwait.
 */
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <time.h>
#include <unistd.h>

#include "audit/logq.h"
#include "core/util.h"
#include "fcgi.h"

struct slot {
	pid_t pid;          /* 0 if empty */
	unsigned gen;       /* configuration generation it runs */
	struct timespec started;
	int retiring;       /* asked to stop, not to be replaced */
};

static struct slot slots[2 * IDB_CONF_WORKERS_MAX];
static unsigned generation;

static void
logmsg(const char *msg, const char *detail)
{
	fprintf(stderr, "immidb-fcgi[%ld]: %s%s%s\n", (long)getpid(), msg, detail ? ": " : "", detail ? detail : "");
}

static int
listen_unix(const struct idb_conf *c, const char *path)
{
	struct sockaddr_un sa;
	struct group *g;
	mode_t old;
	int fd;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		logmsg("listen: socket path too long", path);
		return -1;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return -1;
	unlink(path); /* a stale socket from an earlier run */
	old = umask(0177); /* no window in which others may connect */
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		umask(old);
		logmsg("listen: cannot bind", strerror(errno));
		close(fd);
		return -1;
	}
	umask(old);
	if (c->listen_group[0] != '\0') {
		if ((g = getgrnam(c->listen_group)) == NULL || chown(path, (uid_t)-1, g->gr_gid) != 0) {
			logmsg("listen_group: cannot give the socket to group", c->listen_group);
			close(fd);
			return -1;
		}
	}
	if (chmod(path, c->listen_mode) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int
listen_tcp(const char *spec)
{
	char host[64];
	const char *colon = strrchr(spec, ':');
	struct sockaddr_in6 s6;
	struct sockaddr_in s4;
	long long port;
	size_t hl = (size_t)(colon - spec);
	int fd, one = 1;

	if (hl == 0 || hl >= sizeof(host) || idb_parse_ll(colon + 1, 1, 65535, &port) != 0)
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memset(&s4, 0, sizeof(s4));
	memset(&s6, 0, sizeof(s6));
	if (inet_pton(AF_INET, host, &s4.sin_addr) == 1) {
		s4.sin_family = AF_INET;
		s4.sin_port = htons((uint16_t)port);
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd >= 0 && bind(fd, (struct sockaddr *)&s4, sizeof(s4)) == 0)
			return fd;
	} else if (host[0] == '[' && host[hl - 1] == ']' && (host[hl - 1] = '\0', 1) &&
	           inet_pton(AF_INET6, host + 1, &s6.sin6_addr) == 1) {
		s6.sin6_family = AF_INET6;
		s6.sin6_port = htons((uint16_t)port);
		fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
		setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (fd >= 0 && bind(fd, (struct sockaddr *)&s6, sizeof(s6)) == 0)
			return fd;
	} else {
		logmsg("listen: expected an IP address and port", spec);
		return -1;
	}
	logmsg("listen: cannot bind", strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

int
idb_listen_open(const struct idb_conf *c)
{
	int fd;

	fd = strncmp(c->listen, "unix:", 5) == 0 ? listen_unix(c, c->listen + 5) : listen_tcp(c->listen);
	if (fd < 0)
		return -1;
	if (listen(fd, 1024) != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
		logmsg("listen", strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static long
ms_since(const struct timespec *t)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t->tv_sec) * 1000 + (now.tv_nsec - t->tv_nsec) / 1000000;
}

static pid_t
spawn(const struct idb_conf *c, const struct idb_master *m, int fd, unsigned gen)
{
	sigset_t none;
	pid_t pid;
	size_t i;

	for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		if (slots[i].pid == 0)
			break;
	if (i == sizeof(slots) / sizeof(slots[0]))
		return -1;
	fflush(stderr);
	if ((pid = fork()) < 0) {
		logmsg("fork", strerror(errno));
		return -1;
	}
	if (pid == 0) {
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		idb_logq_own((int)i);
		idb_worker_run(c, m, fd);
	}
	slots[i].pid = pid;
	slots[i].gen = gen;
	slots[i].retiring = 0;
	clock_gettime(CLOCK_MONOTONIC, &slots[i].started);
	return pid;
}

static size_t
live(int count_retiring)
{
	size_t i, n = 0;

	for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		if (slots[i].pid != 0 && (count_retiring || !slots[i].retiring))
			n++;
	return n;
}

/* Reaps exited children; returns how many non-retiring workers died quickly. */
static unsigned
reap(unsigned *died)
{
	unsigned quick = 0;
	size_t i;
	pid_t pid;
	int status;

	*died = 0;
	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
			if (slots[i].pid != pid)
				continue;
			if (!slots[i].retiring) {
				(*died)++;
				if (ms_since(&slots[i].started) < IDB_QUICK_DEATH_SEC * 1000)
					quick++;
				if (WIFSIGNALED(status))
					fprintf(stderr, "immidb-fcgi[%ld]: worker %ld killed by signal %d\n", (long)getpid(),
					        (long)pid, WTERMSIG(status));
				else
					fprintf(stderr, "immidb-fcgi[%ld]: worker %ld exited with status %d\n", (long)getpid(),
					        (long)pid, WEXITSTATUS(status));
			}
			slots[i].pid = 0;
		}
	}
	return quick;
}

static void
signal_all(int sig, int also_retiring)
{
	size_t i;

	for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		if (slots[i].pid != 0 && (also_retiring || !slots[i].retiring))
			kill(slots[i].pid, sig);
}

/* Waits for every child to exit, SIGKILLing those that outlive the grace period. */
static void
stop_all(void)
{
	struct timespec t0, tick = {0, 100 * 1000 * 1000};
	sigset_t set;
	unsigned died;

	size_t i;

	for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++)
		slots[i].retiring = 1; /* their exits are expected now */
	signal_all(SIGTERM, 1);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	while (live(1) > 0) {
		if (ms_since(&t0) > IDB_STOP_GRACE_SEC * 1000) {
			signal_all(SIGKILL, 1);
			while (waitpid(-1, NULL, 0) > 0)
				;
			memset(slots, 0, sizeof(slots));
			break;
		}
		sigtimedwait(&set, NULL, &tick);
		reap(&died);
	}
}

/*
 * Replaces every worker of an older generation by one of the current
 * generation, one at a time, then trims or grows to c->workers.
 * Returns 1 if a stop signal arrived meanwhile.
 */
static int
roll(const struct idb_conf *c, const struct idb_master *m, int fd)
{
	struct timespec tick = {0, 50 * 1000 * 1000}, t0;
	sigset_t set;
	unsigned died;
	size_t i;
	pid_t old;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (i = 0; i < sizeof(slots) / sizeof(slots[0]); i++) {
		if (slots[i].pid == 0 || slots[i].gen == generation || slots[i].retiring)
			continue;
		old = slots[i].pid;
		if (live(0) <= c->workers && spawn(c, m, fd, generation) < 0)
			return 0;
		slots[i].retiring = 1;
		kill(old, SIGTERM);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		while (slots[i].pid == old) {
			sig = sigtimedwait(&set, NULL, &tick);
			if (sig == SIGTERM || sig == SIGINT)
				return 1;
			reap(&died);
			if (slots[i].pid == old && ms_since(&t0) > IDB_STOP_GRACE_SEC * 1000)
				kill(old, SIGKILL);
		}
	}
	while (live(0) < c->workers && spawn(c, m, fd, generation) > 0)
		;
	for (i = 0; i < sizeof(slots) / sizeof(slots[0]) && live(0) > c->workers; i++)
		if (slots[i].pid != 0 && !slots[i].retiring) {
			slots[i].retiring = 1;
			kill(slots[i].pid, SIGTERM);
		}
	return 0;
}

int
idb_master_run(struct idb_conf *c, const char *config_opt, const char *data_opt,
               const struct idb_master *m, int fd)
{
	static struct idb_conf next;
	struct timespec wait;
	char err[IDB_CONF_ERR_MAX];
	unsigned died, quick, fails = 0;
	long backoff = 0;
	struct timespec due;
	sigset_t set;
	int sig, pending = 0;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The workers' shared slots for the group commit of read entries: one per slot of the table above. */
	if (idb_logq_init(sizeof(slots) / sizeof(slots[0])) != IDB_OK)
		logmsg("group commit", "cannot map the shared slots: each read commits alone");
	generation = 1;
	while (live(0) < c->workers && spawn(c, m, fd, generation) > 0)
		;
	fprintf(stderr, "immidb-fcgi[%ld]: %u workers on %s\n", (long)getpid(), c->workers, c->listen);
	clock_gettime(CLOCK_MONOTONIC, &due);
	for (;;) {
		wait.tv_sec = 0;
		wait.tv_nsec = 200 * 1000 * 1000;
		sig = sigtimedwait(&set, NULL, &wait);
		if (sig == SIGTERM || sig == SIGINT) {
			logmsg("stopping", NULL);
			break;
		}
		if (sig == SIGHUP) {
			if (idb_conf_open(&next, config_opt, data_opt, err, sizeof(err)) != IDB_OK) {
				logmsg("SIGHUP: configuration not reloaded", err);
				continue;
			}
			if (strcmp(next.listen, c->listen) != 0 || strcmp(next.data_dir, c->data_dir) != 0 ||
			    strcmp(next.master_key_file, c->master_key_file) != 0)
				logmsg("SIGHUP: listen, data_dir and master_key_file change only on restart", NULL);
			memcpy(next.listen, c->listen, sizeof(next.listen));
			memcpy(next.data_dir, c->data_dir, sizeof(next.data_dir));
			memcpy(next.master_key_file, c->master_key_file, sizeof(next.master_key_file));
			*c = next;
			generation++;
			logmsg("SIGHUP: configuration reloaded, replacing workers", NULL);
			if (roll(c, m, fd))
				break;
			continue;
		}
		quick = reap(&died);
		if (died > 0) {
			if (quick > 0) {
				fails++;
				backoff = IDB_BACKOFF_MIN_MS << (fails > 8 ? 8 : fails - 1);
				if (backoff > IDB_BACKOFF_MAX_MS)
					backoff = IDB_BACKOFF_MAX_MS;
				fprintf(stderr, "immidb-fcgi[%ld]: workers dying quickly; next start in %ld ms\n",
				        (long)getpid(), backoff);
			} else {
				fails = 0;
				backoff = 0;
			}
			clock_gettime(CLOCK_MONOTONIC, &due);
			pending = 1;
		}
		if (pending && ms_since(&due) >= backoff) {
			while (live(0) < c->workers && spawn(c, m, fd, generation) > 0)
				;
			pending = 0;
		}
	}
	stop_all();
	if (strncmp(c->listen, "unix:", 5) == 0)
		unlink(c->listen + 5);
	close(fd);
	return 0;
}
