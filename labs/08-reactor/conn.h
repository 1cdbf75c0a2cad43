/*
 * conn.h - buffered TCP connections on top of reactor.h and bufpool.h.
 *
 * The layer between the event loop and the application (muduo calls it
 * TcpConnection, libevent bufferevent):
 *
 *   - it accepts on a listening socket (non-blocking, until EAGAIN, with
 *     a spare fd kept for EMFILE);
 *   - it reads each connection straight into a pooled input buffer and
 *     hands the bytes to the application's on_data callback;
 *   - conn_send() appends to a pooled output buffer that is written out
 *     as the socket accepts it (REACTOR_WRITE only while output waits);
 *   - a buffer goes back to the pool the moment it is empty, so an idle
 *     connection holds no buffer at all;
 *   - back-pressure: once output waiting for a connection reaches
 *     high_water bytes, that connection is not read any more until the
 *     output drains below low_water.  A client that sends without reading
 *     cannot make the server hold more than high_water for it.
 *   - EOF from the client: the output still owed is sent, then the
 *     connection is closed.  Errors and resets close it.  Nothing exits.
 *   - the application keeps its own state per connection (a context
 *     pointer), and can end a connection itself: conn_close() at once, or
 *     conn_shutdown(), which sends what is owed first.
 */
#ifndef NETLABS_CONN_H
#define NETLABS_CONN_H

#include <stddef.h>

#include "bufpool.h"
#include "reactor.h"

struct conn;
struct sockaddr;

struct conn_server {
    struct reactor *r;
    struct bufpool *pool;
    /* The application.  Each callback gets the connection and its context
     * (conn_set_ctx; NULL until set).
     *
     * on_open (optional): c was just accepted; set up its context here.
     * Return -1 to refuse it (it is closed at once, on_close is not
     * called).
     *
     * on_data: bytes arrived on c.  Returns how many of the n bytes it
     * used; the rest are handed again, with more, next time (so a message
     * that arrived in part simply waits in the buffer).  It may call
     * conn_send(), conn_shutdown() and conn_close() on c.
     *
     * on_close (optional): c is about to be freed (the client left, an
     * error, conn_close(), or conn_server_stop()); free the context.
     * Sending is no longer possible. */
    int (*on_open)(struct conn *c);
    size_t (*on_data)(struct conn *c, void *ctx, char *data, size_t n);
    void (*on_close)(struct conn *c, void *ctx);
    void *app;         /* the application's own state, for its callbacks */
    size_t high_water; /* stop reading a connection with this much output waiting */
    size_t low_water;  /* ... and read again below this */
    int verbose;       /* log connect/close on stderr */
    /* Filled in by the layer: */
    int listenfd;
    int spare_fd;      /* closed and reopened to refuse a client on EMFILE */
    int linger_fd;     /* a timerfd: the end of the oldest lingering close */
    size_t nconns;     /* connections open now */
    struct conn *conns;
    struct conn *linger_head, *linger_tail; /* lingering, oldest first */
};

/* How long conn_shutdown() waits for the client's EOF, at most. */
#define CONN_LINGER_MS 2000

/* Start accepting on listenfd (made non-blocking here).  The fields
 * above "filled in" must be set.  listenfd may be -1: the server then
 * accepts nothing itself and only serves what conn_adopt() gives it.  0,
 * or -1 with errno. */
int conn_server_start(struct conn_server *s, int listenfd);

/* Serve fd, a connection accepted somewhere else (by an acceptor thread
 * that hands connections to several loops, say), exactly as if this
 * server had accepted it: on_open, reading, on_close.  fd must already be
 * non-blocking (accept4 with SOCK_NONBLOCK); peer is its address, for
 * logs.  From now on fd belongs to the server: if it cannot be served
 * (no memory, fd beyond the reactor's table) it is closed at once.  Call
 * it from the thread that runs s's reactor. */
void conn_adopt(struct conn_server *s, int fd, const struct sockaddr *peer);

/* Close every connection, the spare fd and the linger timer (not
 * listenfd). */
void conn_server_stop(struct conn_server *s);

/* Queue n bytes for c.  0, or -1 if the pool refused or c is closing:
 * the connection is then marked to be closed once on_data returns. */
int conn_send(struct conn *c, const void *data, size_t n);

/* Close c: at once, dropping any output not yet sent.  Safe inside
 * on_data (c is closed when on_data returns, and on_data is not called
 * for it again). */
void conn_close(struct conn *c);

/* The polite end of a connection: stop handing input to on_data, send
 * everything queued, then shut down the sending side (the client reads
 * EOF after the last byte), discard whatever the client still sends until
 * its EOF or CONN_LINGER_MS, and close.  Why not close() at once: a close
 * with unread input makes the kernel send a reset, and a reset can destroy
 * replies still in flight to the client. */
void conn_shutdown(struct conn *c);

/* The application still owes c replies that are not queued yet (work in
 * another thread, a timer): when the client half-closes, wait for them
 * instead of closing as soon as the output is sent.  Each conn_hold()
 * needs one conn_release().  Outside a callback, conn_release() may close
 * c at once (EOF seen, nothing left to send): make it the last use of c.
 * After conn_shutdown() holds no longer count: the application is done. */
void conn_hold(struct conn *c);
void conn_release(struct conn *c);

void conn_set_ctx(struct conn *c, void *ctx);
void *conn_ctx(const struct conn *c);
struct conn_server *conn_srv(const struct conn *c);
/* "ADDR:PORT" of the client, for logs. */
const char *conn_name(const struct conn *c);
/* Bytes queued for c and not yet sent. */
size_t conn_pending(const struct conn *c);

#endif
