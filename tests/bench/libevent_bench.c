/*
 * libevent_bench.c - see libevent_bench.h.
 */
#define _POSIX_C_SOURCE 200809L

#include "libevent_bench.h"

#include <signal.h>

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    event_base_loopbreak(arg);
}

void bench_open(struct bench_loop *b, int argc, char **argv, evconnlistener_cb accept_cb,
                evconnlistener_errorcb error_cb)
{
    parse_args(argc, argv, &b->opts);
    Ignore_sigpipe();

    int listenfd = Tcp_listen(b->opts.addr, b->opts.port);
    Set_nonblocking(listenfd);

    b->base = event_base_new();
    if (!b->base)
        unix_error("event_base_new", NULL);
    /* Backlog 0: the socket is already listening (SOMAXCONN).  -1 would
     * make libevent call listen(fd, 128) again and shrink the queue. */
    b->lst = evconnlistener_new(b->base, accept_cb, NULL,
                                LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 0, listenfd);
    if (!b->lst)
        unix_error("evconnlistener_new", "listen fd");
    evconnlistener_set_error_cb(b->lst, error_cb);
    b->ev_term = evsignal_new(b->base, SIGTERM, stop_cb, b->base);
    b->ev_int = evsignal_new(b->base, SIGINT, stop_cb, b->base);
    if (!b->ev_term || !b->ev_int || evsignal_add(b->ev_term, NULL) || evsignal_add(b->ev_int, NULL))
        unix_error("evsignal_add", NULL);
}

void bench_run(struct bench_loop *b)
{
    Announce_listening(evconnlistener_get_fd(b->lst));
    event_base_dispatch(b->base);
}

void bench_close(struct bench_loop *b)
{
    event_free(b->ev_term);
    event_free(b->ev_int);
    evconnlistener_free(b->lst);
    event_base_free(b->base);
}
