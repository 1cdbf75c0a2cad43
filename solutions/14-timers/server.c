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
 * Everything else is lab 08's and lab 09's, linked from their directories.
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

/* When the next thing must happen to cl: the idle close, or the next
 * heartbeat step (ping number pings+1, or the close after the third). */
static long long next_deadline(const struct client *cl)
{
    long long at = 0;
    if (idle_ns)
        at = cl->last_rx + idle_ns;
    if (beat_ns) {
        long long beat = cl->last_rx + (long long)(cl->pings + 1) * beat_ns;
        if (!at || beat < at)
            at = beat;
    }
    return at;
}

static void client_timeout(struct timers *ts, struct timer *t, void *arg)
{
    struct client *cl = arg;
    (void)t;
    long long now = timers_now();
    if (idle_ns && now >= cl->last_rx + idle_ns) {
        if (srv.verbose)
            err_msg("idle %s: nothing for %lld ms, closing", conn_name(cl->c), idle_ns / TIMER_MS);
        conn_close(cl->c); /* on_close frees cl */
        return;
    }
    if (beat_ns && now >= cl->last_rx + (long long)(cl->pings + 1) * beat_ns) {
        if (cl->pings == PINGS) {
            if (srv.verbose)
                err_msg("heartbeat %s: %d pings unanswered, closing", conn_name(cl->c), PINGS);
            conn_close(cl->c);
            return;
        }
        cl->pings++;
        /* From outside a callback conn_send arms WRITE itself; if it fails,
         * the connection is already gone (and cl with it). */
        if (conn_send(cl->c, PING_FRAME, sizeof PING_FRAME - 1) == -1)
            return;
    }
    /* Not due (the client spoke since the timer was set), or the next
     * ping: the timer goes to the next deadline. */
    if (timer_add_at(ts, &cl->timer, next_deadline(cl)) == -1) {
        unix_warn("timer_add", conn_name(cl->c));
        conn_close(cl->c);
    }
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
    if ((idle_ns || beat_ns) && timer_add_at(timers, &cl->timer, next_deadline(cl)) == -1) {
        unix_warn("timer_add", conn_name(c));
        free(cl);
        return -1;
    }
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
    timer_cancel(timers, &cl->timer);
    free(cl);
}

/* Answer every complete frame in data[0..n), in order (lab 09's on_data,
 * plus PING and PONG). */
static size_t on_data(struct conn *c, void *ctx, char *data, size_t n)
{
    struct client *cl = ctx;
    size_t used = 0;
    /* Any byte ends the silence: the timer will see it when it fires. */
    cl->last_rx = timers_now();
    cl->pings = 0;
    while (used < n) {
        const char *payload;
        size_t plen;
        ssize_t len = frame_next(data + used, n - used, &payload, &plen);
        if (len == 0)
            break;
        if (len < 0) {
            /* The polite close has its own 2 s limit (lab 08): no more
             * pings after the bad frame's reply. */
            timer_cancel(timers, &cl->timer);
            conn_send(c, BAD_FRAME_REPLY, sizeof BAD_FRAME_REPLY - 1);
            conn_shutdown(c);
            return n;
        }
        used += (size_t)len;
        if (plen == 4 && memcmp(payload, "PONG", 4) == 0)
            continue; /* an answer to our PING: it only ends the silence */
        if (plen == 4 && memcmp(payload, "PING", 4) == 0) {
            if (conn_send(c, PONG_FRAME, sizeof PONG_FRAME - 1) == -1)
                return n;
            continue;
        }
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
