/* SPDX-License-Identifier: ISC */
/* The integration harness (see harness.h). */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#define NGINX_BIN "/usr/sbin/nginx"
#define ARGS_MAX 32

long long
h_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void
h_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static int
free_port(void)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &len) == 0)
		port = ntohs(sa.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Reads everything from fd into out (truncating), NUL-terminated. */
static void
drain(int fd, char *out, size_t outlen)
{
	char sink[4096];
	size_t n = 0;
	ssize_t r;

	for (;;) {
		if (out != NULL && n + 1 < outlen)
			r = read(fd, out + n, outlen - 1 - n);
		else
			r = read(fd, sink, sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (out != NULL && n + 1 < outlen)
			n += (size_t)r;
	}
	if (out != NULL && outlen > 0)
		out[n] = '\0';
}

static int
run_argv(const char *stdin_text, char *out, size_t outlen, char *err, size_t errlen, char *const argv[])
{
	int in[2], o[2], e[2], status;
	pid_t pid;

	if (pipe(in) != 0 || pipe(o) != 0 || pipe(e) != 0)
		return -1;
	if ((pid = fork()) == 0) {
		dup2(in[0], 0);
		dup2(o[1], 1);
		dup2(e[1], 2);
		close(in[1]);
		close(o[0]);
		close(e[0]);
		execv(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(o[1]);
	close(e[1]);
	if (stdin_text != NULL && write(in[1], stdin_text, strlen(stdin_text)) < 0)
		status = -1;
	close(in[1]);
	/* stderr is small: read stdout fully first, then stderr. */
	drain(o[0], out, outlen);
	drain(e[0], err, errlen);
	close(o[0]);
	close(e[0]);
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int
h_run(const char *stdin_text, char *out, size_t outlen, char *err, size_t errlen, const char *prog, ...)
{
	char *argv[ARGS_MAX];
	va_list ap;
	int n = 0;

	argv[n++] = (char *)prog;
	va_start(ap, prog);
	while (n < ARGS_MAX - 1 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return run_argv(stdin_text, out, outlen, err, errlen, argv);
}

int
h_admin(struct h_env *env, const char *stdin_text, char *out, size_t outlen, char *err, size_t errlen, ...)
{
	char *argv[ARGS_MAX];
	va_list ap;
	int n = 0;

	argv[n++] = IDB_BUILD_DIR "/immidb-admin";
	argv[n++] = "--config";
	argv[n++] = env->conf;
	va_start(ap, errlen);
	while (n < ARGS_MAX - 1 && (argv[n] = va_arg(ap, char *)) != NULL)
		n++;
	va_end(ap);
	argv[n] = NULL;
	return run_argv(stdin_text, out, outlen, err, errlen, argv);
}

static pid_t
spawn_logged(char *const argv[], const char *log)
{
	pid_t pid = fork();
	int fd;

	if (pid == 0) {
		if ((fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600)) >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		fd = open("/dev/null", O_RDONLY);
		dup2(fd, 0);
		setpgid(0, 0); /* keep terminal signals away from the servers */
		execv(argv[0], argv);
		_exit(127);
	}
	return pid;
}

int
h_fcgi_start(struct h_env *env)
{
	char *argv[] = {IDB_BUILD_DIR "/immidb-fcgi", "--config", env->conf, NULL};

	env->fcgi = spawn_logged(argv, env->fcgi_log);
	return env->fcgi > 0 ? 0 : -1;
}

int
h_fcgi_stop(struct h_env *env, int timeout_ms)
{
	long long t0 = h_now_ms();
	int status;

	if (env->fcgi <= 0)
		return 0;
	kill(env->fcgi, SIGTERM);
	while (h_now_ms() - t0 < timeout_ms) {
		if (waitpid(env->fcgi, &status, WNOHANG) == env->fcgi) {
			env->fcgi = 0;
			return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
		}
		h_sleep_ms(20);
	}
	kill(env->fcgi, SIGKILL);
	waitpid(env->fcgi, &status, 0);
	env->fcgi = 0;
	return -1;
}

int
h_wait_ready(struct h_env *env, int timeout_ms)
{
	long long t0 = h_now_ms();
	struct h_resp r;

	while (h_now_ms() - t0 < timeout_ms) {
		if (h_http(env, "GET", "/api/v1/health", NULL, NULL, 0, &r) == 0 && r.status == 200) {
			h_resp_free(&r);
			return 0;
		}
		h_resp_free(&r);
		h_sleep_ms(50);
	}
	return -1;
}

static int
write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	size_t n = strlen(text);
	int ok;

	if (fd < 0)
		return -1;
	ok = write(fd, text, n) == (ssize_t)n;
	close(fd);
	return ok ? 0 : -1;
}

int
h_conf_append(struct h_env *env, const char *line)
{
	size_t n = strlen(line);
	int fd, ok;

	if ((fd = open(env->conf, O_WRONLY | O_APPEND)) < 0)
		return -1;
	ok = write(fd, line, n) == (ssize_t)n;
	close(fd);
	if (!ok || h_fcgi_stop(env, 12000) != 0 || h_fcgi_start(env) != 0 || h_wait_ready(env, 15000) != 0)
		return -1;
	return 0;
}

#define J(dst, ...) (snprintf(dst, sizeof(dst), __VA_ARGS__) >= (int)sizeof(dst) ? -1 : 0)

int
h_start(struct h_env *env, int workers)
{
	return h_start_with(env, workers, "");
}

int
h_start_with(struct h_env *env, int workers, const char *trusted_proxies)
{
	char conf[2048], port[16], out[4096], err[4096];
	const char *user = getuid() == 0 ? "nobody nogroup" : NULL;
	char *ngx_argv[12];
	int rc, n = 0;

	memset(env, 0, sizeof(*env));
	env->workers = workers;
	if (J(env->dir, "/tmp/immidb-test.XXXXXX") || mkdtemp(env->dir) == NULL)
		return -1;
	/* nginx's workers (nobody) must reach the socket: traverse only. */
	chmod(env->dir, 0711);
	if (J(env->data, "%s/data", env->dir) || J(env->conf, "%s/immidb.conf", env->dir) ||
	    J(env->sock, "%s/fcgi.sock", env->dir) || J(env->ngx_conf, "%s/nginx.conf", env->dir) ||
	    J(env->ngx_prefix, "%s/nginx", env->dir) || J(env->fcgi_log, "%s/fcgi.log", env->dir))
		return -1;
	if ((env->port = free_port()) < 0)
		return -1;
	snprintf(env->base, sizeof(env->base), "http://127.0.0.1:%d", env->port);
	if (J(conf,
	      "# written by the test harness\n"
	      "data_dir = %s\n"
	      "listen = unix:%s\n"
	      "listen_mode = 0660\n"
	      "listen_group = %s\n"
	      "workers = %d\n"
	      "log_origin = test.immidb.localhost\n"
	      "public_url = %s\n"
	      "trusted_proxies = %s\n",
	      env->data, env->sock, getuid() == 0 ? "nogroup" : "", workers, env->base, trusted_proxies) ||
	    write_file(env->conf, conf, 0600) != 0)
		return -1;
	if ((rc = h_admin(env, NULL, out, sizeof(out), err, sizeof(err), "init", NULL)) != 0) {
		fprintf(stderr, "harness: immidb-admin init failed (%d): %s\n", rc, err);
		return -1;
	}
	if (h_fcgi_start(env) != 0)
		return -1;
	snprintf(port, sizeof(port), "%d", env->port);
	rc = user ? h_run(NULL, out, sizeof(out), err, sizeof(err), "/bin/sh", IDB_SOURCE_DIR "/conf/nginx-dev.sh",
	                  "--example", IDB_SOURCE_DIR "/nginx.conf.example", "--out", env->ngx_conf, "--port", port,
	                  "--socket", env->sock, "--web", IDB_SOURCE_DIR "/web", "--prefix", env->ngx_prefix,
	                  "--user", user, NULL)
	          : h_run(NULL, out, sizeof(out), err, sizeof(err), "/bin/sh", IDB_SOURCE_DIR "/conf/nginx-dev.sh",
	                  "--example", IDB_SOURCE_DIR "/nginx.conf.example", "--out", env->ngx_conf, "--port", port,
	                  "--socket", env->sock, "--web", IDB_SOURCE_DIR "/web", "--prefix", env->ngx_prefix, NULL);
	if (rc != 0) {
		fprintf(stderr, "harness: nginx-dev.sh failed: %s\n", err);
		return -1;
	}
	ngx_argv[n++] = NGINX_BIN;
	ngx_argv[n++] = "-p";
	ngx_argv[n++] = env->ngx_prefix;
	ngx_argv[n++] = "-c";
	ngx_argv[n++] = env->ngx_conf;
	ngx_argv[n++] = "-e";
	ngx_argv[n++] = "logs/error.log";
	ngx_argv[n++] = "-g";
	ngx_argv[n++] = "daemon off;";
	ngx_argv[n] = NULL;
	{
		char log[H_PATH + 16];

		snprintf(log, sizeof(log), "%s/nginx.out", env->dir);
		env->nginx = spawn_logged(ngx_argv, log);
	}
	if (env->nginx <= 0 || h_wait_ready(env, 15000) != 0) {
		fprintf(stderr, "harness: the server did not become ready\n");
		return -1;
	}
	return 0;
}

static void
rm_rf(const char *path)
{
	char sub[H_PATH * 2];
	struct dirent *d;
	struct stat st;
	DIR *dir;

	if (lstat(path, &st) != 0)
		return;
	if (S_ISDIR(st.st_mode) && (dir = opendir(path)) != NULL) {
		while ((d = readdir(dir)) != NULL) {
			if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
				continue;
			if (snprintf(sub, sizeof(sub), "%s/%s", path, d->d_name) < (int)sizeof(sub))
				rm_rf(sub);
		}
		closedir(dir);
		rmdir(path);
	} else
		unlink(path);
}

int
h_stop(struct h_env *env)
{
	size_t len = 0;
	char *log;
	int status, rc = 0;

	h_fcgi_stop(env, 12000);
	if (env->nginx > 0) {
		kill(env->nginx, SIGQUIT);
		waitpid(env->nginx, &status, 0);
		env->nginx = 0;
	}
	if ((log = h_slurp(env->fcgi_log, &len)) != NULL) {
		if (h_contains(log, len, "Sanitizer") || h_contains(log, len, "runtime error:")) {
			fprintf(stderr, "harness: the server's log shows a sanitizer report:\n%.*s\n", (int)(len > 8000 ? 8000 : len), log);
			rc = -1;
		}
		free(log);
	}
	if (getenv("IDB_TEST_KEEP") == NULL && env->dir[0] != '\0')
		rm_rf(env->dir);
	return rc;
}

struct sink {
	char *p;
	size_t n;
};

static size_t
collect(char *ptr, size_t size, size_t nmemb, void *arg)
{
	struct sink *s = arg;
	size_t add = size * nmemb;
	char *np = realloc(s->p, s->n + add + 1);

	if (np == NULL)
		return 0;
	memcpy(np + s->n, ptr, add);
	s->n += add;
	np[s->n] = '\0';
	s->p = np;
	return add;
}

int
h_http(struct h_env *env, const char *method, const char *path, const char *const *headers, const char *body,
       size_t bodylen, struct h_resp *r)
{
	struct sink b = {NULL, 0}, h = {NULL, 0};
	struct curl_slist *list = NULL;
	char url[H_PATH * 2];
	CURLcode rc;
	CURL *c;

	memset(r, 0, sizeof(*r));
	if ((c = curl_easy_init()) == NULL)
		return -1;
	snprintf(url, sizeof(url), "%s%s", env->base, path);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	for (; headers != NULL && *headers != NULL; headers++)
		list = curl_slist_append(list, *headers);
	if (body != NULL) {
		list = curl_slist_append(list, "Content-Type: application/json");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)bodylen);
	}
	list = curl_slist_append(list, "Expect:");
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	rc = curl_easy_perform(c);
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r->status);
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	r->body = b.p ? b.p : calloc(1, 1);
	r->len = b.n;
	r->headers = h.p ? h.p : calloc(1, 1);
	return rc == CURLE_OK ? 0 : -1;
}

void
h_resp_free(struct h_resp *r)
{
	free(r->body);
	free(r->headers);
	r->body = r->headers = NULL;
}

int
h_header(const struct h_resp *r, const char *name, char *out, size_t outlen)
{
	size_t nl = strlen(name), vl;
	const char *p = r->headers, *eol, *v;

	while (p != NULL && *p != '\0') {
		eol = strstr(p, "\r\n");
		if (eol == NULL)
			eol = p + strlen(p);
		if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
			v = p + nl + 1;
			while (*v == ' ')
				v++;
			vl = (size_t)(eol - v);
			if (vl >= outlen)
				vl = outlen - 1;
			memcpy(out, v, vl);
			out[vl] = '\0';
			return 0;
		}
		p = *eol ? eol + 2 : eol;
	}
	return -1;
}

int
h_children(pid_t parent, pid_t *out, int max)
{
	char path[300], buf[512], *rp;
	struct dirent *d;
	long long ppid;
	DIR *dir = opendir("/proc");
	FILE *f;
	int n = 0;

	if (dir == NULL)
		return -1;
	while ((d = readdir(dir)) != NULL && n < max) {
		if (d->d_name[0] < '0' || d->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", d->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), f) != NULL && (rp = strrchr(buf, ')')) != NULL) {
			char state = rp[2];

			ppid = strtoll(rp + 4, NULL, 10);
			if (ppid == parent && state != 'Z')
				out[n++] = (pid_t)strtol(d->d_name, NULL, 10);
		}
		fclose(f);
	}
	closedir(dir);
	return n;
}

char *
h_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	struct sink s = {NULL, 0};
	char buf[65536];
	size_t n;

	*len = 0;
	if (f == NULL)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (collect(buf, 1, n, &s) != n)
			break;
	fclose(f);
	*len = s.n;
	return s.p ? s.p : calloc(1, 1);
}

int
h_contains(const char *hay, size_t n, const char *needle)
{
	size_t m = strlen(needle), i;

	if (m == 0 || m > n)
		return 0;
	for (i = 0; i + m <= n; i++)
		if (memcmp(hay + i, needle, m) == 0)
			return 1;
	return 0;
}
