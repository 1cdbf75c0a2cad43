/*
 * 07-epoll-et: one thread serves many clients with epoll, edge-triggered,
 * and nothing ever blocks but epoll_wait().  YOUR TASK.
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
 * The table, the output buffer's out_reserve(), close_client() and main()
 * are given; you write the new ideas (TODOs 1-5).
 * Read labs/07-epoll-et/README.md first.
 *
 * The starter compiles and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=07`.
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
    struct epoll_event ev = {.events = 0, .data.fd = fd};
    /* TODO 1: register fd with epoll, edge-triggered: set ev.events to
     * EPOLLIN | EPOLLET, then epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
     * return -1 if it fails.  The lines below clear the slot and remember
     * what you registered (c->events).  Then free the output buffer in
     * table_remove(). */
    app_error("TODO 1: table_add() does not register fd %d with epoll yet", fd);
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
    /* TODO 1 (continued): free this client's output buffer here, or every
     * client that leaves leaks it (LeakSanitizer says so at exit). */
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
    /* TODO 2: loop until accept reports an empty queue.
     *   - fd = accept4(listenfd, (struct sockaddr *)&peer, &len, SOCK_NONBLOCK)
     *     (reset len = sizeof peer before each call).  The new socket is
     *     born non-blocking: with EPOLLET you read it until EAGAIN, and a
     *     blocking socket would block there instead.
     *   - EAGAIN/EWOULDBLOCK: the queue is empty, return: this edge is
     *     used up.  accept_error_is_transient(errno) (a signal, a client
     *     that gave up): continue.
     *   - EMFILE/ENFILE: r = spare_fd_refuse(listenfd, &spare_fd), which
     *     closes the spare, accepts one client and closes it at once, and
     *     reopens the spare.  r == 1 (a client was refused): err_msg() once
     *     per call that you are refusing clients, continue.  r == 0: the
     *     queue is empty, return (a full fd table says EMFILE even when
     *     nobody is waiting, so only this can tell).  r == -1: continue if
     *     accept_error_is_transient(errno), else unix_warn and return.
     *   - Anything else: unix_warn("accept4", "listening socket"), return.
     *   - A new client: sockaddr_str() its address, table_add(fd, name)
     *     (on failure unix_warn and close it), with -v log "connect NAME"
     *     (err_msg). */
    app_error("TODO 2: accept_clients() is not written yet (listener %d, spare %d)", listenfd,
              spare_fd);
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
    /* TODO 3: while c->len > 0: w = send(fd, c->out + c->off, c->len,
     * MSG_NOSIGNAL).  w > 0: advance (off += w, len -= w).  -1 with EINTR:
     * again.  EAGAIN/EWOULDBLOCK: the socket is full, return 0 and KEEP
     * the bytes (dropping them loses data; retrying at once spins).  EPIPE,
     * ECONNRESET: return -1; anything else: unix_warn, return -1. */
    (void)fd;
    (void)c;
    app_error("TODO 3: out_flush() is not written yet");
}

/* ---------- the service -------------------------------------------------------- */

/* Read until EAGAIN (the edge is used up), EOF, or READS_PER_EVENT reads.
 * The bytes go, uppercased, straight into the output buffer.  Returns 0
 * when drained, 1 when it stopped early, -1 if the client is gone. */
static int read_input(int fd, struct client *c)
{
    /* TODO 4: up to READS_PER_EVENT times: out_reserve(c) (room for
     * BUF_SIZE more bytes; on failure unix_warn, return -1), then read()
     * up to BUF_SIZE bytes straight into c->out + c->off + c->len.
     *   - > 0: upcase() them in place, c->len += n, go on.
     *   - 0: EOF (the client half-closed): c->eof = 1, return 0.
     *   - -1: EINTR again; EAGAIN/EWOULDBLOCK: drained, return 0;
     *     ECONNRESET: return -1; anything else: unix_warn, return -1.
     *   - After READS_PER_EVENT reads without EAGAIN: return 1 ("maybe
     *     more"): the caller re-arms the fd so this client waits its turn. */
    (void)fd;
    (void)c;
    (void)out_reserve;
    app_error("TODO 4: read_input() is not written yet");
}

/* Serve one event on a client.  Returns 0 to keep the client, -1 to close
 * it. */
static int serve_client(int fd, uint32_t ready)
{
    /* TODO 5: one event on client fd.
     *   - If ready has EPOLLIN, EPOLLERR or EPOLLHUP and the client has not
     *     half-closed (c->eof): more = read_input(); -1 -> return -1.
     *   - out_flush(); -1 -> return -1.
     *   - c->eof and nothing left to send: return -1 (close).  Never close
     *     with bytes still owed.
     *   - want = EPOLLIN | EPOLLET, plus EPOLLOUT only while c->len > 0.  If
     *     want differs from c->events, or more == 1: epoll_ctl(epfd,
     *     EPOLL_CTL_MOD, fd, {want, fd}) (unix_warn and -1 on failure) and
     *     c->events = want.  A MOD re-arms the fd: still readable, it gets a
     *     fresh event.
     *   - return 0. */
    (void)ready;
    (void)read_input;
    (void)out_flush;
    app_error("TODO 5: serve_client() is not written yet (fd %d)", fd);
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
