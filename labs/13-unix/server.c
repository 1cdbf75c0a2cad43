/*
 * 13-unix: the uppercase echo over a Unix-domain socket, who is on the
 * other end of it, and connections handed from one process to another.
 *
 *   server [-p PORT] [-a ADDR] [-v]                TCP, like every lab
 *   server -u PATH|@NAME [--allow-uid UID] [-v]    a Unix-domain stream socket
 *   server -w N [-p PORT] [-a ADDR] [-v]           prefork: a TCP master, N workers
 *
 * -u PATH binds a socket file (created 0600: only our uid may connect;
 * removed at exit).  A socket file left by a server that was killed is
 * replaced; one that a live server listens on is never taken: we ask by
 * connecting to it first.  -u @NAME binds NAME in Linux's abstract
 * namespace instead (no file; gone when the socket closes).  Each Unix
 * peer's pid, uid and gid come from the kernel (SO_PEERCRED); with
 * --allow-uid UID the socket file is 0666 and that check is the gate:
 * only UID and the server's own uid are served, anyone else is closed at
 * once.
 *
 * -w N: the master listens on TCP, accepts, and hands each connection to
 * one of N worker processes (in turn) over a socketpair with SCM_RIGHTS,
 * closing its own copy at once.  It replaces a worker that dies, and
 * SIGTERM/SIGINT end the whole tree.  Only the master ever accepts, so a
 * new connection wakes one process, not N (the thundering herd).
 *
 * The serving itself is the same in every mode: echoloop.c (given).
 *
 * YOUR TASK.  Given: the command line, the signals, accept_one(), serve(),
 * prefork(), on_channel() and worker_main(), main().  Yours:
 *   TODO 1 unix_address()      the address: a path, or an abstract name
 *   TODO 2 unix_listen()       the socket file: look before you unlink; its mode
 *   TODO 3 unix_remove()       at exit, remove the file, if it is still ours
 *   TODO 4 on_listener()       accept, and ask a Unix peer who it is
 *   TODO 5 unix_peer_allowed() SO_PEERCRED and --allow-uid
 *   TODO 6, 7 (fdpass.c)       send_fd(), recv_fd(): SCM_RIGHTS
 *   TODO 8 spawn_worker()      socketpair + fork: what each side keeps
 *   TODO 9 hand_over()         a connection to the next worker, in turn
 *   TODO 10 reap_workers(), stop_workers()   the tree's life and death
 * Each TODO says what the code must guarantee, not how to write it; the
 * handout's "Hints" section has the steps, if you want them.
 * Read labs/13-unix/README.md first.
 *
 * The starter compiles and runs, but stops at the first TODO it reaches.
 * Build with `make`, test with `make grade LAB=13`.
 */
#define _GNU_SOURCE /* struct ucred and SO_PEERCRED; accept4() */

#include "echoloop.h"
#include "fdpass.h"
#include "wrap.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_WORKERS 64

/* ---------- the command line ------------------------------------------------ */

struct opts {
    const char *addr; /* -a */
    int port;         /* -p */
    int verbose;      /* -v */
    const char *unix_name; /* -u PATH or @NAME; NULL: TCP */
    int allow_set;    /* --allow-uid given */
    uid_t allow_uid;
    int workers;      /* -w N; 0: no prefork */
};

static const char *prog = "server";

static void usage(FILE *to)
{
    fprintf(to, "usage: %s [-p PORT] [-a ADDR] [-v]\n"
                "       %s -u PATH|@NAME [--allow-uid UID] [-v]\n"
                "       %s -w N [-p PORT] [-a ADDR] [-v]\n"
                "  -p PORT          TCP port, 0-65535 (default %d; 0 = any free port)\n"
                "  -a ADDR          IPv4 address (default %s)\n"
                "  -u PATH          a Unix-domain socket file instead of TCP (created 0600)\n"
                "  -u @NAME         a name in the abstract namespace instead (no file)\n"
                "  --allow-uid UID  with -u: serve only UID and our own uid (the file is 0666)\n"
                "  -w N             prefork: a TCP master hands connections to N workers (1-%d)\n"
                "  -v               verbose: log connections, peers and workers\n",
            prog, prog, prog, DEFAULT_PORT, DEFAULT_ADDR, MAX_WORKERS);
}

static void bad_args(const char *why, const char *what)
{
    fprintf(stderr, "%s: %s%s%s%s\n", prog, why, what ? ": '" : "", what ? what : "", what ? "'" : "");
    usage(stderr);
    exit(2);
}

/* A decimal number from lo to hi, digits only (no sign, no blanks). */
static long number(const char *s, long lo, long hi, const char *why)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!isdigit((unsigned char)s[0]) || errno || *end != '\0' || v < lo || v > hi)
        bad_args(why, s);
    return v;
}

static void parse(int argc, char **argv, struct opts *o)
{
    o->addr = DEFAULT_ADDR;
    o->port = DEFAULT_PORT;
    o->verbose = 0;
    o->unix_name = NULL;
    o->allow_set = 0;
    o->allow_uid = 0;
    o->workers = 0;
    int tcp_given = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "-v") == 0) {
            o->verbose++;
            continue;
        }
        if (strcmp(a, "-p") && strcmp(a, "-a") && strcmp(a, "-u") && strcmp(a, "-w") &&
            strcmp(a, "--allow-uid"))
            bad_args("unknown argument", a);
        if (i + 1 >= argc)
            bad_args("option needs a value", a);
        const char *val = argv[++i];
        if (strcmp(a, "-p") == 0) {
            o->port = (int)number(val, 0, 65535, "port must be a number from 0 to 65535");
            tcp_given = 1;
        } else if (strcmp(a, "-a") == 0) {
            struct in_addr tmp;
            if (inet_pton(AF_INET, val, &tmp) != 1)
                bad_args("address must be a numeric IPv4 address", val);
            o->addr = val;
            tcp_given = 1;
        } else if (strcmp(a, "-u") == 0) {
            o->unix_name = val;
        } else if (strcmp(a, "-w") == 0) {
            o->workers = (int)number(val, 1, MAX_WORKERS, "-w needs a number of workers from 1 to 64");
        } else {
            /* (uid_t)-1 is not a uid: it means "no change" to chown() and setreuid(). */
            o->allow_uid = (uid_t)number(val, 0, (long)UINT_MAX - 1, "--allow-uid needs a numeric uid");
            o->allow_set = 1;
        }
    }
    if (o->allow_set && !o->unix_name)
        bad_args("--allow-uid checks the peers of a Unix-domain socket: it needs -u", NULL);
    if (o->unix_name && o->workers)
        bad_args("-w hands TCP connections to workers: it cannot be combined with -u", NULL);
    if (o->unix_name && tcp_given)
        bad_args("-u listens on a Unix-domain socket: -p and -a are for TCP", NULL);
}

/* ---------- stopping, and children that exit -------------------------------- */

static volatile sig_atomic_t stop_requested;
static volatile sig_atomic_t child_exited;

static void on_stop(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_child(int sig)
{
    (void)sig;
    child_exited = 1;
}

static int keep_going(struct echo_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    return !stop_requested;
}

static int verbose;
static int spare_fd = -1;

/* accept4() on a non-blocking listener until the queue is empty.  Returns
 * a connection, or -1 when there is none to take now (errors that are not
 * the client's or the queue's are reported). */
static int accept_one(int listenfd, struct sockaddr_storage *peer, socklen_t *len)
{
    for (;;) {
        *len = sizeof *peer;
        int fd = accept4(listenfd, (struct sockaddr *)peer, len, SOCK_CLOEXEC);
        if (fd >= 0)
            return fd;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return -1;
        if (accept_error_is_transient(errno))
            continue;
        if (errno == EMFILE || errno == ENFILE) {
            /* Level-triggered, a client left in the queue keeps the
             * listener readable: refuse it with the spare fd, or spin. */
            int r = spare_fd_refuse(listenfd, &spare_fd);
            if (r == 1) {
                err_msg("accept: out of fds: closing a new client");
                continue;
            }
            if (r == 0)
                return -1;
        }
        unix_warn("accept4", "listening socket");
        return -1;
    }
}

/* ---------- Unix-domain addresses ----------------------------------------- */

struct unix_addr {
    const char *name;        /* as given: PATH or @NAME, for messages */
    int abstract;            /* @NAME: no file */
    struct sockaddr_un sun;
    socklen_t len;           /* the exact length to pass to bind()/connect() */
    int made_file;           /* we bound PATH: remove it at exit, if still ours */
    dev_t dev;               /* ... the file we created, as stat() saw it */
    ino_t ino;
};

/* Fill ua->sun and ua->len for name: "@NAME" is NAME in the abstract
 * namespace, anything else a path.  0, or -1 with errno set when the name
 * does not fit sun_path (ENAMETOOLONG) or is empty (EINVAL). */
static int unix_address(const char *name, struct unix_addr *ua)
{
    memset(ua, 0, sizeof *ua);
    ua->name = name;
    /* TODO 1: fill ua->sun, ua->len and ua->abstract for name.  Contract:
     *   - "@NAME": NAME in the abstract namespace: sun_path[0] is NUL and
     *     the name is the bytes after it; ua->len counts exactly those
     *     bytes (the kernel takes the length as part of the name);
     *   - anything else: a path, and ua->len covers the path and its NUL;
     *   - a path that does not fit sun_path with its NUL, or a NAME longer
     *     than sun_path minus its first byte: -1, errno ENAMETOOLONG, and
     *     nothing shortened is ever bound (main() then exits 2);
     *   - "" and "@": -1, errno EINVAL. */
    app_error("TODO 1: unix_address() is not written yet (-u %s)", name);
}

/* A listening Unix-domain stream socket at ua, its file (for a path)
 * created with exactly mode.  Exits 1, saying why, if the address belongs
 * to a live server or to something that is not a socket. */
static int unix_listen(struct unix_addr *ua, mode_t mode)
{
    /* TODO 2: a non-blocking, close-on-exec SOCK_STREAM socket listening
     * at ua.  Contract:
     *   - a path that exists and is not a socket is never removed: exit 1
     *     with a message that says it is not a socket;
     *   - a socket file that a live server listens on is never removed:
     *     exit 1 with a message naming the path and saying it is in use
     *     (ask the only way that cannot be wrong: connect to it;
     *     ECONNREFUSED is the one answer that means "nobody listens");
     *   - a stale socket file (nobody listens) is removed, and said so on
     *     stderr, and the path is bound afresh;
     *   - the file bind() creates has exactly `mode`, whatever umask the
     *     server was started with, from the moment it exists;
     *   - a name bind() finds in use (an abstract one, or a path another
     *     server bound in the meantime): exit 1, saying so;
     *   - for a path, ua->made_file, ua->dev and ua->ino say which file was
     *     created, for unix_remove(). */
    (void)mode;
    app_error("TODO 2: unix_listen() is not written yet (unix:%s)", ua->name);
}

/* At exit: remove the socket file we created, and only that one.  If the
 * path now names another file (someone removed ours and another server
 * bound the path), it is not ours to remove. */
static void unix_remove(const struct unix_addr *ua)
{
    /* TODO 3: if unix_listen() created a file, remove it, but only if the
     * path still names that very file (same device and inode): a file
     * another server created there since is not ours to remove.  An
     * abstract name needs nothing: it went when the socket was closed. */
    app_error("TODO 3: unix_remove() is not written yet (unix:%s)", ua->name);
}

/* ---------- serving one listener (TCP, or Unix with credentials) ---------- */

struct listener {
    int is_unix;
    int allow_set; /* --allow-uid */
    uid_t allow_uid;
    uid_t own_uid;
};

/* Who is on the other end of the Unix connection fd: the kernel recorded
 * the peer's pid, uid and gid when it called connect() (SO_PEERCRED).
 * Writes "unix pid P uid U gid G" into name.  1 if the peer may be
 * served; 0 if --allow-uid refuses it (logged, always). */
static int unix_peer_allowed(int fd, const struct listener *l, char *name, size_t len)
{
    /* TODO 5: ask the kernel who connected (SO_PEERCRED).  Contract:
     *   - name becomes "unix pid PID uid UID gid GID" (the log's format:
     *     with -v on_listener() logs "connect NAME");
     *   - returns 1 if the peer may be served: always without
     *     --allow-uid; with it (l->allow_set), only if its uid is
     *     l->allow_uid or l->own_uid;
     *   - a refused peer is logged on stderr, always (not only with -v),
     *     as "refuse NAME: ..." with its pid and uid, and 0 is returned;
     *   - if the credentials cannot be read, the peer is served only when
     *     nothing depends on them (no --allow-uid). */
    (void)l;
    (void)name;
    (void)len;
    app_error("TODO 5: unix_peer_allowed() is not written yet (fd %d)", fd);
}

static void on_listener(struct echo_loop *loop, int listenfd, void *arg)
{
    const struct listener *l = arg;
    /* TODO 4: the listener (TCP, or Unix when l->is_unix) is readable.
     * Contract:
     *   - every connection waiting in the queue is taken now (accept_one()
     *     returns -1 once none is left);
     *   - a TCP connection is named "ADDR:PORT", a Unix one by
     *     unix_peer_allowed(), and with -v logged as "connect NAME";
     *   - a refused Unix peer is closed at once: it reads EOF and never a
     *     byte of echo;
     *   - every other connection is served from now on by the loop
     *     (echo_add()). */
    (void)loop;
    (void)l;
    (void)unix_peer_allowed; /* (yours to call; this line only keeps the compiler quiet) */
    app_error("TODO 4: on_listener() is not written yet (listener %d)", listenfd);
}

/* One process serves everything: TCP, or the Unix socket ua. */
static int serve(const struct opts *o, struct unix_addr *ua, const sigset_t *waitmask)
{
    struct listener l = {.is_unix = ua != NULL, .allow_set = o->allow_set,
                         .allow_uid = o->allow_uid, .own_uid = geteuid()};
    int listenfd;
    if (ua) {
        /* With --allow-uid, anyone may connect and the credentials
         * decide; without it, the file's mode is the gate. */
        listenfd = unix_listen(ua, o->allow_set ? 0666 : 0600);
        printf("listening on unix:%s\n", ua->name);
        if (fflush(stdout) == EOF)
            unix_error("fflush", "stdout");
    } else {
        listenfd = Tcp_listen(o->addr, o->port);
        Set_nonblocking(listenfd);
        Announce_listening(listenfd);
    }
    struct echo_loop *loop = echo_loop_new(o->verbose);
    if (!loop || echo_watch(loop, listenfd, on_listener, &l) == -1)
        unix_error("epoll", NULL);
    int r = echo_run(loop, waitmask, keep_going, NULL);
    if (r == -1)
        unix_warn("epoll_pwait", NULL);
    echo_loop_free(loop); /* every connection */
    close(listenfd);
    if (ua)
        unix_remove(ua);
    return r == -1 ? 1 : 0;
}

/* ---------- prefork: a master and its workers ------------------------------- */

struct worker {
    pid_t pid;  /* 0: no process in this slot */
    int chan;   /* the master's end of the socketpair; -1: closed */
};

static struct worker *workers;
static int nworkers;
static int next_worker;             /* round robin: who gets the next connection */
static int master_listenfd = -1;
static struct echo_loop *master_loop;
static const sigset_t *master_waitmask;

/* In a worker: a connection arrived on the channel from the master. */
static void on_channel(struct echo_loop *loop, int chan, void *arg)
{
    int index = *(int *)arg;
    for (;;) {
        int fd = recv_fd(chan);
        if (fd == -2) {
            /* EOF: the master is gone (killed, or stopping).  A worker
             * without a master would serve its clients for ever and
             * nobody would stop it: leave. */
            echo_stop(loop);
            return;
        }
        if (fd == -1) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            unix_warnf("worker %d: recvmsg", index);
            if (errno == EBADMSG)
                continue;
            echo_stop(loop);
            return;
        }
        char name[96];
        peer_str(fd, name, sizeof name);
        if (verbose)
            err_msg("worker %d (pid %ld): connect %s", index, (long)getpid(), name);
        if (echo_add(loop, fd, name) == -1)
            unix_warn("echo_add", name);
    }
}

/* The life of a worker, in the child: serve what comes down chan until
 * SIGTERM or the master goes away.  Never returns. */
static void worker_main(int index, int chan)
{
    struct echo_loop *loop = echo_loop_new(verbose);
    if (!loop || set_nonblocking(chan) == -1 || echo_watch(loop, chan, on_channel, &index) == -1)
        unix_error("worker", "setup");
    int r = echo_run(loop, master_waitmask, keep_going, NULL);
    if (r == -1)
        unix_warn("epoll_pwait", NULL);
    echo_loop_free(loop);
    close(chan);
    exit(r == -1 ? 1 : 0);
}

/* Start the worker of slot i: a socketpair, then fork.  0, or -1 (the
 * slot stays empty; the master tries again later). */
static int spawn_worker(int i)
{
    /* TODO 8: start the worker of slot i.  Contract:
     *   - a Unix-domain channel pair (socketpair) joins master and worker;
     *     each send_fd() must arrive as one message, read whole by one
     *     recv_fd(), and never merge with the next;
     *   - the child keeps nothing of the master's but its own end of its
     *     own channel: no listener (it would keep the port open after the
     *     master died), no master's end of any channel (that worker would
     *     never see EOF), nothing the master allocated (the master's loop,
     *     the workers array, the spare fd); SIGCHLD back to its default;
     *     then it runs worker_main(i, its end), which never returns;
     *   - the master keeps only its end, non-blocking (a worker that falls
     *     behind must not stop the master), in workers[i] with the pid;
     *   - 0, or -1 after a warning with the slot left empty (pid 0, chan
     *     -1) and nothing leaked: master_keep_going() tries again. */
    (void)worker_main; /* (yours to call; this line only keeps the compiler quiet) */
    app_error("TODO 8: spawn_worker() is not written yet (worker %d)", i);
}

/* Reap every worker that exited, and start a new one in its slot. */
static void reap_workers(void)
{
    /* TODO 10: called after SIGCHLD.  Contract:
     *   - every child that has exited is reaped (signals coalesce: one
     *     SIGCHLD may stand for several), so none stays a zombie;
     *   - its slot is emptied (pid 0, chan closed and -1), and
     *     master_keep_going() starts a new worker there;
     *   - each death is logged on stderr: which worker, its pid, and its
     *     exit status or the signal that killed it. */
    app_error("TODO 10: reap_workers() is not written yet");
}

static int master_keep_going(struct echo_loop *loop, void *arg)
{
    (void)loop;
    (void)arg;
    if (stop_requested)
        return 0;
    if (child_exited) {
        child_exited = 0;
        reap_workers();
    }
    for (int i = 0; i < nworkers; i++)
        if (workers[i].pid == 0)
            spawn_worker(i);
    return 1;
}

/* Hand fd to the next worker in turn, skipping any that cannot take it,
 * then close our copy: a client socket the master kept would stay open
 * after the worker closed it (the client never sees EOF), and fill the
 * master's fd table. */
static void hand_over(int fd, const char *name)
{
    /* TODO 9: give the connection fd to a worker.  Contract:
     *   - workers take turns: worker next_worker first, then the next
     *     one, and so on round the slots (6 connections, one after
     *     another, to 3 workers: 2 each);
     *   - a worker that cannot take it now (EAGAIN) is skipped for this
     *     connection; one whose channel is broken (EPIPE, ECONNRESET) is
     *     dead: close that channel and mark it (chan -1); the reaper
     *     replaces the process;
     *   - whatever happens the master keeps no copy: fd is closed before
     *     returning (if no worker could take it, log that on stderr). */
    (void)name;
    (void)next_worker;
    app_error("TODO 9: hand_over() is not written yet (fd %d)", fd);
}

static void on_master_listener(struct echo_loop *loop, int listenfd, void *arg)
{
    (void)loop;
    (void)arg;
    struct sockaddr_storage peer;
    socklen_t len;
    int fd;
    while ((fd = accept_one(listenfd, &peer, &len)) >= 0) {
        char name[ADDR_STRLEN];
        sockaddr_str((struct sockaddr *)&peer, name, sizeof name);
        hand_over(fd, name);
    }
}

/* SIGTERM the workers, wait for them (1 s), SIGKILL any that is left. */
static void stop_workers(void)
{
    /* TODO 10 (continued): the master was told to stop.  Contract:
     *   - every worker is told to stop (SIGTERM, and/or EOF on its
     *     channel) and every channel is closed;
     *   - the master returns only once every worker has exited and been
     *     reaped: within about a second, after which SIGKILL ends a worker
     *     that did not stop (log it). */
    app_error("TODO 10: stop_workers() is not written yet");
}

static int prefork(const struct opts *o, const sigset_t *waitmask)
{
    /* SIGCHLD, like the stop signals, is delivered only inside the wait:
     * the reaping happens in master_keep_going(), never in the middle of
     * a hand-over. */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) == -1)
        unix_error("sigprocmask", "SIGCHLD");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_child;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NOCLDSTOP;
    if (sigaction(SIGCHLD, &sa, NULL) == -1)
        unix_error("sigaction", "SIGCHLD");
    sigset_t mask = *waitmask;
    sigdelset(&mask, SIGCHLD);
    master_waitmask = &mask;

    master_listenfd = Tcp_listen(o->addr, o->port);
    Set_nonblocking(master_listenfd);
    master_loop = echo_loop_new(o->verbose);
    if (!master_loop || echo_watch(master_loop, master_listenfd, on_master_listener, NULL) == -1)
        unix_error("epoll", NULL);
    nworkers = o->workers;
    workers = calloc((size_t)nworkers, sizeof *workers);
    if (!workers)
        unix_error("calloc", NULL);
    for (int i = 0; i < nworkers; i++)
        workers[i].chan = -1;
    for (int i = 0; i < nworkers; i++)
        if (spawn_worker(i) == -1)
            app_error("%s: cannot start worker %d", prog, i);
    /* After the workers exist: whoever reads this line can count them. */
    Announce_listening(master_listenfd);

    int r = echo_run(master_loop, &mask, master_keep_going, NULL);
    if (r == -1)
        unix_warn("epoll_pwait", NULL);
    stop_workers();
    echo_loop_free(master_loop);
    close(master_listenfd);
    free(workers);
    return r == -1 ? 1 : 0;
}

/* ---------- main ------------------------------------------------------------ */

int main(int argc, char **argv)
{
    if (argc > 0 && argv[0])
        prog = argv[0];
    struct opts o;
    parse(argc, argv, &o);
    verbose = o.verbose;

    struct unix_addr ua;
    if (o.unix_name && unix_address(o.unix_name, &ua) == -1)
        bad_args(errno == ENAMETOOLONG ? "the name does not fit in sun_path (at most 107 bytes)"
                                       : "-u needs a path or @NAME",
                 o.unix_name);

    Ignore_sigpipe();
    sigset_t waitmask;
    On_stop_signals(on_stop);
    Block_stop_signals(&waitmask);
    spare_fd = spare_fd_open();
    if (spare_fd == -1)
        unix_error("open", "/dev/null (the spare fd)");

    int r = o.workers ? prefork(&o, &waitmask) : serve(&o, o.unix_name ? &ua : NULL, &waitmask);
    close(spare_fd);
    return r;
}
