/*
 * 16-multireactor: the uppercase echo on one event loop per thread.
 *
 * Lab 08's reactor, pool and connections are single-threaded by design
 * (reactor.h: "one reactor is used by one thread"; bufpool.h: one pool
 * per loop, no lock).  This lab keeps them exactly so and multiplies
 * them: N loops, each a thread with its own reactor, its own pool and its
 * own conn_server.  A connection is handed to one loop when it is
 * accepted and lives there until it closes, so the data path (read,
 * upcase, write, the pool) never touches anything another thread touches.
 *
 * Two ways to give connections to the loops (-m):
 *
 *   dispatch   (muduo's one loop per thread, the seeds' reactor with a
 *              thread queue) the main thread accepts, and hands each
 *              connection to the next loop, round-robin: the fd goes into
 *              that loop's queue (a mutex-protected list), and a write to
 *              the loop's eventfd wakes it, because a loop asleep in
 *              epoll_wait() does not look at a queue.
 *   reuseport  (nginx's workers with reuseport) every loop has a
 *              listening socket of its own on the same port
 *              (SO_REUSEPORT); the kernel spreads new connections over
 *              them by a hash of the addresses and ports, and each loop
 *              accepts for itself.  No acceptor, no queue.
 *
 * What threads share, and only off the data path: each loop's queue (its
 * mutex), and two flags per loop (stop, print stats) that the main thread
 * sets before writing the loop's eventfd.  Each loop's counters are its
 * own and only it prints them; the main thread never reads another
 * loop's state.  The per-loop struct is padded to a cache line so that
 * one loop's writes to its own fields never invalidate a line another
 * loop is reading (false sharing).
 *
 * Signals: blocked in every thread (the mask is set before any thread
 * starts, and threads inherit it), read from a signalfd by the main
 * thread only.  SIGTERM/SIGINT: every loop is told to stop through its
 * eventfd, every thread is joined, everything is freed, exit 0.  SIGUSR1:
 * every loop prints one line, "loop I tid T: connections N accepted M".
 */
#define _GNU_SOURCE /* accept4, sched_getaffinity, gettid via syscall, pthread_setname_np */

#include "wrap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bufpool.h"
#include "conn.h"
#include "reactor.h"

#define POOL_CAP ((size_t)256 * 1024 * 1024) /* per loop */
#define HIGH_WATER ((size_t)4 * 1024 * 1024)  /* per connection, see conn.h */
#define LOW_WATER ((size_t)1024 * 1024)
#define MAX_LOOPS 256
#define CACHE_LINE 64

enum mode { MODE_DISPATCH, MODE_REUSEPORT };

/* A connection on its way from the acceptor to a loop. */
struct handoff {
    struct handoff *next;
    int fd;
    struct sockaddr_storage peer;
};

/* One loop.  Everything here is used by the loop's own thread only,
 * except the fields marked shared. */
struct loop {
    int id;
    pthread_t thread;
    int tid;                  /* the kernel's id of the thread, for /proc */
    struct reactor *r;
    struct conn_server srv;   /* its own pool (srv.pool) and connections */
    int listenfd;             /* reuseport: its own listener; dispatch: -1 */
    unsigned long accepted;   /* connections this loop has served, in all */
    int verbose;
    /* shared: */
    int wakefd;               /* eventfd: written by the main thread */
    pthread_mutex_t lock;     /* guards queue */
    struct handoff *queue;    /* dispatch: adopted on the next wake-up */
    atomic_int stop;          /* set by main before it writes wakefd */
    atomic_int want_stats;
} __attribute__((aligned(CACHE_LINE)));

/* ---------- the service ---------------------------------------------------------- */

static size_t on_data(struct conn *c, void *ctx, char *data, size_t n)
{
    (void)ctx;
    upcase(data, n);
    conn_send(c, data, n); /* on failure the connection is closed for us */
    return n;
}

/* Counted here, not from the acceptor: in reuseport mode the loop itself
 * accepts, and this is the one place both modes go through. */
static int on_open(struct conn *c)
{
    struct loop *l = conn_srv(c)->app;
    l->accepted++;
    if (l->verbose)
        err_msg("loop %d tid %d: connect %s", l->id, l->tid, conn_name(c));
    return 0;
}

/* ---------- one loop -------------------------------------------------------------- */

static void print_loop(const struct loop *l)
{
    /* One line per loop, written with one write (err_msg), so the lines of
     * loops printing at the same time do not mix. */
    err_msg("loop %d tid %d: connections %zu accepted %lu", l->id, l->tid, l->srv.nconns,
            l->accepted);
}

/* The loop's eventfd: the main thread wants something (a stop, the
 * stats), or the acceptor queued connections. */
static void wake_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct loop *l = arg;
    uint64_t n;
    (void)events;
    while (read(fd, &n, sizeof n) > 0)
        ;
    /* Take the whole queue at once: the lock is held for two pointer
     * moves, not for the adopting. */
    pthread_mutex_lock(&l->lock);
    struct handoff *h = l->queue;
    l->queue = NULL;
    pthread_mutex_unlock(&l->lock);
    while (h) {
        struct handoff *next = h->next;
        conn_adopt(&l->srv, h->fd, (struct sockaddr *)&h->peer);
        free(h);
        h = next;
    }
    if (atomic_exchange(&l->want_stats, 0))
        print_loop(l);
    if (atomic_load(&l->stop))
        reactor_stop(r);
}

static void *loop_main(void *arg)
{
    struct loop *l = arg;
    char name[16];
    snprintf(name, sizeof name, "loop %d", l->id);
    pthread_setname_np(pthread_self(), name); /* shows in /proc/PID/task/TID/comm */
    /* Written by the loop itself, read only by the loop (and by main
     * after pthread_join): no race. */
    l->tid = (int)syscall(SYS_gettid);
    if (reactor_run(l->r) == -1)
        unix_warn("reactor_run", name);
    return NULL;
}

/* Wake loop l: eventfd adds to a counter, so any number of writes before
 * the loop reads cost it one wake-up. */
static void wake(struct loop *l)
{
    uint64_t one = 1;
    if (write(l->wakefd, &one, sizeof one) == -1)
        unix_warn("write", "eventfd");
}

/* Start l's thread, which runs l's loop until it is told to stop. */
static void start_loop(struct loop *l)
{
    Pthread_create(&l->thread, NULL, loop_main, l);
}

/* ---------- listening ---------------------------------------------------------------- */

/* A listener with SO_REUSEPORT set before bind(): every socket of the
 * group must have it, the first one included. */
static int reuseport_listen(const char *addr, int port)
{
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof sin);
    sin.sin_family = AF_INET;
    sin.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, addr, &sin.sin_addr) != 1) {
        errno = EINVAL;
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd == -1)
        return -1;
    int on = 1;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) == -1 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) == -1 ||
        bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 || listen(fd, SOMAXCONN) == -1) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

static int bound_port(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof sin;
    if (getsockname(fd, (struct sockaddr *)&sin, &len) == -1)
        unix_error("getsockname", NULL);
    return ntohs(sin.sin_port);
}

/* ---------- the acceptor (dispatch mode) ---------------------------------------------- */

static struct loop *loops;
static int nloops;
static int next_loop; /* round-robin: used by the main thread only */

/* Accept until EAGAIN, and queue each connection on the next loop. */
static void accept_all(int listenfd, int *spare)
{
    int refused = 0;
    for (;;) {
        struct handoff *h = malloc(sizeof *h);
        if (!h) {
            unix_warn("malloc", "handoff");
            return; /* the client waits in the queue: poll() says so again */
        }
        socklen_t len = sizeof h->peer;
        h->fd = accept4(listenfd, (struct sockaddr *)&h->peer, &len,
                        SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (h->fd >= 0) {
            struct loop *l = &loops[next_loop];
            next_loop = (next_loop + 1) % nloops;
            pthread_mutex_lock(&l->lock);
            h->next = l->queue;
            l->queue = h;
            pthread_mutex_unlock(&l->lock);
            wake(l);
            continue;
        }
        int err = errno;
        free(h);
        if (err == EAGAIN || err == EWOULDBLOCK)
            return;
        if (accept_error_is_transient(err))
            continue;
        if (err == EMFILE || err == ENFILE) {
            int r = spare_fd_refuse(listenfd, spare);
            if (r == 1) {
                if (!refused++)
                    err_msg("accept: out of fds, refusing new clients");
                continue;
            }
            if (r == 0)
                return;
            if (accept_error_is_transient(errno))
                continue;
        }
        errno = err;
        unix_warn("accept", "listening socket");
        return;
    }
}

/* Stop every loop and wait for each thread to end.  The flag first, then
 * the wake-up: the loop reads the flag after the eventfd woke it, so it
 * cannot miss it (the eventfd's counter keeps the wake-up even if the
 * loop was busy).  A signal would not do: it is blocked in every thread. */
static void stop_loops(void)
{
    for (int i = 0; i < nloops; i++) {
        atomic_store(&loops[i].stop, 1);
        wake(&loops[i]);
    }
    for (int i = 0; i < nloops; i++) {
        int rc = pthread_join(loops[i].thread, NULL);
        if (rc)
            posix_error(rc, "pthread_join", NULL);
    }
}

/* ---------- the command line ------------------------------------------------------- */

/* The CPUs this process may run on (taskset, cgroups' cpusets), which is
 * not always every CPU of the machine. */
static int usable_cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == -1)
        return 1;
    int n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > MAX_LOOPS ? MAX_LOOPS : n;
}

/* -j N and -m MODE, beside common/'s -p, -a, -v and -h. */
static void help(FILE *to, int w)
{
    fprintf(to, "  %-*s  event loops, one thread each, 1-%d (default: the CPUs this\n"
                "  %-*s  process may run on)\n",
            w, "-j N", MAX_LOOPS, w, "");
    fprintf(to, "  %-*s  dispatch: one acceptor hands connections to the loops (default);\n"
                "  %-*s  reuseport: one listener per loop (SO_REUSEPORT)\n",
            w, "-m MODE", w, "");
}

static int take(const char *arg, const char *next, const char **why, void *ctx)
{
    enum mode *mode = ctx;
    if (strcmp(arg, "-m") != 0)
        return 0;
    if (next && strcmp(next, "dispatch") == 0) {
        *mode = MODE_DISPATCH;
    } else if (next && strcmp(next, "reuseport") == 0) {
        *mode = MODE_REUSEPORT;
    } else {
        *why = next ? "-m wants dispatch or reuseport" : "option needs a value";
        return -1;
    }
    return 2;
}

static void parse_options(int argc, char **argv, struct server_opts *opts, int *nl,
                          enum mode *mode)
{
    long loops = 0; /* 0: one per usable CPU */
    const struct num_arg nums[] = {
        {"-j", 1, MAX_LOOPS, &loops, "-j wants a number of loops from 1 to 256"},
        {NULL, 0, 0, NULL, NULL},
    };
    const struct more_args more = {"[-j N] [-m dispatch|reuseport]", 7, help, take, mode, nums};
    *mode = MODE_DISPATCH;
    parse_args_more(argc, argv, opts, &more);
    *nl = loops ? (int)loops : usable_cpus();
}

/* ---------- main ---------------------------------------------------------------- */

int main(int argc, char **argv)
{
    struct server_opts opts;
    enum mode mode;
    parse_options(argc, argv, &opts, &nloops, &mode);
    Ignore_sigpipe();

    /* Blocked before any thread starts, so every loop inherits the mask
     * and the signals reach only the signalfd, read by this thread. */
    /* SIGTERM and SIGINT stop the loop, SIGUSR1 prints the stats: all three
     * arrive as reads on this fd, in the loop, like any other event. */
    int sigfd = Stop_signalfd(SIGUSR1);

    int max_fds = Fd_limit(); /* the fd table covers every fd we may open */

    /* The listener(s).  reuseport: the first one picks the port (-p 0),
     * the others join it. */
    int listenfd = -1, port = opts.port;
    if (mode == MODE_DISPATCH) {
        listenfd = Tcp_listen(opts.addr, opts.port);
        Set_nonblocking(listenfd);
    }

    loops = aligned_alloc(CACHE_LINE, sizeof *loops * (size_t)nloops);
    if (!loops)
        unix_error("aligned_alloc", "loops");
    memset(loops, 0, sizeof *loops * (size_t)nloops);
    for (int i = 0; i < nloops; i++) {
        struct loop *l = &loops[i];
        l->id = i;
        l->verbose = opts.verbose;
        l->listenfd = -1;
        if (mode == MODE_REUSEPORT) {
            l->listenfd = reuseport_listen(opts.addr, port);
            if (l->listenfd == -1) {
                char name[ADDR_STRLEN];
                snprintf(name, sizeof name, "%s:%d", opts.addr, port);
                unix_error("listen (SO_REUSEPORT)", name);
            }
            port = bound_port(l->listenfd);
        }
        l->r = reactor_create(max_fds);
        if (!l->r)
            unix_error("reactor_create", NULL);
        l->srv.r = l->r;
        l->srv.pool = pool_create(POOL_CAP);
        if (!l->srv.pool)
            unix_error("pool_create", NULL);
        pool_prealloc(l->srv.pool, POOL_MIN_SIZE, 16);
        l->srv.on_open = on_open;
        l->srv.on_data = on_data;
        l->srv.app = l;
        l->srv.high_water = HIGH_WATER;
        l->srv.low_water = LOW_WATER;
        l->srv.verbose = opts.verbose > 1; /* -v -v: conn.c's own connect/close lines too */
        if (conn_server_start(&l->srv, l->listenfd) == -1)
            unix_error("conn_server_start", NULL);
        l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (l->wakefd == -1)
            unix_error("eventfd", NULL);
        if (reactor_add(l->r, l->wakefd, REACTOR_READ, wake_cb, l) == -1)
            unix_error("reactor_add", "eventfd");
        int rc = pthread_mutex_init(&l->lock, NULL);
        if (rc)
            posix_error(rc, "pthread_mutex_init", NULL);
        atomic_init(&l->stop, 0);
        atomic_init(&l->want_stats, 0);
    }
    for (int i = 0; i < nloops; i++)
        start_loop(&loops[i]);

    Announce_listening(mode == MODE_DISPATCH ? listenfd : loops[0].listenfd);

    /* The main thread: signals, and in dispatch mode the acceptor.  poll()
     * is enough for two fds; the loops' epoll instances are theirs. */
    int spare = mode == MODE_DISPATCH ? spare_fd_open() : -1;
    struct pollfd pf[2] = {{.fd = sigfd, .events = POLLIN}, {.fd = listenfd, .events = POLLIN}};
    int running = 1;
    while (running) {
        if (poll(pf, 2, -1) == -1) {
            if (errno == EINTR)
                continue;
            unix_error("poll", NULL);
        }
        if (pf[1].revents)
            accept_all(listenfd, &spare);
        struct signalfd_siginfo si;
        while (read(sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGUSR1) {
                for (int i = 0; i < nloops; i++) {
                    atomic_store(&loops[i].want_stats, 1);
                    wake(&loops[i]);
                }
            } else {
                running = 0;
            }
        }
    }

    /* Every loop has returned from reactor_run() and its thread is gone:
     * what it used is ours to free now. */
    stop_loops();
    int status = 0;
    for (int i = 0; i < nloops; i++) {
        struct loop *l = &loops[i];
        conn_server_stop(&l->srv);
        /* Handed over but never adopted: the loop stopped first. */
        for (struct handoff *h = l->queue, *next; h; h = next) {
            next = h->next;
            close(h->fd);
            free(h);
        }
        if (opts.verbose)
            print_loop(l);
        reactor_remove(l->r, l->wakefd);
        close(l->wakefd);
        reactor_destroy(l->r);
        if (l->listenfd >= 0)
            close(l->listenfd);
        pthread_mutex_destroy(&l->lock);
        size_t leaked = pool_destroy(l->srv.pool);
        if (leaked) {
            err_msg("loop %d: pool: %zu buffers still in use at exit", i, leaked);
            status = 1;
        }
    }
    free(loops);
    if (spare >= 0)
        close(spare);
    if (listenfd >= 0)
        close(listenfd);
    close(sigfd);
    return status;
}
