/*
 * 03-threads: a thread-per-connection uppercase-echo server.
 *
 * The main thread only accepts.  For each connection it starts a thread
 * that serves that one client with lab 01's loop, closes the connection
 * and exits.  Unlike lab 02's children, the threads share one address
 * space and one fd table, so:
 *   - the fd is handed to the thread by value, inside the pointer
 *     argument; passing &connfd would hand every thread the same variable,
 *     which the next accept() overwrites before the thread has read it;
 *   - the thread, not main, closes connfd (there is only one copy);
 *   - the threads are detached: nobody joins them, so a finished thread's
 *     stack is freed at once instead of waiting for a pthread_join();
 *   - state shared between threads needs a lock.  This service shares
 *     none (each thread has its own buffer on its own stack), on purpose.
 *
 * What it leaves out: every client costs a thread, and every thread a
 * stack (8 MiB of address space by default) and a kernel task; 10,000
 * clients means 10,000 threads.  Labs 04-08 serve every client in one
 * thread.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* Set once in main before the first thread starts, only read after:
 * pthread_create() orders the write before every thread's reads. */
static int verbose;

/* ---------- the service --------------------------------------------------- */

/* Echo one connection until the client closes its side.  Returns when the
 * client is done or misbehaves; never exits the server. */
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
        /* writen() loops over short writes and, via MSG_NOSIGNAL, fails
         * with EPIPE instead of killing us if the client has gone. */
        if (writen(connfd, buf, (size_t)n) == -1) {
            if (errno != EPIPE && errno != ECONNRESET)
                unix_warn("write", "client");
            return;
        }
    }
}

/* ---------- one thread per client ---------------------------------------- */

/* The thread's whole life: serve one client, close it, return (which ends
 * the thread; being detached, its stack goes back at once). */
static void *client_thread(void *arg)
{
    int connfd = (int)(intptr_t)arg; /* the fd itself, not a pointer to it */
    char name[ADDR_STRLEN];

    if (verbose)
        peer_str(connfd, name, sizeof name); /* before a reset forgets it */
    serve_client(connfd);
    close(connfd); /* the only copy: threads share main's fd table */
    if (verbose)
        err_msg("close %s", name);
    return NULL;
}

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe(); /* belt and braces: writen() already uses MSG_NOSIGNAL */
    verbose = opts.verbose;

    /* Every thread starts detached: no one will join it. */
    pthread_attr_t attr;
    int rc = pthread_attr_init(&attr);
    if (rc == 0)
        rc = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (rc != 0)
        posix_error(rc, "pthread_attr", "detached");

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int connfd = Accept(listenfd, (struct sockaddr *)&peer, &len);
        if (opts.verbose)
            err_msg("connect %s", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
        pthread_t tid;
        rc = pthread_create(&tid, &attr, client_thread, (void *)(intptr_t)connfd);
        if (rc != 0) {
            /* Out of threads or memory: drop this client, keep serving
             * the others.  pthreads return the error instead of setting
             * errno: posix_warn() reports that number. */
            posix_warn(rc, "pthread_create",
                       sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
            close(connfd);
        }
    }
}
