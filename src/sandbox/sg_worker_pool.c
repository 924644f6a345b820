/*
 * worker pool: a fixed array of entries, filled from the front.  Removing
 * moves the last entry into the hole, so entries are always dense and a
 * scan stops at n.
 */
#include "sandbox/sg_worker_pool.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sg_name.h"

struct sg_worker_pool {
	size_t n, max;
	uint32_t max_runs;
	uint64_t clock;            /* ticks at every checkin: the order workers went idle in */
	struct sg_pool_worker w[]; /* max of them */
};

struct sg_worker_pool *
sg_worker_pool_new(size_t max_workers, uint32_t max_runs)
{
	if (max_workers == 0 || max_runs == 0 ||
	    max_workers >
	        (SIZE_MAX - sizeof(struct sg_worker_pool)) / sizeof(struct sg_pool_worker))
		return NULL;
	struct sg_worker_pool *p =
	    calloc(1, sizeof(*p) + max_workers * sizeof(struct sg_pool_worker));
	if (p == NULL)
		return NULL;
	p->max = max_workers;
	p->max_runs = max_runs;
	return p;
}

void
sg_worker_pool_free(struct sg_worker_pool *p)
{
	if (p == NULL)
		return;
	for (size_t i = 0; i < p->n; i++)
		close(p->w[i].fd);
	free(p);
}

static struct sg_pool_worker *
find(const struct sg_worker_pool *p, pid_t pid)
{
	for (size_t i = 0; i < p->n; i++)
		if (p->w[i].pid == pid)
			return (struct sg_pool_worker *)&p->w[i];
	return NULL;
}

int
sg_pool_owner_set(struct sg_pool_owner *o, const char *tenant, const char *user, const char *mode)
{
	memset(o, 0, sizeof(*o));
	size_t nu = user ? strnlen(user, SG_POOL_NAME_MAX + 1) : 0;
	size_t nm = mode ? strnlen(mode, SG_POOL_MODE_MAX + 1) : 0;
	if (!sg_name_valid(tenant) || nu == 0 || nu > SG_POOL_NAME_MAX || nm == 0 ||
	    nm > SG_POOL_MODE_MAX)
		return -1;
	memcpy(o->tenant, tenant, strlen(tenant));
	memcpy(o->user, user, nu);
	memcpy(o->mode, mode, nm);
	return 0;
}

/* What sg_pool_owner_set would have made: the arrays are the caller's to fill. */
static bool
valid_owner(const struct sg_pool_owner *o)
{
	return o != NULL && sg_name_valid(o->tenant) && o->user[0] != '\0' &&
	       o->user[SG_POOL_NAME_MAX] == '\0' && o->mode[0] != '\0' &&
	       o->mode[SG_POOL_MODE_MAX] == '\0';
}

bool
sg_pool_owner_same(const struct sg_pool_owner *a, const struct sg_pool_owner *b)
{
	return strcmp(a->tenant, b->tenant) == 0 && strcmp(a->user, b->user) == 0 &&
	       strcmp(a->mode, b->mode) == 0;
}

static void
drop(struct sg_worker_pool *p, struct sg_pool_worker *w)
{
	close(w->fd);
	*w = p->w[--p->n];
	memset(&p->w[p->n], 0, sizeof(p->w[p->n]));
}

int
sg_worker_pool_add(struct sg_worker_pool *p, pid_t pid, int fd, const struct sg_pool_owner *owner)
{
	if (p->n == p->max || pid <= 0 || fd < 0 || !valid_owner(owner) || find(p, pid) != NULL)
		return -1;
	struct sg_pool_worker *w = &p->w[p->n++];
	memset(w, 0, sizeof(*w));
	w->pid = pid;
	w->fd = fd;
	w->owner = *owner;
	w->state = SG_POOL_BUSY;
	return 0;
}

const struct sg_pool_worker *
sg_worker_pool_checkout(struct sg_worker_pool *p, const struct sg_pool_owner *owner)
{
	if (!valid_owner(owner))
		return NULL;
	for (size_t i = 0; i < p->n; i++) {
		struct sg_pool_worker *w = &p->w[i];
		if (w->state == SG_POOL_IDLE && sg_pool_owner_same(&w->owner, owner)) {
			w->state = SG_POOL_BUSY;
			return w;
		}
	}
	return NULL;
}

int
sg_worker_pool_checkin(struct sg_worker_pool *p, pid_t pid, const struct sg_pool_owner *owner,
                       bool counted)
{
	struct sg_pool_worker *w = find(p, pid);
	if (w == NULL || w->state != SG_POOL_BUSY || !valid_owner(owner) ||
	    !sg_pool_owner_same(&w->owner, owner))
		return -1;
	if (counted)
		w->runs_done++;
	if (w->runs_done >= p->max_runs) {
		drop(p, w);
		return SG_POOL_RETIRED;
	}
	w->state = SG_POOL_IDLE;
	w->idle_since = ++p->clock;
	return SG_POOL_KEPT;
}

int
sg_worker_pool_retire(struct sg_worker_pool *p, pid_t pid)
{
	struct sg_pool_worker *w = find(p, pid);
	if (w == NULL)
		return -1;
	drop(p, w);
	return 0;
}

const struct sg_pool_worker *
sg_worker_pool_idlest(const struct sg_worker_pool *p, const struct sg_pool_owner *except)
{
	const struct sg_pool_worker *best = NULL;
	for (size_t i = 0; i < p->n; i++) {
		const struct sg_pool_worker *w = &p->w[i];
		if (w->state == SG_POOL_IDLE &&
		    (except == NULL || !sg_pool_owner_same(&w->owner, except)) &&
		    (best == NULL || w->idle_since < best->idle_since))
			best = w;
	}
	return best;
}

bool
sg_worker_pool_full(const struct sg_worker_pool *p)
{
	return p->n == p->max;
}

const struct sg_pool_worker *
sg_worker_pool_find(const struct sg_worker_pool *p, pid_t pid)
{
	return find(p, pid);
}

void
sg_worker_pool_count(const struct sg_worker_pool *p, const char *tenant, size_t *idle, size_t *busy)
{
	*idle = *busy = 0;
	for (size_t i = 0; i < p->n; i++)
		if (tenant == NULL || strcmp(p->w[i].owner.tenant, tenant) == 0)
			++*(p->w[i].state == SG_POOL_IDLE ? idle : busy);
}

size_t
sg_worker_pool_shortfall(const struct sg_worker_pool *p, const struct sg_pool_owner *owner,
                         size_t want_idle)
{
	size_t idle = 0;
	for (size_t i = 0; i < p->n; i++)
		idle += p->w[i].state == SG_POOL_IDLE && sg_pool_owner_same(&p->w[i].owner, owner);
	size_t need = want_idle > idle ? want_idle - idle : 0;
	return need < p->max - p->n ? need : p->max - p->n;
}
