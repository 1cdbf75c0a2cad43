/*
 * 02-fork: a process-per-connection uppercase-echo server.
 *
 * The parent only accepts.  For each connection it fork()s a child that
 * serves that one client with lab 01's loop and exits when the client
 * leaves, so any number of clients are served at once.  Two processes now
 * hold the connected socket, and each must close the copy it does not use:
 * the child closes the listening socket, the parent closes connfd (if the
 * parent kept it, the connection would stay open after the child is done,
 * and the client would never see EOF).  A child that exits stays a zombie
 * until its parent waits for it, so a SIGCHLD handler reaps every finished
 * child.
 *
 * What it leaves out: a process per client costs a fork() per connect and
 * a few hundred KiB of kernel and memory state per client.  Lab 03 uses a
 * thread per client instead; labs 04-08 serve every client in one thread.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* ---------- reaping children -------------------------------------------- */

/* Runs when one or more children have exited.  Signals do not queue: ten
 * children exiting at once may deliver a single SIGCHLD, so reap in a loop
 * until no finished child is left.  WNOHANG: never block here waiting for
 * children that are still serving.  waitpid() may change errno, and the
 * code we interrupted may be about to read it. */
static void sigchld_handler(int sig)
{
    (void)sig;
    int saved_errno = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0)
        ;
    errno = saved_errno;
}

static void install_reaper(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sigchld_handler;
    sigemptyset(&sa.sa_mask);
    /* SA_RESTART: a blocked accept() resumes after the handler instead of
     * failing with EINTR (Accept() retries EINTR too, belt and braces).
     * SA_NOCLDSTOP: stopped children are not our business. */
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL) == -1)
        unix_error("sigaction", "SIGCHLD");
}

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

/* ---------- main ---------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    parse_args(argc, argv, &opts);
    Ignore_sigpipe(); /* belt and braces: writen() already uses MSG_NOSIGNAL */
    install_reaper(); /* before the first fork: no child may go unreaped */

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int connfd = Accept(listenfd, (struct sockaddr *)&peer, &len);
        if (opts.verbose)
            err_msg("connect %s", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
        pid_t pid = fork();
        if (pid == -1) {
            /* Out of processes or memory: drop this client, keep serving
             * the others (they are in their own processes anyway). */
            unix_warn("fork", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
            close(connfd);
            continue;
        }
        if (pid == 0) {
            /* The child: serves this client only, never accepts. */
            close(listenfd);
            serve_client(connfd);
            close(connfd); /* after close, the kernel sends our FIN */
            if (opts.verbose)
                err_msg("close %s", name);
            _exit(0); /* never fall back into the accept loop */
        }
        /* The parent: the child has its own copy of connfd.  Ours would
         * keep the connection open after the child closes its copy. */
        close(connfd);
    }
}
