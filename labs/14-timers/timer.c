/*
 * timer.c - a binary min-heap of deadlines behind one timerfd (timer.h).
 *
 * YOUR TASK: TODOs 1-4 here (the README's Hints walk through them), then
 * TODOs 5-7 in server.c and 8-9 in client.c.
 *
 * The heap is an array of pointers to the callers' timers: the earliest
 * deadline at [0], the children of [i] at [2i+1] and [2i+2], each no
 * earlier than its parent.  Each timer keeps its own index (slot = index
 * + 1, 0 when not in the heap), so re-arming and cancelling need no
 * search: O(log n) for everything.
 *
 * The timerfd is set to the earliest deadline, absolute
 * (TFD_TIMER_ABSTIME), and changed only when the earliest deadline
 * changes.
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

/* Put t at heap[i] and tell it where it is. */
static void place(struct timers *ts, size_t i, struct timer *t)
{
    ts->heap[i] = t;
    t->slot = i + 1;
}

/* TODO 1: the heap.  sift_up(i): move heap[i] up while it is earlier
 * than its parent; sift_down(i): move it down while a child is earlier
 * (the earlier child); heap_remove(t): take t out from wherever it is
 * (the last entry fills the hole, then goes up or down), slot = 0.  Use
 * place() for every move, so every timer always knows its slot. */
static void sift_up(struct timers *ts, size_t i)
{
    (void)ts;
    (void)i;
    (void)place;
    app_error("TODO 1: sift_up() in timer.c is not written yet");
}

static void sift_down(struct timers *ts, size_t i)
{
    (void)ts;
    (void)i;
    app_error("TODO 1: sift_down() in timer.c is not written yet");
}

static void heap_remove(struct timers *ts, struct timer *t)
{
    (void)ts;
    (void)t;
    app_error("TODO 1: heap_remove() in timer.c is not written yet");
}

/* TODO 2: rearm(): point the timerfd at heap[0]'s deadline, absolute
 * (TFD_TIMER_ABSTIME), or disarm it (all zero) when the heap is empty;
 * skip the system call when that deadline is already ts->armed. */
static void rearm(struct timers *ts)
{
    (void)ts;
    app_error("TODO 2: rearm() in timer.c is not written yet");
}

/* TODO 3: the timerfd fired.  Read it until EAGAIN (edge-triggered),
 * then take out and call back every timer whose deadline is at or before
 * now (read the clock once), earliest first; a callback may free its own
 * timer, so do not touch it after the call.  Then rearm(). */
static void timers_cb(struct reactor *r, int fd, int events, void *arg)
{
    (void)r;
    (void)fd;
    (void)events;
    (void)arg;
    (void)heap_remove;
    app_error("TODO 3: timers_cb() in timer.c is not written yet");
}

/* TODO 4: timers_create: a CLOCK_MONOTONIC timerfd (non-blocking,
 * close-on-exec) registered for REACTOR_READ with timers_cb; NULL with
 * errno on failure (free what was made).  timers_destroy: remove it from
 * the reactor, close it, free the heap.  timer_add_at: insert (grow the
 * array when full) or re-arm in place (sift up if earlier, down if
 * later), then rearm().  timer_cancel: heap_remove if pending, then
 * rearm(). */
struct timers *timers_create(struct reactor *r)
{
    (void)r;
    (void)timers_cb;
    (void)sift_up;
    (void)sift_down;
    (void)rearm;
    app_error("TODO 4: timers_create() in timer.c is not written yet");
}

void timers_destroy(struct timers *ts)
{
    (void)ts;
    app_error("TODO 4: timers_destroy() in timer.c is not written yet");
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
    (void)ts;
    (void)t;
    (void)when;
    app_error("TODO 4: timer_add_at() in timer.c is not written yet");
}

int timer_add(struct timers *ts, struct timer *t, long long ms)
{
    if (ms < 0)
        ms = 0;
    return timer_add_at(ts, t, timers_now() + ms * TIMER_MS);
}

void timer_cancel(struct timers *ts, struct timer *t)
{
    (void)ts;
    (void)t;
    app_error("TODO 4: timer_cancel() in timer.c is not written yet");
}

int timer_pending(const struct timer *t)
{
    return t->slot != 0;
}

size_t timers_count(const struct timers *ts)
{
    return ts->n;
}
