/*
 * libevent_bench.h - what the libevent servers of `make compare`
 * (libevent_server.c, libevent_raw_server.c) do the same way around their
 * connections: the command line, the listening socket and its
 * evconnlistener, SIGTERM/SIGINT ending the loop.  Each server brings its
 * own accept and accept-error callbacks.
 */
#ifndef NETLABS_LIBEVENT_BENCH_H
#define NETLABS_LIBEVENT_BENCH_H

#include "wrap.h"

#include <event2/event.h>
#include <event2/listener.h>

struct bench_loop {
    struct server_opts opts;
    struct event_base *base;
    struct evconnlistener *lst;
    struct event *ev_term, *ev_int;
};

/* Parse argv (exits 2 on bad arguments), ignore SIGPIPE, listen, and make
 * the event base, the listener (calling accept_cb, and error_cb when
 * accept() fails) and the stop signals.  Exits if any of it fails. */
void bench_open(struct bench_loop *b, int argc, char **argv, evconnlistener_cb accept_cb,
                evconnlistener_errorcb error_cb);

/* Print the listening line, then run until SIGTERM or SIGINT. */
void bench_run(struct bench_loop *b);

/* Free the signal events, the listener (closing the listening socket) and
 * the base.  The connections are the server's: free them first. */
void bench_close(struct bench_loop *b);

#endif
