/*
 * conn.c - buffered connections: accept, read into pooled buffers, write
 * from them, back-pressure, half-close.  conn.h says what and why.
 * YOUR TASK: TODOs 5-8 (after bufpool.c's 1-4).  Accepting, opening and
 * conn_send() are written for you.
 *
 * What it leaves out: no timeouts (an idle client may stay forever, which
 * costs it no buffer here), no write-side limit other than back-pressure
 * on reading, one thread.
 */
#define _GNU_SOURCE /* accept4 */

#include "conn.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "wrap.h"

#define READ_CHUNK ((size_t)65536) /* at most this much per read() */
#define READ_BUDGET 16               /* reads per event, so one client cannot starve the rest */

struct conn {
    int fd;
    struct conn_server *srv;
    struct pool_buf *in;  /* bytes read, not yet used by on_data; NULL when none */
    struct pool_buf *out; /* bytes waiting to be sent; NULL when none */
    int paused;           /* not reading: output at the high-water mark */
    int eof;              /* the client half-closed: flush, then close */
    int failed;           /* the pool refused us: close */
    int yielded;          /* stopped reading with bytes left: re-arm */
    struct conn *prev, *next;
    char name[ADDR_STRLEN];
};

/* The starter's way of saying "not written yet". */
static void todo(const char *what)
{
    fprintf(stderr, "%s is not written yet\n", what);
    exit(1);
}

static size_t out_pending(const struct conn *c)
{
    return c->out ? c->out->len : 0;
}

/* ---------- opening and closing ------------------------------------------------- */

static void conn_event_cb(struct reactor *r, int fd, int events, void *arg);

static void conn_close(struct conn *c)
{
    struct conn_server *s = c->srv;
    if (reactor_remove(s->r, c->fd) == -1)
        unix_warn("reactor_remove", c->name);
    close(c->fd);
    /* TODO 8: give c's input and output buffers back to the pool (either
     * may be NULL), or every closed connection leaks them.  Then delete
     * the todo() call below. */
    todo("TODO 8: conn_close() in conn.c does not free the buffers yet");
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (s->verbose)
        fprintf(stderr, "close %s\n", c->name);
    free(c);
}

static void conn_open(struct conn_server *s, int fd, const struct sockaddr *peer)
{
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        unix_warn("calloc", "connection");
        close(fd);
        return;
    }
    c->fd = fd;
    c->srv = s;
    sockaddr_str(peer, c->name, sizeof c->name);
    if (reactor_add(s->r, fd, REACTOR_READ, conn_event_cb, c) == -1) {
        unix_warn("reactor_add", c->name); /* ERANGE: fd beyond the table */
        close(fd);
        free(c);
        return;
    }
    c->next = s->conns;
    if (s->conns)
        s->conns->prev = c;
    s->conns = c;
    s->nconns++;
    if (s->verbose)
        fprintf(stderr, "connect %s\n", c->name);
}

/* ---------- output --------------------------------------------------------------- */

int conn_send(struct conn *c, const void *data, size_t n)
{
    if (n == 0)
        return 0;
    if (pool_reserve(c->srv->pool, &c->out, n) == -1) {
        unix_warn("pool_reserve", c->name);
        c->failed = 1;
        return -1;
    }
    memcpy(buf_tail(c->out), data, n);
    buf_commit(c->out, n);
    return 0;
}

/* Write what the socket takes.  0, or -1 if the connection is dead. */
static int conn_flush(struct conn *c)
{
    /* TODO 5: while c->out holds bytes, send() them (MSG_NOSIGNAL, retry
     * EINTR) and buf_consume() what was sent.  EAGAIN: return 0, the rest
     * waits for REACTOR_WRITE.  EPIPE/ECONNRESET: return -1 quietly; any
     * other error: unix_warn, return -1.  Once c->out is empty, pool_free
     * it and set c->out = NULL: an idle connection holds no buffer. */
    (void)c;
    todo("TODO 5: conn_flush() in conn.c");
    return -1;
}

/* ---------- input ---------------------------------------------------------------- */

/* Read until EAGAIN, EOF, or the output reaches the high-water mark.
 * 0, or -1 if the connection must close. */
static int conn_read(struct conn *c)
{
    /* TODO 6: loop while !c->eof && !c->failed:
     *   - fairness: after READ_BUDGET reads in this call, set c->yielded
     *     and stop (break): the event callback re-arms the fd;
     *   - back-pressure: if out_pending(c) >= s->high_water, set
     *     c->paused and stop reading (break);
     *   - want = min(READ_CHUNK, high_water - out_pending(c)) (so the
     *     echo never pushes the output past high_water);
     *   - pool_reserve(pool, &c->in, want) (-1: unix_warn, return -1:
     *     this connection closes, the server goes on);
     *   - read() into buf_tail(c->in) (retry EINTR).  EAGAIN: break.
     *     0: c->eof = 1, break.  ECONNRESET: return -1 quietly; other
     *     errors: unix_warn, return -1;
     *   - buf_commit, hand buf_data/len to s->on_data, buf_consume what it
     *     used, conn_flush (-1: return -1).
     * After the loop, pool_free an empty c->in and set it to NULL.
     * Return c->failed ? -1 : 0. */
    (void)c;
    (void)out_pending;
    todo("TODO 6: conn_read() in conn.c");
    return -1;
}

/* ---------- the event callback ------------------------------------------------------ */

static void conn_event_cb(struct reactor *r, int fd, int events, void *arg)
{
    /* TODO 7: one event for connection c = arg:
     *   - REACTOR_WRITE: conn_flush (-1: conn_close, return);
     *   - if c->paused and out_pending(c) < s->low_water: c->paused = 0
     *     (reading resumes: the reactor re-arms REACTOR_READ, see
     *     reactor.h point 1);
     *   - REACTOR_READ and not paused: conn_read (-1: conn_close, return);
     *   - c->eof and nothing pending: conn_close (the half-close is done),
     *     return;
     *   - otherwise the interest: REACTOR_READ unless paused or at EOF,
     *     REACTOR_WRITE only while output is pending.  If it differs from
     *     reactor_events(r, fd), or c->yielded is set (clear it), call
     *     reactor_modify (it re-arms: a yielded reader is called again
     *     next round); failure: unix_warn, conn_close.
     * After conn_close(c), c is freed: do not touch it again. */
    (void)r;
    (void)fd;
    (void)events;
    (void)arg;
    (void)conn_flush;
    (void)conn_read;
    todo("TODO 7: conn_event_cb() in conn.c");
}

/* ---------- accepting --------------------------------------------------------------- */

static void accept_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct conn_server *s = arg;
    int refused = 0;
    (void)r;
    (void)events;

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int c = accept4(fd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c >= 0) {
            conn_open(s, c, (struct sockaddr *)&peer);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return; /* drained: edge-triggered needs exactly this */
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if ((errno == EMFILE || errno == ENFILE) && s->spare_fd >= 0) {
            /* Out of fds.  Leaving the client in the queue would make the
             * listening socket ready forever; accept it with the spare fd
             * and close it at once, so it learns now.  accept() says
             * EMFILE even when the queue is empty (it takes the fd number
             * first), so an EAGAIN here is the end of the queue. */
            close(s->spare_fd);
            int victim = accept(fd, NULL, NULL);
            if (victim >= 0)
                close(victim); /* before reopening: it holds the spare's slot */
            s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            if (victim == -1)
                return;
            if (!refused++) /* once per event, not once per client */
                fprintf(stderr, "accept: out of fds, refusing new clients\n");
            continue;
        }
        unix_warn("accept", "listening socket");
        return;
    }
}

int conn_server_start(struct conn_server *s, int listenfd)
{
    s->listenfd = listenfd;
    s->nconns = 0;
    s->conns = NULL;
    s->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->spare_fd == -1 || set_nonblocking(listenfd) == -1 ||
        reactor_add(s->r, listenfd, REACTOR_READ, accept_cb, s) == -1)
        return -1;
    return 0;
}

void conn_server_stop(struct conn_server *s)
{
    while (s->conns)
        conn_close(s->conns);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    s->spare_fd = -1;
}
