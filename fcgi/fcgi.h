/* SPDX-License-Identifier: ISC */
/* The process model of immidb-fcgi: a master and its pre-forked workers. */
#ifndef IDB_FCGI_H
#define IDB_FCGI_H

#include "conf/conf.h"
#include "crypto/key.h"

#define IDB_STOP_GRACE_SEC 8      /* SIGTERM to SIGKILL for a worker that does not finish */
#define IDB_BACKOFF_MIN_MS 100    /* first respawn delay after a quick death */
#define IDB_BACKOFF_MAX_MS 10000
#define IDB_QUICK_DEATH_SEC 2     /* a worker that dies sooner counts as crash-looping */

/* Opens the listening socket of conf->listen; -1 with a message on stderr. */
int idb_listen_open(const struct idb_conf *);
/* Runs the master until SIGTERM/SIGINT; returns the exit status. */
int idb_master_run(struct idb_conf *, const char *config_opt, const char *data_opt,
                   const struct idb_master *, int listen_fd);
/* Runs one worker until told to stop; never returns. */
void idb_worker_run(const struct idb_conf *, const struct idb_master *, int listen_fd)
    __attribute__((noreturn));

#endif
