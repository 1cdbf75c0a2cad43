/*
 * 04-select: one thread serves many clients by asking select() which
 * connections are ready.
 *
 * Labs 02 and 03 gave each client its own process or thread and let the
 * scheduler decide who runs.  This server has one thread and asks the
 * kernel a different question: "of these fds, which can I read without
 * blocking?"  It then serves exactly those, one read and one write each,
 * and asks again.  The listening socket is one more fd in the question:
 * "readable" means a connection is waiting to be accepted.
 *
 * What it leaves out, on purpose:
 *   - An fd_set is a bitmap of FD_SETSIZE (1024) bits.  A client whose fd
 *     does not fit is refused: closed and logged.  Lab 05 (poll) passes an
 *     array of any length instead.
 *   - Every call copies the whole set into the kernel and back, and the
 *     loop scans every fd up to maxfd: each wakeup costs time in proportion
 *     to the number of connections, not to the number that are ready.
 *     Lab 06 (epoll) fixes that.
 *   - Replies are written with a blocking writen().  A client that sends
 *     but never reads fills its socket buffer, writen() blocks, and every
 *     other client waits with it.  Lab 07 adds non-blocking output buffers.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#define BUF_SIZE 4096

static int verbose; /* -v: log connects and closes */

/* ---------- the client table ----------------------------------------------- */

/* Every fd select() watches: the listener and each client.  select()
 * overwrites the set it is given with the ready subset, so this master set
 * is never passed to it; the loop passes a copy. */
static fd_set watched;
static int maxfd = -1; /* the highest fd in watched: select() looks at 0..maxfd */
/* names[fd]: the peer of client fd, for the log.  Indexed by fd, which is
 * safe because no fd >= FD_SETSIZE is ever let in (accept_client). */
static char names[FD_SETSIZE][ADDR_STRLEN];

static void table_add(int fd, const char *name)
{
    FD_SET(fd, &watched);
    if (fd > maxfd)
        maxfd = fd;
    snprintf(names[fd], sizeof names[fd], "%s", name);
}

static void table_remove(int fd)
{
    /* Forget the fd BEFORE close() returns it to the kernel: a closed fd
     * left in the set makes the next select() fail with EBADF. */
    FD_CLR(fd, &watched);
    while (maxfd >= 0 && !FD_ISSET(maxfd, &watched))
        maxfd--;
}

/* ---------- connections ------------------------------------------------------ */

static void accept_client(int listenfd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    char name[ADDR_STRLEN];

    int fd = accept(listenfd, (struct sockaddr *)&peer, &len);
    if (fd == -1) {
        /* EAGAIN: the client gave up between select() and accept() (the
         * listener is non-blocking, so we are told instead of stuck).
         * A signal, or a client that reset while queued
         * (accept_error_is_transient()): nothing to do either.
         * SHORTCUT: on EMFILE/ENFILE the connection stays queued, the
         * listener stays readable, and the loop spins (and logs) until a
         * client leaves and frees an fd. */
        if (errno != EAGAIN && errno != EWOULDBLOCK && !accept_error_is_transient(errno))
            unix_warn("accept", "listening socket");
        return;
    }
    sockaddr_str((struct sockaddr *)&peer, name, sizeof name);
    if (fd >= FD_SETSIZE) {
        /* FD_SET() on this fd would write past the end of the bitmap:
         * undefined behaviour (with _FORTIFY_SOURCE, an abort).  All we
         * can do is say no. */
        err_msg("refuse %s: fd %d >= FD_SETSIZE (%d)", name, fd, FD_SETSIZE);
        close(fd);
        return;
    }
    table_add(fd, name);
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

    int listenfd = Tcp_listen(opts.addr, opts.port);
    /* "Readable" is a hint, not a promise: a client may reset between the
     * wait and accept().  Non-blocking, accept() then fails with EAGAIN
     * instead of blocking the whole server. */
    Set_nonblocking(listenfd);
    Announce_listening(listenfd);

    FD_ZERO(&watched);
    table_add(listenfd, "listener");

    for (;;) {
        fd_set ready = watched; /* select() overwrites its argument */
        int nready = select(maxfd + 1, &ready, NULL, NULL, NULL);
        if (nready == -1) {
            if (errno == EINTR)
                continue;
            /* EBADF or EINVAL mean our table is wrong: stop loudly
             * rather than spin on the same error forever. */
            unix_error("select", NULL);
        }
        /* The O(maxfd) scan; stop early once every ready fd is served. */
        for (int fd = 0; fd <= maxfd && nready > 0; fd++) {
            if (!FD_ISSET(fd, &ready))
                continue;
            nready--;
            if (fd == listenfd)
                accept_client(listenfd);
            else if (serve_client(fd, names[fd]) == -1)
                close_client(fd);
        }
    }
}
