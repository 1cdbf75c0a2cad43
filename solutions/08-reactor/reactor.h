/*
 * reactor.h - a reusable event loop: "call me back when this fd is ready".
 *
 * The application registers fds with the events it wants (REACTOR_READ,
 * REACTOR_WRITE) and a callback; reactor_run() waits and calls back.  All
 * the waiting code lives behind this header, in two parts: reactor.c, the
 * core (the per-fd table, the callbacks, dispatch), and a backend that only
 * asks the kernel (reactor_backend.h says what a backend must do;
 * reactor_epoll.c is the one linked today, and lab.mk picks it).  The same
 * application runs on any backend.
 *
 * The contract the reactor keeps, whatever the backend:
 *
 *   1. Edge-triggered delivery.  A callback is called when an fd BECOMES
 *      ready for an event it is interested in.  The callback must work
 *      until EAGAIN, or remove the interest (reactor_modify) if it stops
 *      early on purpose; reactor_modify() re-arms: if the fd is ready
 *      for an interest it names, the event is delivered on the next
 *      round, even if the interest did not change.  So pausing and
 *      resuming never loses an edge, and a callback that stops early to
 *      let others run calls reactor_modify() to be called again.  (A
 *      level-triggered backend meets this contract too: it only calls
 *      back more often.)
 *   2. Errors and hang-ups are reported as REACTOR_READ (and REACTOR_WRITE
 *      if asked for), so the application learns what happened the normal
 *      way: read() returns 0 or -1 with errno.  REACTOR_HUP comes with that
 *      READ when the peer has closed its sending side or the connection
 *      failed: a read that returns less than asked has then NOT reached
 *      the end, so read on until 0 or -1.  Without REACTOR_HUP, a read that
 *      returned less than it asked for has emptied the socket (epoll(7)):
 *      stop there, more data will be a new event.
 *   3. Per-fd state lives in a table indexed by fd, sized when the reactor
 *      is created.  An fd beyond it is refused with errno = ERANGE.
 *   4. A callback may add, modify or remove any fd, including its own, and
 *      may close the fd after removing it.  Events already collected for
 *      a removed fd in the same round are dropped, never delivered to a
 *      new registration of the same fd number.
 *   5. reactor_stop() makes reactor_run() return after the current round.
 *      It is called from a callback (a signalfd callback for SIGTERM, say),
 *      never from a signal handler.
 *   6. Failures return -1 with errno set and print nothing; the caller
 *      decides.  Nothing here exits.
 *
 * One reactor is used by one thread.
 */
#ifndef NETLABS_REACTOR_H
#define NETLABS_REACTOR_H

#define REACTOR_READ 1
#define REACTOR_WRITE 2
#define REACTOR_HUP 4 /* with READ only: the peer is gone, read to the end (point 2) */

struct reactor;

/* events: the REACTOR_* bits that are ready (REACTOR_HUP only ever with
 * REACTOR_READ).  arg: as registered. */
typedef void (*reactor_cb)(struct reactor *r, int fd, int events, void *arg);

/* A reactor for fds 0 .. max_fds-1.  NULL with errno on failure. */
struct reactor *reactor_create(int max_fds);

/* Free the reactor.  Registered fds are not closed: they belong to the
 * application, which closes them first. */
void reactor_destroy(struct reactor *r);

/* Watch fd for events (REACTOR_READ|REACTOR_WRITE, may be 0), calling
 * cb(r, fd, ready, arg).  -1 with errno: ERANGE (fd outside the table),
 * EEXIST (already registered), or the backend's error. */
int reactor_add(struct reactor *r, int fd, int events, reactor_cb cb, void *arg);

/* Change the events fd is watched for, and re-arm it (contract point
 * 1).  -1 with errno (ENOENT if not registered). */
int reactor_modify(struct reactor *r, int fd, int events);

/* Stop watching fd.  Call it before close(fd).  -1 with errno. */
int reactor_remove(struct reactor *r, int fd);

/* The events fd is watched for now, or -1 if it is not registered. */
int reactor_events(const struct reactor *r, int fd);

/* Wait and dispatch until reactor_stop().  0 when stopped, -1 with errno
 * if waiting fails (EINTR is retried). */
int reactor_run(struct reactor *r);

void reactor_stop(struct reactor *r);

#endif
