/*
 * 07-epoll-et: an uppercase-echo server on epoll, edge-triggered and
 * non-blocking.
 *
 * Lab 06 waited on epoll level-triggered and still wrote with a blocking
 * writen(): one client that stops reading froze everyone.  Here no call
 * ever blocks except epoll_wait:
 *
 *   - every socket is non-blocking (accept4 with SOCK_NONBLOCK), so read,
 *     send and accept return EAGAIN instead of waiting;
 *   - each connection owns an output buffer: what the client cannot take
 *     now waits there, and EPOLLOUT is registered only while that buffer
 *     holds something, and dropped once it is flushed;
 *   - notification is edge-triggered (EPOLLET): epoll reports a change of
 *     state once, so after an event we must read, accept and send until
 *     EAGAIN, or remember that we stopped early.  Nothing reminds us.
 *
 * Work per event is bounded (READS_PER_EVENT), so one client with an
 * endless stream cannot starve the others: when we stop before EAGAIN we
 * re-arm the fd with EPOLL_CTL_MOD, which makes the kernel check it again
 * and queue a fresh event behind everyone else's.
 *
 * What it leaves out, on purpose: the output buffer has no limit.  A
 * client that sends 64 MiB and never reads makes this server hold 64 MiB.
 * Lab 08 adds pooled buffers and back-pressure (stop reading from a client
 * that does not read).
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* accept4() and SOCK_NONBLOCK */

#include "wrap.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define MAX_EVENTS 256     /* ready fds taken per epoll_wait; the rest wait */
#define READS_PER_EVENT 16 /* at most 16 * BUF_SIZE bytes per client per turn */

static int verbose;

/* ---------- stopping on SIGTERM/SIGINT ------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---------- the connection table ------------------------------------------- */

/* One slot per fd number, so an event's fd finds its state in O(1) (the
 * kernel hands out the lowest free fd, so the table stays dense).  The
 * table grows by doubling; every index is bound-checked first. */
struct conn {
    int open;
    int eof;         /* the client half-closed: flush what we owe, then close */
    uint32_t events; /* what epoll watches for this fd right now */
    char *out;       /* bytes owed to the client: out[off .. off + len) */
    size_t off, len, cap;
    char name[ADDR_STRLEN]; /* the peer, for the -v log */
};

static struct conn *conns;
static size_t nconns; /* slots allocated */

/* The slot for fd, growing the table if needed.  NULL when out of memory. */
static struct conn *conn_slot(int fd)
{
    if (fd < 0) {
        errno = ERANGE;
        return NULL;
    }
    if ((size_t)fd >= nconns) {
        size_t n = nconns ? nconns : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct conn *t = realloc(conns, n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + nconns, 0, (n - nconns) * sizeof *t);
        conns = t;
        nconns = n;
    }
    return &conns[fd];
}

static void conn_open(int epfd, int fd, const struct sockaddr *peer)
{
    struct conn *c = conn_slot(fd);
    if (!c) {
        unix_warn("conn_open", "connection table");
        close(fd);
        return;
    }
    /* EPOLLET: one event per change (new bytes arrived, room appeared),
     * not one per wait while the condition holds. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        unix_warn("epoll_ctl ADD", "client");
        close(fd);
        return;
    }
    memset(c, 0, sizeof *c);
    c->open = 1;
    c->events = ev.events;
    sockaddr_str(peer, c->name, sizeof c->name);
    if (verbose)
        fprintf(stderr, "connect %s\n", c->name);
}

static void conn_close(int epfd, int fd)
{
    struct conn *c = &conns[fd];
    /* Remove it from the interest list first: close() alone drops it only
     * once no other fd refers to the same socket. */
    if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == -1)
        unix_warn("epoll_ctl DEL", "client");
    close(fd);
    free(c->out);
    c->out = NULL;
    c->open = 0;
    if (verbose)
        fprintf(stderr, "close %s\n", c->name);
}

/* ---------- the output buffer ---------------------------------------------- */

/* Make room for BUF_SIZE more bytes after the pending ones.  0 or -1. */
static int out_reserve(struct conn *c)
{
    if (c->len == 0)
        c->off = 0;
    if (c->cap - c->off - c->len >= BUF_SIZE)
        return 0;
    if (c->off > 0) { /* slide the pending bytes to the front */
        memmove(c->out, c->out + c->off, c->len);
        c->off = 0;
        if (c->cap - c->len >= BUF_SIZE)
            return 0;
    }
    size_t cap = c->cap ? c->cap : BUF_SIZE;
    while (cap - c->len < BUF_SIZE)
        cap *= 2;
    char *p = realloc(c->out, cap);
    if (!p)
        return -1;
    c->out = p;
    c->cap = cap;
    return 0;
}

/* Send pending bytes until none are left or the socket is full (EAGAIN).
 * 0 = fine (maybe bytes left), -1 = the connection is broken. */
static int out_flush(int fd, struct conn *c)
{
    while (c->len > 0) {
        ssize_t w = send(fd, c->out + c->off, c->len, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0; /* EPOLLOUT will tell us when there is room */
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("send", "client");
            return -1;
        }
        c->off += (size_t)w;
        c->len -= (size_t)w;
    }
    return 0;
}

/* ---------- the service ---------------------------------------------------- */

/* Read until EAGAIN (the edge is used up), EOF, or READS_PER_EVENT reads.
 * The bytes go, uppercased, straight into the output buffer.
 * Returns 0 when drained, 1 when it stopped early, -1 on error. */
static int conn_read(int fd, struct conn *c)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (out_reserve(c) == -1) {
            unix_warn("realloc", "output buffer");
            return -1;
        }
        char *dst = c->out + c->off + c->len;
        ssize_t n = read(fd, dst, BUF_SIZE);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0; /* drained: the next event comes with new bytes */
            if (errno != ECONNRESET)
                unix_warn("read", "client");
            return -1;
        }
        if (n == 0) {
            c->eof = 1; /* half-close: we still owe c->len bytes */
            return 0;
        }
        upcase(dst, (size_t)n);
        c->len += (size_t)n;
    }
    return 1; /* maybe more to read: the caller re-arms the fd */
}

/* Handle one event on a client.  Returns 0 to keep it, -1 to close it. */
static int serve_client(int epfd, int fd, uint32_t ready)
{
    struct conn *c = &conns[fd];
    int more = 0;

    /* EPOLLERR/EPOLLHUP count as readable: read() reports what happened. */
    if ((ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c->eof) {
        more = conn_read(fd, c);
        if (more == -1)
            return -1;
    }
    if (out_flush(fd, c) == -1)
        return -1;
    if (c->eof && c->len == 0)
        return -1; /* everything owed has been sent: close */

    /* EPOLLOUT only while output is pending.  A MOD also re-arms: if the
     * fd is still readable the kernel queues a new event for it, which is
     * how we come back to a client we left early. */
    uint32_t want = EPOLLIN | EPOLLET | (c->len > 0 ? EPOLLOUT : 0);
    if (want != c->events || more) {
        struct epoll_event ev = {.events = want, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == -1) {
            unix_warn("epoll_ctl MOD", "client");
            return -1;
        }
        c->events = want;
    }
    return 0;
}

/* An fd kept in reserve for EMFILE: without it, a full fd table leaves
 * the pending connection in the accept queue, and nothing ever tells the
 * client to go away. */
static int spare_fd = -1;

/* Accept every pending connection: one edge may stand for many. */
static void accept_clients(int epfd, int listenfd)
{
    int warned = 0;

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        int fd = accept4(listenfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK);
        if (fd >= 0) {
            conn_open(epfd, fd, (struct sockaddr *)&peer);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue; /* a client that gave up is not our error */
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return; /* the queue is empty: the edge is used up */
        if ((errno == EMFILE || errno == ENFILE) && spare_fd >= 0) {
            /* Out of fds: free the spare, accept the client and close it
             * at once (it sees EOF, not silence), take the spare back. */
            if (!warned++)
                unix_warn("accept4", "listening socket (closing new clients)");
            close(spare_fd);
            fd = accept(listenfd, NULL, NULL);
            int empty = fd == -1 && (errno == EAGAIN || errno == EWOULDBLOCK);
            if (fd >= 0)
                close(fd);
            spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
            /* accept() reserves the new fd before it looks at the queue,
             * so a full fd table says EMFILE even when nobody is waiting:
             * only this accept, with a free fd, can tell "queue empty". */
            if (empty)
                return;
            continue;
        }
        /* Anything else: give up on this edge; the next connect raises
         * another one. */
        unix_warn("accept4", "listening socket");
        return;
    }
}

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    verbose = opts.verbose;
    Ignore_sigpipe();

    /* Block SIGINT/SIGTERM except inside epoll_pwait: a signal that lands
     * between the stop check and the wait would otherwise be noticed only
     * at the next event. */
    sigset_t stop_sigs, wait_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    On_stop_signals(on_stop);
    if (sigprocmask(SIG_BLOCK, &stop_sigs, &wait_mask) == -1)
        unix_error("sigprocmask", NULL);

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Set_nonblocking(listenfd);
    spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spare_fd == -1)
        unix_error("open", "/dev/null");

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd == -1)
        unix_error("epoll_create1", NULL);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = listenfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listenfd, &ev) == -1)
        unix_error("epoll_ctl ADD", "listening socket");
    Announce_listening(listenfd);

    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        int nready = epoll_pwait(epfd, events, MAX_EVENTS, -1, &wait_mask);
        if (nready == -1) {
            if (errno == EINTR)
                continue; /* the loop condition sees the stop request */
            unix_error("epoll_wait", NULL);
        }
        for (int i = 0; i < nready; i++) {
            int fd = events[i].data.fd;
            if (fd == listenfd) {
                accept_clients(epfd, listenfd);
                continue;
            }
            if (serve_client(epfd, fd, events[i].events) == -1)
                conn_close(epfd, fd);
        }
    }

    /* Clean exit: every connection and its buffer, the listener, the
     * spare, the epoll fd, the table.  A leak checker finds nothing. */
    for (size_t fd = 0; fd < nconns; fd++)
        if (conns[fd].open)
            conn_close(epfd, (int)fd);
    free(conns);
    if (spare_fd >= 0)
        close(spare_fd);
    close(listenfd);
    close(epfd);
    return 0;
}
