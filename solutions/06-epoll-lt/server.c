/*
 * 06-epoll-lt: an uppercase-echo server on epoll, level-triggered.
 *
 * One process, one thread, thousands of clients.  poll() hands the kernel
 * the whole fd array on every call and scans it again on return, so each
 * wakeup costs O(all connections).  epoll splits that in two: the interest
 * list lives in the kernel (epoll_ctl adds and removes one fd at a time)
 * and epoll_wait returns only the fds that are ready, so a wakeup costs
 * O(ready connections), however many sit idle.
 *
 * Level-triggered (the default) means "ready as long as there is data":
 * exactly poll's semantics.  One read per wakeup is fine: if bytes are
 * left, the next epoll_wait reports the fd again.
 *
 * What it leaves out, on purpose: writes still block.  A client that sends
 * a lot and never reads fills its socket buffer, and writen() then waits
 * for it while every other client waits too.  Lab 07 makes every socket
 * non-blocking, keeps an output buffer per connection and switches to
 * edge-triggered notification.  Out of fds (EMFILE), this server keeps
 * retrying accept at every wakeup (a busy loop while the limit lasts);
 * lab 07 fixes that with a spare fd.
 *
 * From this lab on, SIGTERM and SIGINT stop the server cleanly: every fd
 * closed and every allocation freed, exit status 0.
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
#define MAX_EVENTS 256 /* ready fds taken per epoll_wait; the rest wait */

static int verbose;

/* ---------- stopping on SIGTERM/SIGINT ------------------------------------ */

static volatile sig_atomic_t stop_requested;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* ---------- the connection table ------------------------------------------- */

/* One slot per fd number, so an event's fd finds its state in O(1) (the
 * kernel hands out the lowest free fd, so the table stays dense).  The
 * table grows by doubling; every index is bound-checked first. */
struct conn {
    int open;
    char name[ADDR_STRLEN]; /* the peer, for the -v log */
};

static struct conn *conns;
static size_t nconns; /* slots allocated */

/* The slot for fd, growing the table if needed.  NULL when out of memory. */
static struct conn *conn_slot(int fd)
{
    if (fd < 0) {
        errno = ERANGE;
        return NULL;
    }
    if ((size_t)fd >= nconns) {
        size_t n = nconns ? nconns : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct conn *t = realloc(conns, n * sizeof *t);
        if (!t)
            return NULL;
        memset(t + nconns, 0, (n - nconns) * sizeof *t);
        conns = t;
        nconns = n;
    }
    return &conns[fd];
}

static void conn_open(int epfd, int fd, const struct sockaddr *peer)
{
    struct conn *c = conn_slot(fd);
    if (!c) {
        unix_warn("conn_open", "connection table");
        close(fd);
        return;
    }
    /* data.fd: the event tells us which fd; data.ptr could point straight
     * at our state instead (lab 07 keeps using the fd and the table). */
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = fd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == -1) {
        unix_warn("epoll_ctl ADD", "client");
        close(fd);
        return;
    }
    c->open = 1;
    sockaddr_str(peer, c->name, sizeof c->name);
    if (verbose)
        fprintf(stderr, "connect %s\n", c->name);
}

static void conn_close(int epfd, int fd)
{
    struct conn *c = &conns[fd];
    /* close() would drop the fd from the interest list by itself, but
     * only once no other fd (a dup, a forked child) refers to the same
     * socket; until then epoll keeps reporting it.  Removing it first
     * says what we mean and never leaves a stale entry. */
    if (epoll_ctl(epfd, EPOLL_CTL_DEL, fd, NULL) == -1)
        unix_warn("epoll_ctl DEL", "client");
    close(fd);
    c->open = 0;
    if (verbose)
        fprintf(stderr, "close %s\n", c->name);
}

/* ---------- the service ---------------------------------------------------- */

/* One read, then echo it back.  Returns 0 to keep the connection, -1 to
 * close it.  One read per wakeup is enough in level-triggered mode: if
 * more is waiting, epoll_wait reports the fd again at once. */
static int serve_client(int fd)
{
    char buf[BUF_SIZE];
    ssize_t n;

    do
        n = read(fd, buf, sizeof buf);
    while (n == -1 && errno == EINTR);
    if (n == 0)
        return -1; /* EOF: everything we read has been written back */
    if (n == -1) {
        if (errno != ECONNRESET)
            unix_warn("read", "client");
        return -1;
    }
    upcase(buf, (size_t)n);
    /* Shortcut: a blocking write.  A client that does not read stalls the
     * whole server here (lab 07 buffers instead). */
    if (writen(fd, buf, (size_t)n) == -1) {
        if (errno != EPIPE && errno != ECONNRESET)
            unix_warn("write", "client");
        return -1;
    }
    return 0;
}

/* Accept one connection.  The listening socket is non-blocking, so a
 * client that reset between epoll_wait and accept gives EAGAIN instead of
 * blocking the whole server in accept(). */
static void accept_client(int epfd, int listenfd)
{
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    int fd;

    do
        fd = accept(listenfd, (struct sockaddr *)&peer, &len);
    while (fd == -1 && errno == EINTR);
    if (fd == -1) {
        /* EAGAIN/ECONNABORTED/EPROTO: the client gave up; EMFILE/ENFILE:
         * out of fds, the listener stays ready and we retry at the next
         * wakeup.  None of them is a reason to exit. */
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ECONNABORTED &&
            errno != EPROTO)
            unix_warn("accept", "listening socket");
        return;
    }
    conn_open(epfd, fd, (struct sockaddr *)&peer);
}

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    verbose = opts.verbose;
    Ignore_sigpipe();

    /* Block SIGINT/SIGTERM except inside epoll_pwait: a signal that lands
     * between the stop check and the wait would otherwise be noticed only
     * at the next event. */
    sigset_t stop_sigs, wait_mask;
    sigemptyset(&stop_sigs);
    sigaddset(&stop_sigs, SIGINT);
    sigaddset(&stop_sigs, SIGTERM);
    On_stop_signals(on_stop);
    if (sigprocmask(SIG_BLOCK, &stop_sigs, &wait_mask) == -1)
        unix_error("sigprocmask", NULL);

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Set_nonblocking(listenfd);

    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd == -1)
        unix_error("epoll_create1", NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = listenfd};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listenfd, &ev) == -1)
        unix_error("epoll_ctl ADD", "listening socket");
    Announce_listening(listenfd);

    struct epoll_event events[MAX_EVENTS];
    while (!stop_requested) {
        int nready = epoll_pwait(epfd, events, MAX_EVENTS, -1, &wait_mask);
        if (nready == -1) {
            if (errno == EINTR)
                continue; /* the loop condition sees the stop request */
            unix_error("epoll_wait", NULL);
        }
        /* Only the ready fds come back: no scan over every connection. */
        for (int i = 0; i < nready; i++) {
            int fd = events[i].data.fd;
            if (fd == listenfd) {
                accept_client(epfd, listenfd);
                continue;
            }
            /* EPOLLERR/EPOLLHUP count as readable: read() then reports
             * the error or the EOF. */
            if (serve_client(fd) == -1)
                conn_close(epfd, fd);
        }
    }

    /* Clean exit: every connection, the listener, the epoll fd, the
     * table.  A leak checker at exit finds nothing. */
    for (size_t fd = 0; fd < nconns; fd++)
        if (conns[fd].open)
            conn_close(epfd, (int)fd);
    free(conns);
    close(listenfd);
    close(epfd);
    return 0;
}
