/*
 * 05-poll: one thread serves many clients by asking poll() which
 * connections are ready.  YOUR TASK.
 *
 * The same loop as lab 04 with a different question format: an array of
 * struct pollfd of any length, where what we ask for (events) and what the
 * kernel answers (revents) are separate fields.  The array grows with
 * realloc(), so the only limit on clients is the fd limit.
 * Read labs/05-poll/README.md first.
 *
 * The starter compiles and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=05`.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 4096

static int verbose; /* -v: log connects and closes */

/* ---------- the client table ----------------------------------------------- */

/* pfds[0] is the listener, pfds[1..npfds-1] the clients, with no holes:
 * poll() gets exactly the fds we watch.  names[i] is the peer of pfds[i],
 * for the log.  Both arrays grow together with realloc(). */
static struct pollfd *pfds;
static char (*names)[ADDR_STRLEN];
static size_t npfds, cap;

/* 0, or -1 with errno ENOMEM (the caller refuses that client). */
static int table_add(int fd, const char *name)
{
    /* TODO 1: append fd to the table.
     *   - If npfds == cap, grow BOTH arrays (double cap; start at 64) with
     *     realloc(); if realloc() returns NULL, return -1 (the old array is
     *     still valid: keep it).  No fixed-size array: the tests connect
     *     3,000 clients.
     *   - Fill pfds[npfds]: fd, events = POLLIN, revents = 0; copy name
     *     into names[npfds]; npfds++; return 0.
     * Then write table_remove(). */
    (void)fd;
    (void)name;
    app_error("TODO 1: table_add() is not written yet");
}

static void table_remove(size_t i)
{
    /* TODO 1 (continued): remove slot i by moving the LAST entry (pfds and
     * names) into it and decrementing npfds.  A closed fd left in the array
     * comes back from every poll() at once with POLLNVAL: a busy loop. */
    (void)i;
}

/* ---------- connections ------------------------------------------------------ */

static void accept_client(int listenfd)
{
    /* TODO 3: accept() ONE connection (lowercase accept: never exit here).
     *   - On failure, return.  EAGAIN/EWOULDBLOCK (nobody waiting any more)
     *     and every errno accept_error_is_transient() calls transient (a
     *     signal, a client that gave up) are normal; unix_warn() anything
     *     else.
     *   - Format the peer address with sockaddr_str().
     *   - table_add() it; if that fails (out of memory), unix_warn() and
     *     close() it: refuse this client, keep the others.
     *   - With -v print "connect ADDR:PORT". */
    (void)listenfd;
    app_error("TODO 3: accept_client() is not written yet");
}

static void close_client(size_t i)
{
    int fd = pfds[i].fd;
    if (verbose)
        err_msg("close %s", names[i]);
    table_remove(i);
    close(fd);
}

/* ---------- the service -------------------------------------------------------- */

/* Serve one ready client.  Returns 0 to keep the client, -1 to close it. */
static int serve_client(int fd, const char *name)
{
    /* TODO 4: ONE read() of up to BUF_SIZE bytes (retry EINTR), never a
     * loop until EOF: the next read could block the whole server.
     *   - 0 (EOF): return -1.
     *   - -1: unix_warn("read", name) unless ECONNRESET; return -1.
     *   - upcase() the bytes and writen() them all; if that fails,
     *     unix_warn("write", name) unless EPIPE/ECONNRESET; return -1.
     *   - return 0. */
    (void)fd;
    (void)name;
    app_error("TODO 4: serve_client() is not written yet");
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    verbose = opts.verbose;
    Ignore_sigpipe();

    int listenfd = Tcp_listen(opts.addr, opts.port);
    /* "Readable" is a hint, not a promise: a client may reset between the
     * wait and accept().  Non-blocking, accept() then fails with EAGAIN
     * instead of blocking the whole server. */
    Set_nonblocking(listenfd);
    Announce_listening(listenfd);

    if (table_add(listenfd, "listener") == -1)
        unix_error("realloc", "client table");

    for (;;) {
        /* TODO 2: the event loop.
         *   - nready = poll(pfds, npfds, -1); -1 with EINTR: go round
         *     again; any other -1: unix_error("poll", NULL).
         *   - Scan the slots while nready > 0, FROM THE END (i = npfds - 1
         *     down to 0): closing slot i moves the last entry into i, and
         *     walking backwards that entry has been looked at already.
         *   - Any nonzero revents counts (POLLIN, but also POLLHUP and
         *     POLLERR: read() then says what happened).  Decrement nready;
         *     slot 0 -> accept_client(listenfd); a client ->
         *     serve_client(pfds[i].fd, names[i]), and close_client(i) if it
         *     returns -1. */
        (void)accept_client;
        (void)serve_client;
        (void)close_client;
        app_error("TODO 2: the poll() loop is not written yet (%zu slots of %zu)", npfds, cap);
    }
}
