/*
 * 04-select: one thread serves many clients by asking select() which
 * connections are ready.  YOUR TASK.
 *
 * One process, one thread, no children: the server keeps a table of the
 * fds it watches (the listener and every client), asks select() which of
 * them are readable, serves exactly those (one read, one write each) and
 * asks again.  Read labs/04-select/README.md first.
 *
 * The starter compiles and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=04`.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define BUF_SIZE 4096

static int verbose; /* -v: log connects and closes */

/* ---------- the client table ----------------------------------------------- */

/* Every fd select() watches: the listener and each client.  select()
 * overwrites the set it is given, so never pass this master set to it. */
static fd_set watched;
static int maxfd = -1; /* the highest fd in watched: select() looks at 0..maxfd */
/* names[fd]: the peer of client fd, for the log.  Only fds < FD_SETSIZE
 * may ever be used as an index here (or in FD_SET). */
static char names[FD_SETSIZE][ADDR_STRLEN];

static void table_add(int fd, const char *name)
{
    /* TODO 1: add fd to the table: FD_SET it in `watched`, raise maxfd if
     * fd is above it (only raise: a reused low fd must not lower it), and
     * copy name into names[fd] (snprintf).  Then write table_remove(). */
    (void)fd;
    (void)name;
    app_error("TODO 1: table_add() is not written yet");
}

static void table_remove(int fd)
{
    /* TODO 1 (continued): FD_CLR fd from `watched` (a closed fd left in the
     * set makes the next select() fail with EBADF), then lower maxfd while
     * maxfd is no longer in the set. */
    (void)fd;
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
     *   - If the new fd >= FD_SETSIZE, it must never reach FD_SET: print
     *     "refuse ADDR:PORT: fd N >= FD_SETSIZE (1024)" on stderr (always,
     *     not only with -v; err_msg() prints a formatted line), close() it
     *     and return.
     *   - Otherwise table_add() it; with -v print "connect ADDR:PORT". */
    (void)listenfd;
    app_error("TODO 3: accept_client() is not written yet");
}

static void close_client(int fd)
{
    if (verbose)
        err_msg("close %s", names[fd]);
    table_remove(fd);
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

    FD_ZERO(&watched);
    table_add(listenfd, "listener");

    for (;;) {
        /* TODO 2: the event loop.
         *   - Copy `watched` into a local fd_set (select() overwrites it).
         *   - nready = select(maxfd + 1, &copy, NULL, NULL, NULL);
         *     -1 with EINTR: go round again; any other -1 is a bug in the
         *     table: unix_error("select", NULL).
         *   - Scan fd = 0..maxfd while nready > 0; for each FD_ISSET fd,
         *     decrement nready and: the listener -> accept_client(listenfd);
         *     a client -> serve_client(fd, names[fd]), and close_client(fd)
         *     if it returns -1. */
        (void)accept_client;
        (void)serve_client;
        (void)close_client;
        app_error("TODO 2: the select() loop is not written yet (maxfd %d)", maxfd);
    }
}
