/*
 * tpool.h - a thread pool behind an event loop (half-sync/half-async).
 *
 * The loop (one thread, the async half) hands slow work to a pool of
 * worker threads (the sync half) and gets it back when it is done:
 *
 *     loop:    tpool_submit(p, task)     never blocks: a full queue says
 *                                         so at once (-1, EAGAIN)
 *     worker:  task->run(task, p)         may block, may sleep; touches
 *                                         nothing but the task
 *     worker:  the task goes on the done list; if the list was empty,
 *              the pool's eventfd is written: the loop wakes up
 *     loop:    tpool_collect(p) in the eventfd's callback: the finished
 *              tasks, and the loop answers the clients itself
 *
 * The queue is bounded: at most queue_max tasks wait for a worker (the
 * tasks being run do not count, nor a task an idle worker is about to
 * take).  A task that does not fit is refused, and the caller answers
 * "busy": under overload a server must shed load, not absorb it.
 *
 * A manager thread sizes the pool: while tasks wait and there are fewer
 * than max workers it adds workers, a few at a time (TPOOL_GROW_STEP,
 * every TPOOL_GROW_TICK_MS while tasks still wait); a worker idle for more
 * than TPOOL_IDLE_MS is retired, down to min.  So the process has, besides
 * its workers, two threads: the loop (main) and the manager.
 *
 * Every wait in the pool can be interrupted: tpool_stop() wakes idle
 * workers, the manager, and tasks sleeping in tpool_sleep(), then joins
 * every thread.  A server stopped by SIGTERM with tasks running and
 * queued exits in milliseconds, not when the slowest task would end.
 *
 * Locking: one mutex guards the pool's state, and nobody holds it for
 * long: not while a task runs, not while a thread is created or joined.
 * So tpool_submit(), called from the loop, never waits behind slow work.
 */
#ifndef NETLABS_TPOOL_H
#define NETLABS_TPOOL_H

#include <stddef.h>

#define TPOOL_IDLE_MS 1000     /* a worker idle this long may be retired */
#define TPOOL_GROW_STEP 4      /* workers added per step */
#define TPOOL_GROW_TICK_MS 20  /* between steps, while tasks still wait */
#define TPOOL_MAX_THREADS 256  /* the largest max accepted */

struct tpool;

/* A task: embed it (as the first member, or use offsetof) in the
 * application's own struct.  The pool uses next; run is the work. */
struct tpool_task {
    struct tpool_task *next;
    /* Called in a worker thread.  It must not touch anything the loop
     * uses (connections, sockets, buffers): only its own task. */
    void (*run)(struct tpool_task *t, struct tpool *p);
    /* Set by the pool: 1 if the pool stopped before the task ran (it
     * comes back from tpool_collect() after tpool_stop(), not run). */
    int cancelled;
};

struct tpool_stats {
    unsigned threads;     /* workers alive now */
    unsigned idle;        /* ... of which waiting for a task */
    size_t queued;        /* tasks in the queue */
    unsigned peak;        /* the most workers ever alive at once */
    size_t submitted;     /* tasks accepted */
    size_t refused;       /* tasks refused: the queue was full */
    size_t started;       /* workers started, retired: over the pool's life */
    size_t retired;
};

/* A pool of min..max workers (1 <= min <= max <= TPOOL_MAX_THREADS) and
 * a queue for queue_max waiting tasks; min workers and the manager start
 * now.  Call it with the signals the loop handles blocked: the threads
 * inherit the mask, so a signal is never delivered to a worker.  NULL
 * with errno on failure. */
struct tpool *tpool_create(unsigned min, unsigned max, size_t queue_max);

/* The eventfd that becomes readable when tasks have finished.  Watch it
 * for reading in the loop, and call tpool_collect() when it is. */
int tpool_fd(const struct tpool *p);

/* Hand t to a worker.  0, or -1 with errno EAGAIN (queue_max tasks
 * already wait: answer "busy") or ESHUTDOWN (stopping).  Never blocks. */
int tpool_submit(struct tpool *p, struct tpool_task *t);

/* The tasks finished since the last call, oldest first, linked by next
 * (NULL if none).  Call it from the loop when tpool_fd() is readable; it
 * never blocks. */
struct tpool_task *tpool_collect(struct tpool *p);

/* For a task's run(): sleep ms milliseconds, unless the pool stops first.
 * 0 when the time has passed, -1 when woken by tpool_stop(). */
int tpool_sleep(struct tpool *p, unsigned ms);

/* Stop: tasks not started are cancelled, idle workers and the manager
 * wake up, tasks in tpool_sleep() return early, and every thread is
 * joined.  Afterwards tpool_collect() returns every task not collected
 * yet (run, or cancelled).  Returns when no pool thread is left. */
void tpool_stop(struct tpool *p);

/* Free the pool: after tpool_stop(), and after the last tpool_collect()
 * (the tasks belong to the caller, who frees them). */
void tpool_destroy(struct tpool *p);

void tpool_get_stats(struct tpool *p, struct tpool_stats *st);

#endif
