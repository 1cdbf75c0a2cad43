/*
 * tpool.c - the thread pool (tpool.h): a bounded queue, workers, a
 * manager that grows and shrinks the pool, and a way back to the loop.
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
 * Every wait is in a while loop that re-checks its condition under the
 * lock: a wakeup says "something changed, look again", never "your
 * condition holds" (another thread may have taken the task first, and
 * pthread_cond_wait may return with no signal at all).  And every change
 * to a condition is made under the lock before signalling, so a waiter
 * cannot check, miss the change, and then sleep through the signal (the
 * lost wakeup).
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
    pthread_mutex_lock(&p->lock);
    int was_empty = p->done_head == NULL;
    t->next = NULL;
    if (p->done_tail)
        p->done_tail->next = t;
    else
        p->done_head = t;
    p->done_tail = t;
    pthread_mutex_unlock(&p->lock);
    if (was_empty) {
        uint64_t one = 1;
        /* Only fails if the counter would overflow (2^64 - 2 wakeups
         * unread): the loop is woken already. */
        if (write(p->efd, &one, sizeof one) == -1 && errno != EAGAIN)
            unix_warn("write", "pool eventfd");
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    struct tpool *p = w->pool;

    pthread_mutex_lock(&p->lock);
    for (;;) {
        if (!p->head && !p->stopping && !w->retire) {
            w->idle = 1;
            w->idle_since = now_ms();
            p->nidle++;
            while (!p->head && !p->stopping && !w->retire)
                pthread_cond_wait(&p->work, &p->lock);
            p->nidle--;
            w->idle = 0;
        }
        if (p->stopping)
            break;
        if (p->head) {
            /* A task, even if it was asked to retire meanwhile: the
             * task counted on an idle worker when it was accepted. */
            if (w->retire) {
                w->retire = 0;
                p->retiring--;
            }
            struct tpool_task *t = p->head;
            p->head = t->next;
            if (!p->head)
                p->tail = NULL;
            p->queued--;
            pthread_mutex_unlock(&p->lock);
            t->run(t, p); /* the slow part, with no lock held */
            finish(p, t);
            pthread_mutex_lock(&p->lock);
            continue;
        }
        break; /* retired */
    }
    if (w->retire) {
        p->retiring--;
        p->st.retired++;
    }
    /* Leave the live list for the exited one: the manager (or
     * tpool_stop) joins it there.  Nobody may join a thread it cannot
     * name, and a thread nobody joins leaks its stack. */
    list_del(&p->live, w);
    list_add(&p->exited, w);
    p->nthreads--;
    pthread_cond_broadcast(&p->gone);
    pthread_cond_signal(&p->wake); /* the manager joins it */
    pthread_mutex_unlock(&p->lock);
    return NULL;
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
    pthread_mutex_lock(&p->lock);
    while (!p->stopping) {
        reap(p);
        if (p->stopping)
            break;

        /* Grow: tasks are waiting and there is room for more workers.
         * A step at a time: a burst that the running workers clear in a
         * moment should not cost max thread creations. */
        size_t wait_n = waiting(p);
        if (wait_n && p->nthreads < p->max) {
            unsigned add = p->max - p->nthreads;
            if (add > TPOOL_GROW_STEP)
                add = TPOOL_GROW_STEP;
            if (add > wait_n)
                add = (unsigned)wait_n;
            p->nthreads += add; /* reserved: counted while being created */
            pthread_mutex_unlock(&p->lock);
            unsigned started = 0;
            for (unsigned i = 0; i < add; i++)
                if (start_worker(p) == 0)
                    started++;
            pthread_mutex_lock(&p->lock);
            p->nthreads -= add - started;
            p->st.started += started;
            if (p->nthreads > p->st.peak)
                p->st.peak = p->nthreads;
        }

        /* Shrink: retire workers idle for more than TPOOL_IDLE_MS, while
         * more than min would be left. */
        long long now = now_ms(), next_check = -1;
        int marked = 0;
        for (struct worker *w = p->live; w; w = w->next) {
            if (!w->idle || w->retire)
                continue;
            long long due = w->idle_since + TPOOL_IDLE_MS;
            if (due <= now && p->nthreads - p->retiring > p->min) {
                w->retire = 1;
                p->retiring++;
                marked = 1;
            } else if (due > now && (next_check == -1 || due < next_check)) {
                next_check = due;
            }
        }
        if (marked)
            pthread_cond_broadcast(&p->work); /* the idle ones look, the marked ones go */

        /* Sleep until there is something to do: the next growth step
         * while tasks still wait, the next worker that may be retired,
         * or news (a task that must wait, a worker gone, stop).  With
         * min workers and nothing waiting, the manager costs nothing. */
        if (p->stopping)
            break;
        long long wait_ms = -1;
        if (waiting(p) && p->nthreads < p->max)
            wait_ms = TPOOL_GROW_TICK_MS;
        else if (p->nthreads - p->retiring > p->min)
            wait_ms = next_check == -1 ? TPOOL_IDLE_MS : next_check - now + 1;
        if (p->exited) {
            continue; /* a worker left while we were busy: join it first */
        } else if (wait_ms >= 0) {
            struct timespec ts = deadline_in(wait_ms);
            pthread_cond_timedwait(&p->wake, &p->lock, &ts);
        } else {
            pthread_cond_wait(&p->wake, &p->lock);
        }
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
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
    pthread_mutex_lock(&p->lock);
    if (p->stopping) {
        pthread_mutex_unlock(&p->lock);
        errno = ESHUTDOWN;
        return -1;
    }
    /* Room if, with this task, no more than queue_max would wait: the
     * tasks an idle worker is about to take do not wait. */
    size_t after = p->queued + 1 > p->nidle ? p->queued + 1 - p->nidle : 0;
    if (after > p->queue_max) {
        p->st.refused++;
        pthread_mutex_unlock(&p->lock);
        errno = EAGAIN;
        return -1;
    }
    t->next = NULL;
    t->cancelled = 0;
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->queued++;
    p->st.submitted++;
    /* One idle worker is enough for one task.  If none is idle the task
     * waits: the manager may add workers. */
    if (p->nidle)
        pthread_cond_signal(&p->work);
    if (waiting(p) && p->nthreads < p->max)
        pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    return 0;
}

struct tpool_task *tpool_collect(struct tpool *p)
{
    /* Read the eventfd BEFORE taking the list (see finish()).  The other
     * order loses a wakeup: take the list, a worker pushes a task and
     * writes, then this read swallows that write, and the task waits in
     * the list with nothing left to wake the loop. */
    uint64_t n;
    if (read(p->efd, &n, sizeof n) == -1 && errno != EAGAIN)
        unix_warn("read", "pool eventfd");
    pthread_mutex_lock(&p->lock);
    struct tpool_task *t = p->done_head;
    p->done_head = p->done_tail = NULL;
    pthread_mutex_unlock(&p->lock);
    return t;
}

int tpool_sleep(struct tpool *p, unsigned ms)
{
    struct timespec ts = deadline_in(ms);
    pthread_mutex_lock(&p->lock);
    while (!p->stopping && pthread_cond_timedwait(&p->quit, &p->lock, &ts) != ETIMEDOUT)
        ;
    int r = p->stopping ? -1 : 0;
    pthread_mutex_unlock(&p->lock);
    return r;
}

void tpool_stop(struct tpool *p)
{
    pthread_mutex_lock(&p->lock);
    if (!p->stopping) {
        p->stopping = 1;
        /* Tasks not started: back to the caller, cancelled. */
        while (p->head) {
            struct tpool_task *t = p->head;
            p->head = t->next;
            t->cancelled = 1;
            t->next = NULL;
            if (p->done_tail)
                p->done_tail->next = t;
            else
                p->done_head = t;
            p->done_tail = t;
        }
        p->tail = NULL;
        p->queued = 0;
        pthread_cond_broadcast(&p->work);
        pthread_cond_broadcast(&p->wake);
        pthread_cond_broadcast(&p->quit);
    }
    pthread_mutex_unlock(&p->lock);

    /* The manager first: once it is joined, nobody starts a worker. */
    if (!pthread_equal(p->manager, pthread_self()))
        pthread_join(p->manager, NULL);
    p->manager = pthread_self();

    pthread_mutex_lock(&p->lock);
    for (;;) {
        reap(p);
        if (p->nthreads == 0)
            break;
        pthread_cond_wait(&p->gone, &p->lock);
    }
    pthread_mutex_unlock(&p->lock);
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
