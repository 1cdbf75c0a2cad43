/*
 * 02-fork: a process-per-connection uppercase-echo server.  YOUR TASK.
 *
 * The parent only accepts.  For each connection it fork()s a child that
 * serves that one client and exits when the client leaves, so any number
 * of clients are served at once.  A SIGCHLD handler reaps finished
 * children so that none stays a zombie.  SIGTERM or SIGINT to the parent
 * ends the whole server, its children too.
 * Read labs/02-fork/README.md first; it walks through every call.
 *
 * Given: serve_client() (lab 01's loop), main()'s setup and accept loop,
 *        and where each TODO goes.
 * Yours: TODO 1 install_reaper(), TODO 2 sigchld_handler(), TODO 3 the
 *        fork() in main(), TODO 4 the stop (stop_handler() and
 *        install_stop(), and whatever the parent must remember about its
 *        children to keep TODO 4's promise).  TODO 4 says what the code
 *        must guarantee, not how to write it; the handout's "Hints"
 *        section has the steps, if you want them.
 *
 * The starter compiles and runs, but stops at the first TODO.
 * Build with `make`, test with `make grade LAB=02`.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* ---------- reaping children -------------------------------------------- */

/* Runs when one or more children have exited. */
static void sigchld_handler(int sig)
{
    (void)sig;
    /* TODO 2: reap every finished child: call waitpid(-1, NULL, WNOHANG)
     * in a loop until it stops returning a pid (> 0).  A loop, because
     * signals do not queue: ten children exiting at once may deliver one
     * SIGCHLD.  WNOHANG, because children still serving must not block
     * the handler.  Save errno on entry and restore it on exit: waitpid()
     * may change it under the code this handler interrupted. */
}

static void install_reaper(void)
{
    /* TODO 1: install sigchld_handler for SIGCHLD with sigaction():
     * a zeroed struct sigaction, sa_handler = sigchld_handler, an empty
     * sa_mask (sigemptyset), sa_flags = SA_RESTART | SA_NOCLDSTOP.
     * On failure: unix_error("sigaction", "SIGCHLD"). */
    (void)sigchld_handler;
    app_error("TODO 1: install_reaper() is not written yet");
}

/* ---------- stopping the whole server ----------------------------------- */

/* Runs in the parent on SIGTERM or SIGINT.  (TODO 4, with install_stop().) */
static void stop_handler(int sig)
{
    (void)sig;
}

static void install_stop(void)
{
    /* TODO 4: SIGTERM or SIGINT to the parent (`kill PID`, a service
     * manager, Ctrl-C) ends the whole server.  Contract:
     *   - every child still serving a client ends too: a child that
     *     outlives its parent goes on serving, and nobody knows its pid
     *     to stop it;
     *   - the parent exits with status 0, after its children have ended
     *     and been reaped (no zombie, no orphan);
     *   - it holds whenever the signal lands: in accept(), between a
     *     fork() and the line after it, while the reaper runs.  No child
     *     is missed, and no pid is signalled after it was reaped (by then
     *     the pid may be another process's);
     *   - stop_handler() calls only async-signal-safe functions;
     *   - a child is not the parent: SIGTERM or SIGINT sent to a child
     *     ends that child, and the parent's handlers never run in it.
     * Installed here, before the first fork(): main() already calls it.
     * Yours: both bodies, and the bookkeeping the promise needs (it may
     * change your TODO 2 handler and TODO 3 fork).  The server runs without
     * TODO 4; only the SIGTERM test fails. */
    (void)stop_handler;
}

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

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe();
    install_reaper(); /* before the first fork: no child may go unreaped */
    install_stop();   /* ... or unstopped */

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int connfd = Accept(listenfd, (struct sockaddr *)&peer, &len);
        if (opts.verbose)
            err_msg("connect %s", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
        /* TODO 3: fork().
         *   -1: unix_warn("fork", ...), close(connfd), continue: one
         *       client we cannot serve must not stop the server.
         *    0: the child.  close(listenfd) (children never accept),
         *       serve_client(connfd), close(connfd), with -v log
         *       "close ADDR:PORT" (err_msg, with name), then _exit(0): a child
         *       that returns into this loop would start accepting too.
         *   >0: the parent.  close(connfd): the child has its own copy,
         *       and the parent's copy would keep the connection open (the
         *       client would never see EOF).  Then accept the next. */
        (void)serve_client;
        app_error("TODO 3: fork() is not written yet (connection fd %d)", connfd);
    }
}
