/*
 * conn.c - buffered connections: accept, read into pooled buffers, write
 * from them, back-pressure, half-close, and the application's own ends of
 * a connection (close now, or shut down politely).  conn.h says what and
 * why.
 *
 * YOUR TASK: TODOs 5-8 (after bufpool.c's 1-4); read
 * labs/08-reactor/README.md first.  Everything else here is given: opening,
 * conn_send(), the application's close and shutdown, the linger timer,
 * conn_settle() (what happens after an event) and accepting.
 *
 * What it leaves out: no idle timeouts (an idle client may stay forever,
 * which costs it no buffer here), no write-side limit other than
 * back-pressure on reading, one thread.
 */
#define _GNU_SOURCE /* accept4 */

#include "conn.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "wrap.h"

#define READ_CHUNK ((size_t)65536) /* at most this much per read() */
#define READ_BUDGET 16               /* reads per event, so one client cannot starve the rest */

struct conn {
    int fd;
    struct conn_server *srv;
    void *ctx;            /* the application's, see conn_set_ctx() */
    struct pool_buf *in;  /* bytes read, not yet used by on_data; NULL when none */
    struct pool_buf *out; /* bytes waiting to be sent; NULL when none */
    int paused;           /* not reading: output at the high-water mark */
    int eof;              /* the client half-closed: flush, then close */
    int failed;           /* the pool refused us, or conn_close(): close */
    int yielded;          /* stopped reading with bytes left: re-arm */
    int busy;             /* inside this connection's event callback */
    int draining;         /* conn_shutdown(): input is discarded from now on */
    int wr_shut;          /* ... and our sending side is shut: lingering */
    int holds;            /* conn_hold() - conn_release(): replies still to come */
    long long linger_end; /* monotonic ms: close then, EOF or not */
    struct conn *prev, *next;
    struct conn *lprev, *lnext; /* the lingering list, oldest first */
    char name[ADDR_STRLEN];
};

/* The starter's way of saying "not written yet". */
_Noreturn static void todo(const char *what)
{
    app_error("%s is not written yet", what);
}

static size_t out_pending(const struct conn *c)
{
    return c->out ? c->out->len : 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---------- the application's view ----------------------------------------------- */

void conn_set_ctx(struct conn *c, void *ctx) { c->ctx = ctx; }
void *conn_ctx(const struct conn *c) { return c->ctx; }
struct conn_server *conn_srv(const struct conn *c) { return c->srv; }
const char *conn_name(const struct conn *c) { return c->name; }
size_t conn_pending(const struct conn *c) { return out_pending(c); }

/* ---------- lingering closes: one timerfd for all of them ---------------------------- */

/* Every lingering connection waits the same CONN_LINGER_MS, so the list in
 * the order they started is also the order they end: the timer only ever
 * needs the first one. */
static void linger_arm(struct conn_server *s)
{
    struct itimerspec it = {0};
    if (s->linger_head) {
        long long at = s->linger_head->linger_end;
        it.it_value.tv_sec = at / 1000;
        it.it_value.tv_nsec = (at % 1000) * 1000000;
        if (!it.it_value.tv_sec && !it.it_value.tv_nsec)
            it.it_value.tv_nsec = 1; /* all zero would disarm it */
    }
    if (timerfd_settime(s->linger_fd, TFD_TIMER_ABSTIME, &it, NULL) == -1)
        unix_warn("timerfd_settime", "linger timer");
}

static void linger_add(struct conn *c)
{
    struct conn_server *s = c->srv;
    c->linger_end = now_ms() + CONN_LINGER_MS;
    c->lprev = s->linger_tail;
    c->lnext = NULL;
    if (s->linger_tail)
        s->linger_tail->lnext = c;
    else
        s->linger_head = c;
    s->linger_tail = c;
    if (s->linger_head == c)
        linger_arm(s);
}

static void linger_unlink(struct conn *c)
{
    struct conn_server *s = c->srv;
    if (c->lprev)
        c->lprev->lnext = c->lnext;
    else
        s->linger_head = c->lnext;
    if (c->lnext)
        c->lnext->lprev = c->lprev;
    else
        s->linger_tail = c->lprev;
    c->lprev = c->lnext = NULL;
    /* The timer may now fire for nothing; linger_cb copes. */
}

/* ---------- opening and closing ------------------------------------------------- */

static void conn_event_cb(struct reactor *r, int fd, int events, void *arg);

/* Free c now: it leaves the reactor, its fd is closed, its buffers go back
 * to the pool, the application is told.  c is gone afterwards. */
static void conn_free(struct conn *c)
{
    struct conn_server *s = c->srv;
    if (s->on_close)
        s->on_close(c, c->ctx);
    if (reactor_remove(s->r, c->fd) == -1)
        unix_warn("reactor_remove", c->name);
    close(c->fd);
    /* TODO 8: give c's input and output buffers back to the pool (either
     * may be NULL): every connection that closes must return what it
     * holds, or the pool's in_use never comes back to 0. */
    todo("TODO 8: conn_free() in conn.c does not free the buffers yet");
    if (c->wr_shut)
        linger_unlink(c);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    if (s->verbose)
        err_msg("close %s", c->name);
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
    if (s->on_open && s->on_open(c) == -1) {
        close(fd);
        free(c);
        return;
    }
    if (reactor_add(s->r, fd, REACTOR_READ, conn_event_cb, c) == -1) {
        unix_warn("reactor_add", c->name); /* ERANGE: fd beyond the table */
        if (s->on_close)
            s->on_close(c, c->ctx);
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
        err_msg("connect %s", c->name);
}

/* ---------- output --------------------------------------------------------------- */

static void conn_settle(struct conn *c);

int conn_send(struct conn *c, const void *data, size_t n)
{
    if (c->failed || c->wr_shut)
        return -1;
    if (n == 0)
        return 0;
    if (pool_reserve(c->srv->pool, &c->out, n) == -1) {
        unix_warn("pool_reserve", c->name);
        c->failed = 1;
        if (!c->busy)
            conn_free(c); /* outside its callback: nobody else will */
        return -1;
    }
    memcpy(buf_tail(c->out), data, n);
    buf_commit(c->out, n);
    if (!c->busy)
        conn_settle(c); /* sent from elsewhere (a timer, a worker's result): arm WRITE */
    return 0;
}

/* Write what the socket takes.  0, or -1 if the connection is dead. */
static int conn_flush(struct conn *c)
{
    /* TODO 5: send what c->out holds until it is empty or the socket is
     * full.  Contract:
     *   - returns 0 while the connection is fine (everything sent, or the
     *     rest waits for REACTOR_WRITE), -1 when it is dead (the peer
     *     reset or hung up: not worth a log line; anything else: warn);
     *   - never raises SIGPIPE, survives EINTR, never blocks;
     *   - an emptied output buffer goes back to the pool and c->out
     *     becomes NULL: an idle connection holds no buffer. */
    (void)c;
    todo("TODO 5: conn_flush() in conn.c");
}

void conn_close(struct conn *c)
{
    if (c->busy)
        c->failed = 1; /* the event callback closes it on its way out */
    else
        conn_free(c);
}

void conn_hold(struct conn *c)
{
    c->holds++;
}

void conn_release(struct conn *c)
{
    if (c->holds > 0)
        c->holds--;
    if (!c->busy)
        conn_settle(c); /* EOF already seen: this may close c */
}

void conn_shutdown(struct conn *c)
{
    c->draining = 1;
    if (!c->busy)
        conn_settle(c);
}

/* ---------- input ---------------------------------------------------------------- */

/* Hand the input to the application, and drop what it used.  After
 * conn_shutdown() or conn_close() the application hears nothing more: the
 * input is discarded. */
static void conn_deliver(struct conn *c)
{
    if (!c->draining && !c->failed) {
        size_t used = c->srv->on_data(c, c->ctx, buf_data(c->in), c->in->len);
        buf_consume(c->in, used);
    }
    if (c->draining || c->failed)
        buf_consume(c->in, c->in->len);
}

/* Read until the socket is empty, EOF, or the output reaches the
 * high-water mark.  events: the event's REACTOR_* bits.  0, or -1 if the
 * connection must close. */
static int conn_read(struct conn *c, int events)
{
    /* TODO 6: read what the client sent and hand it to the application
     * with conn_deliver(c) (it calls on_data and drops what was used).
     * Contract:
     *   - the bytes go straight into c->in, a pool buffer grown with
     *     pool_reserve() (a refusal closes this connection only);
     *   - edge-triggered: read until the socket is empty, unless one of
     *     these stops you first: EOF (set c->eof), c->failed (the
     *     application or the pool ended the connection), READ_BUDGET reads
     *     (set c->yielded: the others get their turn, and conn_settle()
     *     re-arms you), or back-pressure (output pending >= high_water:
     *     set c->paused).  The socket is empty when read() says EAGAIN,
     *     or as soon as a read returns less than it asked for (epoll(7)):
     *     stop there, without the read that would only say EAGAIN ...
     *   - ... unless events has REACTOR_HUP: the client's FIN is already
     *     here and no new event will announce it, so read on to the 0;
     *   - never read more in one go than the output may still grow
     *     (high_water - pending), nor so much that the input (what is
     *     left in c->in plus this read) passes READ_CHUNK while what is
     *     left is small: a leftover partial message must not push the
     *     buffer up a size class; flush after each delivery, so the
     *     output stays near high_water;
     *   - an emptied input buffer goes back to the pool (c->in = NULL);
     *   - returns -1 when the connection must close (an error, a reset:
     *     quietly; c->failed), else 0. */
    (void)c;
    (void)events;
    (void)conn_deliver;
    todo("TODO 6: conn_read() in conn.c");
}

/* ---------- the event callback ------------------------------------------------------ */

/* The events the connection needs now: READ unless paused by back-pressure
 * or at EOF, WRITE only while output is pending (asking for WRITE with
 * nothing to write would wake the loop for nothing, over and over). */
static int conn_interest(const struct conn *c)
{
    /* TODO 7a: which events c needs now, as REACTOR_* bits: READ unless
     * it is paused by back-pressure or at EOF; WRITE only while output is
     * pending (asking for WRITE with nothing to send wakes the loop for
     * nothing). */
    (void)c;
    todo("TODO 7: conn_interest() in conn.c");
}

/* Between events, the input buffer holds at most the start of a message
 * the application is waiting to complete (a few bytes, usually).  Reading
 * grew it to READ_CHUNK's class; move those bytes to the smallest buffer
 * that fits, so a client that sends half a request and stops holds a few
 * KiB, not 64.  Empty: no buffer at all. */
static void conn_trim_input(struct conn *c)
{
    struct bufpool *pool = c->srv->pool;
    if (!c->in)
        return;
    if (c->in->len == 0) {
        pool_free(pool, c->in);
        c->in = NULL;
        return;
    }
    if (pool_class_size(c->in->len) >= c->in->cap)
        return;
    struct pool_buf *small = pool_alloc(pool, c->in->len);
    if (!small)
        return; /* keep the big one: still correct, just not lean */
    memcpy(buf_tail(small), buf_data(c->in), c->in->len);
    buf_commit(small, c->in->len);
    pool_free(pool, c->in);
    c->in = small;
}

/* After anything happened to c: close it, shut it down, or watch for what
 * it needs next.  c may be gone afterwards. */
static void conn_settle(struct conn *c)
{
    struct conn_server *s = c->srv;
    if (c->failed) {
        conn_free(c);
        return;
    }
    conn_trim_input(c);
    if (c->draining && !c->wr_shut && !c->eof && out_pending(c) == 0) {
        /* Everything owed is in the kernel: the client reads it, then EOF. */
        if (shutdown(c->fd, SHUT_WR) == -1) {
            conn_free(c); /* ENOTCONN: the client is gone already */
            return;
        }
        c->wr_shut = 1;
        linger_add(c);
    }
    if (c->eof && out_pending(c) == 0 && (c->holds == 0 || c->draining)) {
        conn_free(c); /* half-close: everything owed has been sent */
        return;
    }
    int want = conn_interest(c);
    if (want == reactor_events(s->r, c->fd) && !c->yielded)
        return; /* nothing changed: no syscall */
    c->yielded = 0;
    if (reactor_modify(s->r, c->fd, want) == -1) {
        unix_warn("reactor_modify", c->name);
        conn_free(c);
    }
}

/* One event: flush, resume below the low-water mark, read.  0, or -1 if
 * the connection must close. */
static int conn_handle(struct conn *c, int events)
{
    /* TODO 7b: handle one event (REACTOR_READ and/or REACTOR_WRITE) for
     * c: send pending output when writable, resume reading once the
     * output has drained below low_water (clear c->paused), read when
     * readable and not paused (conn_read() gets the event's bits: it
     * needs REACTOR_HUP).  Return -1 if the connection must close,
     * else 0; conn_settle() does the rest (closing at EOF, the interest). */
    (void)c;
    (void)events;
    (void)conn_flush;
    (void)conn_read;
    todo("TODO 7: conn_handle() in conn.c");
}

static void conn_event_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct conn *c = arg;
    (void)r;
    (void)fd;
    c->busy = 1;
    int st = conn_handle(c, events);
    c->busy = 0;
    if (st == -1)
        conn_free(c);
    else
        conn_settle(c);
}

/* The linger timer: close every lingering connection whose time is up. */
static void linger_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct conn_server *s = arg;
    uint64_t expirations;
    (void)r;
    (void)events;
    while (read(fd, &expirations, sizeof expirations) > 0)
        ;
    long long now = now_ms();
    while (s->linger_head && s->linger_head->linger_end <= now)
        conn_free(s->linger_head);
    linger_arm(s);
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
        if (accept_error_is_transient(errno))
            continue; /* that client gave up: the next one */
        if (errno == EMFILE || errno == ENFILE) {
            /* Out of fds.  Leaving the client in the queue would make the
             * listening socket ready forever (a busy loop, edge-triggered
             * or not); give up the spare fd to accept it and close it at
             * once, so it learns now (common/wrap.h explains the trick). */
            int r = spare_fd_refuse(fd, &s->spare_fd);
            if (r == 1) {
                if (!refused++) /* once per event, not once per client */
                    err_msg("accept: out of fds, refusing new clients");
                continue;
            }
            if (r == 0)
                return; /* nobody else waiting */
            if (accept_error_is_transient(errno))
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
    s->linger_head = s->linger_tail = NULL;
    /* Without a listener (listenfd -1) nothing is accepted here, so no
     * spare fd is needed: connections arrive through conn_adopt(). */
    s->spare_fd = listenfd >= 0 ? spare_fd_open() : -1;
    s->linger_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if ((listenfd >= 0 && s->spare_fd == -1) || s->linger_fd == -1 ||
        reactor_add(s->r, s->linger_fd, REACTOR_READ, linger_cb, s) == -1)
        return -1;
    if (listenfd >= 0 && (set_nonblocking(listenfd) == -1 ||
                          reactor_add(s->r, listenfd, REACTOR_READ, accept_cb, s) == -1))
        return -1;
    return 0;
}

void conn_adopt(struct conn_server *s, int fd, const struct sockaddr *peer)
{
    conn_open(s, fd, peer);
}

void conn_server_stop(struct conn_server *s)
{
    while (s->conns)
        conn_free(s->conns);
    if (s->spare_fd >= 0)
        close(s->spare_fd);
    s->spare_fd = -1;
    if (s->linger_fd >= 0) {
        reactor_remove(s->r, s->linger_fd);
        close(s->linger_fd);
    }
    s->linger_fd = -1;
}
