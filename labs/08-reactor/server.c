/*
 * 08-reactor: the uppercase echo as an application on a reusable reactor.
 *
 * Everything about waiting, buffering and memory lives below this file:
 * reactor.h (the event loop, epoll backend in reactor_epoll.c), bufpool.h
 * (size-class buffers with a cap), conn.h (connections that read into
 * pooled buffers, write from them and apply back-pressure).  What is left
 * here is the service itself, on_data(), and the wiring in main().
 *
 * Signals are events like any other: SIGTERM/SIGINT/SIGUSR1 are blocked
 * and read from a signalfd registered with the reactor, so the handler is
 * ordinary code (no async-signal-safety puzzle, no lost wakeup).  SIGUSR1
 * prints the pool's stats; SIGTERM stops the loop, and main() frees
 * everything, so a leak checker at exit finds nothing.
 *
 * This file is complete.  YOUR TASK is in bufpool.c (TODOs 1-4) and conn.c
 * (TODOs 5-8); read labs/08-reactor/README.md first.  Until then the
 * server stops at the first TODO it reaches.
 *
 * Left out: one thread (a multi-core server runs one reactor per thread,
 * each with its own pool), no idle timeouts.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bufpool.h"
#include "conn.h"
#include "reactor.h"

#define POOL_CAP ((size_t)256 * 1024 * 1024) /* all buffers, all connections */
#define HIGH_WATER ((size_t)4 * 1024 * 1024)  /* per connection, see conn.h */
#define LOW_WATER ((size_t)1024 * 1024)

static struct conn_server srv;

/* ---------- the service -------------------------------------------------------- */

static size_t on_data(struct conn *c, void *ctx, char *data, size_t n)
{
    (void)ctx; /* the echo keeps no state per connection */
    upcase(data, n);
    conn_send(c, data, n); /* on failure the connection is closed for us */
    return n;
}

/* ---------- signals, as events ------------------------------------------------------ */

static void print_stats(FILE *to)
{
    fprintf(to, "stats: connections %zu\n", srv.nconns);
    pool_print_stats(srv.pool, to);
}

static void signal_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct signalfd_siginfo si;
    (void)events;
    (void)arg;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1)
            print_stats(stderr);
        else
            reactor_stop(r); /* SIGTERM, SIGINT */
    }
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe();

    /* SIGTERM and SIGINT stop the loop, SIGUSR1 prints the stats: all three
     * arrive as reads on this fd, in the loop, like any other event. */
    int sigfd = Stop_signalfd(SIGUSR1);

    int max_fds = Fd_limit(); /* the fd table covers every fd we may open */

    struct reactor *r = reactor_create(max_fds);
    if (!r)
        unix_error("reactor_create", NULL);
    srv.r = r;
    srv.pool = pool_create(POOL_CAP);
    if (!srv.pool)
        unix_error("pool_create", NULL);
    pool_prealloc(srv.pool, POOL_MIN_SIZE, 16); /* warm, not required */
    srv.on_data = on_data;
    srv.high_water = HIGH_WATER;
    srv.low_water = LOW_WATER;
    srv.verbose = opts.verbose;

    int listenfd = Tcp_listen(opts.addr, opts.port);
    if (conn_server_start(&srv, listenfd) == -1)
        unix_error("conn_server_start", NULL);
    if (reactor_add(r, sigfd, REACTOR_READ, signal_cb, NULL) == -1)
        unix_error("reactor_add", "signalfd");
    Announce_listening(listenfd);

    if (reactor_run(r) == -1)
        unix_error("reactor_run", NULL);

    /* Stopped by a signal: close and free everything. */
    conn_server_stop(&srv);
    if (opts.verbose)
        print_stats(stderr);
    reactor_destroy(r);
    close(listenfd);
    close(sigfd);
    size_t leaked = pool_destroy(srv.pool);
    if (leaked) {
        err_msg("pool: %zu buffers still in use at exit", leaked);
        return 1;
    }
    return 0;
}
