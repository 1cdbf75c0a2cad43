/*
 * timer.h - timers for the reactor: "call me back in MS milliseconds".
 *
 * Any number of timers share ONE timerfd, registered with the reactor like
 * any other fd: the timers wait in a binary min-heap ordered by deadline,
 * and the timerfd is always set to the earliest one.  When it fires, every
 * timer whose deadline has passed is called back, earliest first, and the
 * timerfd is set to the next.  10,000 timers cost one fd, one heap entry
 * each, and no CPU until one is due.  (redis' ae calls this
 * aeCreateTimeEvent, libevent evtimer_add; nginx keeps a red-black tree,
 * the Linux kernel a hierarchical timing wheel.)
 *
 * The timer itself is a small struct the caller embeds in its own state
 * (a connection's context, say): adding, re-arming and cancelling allocate
 * nothing and cost O(log n), because each timer remembers where it sits in
 * the heap.
 *
 * Clock: CLOCK_MONOTONIC only.  It never jumps when someone sets the date
 * (CLOCK_REALTIME does, and a wall-clock timer would fire an hour early,
 * or an hour late, when the clock is changed).
 *
 * Promises:
 *   - never early: a callback runs at or after its deadline;
 *   - a callback may add, re-arm or cancel any timer, its own included,
 *     and may free the memory of its own timer (it is out of the heap by
 *     then, and the timers code does not touch it after the call);
 *   - cancelling a timer that is not pending does nothing, so a connection
 *     can always cancel its timer when it closes.
 * One thread: the reactor's.
 */
#ifndef NETLABS_TIMER_H
#define NETLABS_TIMER_H

#include <stddef.h>

#include "reactor.h"

struct timers;
struct timer;

typedef void (*timer_cb)(struct timers *ts, struct timer *t, void *arg);

/* Embedded by the caller; set up with timer_init(), then leave the fields
 * alone. */
struct timer {
    long long when; /* deadline: CLOCK_MONOTONIC nanoseconds */
    size_t slot;    /* its index in the heap + 1; 0 = not pending */
    timer_cb cb;
    void *arg;
};

/* The timers of one reactor: a timerfd registered with it.  NULL with
 * errno on failure. */
struct timers *timers_create(struct reactor *r);

/* Remove the timerfd from the reactor, close it, free the heap.  Pending
 * timers are forgotten, never called (their memory is the caller's). */
void timers_destroy(struct timers *ts);

/* Set t up (not pending) to call cb(ts, t, arg) when it fires. */
void timer_init(struct timer *t, timer_cb cb, void *arg);

/* Arm t to fire ms milliseconds from now; a pending t is moved (re-armed).
 * 0, or -1 with errno (ENOMEM: the heap could not grow). */
int timer_add(struct timers *ts, struct timer *t, long long ms);

/* Arm t for an absolute deadline (timers_now() nanoseconds). */
int timer_add_at(struct timers *ts, struct timer *t, long long when_ns);

/* Disarm t if it is pending; nothing otherwise. */
void timer_cancel(struct timers *ts, struct timer *t);

/* 1 if t is waiting to fire. */
int timer_pending(const struct timer *t);

/* Timers waiting to fire. */
size_t timers_count(const struct timers *ts);

/* CLOCK_MONOTONIC now, in nanoseconds. */
long long timers_now(void);

#define TIMER_MS ((long long)1000000) /* nanoseconds in a millisecond */

#endif
