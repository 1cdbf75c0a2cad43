/*
 * 09-framing: the network calculator, an application on lab 08's reactor.
 *
 * TCP delivers a byte stream, not messages: one read may hold half a
 * request, or ten and a half.  The protocol marks where each request ends
 * (LEN@PAYLOAD@, calc.h), and on_data() below does what every framed
 * protocol needs: take every complete frame in the input, answer each in
 * order, and leave the incomplete rest where it is (it returns how many
 * bytes it used; the connection layer keeps the rest and hands it back
 * with the next bytes).  A bad frame gets status 9, then the connection
 * is shut down politely (conn_shutdown), so the replies owed still arrive.
 *
 * Everything else is lab 08's, linked from lab 08's directory: the
 * reactor, the pool, connections with back-pressure, signals as events
 * (SIGUSR1 prints stats; SIGTERM frees everything and exits 0).
 *
 * Left out: one thread, so a slow request would stall everyone (lab 10
 * moves slow work to a thread pool); no idle timeouts (lab 14).
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bufpool.h"
#include "calc.h"
#include "conn.h"
#include "reactor.h"

#define POOL_CAP ((size_t)256 * 1024 * 1024) /* all buffers, all connections */
/* Per connection, see conn.h.  A reply can be twice the size of its
 * request ("0@@" -> "3@3 0@"), so one read's worth of requests (64 KiB)
 * may push the output that far past the mark: stop one read short of
 * 4 MiB, and the output never needs a buffer bigger than 4 MiB. */
#define HIGH_WATER ((size_t)4 * 1024 * 1024 - 64 * 1024)
#define LOW_WATER ((size_t)1024 * 1024)

static struct conn_server srv;

/* ---------- the service -------------------------------------------------------- */

/* Answer every complete frame in data[0..n), in order; return how many
 * bytes that was.  An incomplete frame at the end stays for next time. */
static size_t on_data(struct conn *c, void *ctx, char *data, size_t n)
{
    size_t used = 0;
    (void)ctx; /* the calculator keeps no state per connection */
    while (used < n) {
        const char *payload;
        size_t plen;
        ssize_t len = frame_next(data + used, n - used, &payload, &plen);
        if (len == 0)
            break; /* incomplete: wait for the rest */
        if (len < 0) {
            /* The replies owed are already queued, in order; this one
             * goes after them, then the polite close. */
            conn_send(c, BAD_FRAME_REPLY, sizeof BAD_FRAME_REPLY - 1);
            conn_shutdown(c);
            return n;
        }
        char reply[32];
        size_t rn = calc_reply(payload, plen, reply, sizeof reply);
        if (conn_send(c, reply, rn) == -1)
            return n; /* the pool refused: the connection is closing */
        used += (size_t)len;
    }
    return used;
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
