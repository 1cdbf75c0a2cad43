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
 * YOUR TASK: TODOs 1-9 below.  Each says what its function must do; the
 * handout (labs/15-libevent/README.md) explains libevent's part, and its
 * Hints section goes step by step.  The command line, the stats, the
 * signals and main() are given.
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
    /* TODO 4: free everything of one connection at once: its timers
     * (event_free: a pending timer left behind fires later on freed
     * memory), its bufferevent (bufferevent_free; with BEV_OPT_CLOSE_ON_FREE
     * that also closes the socket), its place in the list and the counts
     * (nconns, npaused).  With -v, log "close NAME" (and why, if given).
     * It may be called from the bufferevent's own callbacks: libevent
     * holds a reference while it runs them, so that is safe. */
    (void)cl;
    (void)why;
    app_error("TODO 4: client_free() in server.c is not written yet");
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
    /* TODO 8a: any byte from the client ends the silence: restart its idle
     * timer (idle_tv) and its heartbeat timer (beat_tv, and no PING sent
     * since) from now.  evtimer_add on a pending timer moves it. */
    (void)cl;
    app_error("TODO 8: silence_restart() in server.c is not written yet");
}

static void timers_stop(struct client *cl)
{
    /* TODO 8b: stop both timers (they stay allocated). */
    (void)cl;
    app_error("TODO 8: timers_stop() in server.c is not written yet");
}

static void idle_cb(evutil_socket_t fd, short what, void *arg)
{
    /* TODO 8c: nothing arrived for idle_ms: free the connection (with -v,
     * log "idle NAME: nothing for MS ms, closing" first). */
    (void)fd;
    (void)what;
    (void)arg;
    app_error("TODO 8: idle_cb() in server.c is not written yet");
}

/* MS after the last byte, and after each PING: the next PING, or, after
 * the third, the close (at 4 MS). */
static void beat_cb(evutil_socket_t fd, short what, void *arg)
{
    /* TODO 8d: beat_ms more of silence: send PING_FRAME and wait beat_ms
     * again, PINGS times; the next time, free the connection (with -v,
     * log "heartbeat NAME: 3 pings unanswered, closing").  Never touch cl
     * after client_send() failed: it is freed. */
    (void)fd;
    (void)what;
    (void)arg;
    app_error("TODO 8: beat_cb() in server.c is not written yet");
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
    /* TODO 6a: an OPEN connection whose output holds more than HIGH_WATER
     * stops being read (bufferevent_disable EV_READ): paused, counted in
     * npaused.  Without this, a client that sends and never reads grows
     * the output without end. */
    (void)cl;
    app_error("TODO 6: pause_if_full() in server.c is not written yet");
}

static void resume(struct client *cl)
{
    /* TODO 6b: read a paused connection again (and count it no more). */
    (void)cl;
    app_error("TODO 6: resume() in server.c is not written yet");
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
    /* TODO 5: answer every complete frame at the front of the input
     * evbuffer, in order, removing each (evbuffer_drain) once answered;
     * leave an incomplete frame where it is for the next read.  frame_next
     * (lab 09's calc.h) needs the bytes contiguous: evbuffer_pullup at most
     * FRAME_MAX_LEN of them (a frame is never longer, so that many always
     * decide).  The payload PING is answered PONG_FRAME, PONG gets
     * nothing, anything else calc_reply; a bad frame goes to bad_frame().
     * Send with client_send().  Returns 0, or -1 once the connection has
     * been freed (then touch nothing of it). */
    (void)cl;
    (void)bad_frame; /* (what a bad frame calls) */
    app_error("TODO 5: answer() in server.c is not written yet");
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
    /* TODO 6c: libevent calls this after each write that leaves the output
     * at or under its low watermark (LOW_WATER, set at accept), the last
     * one, which empties it, included.  A paused connection is read again
     * from LOW_WATER down.  Once the output is empty: FLUSHING -> free it;
     * SHUTTING -> free it if the client's EOF came, else shutdown(SHUT_WR)
     * its socket and LINGER: free it at the client's EOF or after
     * LINGER_MS (linger_tv: an evtimer in cl->linger), whichever first. */
    (void)bev;
    (void)arg;
    app_error("TODO 6: write_cb() in server.c is not written yet");
}

/* EOF, an error, or (not asked for here) a bufferevent timeout. */
static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    /* TODO 7: BEV_EVENT_ERROR (a reset, a broken pipe): free this client
     * only.  BEV_EVENT_EOF (libevent has stopped reading): every complete
     * frame was answered as it came, an incomplete one gets no reply; free
     * the connection now if it is LINGERing or nothing is left to send,
     * else an OPEN one becomes FLUSHING (the write callback frees it once
     * all is sent, and no PINGs go to a client that said goodbye). */
    (void)bev;
    (void)what;
    (void)arg;
    app_error("TODO 7: event_cb() in server.c is not written yet");
}

/* ---------- accepting ------------------------------------------------------------- */

static void accept_cb(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    /* TODO 3: a new connection (fd, non-blocking already, from sa).  A
     * struct client with its name (sockaddr_str), a bufferevent that owns
     * the fd (BEV_OPT_CLOSE_ON_FREE), an idle evtimer with -i (idle_tv)
     * and a heartbeat evtimer with -k (beat_tv), in the list and counted
     * (nconns; with -v, log "connect NAME").  Then the callbacks
     * (read_cb, write_cb, event_cb), the output's low watermark
     * (LOW_WATER: write_cb is called once the output drains that far),
     * the timers started, and reading enabled.  If anything fails: close
     * or free what was made, and go on serving the others. */
    (void)lev;
    (void)fd;
    (void)sa;
    (void)salen;
    (void)arg;
    (void)read_cb; /* (the callbacks it registers) */
    (void)write_cb;
    (void)event_cb;
    (void)idle_cb;
    (void)beat_cb;
    app_error("TODO 3: accept_cb() in server.c is not written yet");
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
    /* TODO 1: an event base (event_base_new_with_config) whose config asks
     * for EVENT_BASE_FLAG_PRECISE_TIMER (timers on CLOCK_MONOTONIC, through
     * one timerfd) and EVENT_BASE_FLAG_IGNORE_ENV.  Exits if it fails. */
    app_error("TODO 1: base_new() in server.c is not written yet");
}

/* The listener: socket, SO_REUSEADDR, bind, listen(SOMAXCONN), the socket
 * non-blocking and close-on-exec, and accept_cb for each connection (it
 * accepts in a loop until EAGAIN).  Exits if the address is taken. */
static struct evconnlistener *listener_new(const struct server_opts *opts)
{
    /* TODO 2: an evconnlistener bound to opts->addr:opts->port
     * (evconnlistener_new_bind): SO_REUSEADDR, listen(SOMAXCONN), close on
     * free and on exec, accept_cb for each connection.  Exits with
     * unix_error("listen", "ADDR:PORT") if it fails (the port is taken). */
    (void)opts;
    (void)accept_cb; /* (the callback it registers) */
    app_error("TODO 2: listener_new() in server.c is not written yet");
}

/* Stopped by a signal: free everything, so that a leak checker finds
 * nothing: every connection (its timers, its bufferevent, which closes its
 * socket), the listener (LEV_OPT_CLOSE_ON_FREE closes it), the signal
 * events, the base (its epoll fd, timerfd and signal pipe), and libevent's
 * own globals (libevent_global_shutdown). */
static void free_all(struct evconnlistener *lev, struct event **sigs, int nsigs)
{
    /* TODO 9: free every connection (client_free), then, with -v, print the
     * stats (print_stats: they must say 0 connections), then free the
     * listener, the signal events and the base, and call
     * libevent_global_shutdown() last, so valgrind finds nothing in use. */
    (void)lev;
    (void)sigs;
    (void)nsigs;
    app_error("TODO 9: free_all() in server.c is not written yet");
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
