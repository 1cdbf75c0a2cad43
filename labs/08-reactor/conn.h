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
 */
#ifndef NETLABS_CONN_H
#define NETLABS_CONN_H

#include <stddef.h>

#include "bufpool.h"
#include "reactor.h"

struct conn;

struct conn_server {
    struct reactor *r;
    struct bufpool *pool;
    /* The application: bytes arrived on c.  Returns how many of the n
     * bytes it used; the rest are handed again, with more, next time. */
    size_t (*on_data)(struct conn *c, char *data, size_t n);
    size_t high_water; /* stop reading a connection with this much output waiting */
    size_t low_water;  /* ... and read again below this */
    int verbose;       /* log connect/close on stderr */
    /* Filled in by the layer: */
    int listenfd;
    int spare_fd;      /* closed and reopened to refuse a client on EMFILE */
    size_t nconns;     /* connections open now */
    struct conn *conns;
};

/* Start accepting on listenfd (made non-blocking here).  The fields
 * above "filled in" must be set.  0, or -1 with errno. */
int conn_server_start(struct conn_server *s, int listenfd);

/* Close every connection and the spare fd (not listenfd). */
void conn_server_stop(struct conn_server *s);

/* Queue n bytes for c.  0, or -1 if the pool refused: the connection is
 * then marked to be closed once on_data returns. */
int conn_send(struct conn *c, const void *data, size_t n);

#endif
