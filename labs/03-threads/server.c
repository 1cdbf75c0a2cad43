/*
 * 03-threads: a thread-per-connection uppercase-echo server.  YOUR TASK.
 *
 * The main thread only accepts.  For each connection it starts a detached
 * thread that serves that one client, closes the connection and exits.
 * Read labs/03-threads/README.md first; it walks through every call.
 *
 * serve_client() is lab 01's loop, already written.  The starter compiles
 * and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=03`; the ThreadSanitizer
 * build is `make SAN=thread`.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* Set once in main before the first thread starts, only read after:
 * pthread_create() orders the write before every thread's reads. */
static int verbose;

/* ---------- the service --------------------------------------------------- */

/* Echo one connection until the client closes its side.  Returns when the
 * client is done or misbehaves; never exits the server.  (Lab 01's.) */
static void serve_client(int connfd)
{
    char buf[BUF_SIZE];

    for (;;) {
        ssize_t n = read(connfd, buf, sizeof buf);
        if (n == 0)
            return; /* EOF: the client half-closed; we owe it nothing more */
        if (n == -1) {
            if (errno == EINTR)
                continue;
            if (errno != ECONNRESET) /* a reset is the client's choice */
                unix_warn("read", "client");
            return;
        }
        upcase(buf, (size_t)n);
        if (writen(connfd, buf, (size_t)n) == -1) {
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("write", "client");
            return;
        }
    }
}

/* ---------- one thread per client ---------------------------------------- */

static void *client_thread(void *arg)
{
    /* TODO 2: the thread's whole life.  Get the fd back out of arg by
     * value: int connfd = (int)(intptr_t)arg.  With -v (the verbose
     * global), remember the peer's name first (peer_str), since after a
     * reset it is gone.  serve_client(connfd), then close(connfd): the
     * threads share one fd table, so this is the only copy and nobody
     * else will close it.  With -v, log "close ADDR:PORT" to stderr
     * (err_msg).  Return NULL, which ends the thread. */
    (void)arg;
    (void)serve_client;
    return NULL;
}

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe();
    verbose = opts.verbose;

    /* TODO 1: make a pthread_attr_t whose threads start detached
     * (pthread_attr_init, pthread_attr_setdetachstate with
     * PTHREAD_CREATE_DETACHED).  Nobody will join the client threads, and
     * only a detached thread's stack is freed when it returns.  Both calls
     * return an error number (not -1 and errno): on failure,
     * posix_error(rc, "pthread_attr", "detached"). */
    app_error("TODO 1: the detached thread attributes are not set up yet");

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int connfd = Accept(listenfd, (struct sockaddr *)&peer, &len);
        if (opts.verbose)
            err_msg("connect %s", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
        /* TODO 3: start a thread for this client with pthread_create(&tid,
         * &attr, client_thread, (void *)(intptr_t)connfd): the fd travels
         * by value inside the pointer.  Never pass &connfd: every thread
         * would get the address of this one variable, which the next
         * accept() overwrites before the thread has read it.
         * pthread_create() returns an error number: on failure report
         * it with posix_warn(rc, "pthread_create", ...), close(connfd) and
         * go on accepting (one client we cannot serve must not stop the
         * server).  Do not close connfd after a successful create: the
         * thread owns it now. */
        (void)client_thread;
        app_error("TODO 3: no thread is started for connection fd %d yet", connfd);
    }
}
