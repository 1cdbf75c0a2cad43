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
 * SIGTERM (or SIGINT) ends the whole server.  The parent is the only
 * process anyone knows the pid of; if it simply died, its children would
 * keep serving their clients with nobody left to stop them.  So the parent
 * keeps the pids of its live children, and its stop handler sends each of
 * them SIGTERM, waits for them, and exits.
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
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUF_SIZE 4096

/* ---------- the live children --------------------------------------------- */

/* The pids of the children still serving.  The parent adds each new child
 * right after fork(); the SIGCHLD handler removes the ones it reaps; the
 * stop handler signals the rest.  The parent touches the table only with
 * those signals blocked (guard_children), and each handler blocks the
 * other, so no two of them ever see it half-changed. */
static pid_t *children;
static size_t n_children, cap_children;

/* Make room for one more child (before the fork, so that a full table
 * drops one client instead of losing track of a running child).  0, or -1
 * when memory ran out. */
static int reserve_child(void)
{
    if (n_children < cap_children)
        return 0;
    size_t cap = cap_children ? 2 * cap_children : 64;
    pid_t *p = realloc(children, cap * sizeof *p);
    if (p == NULL)
        return -1;
    children = p;
    cap_children = cap;
    return 0;
}

static void forget_child(pid_t pid)
{
    for (size_t i = 0; i < n_children; i++)
        if (children[i] == pid) {
            children[i] = children[--n_children];
            return;
        }
}

/* Block the signals whose handlers read or change the table (saving the
 * old mask in *old), and put the old mask back. */
static void guard_children(sigset_t *old)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, old) == -1)
        unix_error("sigprocmask", "SIG_BLOCK");
}

static void unguard_children(const sigset_t *old)
{
    if (sigprocmask(SIG_SETMASK, old, NULL) == -1)
        unix_error("sigprocmask", "SIG_SETMASK");
}

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
    pid_t pid;
    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0)
        forget_child(pid);
    errno = saved_errno;
}

/* SIGTERM or SIGINT: end every child, then the parent.  Only
 * async-signal-safe calls (kill, waitpid, _exit): the signal may arrive
 * anywhere in the accept loop.  SIGCHLD is blocked while this runs, so
 * the waitpid() here reaps the children itself. */
static void stop_handler(int sig)
{
    (void)sig;
    for (size_t i = 0; i < n_children; i++)
        kill(children[i], SIGTERM);
    while (waitpid(-1, NULL, 0) > 0 || errno == EINTR)
        ;
    _exit(0);
}

static void install_handlers(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = sigchld_handler;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM); /* the stop handler must not run mid-update */
    sigaddset(&sa.sa_mask, SIGINT);
    /* SA_RESTART: a blocked accept() resumes after the handler instead of
     * failing with EINTR (Accept() retries EINTR too, belt and braces).
     * SA_NOCLDSTOP: stopped children are not our business. */
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL) == -1)
        unix_error("sigaction", "SIGCHLD");

    sa.sa_handler = stop_handler;
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGCHLD); /* nor the reaper while it stops */
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGINT);
    sa.sa_flags = 0;
    if (sigaction(SIGTERM, &sa, NULL) == -1 || sigaction(SIGINT, &sa, NULL) == -1)
        unix_error("sigaction", "SIGTERM");
}

/* In a new child: the parent's handlers are not its business.  SIGTERM
 * back to its default (it ends the child), SIGCHLD too. */
static void child_signals(void)
{
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
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
    install_handlers(); /* before the first fork: no child may go unreaped or unstopped */

    int listenfd = Tcp_listen(opts.addr, opts.port);
    Announce_listening(listenfd);

    for (;;) {
        struct sockaddr_storage peer;
        socklen_t len = sizeof peer;
        char name[ADDR_STRLEN];

        int connfd = Accept(listenfd, (struct sockaddr *)&peer, &len);
        if (opts.verbose)
            err_msg("connect %s", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
        /* From before the fork until the child is in the table, neither the
         * reaper nor the stop handler may run: the child could otherwise
         * exit unrecorded, or be missed by a stop. */
        sigset_t old;
        guard_children(&old);
        pid_t pid = -1;
        if (reserve_child() == -1)
            errno = ENOMEM;
        else
            pid = fork();
        if (pid == -1) {
            /* Out of processes or memory: drop this client, keep serving
             * the others (they are in their own processes anyway). */
            unguard_children(&old);
            unix_warn("fork", sockaddr_str((struct sockaddr *)&peer, name, sizeof name));
            close(connfd);
            continue;
        }
        if (pid == 0) {
            /* The child: serves this client only, never accepts.  A
             * SIGTERM that came meanwhile is delivered at the unblock,
             * with its default action: it ends this child. */
            child_signals();
            unguard_children(&old);
            close(listenfd);
            serve_client(connfd);
            close(connfd); /* after close, the kernel sends our FIN */
            if (opts.verbose)
                err_msg("close %s", name);
            _exit(0); /* never fall back into the accept loop */
        }
        children[n_children++] = pid;
        unguard_children(&old);
        /* The parent: the child has its own copy of connfd.  Ours would
         * keep the connection open after the child closes its copy. */
        close(connfd);
    }
}
