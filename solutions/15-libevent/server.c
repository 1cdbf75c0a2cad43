/*
 * 15-libevent: lab 09's calculator with lab 14's idle timeouts and
 * heartbeats, on libevent instead of our own reactor.
 *
 *     server [-p PORT] [-a ADDR] [-v] [-i MS] [-k MS]
 *
 *   -i MS   close a connection from which nothing arrived for MS ms;
 *   -k MS   heartbeats: after MS ms of silence from the client send it
 *           4@PING@, again after 2 MS and 3 MS, and close it at 4 MS.
 *
 * What libevent does for us, and lab 08 did by hand: the epoll set, the
 * loop, accept (evconnlistener), non-blocking reads and writes with
 * EAGAIN and partial writes (a bufferevent per connection, with an input
 * and an output evbuffer), timers (evtimer), and signals (evsignal).
 * What it does not do, and this file does: find the frames in the input
 * (lab 09's calc.c, linked from its directory), decide when to stop
 * reading a client that does not read its replies (back-pressure), the
 * polite close after a bad frame, and what "idle" means.
 *
 * The timers.  Every connection's idle timeout has the same duration, and
 * so has every heartbeat step: libevent keeps timers of one duration in a
 * "common timeout" queue (event_base_init_common_timeout), where moving a
 * timer to "now + MS" is an unlink and an append, not a heap operation.
 * So each read simply re-arms the connection's timers: the libevent form
 * of lab 14's "any byte ends the silence".  (Why not the bufferevent's
 * own read timeout: see the handout.)
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "calc.h"

/* Back-pressure, as lab 09: stop reading a connection once this much
 * output waits for it, read again once it has drained to LOW_WATER.  A
 * read (libevent reads at most 16 KiB at a time) can add up to twice its
 * size in replies past the mark, so the output stays under 4 MiB. */
#define HIGH_WATER ((size_t)4 * 1024 * 1024 - 64 * 1024)
#define LOW_WATER ((size_t)1024 * 1024)

#define LINGER_MS 2000   /* after a bad frame: wait this long for the EOF */
#define MAX_MS 86400000L /* -i and -k: at most a day */
#define PINGS 3          /* heartbeats sent before the close */

#define PING_FRAME "4@PING@"
#define PONG_FRAME "4@PONG@"

/* Where a connection is in its life. */
enum state {
    OPEN,     /* requests are read and answered */
    FLUSHING, /* the client's EOF came: send what is owed, then close */
    SHUTTING, /* a bad frame: send what is owed, then shutdown(SHUT_WR) */
    LINGER,   /* shut: discard the input until EOF or LINGER_MS */
};

struct client {
    struct bufferevent *bev; /* the socket, its input and output evbuffers */
    struct event *idle;      /* -i: fires after MS of silence (NULL without -i) */
    struct event *beat;      /* -k: the next PING, or the close */
    struct event *linger;    /* the end of LINGER (made when needed) */
    int pings;               /* PINGs sent since the client's last byte */
    int paused;              /* reading stopped: too much output waiting */
    int eof;                 /* the client's EOF came */
    enum state state;
    struct client *prev, *next; /* every connection, to free them at exit */
    char name[ADDR_STRLEN];
};

static struct event_base *base;
static struct client *clients;
static size_t nconns, npaused;
static int verbose;
/* -i, -k and the linger time as libevent common timeouts (NULL: off). */
static const struct timeval *idle_tv, *beat_tv, *linger_tv;
static long idle_ms, beat_ms;

/* ---------- a connection's end ----------------------------------------------------- */

/* Everything of one connection goes at once: its timers (a pending timer
 * left behind would fire later on freed memory) and its bufferevent,
 * which closes the socket (BEV_OPT_CLOSE_ON_FREE) and frees both
 * evbuffers.  Safe inside the bufferevent's own callbacks: libevent holds
 * a reference while it runs them and finishes the free afterwards. */
static void client_free(struct client *cl, const char *why)
{
    if (verbose)
        err_msg("close %s%s%s", cl->name, why ? ": " : "", why ? why : "");
    if (cl->idle)
        event_free(cl->idle);
    if (cl->beat)
        event_free(cl->beat);
    if (cl->linger)
        event_free(cl->linger);
    bufferevent_free(cl->bev);
    if (cl->paused)
        npaused--;
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    nconns--;
    free(cl);
}

static size_t out_len(const struct client *cl)
{
    return evbuffer_get_length(bufferevent_get_output(cl->bev));
}

/* Queue bytes for the client.  libevent writes them when the socket can
 * take them, keeping what a partial write left; adding never blocks.
 * -1 (the connection freed) only if memory runs out. */
static int client_send(struct client *cl, const char *p, size_t n)
{
    if (bufferevent_write(cl->bev, p, n) == -1) {
        client_free(cl, "out of memory for its output");
        return -1;
    }
    return 0;
}

/* ---------- the timers ------------------------------------------------------------ */

/* Any byte from the client ends the silence: both timers start again
 * from now.  (evtimer_add on a pending timer moves it.) */
static void silence_restart(struct client *cl)
{
    if (cl->idle)
        evtimer_add(cl->idle, idle_tv);
    if (cl->beat) {
        cl->pings = 0;
        evtimer_add(cl->beat, beat_tv);
    }
}

static void timers_stop(struct client *cl)
{
    if (cl->idle)
        evtimer_del(cl->idle);
    if (cl->beat)
        evtimer_del(cl->beat);
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *cl = arg;
    (void)fd;
    (void)what;
    if (verbose)
        err_msg("idle %s: nothing for %ld ms, closing", cl->name, idle_ms);
    client_free(cl, NULL);
}

/* MS after the last byte, and after each PING: the next PING, or, after
 * the third, the close (at 4 MS). */
static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *cl = arg;
    (void)fd;
    (void)what;
    if (cl->pings == PINGS) {
        if (verbose)
            err_msg("heartbeat %s: %d pings unanswered, closing", cl->name, PINGS);
        client_free(cl, NULL);
        return;
    }
    cl->pings++;
    if (client_send(cl, PING_FRAME, sizeof PING_FRAME - 1) == -1)
        return;
    evtimer_add(cl->beat, beat_tv);
}

static void linger_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_free(arg, "no EOF within 2 s of the bad frame");
}

/* ---------- back-pressure ---------------------------------------------------------- */

/* libevent reads whenever the socket is readable and reading is enabled;
 * it has no idea that this client's replies are piling up.  So the policy
 * is ours: disable reading above HIGH_WATER (the kernel's buffers then
 * fill and TCP's window stops the client), enable it again from the write
 * callback, which the output's low watermark (LOW_WATER, set at accept)
 * makes libevent call once the output has drained that far. */
static void pause_if_full(struct client *cl)
{
    if (!cl->paused && cl->state == OPEN && out_len(cl) > HIGH_WATER) {
        bufferevent_disable(cl->bev, EV_READ);
        cl->paused = 1;
        npaused++;
    }
}

static void resume(struct client *cl)
{
    cl->paused = 0;
    npaused--;
    bufferevent_enable(cl->bev, EV_READ);
}

/* ---------- the service ------------------------------------------------------------ */

/* After a bad frame: what is owed is queued, then '3@9 0@'; once it is all
 * sent the write callback shuts our side (a close() now, with unread
 * input, would send a reset that can destroy the replies in flight). */
static int bad_frame(struct client *cl, struct evbuffer *in)
{
    evbuffer_drain(in, evbuffer_get_length(in));
    timers_stop(cl);
    cl->state = SHUTTING;
    if (cl->paused) /* the rest of its input is only discarded now */
        resume(cl);
    return client_send(cl, BAD_FRAME_REPLY, sizeof BAD_FRAME_REPLY - 1);
}

/* Answer every complete frame at the front of the input, in order, and
 * remove each from it; an incomplete frame stays for the next read.  A
 * frame is at most FRAME_MAX_LEN bytes, so looking at that many always
 * decides: a whole frame, a bad one, or (fewer bytes) not complete yet.
 * evbuffer_pullup makes them contiguous for frame_next (it copies only
 * when a frame straddles two of the evbuffer's chunks). */
static int answer(struct client *cl)
{
    struct evbuffer *in = bufferevent_get_input(cl->bev);
    for (;;) {
        size_t n = evbuffer_get_length(in);
        if (n == 0)
            return 0;
        if (n > FRAME_MAX_LEN)
            n = FRAME_MAX_LEN;
        const char *data = (const char *)evbuffer_pullup(in, (ev_ssize_t)n);
        if (!data) {
            client_free(cl, "out of memory for its input");
            return -1;
        }
        const char *payload;
        size_t plen;
        ssize_t len = frame_next(data, n, &payload, &plen);
        if (len == 0)
            return 0; /* incomplete: wait for the rest */
        if (len < 0)
            return bad_frame(cl, in);
        int rc = 0;
        if (plen == 4 && memcmp(payload, "PONG", 4) == 0) {
            /* an answer to our PING: it only ends the silence */
        } else if (plen == 4 && memcmp(payload, "PING", 4) == 0) {
            rc = client_send(cl, PONG_FRAME, sizeof PONG_FRAME - 1);
        } else {
            char reply[32];
            size_t rn = calc_reply(payload, plen, reply, sizeof reply);
            rc = client_send(cl, reply, rn);
        }
        if (rc == -1)
            return -1;
        /* (payload points into the input: drained only now) */
        evbuffer_drain(in, (size_t)len);
    }
}

/* ---------- the bufferevent's callbacks ---------------------------------------------- */

/* New bytes are in the input evbuffer (libevent read them). */
static void read_cb(struct bufferevent *bev, void *arg)
{
    struct client *cl = arg;
    if (cl->state == LINGER) {
        /* shut after a bad frame: discard until the EOF */
        struct evbuffer *in = bufferevent_get_input(bev);
        evbuffer_drain(in, evbuffer_get_length(in));
        return;
    }
    silence_restart(cl);
    if (answer(cl) == -1)
        return;
    pause_if_full(cl);
}

/* The output has drained to its low watermark (LOW_WATER) or below;
 * libevent calls this after each write that leaves it there, the last
 * one included, which empties it. */
static void write_cb(struct bufferevent *bev, void *arg)
{
    struct client *cl = arg;
    size_t left = out_len(cl);
    if (cl->paused && left <= LOW_WATER)
        resume(cl);
    if (left > 0)
        return;
    if (cl->state == FLUSHING) {
        client_free(cl, NULL);
    } else if (cl->state == SHUTTING) {
        if (cl->eof) { /* nothing more will come: no need to wait */
            client_free(cl, NULL);
            return;
        }
        if (shutdown(bufferevent_getfd(bev), SHUT_WR) == -1) {
            client_free(cl, strerror(errno));
            return;
        }
        cl->state = LINGER;
        cl->linger = evtimer_new(base, linger_cb, cl);
        if (!cl->linger || evtimer_add(cl->linger, linger_tv) == -1)
            client_free(cl, "cannot start its linger timer");
    }
}

/* EOF, an error, or (not asked for here) a bufferevent timeout. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct client *cl = arg;
    (void)bev;
    if (what & BEV_EVENT_ERROR) {
        /* ECONNRESET, EPIPE...: this client only.  (SIGPIPE is ignored.) */
        client_free(cl, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
        return;
    }
    if (!(what & BEV_EVENT_EOF))
        return;
    /* libevent has already stopped reading.  Every complete frame was
     * answered as it came; an incomplete one at EOF gets no reply. */
    cl->eof = 1;
    if (cl->state == LINGER || out_len(cl) == 0) {
        client_free(cl, NULL);
    } else if (cl->state == OPEN) {
        cl->state = FLUSHING; /* the write callback closes when it is sent */
        if (cl->beat)
            evtimer_del(cl->beat); /* no PINGs to a client that has said goodbye */
    }
}

/* ---------- accepting ------------------------------------------------------------- */

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)lev;
    (void)salen;
    (void)arg;
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        unix_warn("calloc", "new connection");
        close(fd);
        return;
    }
    sockaddr_str(sa, cl->name, sizeof cl->name);
    /* From here the bufferevent owns the fd: freeing it closes it. */
    cl->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!cl->bev) {
        err_msg("bufferevent_socket_new %s: failed", cl->name);
        close(fd);
        free(cl);
        return;
    }
    if ((idle_tv && !(cl->idle = evtimer_new(base, idle_cb, cl))) ||
        (beat_tv && !(cl->beat = evtimer_new(base, beat_cb, cl)))) {
        err_msg("evtimer_new %s: failed", cl->name);
        if (cl->idle)
            event_free(cl->idle);
        bufferevent_free(cl->bev);
        free(cl);
        return;
    }
    cl->next = clients;
    if (clients)
        clients->prev = cl;
    clients = cl;
    nconns++;
    if (verbose)
        err_msg("connect %s", cl->name);
    bufferevent_setcb(cl->bev, read_cb, write_cb, event_cb, cl);
    bufferevent_setwatermark(cl->bev, EV_WRITE, LOW_WATER, 0);
    silence_restart(cl);
    if (bufferevent_enable(cl->bev, EV_READ) == -1)
        client_free(cl, "bufferevent_enable failed");
}

/* accept() failed with something libevent does not retry by itself.  Out
 * of fds, the waiting client would keep the listener readable and the
 * loop would spin: refuse it with the spare fd (common/wrap.h). */
static int spare_fd = -1;

static void accept_error_cb(struct evconnlistener *lev, void *arg)
{
    int err = EVUTIL_SOCKET_ERROR();
    (void)arg;
    if (err == EMFILE || err == ENFILE) {
        static int warned;
        if (!warned++)
            err_msg("accept: out of fds, refusing new clients");
        while (spare_fd_refuse(evconnlistener_get_fd(lev), &spare_fd) == 1)
            ;
        return;
    }
    if (!accept_error_is_transient(err)) {
        errno = err;
        unix_warn("accept", NULL);
    }
}

/* ---------- signals, and the stats ------------------------------------------------- */

/* Lab 08's stats format, so lab 09's tests read this server's too.
 * libevent has no pool: its evbuffers allocate chunks from malloc as they
 * grow and free each chunk as soon as it has been drained, so an empty
 * evbuffer holds no memory.  A "class" here is one side's evbuffers, and
 * in_use counts the connections whose evbuffer on that side holds bytes:
 * an idle connection must count in neither. */
static void print_stats(FILE *to)
{
    size_t in_use[2] = {0, 0}, bytes[2] = {0, 0};
    for (struct client *cl = clients; cl; cl = cl->next) {
        size_t n[2] = {evbuffer_get_length(bufferevent_get_input(cl->bev)), out_len(cl)};
        for (int i = 0; i < 2; i++) {
            in_use[i] += n[i] > 0;
            bytes[i] += n[i];
        }
    }
    fprintf(to, "stats: connections %zu paused %zu\n", nconns, npaused);
    fprintf(to, "pool: class input: in_use %zu bytes %zu\n", in_use[0], bytes[0]);
    fprintf(to, "pool: class output: in_use %zu bytes %zu\n", in_use[1], bytes[1]);
    fprintf(to, "pool: total: in_use %zu bytes %zu\n", in_use[0] + in_use[1], bytes[0] + bytes[1]);
    fflush(to);
}

/* libevent's signal events: its own handler only notes the signal (in a
 * socketpair); this runs from the loop, like any callback, so it may call
 * anything. */
static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    (void)arg;
    if (sig == SIGUSR1)
        print_stats(stderr);
    else
        event_base_loopbreak(base); /* SIGTERM, SIGINT */
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
    idle_ms = idle;
    beat_ms = beat;
}

/* A duration as a libevent common timeout: timers that share one duration
 * share one queue, in deadline order by construction. */
static const struct timeval *common_ms(long ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    const struct timeval *t = event_base_init_common_timeout(base, &tv);
    if (!t)
        app_error("event_base_init_common_timeout failed");
    return t;
}

/* ---------- setting up, and freeing everything ------------------------------------- */

/* The event base: epoll (libevent picks the best backend there is), its
 * timers on CLOCK_MONOTONIC through one timerfd (EVENT_BASE_FLAG_PRECISE_
 * TIMER; without it libevent uses the coarse clock and epoll_wait's
 * millisecond timeout), and no environment variable (EVENT_NOEPOLL...)
 * may swap the backend under the tests. */
static struct event_base *base_new(void)
{
    struct event_config *cfg = event_config_new();
    if (!cfg)
        app_error("event_config_new failed");
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER | EVENT_BASE_FLAG_IGNORE_ENV);
    struct event_base *b = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!b)
        app_error("event_base_new_with_config failed");
    return b;
}

/* The listener: socket, SO_REUSEADDR, bind, listen(SOMAXCONN), the socket
 * non-blocking and close-on-exec, and accept_cb for each connection (it
 * accepts in a loop until EAGAIN).  Exits if the address is taken. */
static struct evconnlistener *listener_new(const struct server_opts *opts)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opts->port)};
    if (inet_pton(AF_INET, opts->addr, &sin.sin_addr) != 1)
        app_error("bad address '%s'", opts->addr);
    struct evconnlistener *lev = evconnlistener_new_bind(
        base, accept_cb, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
        SOMAXCONN, (struct sockaddr *)&sin, sizeof sin);
    if (!lev) {
        char where[ADDR_STRLEN];
        snprintf(where, sizeof where, "%s:%d", opts->addr, opts->port);
        unix_error("listen", where);
    }
    return lev;
}

/* Stopped by a signal: free everything, so that a leak checker finds
 * nothing: every connection (its timers, its bufferevent, which closes its
 * socket), the listener (LEV_OPT_CLOSE_ON_FREE closes it), the signal
 * events, the base (its epoll fd, timerfd and signal pipe), and libevent's
 * own globals (libevent_global_shutdown). */
static void free_all(struct evconnlistener *lev, struct event **sigs, int nsigs)
{
    while (clients)
        client_free(clients, NULL);
    if (verbose)
        print_stats(stderr);
    evconnlistener_free(lev);
    for (int i = 0; i < nsigs; i++)
        event_free(sigs[i]);
    event_base_free(base);
    libevent_global_shutdown();
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_options(argc, argv, &opts);
    verbose = opts.verbose;
    /* libevent writes with writev(), which raises SIGPIPE on a connection
     * the client has reset: ignore it, the write then fails with EPIPE. */
    Ignore_sigpipe();

    base = base_new();
    if (idle_ms)
        idle_tv = common_ms(idle_ms);
    if (beat_ms)
        beat_tv = common_ms(beat_ms);
    linger_tv = common_ms(LINGER_MS);

    struct evconnlistener *lev = listener_new(&opts);
    evconnlistener_set_error_cb(lev, accept_error_cb);
    spare_fd = spare_fd_open();
    if (spare_fd == -1)
        unix_error("open", "/dev/null (the spare fd)");

    /* Signals as events: libevent's handler only notes the signal, and
     * signal_cb runs from the loop like any callback. */
    struct event *sigs[3];
    const int signos[3] = {SIGTERM, SIGINT, SIGUSR1};
    for (int i = 0; i < 3; i++) {
        sigs[i] = evsignal_new(base, signos[i], signal_cb, NULL);
        if (!sigs[i] || evsignal_add(sigs[i], NULL) == -1)
            app_error("evsignal_add %s failed", strsignal(signos[i]));
    }
    Announce_listening(evconnlistener_get_fd(lev));

    if (event_base_dispatch(base) == -1)
        app_error("event_base_dispatch failed");

    free_all(lev, sigs, 3);
    close(spare_fd);
    return 0;
}
