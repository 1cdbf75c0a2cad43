/*
 * reactor.c - the core of the event loop (reactor.h): the per-fd table,
 * the callbacks, the dispatch loop.  It is the same whatever waits: the
 * kernel mechanism lives in a backend (reactor_backend.h), linked beside
 * this file.
 *
 * Stale events.  A backend collects a batch of events, then the core
 * calls back one by one; a callback may remove (and close) an fd whose
 * event is later in the same batch, and a new connection may even get the
 * same fd number before that event is dispatched.  So each registration
 * gets a generation number, carried in the token the backend hands back:
 * an event whose generation is not the fd's current one is dropped.
 */
#include "reactor.h"
#include "reactor_backend.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#define BATCH 256 /* events taken per backend_wait */

struct handler {
    reactor_cb cb;    /* NULL: fd not registered */
    void *arg;
    int events;       /* REACTOR_* interest */
    unsigned gen;     /* bumped on every add, to drop stale events */
};

struct reactor {
    struct backend *be;
    int max_fds;
    int stopping;
    struct handler *fds; /* indexed by fd, max_fds entries */
    struct backend_event ready[BATCH];
};

/* The token carries the fd and the generation of its registration. */
static uint64_t pack(int fd, unsigned gen)
{
    return (uint64_t)gen << 32 | (unsigned)fd;
}

struct reactor *reactor_create(int max_fds)
{
    if (max_fds <= 0) {
        errno = EINVAL;
        return NULL;
    }
    struct reactor *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->fds = calloc((size_t)max_fds, sizeof *r->fds);
    r->be = r->fds ? backend_create(max_fds) : NULL;
    if (!r->be) {
        int saved = errno;
        free(r->fds);
        free(r);
        errno = saved;
        return NULL;
    }
    r->max_fds = max_fds;
    return r;
}

void reactor_destroy(struct reactor *r)
{
    if (!r)
        return;
    backend_destroy(r->be);
    free(r->fds);
    free(r);
}

static struct handler *lookup(const struct reactor *r, int fd)
{
    if (fd < 0 || fd >= r->max_fds) {
        errno = ERANGE;
        return NULL;
    }
    return &r->fds[fd];
}

int reactor_add(struct reactor *r, int fd, int events, reactor_cb cb, void *arg)
{
    struct handler *h = lookup(r, fd);
    if (!h)
        return -1;
    if (h->cb) {
        errno = EEXIST;
        return -1;
    }
    if (backend_add(r->be, fd, events, pack(fd, h->gen + 1)) == -1)
        return -1;
    h->gen++;
    h->cb = cb;
    h->arg = arg;
    h->events = events;
    return 0;
}

int reactor_modify(struct reactor *r, int fd, int events)
{
    struct handler *h = lookup(r, fd);
    if (!h)
        return -1;
    if (!h->cb) {
        errno = ENOENT;
        return -1;
    }
    if (backend_modify(r->be, fd, events, pack(fd, h->gen)) == -1)
        return -1;
    h->events = events;
    return 0;
}

int reactor_remove(struct reactor *r, int fd)
{
    struct handler *h = lookup(r, fd);
    if (!h)
        return -1;
    if (!h->cb) {
        errno = ENOENT;
        return -1;
    }
    h->cb = NULL;
    h->arg = NULL;
    h->events = 0;
    return backend_remove(r->be, fd);
}

int reactor_events(const struct reactor *r, int fd)
{
    if (fd < 0 || fd >= r->max_fds || !r->fds[fd].cb)
        return -1;
    return r->fds[fd].events;
}

/* What the application is told: only what it asked for, but at least
 * READ on an error or hang-up, so read() reports it; and REACTOR_HUP with
 * any READ it gets, so it reads to the end (contract point 2). */
static int deliverable(int ready, int interest)
{
    int out = ready & interest & (REACTOR_READ | REACTOR_WRITE);
    if (!out && (ready & BACKEND_ERROR))
        out = REACTOR_READ;
    if (out & REACTOR_READ)
        out |= ready & REACTOR_HUP;
    return out;
}

int reactor_run(struct reactor *r)
{
    r->stopping = 0;
    while (!r->stopping) {
        int n;
        do
            n = backend_wait(r->be, r->ready, BATCH, -1);
        while (n == -1 && errno == EINTR);
        if (n == -1)
            return -1;
        for (int i = 0; i < n; i++) {
            int fd = (int)(r->ready[i].token & 0xffffffffu);
            unsigned gen = (unsigned)(r->ready[i].token >> 32);
            struct handler *h = &r->fds[fd];
            /* Removed (or removed and re-added) by an earlier callback of
             * this round: the event is not for the current owner. */
            if (!h->cb || h->gen != gen)
                continue;
            int ev = deliverable(r->ready[i].events, h->events);
            if (ev)
                h->cb(r, fd, ev, h->arg);
        }
    }
    return 0;
}

void reactor_stop(struct reactor *r)
{
    r->stopping = 1;
}
