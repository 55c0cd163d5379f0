/* SPDX-License-Identifier: ISC */
/*
 * The integration harness: a temporary folder with free ports, the real
 * immidb-admin to initialise it, the real immidb-fcgi pool and the real
 * nginx (its configuration generated from nginx.conf.example), and HTTP
 * through libcurl. Every later area adds its tests on top of it.
 */
#ifndef IDB_TEST_HARNESS_H
#define IDB_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#define H_PATH 512
#define H_MAX_HEADERS 16

struct h_env {
	char dir[H_PATH];   /* temporary root, removed by h_stop */
	char data[H_PATH];  /* data_dir */
	char conf[H_PATH];  /* immidb.conf */
	char sock[H_PATH];  /* FastCGI socket */
	char ngx_conf[H_PATH];
	char ngx_prefix[H_PATH];
	char fcgi_log[H_PATH];
	int port;
	int workers;
	pid_t fcgi, nginx;
	char base[64];      /* http://127.0.0.1:port */
};

struct h_resp {
	long status;
	char *body;         /* NUL-terminated */
	size_t len;
	char *headers;      /* raw header block, NUL-terminated */
};

/* Creates the folder and configuration, runs `immidb-admin init`, starts
 * immidb-fcgi and nginx and waits until health answers. 0 on success. */
int h_start(struct h_env *, int workers);
/* The same, with a trusted_proxies value (e.g. "127.0.0.1", so that tests can
 * speak for other client addresses through X-Forwarded-For). */
int h_start_with(struct h_env *, int workers, const char *trusted_proxies);
/* Stops everything and removes the folder. Returns -1 if a sanitizer
 * reported an error in the server's log. */
int h_stop(struct h_env *);
/* Starts / stops only immidb-fcgi (nginx keeps running). */
int h_fcgi_start(struct h_env *);
int h_fcgi_stop(struct h_env *, int timeout_ms);
/* Waits for health to answer 200; 0 if it did within timeout_ms. */
int h_wait_ready(struct h_env *, int timeout_ms);
/* Appends line (with its newline) to the configuration and restarts
 * immidb-fcgi with it, waiting until it is ready. 0 on success. */
int h_conf_append(struct h_env *, const char *line);

/* Runs build/immidb-admin --config <conf> args... (NULL-terminated), feeding
 * stdin_text (may be NULL); stdout (and stderr, if err != NULL) captured. Returns the exit status. */
int h_admin(struct h_env *, const char *stdin_text, char *out, size_t outlen, char *err, size_t errlen, ...);
/* Runs any program with arguments (NULL-terminated); same capture rules. */
int h_run(const char *stdin_text, char *out, size_t outlen, char *err, size_t errlen, const char *prog, ...);

/* One HTTP request; headers is a NULL-terminated list of "Name: value". */
int h_http(struct h_env *, const char *method, const char *path, const char *const *headers,
           const char *body, size_t bodylen, struct h_resp *);
void h_resp_free(struct h_resp *);
/* The value of a response header (case-insensitive name) copied into out, or -1. */
int h_header(const struct h_resp *, const char *name, char *out, size_t outlen);

/* The worker processes of a master (its children), from /proc. */
int h_children(pid_t parent, pid_t *out, int max);
/* Reads a whole file (for byte scans); caller frees. NULL if absent. */
char *h_slurp(const char *path, size_t *len);
/* 1 if needle occurs in the n bytes of hay. */
int h_contains(const char *hay, size_t n, const char *needle);
/* Milliseconds on the monotonic clock. */
long long h_now_ms(void);
void h_sleep_ms(int ms);

#endif
