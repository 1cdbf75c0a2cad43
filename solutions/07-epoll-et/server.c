/*
 * 07-epoll-et: one thread serves many clients with epoll, edge-triggered,
 * and nothing ever blocks but epoll_wait().
 *
 * Lab 06 still wrote with a blocking writen(): one client that stops
 * reading froze everyone.  Here:
 *   - every socket is non-blocking (accept4() with SOCK_NONBLOCK), so
 *     read(), send() and accept() return EAGAIN instead of waiting;
 *   - each client owns an output buffer: what it cannot take now waits
 *     there.  EPOLLOUT is registered only while that buffer holds
 *     something and dropped once it is flushed;
 *   - notification is edge-triggered (EPOLLET): epoll reports a change
 *     once ("new bytes arrived", "room appeared"), not a state on every
 *     call.  After an event we must read, accept and send until EAGAIN, or
 *     remember that we stopped early: nothing will remind us.
 *
 * Work per event is bounded (READS_PER_EVENT), so one client with an
 * endless stream cannot starve the others.  When we stop before EAGAIN we
 * re-arm the fd with EPOLL_CTL_MOD, which makes the kernel look at it
 * again and queue a fresh event behind everyone else's.
 *
 * What it leaves out, on purpose: the output buffer has no limit.  A
 * client that sends 64 MiB and never reads makes this server hold 64 MiB,
 * and every idle client keeps the buffer it once needed.  Lab 08 draws
 * buffers from a pool and adds back-pressure (stop reading a client that
 * does not read).
 */
#define _POSIX_C_SOURCE 200809L
#define _GNU_SOURCE /* accept4() and SOCK_NONBLOCK */

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define MAX_EVENTS 256     /* ready fds taken per epoll_wait(); the rest wait */
#define READS_PER_EVENT 16 /* at most 16 * BUF_SIZE bytes per client per turn */

static int verbose; /* -v: log connects and closes */

/* ---------- stopping on SIGTERM/SIGINT ------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---------- the client table ----------------------------------------------- */

/* The kernel keeps the interest list (epfd); we keep what it does not
 * know, indexed by fd (the kernel hands out the lowest free fd, so the
 * table stays dense).  An empty name is a free slot.  The table grows with
 * realloc() and every index is checked against its size first. */
struct client {
    char name[ADDR_STRLEN]; /* the peer, for the log; "" = free slot */
    int eof;                /* it half-closed: flush what we owe, then close */
    uint32_t events;        /* what epoll watches for this fd right now */
    char *out;              /* bytes owed to it: out[off .. off + len) */
    size_t off, len, size;
};

static int epfd = -1;
static struct client *clients;
static size_t cap;

/* 0, or -1 with errno set (the caller refuses that client). */
static int table_add(int fd, const char *name)
{
    if (fd < 0) {
        errno = ERANGE;
        return -1;
    }
    if ((size_t)fd >= cap) {
        size_t ncap = cap ? 2 * cap : 64;
        while (ncap <= (size_t)fd)
            ncap *= 2;
        struct client *q = realloc(clients, ncap * sizeof *q);
        if (!q)
            return -1;
        memset(q + cap, 0, (ncap - cap) * sizeof *q);
        clients = q;
        cap = ncap;
    }
    /* EPOLLET: one event per change, not one per call while it holds. */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1)
        return -1;
    struct client *c = &clients[fd];
    memset(c, 0, sizeof *c);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->events = ev.events;
    return 0;
}

static void table_remove(int fd)
{
    /* Remove it from the interest list before close(): close() alone
     * drops it only once no other fd refers to the same socket. */
    if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == -1)
        unix_warn("epoll_ctl DEL", clients[fd].name);
    free(clients[fd].out);
    memset(&clients[fd], 0, sizeof clients[fd]);
}

/* ---------- connections ------------------------------------------------------ */

/* An fd held in reserve for EMFILE.  With the fd table full, accept()
 * fails and the connection stays queued; edge-triggered, nothing reports
 * it again, and the client waits forever.  Giving up the spare lets us
 * accept it and close it at once, so it hears "no" (EOF) instead
 * (spare_fd_refuse() in common/ does exactly that). */
static int spare_fd = -1;

/* Accept every queued connection: one edge may stand for many. */
static void accept_clients(int listenfd)
{
    int refused = 0;

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int fd = accept4(listenfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK);
        if (fd == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return; /* the queue is empty: this edge is used up */
            if (accept_error_is_transient(errno))
                continue; /* a signal, or a client that gave up */
            if (errno == EMFILE || errno == ENFILE) {
                /* accept() takes a free fd BEFORE it looks at the queue,
                 * so a full table says EMFILE even when no one waits:
                 * only the accept made with the spare's fd can say
                 * "empty" (0). */
                int r = spare_fd_refuse(listenfd, &spare_fd);
                if (r == 1) {
                    if (!refused++) /* once per edge, not once per client */
                        err_msg("accept4: out of fds: closing new clients");
                    continue;
                }
                if (r == 0)
                    return;
                if (accept_error_is_transient(errno))
                    continue;
                /* EMFILE again: no spare to give up (its reopen failed);
                 * the next connection raises another edge. */
                unix_warn("accept", "listening socket (out of fds, no spare left)");
                return;
            }
            /* Anything else: give up on this edge; the next connection
             * raises another one. */
            unix_warn("accept4", "listening socket");
            return;
        }
        sockaddr_str((struct sockaddr *)&peer, name, sizeof name);
        if (table_add(fd, name) == -1) {
            unix_warn("table_add", name);
            close(fd);
            continue;
        }
        if (verbose)
            err_msg("connect %s", name);
    }
}

static void close_client(int fd)
{
    if (verbose)
        err_msg("close %s", clients[fd].name);
    table_remove(fd);
    close(fd);
}

/* ---------- the output buffer ------------------------------------------------ */

/* Make room for BUF_SIZE more bytes after the pending ones.  0 or -1. */
static int out_reserve(struct client *c)
{
    if (c->len == 0)
        c->off = 0;
    if (c->size - c->off - c->len >= BUF_SIZE)
        return 0;
    if (c->off > 0) { /* slide the pending bytes to the front */
        memmove(c->out, c->out + c->off, c->len);
        c->off = 0;
        if (c->size - c->len >= BUF_SIZE)
            return 0;
    }
    size_t size = c->size ? c->size : BUF_SIZE;
    while (size - c->len < BUF_SIZE)
        size *= 2;
    char *p = realloc(c->out, size);
    if (!p)
        return -1;
    c->out = p;
    c->size = size;
    return 0;
}

/* Send pending bytes until none are left or the socket is full (EAGAIN:
 * keep them, EPOLLOUT says when there is room).  0, or -1 if the client is
 * gone. */
static int out_flush(int fd, struct client *c)
{
    while (c->len > 0) {
        ssize_t w = send(fd, c->out + c->off, c->len, MSG_NOSIGNAL);
        if (w == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("send", c->name);
            return -1;
        }
        c->off += (size_t)w;
        c->len -= (size_t)w;
    }
    return 0;
}

/* ---------- the service -------------------------------------------------------- */

/* Read until EAGAIN (the edge is used up), EOF, or READS_PER_EVENT reads.
 * The bytes go, uppercased, straight into the output buffer.  Returns 0
 * when drained, 1 when it stopped early, -1 if the client is gone. */
static int read_input(int fd, struct client *c)
{
    for (int i = 0; i < READS_PER_EVENT; i++) {
        if (out_reserve(c) == -1) {
            unix_warn("realloc", c->name);
            return -1;
        }
        char *dst = c->out + c->off + c->len;
        ssize_t n = read(fd, dst, BUF_SIZE);
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0; /* drained: the next event comes with new bytes */
            if (errno != ECONNRESET) /* a reset is the client's choice */
                unix_warn("read", c->name);
            return -1;
        }
        if (n == 0) {
            c->eof = 1; /* half-closed: we still owe it c->len bytes */
            return 0;
        }
        upcase(dst, (size_t)n);
        c->len += (size_t)n;
    }
    return 1;
}

/* Serve one event on a client.  Returns 0 to keep the client, -1 to close
 * it. */
static int serve_client(int fd, uint32_t ready)
{
    struct client *c = &clients[fd];
    int more = 0;

    /* EPOLLERR and EPOLLHUP count as readable: read() says what happened. */
    if ((ready & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !c->eof) {
        more = read_input(fd, c);
        if (more == -1)
            return -1;
    }
    if (out_flush(fd, c) == -1)
        return -1;
    if (c->eof && c->len == 0)
        return -1; /* everything owed has been sent: close */

    /* EPOLLOUT only while output is pending.  A MOD also re-arms the fd:
     * if it is still readable the kernel queues a new event for it, and
     * that is how we come back to a client we left early. */
    uint32_t want = EPOLLIN | EPOLLET | (c->len > 0 ? EPOLLOUT : 0);
    if (want != c->events || more) {
        struct epoll_event ev = {.events = want, .data.fd = fd};
        if (epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == -1) {
            unix_warn("epoll_ctl MOD", c->name);
            return -1;
        }
        c->events = want;
    }
    return 0;
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    verbose = opts.verbose;
    Ignore_sigpipe(); /* belt and braces: send() already uses MSG_NOSIGNAL */

    /* SIGINT/SIGTERM set stop_requested.  They stay blocked except inside
     * epoll_pwait(), which installs wait_mask (the same mask without them)
     * atomically for the wait: a signal arriving just before the wait
     * would otherwise be noticed only at the next event. */
    sigset_t wait_mask;
    On_stop_signals(on_stop);
    Block_stop_signals(&wait_mask);

    int listenfd = Tcp_listen(opts.addr, opts.port);
    /* Edge-triggered, the accept loop runs until EAGAIN: the listener
     * must be non-blocking or the last accept() would never return. */
    Set_nonblocking(listenfd);
    spare_fd = spare_fd_open();
    if (spare_fd == -1)
        unix_error("open", "/dev/null (the spare fd)");
    Announce_listening(listenfd);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd == -1)
        unix_error("epoll_create1", NULL);
    if (table_add(listenfd, "listener") == -1)
        unix_error("table_add", "listening socket");

    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        int nready = epoll_pwait(epfd, events, MAX_EVENTS, -1, &wait_mask);
        if (nready == -1) {
            if (errno == EINTR)
                continue; /* a stop signal: the loop condition sees it */
            unix_error("epoll_wait", NULL);
        }
        for (int i = 0; i < nready; i++) {
            int fd = events[i].data.fd;
            if (fd == listenfd)
                accept_clients(listenfd);
            else if (serve_client(fd, events[i].events) == -1)
                close_client(fd);
        }
    }

    /* A clean exit: every client with its buffer and the listener (all in
     * the table), the table itself, the spare, the epoll fd. */
    for (size_t fd = 0; fd < cap; fd++)
        if (clients[fd].name[0] != '\0') {
            table_remove((int)fd);
            close((int)fd);
        }
    free(clients);
    close(spare_fd);
    close(epfd);
    return 0;
}
