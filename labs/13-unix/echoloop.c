/*
 * echoloop.c - the uppercase echo on one epoll loop (given code: see
 * echoloop.h for what it promises).
 *
 * Every registration (a watched fd or a connection) is an entry, and
 * epoll hands the entry back in data.ptr.  epoll_wait() reports an fd at
 * most once per call and only a connection's own event closes it, so an
 * entry is never used after it was freed within one round of events.
 */
#define _POSIX_C_SOURCE 200809L

#include "echoloop.h"
#include "wrap.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define READ_SIZE 65536 /* at most this much per connection per event */
#define MAX_EVENTS 256

struct entry {
    int fd;
    int is_conn;
    /* a watched fd */
    echo_ready_fn fn;
    void *arg;
    /* a connection */
    char name[96];
    char *out; /* bytes owed to the client: out[off .. off + len) */
    size_t off, len, size;
    int eof;         /* it half-closed: send what we owe, then close */
    uint32_t events; /* what epoll watches it for now */
    struct entry *prev, *next;
};

struct echo_loop {
    int epfd;
    int verbose;
    int stopped;
    size_t nconns;
    struct entry *conns;   /* every connection, for echo_loop_free() */
    struct entry *watched; /* every watched fd (linked through next) */
};

struct echo_loop *echo_loop_new(int verbose)
{
    struct echo_loop *loop = calloc(1, sizeof *loop);
    if (!loop)
        return NULL;
    loop->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd == -1) {
        int saved = errno;
        free(loop);
        errno = saved;
        return NULL;
    }
    loop->verbose = verbose;
    return loop;
}

static void conn_free(struct echo_loop *loop, struct entry *c)
{
    if (loop->verbose)
        err_msg("close %s", c->name);
    /* Out of the interest list before close(): a copy of this fd in
     * another process (fork, SCM_RIGHTS) would keep it registered. */
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        loop->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    loop->nconns--;
    free(c->out);
    free(c);
}

void echo_loop_free(struct echo_loop *loop)
{
    if (!loop)
        return;
    while (loop->conns)
        conn_free(loop, loop->conns);
    struct entry *w = loop->watched;
    while (w) {
        struct entry *next = w->next;
        free(w);
        w = next;
    }
    close(loop->epfd);
    free(loop);
}

int echo_watch(struct echo_loop *loop, int fd, echo_ready_fn fn, void *arg)
{
    struct entry *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->fd = fd;
    w->fn = fn;
    w->arg = arg;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = w};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        int saved = errno;
        free(w);
        errno = saved;
        return -1;
    }
    w->next = loop->watched;
    loop->watched = w;
    return 0;
}

void echo_unwatch(struct echo_loop *loop, int fd)
{
    for (struct entry **p = &loop->watched; *p; p = &(*p)->next) {
        if ((*p)->fd == fd) {
            struct entry *w = *p;
            epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
            *p = w->next;
            free(w);
            return;
        }
    }
}

int echo_add(struct echo_loop *loop, int fd, const char *name)
{
    struct entry *c = calloc(1, sizeof *c);
    if (!c || set_nonblocking(fd) == -1) {
        int saved = errno;
        free(c);
        close(fd);
        errno = saved;
        return -1;
    }
    c->fd = fd;
    c->is_conn = 1;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->events = EPOLLIN;
    struct epoll_event ev = {.events = c->events, .data.ptr = c};
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        int saved = errno;
        free(c);
        close(fd);
        errno = saved;
        return -1;
    }
    c->next = loop->conns;
    if (c->next)
        c->next->prev = c;
    loop->conns = c;
    loop->nconns++;
    return 0;
}

size_t echo_count(const struct echo_loop *loop)
{
    return loop->nconns;
}

void echo_stop(struct echo_loop *loop)
{
    loop->stopped = 1;
}

/* Room for READ_SIZE more bytes after the pending ones.  0 or -1. */
static int out_reserve(struct entry *c)
{
    if (c->len == 0)
        c->off = 0;
    if (c->size - c->off - c->len >= READ_SIZE)
        return 0;
    if (c->off > 0) {
        memmove(c->out, c->out + c->off, c->len);
        c->off = 0;
        if (c->size - c->len >= READ_SIZE)
            return 0;
    }
    size_t size = c->size ? c->size : READ_SIZE;
    while (size - c->len < READ_SIZE)
        size *= 2;
    char *p = realloc(c->out, size);
    if (!p)
        return -1;
    c->out = p;
    c->size = size;
    return 0;
}

/* Serve one event on a connection.  0 to keep it, -1 to close it. */
static int conn_event(struct echo_loop *loop, struct entry *c, uint32_t ready)
{
    /* An error, or a hang-up of both directions: the client can read
     * nothing more, so nothing we owe it can be delivered. */
    if (ready & (EPOLLERR | EPOLLHUP))
        return -1;
    if ((ready & EPOLLIN) && !c->eof) {
        if (out_reserve(c) == -1) {
            unix_warn("realloc", c->name);
            return -1;
        }
        ssize_t n = read(c->fd, c->out + c->off + c->len, READ_SIZE);
        if (n == 0) {
            c->eof = 1; /* half-closed: we still owe it c->len bytes */
        } else if (n > 0) {
            upcase(c->out + c->off + c->len, (size_t)n);
            c->len += (size_t)n;
        } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            if (errno != ECONNRESET)
                unix_warn("read", c->name);
            return -1;
        }
    }
    while (c->len > 0) {
        ssize_t w = send(c->fd, c->out + c->off, c->len, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("send", c->name);
            return -1;
        }
        c->off += (size_t)w;
        c->len -= (size_t)w;
    }
    if (c->eof && c->len == 0)
        return -1; /* everything owed has been sent */

    /* Level-triggered: ask for input only while there is room for the
     * echo (back-pressure), for output only while some is pending. */
    uint32_t want = (!c->eof && c->len < ECHO_HIGH_WATER ? EPOLLIN : 0) |
                    (c->len > 0 ? EPOLLOUT : 0);
    if (want != c->events) {
        struct epoll_event ev = {.events = want, .data.ptr = c};
        if (epoll_ctl(loop->epfd, EPOLL_CTL_MOD, c->fd, &ev) == -1) {
            unix_warn("epoll_ctl MOD", c->name);
            return -1;
        }
        c->events = want;
    }
    return 0;
}

int echo_run(struct echo_loop *loop, const sigset_t *waitmask,
             echo_continue_fn keep_going, void *arg)
{
    struct epoll_event events[MAX_EVENTS];
    loop->stopped = 0;
    while (!loop->stopped && (!keep_going || keep_going(loop, arg))) {
        int n = epoll_pwait(loop->epfd, events, MAX_EVENTS, -1, waitmask);
        if (n == -1) {
            if (errno == EINTR)
                continue; /* a signal: keep_going looks at its flag */
            return -1;
        }
        for (int i = 0; i < n; i++) {
            struct entry *e = events[i].data.ptr;
            if (!e->is_conn)
                e->fn(loop, e->fd, e->arg);
            else if (conn_event(loop, e, events[i].events) == -1)
                conn_free(loop, e);
        }
    }
    return 0;
}
