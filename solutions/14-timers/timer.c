/*
 * timer.c - a binary min-heap of deadlines behind one timerfd (timer.h).
 *
 * The heap is an array of pointers to the callers' timers: the earliest
 * deadline at [0], the children of [i] at [2i+1] and [2i+2], each no
 * earlier than its parent.  Adding puts a timer at the end and moves it up
 * (sift up); removing one from the middle puts the last timer in its place
 * and moves that one up or down.  Each timer keeps its own index (slot),
 * so cancelling needs no search: O(log n) for everything.
 *
 * The timerfd is set to the earliest deadline, absolute
 * (TFD_TIMER_ABSTIME): a relative time would be stale by the time the
 * kernel reads it.  It is changed only when the earliest deadline changes,
 * so re-arming a timer deep in the heap costs no system call.
 */
#define _POSIX_C_SOURCE 200809L

#include "timer.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "wrap.h"

struct timers {
    struct reactor *r;
    int fd;              /* the timerfd */
    long long armed;     /* the deadline the timerfd is set to; 0: disarmed */
    struct timer **heap; /* heap[0] is the earliest */
    size_t n, cap;
};

long long timers_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---------- the heap ---------------------------------------------------------------- */

static void place(struct timers *ts, size_t i, struct timer *t)
{
    ts->heap[i] = t;
    t->slot = i + 1;
}

static void sift_up(struct timers *ts, size_t i)
{
    struct timer *t = ts->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (ts->heap[parent]->when <= t->when)
            break;
        place(ts, i, ts->heap[parent]);
        i = parent;
    }
    place(ts, i, t);
}

static void sift_down(struct timers *ts, size_t i)
{
    struct timer *t = ts->heap[i];
    for (;;) {
        size_t child = 2 * i + 1;
        if (child >= ts->n)
            break;
        if (child + 1 < ts->n && ts->heap[child + 1]->when < ts->heap[child]->when)
            child++;
        if (t->when <= ts->heap[child]->when)
            break;
        place(ts, i, ts->heap[child]);
        i = child;
    }
    place(ts, i, t);
}

/* Take t out of the heap (it must be in it). */
static void heap_remove(struct timers *ts, struct timer *t)
{
    size_t i = t->slot - 1;
    struct timer *last = ts->heap[--ts->n];
    t->slot = 0;
    if (last == t)
        return; /* it was the last one */
    place(ts, i, last);
    /* The moved timer may belong above or below its new place. */
    if (i > 0 && ts->heap[(i - 1) / 2]->when > last->when)
        sift_up(ts, i);
    else
        sift_down(ts, i);
}

/* ---------- the timerfd ---------------------------------------------------------------- */

/* Point the timerfd at the earliest deadline (or disarm it), if that
 * changed. */
static void rearm(struct timers *ts)
{
    long long want = ts->n ? ts->heap[0]->when : 0;
    if (want == ts->armed)
        return;
    struct itimerspec it = {0};
    if (want) {
        it.it_value.tv_sec = want / 1000000000LL;
        it.it_value.tv_nsec = want % 1000000000LL;
        if (!it.it_value.tv_sec && !it.it_value.tv_nsec)
            it.it_value.tv_nsec = 1; /* all zero would disarm it */
    }
    if (timerfd_settime(ts->fd, TFD_TIMER_ABSTIME, &it, NULL) == -1) {
        unix_warn("timerfd_settime", "timers");
        return;
    }
    ts->armed = want;
}

static void timers_cb(struct reactor *r, int fd, int events, void *arg)
{
    struct timers *ts = arg;
    uint64_t expirations;
    (void)r;
    (void)events;
    /* Edge-triggered: empty it (one read does, the second says EAGAIN). */
    while (read(fd, &expirations, sizeof expirations) > 0)
        ;
    ts->armed = -1; /* it has fired: whatever comes next must be set */
    long long now = timers_now();
    /* Fire what is due, earliest first.  A callback that re-arms its timer
     * for a later time pushes it down the heap; one armed for now or
     * earlier would fire again in this loop, so 'now' is read once. */
    while (ts->n && ts->heap[0]->when <= now) {
        struct timer *t = ts->heap[0];
        heap_remove(ts, t);
        t->cb(ts, t, t->arg); /* t may be freed in there: not touched after */
    }
    rearm(ts);
}

/* ---------- the API ---------------------------------------------------------------- */

struct timers *timers_create(struct reactor *r)
{
    struct timers *ts = calloc(1, sizeof *ts);
    if (!ts)
        return NULL;
    ts->r = r;
    ts->fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (ts->fd == -1 || reactor_add(r, ts->fd, REACTOR_READ, timers_cb, ts) == -1) {
        int saved = errno;
        if (ts->fd >= 0)
            close(ts->fd);
        free(ts);
        errno = saved;
        return NULL;
    }
    return ts;
}

void timers_destroy(struct timers *ts)
{
    if (!ts)
        return;
    for (size_t i = 0; i < ts->n; i++)
        ts->heap[i]->slot = 0;
    reactor_remove(ts->r, ts->fd);
    close(ts->fd);
    free(ts->heap);
    free(ts);
}

void timer_init(struct timer *t, timer_cb cb, void *arg)
{
    t->when = 0;
    t->slot = 0;
    t->cb = cb;
    t->arg = arg;
}

int timer_add_at(struct timers *ts, struct timer *t, long long when)
{
    if (when <= 0)
        when = 1; /* 0 means "disarmed" to rearm() */
    if (t->slot) {
        /* Re-arm in place: up if earlier, down if later. */
        long long old = t->when;
        t->when = when;
        if (when < old)
            sift_up(ts, t->slot - 1);
        else
            sift_down(ts, t->slot - 1);
    } else {
        if (ts->n == ts->cap) {
            size_t cap = ts->cap ? ts->cap * 2 : 64;
            struct timer **h = realloc(ts->heap, cap * sizeof *h);
            if (!h)
                return -1;
            ts->heap = h;
            ts->cap = cap;
        }
        t->when = when;
        place(ts, ts->n++, t);
        sift_up(ts, ts->n - 1);
    }
    rearm(ts);
    return 0;
}

int timer_add(struct timers *ts, struct timer *t, long long ms)
{
    if (ms < 0)
        ms = 0;
    return timer_add_at(ts, t, timers_now() + ms * TIMER_MS);
}

void timer_cancel(struct timers *ts, struct timer *t)
{
    if (!t->slot)
        return;
    heap_remove(ts, t);
    rearm(ts); /* a system call only if it was the earliest */
}

int timer_pending(const struct timer *t)
{
    return t->slot != 0;
}

size_t timers_count(const struct timers *ts)
{
    return ts->n;
}
