/*
 * reactor_backend.h - what a backend of reactor.h must do, and nothing
 * more.
 *
 * reactor.c (the core) keeps the per-fd table, the callbacks, the
 * generation numbers and the dispatch loop; a backend only asks the
 * kernel.  It is one file defining these functions (reactor_epoll.c
 * today; a reactor_poll.c or an io_uring backend would define the same
 * names), and the lab's lab.mk links exactly one of them.  The split
 * follows redis's ae.c / ae_epoll.c (its aeApi* functions) and libevent's
 * struct eventop.
 *
 * The core hands each registration a token (an opaque 64-bit value) and
 * gets it back with every event, so the backend never needs to know what
 * the token means.  (It is the fd and a generation number: an event for a
 * registration that was removed in the same round is recognised and
 * dropped by the core.)
 *
 * Every function returns -1 with errno set on failure, prints nothing and
 * never exits.
 */
#ifndef NETLABS_REACTOR_BACKEND_H
#define NETLABS_REACTOR_BACKEND_H

#include <stdint.h>

/* A backend reports REACTOR_HUP with REACTOR_READ when the peer has shut
 * down its sending side or the connection failed (EPOLLRDHUP, EPOLLHUP,
 * EPOLLERR, POLLRDHUP, POLLHUP ...), and BACKEND_ERROR too for an error or
 * a full hang-up (EPOLLERR, EPOLLHUP, POLLERR, POLLHUP): those reach the
 * application even when it asked for no events at all. */
#define BACKEND_ERROR 8

struct backend;

struct backend_event {
    uint64_t token; /* as given to backend_add / backend_modify */
    int events;     /* REACTOR_READ | REACTOR_WRITE | REACTOR_HUP | BACKEND_ERROR */
};

/* The name of the mechanism, for logs ("epoll"). */
const char *backend_name(void);

/* A backend for fds 0 .. max_fds-1.  NULL with errno on failure. */
struct backend *backend_create(int max_fds);
void backend_destroy(struct backend *b);

/* Start watching fd for events (REACTOR_* bits, may be 0).  Edge-
 * triggered if the mechanism can (reactor.h, contract point 1). */
int backend_add(struct backend *b, int fd, int events, uint64_t token);

/* Change what fd is watched for, and re-arm it: if fd is ready now for an
 * interest named, the next backend_wait reports it. */
int backend_modify(struct backend *b, int fd, int events, uint64_t token);

/* Stop watching fd (it is still open). */
int backend_remove(struct backend *b, int fd);

/* Wait at most timeout_ms (-1: no limit) for events; store at most max of
 * them in out.  Returns how many (0 on timeout), or -1 (EINTR included:
 * the core decides to retry). */
int backend_wait(struct backend *b, struct backend_event *out, int max, int timeout_ms);

#endif
