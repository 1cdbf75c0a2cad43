/*
 * 04-select: one thread serves many clients by asking select() which
 * connections are ready.  YOUR TASK.
 *
 * One process, one thread, no children: the server keeps a table of the
 * fds it watches (the listener and every client), asks select() which of
 * them are readable, serves exactly those, and asks again.
 * Read labs/04-select/README.md first.
 *
 * Given: main()'s setup (arguments, SIGPIPE, the non-blocking listener,
 *        the listener put in the table), close_client(), the table's
 *        variables and the invariants they keep.
 * Yours: TODO 1 table_add() and table_remove(), TODO 2 the event loop in
 *        main(), TODO 3 accept_client(), TODO 4 serve_client().  Each TODO
 *        says what the code must guarantee, not how to write it; the
 *        handout's "Hints" section has the steps, if you want them.
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

/* The table.  Whenever the loop is about to call select():
 *   - `watched` holds exactly the fds the server serves: the listener and
 *     every client still open, and no fd that has been closed;
 *   - `maxfd` is the highest fd in `watched` (-1 when it is empty);
 *   - no fd >= FD_SETSIZE is in `watched` or used as an index in names[]:
 *     an fd_set has FD_SETSIZE bits, and the FD_ macros do not check;
 *   - names[fd] is the peer of client fd, for the log.
 * `watched` is the master copy: it changes in table_add() and
 * table_remove() and nowhere else. */
static fd_set watched;
static int maxfd = -1;
static char names[FD_SETSIZE][ADDR_STRLEN];

/* fd (0 <= fd < FD_SETSIZE) joins the table, with its peer's name. */
static void table_add(int fd, const char *name)
{
    /* TODO 1: keep the invariants above when fd joins, and when it leaves
     * (table_remove(), below).  Remember that fds are reused: the next
     * client may get the number of one that just left, lower than others
     * still connected. */
    (void)fd;
    (void)name;
    app_error("TODO 1: table_add() is not written yet");
}

/* fd leaves the table; the caller closes it right after. */
static void table_remove(int fd)
{
    /* TODO 1 (continued) */
    (void)fd;
}

/* ---------- connections ------------------------------------------------------ */

/* The listener is readable: accept one client. */
static void accept_client(int listenfd)
{
    /* TODO 3: accept ONE waiting connection and add it to the table.
     * Contract:
     *   - never exits, never blocks: the listener is non-blocking, and a
     *     client that gave up between select() and here, or a signal, is
     *     normal life (nothing to log: accept_error_is_transient() lists
     *     those errors, and EAGAIN means nobody is waiting); any other
     *     failure is logged and costs no one but that client;
     *   - a connection whose fd does not fit in an fd_set (>= FD_SETSIZE)
     *     never reaches an FD_ macro or names[]: it is closed at once, and
     *     the refusal is logged, always (not only with -v), as
     *     "refuse ADDR:PORT: fd N >= FD_SETSIZE (1024)";
     *   - with -v, a client that joins is logged as "connect ADDR:PORT". */
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
    /* TODO 4: serve what the client sent.  Contract:
     *   - never waits for the client to send more: select() promised that
     *     ONE read() would not block, and nothing more;
     *   - every byte read goes back, uppercased, before it returns (the
     *     write may block: this lab's admitted shortcut, lab 07 removes it);
     *   - returns -1 when the client must be closed: it sent EOF, it reset
     *     (ECONNRESET, EPIPE: its right, not worth a log line), or anything
     *     else failed (logged with the client's name); survives EINTR. */
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
        /* TODO 2: the event loop.  Each round:
         *   - waits for clients in select() only, until some watched fd
         *     is readable (for the listener: a connection is waiting; for
         *     a client: bytes, EOF or an error to read); an idle server
         *     uses no CPU;
         *   - serves each ready fd once: the listener with
         *     accept_client(), a client with serve_client(), and
         *     close_client() when that returns -1;
         *   - keeps the table's invariants (above), whatever select() does
         *     to the sets it is given;
         *   - survives signals (EINTR); any other select() error means the
         *     table is wrong: exit with a message rather than spin. */
        (void)accept_client;
        (void)serve_client;
        (void)close_client;
        app_error("TODO 2: the select() loop is not written yet (maxfd %d)", maxfd);
    }
}
