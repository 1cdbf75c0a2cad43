/*
 * 06-epoll-lt: one thread serves many clients with epoll, level-triggered.
 * YOUR TASK.
 *
 * The same loop as lab 05, with the interest list moved into the kernel.
 * poll() hands the kernel the whole array on every call and the loop scans
 * all of it afterwards, so each wakeup costs O(all connections).  epoll
 * splits that in two: epoll_ctl() adds or removes one fd from an interest
 * list the kernel keeps, and epoll_wait() returns only the fds that are
 * ready, so a wakeup costs O(ready connections), however many sit idle.
 *
 * Level-triggered (the default) means "reported as long as it is ready":
 * poll's semantics exactly.  One read per wakeup is fine: if bytes are
 * left, the next epoll_wait() reports the fd again.
 *
 * From this lab on, SIGTERM and SIGINT stop the server cleanly: every fd
 * closed and every allocation freed, exit status 0.
 *
 * Given: accept_client(), close_client() and serve_client() (lab 05's),
 *        the stop-signal handler and mask in main(), the table's
 *        variables and the invariants they keep.
 * Yours: TODO 1 the epoll instance, TODO 2 table_add() and
 *        table_remove(), TODO 3 the event loop, TODO 4 the clean exit.
 *        Each TODO says what the code must guarantee, not how to write
 *        it; the handout's "Hints" section has the steps, if you want them.
 * Read labs/06-epoll-lt/README.md first.
 *
 * The starter compiles and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=06`.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define MAX_EVENTS 256 /* ready fds taken per epoll_wait(); the rest wait */

static int verbose; /* -v: log connects and closes */

/* ---------- stopping on SIGTERM/SIGINT ------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---------- the client table ----------------------------------------------- */

/* The kernel keeps the interest list (epfd); the server keeps only what it
 * does not know: each client's name for the log, indexed by fd (the kernel
 * hands out the lowest free fd, so the table stays dense).  Whenever the
 * loop is about to wait:
 *   - every fd the server serves (the listener and each open client) is in
 *     the interest list, and names[fd] is its name (the listener's is
 *     "listener"); a slot whose name is empty ("") is free, and no fd in a
 *     free slot, nor any closed fd, is in the interest list;
 *   - names has room for cap slots, allocated with realloc(): any fd the
 *     kernel hands out fits once the table has grown, and no index is used
 *     before it is checked against cap. */
static int epfd = -1;
static char (*names)[ADDR_STRLEN];
static size_t cap;

/* fd joins the table, with its peer's name: 0, or -1 with errno set (the
 * caller refuses that client). */
static int table_add(int fd, const char *name)
{
    /* TODO 2: fd joins the table and the interest list, keeping the
     * invariants above.  Contract:
     *   - from now on every epoll_wait() reports fd for as long as it has
     *     input to read (or an error or hang-up): level-triggered, this
     *     lab's mode (a test checks there is no EPOLLET);
     *   - the server is woken only for what it handles: it reads, and
     *     never waits to write (a wakeup for nothing, on every call, is a
     *     busy loop);
     *   - each event must lead back to fd and its name;
     *   - returns 0, or -1 with errno set (a negative fd: ERANGE; out of
     *     memory; epoll_ctl failed) and the table as it was: the caller
     *     refuses that client, every other client goes on.
     * Then table_remove(), below. */
    (void)fd;
    (void)name;
    app_error("TODO 2: table_add() is not written yet");
}

/* fd leaves the table; the caller closes it right after. */
static void table_remove(int fd)
{
    /* TODO 2 (continued): fd leaves the interest list and its slot is free,
     * before the caller closes it (the interest list holds the open socket,
     * not the number: close() alone does not always take it out).  A
     * failure is logged, not fatal. */
    (void)fd;
}

/* ---------- connections ------------------------------------------------------ */

static void accept_client(int listenfd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    char name[ADDR_STRLEN];

    int fd = accept(listenfd, (struct sockaddr *)&peer, &len);
    if (fd == -1) {
        /* EAGAIN: the client gave up between epoll_wait() and accept()
         * (the listener is non-blocking, so we are told instead of
         * stuck).  A signal, or a client that reset while queued
         * (accept_error_is_transient()): nothing to do either.
         * SHORTCUT: on EMFILE/ENFILE the connection stays queued, the
         * listener stays ready (level-triggered), and the loop spins (and
         * logs) until a client leaves and frees an fd. */
        if (errno != EAGAIN && errno != EWOULDBLOCK && !accept_error_is_transient(errno))
            unix_warn("accept", "listening socket");
        return;
    }
    sockaddr_str((struct sockaddr *)&peer, name, sizeof name);
    if (table_add(fd, name) == -1) {
        /* Out of memory, or epoll_ctl failed: refuse this client, keep
         * serving the others. */
        unix_warn("table_add", name);
        close(fd);
        return;
    }
    if (verbose)
        err_msg("connect %s", name);
}

static void close_client(int fd)
{
    if (verbose)
        err_msg("close %s", names[fd]);
    table_remove(fd);
    close(fd);
}

/* ---------- the service -------------------------------------------------------- */

/* Serve one ready client: ONE read, then write it all back.  Never loop
 * until EOF here: the next read would block, and while this thread waits
 * for one client no other client is served.  Returns 0 to keep the client,
 * -1 to close it. */
static int serve_client(int fd, const char *name)
{
    char buf[BUF_SIZE];
    ssize_t n;

    do
        n = read(fd, buf, sizeof buf);
    while (n == -1 && errno == EINTR);
    if (n == 0)
        return -1; /* EOF: every byte it sent has already been written back */
    if (n == -1) {
        if (errno != ECONNRESET) /* a reset is the client's choice */
            unix_warn("read", name);
        return -1;
    }
    upcase(buf, (size_t)n);
    /* SHORTCUT: writen() blocks until the kernel has taken all n bytes.
     * A client that never reads stalls the whole server here (lab 07). */
    if (writen(fd, buf, (size_t)n) == -1) {
        if (errno != EPIPE && errno != ECONNRESET)
            unix_warn("write", name);
        return -1;
    }
    return 0;
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    verbose = opts.verbose;
    Ignore_sigpipe(); /* belt and braces: writen() already uses MSG_NOSIGNAL */

    /* SIGINT/SIGTERM set stop_requested.  They stay blocked except inside
     * epoll_pwait(), which installs wait_mask (the same mask without them)
     * atomically for the wait: a signal arriving just before the wait
     * would otherwise be noticed only at the next event. */
    sigset_t wait_mask;
    On_stop_signals(on_stop);
    Block_stop_signals(&wait_mask);

    int listenfd = Tcp_listen(opts.addr, opts.port);
    /* "Readable" is a hint, not a promise: a client may reset between the
     * wait and accept().  Non-blocking, accept() then fails with EAGAIN
     * instead of blocking the whole server. */
    Set_nonblocking(listenfd);
    Announce_listening(listenfd);

    /* TODO 1: epfd becomes a new epoll instance, not inherited by a
     * program this one might exec.  This is setup: if it fails, exit with
     * a message.  (The listener then joins the table, below.) */
    app_error("TODO 1: epoll_create1() is not called yet (epfd %d, table size %zu)", epfd, cap);
    if (table_add(listenfd, "listener") == -1)
        unix_error("table_add", "listening socket");

    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        /* TODO 3: the event loop.  Each round:
         *   - waits for clients in epoll only, with the stop signals
         *     unblocked during the wait and only then (wait_mask, above):
         *     a SIGTERM that arrives just before the wait still ends it at
         *     once; an idle server uses no CPU;
         *   - serves each fd epoll reported, once: the listener with
         *     accept_client(), a client with serve_client(), and
         *     close_client() when that returns -1.  Any event counts:
         *     input, an error or a hang-up (read() then says which);
         *   - a stop signal ends the loop (the rest of main cleans up);
         *     any other failure of the wait means a bug: exit with a
         *     message rather than spin. */
        (void)events;
        (void)accept_client;
        (void)serve_client;
        (void)close_client;
        app_error("TODO 3: the epoll_wait() loop is not written yet");
    }

    /* TODO 4: a clean exit (SIGTERM/SIGINT end the loop above): main
     * returns 0 with every fd it opened closed (each client, the listener,
     * the epoll instance) and every allocation freed.  valgrind and
     * LeakSanitizer check it (make SAN=address). */
    return 0;
}
