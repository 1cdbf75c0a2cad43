/*
 * 01-blocking: an iterative uppercase-echo server.  YOUR TASK.
 *
 * One process, one thread, one client at a time: accept a connection,
 * echo its bytes back in uppercase until it closes, then accept the next.
 * Read labs/01-blocking/README.md first; it walks through every call.
 *
 * The starter compiles and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=01`.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* ---------- listening socket -------------------------------------------- */

static int open_listener(const char *addr, int port)
{
    /* TODO 1: fill a struct sockaddr_in for addr:port (inet_pton, htons),
     * create a TCP socket (Socket), set SO_REUSEADDR (Setsockopt), bind it
     * (Bind) and listen (Listen) with a backlog of SOMAXCONN.
     * Return the listening fd. */
    (void)addr;
    (void)port;
    app_error("TODO 1: open_listener() is not written yet");
}

/* ---------- the service --------------------------------------------------- */

/* Echo one connection until the client closes its side.  Must return
 * (never exit) whatever the client does. */
static void serve_client(int connfd)
{
    /* TODO 3: loop: read() up to BUF_SIZE bytes; 0 means EOF (return);
     * -1 with EINTR means try again; any other -1 means this client is
     * gone (return).  upcase() the bytes and writen() them all back; if
     * writen() fails the client has gone (return). */
    (void)connfd;
}

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe();

    int listenfd = open_listener(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        /* TODO 2: Accept() a connection, serve_client() it, close() it.
         * With -v, log "connect ADDR:PORT" and "close ADDR:PORT" to
         * stderr: err_msg("connect %s", name) prints one such line, and
         * sockaddr_str() formats the peer address. */
        (void)serve_client;
        app_error("TODO 2: the accept loop is not written yet");
    }
}
