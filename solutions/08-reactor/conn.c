/*
 * conn.c - buffered connections: accept, read into pooled buffers, write
 * from them, back-pressure, half-close.  conn.h says what and why.
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
    pool_free(s->pool, c->in);
    pool_free(s->pool, c->out);
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
    while (c->out && c->out->len > 0) {
        ssize_t w;
        do
            w = send(c->fd, buf_data(c->out), c->out->len, MSG_NOSIGNAL);
        while (w == -1 && errno == EINTR);
        if (w == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("send", c->name);
            return -1;
        }
        buf_consume(c->out, (size_t)w);
    }
    /* Empty: give the buffer back, an idle connection holds none. */
    pool_free(c->srv->pool, c->out);
    c->out = NULL;
    return 0;
}

/* ---------- input ---------------------------------------------------------------- */

/* Read until EAGAIN, EOF, or the output reaches the high-water mark.
 * 0, or -1 if the connection must close. */
static int conn_read(struct conn *c)
{
    struct conn_server *s = c->srv;
    for (int reads = 0; !c->eof && !c->failed; reads++) {
        if (reads == READ_BUDGET) {
            c->yielded = 1; /* enough for one turn: let the others run */
            break;
        }
        size_t pending = out_pending(c);
        if (pending >= s->high_water) {
            c->paused = 1; /* back-pressure: the client must read first */
            break;
        }
        /* Read no more than the output may still grow (the echo writes
         * back what it reads), so the output never passes high_water. */
        size_t want = s->high_water - pending;
        if (want > READ_CHUNK)
            want = READ_CHUNK;
        if (pool_reserve(s->pool, &c->in, want) == -1) {
            unix_warn("pool_reserve", c->name);
            return -1;
        }
        ssize_t n;
        do
            n = read(c->fd, buf_tail(c->in), want);
        while (n == -1 && errno == EINTR);
        if (n == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (errno != ECONNRESET)
                unix_warn("read", c->name);
            return -1;
        }
        if (n == 0) {
            c->eof = 1;
            break;
        }
        buf_commit(c->in, (size_t)n);
        size_t used = s->on_data(c, buf_data(c->in), c->in->len);
        buf_consume(c->in, used);
        if (conn_flush(c) == -1)
            return -1;
    }
    if (c->in && c->in->len == 0) {
        pool_free(s->pool, c->in);
        c->in = NULL;
    }
    return c->failed ? -1 : 0;
}

/* ---------- the event callback ------------------------------------------------------ */

static void conn_event_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct conn *c = arg;
    struct conn_server *s = c->srv;
    (void)fd;

    if ((events & REACTOR_WRITE) && conn_flush(c) == -1) {
        conn_close(c);
        return;
    }
    if (c->paused && out_pending(c) < s->low_water)
        c->paused = 0; /* drained: read again (the reactor re-arms READ) */
    if ((events & REACTOR_READ) && !c->paused && conn_read(c) == -1) {
        conn_close(c);
        return;
    }
    if (c->eof && out_pending(c) == 0) {
        conn_close(c); /* half-close: everything owed has been sent */
        return;
    }
    int want = (c->paused || c->eof ? 0 : REACTOR_READ) | (out_pending(c) ? REACTOR_WRITE : 0);
    if (want == reactor_events(r, c->fd) && !c->yielded)
        return; /* nothing changed: no syscall */
    c->yielded = 0;
    if (reactor_modify(r, c->fd, want) == -1) {
        unix_warn("reactor_modify", c->name);
        conn_close(c);
    }
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
