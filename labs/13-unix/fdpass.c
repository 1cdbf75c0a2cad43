/*
 * fdpass.c - SCM_RIGHTS: see fdpass.h for the contracts.  YOUR TASK:
 * TODO 6 send_fd(), TODO 7 recv_fd().
 *
 * A message that carries descriptors is an ordinary message (at least one
 * byte of data, in an iovec) plus control data: one struct cmsghdr with
 * level SOL_SOCKET, type SCM_RIGHTS and the ints after it, built and read
 * with the CMSG_* macros (cmsg(3)).  The handout's section 4 shows the
 * layout; its Hints section has the steps.
 */
#define _GNU_SOURCE /* MSG_CMSG_CLOEXEC */

#include "fdpass.h"
#include "wrap.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

/* Control data is read through struct cmsghdr, so the buffer must be
 * aligned like one: a union, not a bare char array. */
union fdbuf {
    struct cmsghdr align;
    char buf[CMSG_SPACE(sizeof(int))];
};

int send_fd(int chan, int fd)
{
    /* TODO 6: send one byte of data with fd attached as SCM_RIGHTS
     * control data, in a single sendmsg() on chan.  Contract (fdpass.h):
     *   - 0 once the message is sent: the receiver will get its own
     *     descriptor for the same open file; the caller's fd is untouched;
     *   - -1 with errno as sendmsg() left it otherwise (EAGAIN, EPIPE...):
     *     a vanished receiver must not raise SIGPIPE (MSG_NOSIGNAL);
     *   - a signal during the call is not an error (EINTR: try again). */
    (void)chan;
    app_error("TODO 6: send_fd() is not written yet (fd %d)", fd);
}

int recv_fd(int chan)
{
    /* TODO 7: receive one message from chan and return the descriptor
     * that came with it, close-on-exec (MSG_CMSG_CLOEXEC).  Contract
     * (fdpass.h):
     *   - the new fd (>= 0) when a message brought exactly what send_fd()
     *     sends;
     *   - -2 at EOF (recvmsg() returns 0: every process that held the
     *     other end has closed it; for a worker: the master is gone);
     *   - -1 with errno set otherwise: EAGAIN when nothing waits; EBADMSG
     *     for a message with no descriptor, or with MSG_CTRUNC set in
     *     msg_flags (the control buffer was too small);
     *   - every descriptor that arrives is either returned or closed,
     *     whatever else is wrong with the message (each one is an open
     *     connection in this process's fd table);
     *   - EINTR is retried. */
    (void)chan;
    app_error("TODO 7: recv_fd() is not written yet");
}
