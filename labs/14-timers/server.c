/*
 * 14-timers: lab 09's calculator with idle timeouts and heartbeats.
 *
 *     server [-p PORT] [-a ADDR] [-v] [-i MS] [-k MS]
 *
 *   -i MS   close a connection from which nothing arrived for MS ms;
 *   -k MS   heartbeats: after MS ms of silence from the client send it
 *           4@PING@, again after 2 MS and 3 MS, and close it at 4 MS.
 *           Any byte from the client ends the silence (a 4@PONG@ answer,
 *           a request, half a frame).
 *
 * A PING from the client is answered 4@PONG@; a PONG gets no reply.
 *
 * Each connection has ONE timer (timer.h), embedded in its context, set to
 * the next thing that must happen to it: a ping, or the close.  Reading
 * does not touch the timer: on_data only notes the time of the last byte
 * (a store, no heap work, no system call, however fast the client sends).
 * When the timer fires, it looks at that time: if the client spoke since,
 * the deadline simply moves to where it now belongs; if not, the ping is
 * sent or the connection closed.  (This is how nginx and the Linux
 * kernel's TCP keepalive treat a busy connection's timer: they check
 * lazily when it fires, instead of moving it on every packet.)
 *
 * Everything else is lab 08's and lab 09's, linked from their directories
 * (YOUR labs/08-reactor and labs/09-framing: they must work first).
 *
 * YOUR TASK: TODOs 5-7 here, after timer.c's TODOs 1-4.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "bufpool.h"
#include "calc.h"
#include "conn.h"
#include "reactor.h"
#include "timer.h"

#define POOL_CAP ((size_t)256 * 1024 * 1024)
/* As lab 09 (see its server.c): one read short of 4 MiB. */
#define HIGH_WATER ((size_t)4 * 1024 * 1024 - 64 * 1024)
#define LOW_WATER ((size_t)1024 * 1024)

#define MAX_MS 86400000L /* -i and -k: at most a day */
#define PINGS 3          /* heartbeats sent before the close */

#define PING_FRAME "4@PING@"
#define PONG_FRAME "4@PONG@"

static struct conn_server srv;
static struct timers *timers;
static long long idle_ns; /* -i, in ns; 0: off */
static long long beat_ns; /* -k, in ns; 0: off */

/* What the server keeps per connection. */
struct client {
    struct conn *c;
    struct timer timer;  /* the next ping or the close */
    long long last_rx;   /* when the last byte arrived (timers_now()) */
    int pings;           /* PINGs sent since then */
};

/* TODO 5: the connection's timer fired.  The contract (-i and -k above):
 * close the connection (conn_close) once nothing arrived for idle_ns; with
 * beat_ns, send PING_FRAME after beat_ns, 2 and 3 beat_ns of silence
 * (counted in cl->pings) and close at 4.  If the client spoke since the
 * timer was set, nothing is due yet: set the timer again for the next
 * deadline (timer_add_at).  Never touch cl after conn_close(), nor after a
 * conn_send() that failed: on_close has freed it. */
static void client_timeout(struct timers *ts, struct timer *t, void *arg)
{
    (void)ts;
    (void)t;
    (void)arg;
    app_error("TODO 5: client_timeout() in server.c is not written yet");
}

/* ---------- the connections ---------------------------------------------------------- */

static int on_open(struct conn *c)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        unix_warn("calloc", conn_name(c));
        return -1;
    }
    cl->c = c;
    cl->last_rx = timers_now();
    timer_init(&cl->timer, client_timeout, cl);
    /* TODO 6a: with -i or -k, arm the timer for the first deadline (refuse
     * the connection, -1, if that fails). */
    if (idle_ns || beat_ns)
        app_error("TODO 6: on_open() in server.c does not arm the timer yet");
    conn_set_ctx(c, cl);
    return 0;
}

/* The timer goes with the connection: a timer left in the heap would fire
 * later on freed memory. */
static void on_close(struct conn *c, void *ctx)
{
    struct client *cl = ctx;
    (void)c;
    if (!cl)
        return;
    /* TODO 6b: cancel cl's timer before freeing cl. */
    app_error("TODO 6: on_close() in server.c does not cancel the timer yet");
    free(cl);
}

/* Answer every complete frame in data[0..n), in order (lab 09's on_data,
 * plus PING and PONG). */
static size_t on_data(struct conn *c, void *ctx, char *data, size_t n)
{
    struct client *cl = ctx;
    size_t used = 0;
    /* TODO 7a: any byte ends the silence. */
    (void)cl;
    app_error("TODO 7: on_data() in server.c is not written yet");
    while (used < n) {
        const char *payload;
        size_t plen;
        ssize_t len = frame_next(data + used, n - used, &payload, &plen);
        if (len == 0)
            break;
        if (len < 0) {
            /* The polite close has its own 2 s limit (lab 08): no more
             * pings after the bad frame's reply (TODO 7c: cancel the
             * timer here). */
            conn_send(c, BAD_FRAME_REPLY, sizeof BAD_FRAME_REPLY - 1);
            conn_shutdown(c);
            return n;
        }
        used += (size_t)len;
        /* TODO 7b: the payload PING is answered PONG_FRAME; PONG gets no
         * reply; anything else is a request (lab 09). */
        char reply[32];
        size_t rn = calc_reply(payload, plen, reply, sizeof reply);
        if (conn_send(c, reply, rn) == -1)
            return n;
    }
    return used;
}

/* ---------- signals, as events ------------------------------------------------------ */

static void print_stats(FILE *to)
{
    fprintf(to, "stats: connections %zu timers %zu\n", srv.nconns, timers_count(timers));
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
            reactor_stop(r);
    }
}

/* ---------- the command line -------------------------------------------------------- */

/* -i MS and -k MS, beside common/'s -p, -a, -v and -h. */
static void help(FILE *to, int w)
{
    fprintf(to, "  %-*s  close a connection silent for MS ms (1-%ld)\n", w, "-i MS", MAX_MS);
    fprintf(to, "  %-*s  heartbeat: PING after MS, 2 MS, 3 MS of silence, close at 4 MS (1-%ld)\n",
            w, "-k MS", MAX_MS);
}

static void parse_options(int argc, char **argv, struct server_opts *opts)
{
    static long idle, beat; /* ms */
    static const struct num_arg nums[] = {
        {"-i", 1, MAX_MS, &idle, "-i and -k want milliseconds, 1 to 86400000"},
        {"-k", 1, MAX_MS, &beat, "-i and -k want milliseconds, 1 to 86400000"},
        {NULL, 0, 0, NULL, NULL},
    };
    static const struct more_args more = {"[-i MS] [-k MS]", 5, help, NULL, NULL, nums};
    parse_args_more(argc, argv, opts, &more);
    idle_ns = idle * TIMER_MS;
    beat_ns = beat * TIMER_MS;
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_options(argc, argv, &opts);
    Ignore_sigpipe();

    /* SIGTERM and SIGINT stop the loop, SIGUSR1 prints the stats: all three
     * arrive as reads on this fd, in the loop, like any other event. */
    int sigfd = Stop_signalfd(SIGUSR1);

    int max_fds = Fd_limit(); /* the fd table covers every fd we may open */

    struct reactor *r = reactor_create(max_fds);
    if (!r)
        unix_error("reactor_create", NULL);
    timers = timers_create(r);
    if (!timers)
        unix_error("timers_create", NULL);
    srv.r = r;
    srv.pool = pool_create(POOL_CAP);
    if (!srv.pool)
        unix_error("pool_create", NULL);
    pool_prealloc(srv.pool, POOL_MIN_SIZE, 16);
    srv.on_open = on_open;
    srv.on_data = on_data;
    srv.on_close = on_close;
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

    /* Connections first: each cancels its timer as it closes. */
    conn_server_stop(&srv);
    if (opts.verbose)
        print_stats(stderr);
    timers_destroy(timers);
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
