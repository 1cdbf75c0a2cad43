/*
 * tpool.c - the thread pool (tpool.h): a bounded queue, workers, a
 * manager that grows and shrinks the pool, and a way back to the loop.
 *
 * YOUR TASK: TODOs 1-6 here, then 7-10 in server.c.  Read
 * labs/10-threadpool/README.md first.  The server starts MIN workers and
 * the manager at once, so it stops at TODO 1 and TODO 2 until both are
 * written.
 *
 * One mutex (lock) guards everything below it in struct tpool.  Four
 * condition variables wait on it, each for one kind of news:
 *
 *   work    a task was queued, a worker was told to retire, or stop
 *           (idle workers wait here)
 *   wake    tasks wait for a worker, a worker has exited, or stop (the
 *           manager waits here)
 *   gone    a worker has exited (tpool_stop waits here for the last one)
 *   quit    stop (tasks sleeping in tpool_sleep wait here)
 *
 * The rules every TODO below keeps:
 *   - every wait sits in a while loop that re-checks its condition under
 *     the lock (a wakeup means "look again", never "it is true now");
 *   - every change to a condition is made under the lock, then the
 *     waiters are signalled (otherwise a waiter can check, miss the
 *     change, and sleep through the signal: the lost wakeup);
 *   - nobody holds the lock while a task runs, while a thread is created
 *     or joined, or while the eventfd is written: the loop takes this
 *     lock in tpool_submit and must never wait long for it.
 *
 * The invariants of the counters (under lock):
 *   nthreads   workers alive or being started, never more than max;
 *   nidle      workers inside their wait for a task;
 *   queued     tasks in the queue; waiting() of them have no idle worker
 *              to take them, and those are what -q bounds;
 *   retiring   workers told to retire (w->retire) that have not left yet.
 */
#define _GNU_SOURCE /* eventfd flags, pthread_condattr_setclock is POSIX */

#include "tpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "wrap.h"

struct worker {
    pthread_t tid;
    struct tpool *pool;
    struct worker *prev, *next; /* the live list, or the exited list */
    int idle;                   /* waiting for a task */
    int retire;                 /* the manager asked it to exit */
    long long idle_since;       /* monotonic ms, while idle */
};

struct tpool {
    pthread_mutex_t lock;
    pthread_cond_t work, wake, gone, quit;
    pthread_t manager;
    int efd;               /* eventfd: finished tasks wait for the loop */
    unsigned min, max;
    size_t queue_max;
    /* --- under lock --- */
    int stopping;
    struct tpool_task *head, *tail; /* waiting for a worker, oldest first */
    size_t queued;
    struct tpool_task *done_head, *done_tail; /* finished, for the loop */
    struct worker *live;   /* running workers */
    struct worker *exited; /* workers that returned, not joined yet */
    unsigned nthreads;     /* live workers, and workers being created */
    unsigned nidle;        /* live workers waiting for a task */
    unsigned retiring;     /* told to retire, not gone yet */
    struct tpool_stats st;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An absolute CLOCK_MONOTONIC deadline ms from now, for timed waits (the
 * conds are created with that clock: a wall-clock jump must not make a
 * 20 ms wait last an hour). */
static struct timespec deadline_in(long long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000;
    if (ts.tv_nsec >= 1000000000) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000;
    }
    return ts;
}

static void list_add(struct worker **head, struct worker *w)
{
    w->prev = NULL;
    w->next = *head;
    if (*head)
        (*head)->prev = w;
    *head = w;
}

static void list_del(struct worker **head, struct worker *w)
{
    if (w->prev)
        w->prev->next = w->next;
    else
        *head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
}

/* Tasks that are queued and that no idle worker is about to take: the
 * ones really waiting.  Under lock. */
static size_t waiting(const struct tpool *p)
{
    return p->queued > p->nidle ? p->queued - p->nidle : 0;
}

/* ---------- workers ------------------------------------------------------------ */

/* A finished task goes to the done list.  Only the push that makes the
 * list non-empty writes the eventfd: the loop reads the eventfd first and
 * takes the list second (tpool_collect), so every task pushed after its
 * take finds the list empty again and wakes it once more. */
static void finish(struct tpool *p, struct tpool_task *t)
{
    /* TODO 5a: t is finished: append it to the done list (oldest first),
     * and wake the loop through the eventfd, without losing a wakeup and
     * without one write per task: write only when the list was empty
     * before this push (the loop reads the eventfd before it takes the
     * list, see tpool_collect).  Do not hold the lock while writing. */
    (void)p;
    (void)t;
    app_error("TODO 5: finish() in tpool.c is not written yet");
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct tpool *p = w->pool;
    /* TODO 1: the worker's life.  Repeat: wait (on work, counted in nidle,
     * with w->idle and w->idle_since set for the manager) until there is
     * a task, or the pool stops, or the manager marks this worker to
     * retire; then, if stopping: leave; if there is a task: take the
     * oldest (even if marked to retire meanwhile: clear the mark, a task
     * that counted on an idle worker must run), run it WITHOUT the lock,
     * hand it back with finish(); else (retired): leave.  Leaving: under
     * the lock, undo the retire count if marked, move w from the live
     * list to the exited list (someone must join it: see reap), count
     * nthreads down, and tell tpool_stop (gone) and the manager (wake). */
    (void)w;
    (void)p;
    (void)finish;
    (void)now_ms;
    app_error("TODO 1: worker_main() in tpool.c is not written yet");
}

/* Start one worker.  Called without the lock, with nthreads already
 * counting it (so the manager never starts more than max).  0 or -1. */
static int start_worker(struct tpool *p)
{
    struct worker *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->pool = p;
    pthread_mutex_lock(&p->lock);
    list_add(&p->live, w);
    pthread_mutex_unlock(&p->lock);
    int e = pthread_create(&w->tid, NULL, worker_main, w);
    if (e != 0) {
        pthread_mutex_lock(&p->lock);
        list_del(&p->live, w);
        pthread_mutex_unlock(&p->lock);
        free(w);
        posix_warn(e, "pthread_create", "pool worker");
        errno = e;
        return -1;
    }
    return 0;
}

/* Join and free every worker that has exited.  Called with the lock
 * held; drops it while joining (a join may wait for the thread's last
 * instructions). */
static void reap(struct tpool *p)
{
    while (p->exited) {
        struct worker *list = p->exited;
        p->exited = NULL;
        pthread_mutex_unlock(&p->lock);
        while (list) {
            struct worker *w = list;
            list = w->next;
            pthread_join(w->tid, NULL);
            free(w);
        }
        pthread_mutex_lock(&p->lock);
    }
}

/* ---------- the manager --------------------------------------------------------- */

static void *manager_main(void *arg)
{
    struct tpool *p = arg;
    /* TODO 2: the manager.  Until the pool stops, under the lock:
     *   - join the workers that have exited (reap);
     *   - grow: while tasks wait (waiting() > 0) and nthreads < max, add
     *     up to TPOOL_GROW_STEP workers (no more than max, no more than
     *     are waiting): count them in nthreads first, then start them
     *     with the lock released (start_worker), and count back down the
     *     ones that failed;
     *   - shrink: mark (w->retire, retiring) the workers idle for more
     *     than TPOOL_IDLE_MS, as long as more than min would be left,
     *     and wake the idle workers so the marked ones leave;
     *   - sleep on wake until there is something to do: TPOOL_GROW_TICK_MS
     *     while tasks still wait and the pool may grow; until the next
     *     idle worker's TPOOL_IDLE_MS is up while the pool is above min;
     *     otherwise until signalled (submit signals it when a task must
     *     wait; an exiting worker and tpool_stop signal it too).
     * With min workers and nothing to do, it must cost no CPU at all. */
    (void)p;
    (void)reap;
    (void)waiting;
    app_error("TODO 2: manager_main() in tpool.c is not written yet");
}

/* ---------- the loop's side ------------------------------------------------------ */

static int init_cond(pthread_cond_t *c)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    int e = pthread_cond_init(c, &a);
    pthread_condattr_destroy(&a);
    return e;
}

struct tpool *tpool_create(unsigned min, unsigned max, size_t queue_max)
{
    if (min < 1 || min > max || max > TPOOL_MAX_THREADS) {
        errno = EINVAL;
        return NULL;
    }
    struct tpool *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->min = min;
    p->max = max;
    p->queue_max = queue_max;
    p->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->efd == -1) {
        free(p);
        return NULL;
    }
    p->manager = pthread_self(); /* "no manager yet", for tpool_stop */
    pthread_mutex_init(&p->lock, NULL);
    init_cond(&p->work);
    init_cond(&p->wake);
    init_cond(&p->gone);
    init_cond(&p->quit);

    p->nthreads = min;
    for (unsigned i = 0; i < min; i++) {
        if (start_worker(p) == -1) {
            int saved = errno;
            pthread_mutex_lock(&p->lock);
            p->nthreads -= min - i;
            pthread_mutex_unlock(&p->lock);
            tpool_stop(p);
            tpool_destroy(p);
            errno = saved;
            return NULL;
        }
    }
    p->st.started = min;
    p->st.peak = min;
    int e = pthread_create(&p->manager, NULL, manager_main, p);
    if (e != 0) {
        p->manager = pthread_self(); /* nothing to join */
        tpool_stop(p);
        tpool_destroy(p);
        errno = e;
        return NULL;
    }
    return p;
}

int tpool_fd(const struct tpool *p)
{
    return p->efd;
}

int tpool_submit(struct tpool *p, struct tpool_task *t)
{
    /* TODO 3: queue t for a worker, never blocking.  Refuse it (-1, errno
     * ESHUTDOWN) once the pool is stopping, and (-1, errno EAGAIN) when
     * more than queue_max tasks would then wait for a worker: the tasks
     * an idle worker is about to take do not wait, and the running ones
     * do not count.  Otherwise append it (oldest first), wake one idle
     * worker if there is one, and the manager if the task must wait and
     * the pool may grow.  Keep the stats (submitted, refused). */
    (void)p;
    (void)t;
    app_error("TODO 3: tpool_submit() in tpool.c is not written yet");
}

struct tpool_task *tpool_collect(struct tpool *p)
{
    /* TODO 5b: in the loop: drain the eventfd, then take the whole done
     * list at once (under the lock, a few pointer moves) and return it.
     * In that order: the other order loses a wakeup (take the list, a
     * worker pushes and writes, this read swallows the write, and the
     * task waits in the list with nothing left to wake the loop). */
    (void)p;
    app_error("TODO 5: tpool_collect() in tpool.c is not written yet");
}

int tpool_sleep(struct tpool *p, unsigned ms)
{
    /* TODO 4: wait ms milliseconds, or less if the pool stops: a timed
     * wait on quit (deadline_in: the conds use CLOCK_MONOTONIC), in a
     * loop, since it may return early for no reason.  0 if the time
     * passed, -1 if the pool is stopping.  Not sleep(): nothing could
     * wake it, and SIGTERM would wait for the slowest task. */
    (void)p;
    (void)ms;
    (void)deadline_in;
    app_error("TODO 4: tpool_sleep() in tpool.c is not written yet");
}

void tpool_stop(struct tpool *p)
{
    /* TODO 6: stop.  Once (under the lock): set stopping; move the tasks
     * still queued to the done list, marked cancelled (the caller frees
     * them); wake everyone who may be waiting (work, wake, quit).  Then,
     * without the lock, join the manager first (after that nobody starts
     * a worker; p->manager is pthread_self() when there is none, see
     * tpool_create), and then every worker: reap until nthreads is 0,
     * waiting on gone in between.  Returns when no pool thread is left. */
    (void)p;
    app_error("TODO 6: tpool_stop() in tpool.c is not written yet");
}

void tpool_destroy(struct tpool *p)
{
    if (!p)
        return;
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->gone);
    pthread_cond_destroy(&p->quit);
    close(p->efd);
    free(p);
}

void tpool_get_stats(struct tpool *p, struct tpool_stats *st)
{
    pthread_mutex_lock(&p->lock);
    *st = p->st;
    st->threads = p->nthreads;
    st->idle = p->nidle;
    st->queued = p->queued;
    pthread_mutex_unlock(&p->lock);
}
