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
 * The serving itself is the same in every mode: echoloop.c.
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
    ua->sun.sun_family = AF_UNIX;
    if (name[0] == '@') {
        /* Abstract: sun_path[0] is NUL and the name is the len - 1 bytes
         * after it, NULs included: the length is part of the name, so it
         * must be exact (sizeof(struct sockaddr_un) would add 100-odd
         * NULs to it, and nobody could connect by NAME). */
        size_t n = strlen(name + 1);
        if (n == 0) {
            errno = EINVAL;
            return -1;
        }
        if (n > sizeof ua->sun.sun_path - 1) {
            errno = ENAMETOOLONG;
            return -1;
        }
        ua->abstract = 1;
        ua->sun.sun_path[0] = '\0';
        memcpy(ua->sun.sun_path + 1, name + 1, n);
        ua->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
        return 0;
    }
    size_t n = strlen(name);
    if (n == 0) {
        errno = EINVAL;
        return -1;
    }
    /* The path and its NUL must fit: a longer one would be cut short
     * (strncpy) and the server would bind some other, shorter path. */
    if (n >= sizeof ua->sun.sun_path) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(ua->sun.sun_path, name, n + 1);
    ua->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

/* Is a server listening at ua?  Asks the only way that cannot be wrong:
 * connect to it.  1 yes, 0 no (a stale file: ECONNREFUSED; or nothing
 * there any more: ENOENT); on any other answer it exits 1. */
static int unix_in_use(const struct unix_addr *ua)
{
    int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (probe == -1)
        unix_error("socket", "AF_UNIX");
    int r = connect(probe, (const struct sockaddr *)&ua->sun, ua->len);
    int err = errno;
    close(probe);
    if (r == 0 || err == EAGAIN)
        return 1; /* accepted, or a live server's backlog is full */
    if (err == ECONNREFUSED || err == ENOENT)
        return 0;
    errno = err;
    unix_warnf("%s: unix:%s: cannot tell whether a server listens there (connect)", prog, ua->name);
    exit(1);
}

/* A listening Unix-domain stream socket at ua, its file (for a path)
 * created with exactly mode.  Exits 1, saying why, if the address belongs
 * to a live server or to something that is not a socket. */
static int unix_listen(struct unix_addr *ua, mode_t mode)
{
    if (!ua->abstract) {
        struct stat st;
        if (lstat(ua->name, &st) == 0) {
            /* connect() to a regular file also says ECONNREFUSED: look
             * at what the path is before deciding it is a stale socket. */
            if (!S_ISSOCK(st.st_mode))
                app_error("%s: unix:%s: the path exists and is not a socket: not removing it", prog,
                          ua->name);
            if (unix_in_use(ua))
                app_error("%s: unix:%s: another server is listening there (a connect to it succeeded): "
                          "not taking its address", prog, ua->name);
            /* Nobody answers: a server died without removing its file.
             * (Another server starting at this very moment could still
             * race us between this check and bind(): a lock file taken
             * with flock() around both closes that window.) */
            err_msg("%s: unix:%s: removing a stale socket file (nobody listens on it)", prog, ua->name);
            if (unlink(ua->name) == -1 && errno != ENOENT) {
                unix_warnf("%s: unix:%s: unlink", prog, ua->name);
                exit(1);
            }
        } else if (errno != ENOENT) {
            unix_warnf("%s: unix:%s: lstat", prog, ua->name);
            exit(1);
        }
    }

    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd == -1)
        unix_error("socket", "AF_UNIX");
    /* bind() creates the file with mode 0777 minus the umask, whatever the
     * umask happens to be: set it so that exactly `mode` is left, and put
     * it back.  (chmod() after bind() would leave a window in which the
     * file has the inherited mode.)  The umask is per process, so this
     * is safe here, before any thread exists. */
    mode_t old = umask(~mode & 0777);
    int r = bind(fd, (const struct sockaddr *)&ua->sun, ua->len);
    int err = errno;
    umask(old);
    if (r == -1) {
        errno = err;
        if (err == EADDRINUSE)
            app_error("%s: unix:%s: the address is in use by another socket: not taking it", prog,
                      ua->name);
        unix_warnf("%s: unix:%s: bind", prog, ua->name);
        exit(1);
    }
    if (!ua->abstract) {
        struct stat st;
        if (stat(ua->name, &st) == 0) {
            ua->made_file = 1;
            ua->dev = st.st_dev;
            ua->ino = st.st_ino;
        }
    }
    if (listen(fd, SOMAXCONN) == -1)
        unix_error("listen", ua->name);
    return fd;
}

/* At exit: remove the socket file we created, and only that one.  If the
 * path now names another file (someone removed ours and another server
 * bound the path), it is not ours to remove. */
static void unix_remove(const struct unix_addr *ua)
{
    struct stat st;
    if (!ua->made_file)
        return;
    if (stat(ua->name, &st) == 0 && st.st_dev == ua->dev && st.st_ino == ua->ino) {
        if (unlink(ua->name) == -1)
            unix_warnf("%s: unix:%s: unlink", prog, ua->name);
    }
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
    struct ucred cred;
    socklen_t clen = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) == -1) {
        unix_warn("getsockopt", "SO_PEERCRED");
        snprintf(name, len, "unix pid ? uid ?");
        return !l->allow_set; /* unknown is not allowed when it matters */
    }
    snprintf(name, len, "unix pid %ld uid %lu gid %lu", (long)cred.pid, (unsigned long)cred.uid,
             (unsigned long)cred.gid);
    if (l->allow_set && cred.uid != l->allow_uid && cred.uid != l->own_uid) {
        err_msg("refuse %s: uid not allowed (allowed: %lu and our own, %lu)", name,
                (unsigned long)l->allow_uid, (unsigned long)l->own_uid);
        return 0;
    }
    return 1;
}

static void on_listener(struct echo_loop *loop, int listenfd, void *arg)
{
    const struct listener *l = arg;
    struct sockaddr_storage peer;
    socklen_t len;
    int fd;
    while ((fd = accept_one(listenfd, &peer, &len)) >= 0) {
        char name[96];
        if (l->is_unix) {
            if (!unix_peer_allowed(fd, l, name, sizeof name)) {
                close(fd); /* at once: it gets EOF, and never a byte from us */
                continue;
            }
        } else {
            sockaddr_str((struct sockaddr *)&peer, name, sizeof name);
        }
        if (verbose)
            err_msg("connect %s", name);
        if (echo_add(loop, fd, name) == -1)
            unix_warn("echo_add", name);
    }
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
    int sv[2];
    /* SOCK_SEQPACKET: each send_fd() is one message, read whole by one
     * recv_fd(), and its fd can never be merged with the next one's. */
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == -1) {
        unix_warn("socketpair", NULL);
        return -1;
    }
    pid_t pid = fork();
    if (pid == -1) {
        unix_warn("fork", NULL);
        close(sv[0]);
        close(sv[1]);
        return -1;
    }
    if (pid == 0) {
        /* The child has a copy of every fd of the master.  It keeps only
         * its own end of its own channel: with the listener it would keep
         * the port open after the master died (and could accept, the herd
         * all over again); with the master's end of a channel (its own or
         * another worker's) that worker would never see EOF. */
        close(sv[0]);
        close(master_listenfd);
        for (int j = 0; j < nworkers; j++)
            if (workers[j].chan >= 0)
                close(workers[j].chan);
        free(workers);
        workers = NULL;
        echo_loop_free(master_loop); /* the master's: no connections in it */
        master_loop = NULL;
        if (spare_fd >= 0)
            close(spare_fd);
        spare_fd = -1;
        signal(SIGCHLD, SIG_DFL);
        worker_main(i, sv[1]);
    }
    close(sv[1]);
    if (set_nonblocking(sv[0]) == -1)
        unix_warn("fcntl", "channel");
    workers[i].pid = pid;
    workers[i].chan = sv[0];
    if (verbose)
        err_msg("master: worker %d is pid %ld", i, (long)pid);
    return 0;
}

/* Reap every worker that exited, and start a new one in its slot. */
static void reap_workers(void)
{
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
        for (int i = 0; i < nworkers; i++) {
            if (workers[i].pid != pid)
                continue;
            if (WIFSIGNALED(st))
                err_msg("master: worker %d (pid %ld) was killed by signal %d: starting a new one", i,
                        (long)pid, WTERMSIG(st));
            else
                err_msg("master: worker %d (pid %ld) exited with status %d: starting a new one", i,
                        (long)pid, WEXITSTATUS(st));
            workers[i].pid = 0;
            if (workers[i].chan >= 0)
                close(workers[i].chan);
            workers[i].chan = -1;
        }
    }
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
    for (int k = 0; k < nworkers; k++) {
        int i = (next_worker + k) % nworkers;
        struct worker *w = &workers[i];
        if (w->chan < 0)
            continue;
        if (send_fd(w->chan, fd) == 0) {
            if (verbose)
                err_msg("master: %s to worker %d (pid %ld)", name, i, (long)w->pid);
            next_worker = (i + 1) % nworkers;
            close(fd);
            return;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            continue; /* that worker is behind: try the next */
        /* EPIPE, ECONNRESET: the worker is gone (the reaper will replace it). */
        if (errno != EPIPE && errno != ECONNRESET)
            unix_warnf("master: sendmsg to worker %d", i);
        close(w->chan);
        w->chan = -1;
    }
    err_msg("master: no worker could take %s: closing it", name);
    close(fd);
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
    for (int i = 0; i < nworkers; i++) {
        if (workers[i].chan >= 0)
            close(workers[i].chan); /* EOF: a second reason to leave */
        workers[i].chan = -1;
        if (workers[i].pid > 0)
            kill(workers[i].pid, SIGTERM);
    }
    for (int tries = 0; tries < 100; tries++) {
        int left = 0;
        for (int i = 0; i < nworkers; i++) {
            if (workers[i].pid > 0 && waitpid(workers[i].pid, NULL, WNOHANG) == workers[i].pid)
                workers[i].pid = 0;
            left += workers[i].pid > 0;
        }
        if (!left)
            return;
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (int i = 0; i < nworkers; i++) {
        if (workers[i].pid > 0) {
            err_msg("master: worker %d (pid %ld) did not stop: killing it", i, (long)workers[i].pid);
            kill(workers[i].pid, SIGKILL);
            waitpid(workers[i].pid, NULL, 0);
            workers[i].pid = 0;
        }
    }
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
