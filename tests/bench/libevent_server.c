/*
 * libevent_server: uppercase echo on libevent's bufferevents, the outside
 * reference that `make compare` measures next to the ladder.
 *
 * Not a lab: it shows what a mature event library does with the same
 * service, so the numbers of 06-08 have something to be held against.
 * It obeys the same command line (server [-p PORT] [-a ADDR] [-v]), prints
 * the same "listening on ADDR:PORT" line, honours half-close (a client's
 * EOF is answered once the output buffer has drained) and exits 0 on
 * SIGTERM/SIGINT with everything freed.
 *
 * Built twice.  libevent_server is the strongest bufferevent server,
 * configured the way their best users run them: TCP_NODELAY on every
 * connection (memcached and redis set it: an echo's small replies must not
 * wait for the previous one's ACK), up to 64 KiB per read callback
 * (bufferevent_set_max_single_read), and the input uppercased in place and
 * moved to the output chunk by chunk (evbuffer_peek, evbuffer_add_buffer),
 * never copied.  libevent_server_untuned (-DLIBEVENT_UNTUNED) keeps
 * libevent's defaults (Nagle on, 16 KiB per callback) and copies through a
 * 4 KiB buffer, as a first libevent program does: `make compare` shows
 * both, labelled, because the difference is the configuration, not the
 * library.
 *
 * What no setting changes: libevent 2.1 (Debian 12 ships 2.1.12) makes one
 * evbuffer_read() per read callback, and evbuffer_read() asks the kernel
 * how much is waiting (ioctl FIONREAD) and then reads at most
 * EVBUFFER_MAX_READ = 4096 bytes, whatever max_single_read says.  A 16 KiB
 * request costs four callbacks, four ioctls and four readv()s.  (libevent
 * 2.2 adds evbuffer_set_max_read().)  libevent_raw_server.c shows the
 * library without bufferevents, the way memcached uses it.
 *
 * What it leaves out: a cap on what one client can make it buffer.  A
 * client that sends without reading grows the output evbuffer; lab 08's
 * back-pressure is the fix (bufferevent_setwatermark would be libevent's).
 *
 * Built only when libevent is installed (apt-get install libevent-dev).
 */
#define _POSIX_C_SOURCE 200809L

#include "libevent_bench.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 4096
#define MAX_READ 65536 /* tuned: bytes one read may take (libevent's default: 16 KiB) */
#define MAX_VECS 64    /* tuned: input chunks uppercased per call */

static int verbose;

/* ---------- one connection ---------------------------------------------------- */

static void conn_close(struct bufferevent *bev)
{
    if (verbose) {
        char name[ADDR_STRLEN];
        fprintf(stderr, "close %s\n", peer_str(bufferevent_getfd(bev), name, sizeof name));
    }
    bufferevent_free(bev); /* BEV_OPT_CLOSE_ON_FREE: closes the fd too */
}

/* Input arrived: move it to the output buffer, uppercased on the way. */
static void read_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    struct evbuffer *in = bufferevent_get_input(bev);
#ifdef LIBEVENT_UNTUNED
    char buf[BUF_SIZE];
    int n;
    while ((n = evbuffer_remove(in, buf, sizeof buf)) > 0) {
        upcase(buf, (size_t)n);
        bufferevent_write(bev, buf, (size_t)n);
    }
#else
    /* Uppercase the input where it lies, then hand its chunks to the
     * output: no copy. */
    struct evbuffer *out = bufferevent_get_output(bev);
    struct evbuffer_iovec v[MAX_VECS];
    while (evbuffer_get_length(in) > 0) {
        int n = evbuffer_peek(in, -1, NULL, v, MAX_VECS);
        if (n > MAX_VECS)
            n = MAX_VECS; /* more chunks than v holds: the next turn of the loop */
        size_t done = 0;
        for (int i = 0; i < n; i++) {
            upcase(v[i].iov_base, v[i].iov_len);
            done += v[i].iov_len;
        }
        if (done == evbuffer_get_length(in))
            evbuffer_add_buffer(out, in); /* moves the chunks */
        else if (evbuffer_remove_buffer(in, out, done) <= 0)
            break;
    }
#endif
}

/* The output drained after the client half-closed: we owe it nothing. */
static void drained_cb(struct bufferevent *bev, void *arg)
{
    (void)arg;
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_close(bev);
}

static void event_cb(struct bufferevent *bev, short what, void *arg)
{
    (void)arg;
    if (what & BEV_EVENT_ERROR) {
        conn_close(bev); /* ECONNRESET and friends: drop this client only */
        return;
    }
    if (what & BEV_EVENT_EOF) {
        /* Half-close: send what is still owed, then close. */
        if (evbuffer_get_length(bufferevent_get_output(bev)) == 0) {
            conn_close(bev);
            return;
        }
        bufferevent_disable(bev, EV_READ);
        bufferevent_setcb(bev, NULL, drained_cb, event_cb, NULL);
    }
}

/* ---------- accepting ---------------------------------------------------------- */

static void accept_cb(struct evconnlistener *lst, evutil_socket_t fd, struct sockaddr *sa,
                      int len, void *arg)
{
    (void)len;
    (void)arg;
    struct event_base *base = evconnlistener_get_base(lst);
    struct bufferevent *bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        unix_warn("bufferevent_socket_new", "client");
        close(fd);
        return;
    }
    if (verbose) {
        char name[ADDR_STRLEN];
        fprintf(stderr, "connect %s\n", sockaddr_str(sa, name, sizeof name));
    }
#ifndef LIBEVENT_UNTUNED
    int one = 1;
    if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == -1)
        unix_warn("setsockopt TCP_NODELAY", "client");
    if (bufferevent_set_max_single_read(bev, MAX_READ) == -1)
        unix_warn("bufferevent_set_max_single_read", "client");
#endif
    bufferevent_setcb(bev, read_cb, NULL, event_cb, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* accept() failed (EMFILE, ...): say so and keep serving the others. */
static void accept_error_cb(struct evconnlistener *lst, void *arg)
{
    (void)lst;
    (void)arg;
    unix_warn("accept", "listen fd");
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct bench_loop b;
    bench_open(&b, argc, argv, accept_cb, accept_error_cb);
    verbose = b.opts.verbose;
    bench_run(&b);

    /* Connections still open at exit are not tracked here: the process
     * exit closes their fds (a lab server would free each one). */
    bench_close(&b);
    return 0;
}
