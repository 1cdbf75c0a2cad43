/*
 * 10-threadpool: the calculator of lab 09 with slow requests, and a
 * thread pool so that one slow request does not stall everyone.
 *
 * `X ~ Y` means "wait Y milliseconds, then answer 0 X": a stand-in for
 * any slow work (a disk read, a database query, a big computation).  The
 * event loop must never wait for it, so it runs in a worker thread
 * (tpool.h), half-sync/half-async:
 *
 *   the loop (this file, lab 08's reactor): reads, parses, answers plain
 *       requests at once, submits `~` requests to the pool, and writes
 *       every reply itself;
 *   the workers: run the slow part and touch nothing else: no socket, no
 *       connection, no buffer (the loop owns those, and it has no locks);
 *   the way back: a worker puts its finished task on the pool's done list
 *       and writes the pool's eventfd; the loop wakes up, collects, and
 *       sends.
 *
 * Order.  A client pipelines requests and matches replies by order, so a
 * connection keeps a queue of the replies it owes (struct job), in request
 * order: a reply is sent only when every reply before it has been.  A
 * fast request behind a slow one waits in the queue, already answered.
 * Nothing is queued while nothing is owed: a plain request then goes out
 * at once, as in lab 09.
 *
 * Ownership.  A job handed to the pool belongs to the pool until the loop
 * collects it; the connection may be gone by then (the client left, or
 * reset).  So a connection that closes does not free its jobs that are
 * with the pool: it disowns them (owner = NULL), and the loop frees a
 * disowned job when it comes back, without touching any connection.
 *
 * Load shedding.  The pool's queue is bounded (-q); a `~` that does not
 * fit is answered 5 (busy) at once.  A connection also holds at most
 * CONN_MAX_OWED replies behind a slow one; past that, its requests are
 * answered 5 without being evaluated, and a run of such replies is kept
 * as one entry with a count, so a client that pipelines without end
 * behind a slow request costs a bounded amount of memory.
 *
 * Everything else is lab 08's (reactor, pool of buffers, connections with
 * back-pressure, signals as events) and lab 09's (frames, parsing,
 * arithmetic), linked from their directories.
 */
#define _POSIX_C_SOURCE 200809L

#include "wrap.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "bufpool.h"
#include "calc.h"
#include "conn.h"
#include "reactor.h"
#include "tpool.h"

#define POOL_CAP ((size_t)256 * 1024 * 1024) /* all buffers, all connections */
/* As lab 09: one read short of 4 MiB (a reply can be twice its request). */
#define HIGH_WATER ((size_t)4 * 1024 * 1024 - 64 * 1024)
#define LOW_WATER ((size_t)1024 * 1024)

#define SLOW_MAX_MS 10000    /* `X ~ Y`: Y from 0 to this, else status 3 */
#define CONN_MAX_OWED 1024   /* replies a connection may hold behind a slow one */
#define DEFAULT_MIN 2
#define DEFAULT_MAX 16
#define DEFAULT_QUEUE 1024
#define QUEUE_LIMIT 1000000

static struct conn_server srv;
static struct tpool *workers;
static int run_inline; /* --inline: the naive design, `~` in the loop */

/* ---------- the replies a connection owes ------------------------------------------ */

/* One reply owed, in request order.  While `waiting`, the job is with the
 * pool: a worker may be running it, and only task, x, delay_ms, reply and
 * len are the worker's to touch (the worker writes the reply).  The rest
 * is the loop's. */
struct job {
    struct tpool_task task;  /* first member: a task is a job */
    long long x;             /* the request: X ~ delay_ms */
    unsigned delay_ms;
    unsigned char len;       /* the reply frame */
    char reply[32];
    /* --- the loop's --- */
    struct job *next;        /* the connection's queue */
    struct client *owner;    /* NULL once the connection has gone */
    int waiting;             /* with the pool */
    int busy_run;            /* a run of "5 0" replies, sent `count` times */
    size_t count;
    int last;                /* a bad frame's reply: shut down after it */
};

struct client {
    struct conn *c;
    struct job *head, *tail; /* replies owed and not yet sent, in order */
    size_t owed;             /* entries in that queue */
    int closing;             /* a bad frame was seen: read nothing more */
};

/* A job the pool refused is kept for the next slow request: under a flood
 * most are refused, and a malloc and a free for each would be churn for
 * nothing.  (The loop's alone: no lock.) */
static struct job *spare_job;

static struct job *job_new(void)
{
    struct job *j = spare_job;
    if (!j)
        return calloc(1, sizeof *j);
    spare_job = NULL;
    memset(j, 0, sizeof *j);
    return j;
}

static void job_keep(struct job *j)
{
    if (spare_job)
        free(j);
    else
        spare_job = j;
}

/* The worker's part: the slow work, then the reply.  It touches only its
 * own job. */
static void slow_run(struct tpool_task *t, struct tpool *p)
{
    struct job *j = (struct job *)t;
    tpool_sleep(p, j->delay_ms); /* returns early if the server stops */
    j->len = (unsigned char)calc_format(CALC_OK, j->x, j->reply, sizeof j->reply);
}

static void append(struct client *cl, struct job *j)
{
    /* Replies are owed: a client that half-closes now must still get
     * them (conn.h's conn_hold; flush_ready releases once all are sent). */
    if (!cl->tail)
        conn_hold(cl->c);
    j->owner = cl;
    j->next = NULL;
    if (cl->tail)
        cl->tail->next = j;
    else
        cl->head = j;
    cl->tail = j;
    cl->owed++;
}

/* Send one ready job.  0, or -1 if the connection is gone or closing. */
static int send_job(struct client *cl, const struct job *j)
{
    if (!j->busy_run)
        return conn_send(cl->c, j->reply, j->len);
    /* A run of busy replies: in batches, not one conn_send each. */
    char batch[4096];
    size_t per = sizeof batch / j->len, left = j->count;
    while (left) {
        size_t k = left < per ? left : per;
        for (size_t i = 0; i < k; i++)
            memcpy(batch + i * j->len, j->reply, j->len);
        if (conn_send(cl->c, batch, k * j->len) == -1)
            return -1;
        left -= k;
    }
    return 0;
}

/* Send every reply at the head of the queue that is ready, in order.
 * Called outside the connection's callbacks (a job came back), so a
 * conn_send that fails has closed the connection already, and
 * conn_shutdown may have: -1 then, and cl is gone. */
static int flush_ready(struct client *cl)
{
    while (cl->head && !cl->head->waiting) {
        struct job *j = cl->head;
        cl->head = j->next;
        if (!cl->head)
            cl->tail = NULL;
        cl->owed--;
        int st = send_job(cl, j);
        int last = j->last;
        free(j);
        if (st == -1)
            return -1;
        if (last) {
            conn_shutdown(cl->c); /* may free cl (on_close) */
            return -1;
        }
    }
    if (!cl->head)
        conn_release(cl->c); /* nothing owed now: may close (EOF seen), last use */
    return 0;
}

/* Answer with a ready reply: at once if nothing is owed before it, else
 * behind what is.  0, or -1 if the connection is closing. */
static int answer(struct client *cl, enum calc_status st, long long result)
{
    char reply[32];
    size_t len = calc_format(st, result, reply, sizeof reply);
    if (!cl->head)
        return conn_send(cl->c, reply, len);
    if (cl->owed >= CONN_MAX_OWED) {
        /* Full: this request is answered busy, whatever it was. */
        st = CALC_BUSY;
        len = calc_format(st, 0, reply, sizeof reply);
    }
    struct job *tail = cl->tail;
    if (st == CALC_BUSY && tail->busy_run && !tail->waiting) {
        tail->count++;
        return 0;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        unix_warn("calloc", "reply");
        conn_close(cl->c);
        return -1;
    }
    memcpy(j->reply, reply, len);
    j->len = (unsigned char)len;
    j->busy_run = st == CALC_BUSY;
    j->count = 1;
    append(cl, j);
    return 0;
}

/* `x ~ ms`: to the pool, or busy.  0, or -1 if the connection is closing. */
static int slow(struct client *cl, long long x, unsigned ms)
{
    if (run_inline) {
        /* The naive design: the whole server sleeps with this client. */
        struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
        while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
            ;
        return answer(cl, CALC_OK, x);
    }
    if (cl->owed >= CONN_MAX_OWED)
        return answer(cl, CALC_BUSY, 0);
    struct job *j = job_new();
    if (!j) {
        unix_warn("calloc", "task");
        return answer(cl, CALC_BUSY, 0);
    }
    j->task.run = slow_run;
    j->x = x;
    j->delay_ms = ms;
    j->waiting = 1;
    if (tpool_submit(workers, &j->task) == -1) {
        job_keep(j); /* the queue is full: shed the load, at once */
        return answer(cl, CALC_BUSY, 0);
    }
    append(cl, j);
    return 0;
}

/* One request payload.  0, or -1 if the connection is closing. */
static int request(struct client *cl, const char *payload, size_t n)
{
    long long x, y, result = 0;
    const char *op;
    size_t oplen;
    enum calc_status st = calc_parse(payload, n, &x, &op, &oplen, &y);
    if (st == CALC_OK && oplen == 1 && op[0] == '~') {
        if (y >= 0 && y <= SLOW_MAX_MS)
            return slow(cl, x, (unsigned)y);
        st = CALC_MALFORMED;
    } else if (st == CALC_OK) {
        st = oplen == 1 ? calc_apply(x, op[0], y, &result) : CALC_BAD_OP;
    }
    return answer(cl, st, result);
}

/* ---------- the connection's callbacks (the loop) ----------------------------------- */

static int on_open(struct conn *c)
{
    struct client *cl = calloc(1, sizeof *cl);
    if (!cl) {
        unix_warn("calloc", conn_name(c));
        return -1;
    }
    cl->c = c;
    conn_set_ctx(c, cl);
    return 0;
}

/* The connection is about to be freed.  Ready replies go with it; jobs
 * still with the pool are disowned, and freed when they come back. */
static void on_close(struct conn *c, void *ctx)
{
    struct client *cl = ctx;
    (void)c;
    struct job *j = cl->head;
    while (j) {
        struct job *next = j->next;
        if (j->waiting)
            j->owner = NULL;
        else
            free(j);
        j = next;
    }
    free(cl);
}

/* Every complete frame in data[0..n), in order; returns the bytes used. */
static size_t on_data(struct conn *c, void *ctx, char *data, size_t n)
{
    struct client *cl = ctx;
    size_t used = 0;
    if (cl->closing)
        return n; /* after a bad frame, nothing more is answered */
    while (used < n) {
        const char *payload;
        size_t plen;
        ssize_t len = frame_next(data + used, n - used, &payload, &plen);
        if (len == 0)
            break;
        if (len < 0) {
            /* After every reply owed: 3@9 0@, then the polite close. */
            cl->closing = 1;
            if (!cl->head) {
                conn_send(c, BAD_FRAME_REPLY, sizeof BAD_FRAME_REPLY - 1);
                conn_shutdown(c);
                return n;
            }
            struct job *j = calloc(1, sizeof *j);
            if (!j) {
                conn_close(c);
                return n;
            }
            memcpy(j->reply, BAD_FRAME_REPLY, sizeof BAD_FRAME_REPLY - 1);
            j->len = sizeof BAD_FRAME_REPLY - 1;
            j->last = 1;
            append(cl, j);
            return n;
        }
        used += (size_t)len;
        if (request(cl, payload, plen) == -1)
            return n;
    }
    return used;
}

/* The pool's eventfd: jobs have come back.  Each is now ready; the
 * connections whose first owed reply it is send what they can. */
static void jobs_done_cb(struct reactor *r, int fd, int events, void *arg)
{
    (void)r;
    (void)fd;
    (void)events;
    (void)arg;
    struct tpool_task *t = tpool_collect(workers);
    while (t) {
        struct job *j = (struct job *)t;
        t = t->next;
        j->waiting = 0;
        if (!j->owner)
            free(j); /* its connection is gone */
        else if (j->owner->head == j)
            flush_ready(j->owner); /* may close it: then its later jobs are disowned */
    }
}

/* ---------- signals, as events ------------------------------------------------------ */

static void print_stats(FILE *to)
{
    struct tpool_stats ts;
    tpool_get_stats(workers, &ts);
    fprintf(to, "stats: connections %zu\n", srv.nconns);
    fprintf(to, "workers: %u (idle %u, peak %u; started %zu, retired %zu), queued %zu, tasks %zu, refused %zu\n",
            ts.threads, ts.idle, ts.peak, ts.started, ts.retired, ts.queued, ts.submitted, ts.refused);
    pool_print_stats(srv.pool, to);
}

static void signal_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct signalfd_siginfo si;
    (void)events;
    (void)arg;
    while (read(fd, &si, sizeof si) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGUSR1)
            print_stats(stderr);
        else
            reactor_stop(r); /* SIGTERM, SIGINT */
    }
}

/* ---------- the command line -------------------------------------------------------- */

/* Lab 10's options, beside common/'s -p, -a, -v and -h: -t MIN:MAX and
 * --inline here, -q N in parse_options()'s table. */
static void help(FILE *to, int w)
{
    fprintf(to, "  %-*s  worker threads, 1 <= MIN <= MAX <= %d (default %d:%d)\n", w, "-t MIN:MAX",
            TPOOL_MAX_THREADS, DEFAULT_MIN, DEFAULT_MAX);
    fprintf(to, "  %-*s  tasks that may wait for a worker, 0-%d (default %d); more: status 5\n", w,
            "-q N", QUEUE_LIMIT, DEFAULT_QUEUE);
    fprintf(to, "  %-*s  run `~` in the event loop itself (the naive design, to compare)\n", w,
            "--inline");
}

struct pool_opts {
    unsigned *min, *max;
};

static int take(const char *arg, const char *next, const char **why, void *ctx)
{
    struct pool_opts *po = ctx;
    if (strcmp(arg, "--inline") == 0) {
        run_inline = 1;
        return 1;
    }
    if (strcmp(arg, "-t") != 0)
        return 0;
    if (!next) {
        *why = "option needs a value";
        return -1;
    }
    /* MIN:MAX, each a number on its own */
    char v[24];
    const char *colon = strchr(next, ':');
    long lo = -1, hi = -1;
    if (colon && strlen(next) < sizeof v) {
        memcpy(v, next, (size_t)(colon - next));
        v[colon - next] = '\0';
        lo = parse_count(v, 1, TPOOL_MAX_THREADS);
        hi = parse_count(colon + 1, 1, TPOOL_MAX_THREADS);
    }
    if (lo < 0 || hi < 0 || lo > hi) {
        *why = "-t wants MIN:MAX with 1 <= MIN <= MAX <= 256";
        return -1;
    }
    *po->min = (unsigned)lo;
    *po->max = (unsigned)hi;
    return 2;
}

static void parse_options(int argc, char **argv, struct server_opts *opts, unsigned *min,
                          unsigned *max, size_t *queue)
{
    struct pool_opts po = {min, max};
    long q = DEFAULT_QUEUE;
    const struct num_arg nums[] = {
        {"-q", 0, QUEUE_LIMIT, &q, "-q wants a number from 0 to 1000000"},
        {NULL, 0, 0, NULL, NULL},
    };
    const struct more_args more = {"[-t MIN:MAX] [-q N] [--inline]", 10, help, take, &po, nums};
    *min = DEFAULT_MIN;
    *max = DEFAULT_MAX;
    parse_args_more(argc, argv, opts, &more);
    *queue = (size_t)q;
}

/* ---------- main ------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    struct server_opts opts;
    unsigned tmin, tmax;
    size_t qmax;
    parse_options(argc, argv, &opts, &tmin, &tmax, &qmax);
    Ignore_sigpipe();

    /* Blocked before any thread starts: the workers and the manager
     * inherit the mask, so SIGTERM reaches the signalfd, never a worker. */
    /* SIGTERM and SIGINT stop the loop, SIGUSR1 prints the stats: all three
     * arrive as reads on this fd, in the loop, like any other event. */
    int sigfd = Stop_signalfd(SIGUSR1);

    int max_fds = Fd_limit(); /* the fd table covers every fd we may open */

    struct reactor *r = reactor_create(max_fds);
    if (!r)
        unix_error("reactor_create", NULL);
    srv.r = r;
    srv.pool = pool_create(POOL_CAP);
    if (!srv.pool)
        unix_error("pool_create", NULL);
    pool_prealloc(srv.pool, POOL_MIN_SIZE, 16);
    srv.on_open = on_open;
    srv.on_data = on_data;
    srv.on_close = on_close;
    srv.high_water = HIGH_WATER;
    srv.low_water = LOW_WATER;
    srv.verbose = opts.verbose;

    workers = tpool_create(tmin, tmax, qmax);
    if (!workers)
        unix_error("tpool_create", NULL);

    int listenfd = Tcp_listen(opts.addr, opts.port);
    if (conn_server_start(&srv, listenfd) == -1)
        unix_error("conn_server_start", NULL);
    if (reactor_add(r, sigfd, REACTOR_READ, signal_cb, NULL) == -1)
        unix_error("reactor_add", "signalfd");
    if (reactor_add(r, tpool_fd(workers), REACTOR_READ, jobs_done_cb, NULL) == -1)
        unix_error("reactor_add", "pool eventfd");
    Announce_listening(listenfd);

    if (reactor_run(r) == -1)
        unix_error("reactor_run", NULL);

    /* Stopped by a signal.  The connections first: their jobs still with
     * the pool are disowned.  Then the pool: sleeping tasks wake, queued
     * ones are cancelled, every thread is joined.  Then every job that
     * came back, none of which has an owner any more. */
    conn_server_stop(&srv);
    tpool_stop(workers);
    for (struct tpool_task *t = tpool_collect(workers); t;) {
        struct tpool_task *next = t->next;
        free(t);
        t = next;
    }
    free(spare_job);
    if (opts.verbose)
        print_stats(stderr);
    reactor_remove(r, tpool_fd(workers));
    tpool_destroy(workers);
    reactor_destroy(r);
    close(listenfd);
    close(sigfd);
    size_t leaked = pool_destroy(srv.pool);
    if (leaked) {
        err_msg("pool: %zu buffers still in use at exit", leaked);
        return 1;
    }
    return 0;
}
