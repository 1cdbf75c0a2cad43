/*
 * reactor_epoll.c - the epoll backend of the reactor (reactor_backend.h).
 *
 * Edge-triggered epoll (EPOLLET).  All it does is translate: REACTOR_*
 * interest into epoll flags on the way in, epoll flags into REACTOR_* bits
 * on the way out, in one place each.  EPOLLERR and EPOLLHUP become
 * BACKEND_ERROR plus "readable and writable", so the core can hand the
 * application a plain READ and its read() reports the error (the way
 * redis's ae_epoll.c does it); those two and EPOLLRDHUP (the peer's FIN)
 * add REACTOR_HUP, which tells the application that a short read is not
 * yet the end.
 *
 * Everything else (which callback, stale events, stopping) is the core's,
 * in reactor.c, so a poll or io_uring backend would be this short too.
 */
#define _GNU_SOURCE /* EPOLLRDHUP */

#include "reactor.h"
#include "reactor_backend.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define MAX_EVENTS 256 /* ready fds taken per epoll_wait */

struct backend {
    int epfd;
    struct epoll_event ready[MAX_EVENTS];
};

static unsigned to_epoll(int events)
{
    unsigned e = EPOLLET;
    if (events & REACTOR_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (events & REACTOR_WRITE)
        e |= EPOLLOUT;
    return e;
}

static int from_epoll(unsigned e)
{
    int ev = 0;
    if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        ev |= REACTOR_READ;
    if (e & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
        ev |= REACTOR_HUP; /* the FIN (or an error) is here: read to the end */
    if (e & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        ev |= REACTOR_WRITE;
    if (e & (EPOLLHUP | EPOLLERR))
        ev |= BACKEND_ERROR;
    return ev;
}

const char *backend_name(void)
{
    return "epoll";
}

struct backend *backend_create(int max_fds)
{
    (void)max_fds; /* epoll needs no table of its own */
    struct backend *b = calloc(1, sizeof *b);
    if (!b)
        return NULL;
    b->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (b->epfd == -1) {
        int saved = errno;
        free(b);
        errno = saved;
        return NULL;
    }
    return b;
}

void backend_destroy(struct backend *b)
{
    if (!b)
        return;
    close(b->epfd);
    free(b);
}

static int ctl(struct backend *b, int op, int fd, int events, uint64_t token)
{
    struct epoll_event ev = {.events = to_epoll(events)};
    ev.data.u64 = token;
    return epoll_ctl(b->epfd, op, fd, &ev);
}

int backend_add(struct backend *b, int fd, int events, uint64_t token)
{
    return ctl(b, EPOLL_CTL_ADD, fd, events, token);
}

int backend_modify(struct backend *b, int fd, int events, uint64_t token)
{
    /* EPOLL_CTL_MOD re-checks readiness: if fd is ready for an interest
     * now, the next epoll_wait reports it, even when the interest did not
     * change.  That is the re-arm the reactor promises. */
    return ctl(b, EPOLL_CTL_MOD, fd, events, token);
}

int backend_remove(struct backend *b, int fd)
{
    /* epoll would drop a closed fd by itself, but only once every copy of
     * it is closed; say it explicitly. */
    return epoll_ctl(b->epfd, EPOLL_CTL_DEL, fd, NULL);
}

int backend_wait(struct backend *b, struct backend_event *out, int max, int timeout_ms)
{
    if (max > MAX_EVENTS)
        max = MAX_EVENTS;
    int n = epoll_wait(b->epfd, b->ready, max, timeout_ms);
    for (int i = 0; i < n; i++) {
        out[i].token = b->ready[i].data.u64;
        out[i].events = from_epoll(b->ready[i].events);
    }
    return n;
}
