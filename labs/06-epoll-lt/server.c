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
 * accept_client(), close_client() and serve_client() are lab 05's, given.
 * You write the epoll parts (TODOs 1-3) and the clean exit (TODO 4).
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

/* The kernel keeps the interest list (epfd); we keep only what it does not
 * know: each client's name for the log, indexed by fd (the kernel hands
 * out the lowest free fd, so the table stays dense).  An empty name is a
 * free slot.  The table grows with realloc() and every index is checked
 * against its size first. */
static int epfd = -1;
static char (*names)[ADDR_STRLEN];
static size_t cap;

/* 0, or -1 with errno set (the caller refuses that client). */
static int table_add(int fd, const char *name)
{
    /* TODO 2: add fd to the table and to the interest list.
     *   - fd < 0: errno = ERANGE, return -1.
     *   - If fd >= cap, grow names with realloc() to a power of two (start
     *     at 64) greater than fd; zero the new slots (memset) so they read
     *     as free; if realloc() returns NULL, return -1 (keep the old one).
     *   - epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) with ev.events = EPOLLIN
     *     (level-triggered: no EPOLLET, and no EPOLLOUT: a socket is almost
     *     always writable, so EPOLLOUT would wake you up forever) and
     *     ev.data.fd = fd.  On failure return -1.
     *   - Copy name into names[fd] (snprintf), return 0.
     * Then write table_remove(). */
    (void)fd;
    (void)name;
    app_error("TODO 2: table_add() is not written yet");
}

static void table_remove(int fd)
{
    /* TODO 2 (continued): epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL)
     * (unix_warn on failure), then mark the slot free: names[fd][0] = 0.
     * The caller closes fd afterwards. */
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

    /* TODO 1: create the epoll instance: epfd = epoll_create1(EPOLL_CLOEXEC);
     * unix_error("epoll_create1", NULL) if it fails.  Then put the
     * listener in the table and the interest list (given below). */
    app_error("TODO 1: epoll_create1() is not called yet (epfd %d, table size %zu)", epfd, cap);
    if (table_add(listenfd, "listener") == -1)
        unix_error("table_add", "listening socket");

    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        /* TODO 3: the event loop.
         *   - nready = epoll_pwait(epfd, events, MAX_EVENTS, -1, &wait_mask)
         *     (epoll_wait plus "unblock the stop signals while waiting");
         *     -1 with EINTR: go round again (the loop condition sees a stop
         *     request); any other -1: unix_error("epoll_wait", NULL).
         *   - Only the nready ready fds come back, in events[0..nready-1]:
         *     fd = events[i].data.fd; the listener -> accept_client(listenfd);
         *     a client -> serve_client(fd, names[fd]), and close_client(fd)
         *     if it returns -1.  Any event counts (EPOLLIN, but also EPOLLHUP
         *     and EPOLLERR: read() then says what happened). */
        (void)events;
        (void)accept_client;
        (void)serve_client;
        (void)close_client;
        app_error("TODO 3: the epoll_wait() loop is not written yet");
    }

    /* TODO 4: a clean exit (SIGTERM/SIGINT end the loop above).  Every fd
     * still in the table (the clients and the listener): table_remove()
     * then close().  Then free(names) and close(epfd), and return 0.  Check
     * with the ASan build (make SAN=address): LeakSanitizer reports any
     * allocation still held at exit. */
    return 0;
}
