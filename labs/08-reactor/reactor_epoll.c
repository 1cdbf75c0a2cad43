/*
 * reactor_epoll.c - the epoll backend of reactor.h.
 *
 * Edge-triggered epoll (EPOLLET), one epoll_wait per round, the per-fd
 * callbacks in an array indexed by fd.  Readiness flags are translated in
 * one place, to_reactor(): EPOLLERR and EPOLLHUP become "readable", so the
 * application's read() reports the error (STYLE #10).
 *
 * A poll backend would keep the same table and build a pollfd array from
 * it (or keep one in step with it), call poll() instead of epoll_wait(),
 * and could not be edge-triggered: it would call back on every round
 * while the fd stays ready, which the contract allows.
 */
#define _GNU_SOURCE /* EPOLLRDHUP */

#include "reactor.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 256 /* ready fds taken per epoll_wait */

struct handler {
    reactor_cb cb;    /* NULL: fd not registered */
    void *arg;
    int events;       /* REACTOR_* interest */
    unsigned gen;     /* bumped on every add, to drop stale events */
};

struct reactor {
    int epfd;
    int max_fds;
    int stopping;
    struct handler *fds; /* indexed by fd, max_fds entries */
    struct epoll_event ready[MAX_EVENTS];
};

/* ---------- translating flags, both ways, in one place ---------------------- */

static unsigned to_epoll(int events)
{
    unsigned e = EPOLLET;
    if (events & REACTOR_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & REACTOR_WRITE)
        e |= EPOLLOUT;
    return e;
}

static int to_reactor(unsigned e, int interest)
{
    int ev = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        ev |= REACTOR_READ;
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        ev |= REACTOR_WRITE;
    /* ERR/HUP arrive whatever we asked for: deliver only what was asked,
     * but at least READ, so the error is seen (by read()). */
    int out = ev & interest;
    if (!out && (e & (EPOLLHUP | EPOLLERR)))
        out = REACTOR_READ;
    return out;
}

/* ---------- the API ----------------------------------------------------------- */

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
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (!r->fds || r->epfd == -1) {
        int saved = errno;
        if (r->epfd >= 0)
            close(r->epfd);
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
    close(r->epfd);
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

/* The epoll data carries the fd and the generation of its registration. */
static unsigned long long pack(int fd, unsigned gen)
{
    return (unsigned long long)gen << 32 | (unsigned)fd;
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
    struct epoll_event ev = {.events = to_epoll(events)};
    ev.data.u64 = pack(fd, h->gen + 1);
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
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
    /* EPOLL_CTL_MOD re-checks readiness: if the fd is ready for an
     * interest now, the next epoll_wait reports it (contract point 1),
     * even when the interest did not change. */
    struct epoll_event ev = {.events = to_epoll(events)};
    ev.data.u64 = pack(fd, h->gen);
    if (epoll_ctl(r->epfd, EPOLL_CTL_MOD, fd, &ev) == -1)
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
    /* epoll would drop a closed fd by itself, but only once every copy of
     * it is closed; say it explicitly. */
    return epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int reactor_events(const struct reactor *r, int fd)
{
    if (fd < 0 || fd >= r->max_fds || !r->fds[fd].cb)
        return -1;
    return r->fds[fd].events;
}

int reactor_run(struct reactor *r)
{
    r->stopping = 0;
    while (!r->stopping) {
        int n;
        do
            n = epoll_wait(r->epfd, r->ready, MAX_EVENTS, -1);
        while (n == -1 && errno == EINTR);
        if (n == -1)
            return -1;
        for (int i = 0; i < n; i++) {
            int fd = (int)(r->ready[i].data.u64 & 0xffffffffu);
            unsigned gen = (unsigned)(r->ready[i].data.u64 >> 32);
            struct handler *h = &r->fds[fd];
            /* Removed (or removed and re-added) by an earlier callback of
             * this round: the event is not for the current owner. */
            if (!h->cb || h->gen != gen)
                continue;
            int ev = to_reactor(r->ready[i].events, h->events);
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
