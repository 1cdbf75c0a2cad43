/*
 * 05-poll: one thread serves many clients by asking poll() which
 * connections are ready.
 *
 * The same loop as lab 04, with a different question format.  select()
 * takes a fixed bitmap of FD_SETSIZE (1024) bits and overwrites it; poll()
 * takes an array of struct pollfd of any length, where what we ask for
 * (events) and what the kernel answers (revents) are separate fields, so
 * the array is never rebuilt.  The array grows with realloc(), so the
 * only limit on clients is the fd limit (RLIMIT_NOFILE).
 *
 * What it leaves out, on purpose:
 *   - Every call still copies the whole array into the kernel and back,
 *     and the loop scans every entry: each wakeup costs time in proportion
 *     to the number of connections, not to the number that are ready, so
 *     10,000 idle clients slow down the one that talks.  Lab 06 (epoll)
 *     keeps the interest list in the kernel instead.
 *   - Replies are written with a blocking writen().  A client that sends
 *     but never reads fills its socket buffer, writen() blocks, and every
 *     other client waits with it.  Lab 07 adds non-blocking output buffers.
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
    if (npfds == cap) {
        size_t ncap = cap ? 2 * cap : 64;
        struct pollfd *p = realloc(pfds, ncap * sizeof *p);
        if (!p)
            return -1;
        pfds = p;
        char(*q)[ADDR_STRLEN] = realloc(names, ncap * sizeof *q);
        if (!q)
            return -1;
        names = q;
        cap = ncap;
    }
    pfds[npfds].fd = fd;
    pfds[npfds].events = POLLIN; /* what we ask; poll() never touches it */
    pfds[npfds].revents = 0;     /* what the kernel answers */
    snprintf(names[npfds], sizeof names[npfds], "%s", name);
    npfds++;
    return 0;
}

static void table_remove(size_t i)
{
    /* Fill the hole with the last entry.  A closed fd left in the array
     * would come back from every poll() at once with POLLNVAL: a busy
     * loop. */
    npfds--;
    pfds[i] = pfds[npfds];
    memcpy(names[i], names[npfds], sizeof names[i]);
}

/* ---------- connections ------------------------------------------------------ */

static void accept_client(int listenfd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    char name[ADDR_STRLEN];

    int fd = accept(listenfd, (struct sockaddr *)&peer, &len);
    if (fd == -1) {
        /* EAGAIN: the client gave up between poll() and accept() (the
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
    if (table_add(fd, name) == -1) {
        /* Out of memory: refuse this client, keep serving the others. */
        unix_warn("realloc", name);
        close(fd);
        return;
    }
    if (verbose)
        err_msg("connect %s", name);
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

    if (table_add(listenfd, "listener") == -1)
        unix_error("realloc", "client table");

    for (;;) {
        int nready = poll(pfds, (nfds_t)npfds, -1);
        if (nready == -1) {
            if (errno == EINTR)
                continue;
            /* EFAULT or EINVAL mean our table is wrong: stop loudly
             * rather than spin on the same error forever. */
            unix_error("poll", NULL);
        }
        /* The O(n) scan, from the end: closing slot i moves the last entry
         * into i, and walking backwards that entry has been looked at
         * already.  Entries accept_client() appends are not in this round.
         * POLLERR and POLLHUP count as readable: read() says what
         * happened (EOF, or ECONNRESET). */
        for (size_t i = npfds; i-- > 0 && nready > 0;) {
            if (pfds[i].revents == 0)
                continue;
            nready--;
            if (i == 0)
                accept_client(listenfd);
            else if (serve_client(pfds[i].fd, names[i]) == -1)
                close_client(i);
        }
    }
}
