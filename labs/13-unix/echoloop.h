/*
 * echoloop.h - the uppercase echo on one epoll loop (given code).
 *
 * Lab 13 is about where connections come from, not about how they are
 * served: a TCP listener, a Unix-domain listener, or another process that
 * hands them over.  So the serving is written once, here, and every mode
 * of the server uses it the same way:
 *
 *     loop = echo_loop_new(verbose);
 *     echo_watch(loop, listenfd, on_listener, arg);   "call me when readable"
 *     ... in on_listener: fd = accept(...); echo_add(loop, fd, name);
 *     echo_run(loop, &waitmask, keep_going, arg);     until told to stop
 *     echo_loop_free(loop);
 *
 * It is lab 07's design, level-triggered to keep it short: non-blocking
 * connections, an output buffer per connection, EPOLLOUT only while that
 * buffer holds something, and back-pressure (a connection whose unsent
 * output reaches ECHO_HIGH_WATER is not read until it has drained), so a
 * client that never reads cannot make the server hold more than that.
 */
#ifndef NETLABS_ECHOLOOP_H
#define NETLABS_ECHOLOOP_H

#include <signal.h>
#include <stddef.h>

#define ECHO_HIGH_WATER (1u << 20) /* unsent bytes per connection before reading pauses */

struct echo_loop;

/* Called when a watched fd is readable (level-triggered: again and again
 * while it stays readable). */
typedef void (*echo_ready_fn)(struct echo_loop *loop, int fd, void *arg);

/* Called before every wait; return 0 to make echo_run() return. */
typedef int (*echo_continue_fn)(struct echo_loop *loop, void *arg);

/* A loop with no connections, or NULL with errno set.  verbose: log each
 * connection's close on stderr. */
struct echo_loop *echo_loop_new(int verbose);

/* Close every connection still open, the epoll fd, free everything.
 * Watched fds are the caller's: they are not closed. */
void echo_loop_free(struct echo_loop *loop);

/* Call fn(loop, fd, arg) whenever fd is readable (a listener, a channel).
 * 0, or -1 with errno set. */
int echo_watch(struct echo_loop *loop, int fd, echo_ready_fn fn, void *arg);

/* Stop watching fd (before the caller closes it). */
void echo_unwatch(struct echo_loop *loop, int fd);

/* Serve the connection fd from now on: the loop owns it (makes it
 * non-blocking, closes it when the client is done).  name is copied, for
 * the log.  0, or -1 with errno set (then fd has been closed). */
int echo_add(struct echo_loop *loop, int fd, const char *name);

/* How many connections the loop serves now. */
size_t echo_count(const struct echo_loop *loop);

/* Make echo_run() return after the current round of events. */
void echo_stop(struct echo_loop *loop);

/* Wait and serve until echo_stop() or until keep_going returns 0.  While
 * waiting the signal mask is waitmask (epoll_pwait): block your stop
 * signals everywhere else, and a signal arriving at any moment ends the
 * wait, so keep_going sees its flag at once.  0, or -1 if epoll_pwait
 * itself failed (errno set). */
int echo_run(struct echo_loop *loop, const sigset_t *waitmask,
             echo_continue_fn keep_going, void *arg);

#endif
