/*
 * libevent_raw_server: uppercase echo on libevent's raw events, the third
 * libevent row of `make compare`: libevent used the way memcached uses it.
 *
 * Not a lab: like libevent_server, it gives the numbers of 06-08 an outside
 * library to be held against.  It obeys the same command line (server
 * [-p PORT] [-a ADDR] [-v]), prints the same "listening on ADDR:PORT" line,
 * honours half-close (a client's EOF is answered once everything owed has
 * been written) and exits 0 on SIGTERM/SIGINT with everything freed.
 *
 * Why it exists: libevent_server's bufferevents cannot read more than
 * 4096 bytes per system call on libevent 2.1 (Debian 12 ships 2.1.12).
 * evbuffer_read() sizes each readv by FIONREAD and clamps it:
 * `if (n <= 0 || n > EVBUFFER_MAX_READ) n = EVBUFFER_MAX_READ;`, with
 * EVBUFFER_MAX_READ 4096, and a bufferevent calls evbuffer_read() once per
 * read event, so bufferevent_set_max_single_read(64 KiB) cannot raise it
 * (libevent 2.2's evbuffer_set_max_read() can; 2.1 has no such call).
 * A 16 KiB message then costs four ioctl(FIONREAD) + readv pairs, four
 * writev()s, and the bufferevent's EV_WRITE is added and removed around
 * each (epoll_ctl): strace counts 21 system calls per round trip (10
 * connections, 16 KiB), where this server makes one read(), one write()
 * and a share of an epoll_wait(), 2.1.  libevent's heaviest users
 * (memcached) do not use bufferevents: they take an event
 * (EV_READ|EV_PERSIST) per connection from libevent and do their own
 * read() and write() on their own buffers.  So does this one:
 *
 *   - evconnlistener accepts (non-blocking sockets), TCP_NODELAY on each;
 *     out of fds, a spare fd turns new clients away (common/'s
 *     spare_fd_refuse) instead of letting the listener spin;
 *   - per connection: a persistent, level-triggered read event, a write
 *     event added only while output is pending, and an output buffer
 *     allocated the first time a write falls short (64 KiB, grown by
 *     doubling when needed);
 *   - one 64 KiB read buffer for the whole server (one thread: a read is
 *     uppercased and written before the next read can reuse it; what the
 *     socket does not take is copied to the connection's output buffer);
 *   - on readable: one read() of up to 64 KiB, upcase, write() at once
 *     when nothing else is waiting (else behind what is): no epoll_ctl
 *     in a ping-pong round trip;
 *   - back-pressure as lab 08's: once 4 MiB of output waits for a client,
 *     the read event is removed until it has drained to 1 MiB.  (Stopping
 *     at the first short write, memcached's rule for its request/reply
 *     protocol, deadlocks an echo client that sends a few MiB before it
 *     reads: halfclose.py --size 8388608.)
 *
 * What it leaves out: what memcached adds to the pattern (several event
 * loops, one per thread, fed by an accepting thread; a read buffer per
 * connection that grows with the request), and a limit on the number of
 * clients.
 *
 * Built only when libevent is installed (apt-get install libevent-dev).
 */
#define _POSIX_C_SOURCE 200809L

#include "libevent_bench.h"

#include <errno.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_SIZE 65536                       /* bytes one read() may take */
#define HIGH_WATER ((size_t)4 * 1024 * 1024) /* stop reading a client with this much output waiting */
#define LOW_WATER ((size_t)1024 * 1024)      /* ... until it is down to this */

static int verbose;

/* The read buffer every connection shares: see the header. */
static char rbuf[READ_SIZE];

/* ---------- one connection ---------------------------------------------------- */

struct conn {
    int fd;
    struct event *rev;        /* EV_READ|EV_PERSIST: added unless paused or at EOF */
    struct event *wev;        /* EV_WRITE|EV_PERSIST: added only while output is pending */
    char *out;                /* the output buffer, NULL until a write falls short */
    size_t out_cap;           /* its size: READ_SIZE, doubled up to HIGH_WATER */
    size_t out_off, out_len;  /* pending output: out[out_off .. out_len) */
    int paused;               /* not reading: output reached HIGH_WATER */
    int eof;                  /* the client has half-closed: close once drained */
    struct conn *prev, *next; /* every open connection, to free them at exit */
};

static struct conn *conns; /* the list's head */

static void conn_close(struct conn *c)
{
    if (verbose) {
        char name[ADDR_STRLEN];
        fprintf(stderr, "close %s\n", peer_str(c->fd, name, sizeof name));
    }
    event_free(c->rev); /* event_free deletes a pending event first */
    event_free(c->wev);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    free(c->out);
    free(c);
}

/* Write buf[0..n) to the socket until done or the socket is full.  Returns
 * the bytes written (n, or fewer when it would block), or -1 on error
 * (ECONNRESET, EPIPE: SIGPIPE is ignored). */
static ssize_t write_some(int fd, const char *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, buf + done, n - done);
        if (w > 0) {
            done += (size_t)w;
        } else if (w == -1 && errno == EINTR) {
            continue;
        } else if (w == -1 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;
        } else {
            return -1;
        }
    }
    return (ssize_t)done;
}

/* Append buf[0..n) to the pending output.  The pending bytes are moved to
 * the front first when the tail has no room, so the buffer never grows
 * past HIGH_WATER (read_cb reads no more than HIGH_WATER - pending).
 * 0, or -1 out of memory. */
static int out_append(struct conn *c, const char *buf, size_t n)
{
    size_t pending = c->out_len - c->out_off;
    if (c->out_len + n > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, pending);
        c->out_off = 0;
        c->out_len = pending;
    }
    if (pending + n > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : READ_SIZE;
        while (cap < pending + n)
            cap *= 2;
        char *p = realloc(c->out, cap);
        if (!p)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, buf, n);
    c->out_len += n;
    return 0;
}

/* Readable.  One read() per callback: a read that fills the buffer leaves
 * the socket readable, and the level-triggered event brings us back after
 * the other connections have had their turn; one that does not fill it has
 * taken everything there was (reading on to EAGAIN would cost one more
 * system call per round trip, for nothing). */
static void read_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    size_t pending = c->out_len - c->out_off;
    size_t want = HIGH_WATER - pending; /* > 0: paused at HIGH_WATER */
    if (want > sizeof rbuf)
        want = sizeof rbuf;
    ssize_t n;
    do
        n = read(fd, rbuf, want);
    while (n == -1 && errno == EINTR);
    if (n == -1 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return; /* a spurious wake-up */
    if (n == -1) {
        conn_close(c); /* ECONNRESET and friends: drop this client only */
        return;
    }
    if (n == 0) {
        /* Half-close: send what is still owed, then close. */
        if (pending == 0) {
            conn_close(c);
            return;
        }
        c->eof = 1;
        if (event_del(c->rev) == -1) {
            err_msg("event_del: cannot stop reading a client");
            conn_close(c);
        }
        return;
    }
    upcase(rbuf, (size_t)n);
    size_t done = 0;
    if (pending == 0) {
        /* Nothing waiting: straight to the socket, the usual case. */
        ssize_t w = write_some(fd, rbuf, (size_t)n);
        if (w == -1) {
            conn_close(c); /* EPIPE, ECONNRESET */
            return;
        }
        done = (size_t)w;
        if (done == (size_t)n)
            return;
    }
    /* The socket is full: keep the rest until it is writable. */
    if (out_append(c, rbuf + done, (size_t)n - done) == -1) {
        unix_warn("realloc", "output buffer");
        conn_close(c);
        return;
    }
    int bad = pending == 0 && event_add(c->wev, NULL) == -1;
    if (!bad && c->out_len - c->out_off >= HIGH_WATER) {
        c->paused = 1; /* back-pressure: the client must read first */
        bad = event_del(c->rev) == -1;
    }
    if (bad) {
        err_msg("event_add: cannot wait for a client");
        conn_close(c);
    }
}

/* Writable: output was pending.  Write it; read again once it is low. */
static void write_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    ssize_t w = write_some(fd, c->out + c->out_off, c->out_len - c->out_off);
    if (w == -1) {
        conn_close(c);
        return;
    }
    c->out_off += (size_t)w;
    size_t pending = c->out_len - c->out_off;
    int bad = 0;
    if (pending == 0) {
        if (c->eof) {
            conn_close(c); /* everything owed has gone */
            return;
        }
        c->out_off = c->out_len = 0;
        if (c->out_cap > READ_SIZE) { /* a burst is over: give its memory back */
            free(c->out);
            c->out = NULL;
            c->out_cap = 0;
        }
        bad = event_del(c->wev) == -1;
    }
    if (!bad && c->paused && pending <= LOW_WATER) {
        c->paused = 0;
        bad = event_add(c->rev, NULL) == -1;
    }
    if (bad) {
        err_msg("event_add: cannot wait for a client");
        conn_close(c);
    }
}

/* ---------- accepting ---------------------------------------------------------- */

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
    (void)len;
    (void)arg;
    /* evconnlistener has made fd non-blocking (we do not pass
     * LEV_OPT_LEAVE_SOCKETS_BLOCKING). */
    struct event_base *base = evconnlistener_get_base(lst);
    struct conn *c = calloc(1, sizeof *c);
    if (!c) {
        unix_warn("calloc", "client");
        close(fd);
        return;
    }
    c->fd = fd;
    c->rev = event_new(base, fd, EV_READ | EV_PERSIST, read_cb, c);
    c->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, write_cb, c);
    if (!c->rev || !c->wev || event_add(c->rev, NULL) == -1) {
        err_msg("event_new: cannot serve a client");
        if (c->rev)
            event_free(c->rev);
        if (c->wev)
            event_free(c->wev);
        close(fd);
        free(c);
        return;
    }
    c->next = conns;
    if (conns)
        conns->prev = c;
    conns = c;
    if (verbose) {
        char name[ADDR_STRLEN];
        fprintf(stderr, "connect %s\n", sockaddr_str(sa, name, sizeof name));
    }
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1)
        unix_warn("setsockopt TCP_NODELAY", "client");
}

/* Out of fds, accept() fails and the client stays queued: the listener
 * stays readable and the loop spins.  memcached stops accepting for a
 * while; here the spare fd of common/ turns such clients away at once
 * (wrap.h explains the trick). */
static int spare_fd = -1;

/* accept() failed (EAGAIN, EINTR and ECONNABORTED never get here:
 * libevent waits for the next event). */
static void accept_error_cb(struct evconnlistener *lst, void *arg)
{
    (void)arg;
    int err = errno;
    if (err == EMFILE || err == ENFILE) {
        int r, refused = 0;
        while ((r = spare_fd_refuse(evconnlistener_get_fd(lst), &spare_fd)) == 1)
            if (!refused++) /* once per event, not once per client */
                err_msg("accept: out of fds, refusing new clients");
        if (r == 0 || accept_error_is_transient(errno))
            return; /* nobody waiting; or the next event retries */
        unix_warn("accept", "listen fd (out of fds, no spare left)");
        return;
    }
    if (!accept_error_is_transient(err))
        unix_warn("accept", "listen fd");
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct bench_loop b;
    bench_open(&b, argc, argv, accept_cb, accept_error_cb);
    verbose = b.opts.verbose;
    if ((spare_fd = spare_fd_open()) == -1)
        unix_error("spare_fd_open", "/dev/null");
    bench_run(&b);

    while (conns) /* the clients still connected at exit */
        conn_close(conns);
    bench_close(&b);
    close(spare_fd);
    return 0;
}
