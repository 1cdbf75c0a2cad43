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
 * endless stream cannot starve the others; a client left before EAGAIN
 * must still get its turn later, although no new edge will come for it.
 *
 * Given: main() (the loop, lab 06's clean exit, the spare fd),
 *        close_client(), the table's growth, the output buffer's fields
 *        and out_reserve().
 * Yours: TODO 1 what the server remembers per client and its
 *        registration, TODO 2 accept_clients(), TODO 3 out_flush(),
 *        TODO 4 read_input(), TODO 5 serve_client().  Each TODO says what
 *        the code must guarantee, not how to write it; the handout's
 *        "Hints" section has the steps, if you want them.  out_flush() and
 *        read_input() are helpers only serve_client() calls: their
 *        contracts below are one good way to split the work, and you may
 *        choose another.
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
    char *out;              /* bytes owed to it: out[off .. off + len) */
    size_t off, len, size;
    /* TODO 1: what else must the server remember about a client from one
     * event to the next?  Edge-triggered, an event says only what changed:
     * whatever you need to know later (what happened on this connection
     * so far, what epoll is watching it for) lives here. */
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
    /* TODO 1 (continued): fd joins the interest list and gets a fresh
     * slot (every field zero, the name copied).  Contract:
     *   - epoll reports fd edge-triggered (a change, once) when input
     *     arrives, and when an error or hang-up happens;
     *   - each event must lead back to fd;
     *   - on failure: -1 with errno set, and the slot still free (an
     *     empty name), since the caller closes fd. */
    (void)name;
    app_error("TODO 1: table_add() does not register fd %d with epoll yet", fd);
}

static void table_remove(int fd)
{
    /* Remove it from the interest list before close(): close() alone
     * drops it only once no other fd refers to the same socket. */
    if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == -1)
        unix_warn("epoll_ctl DEL", clients[fd].name);
    /* TODO 1 (continued): release everything the client owns (its output
     * buffer, and whatever you added), or every client that leaves leaks
     * it (LeakSanitizer and valgrind say so at exit). */
    memset(&clients[fd], 0, sizeof clients[fd]);
}

/* ---------- connections ------------------------------------------------------ */

/* An fd held in reserve for EMFILE.  With the fd table full, accept()
 * fails and the connection stays queued; edge-triggered, nothing reports
 * it again, and the client waits forever.  Giving up the spare lets us
 * accept it and close it at once, so it hears "no" (EOF) instead
 * (spare_fd_refuse() in common/ does exactly that). */
static int spare_fd = -1;

/* The listener reported an edge: accept the clients behind it. */
static void accept_clients(int listenfd)
{
    /* TODO 2: accept every connection queued behind this edge.  Contract:
     *   - when it returns, the queue is empty (or the server has given up
     *     on this edge after an unexpected error, logged): no new edge
     *     comes for the clients still waiting;
     *   - every client socket is non-blocking from birth: edge-triggered,
     *     the server reads until EAGAIN, and on a blocking socket that
     *     last read blocks the whole server instead;
     *   - a client that gave up before being accepted, or a signal, is
     *     normal life (accept_error_is_transient(): skip it, no log);
     *   - out of fds (EMFILE, ENFILE), the clients waiting are refused
     *     (accepted and closed at once with the spare fd:
     *     spare_fd_refuse()), never left queued nor spun on, and said
     *     once per call, not once per client; the call still ends when
     *     the queue is empty, although a full fd table reports EMFILE
     *     whether anyone is waiting or not;
     *   - a client the table cannot take is closed (logged), the others
     *     go on; with -v, "connect ADDR:PORT" for each one that joins. */
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

/* Send what the client is owed.  0, or -1 if the client is gone. */
static int out_flush(int fd, struct client *c)
{
    /* TODO 3: send the pending bytes, in order, until none are left or the
     * socket will take no more.  Contract:
     *   - never blocks and never spins: a full socket ends the call, and
     *     the bytes it did not take stay in the buffer, every one, for a
     *     later event that says there is room;
     *   - never raises SIGPIPE; survives EINTR;
     *   - returns -1 only when the client is gone (a reset or hang-up:
     *     quietly; anything else: logged), else 0. */
    (void)fd;
    (void)c;
    app_error("TODO 3: out_flush() is not written yet");
}

/* ---------- the service -------------------------------------------------------- */

/* Read what the client sent: 0 when drained, 1 when it stopped early, -1 if
 * the client is gone. */
static int read_input(int fd, struct client *c)
{
    /* TODO 4: read what the client sent, uppercased, straight into its
     * output buffer (out_reserve() makes room for BUF_SIZE more bytes).
     * Contract:
     *   - edge-triggered: reads until the socket says EAGAIN (0: this edge
     *     is used up), unless EOF comes first (the client half-closed: it
     *     still reads, and is owed every byte; remember it, return 0), or
     *     READS_PER_EVENT reads (return 1: there may be more, and no new
     *     edge will say so; the others get their turn first);
     *   - returns -1 when the client is gone (a reset: quietly; no memory
     *     for the buffer, or any other error: logged); survives EINTR. */
    (void)fd;
    (void)c;
    (void)out_reserve;
    app_error("TODO 4: read_input() is not written yet");
}

/* Serve one event (ready: the epoll event bits) on a client.  Returns 0 to
 * keep the client, -1 to close it. */
static int serve_client(int fd, uint32_t ready)
{
    /* TODO 5: one event on client fd.  Contract, when it returns:
     *   - what the event announced has been used up: input read (an error
     *     or hang-up counts as input: read() says what happened), pending
     *     output sent as far as the socket takes it;
     *   - a client that half-closed is closed (-1) once, and only once,
     *     every byte it is owed has been sent;
     *   - epoll watches fd for exactly what the server needs next: input
     *     (edge-triggered), and room to write only while output is
     *     pending (asking for it with nothing to send wakes the loop for
     *     nothing);
     *   - a client whose input was left before EAGAIN gets another event
     *     later (EPOLL_CTL_MOD re-arms an fd: the kernel looks at it again
     *     and queues a fresh event if it is ready);
     *   - epoll_ctl() is a system call: make it when something must
     *     change (or to re-arm), not on every event; if it fails, this
     *     client is closed (-1, logged). */
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
