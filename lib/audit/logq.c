/* SPDX-License-Identifier: ISC */
/* Group commit of read entries: see logq.h. */
#include "audit/logq.h"

#include <limits.h>
#include <stddef.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <linux/futex.h>
#include <sys/mman.h>
#include <sys/syscall.h>

#include "core/util.h"
#include "store/db.h"
#include "store/plan.h"

/*
 * A slot is written only by its owner, in seqlock fashion: seq is odd while
 * the fields change, even when they are whole; ticket names the entry. A
 * leader claims a pending entry by setting claim to its ticket (an owner
 * that gives up withdraws it the same way: whoever sets claim first decides
 * its fate). Whoever claimed it records the ticket in done (with the plan's
 * result) or failed before the org's lock is let go.
 */
struct slot {
	unsigned long seq, ticket, claim, done, failed;
	int result; /* the plan's own result, when done */
	char org_id[IDB_ID_LEN + 1];
	char actor_kind[16], actor_id[64], actor_email[320], via[16], ip[64];
	char action[64], target[512], outcome[16], detail[1024];
	size_t plan_len;
	unsigned char plan[IDB_LOGQ_PLAN_MAX];
};

/*
 * The shared part: one past the highest slot ever owned (the scan's end);
 * epoch, moved on each time a worker lets go of a write queue, a futex that
 * waiting owners sleep on; how many sleep there; and the slots.
 */
struct table {
	unsigned used;
	unsigned epoch, waiters;
	struct slot slot[];
};

/* How long an owner waits for a leader to take its entry before the request gives up (503). */
#define WAIT_MAX_NS (10LL * 1000 * 1000 * 1000)
/* A queue held by a process outside the pool (immidb-admin) moves no epoch: look again this often. */
#define WAIT_POLL_NS (2 * 1000 * 1000)

static struct table *tab;
static struct slot *slots;
static unsigned nslots;
static int mine = -1; /* the first of this worker's IDB_LOGQ_PER_WORKER slots */
/* This worker's slots that a request of its own still waits on: not free,
 * even once settled, until that request has read its result. */
static unsigned char held[IDB_LOGQ_PER_WORKER];

enum idb_err
idb_logq_init(unsigned workers)
{
	size_t n = (size_t)workers * IDB_LOGQ_PER_WORKER;
	void *p;

	if (slots != NULL || n == 0)
		return IDB_OK;
	p = mmap(NULL, sizeof(struct table) + n * sizeof(struct slot), PROT_READ | PROT_WRITE,
	         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return IDB_E_NOMEM;
	tab = p;
	slots = tab->slot;
	nslots = (unsigned)n;
	return IDB_OK;
}

/* Hooked to every release of a write queue in this process: wake the owners waiting for one. */
static void
queue_left(void)
{
	__atomic_add_fetch(&tab->epoch, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&tab->waiters, __ATOMIC_SEQ_CST) > 0)
		syscall(SYS_futex, &tab->epoch, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void
idb_logq_own(int worker)
{
	unsigned used, end;

	mine = slots != NULL && worker >= 0 && ((unsigned)worker + 1) * IDB_LOGQ_PER_WORKER <= nslots
	           ? worker * IDB_LOGQ_PER_WORKER
	           : -1;
	if (mine < 0)
		return;
	idb_db_queue_left = queue_left;
	/* Raise the scan's end to cover these slots (it never shrinks). */
	end = (unsigned)mine + IDB_LOGQ_PER_WORKER;
	used = __atomic_load_n(&tab->used, __ATOMIC_SEQ_CST);
	while (used < end &&
	       !__atomic_compare_exchange_n(&tab->used, &used, end, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		;
}

static int
put(char *dst, size_t size, const char *s)
{
	size_t n = s ? strlen(s) : 0;

	if (n >= size)
		return -1;
	if (n)
		memcpy(dst, s, n);
	dst[n] = '\0';
	return 0;
}

/* Fills the own slot; -1 if a field or the plan does not fit (the entry then goes alone). */
static int
fill(struct slot *s, const char *org_id, const struct idb_log_entry *e, const void *plan, size_t plan_len,
     unsigned long *ticket)
{
	int bad;

	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_SEQ_CST); /* odd: changing */
	bad = put(s->org_id, sizeof(s->org_id), org_id) |
	      put(s->actor_kind, sizeof(s->actor_kind), e->actor_kind) |
	      put(s->actor_id, sizeof(s->actor_id), e->actor_id) |
	      put(s->actor_email, sizeof(s->actor_email), e->actor_email) | put(s->via, sizeof(s->via), e->via) |
	      put(s->ip, sizeof(s->ip), e->ip) | put(s->action, sizeof(s->action), e->action) |
	      put(s->target, sizeof(s->target), e->target) | put(s->outcome, sizeof(s->outcome), e->outcome) |
	      put(s->detail, sizeof(s->detail), e->detail) | (e->reason != NULL && e->reason[0] != '\0' ? -1 : 0) |
	      (plan_len > sizeof(s->plan) ? -1 : 0);
	if (!bad) {
		s->plan_len = plan_len;
		if (plan_len)
			memcpy(s->plan, plan, plan_len);
	}
	*ticket = s->ticket + 1;
	if (!bad)
		__atomic_store_n(&s->ticket, *ticket, __ATOMIC_SEQ_CST);
	__atomic_store_n(&s->seq, s->seq + 1, __ATOMIC_SEQ_CST); /* even: whole */
	return bad ? -1 : 0;
}

/*
 * Claims slot i if it holds a pending entry of org_id: a consistent copy
 * into *copy (the plan's bytes as far as plan_len) and its ticket.
 */
static int
take(unsigned i, const char *org_id, struct slot *copy, unsigned long *ticket)
{
	struct slot *s = &slots[i];
	unsigned long seq = __atomic_load_n(&s->seq, __ATOMIC_SEQ_CST), t, c;

	t = __atomic_load_n(&s->ticket, __ATOMIC_SEQ_CST);
	c = __atomic_load_n(&s->claim, __ATOMIC_SEQ_CST);
	if ((seq & 1) || t == 0 || c == t)
		return 0;
	memcpy(copy, s, offsetof(struct slot, plan));
	if (copy->plan_len > sizeof(copy->plan))
		return 0;
	memcpy(copy->plan, s->plan, copy->plan_len);
	if (__atomic_load_n(&s->seq, __ATOMIC_SEQ_CST) != seq || copy->ticket != t || strcmp(copy->org_id, org_id) != 0)
		return 0;
	/* Lost to the owner's withdrawal: not ours to carry. */
	if (!__atomic_compare_exchange_n(&s->claim, &c, t, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return 0;
	*ticket = t;
	return 1;
}

static void
entry_of(const struct slot *s, struct idb_log_entry *e)
{
	memset(e, 0, sizeof(*e)); /* at: stamped when appended, so times follow seq */
	e->actor_kind = s->actor_kind;
	e->actor_id = s->actor_id;
	e->actor_email = s->actor_email;
	e->via = s->via;
	e->ip = s->ip;
	e->action = s->action;
	e->target = s->target;
	e->outcome = s->outcome;
	e->detail = s->detail;
}

/*
 * Inside the transaction: the plan (if any), its result into *res, then the
 * entry, which says "failed" with the plan's error if it did not go
 * through. No savepoint (its journal costs a page copy per page touched): a
 * plan fails on a condition before its first change (the version check is
 * its first write), so a failed plan has changed nothing. One that failed
 * after a change loses the whole transaction. IDB_OK unless the transaction
 * is lost.
 */
static enum idb_err
apply(sqlite3 *db, struct idb_log_entry *e, const struct idb_log_entry *last, const void *plan, size_t plan_len,
      enum idb_err *res)
{
	int wrote;

	*res = IDB_OK;
	if (plan_len > 0) {
		if ((*res = idb_plan_run(db, plan, plan_len, &wrote)) != IDB_OK) {
			if (wrote || sqlite3_get_autocommit(db))
				return IDB_E_UNAVAILABLE; /* half a plan: undo all */
			e->outcome = "failed";
			e->detail = idb_err_code(*res);
		}
	}
	return idb_log_append_after(db, e, last) == IDB_OK ? IDB_OK : IDB_E_UNAVAILABLE;
}

/* The entry (and plan) alone, in its own transaction. */
static enum idb_err
alone(sqlite3 *db, struct idb_log_entry *e, const void *plan, size_t plan_len, enum idb_err *res)
{
	enum idb_err r;

	if ((r = idb_db_begin(db)) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	if ((r = apply(db, e, NULL, plan, plan_len, res)) == IDB_OK)
		r = idb_db_commit(db);
	if (r != IDB_OK) {
		idb_db_rollback(db);
		return IDB_E_UNAVAILABLE;
	}
	return IDB_OK;
}

/* Holding the org's lock: every pending entry of the org, with its plan, in one transaction. */
static enum idb_err
lead(sqlite3 *db, const char *org_id)
{
	static unsigned long tickets[2 * 256];
	static unsigned idx[2 * 256];
	static enum idb_err results[2 * 256];
	static struct slot copy;
	struct idb_log_entry e, last = {0};
	unsigned i, end, n = 0;
	enum idb_err r;

	if ((r = idb_db_begin(db)) != IDB_OK)
		return IDB_E_UNAVAILABLE;
	end = __atomic_load_n(&tab->used, __ATOMIC_SEQ_CST);
	for (i = 0; i < end && i < nslots && n < sizeof(idx) / sizeof(idx[0]); i++) {
		if (!take(i, org_id, &copy, &tickets[n]))
			continue;
		entry_of(&copy, &e);
		idx[n] = i; /* carried by this transaction, whatever its fate */
		/* Each entry after the first chains on to the one before, without a lookup. */
		r = apply(db, &e, n > 0 ? &last : NULL, copy.plan, copy.plan_len, &results[n]);
		n++;
		if (r != IDB_OK)
			break;
		last.seq = e.seq;
		memcpy(last.hash, e.hash, 32);
	}
	if (r == IDB_OK)
		r = idb_db_commit(db);
	else
		idb_db_rollback(db);
	/* Marked before the lock is let go, so their owners find them settled. */
	for (i = 0; i < n; i++) {
		if (r == IDB_OK) {
			slots[idx[i]].result = (int)results[i];
			__atomic_store_n(&slots[idx[i]].done, tickets[i], __ATOMIC_SEQ_CST);
		} else
			__atomic_store_n(&slots[idx[i]].failed, tickets[i], __ATOMIC_SEQ_CST);
	}
	return r == IDB_OK ? IDB_OK : IDB_E_UNAVAILABLE;
}

/* Whether the entry of ticket was settled by a leader: 1 with the transaction's result in *r and the plan's in *res. */
static int
settled(const struct slot *s, unsigned long ticket, enum idb_err *r, enum idb_err *res)
{
	if (__atomic_load_n(&s->done, __ATOMIC_SEQ_CST) == ticket) {
		*r = IDB_OK;
		*res = (enum idb_err)__atomic_load_n(&s->result, __ATOMIC_SEQ_CST);
	} else if (__atomic_load_n(&s->failed, __ATOMIC_SEQ_CST) == ticket)
		*r = *res = IDB_E_UNAVAILABLE;
	else
		return 0;
	return 1;
}

static long long
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * The last failed try of each org handle's queue (by handle): the epoch
 * before it and when. A logged read made two to three failing flock calls,
 * one per look while another worker led; now a look that could only fail
 * the same way costs an atomic load and the clock (see logq.h).
 */
static struct {
	const sqlite3 *db;
	unsigned epoch;
	long long at;
} busy[IDB_LOGQ_PER_WORKER];
static unsigned busy_next;
static unsigned long tries;

/* idb_db_queue_try_hold, unless the last try of db's queue failed and nothing says it would not now. */
static int
try_hold(sqlite3 *db)
{
	unsigned ep = __atomic_load_n(&tab->epoch, __ATOMIC_SEQ_CST), i;
	long long now = now_ns();
	int h;

	/* Whether tried or not, as idb_db_queue_try_hold does: a request in hand
	 * keeps no snapshot, or the next request on this handle would read in it
	 * (idb_db_read_begin is a no-op inside one). */
	idb_db_read_end(db);
	for (i = 0; i < IDB_LOGQ_PER_WORKER && busy[i].db != db; i++)
		;
	if (i < IDB_LOGQ_PER_WORKER && busy[i].epoch == ep && now - busy[i].at < IDB_LOGQ_RETRY_NS)
		return 0;
	tries++;
	h = idb_db_queue_try_hold(db);
	if (h == 0) {
		if (i == IDB_LOGQ_PER_WORKER)
			i = busy_next++ % IDB_LOGQ_PER_WORKER;
		busy[i].db = db;
		busy[i].epoch = ep; /* read before the try: a release after it moved the epoch */
		busy[i].at = now;
	} else if (i < IDB_LOGQ_PER_WORKER)
		busy[i].db = NULL;
	return h;
}

unsigned long
idb_logq_tries(void)
{
	return tries;
}

/* Withdraws the pending entry of ticket (1), unless a leader has claimed it (0): it is failed, and no leader takes it. */
static int
withdraw(struct slot *s, unsigned long ticket)
{
	unsigned long c = __atomic_load_n(&s->claim, __ATOMIC_SEQ_CST);

	if (c == ticket || !__atomic_compare_exchange_n(&s->claim, &c, ticket, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
		return 0;
	__atomic_store_n(&s->failed, ticket, __ATOMIC_SEQ_CST);
	return 1;
}

/*
 * Holding the queue: the own entry is settled already, or this worker leads
 * every pending entry of the org. Letting go wakes the waiting owners.
 */
static enum idb_err
lead_held(sqlite3 *db, const char *org_id, struct slot *s, unsigned long ticket, enum idb_err *res)
{
	enum idb_err r;

	if (!settled(s, ticket, &r, res)) {
		lead(db, org_id);
		/* Not carried (the transaction did not begin): withdrawn while the
		 * lock keeps other leaders out, so that none writes it (or runs its
		 * plan) after this request has answered 503. */
		if (!settled(s, ticket, &r, res))
			withdraw(s, ticket);
	}
	idb_db_queue_release(db);
	/* The leader's answer covers this entry too: it was pending under the lock. */
	if (!settled(s, ticket, &r, res))
		r = *res = IDB_E_UNAVAILABLE;
	return r;
}

/*
 * One of this worker's slots that no request of its own waits on and whose
 * last entry is settled (or that never had one); -1 if none. (A slot whose
 * leader died before settling it stays taken.)
 */
static int
free_slot(void)
{
	enum idb_err r, res;
	int k;

	for (k = 0; k < IDB_LOGQ_PER_WORKER; k++) {
		struct slot *s = &slots[mine + k];
		unsigned long t = s->ticket;

		if (!held[k] && (t == 0 || settled(s, t, &r, &res)))
			return mine + k;
	}
	return -1;
}

/* The request waiting on w has its result: its slot may be used again. */
static void
let_go(struct idb_logq_wait *w)
{
	held[w->slot - mine] = 0;
	w->slot = -1;
}

int
idb_logq_submit(sqlite3 *db, const char *org_id, struct idb_log_entry *e, const void *plan, size_t plan_len,
                struct idb_logq_wait *w)
{
	int h, i;

	w->slot = -1;
	w->r = w->res = IDB_OK;
	if (mine < 0 || (h = try_hold(db)) < 0) {
		w->r = alone(db, e, plan, plan_len, &w->res); /* no shared slots, or no queue on this handle */
		return 1;
	}
	if ((i = free_slot()) < 0 || fill(&slots[i], org_id, e, plan, plan_len, &w->ticket) != 0) {
		if (h == 1)
			idb_db_queue_release(db);
		w->r = alone(db, e, plan, plan_len, &w->res);
		return 1;
	}
	w->slot = i;
	w->deadline = now_ns() + WAIT_MAX_NS;
	held[i - mine] = 1;
	if (h == 1) {
		w->r = lead_held(db, org_id, &slots[i], w->ticket, &w->res);
		let_go(w);
		return 1;
	}
	return 0;
}

/*
 * Settled: 1, with the results in w. Else, past the deadline, withdraws the
 * entry unless a leader has claimed it (a claimed one is being written and
 * settles soon): 1 with 503. Else 0.
 */
static int
check(struct idb_logq_wait *w)
{
	struct slot *s = &slots[w->slot];

	if (settled(s, w->ticket, &w->r, &w->res)) {
		let_go(w);
		return 1;
	}
	if (now_ns() > w->deadline && withdraw(s, w->ticket)) {
		w->r = w->res = IDB_E_UNAVAILABLE;
		let_go(w);
		return 1;
	}
	return 0;
}

int
idb_logq_poll(sqlite3 *db, const char *org_id, struct idb_logq_wait *w)
{
	if (w->slot < 0 || check(w))
		return 1;
	if (db != NULL && try_hold(db) == 1) {
		w->r = lead_held(db, org_id, &slots[w->slot], w->ticket, &w->res);
		let_go(w);
		return 1;
	}
	return 0;
}

/*
 * An owner whose queue is busy does not wait on the queue itself: most of
 * the time the holder is a leader that will carry its entry, and owners
 * queued in the kernel would each have to take the lock in turn just to
 * find that out. It sleeps on the epoch instead; every release wakes all
 * owners, those settled leave, and one of the others takes the queue and
 * leads everything that piled up meanwhile.
 */
void
idb_logq_wait(sqlite3 *db, const char *org_id, struct idb_logq_wait *w)
{
	struct timespec poll = {0, WAIT_POLL_NS};
	unsigned seen;

	while (w->slot >= 0) {
		if (check(w))
			return;
		__atomic_add_fetch(&tab->waiters, 1, __ATOMIC_SEQ_CST);
		seen = __atomic_load_n(&tab->epoch, __ATOMIC_SEQ_CST);
		if (idb_logq_poll(db, org_id, w)) {
			__atomic_sub_fetch(&tab->waiters, 1, __ATOMIC_SEQ_CST);
			return;
		}
		syscall(SYS_futex, &tab->epoch, FUTEX_WAIT, seen, &poll, NULL, 0);
		__atomic_sub_fetch(&tab->waiters, 1, __ATOMIC_SEQ_CST);
	}
}
