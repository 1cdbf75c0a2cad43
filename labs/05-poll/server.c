/*
 * 05-poll: one thread serves many clients by asking poll() which
 * connections are ready.  YOUR TASK.
 *
 * The same loop as lab 04 with a different question format: an array of
 * struct pollfd of any length, where what we ask for (events) and what the
 * kernel answers (revents) are separate fields.  The only limit on clients
 * is the fd limit.  Read labs/05-poll/README.md first.
 *
 * Given: main()'s setup (arguments, SIGPIPE, the non-blocking listener,
 *        the listener put in slot 0), close_client(), the table's
 *        variables and the invariants they keep.
 * Yours: TODO 1 table_add() and table_remove(), TODO 2 the event loop in
 *        main(), TODO 3 accept_client(), TODO 4 serve_client().  Each TODO
 *        says what the code must guarantee, not how to write it; the
 *        handout's "Hints" section has the steps, if you want them.
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

/* The table: two parallel arrays indexed by slot, not by fd.  Whenever the
 * loop is about to call poll():
 *   - pfds[0 .. npfds-1] are exactly the fds the server serves, each asking
 *     for input: the listener in slot 0, one open client per other slot,
 *     no hole and no fd that has been closed (poll() reports a closed fd
 *     at once, on every call: a busy loop);
 *   - names[i] is the peer of pfds[i], for the log;
 *   - both arrays have room for cap entries (npfds <= cap), allocated
 *     with malloc/realloc: no fixed size, the tests connect 3,000
 *     clients. */
static struct pollfd *pfds;
static char (*names)[ADDR_STRLEN];
static size_t npfds, cap;

/* fd joins the table, with its peer's name: 0, or -1 with errno ENOMEM and
 * the table as it was (the caller refuses that client). */
static int table_add(int fd, const char *name)
{
    /* TODO 1: keep the invariants above when fd joins, growing the arrays
     * as needed without ever losing the table when memory runs out; and
     * when slot i leaves (table_remove(), below), in O(1). */
    (void)fd;
    (void)name;
    app_error("TODO 1: table_add() is not written yet");
}

/* Slot i leaves the table (the caller closes its fd right after); every
 * other entry stays watched, with its own name, though its slot may change. */
static void table_remove(size_t i)
{
    /* TODO 1 (continued) */
    (void)i;
}

/* ---------- connections ------------------------------------------------------ */

/* The listener is readable: accept one client. */
static void accept_client(int listenfd)
{
    /* TODO 3: accept ONE waiting connection and add it to the table.
     * Contract:
     *   - never exits, never blocks: the listener is non-blocking, and a
     *     client that gave up between poll() and here, or a signal, is
     *     normal life (nothing to log: accept_error_is_transient() lists
     *     those errors, and EAGAIN means nobody is waiting); any other
     *     failure is logged and costs no one but that client;
     *   - when the table cannot grow (out of memory), that client is
     *     refused (closed, logged) and every other client keeps being
     *     served;
     *   - with -v, a client that joins is logged as "connect ADDR:PORT". */
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
    /* TODO 4: lab 04's contract, unchanged:
     *   - never waits for the client to send more: poll() promised that
     *     ONE read() would not block, and nothing more;
     *   - every byte read goes back, uppercased, before it returns (the
     *     write may block: the admitted shortcut until lab 07);
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

    if (table_add(listenfd, "listener") == -1)
        unix_error("realloc", "client table");

    for (;;) {
        /* TODO 2: the event loop.  Each round:
         *   - waits for clients in poll() only, until some entry has
         *     something to report; an idle server uses no CPU;
         *   - serves every entry that reported something (revents: input,
         *     but also an error or a hang-up, which read() then explains),
         *     each once: slot 0 with accept_client(), a client with
         *     serve_client(), and close_client() when that returns -1;
         *   - a client closed during the round (which changes the table,
         *     see table_remove()) must not make the round skip an entry
         *     that reported something, nor serve one twice;
         *   - survives signals (EINTR); any other poll() error means the
         *     table is wrong: exit with a message rather than spin. */
        (void)accept_client;
        (void)serve_client;
        (void)close_client;
        app_error("TODO 2: the poll() loop is not written yet (%zu slots of %zu)", npfds, cap);
    }
}
